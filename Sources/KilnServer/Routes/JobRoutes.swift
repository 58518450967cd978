import Foundation
import Hummingbird
import KilnCore
import KilnJobs
import KilnPermissions
import KilnPlatform

/// Jobs API 2.1 and 2.2 definitions, as databricks-sdk `w.jobs` calls them: create, get, list (paged), update,
/// reset, delete. Bad definitions (cycles, unknown dependencies, bad cron) are 400s and store nothing.
struct JobRoutes: Sendable {
    let jobs: JobsService
    let runs: JobRunner
    let permissions: WorkspacePermissions

    func register(on router: Router<KilnRequestContext>) {
        MessageRoute.register([
            MessageRoute(.post, "jobs/create", create),
            MessageRoute(.get, "jobs/get", get),
            MessageRoute(.get, "jobs/list", list),
            MessageRoute(.post, "jobs/reset", reset),
            MessageRoute(.post, "jobs/update", update),
            MessageRoute(.post, "jobs/delete", delete),
        ], prefixes: ["/api/2.1/", "/api/2.2/"], on: router)
    }

    func create(_ m: RequestMessage) async throws -> Response {
        try Self.checkRunAs(m.fields, m.caller)
        let id = try await jobs.create(settings: m.fields, creator: m.principal)
        try await permissions.recordCreated(.jobs, String(id), by: m.caller)
        return .json { w in w.field("job_id", id) }
    }

    func get(_ m: RequestMessage) async throws -> Response {
        let job = try await jobs.get(id: try Self.jobID(m))
        return .json { Self.write(job, &$0) }
    }

    func list(_ m: RequestMessage) async throws -> Response {
        let limit = Int(try m.int64("limit") ?? 20)
        let offset = try m.string("page_token").map { token -> Int in
            guard let n = Int(token) else { throw KilnError.invalid("page_token '\(token)' is not one this server gave") }
            return n
        } ?? Int(try m.int64("offset") ?? 0)
        let visible = try await permissions.visibleIDs(m.caller, .jobs).map { Set($0.compactMap { Int64($0) }) }
        let (page, hasMore) = try await jobs.list(limit: limit, offset: offset, name: try m.string("name"), only: visible)
        return .json { w in
            w.key("jobs")
            w.array { w in for job in page { w.object { Self.write(job, &$0) } } }
            w.field("has_more", hasMore)
            if hasMore { w.field("next_page_token", String(offset + page.count)) }
        }
    }

    func reset(_ m: RequestMessage) async throws -> Response {
        guard case .object(let settings)? = m.fields["new_settings"] else { throw KilnError.invalid("Missing new_settings") }
        try Self.checkRunAs(settings, m.caller)
        try await jobs.reset(id: try Self.jobID(m), settings: settings)
        return .json { _ in }
    }

    func update(_ m: RequestMessage) async throws -> Response {
        var settings: [String: JSONValue] = [:]
        if case .object(let given)? = m.fields["new_settings"] { settings = given }
        let remove = m.fields["fields_to_remove"] == nil ? [] : try m.strings("fields_to_remove")
        try Self.checkRunAs(settings, m.caller)
        try await jobs.update(id: try Self.jobID(m), newSettings: settings, fieldsToRemove: remove)
        return .json { _ in }
    }

    func delete(_ m: RequestMessage) async throws -> Response {
        try await runs.cancelAll(jobID: try Self.jobID(m))
        try await jobs.delete(id: try Self.jobID(m))
        try await permissions.forget(.jobs, String(try Self.jobID(m)))
        return .json { _ in }
    }

    /// A job may run as its creator; only admins may make it run as someone else (a user or service principal).
    /// - Throws: `PERMISSION_DENIED`.
    static func checkRunAs(_ settings: [String: JSONValue], _ caller: Caller?) throws {
        guard let caller, !caller.isAdmin, case .object(let runAs)? = settings["run_as"] else { return }
        for key in ["user_name", "service_principal_name"] {
            if case .string(let name)? = runAs[key], !name.isEmpty, name.lowercased() != caller.name.lowercased() {
                throw KilnError(.permissionDenied, "\(caller.name) may not make a job run as \(name): only workspace admins may; leave out run_as to run as yourself")
            }
        }
    }

    static func jobID(_ m: RequestMessage) throws -> Int64 {
        guard let id = try m.int64("job_id") else { throw KilnError.invalid("Missing job_id") }
        return id
    }

    static func write(_ job: Job, _ w: inout JSONWriter) {
        w.field("job_id", job.jobID)
        w.field("creator_user_name", job.creator)
        w.field("created_time", job.createdTime)
        w.key("settings")
        w.raw(JSONValue.object(job.settings).json)
    }
}
