import KilnCore
import KilnStore
import Logging
import SQLKit

/// Experiment tracking: experiments, runs, metrics, params, tags, inputs, logged models.
///
/// Each public call is one unit of work against the store; validation happens before anything is written, so a
/// rejected call leaves no trace.
///
/// ```swift
/// let tracking = try await TrackingService.make(database: db, logger: logger)
/// let id = try await tracking.createExperiment(name: "churn")
/// let run = try await tracking.createRun(experimentID: id, userID: "ana")
/// try await tracking.logBatch(runID: run.info.runID, metrics: [Metric(key: "auc", value: 0.9, timestamp: 0, step: 0)])
/// ```
public struct TrackingService: Sendable {
    let db: any KilnDatabase
    let clock: any KilnClock
    /// Prefix of default artifact locations: `mlflow-artifacts:` serves artifacts through the server.
    public let defaultArtifactRoot: String

    /// Builds the service, applying its migrations and creating the `Default` experiment (id 0) on first start.
    public static func make(
        database: any KilnDatabase,
        clock: any KilnClock = SystemClock(),
        defaultArtifactRoot: String = "mlflow-artifacts:",
        logger: Logger
    ) async throws -> TrackingService {
        try await Migrator.migrate(database, TrackingSchema.migrations, logger: logger)
        let service = TrackingService(db: database, clock: clock, defaultArtifactRoot: defaultArtifactRoot)
        try await service.ensureDefaultExperiment()
        return service
    }

    func experimentLocation(_ id: Int64) -> String {
        "\(defaultArtifactRoot)/\(id)"
    }

    private func ensureDefaultExperiment() async throws {
        let now = clock.nowMillis()
        let location = experimentLocation(0)
        try await db.write { sql in
            let rows = try await sql.raw("SELECT experiment_id FROM experiments WHERE experiment_id = 0").all()
            if rows.isEmpty {
                try await sql.raw("""
                    INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
                    VALUES (0, 'Default', \(bind: location), 'active', \(bind: now), \(bind: now))
                    """).run()
            }
        }
    }

    // MARK: Experiments

    /// Creates an experiment.
    /// - Returns: the new experiment's id.
    /// - Throws: `RESOURCE_ALREADY_EXISTS` when the name is taken (deleted experiments keep their names).
    public func createExperiment(name: String, artifactLocation: String? = nil, tags: [KeyValue] = []) async throws -> String {
        try Validate.experimentName(name)
        for tag in tags {
            try Validate.key(tag.key, kind: "tag")
            try Validate.experimentTagValue(tag.value, key: tag.key)
        }
        let now = clock.nowMillis()
        let root = self
        do {
            return try await db.write { sql in
                let row = try await sql.raw("SELECT COALESCE(MAX(experiment_id), 0) + 1 AS next FROM experiments").first()
                let id = try row?.decode(column: "next", as: Int64.self) ?? 1
                let location = (artifactLocation?.isEmpty == false) ? artifactLocation! : root.experimentLocation(id)
                try await sql.raw("""
                    INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
                    VALUES (\(bind: id), \(bind: name), \(bind: location), 'active', \(bind: now), \(bind: now))
                    """).run()
                for tag in tags {
                    try await sql.raw("""
                        INSERT INTO experiment_tags (experiment_id, key, value) VALUES (\(bind: id), \(bind: tag.key), \(bind: tag.value))
                        ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value
                        """).run()
                }
                return String(id)
            }
        } catch let error as KilnError where error.code == .resourceAlreadyExists {
            throw KilnError.alreadyExists("Experiment(name=\(name)) already exists.")
        }
    }

    /// Fetches an experiment by id, deleted or not.
    public func getExperiment(id: String) async throws -> Experiment {
        let numeric = try Validate.experimentID(id)
        return try await db.read { sql in
            guard let experiment = try await Self.loadExperiments(sql, where: "experiment_id = \(bind: numeric)").first else {
                throw KilnError.notFound("No Experiment with id=\(id) exists")
            }
            return experiment
        }
    }

    /// Fetches an experiment by name, deleted or not.
    public func getExperiment(name: String) async throws -> Experiment {
        try await db.read { sql in
            guard let experiment = try await Self.loadExperiments(sql, where: "name = \(bind: name)").first else {
                throw KilnError.notFound("Could not find experiment with name '\(name)'")
            }
            return experiment
        }
    }

    static func loadExperiments(_ sql: any SQLDatabase, where condition: SQLQueryString, suffix: SQLQueryString = "") async throws -> [Experiment] {
        let rows = try await sql.raw("""
            SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time
            FROM experiments WHERE \(condition) \(suffix)
            """ as SQLQueryString).all()
        var experiments = try rows.map { row in
            Experiment(
                id: String(try row.decode(column: "experiment_id", as: Int64.self)),
                name: try row.decode(column: "name", as: String.self),
                artifactLocation: try row.decode(column: "artifact_location", as: String.self),
                lifecycleStage: LifecycleStage(rawValue: try row.decode(column: "lifecycle_stage", as: String.self)) ?? .active,
                creationTime: try row.decode(column: "creation_time", as: Int64.self),
                lastUpdateTime: try row.decode(column: "last_update_time", as: Int64.self),
                tags: []
            )
        }
        guard !experiments.isEmpty else { return [] }
        let ids = experiments.compactMap { Int64($0.id) }
        let tagRows = try await sql.raw("SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN (\(binds: ids)) ORDER BY key").all()
        var tags: [String: [KeyValue]] = [:]
        for row in tagRows {
            let id = String(try row.decode(column: "experiment_id", as: Int64.self))
            tags[id, default: []].append(KeyValue(try row.decode(column: "key", as: String.self), try row.decode(column: "value", as: String.self)))
        }
        for i in experiments.indices { experiments[i].tags = tags[experiments[i].id] ?? [] }
        return experiments
    }

    /// Renames an active experiment.
    public func renameExperiment(id: String, newName: String) async throws {
        try Validate.experimentName(newName)
        let numeric = try Validate.experimentID(id)
        let now = clock.nowMillis()
        do {
            try await db.write { sql in
                let experiment = try await Self.requireExperiment(sql, numeric, id)
                guard experiment.lifecycleStage == .active else {
                    throw KilnError.invalid("Cannot rename a non-active experiment.")
                }
                try await sql.raw("UPDATE experiments SET name = \(bind: newName), last_update_time = \(bind: now) WHERE experiment_id = \(bind: numeric)").run()
            }
        } catch let error as KilnError where error.code == .resourceAlreadyExists {
            throw KilnError.alreadyExists("Experiment(name=\(newName)) already exists.")
        }
    }

    static func requireExperiment(_ sql: any SQLDatabase, _ numeric: Int64, _ id: String) async throws -> Experiment {
        guard let experiment = try await loadExperiments(sql, where: "experiment_id = \(bind: numeric)").first else {
            throw KilnError.notFound("No Experiment with id=\(id) exists")
        }
        return experiment
    }

    /// Soft-deletes an experiment and its runs; ``restoreExperiment(id:)`` undoes it.
    public func deleteExperiment(id: String) async throws {
        try await setExperimentStage(id: id, to: .deleted)
    }

    /// Restores a deleted experiment and the runs deleted with it.
    public func restoreExperiment(id: String) async throws {
        try await setExperimentStage(id: id, to: .active)
    }

    private func setExperimentStage(id: String, to stage: LifecycleStage) async throws {
        let numeric = try Validate.experimentID(id)
        let now = clock.nowMillis()
        try await db.write { sql in
            let experiment = try await Self.requireExperiment(sql, numeric, id)
            if stage == .active, experiment.lifecycleStage == .active {
                throw KilnError.invalid("Cannot restore an active experiment.")
            }
            if stage == .deleted, experiment.lifecycleStage == .deleted {
                throw KilnError.invalid("Cannot delete an already deleted experiment.")
            }
            try await sql.raw("UPDATE experiments SET lifecycle_stage = \(bind: stage.rawValue), last_update_time = \(bind: now) WHERE experiment_id = \(bind: numeric)").run()
            if stage == .deleted {
                try await sql.raw("UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = \(bind: now) WHERE experiment_id = \(bind: numeric) AND lifecycle_stage = 'active'").run()
            } else {
                try await sql.raw("UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL WHERE experiment_id = \(bind: numeric) AND deleted_time = \(bind: experiment.lastUpdateTime)").run()
            }
        }
    }

    /// Sets (or replaces) a tag on an experiment.
    public func setExperimentTag(id: String, key: String, value: String) async throws {
        try Validate.key(key, kind: "tag")
        try Validate.experimentTagValue(value, key: key)
        let numeric = try Validate.experimentID(id)
        try await db.write { sql in
            let experiment = try await Self.requireExperiment(sql, numeric, id)
            guard experiment.lifecycleStage == .active else {
                throw KilnError.invalid("The experiment \(id) must be in the 'active' state. Current state is deleted.")
            }
            try await sql.raw("""
                INSERT INTO experiment_tags (experiment_id, key, value) VALUES (\(bind: numeric), \(bind: key), \(bind: value))
                ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value
                """).run()
        }
    }

    /// Deletes a tag from an experiment.
    /// - Throws: `RESOURCE_DOES_NOT_EXIST` when the experiment has no such tag.
    public func deleteExperimentTag(id: String, key: String) async throws {
        let numeric = try Validate.experimentID(id)
        try await db.write { sql in
            let experiment = try await Self.requireExperiment(sql, numeric, id)
            guard experiment.tags.contains(where: { $0.key == key }) else {
                throw KilnError.notFound("No tag with name: \(key) in experiment with id \(id)")
            }
            try await sql.raw("DELETE FROM experiment_tags WHERE experiment_id = \(bind: numeric) AND key = \(bind: key)").run()
        }
    }
}

extension TrackingService {
    /// The experiment a run, or a logged model, is in; nil when there is no such run or model. Cheap: one keyed read.
    public func experimentID(ofRun id: String) async throws -> String? {
        try await db.read { sql in
            try await sql.raw("SELECT experiment_id FROM runs WHERE run_uuid = \(bind: id)").first()
                .map { String(try $0.decode(column: "experiment_id", as: Int64.self)) }
        }
    }

    /// The experiment a logged model belongs to; nil when there is none with that id.
    public func experimentID(ofLoggedModel id: String) async throws -> String? {
        try await db.read { sql in
            try await sql.raw("SELECT experiment_id FROM logged_models WHERE model_id = \(bind: id)").first()
                .map { String(try $0.decode(column: "experiment_id", as: Int64.self)) }
        }
    }

    /// The id of the experiment with this name (any lifecycle stage); nil when there is none.
    public func experimentID(named name: String) async throws -> String? {
        try await db.read { sql in
            try await sql.raw("SELECT experiment_id FROM experiments WHERE name = \(bind: name)").first()
                .map { String(try $0.decode(column: "experiment_id", as: Int64.self)) }
        }
    }
}
