import KilnCore
import KilnStore
import SQLKit

/// One entry of a version's history: a transition, a request and its outcome, or a comment.
public struct RegistryActivity: Sendable, Equatable {
    public var id: String
    /// `APPLIED_TRANSITION`, `SYSTEM_TRANSITION`, `REQUESTED_TRANSITION`, `APPROVED_REQUEST`, `REJECTED_REQUEST`,
    /// `CANCELLED_REQUEST` or `NEW_COMMENT`, as Databricks names them.
    public var activityType: String
    public var fromStage: String?
    public var toStage: String?
    public var userID: String?
    public var comment: String?
    public var systemComment: String?
    public var creationTime: Int64
    public var lastUpdatedTime: Int64
}

/// An open request to move a version to a stage.
public struct TransitionRequest: Sendable, Equatable {
    public var toStage: String
    public var userID: String
    public var comment: String?
    public var creationTime: Int64
}

/// A comment on a version.
public struct VersionComment: Sendable, Equatable {
    public var id: String
    public var comment: String
    public var userID: String?
    public var creationTime: Int64
    public var lastUpdatedTime: Int64
}

/// One change of an alias: set (from nil), moved, or removed (to nil).
public struct AliasChange: Sendable, Equatable {
    public var alias: String
    public var fromVersion: Int64?
    public var toVersion: Int64?
    public var userID: String?
    public var time: Int64
}

extension RegistryService {
    static func recordActivity(_ sql: any SQLDatabase, name: String, version: Int64, type: String, from: String?, to: String?,
                               userID: String?, comment: String?, systemComment: String?, now: Int64) async throws -> RegistryActivity {
        let activity = RegistryActivity(id: Identifiers.hex32(), activityType: type, fromStage: from, toStage: to, userID: userID,
                                        comment: comment, systemComment: systemComment, creationTime: now, lastUpdatedTime: now)
        try await sql.raw("""
            INSERT INTO model_version_activities (id, seq, name, version, activity_type, from_stage, to_stage, user_id, comment,
                system_comment, creation_time, last_updated_time)
            VALUES (\(bind: activity.id), (SELECT COALESCE(MAX(seq), 0) + 1 FROM model_version_activities), \(bind: name), \(bind: version), \(bind: type), \(bind: from), \(bind: to), \(bind: userID),
                \(bind: comment), \(bind: systemComment), \(bind: now), \(bind: now))
            """).run()
        return activity
    }

    static func aliasTarget(_ sql: any SQLDatabase, name: String, alias: String) async throws -> Int64? {
        try await sql.raw("SELECT version FROM registered_model_aliases WHERE name = \(bind: name) AND alias = \(bind: alias)")
            .first()?.decode(column: "version", as: Int64.self)
    }

    static func recordAliasChange(_ sql: any SQLDatabase, name: String, alias: String, from: Int64?, to: Int64?, userID: String?, now: Int64) async throws {
        try await sql.raw("""
            INSERT INTO registered_model_alias_history (id, seq, name, alias, from_version, to_version, user_id, creation_time)
            VALUES (\(bind: Identifiers.hex32()), (SELECT COALESCE(MAX(seq), 0) + 1 FROM registered_model_alias_history), \(bind: name), \(bind: alias), \(bind: from), \(bind: to), \(bind: userID), \(bind: now))
            """).run()
    }

    /// A version's history, oldest first: transitions, requests and their outcomes, comments.
    public func activities(name: String, version: String) async throws -> [RegistryActivity] {
        let number = try Self.parseVersion(version)
        return try await db.read { sql in
            _ = try await Self.requireVersion(sql, name, number)
            return try await sql.raw("""
                SELECT id, activity_type, from_stage, to_stage, user_id, comment, system_comment, creation_time, last_updated_time
                FROM model_version_activities WHERE name = \(bind: name) AND version = \(bind: number) ORDER BY seq
                """).all().map { row in
                RegistryActivity(
                    id: try row.decode(column: "id", as: String.self), activityType: try row.decode(column: "activity_type", as: String.self),
                    fromStage: try row.decode(column: "from_stage", as: String?.self), toStage: try row.decode(column: "to_stage", as: String?.self),
                    userID: try row.decode(column: "user_id", as: String?.self), comment: try row.decode(column: "comment", as: String?.self),
                    systemComment: try row.decode(column: "system_comment", as: String?.self),
                    creationTime: try row.decode(column: "creation_time", as: Int64.self),
                    lastUpdatedTime: try row.decode(column: "last_updated_time", as: Int64.self))
            }
        }
    }

    /// Every alias change of a model, oldest first.
    public func aliasHistory(name: String) async throws -> [AliasChange] {
        try await db.read { sql in
            try await Self.requireModel(sql, name)
            return try await sql.raw("""
                SELECT alias, from_version, to_version, user_id, creation_time FROM registered_model_alias_history
                WHERE name = \(bind: name) ORDER BY seq
                """).all().map { row in
                AliasChange(alias: try row.decode(column: "alias", as: String.self),
                            fromVersion: try row.decode(column: "from_version", as: Int64?.self),
                            toVersion: try row.decode(column: "to_version", as: Int64?.self),
                            userID: try row.decode(column: "user_id", as: String?.self),
                            time: try row.decode(column: "creation_time", as: Int64.self))
            }
        }
    }

    // MARK: Transition requests

    /// Asks for a version to move to `stage`; one open request per user and stage.
    /// - Throws: `RESOURCE_ALREADY_EXISTS` when this user already has an open request for that stage.
    public func createTransitionRequest(name: String, version: String, stage: ModelStage, comment: String?, userID: String) async throws -> TransitionRequest {
        let number = try Self.parseVersion(version)
        let now = clock.nowMillis()
        do {
            return try await db.write { sql in
                let current = try await Self.requireVersion(sql, name, number)
                try await sql.raw("""
                    INSERT INTO transition_requests (name, version, to_stage, user_id, comment, creation_time)
                    VALUES (\(bind: name), \(bind: number), \(bind: stage.rawValue), \(bind: userID), \(bind: comment), \(bind: now))
                    """).run()
                _ = try await Self.recordActivity(sql, name: name, version: number, type: "REQUESTED_TRANSITION", from: current.stage.rawValue,
                                                  to: stage.rawValue, userID: userID, comment: comment, systemComment: nil, now: now)
                var events: [RegistryEvent] = [.transitionRequestCreated]
                switch stage {
                case .staging: events.append(.transitionRequestToStagingCreated)
                case .production: events.append(.transitionRequestToProductionCreated)
                case .archived: events.append(.transitionRequestToArchivedCreated)
                case .none: break
                }
                var fields = ["version": String(number), "from_stage": current.stage.rawValue, "to_stage": stage.rawValue, "user_id": userID]
                if let comment { fields["text"] = comment }
                try await Self.enqueue(sql, events, modelName: name, fields: fields, now: now)
                return TransitionRequest(toStage: stage.rawValue, userID: userID, comment: comment, creationTime: now)
            }
        } catch let error as KilnError where error.code == .resourceAlreadyExists {
            throw KilnError.alreadyExists("A transition request to \(stage.rawValue) by \(userID) is already open for \(name) version \(version)")
        }
    }

    /// The open transition requests of a version.
    public func transitionRequests(name: String, version: String) async throws -> [TransitionRequest] {
        let number = try Self.parseVersion(version)
        return try await db.read { sql in
            _ = try await Self.requireVersion(sql, name, number)
            return try await sql.raw("""
                SELECT to_stage, user_id, comment, creation_time FROM transition_requests
                WHERE name = \(bind: name) AND version = \(bind: number) ORDER BY creation_time
                """).all().map { row in
                TransitionRequest(toStage: try row.decode(column: "to_stage", as: String.self), userID: try row.decode(column: "user_id", as: String.self),
                                  comment: try row.decode(column: "comment", as: String?.self),
                                  creationTime: try row.decode(column: "creation_time", as: Int64.self))
            }
        }
    }

    static func requireRequest(_ sql: any SQLDatabase, name: String, version: Int64, stage: ModelStage, creator: String? = nil) async throws {
        var query: SQLQueryString = "SELECT user_id FROM transition_requests WHERE name = \(bind: name) AND version = \(bind: version) AND to_stage = \(bind: stage.rawValue)"
        if let creator { query = query + " AND user_id = \(bind: creator)" }
        guard try await !sql.raw(query).all().isEmpty else {
            throw KilnError.notFound("No open transition request to \(stage.rawValue) for \(name) version \(version)")
        }
    }

    /// Approves the open requests to `stage` and performs the transition.
    public func approveTransitionRequest(name: String, version: String, stage: ModelStage, archiveExisting: Bool,
                                         comment: String?, userID: String) async throws -> RegistryActivity {
        let number = try Self.parseVersion(version)
        let now = clock.nowMillis()
        return try await db.write { sql in
            try await Self.requireRequest(sql, name: name, version: number, stage: stage)
            try await sql.raw("DELETE FROM transition_requests WHERE name = \(bind: name) AND version = \(bind: number) AND to_stage = \(bind: stage.rawValue)").run()
            return try await Self.applyTransition(sql, name: name, version: number, to: stage, archiveExisting: archiveExisting,
                                                  userID: userID, comment: comment, type: "APPROVED_REQUEST", now: now)
        }
    }

    /// Rejects the open requests to `stage`; the version stays where it is.
    public func rejectTransitionRequest(name: String, version: String, stage: ModelStage, comment: String?, userID: String) async throws -> RegistryActivity {
        let number = try Self.parseVersion(version)
        let now = clock.nowMillis()
        return try await db.write { sql in
            let current = try await Self.requireVersion(sql, name, number)
            try await Self.requireRequest(sql, name: name, version: number, stage: stage)
            try await sql.raw("DELETE FROM transition_requests WHERE name = \(bind: name) AND version = \(bind: number) AND to_stage = \(bind: stage.rawValue)").run()
            return try await Self.recordActivity(sql, name: name, version: number, type: "REJECTED_REQUEST", from: current.stage.rawValue,
                                                 to: stage.rawValue, userID: userID, comment: comment, systemComment: nil, now: now)
        }
    }

    /// Cancels the open request `creator` made for `stage`.
    public func cancelTransitionRequest(name: String, version: String, stage: ModelStage, creator: String, comment: String?) async throws {
        let number = try Self.parseVersion(version)
        let now = clock.nowMillis()
        try await db.write { sql in
            let current = try await Self.requireVersion(sql, name, number)
            try await Self.requireRequest(sql, name: name, version: number, stage: stage, creator: creator)
            try await sql.raw("""
                DELETE FROM transition_requests WHERE name = \(bind: name) AND version = \(bind: number) AND to_stage = \(bind: stage.rawValue)
                AND user_id = \(bind: creator)
                """).run()
            _ = try await Self.recordActivity(sql, name: name, version: number, type: "CANCELLED_REQUEST", from: current.stage.rawValue,
                                              to: stage.rawValue, userID: creator, comment: comment, systemComment: nil, now: now)
        }
    }

    // MARK: Comments

    /// Comments on a version.
    public func createComment(name: String, version: String, comment: String, userID: String?) async throws -> VersionComment {
        guard !comment.allSatisfy(\.isWhitespace) else { throw KilnError.invalid("Missing value for required parameter 'comment'.") }
        let number = try Self.parseVersion(version)
        let now = clock.nowMillis()
        return try await db.write { sql in
            _ = try await Self.requireVersion(sql, name, number)
            let activity = try await Self.recordActivity(sql, name: name, version: number, type: "NEW_COMMENT", from: nil, to: nil,
                                                         userID: userID, comment: comment, systemComment: nil, now: now)
            try await Self.enqueue(sql, [.commentCreated], modelName: name, fields: ["version": String(number), "text": comment], now: now)
            try await sql.raw("""
                INSERT INTO model_version_comments (id, name, version, comment, user_id, creation_time, last_updated_time)
                VALUES (\(bind: activity.id), \(bind: name), \(bind: number), \(bind: comment), \(bind: userID), \(bind: now), \(bind: now))
                """).run()
            return VersionComment(id: activity.id, comment: comment, userID: userID, creationTime: now, lastUpdatedTime: now)
        }
    }

    static func requireComment(_ sql: any SQLDatabase, _ id: String) async throws -> VersionComment {
        guard let row = try await sql.raw("""
            SELECT id, comment, user_id, creation_time, last_updated_time FROM model_version_comments WHERE id = \(bind: id)
            """).first() else {
            throw KilnError.notFound("Comment \(id) not found")
        }
        return VersionComment(id: try row.decode(column: "id", as: String.self), comment: try row.decode(column: "comment", as: String.self),
                              userID: try row.decode(column: "user_id", as: String?.self),
                              creationTime: try row.decode(column: "creation_time", as: Int64.self),
                              lastUpdatedTime: try row.decode(column: "last_updated_time", as: Int64.self))
    }

    /// Edits a comment's text.
    public func updateComment(id: String, comment: String) async throws -> VersionComment {
        guard !comment.allSatisfy(\.isWhitespace) else { throw KilnError.invalid("Missing value for required parameter 'comment'.") }
        let now = clock.nowMillis()
        return try await db.write { sql in
            _ = try await Self.requireComment(sql, id)
            try await sql.raw("UPDATE model_version_comments SET comment = \(bind: comment), last_updated_time = \(bind: now) WHERE id = \(bind: id)").run()
            try await sql.raw("UPDATE model_version_activities SET comment = \(bind: comment), last_updated_time = \(bind: now) WHERE id = \(bind: id)").run()
            return try await Self.requireComment(sql, id)
        }
    }

    /// Deletes a comment.
    /// The model a comment is on and who wrote it; nil when there is no such comment.
    public func commentOrigin(id: String) async throws -> (model: String, author: String?)? {
        try await db.read { sql in
            try await sql.raw("SELECT name, user_id FROM model_version_comments WHERE id = \(bind: id)").first().map {
                (try $0.decode(column: "name", as: String.self), try $0.decode(column: "user_id", as: String?.self))
            }
        }
    }

    public func deleteComment(id: String) async throws {
        try await db.write { sql in
            _ = try await Self.requireComment(sql, id)
            try await sql.raw("DELETE FROM model_version_comments WHERE id = \(bind: id)").run()
            try await sql.raw("DELETE FROM model_version_activities WHERE id = \(bind: id)").run()
        }
    }
}
