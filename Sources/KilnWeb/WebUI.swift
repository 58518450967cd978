import Foundation
import HTTPTypes
import Hummingbird
import KilnBlob
import KilnCore
import KilnJobs
import KilnPermissions
import KilnRegistry
import KilnSQL
import KilnServing
import KilnTracking

/// Kiln's web UI: server-rendered pages under `/ui/`, a sign-in that turns an access token into a session cookie,
/// and `/` answering the links the mlflow client prints (`/#/experiments/1/runs/abc`). Pages read through the
/// same services as the API, as the signed-in principal.
public struct WebUI: Sendable {
    let tracking: TrackingService
    let registry: RegistryService
    let artifacts: any BlobStore
    let jobs: JobsService
    let runner: JobRunner
    let statements: StatementService
    let serving: ServingService
    let sessions: WebSessions
    let preferences: WebPreferences
    /// Who a token belongs to, or nil when it is not valid.
    let authenticate: @Sendable (String) async -> Caller?
    /// Who a signed-in caller is now (groups may have changed), nil when disabled or gone.
    let refresh: @Sendable (Caller) async -> Caller?
    /// False for `kiln server --no-auth` (loopback only): every page is served as `admin`, nobody signs in.
    let authEnabled: Bool
    /// Who may see what: pages show and do only what the API would let the signed-in user (nil: everything).
    let permissions: WorkspacePermissions?
    /// How Unity Catalog decides models with three-part names (nil: by workspace levels like any model).
    let ucModels: UCModelAccess?
    /// Who reads a table's features (the feature store's lineage), for the table pages; nil: not shown.
    public var tableUsers: TableUsers?

    public init(tracking: TrackingService, registry: RegistryService, artifacts: any BlobStore, jobs: JobsService, runner: JobRunner,
                statements: StatementService, serving: ServingService, preferences: WebPreferences, sessions: WebSessions = WebSessions(), authEnabled: Bool,
                permissions: WorkspacePermissions? = nil, ucModels: UCModelAccess? = nil, refresh: @escaping @Sendable (Caller) async -> Caller? = { $0 }, authenticate: @escaping @Sendable (String) async -> Caller?) {
        self.refresh = refresh
        self.statements = statements
        self.serving = serving
        self.tracking = tracking
        self.registry = registry
        self.artifacts = artifacts
        self.jobs = jobs
        self.runner = runner
        self.sessions = sessions
        self.preferences = preferences
        self.authEnabled = authEnabled
        self.authenticate = authenticate
        self.permissions = permissions
        self.ucModels = ucModels
    }

    /// - Throws: `PERMISSION_DENIED` (a 403 page) when the session's user lacks `level` on the object. A model in
    /// Unity Catalog is decided by its grants (reading by `EXECUTE`, anything more by ownership or `MANAGE`).
    func require(_ session: WebSession, _ level: String, _ kind: ObjectKind, _ id: String?) async throws {
        guard let permissions, let id else { return }
        if kind == .registeredModels, let ucModels, let allowed = try await ucModels.allows(session.caller, level != "CAN_READ", id) {
            guard allowed else {
                throw KilnError(.permissionDenied, "\(session.caller.name) may not \(level == "CAN_READ" ? "see" : "change") model \(id): in Unity Catalog that takes \(level == "CAN_READ" ? "EXECUTE (with USE CATALOG and USE SCHEMA)" : "ownership or MANAGE")")
            }
            return
        }
        try await permissions.require(session.caller, level, kind, id)
    }

    /// Who has which level on an object (with the admins, who hold every level), and where to change it. A model in
    /// Unity Catalog points to its grants instead.
    func accessPanel(_ kind: ObjectKind, _ id: String) async -> String {
        if kind == .registeredModels, let ucModels, (try? await ucModels.allows(Caller(id: nil, name: "admin", groups: [Caller.adminsGroup]), false, id)) != nil {
            return "<section data-testid=\"access\"><h2>Access</h2><p class=\"meta\">A model in Unity Catalog: its grants decide (<code>EXECUTE</code> "
                + "to read and load, ownership or <code>MANAGE</code> to change). See them with <code>SHOW GRANTS ON MODEL \(HTML.escape(id))</code> or "
                + "<code>GET /api/2.1/unity-catalog/permissions/function/\(HTML.escape(id))</code>.</p></section>"
        }
        guard let permissions, let entries = try? await permissions.entries(kind, id) else { return "" }
        let items = entries.map { e in
            "<li data-testid=\"permission\"><span>\(HTML.escape(e.principal))</span> · <code>\(HTML.escape(e.level))</code>\(e.type == .group ? " (group)" : "")</li>"
        }.joined() + "<li data-testid=\"permission\"><span>admins</span> · <code>\(HTML.escape(kind.levels.last!))</code> (workspace admins)</li>"
        return "<section data-testid=\"access\"><h2>Access</h2><ul>\(items)</ul><p class=\"meta\">Share with <code>PATCH /api/2.0/permissions/"
            + "\(HTML.escape(kind.rawValue))/\(HTML.escape(id))</code> (databricks-sdk: <code>*_permissions</code>).</p></section>"
    }

    /// The ids of the objects of `kind` the session's user may see; nil: all. Models in Unity Catalog by its grants.
    func visible(_ session: WebSession, _ kind: ObjectKind) async throws -> Set<String>? {
        guard let permissions else { return nil }
        if kind == .registeredModels, let ucModels { return try await ucModels.visible(session.caller) }
        return try await permissions.visibleIDs(session.caller, kind)
    }

    /// Who a request's session cookie signs in (the admin without authentication), nil when it has none: for the
    /// audit log, which records the UI's changes like the API's.
    public func caller(of request: Request) async -> Caller? {
        guard authEnabled else { return Caller(id: nil, name: "admin", groups: [Caller.adminsGroup]) }
        guard let id = request.cookies[Self.sessionCookie]?.value else { return nil }
        return await liveSession(id)?.caller
    }

    /// Paths the UI owns (the API's bearer-token check leaves them to the UI's sessions).
    public static func owns(_ path: String) -> Bool {
        path == "/" || path == "/favicon.ico" || path == "/ui" || path.hasPrefix("/ui/")
    }

    static let sessionCookie = "kiln_session"
    static let loginCookie = "kiln_login"

    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/") { _, _ in Self.html(Self.hashRouter) }
        router.get("/ui") { _, _ in Self.redirect("/ui/experiments") }
        router.get("/favicon.ico") { _, _ in
            Response(status: .ok, headers: [.contentType: "image/svg+xml", .cacheControl: "max-age=86400"],
                     body: .init(byteBuffer: ByteBuffer(string: WebAssets.favicon)))
        }
        router.get("/ui/static/kiln.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=3600"],
                     body: .init(byteBuffer: ByteBuffer(string: WebAssets.css)))
        }
        router.get("/ui/static/runs.js") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "max-age=3600"],
                     body: .init(byteBuffer: ByteBuffer(string: WebAssets.runsTable)))
        }
        router.get("/ui/static/route.js") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "max-age=3600"],
                     body: .init(byteBuffer: ByteBuffer(string: WebAssets.hashRoutes)))
        }
        router.get("/ui/login") { request, _ in try await loginPage(request, error: nil) }
        router.post("/ui/login") { request, context in try await login(request, context: context) }
        router.post("/ui/logout") { request, context in try await logout(request, context: context) }
        router.get("/ui/experiments") { request, _ in
            try await signedIn(request) { session in
                try await ExperimentPages(tracking: tracking).list(request, session: session, only: try await visible(session, .experiments))
            }
        }
        router.get("/ui/experiments/{id}") { request, context in
            let id = try Self.parameter(context, "id")
            return try await signedIn(request) { session in
                try await require(session, "CAN_READ", .experiments, id)
                return try await RunsTable(tracking: tracking, preferences: preferences).render(request, experimentID: id, session: session,
                                                                                                 access: await accessPanel(.experiments, id))
            }
        }
        router.post("/ui/experiments/{id}/columns") { request, context in
            let id = try Self.parameter(context, "id")
            return try await signedInForm(request, context: context) { session, form in
                try await require(session, "CAN_READ", .experiments, id)
                return try await RunsTable(tracking: tracking, preferences: preferences).saveColumns(experimentID: id, form: form, session: session)
            }
        }
        registerModelPages(on: router)
        registerJobPages(on: router)
        registerDataPages(on: router)
        registerEndpointPages(on: router)
        registerSearch(on: router)
        router.get("/ui/experiments/{id}/compare") { request, context in
            let id = try Self.parameter(context, "id")
            return try await signedIn(request) { session in
                try await require(session, "CAN_READ", .experiments, id)
                for run in formValues(Substring(request.uri.query ?? ""), "runs") { try await requireRun(session, run) }
                return try await ComparePage(tracking: tracking).render(request, experimentID: id, session: session)
            }
        }
        router.get("/ui/experiments/{id}/runs/{run}") { request, context in
            let id = try Self.parameter(context, "id"), run = try Self.parameter(context, "run")
            return try await signedIn(request) { session in
                try await requireRun(session, run)
                return try await RunPage(tracking: tracking).render(experimentID: id, runID: run, session: session,
                                                             query: formFields(Substring(request.uri.query ?? "")))
            }
        }
    }

    func registerModelPages<Context: RequestContext>(on router: Router<Context>) {
        router.get("/ui/models") { request, _ in
            try await signedIn(request) { session in
                try await ModelPages(registry: registry).list(request, session: session, only: try await visible(session, .registeredModels))
            }
        }
        router.get("/ui/models/{name}") { request, context in
            let name = try Self.parameter(context, "name")
            return try await signedIn(request) { session in
                try await require(session, "CAN_READ", .registeredModels, name)
                return try await ModelPages(registry: registry).model(name: name, session: session, access: await accessPanel(.registeredModels, name))
            }
        }
        router.get("/ui/models/{name}/versions/{version}") { request, context in
            let name = try Self.parameter(context, "name"), version = try Self.parameter(context, "version")
            return try await signedIn(request) { session in
                try await require(session, "CAN_READ", .registeredModels, name)
                return try await ModelPages(registry: registry).version(name: name, version: version, session: session)
            }
        }
        router.get("/ui/experiments/{id}/runs/{run}/artifacts") { request, context in
            let run = try Self.parameter(context, "run")
            return try await signedIn(request) { session in
                try await requireRun(session, run)
                return try await ArtifactPages(tracking: tracking, artifacts: artifacts).page(request, runID: run, session: session)
            }
        }
        router.get("/ui/experiments/{id}/runs/{run}/artifacts/raw") { request, context in
            let run = try Self.parameter(context, "run")
            return try await signedIn(request) { session in
                try await requireRun(session, run)
                return try await ArtifactPages(tracking: tracking, artifacts: artifacts).raw(request, runID: run)
            }
        }
        router.post("/ui/models/{name}/versions/{version}/actions") { request, context in
            let name = try Self.parameter(context, "name"), version = try Self.parameter(context, "version")
            return try await signedInForm(request, context: context) { session, form in
                try await requireModelAction(session, name: name, version: version, form: form)
                return try await ModelPages(registry: registry).act(name: name, version: version, form: form, session: session)
            }
        }
        // A run by id alone (a model version knows its run, not the run's experiment).
        router.get("/ui/runs/{run}") { request, context in
            let run = try Self.parameter(context, "run")
            return try await signedIn(request) { session in
                try await requireRun(session, run)
                let info = try await tracking.getRun(id: run).info
                return Self.redirect("/ui/experiments/\(HTML.segment(info.experimentID))/runs/\(HTML.segment(run))")
            }
        }
    }

    func registerJobPages<Context: RequestContext>(on router: Router<Context>) {
        let pages = JobPages(jobs: jobs, runner: runner)
        router.get("/ui/jobs") { request, _ in
            try await signedIn(request) { session in
                try await pages.list(session: session, only: try await visible(session, .jobs).map { Set($0.compactMap { Int64($0) }) })
            }
        }
        router.get("/ui/jobs/{job}") { request, context in
            let job = try Self.number(context, "job")
            return try await signedIn(request) { session in
                try await requireJob(session, "CAN_VIEW", job)
                return try await pages.job(id: job, session: session)
            }
        }
        // A run page, repair and run-now check the job; the pages refuse a run that is not the job's.
        router.get("/ui/jobs/{job}/runs/{run}") { request, context in
            let job = try Self.number(context, "job"), run = try Self.number(context, "run")
            return try await signedIn(request) { session in
                try await requireJob(session, "CAN_VIEW", job)
                return try await pages.run(jobID: job, runID: run, session: session)
            }
        }
        router.post("/ui/jobs/{job}/runs/{run}/repair") { request, context in
            let job = try Self.number(context, "job"), run = try Self.number(context, "run")
            return try await signedInForm(request, context: context) { session, _ in
                try await requireJob(session, "CAN_MANAGE_RUN", job)
                return try await pages.repair(jobID: job, runID: run)
            }
        }
        router.post("/ui/jobs/{job}/run-now") { request, context in
            let job = try Self.number(context, "job")
            return try await signedInForm(request, context: context) { session, form in
                try await requireJob(session, "CAN_MANAGE_RUN", job)
                return try await pages.runNow(jobID: job, form: form, session: session)
            }
        }
    }

    func registerDataPages<Context: RequestContext>(on router: Router<Context>) {
        let pages = DataPages(statements: statements, sessions: sessions, users: tableUsers)
        router.get("/ui/data") { request, _ in try await signedIn(request) { session in try await pages.catalogs(session: session) } }
        router.get("/ui/data/{catalog}") { request, context in
            let catalog = try Self.parameter(context, "catalog")
            return try await signedIn(request) { session in try await pages.schemas(catalog: catalog, session: session) }
        }
        router.get("/ui/data/{catalog}/{schema}") { request, context in
            let catalog = try Self.parameter(context, "catalog"), schema = try Self.parameter(context, "schema")
            return try await signedIn(request) { session in try await pages.tables(catalog: catalog, schema: schema, session: session) }
        }
        router.get("/ui/data/{catalog}/{schema}/{table}") { request, context in
            let catalog = try Self.parameter(context, "catalog"), schema = try Self.parameter(context, "schema"), table = try Self.parameter(context, "table")
            return try await signedIn(request) { session in try await pages.table(request, catalog: catalog, schema: schema, table: table, session: session) }
        }
        router.get("/ui/volumes/{catalog}/{schema}/{volume}") { request, context in
            let catalog = try Self.parameter(context, "catalog"), schema = try Self.parameter(context, "schema"), volume = try Self.parameter(context, "volume")
            let folder = request.uri.queryParameters.get("path").map { String($0) } ?? ""
            return try await signedIn(request) { session in
                try await pages.volume(catalog: catalog, schema: schema, volume: volume, folder: folder, session: session)
            }
        }
        router.get("/ui/sql") { request, _ in
            try await signedIn(request) { session in await pages.editor(session: session, sessionID: request.cookies[Self.sessionCookie]?.value) }
        }
        router.get("/ui/sql/results/{id}") { request, context in
            let id = try Self.parameter(context, "id")
            let page = formFields(Substring(request.uri.query ?? ""))["page"].flatMap { Int($0) } ?? 0
            return try await signedIn(request) { session in
                try await pages.result(id: id, page: page, session: session, sessionID: request.cookies[Self.sessionCookie]?.value)
            }
        }
        router.post("/ui/sql") { request, context in
            try await signedInForm(request, context: context) { session, form in
                await pages.run(statement: form["statement"] ?? "", session: session, sessionID: request.cookies[Self.sessionCookie]?.value)
            }
        }
    }

    func registerEndpointPages<Context: RequestContext>(on router: Router<Context>) {
        let pages = EndpointPages(serving: serving)
        router.get("/ui/endpoints") { request, _ in
            try await signedIn(request) { session in try await pages.list(session: session, only: try await visible(session, .servingEndpoints)) }
        }
        router.get("/ui/endpoints/{name}") { request, context in
            let name = try Self.parameter(context, "name")
            return try await signedIn(request) { session in
                try await requireEndpoint(session, "CAN_VIEW", name)
                return try await pages.endpoint(name: name, session: session)
            }
        }
        router.post("/ui/endpoints/{name}/query") { request, context in
            let name = try Self.parameter(context, "name")
            return try await signedInForm(request, context: context) { session, form in
                try await requireEndpoint(session, "CAN_QUERY", name)
                return try await pages.query(name: name, body: form["body"] ?? "", session: session)
            }
        }
    }

    func registerSearch<Context: RequestContext>(on router: Router<Context>) {
        let page = SearchPage(tracking: tracking, registry: registry, jobs: jobs, serving: serving, data: DataPages(statements: statements, sessions: sessions))
        router.get("/ui/search") { request, _ in
            try await signedIn(request) { session in
                try await page.render(request, session: session, visible: [
                    .experiments: try await visible(session, .experiments), .registeredModels: try await visible(session, .registeredModels),
                    .jobs: try await visible(session, .jobs), .servingEndpoints: try await visible(session, .servingEndpoints),
                ])
            }
        }
    }

    // MARK: Checks (the API's rules, docs/permissions.md)

    /// A run's page needs `CAN_READ` on the run's own experiment (whatever experiment the URL names).
    func requireRun(_ session: WebSession, _ run: String) async throws {
        guard permissions != nil, let experiment = try await tracking.experimentID(ofRun: run) else { return }
        try await require(session, "CAN_READ", .experiments, experiment)
    }

    func requireJob(_ session: WebSession, _ level: String, _ job: Int64) async throws {
        guard (try? await jobs.get(id: job)) != nil else { return }  // the page's 404
        try await require(session, level, .jobs, String(job))
    }

    func requireEndpoint(_ session: WebSession, _ level: String, _ name: String) async throws {
        guard (try? await serving.get(name: name)) != nil else { return }
        try await require(session, level, .servingEndpoints, name)
    }

    /// A version's buttons: transitions and approvals need the stage's level (Production or Archived, old or new:
    /// `CAN_MANAGE_PRODUCTION_VERSIONS`; else `CAN_MANAGE_STAGING_VERSIONS`); requests and comments `CAN_READ`.
    func requireModelAction(_ session: WebSession, name: String, version: String, form: [String: String]) async throws {
        guard (try? await registry.getRegisteredModel(name: name)) != nil else { return }
        switch form["action"] {
        case "transition", "approve", "reject":
            let current = try? await registry.getModelVersion(name: name, version: version).stage.rawValue
            let production = [form["stage"], current].contains { ["production", "archived"].contains($0?.lowercased() ?? "") }
            try await require(session, production ? "CAN_MANAGE_PRODUCTION_VERSIONS" : "CAN_MANAGE_STAGING_VERSIONS", .registeredModels, name)
        default:
            try await require(session, "CAN_READ", .registeredModels, name)
        }
    }

    /// A numeric path parameter (a job or run id); anything else is a page that does not exist.
    static func number<Context: RequestContext>(_ context: Context, _ name: String) throws -> Int64 {
        guard let value = Int64(try parameter(context, name)) else { throw KilnError.notFound("No such \(name) '\(try parameter(context, name))'") }
        return value
    }

    /// A form POST from a signed-in page: refused (403) unless it carries the session's CSRF token.
    func signedInForm<Context: RequestContext>(_ request: Request, context: Context,
                                               _ action: (WebSession, [String: String]) async throws -> Response) async throws -> Response {
        let form = try await Self.form(request, context: context)
        return try await signedIn(request) { session in
            guard authEnabled else { return try await action(session, form) }
            guard let sent = form["csrf"], WebSessions.same(sent, session.csrf) else {
                return Self.html(HTML.page(title: "Refused", session: session, body: HTML.notice("The form did not carry this session's CSRF token.")),
                                 status: .forbidden)
            }
            return try await action(session, form)
        }
    }

    /// A path parameter, percent-decoded (`/ui/models/my%20model` names `my model`).
    static func parameter<Context: RequestContext>(_ context: Context, _ name: String) throws -> String {
        let raw = try context.parameters.require(name)
        return raw.removingPercentEncoding ?? raw
    }

    // MARK: Sessions

    /// The session `id` names, its user looked up again at most every 5 seconds: a user disabled or deleted since
    /// signing in loses the session, and group changes reach the pages' checks.
    func liveSession(_ id: String) async -> WebSession? {
        guard var session = await sessions.session(id) else { return nil }
        guard Date().timeIntervalSince(session.checkedAt) > 5 else { return session }
        // Gone, disabled, or another principal under the same name since: the session ends.
        guard let current = await refresh(session.caller), session.caller.id == nil || current.id == session.caller.id else {
            await sessions.end(id)
            return nil
        }
        await sessions.refreshed(id, caller: current)
        session.caller = current
        return session
    }

    /// Runs `page` for the request's session; without one, sends the browser to sign in (and back here after).
    func signedIn(_ request: Request, _ page: (WebSession) async throws -> Response) async throws -> Response {
        guard authEnabled else { return try await page(WebSession(caller: Caller(id: nil, name: "admin", groups: [Caller.adminsGroup]), csrf: "", expires: .distantFuture)) }
        guard let id = request.cookies[Self.sessionCookie]?.value, let session = await liveSession(id) else {
            let here = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
            return Self.redirect("/ui/login?next=" + HTML.query(here))
        }
        do {
            return try await page(session)
        } catch let error as KilnError where error.code == .resourceDoesNotExist {
            return Self.html(HTML.page(title: "Not found", session: session, body: HTML.notice(error.message)), status: .notFound)
        } catch let error as KilnError where error.code == .permissionDenied {
            return Self.html(HTML.page(title: "Not allowed", session: session, body: HTML.notice(error.message)), status: .forbidden)
        }
    }

    func loginPage(_ request: Request, error: String?, status: HTTPResponse.Status = .ok) async throws -> Response {
        let query = formFields(Substring(request.uri.query ?? ""))
        let next = Self.safeNext(query["next"])
        // Login CSRF: the form carries a random value that must match a cookie set with it (double submit).
        let token = WebSessions.randomToken()
        let body = """
            \(error.map { HTML.notice($0, testID: "login-error") } ?? "")
            <form method="post" action="/ui/login" class="login" data-testid="login-form">
            <input type="hidden" name="csrf" value="\(HTML.escape(token))">
            <input type="hidden" name="next" value="\(HTML.escape(next))">
            <label for="token">Access token</label>
            <input id="token" name="token" type="password" autocomplete="current-password" required autofocus data-testid="token">
            <button type="submit" data-testid="sign-in">Sign in</button>
            <p class="hint">The admin token (<code>~/.kiln/admin.token</code>, or <code>KILN_ADMIN_TOKEN</code>) or another access token.</p>
            </form>
            """
        var response = Self.html(HTML.page(title: "Sign in to Kiln", session: nil, body: body), status: status)
        response.setCookie(Cookie(name: Self.loginCookie, value: token, path: "/ui/login", httpOnly: true, sameSite: .strict))
        return response
    }

    func login<Context: RequestContext>(_ request: Request, context: Context) async throws -> Response {
        let form = try await Self.form(request, context: context)
        guard let sent = form["csrf"], let expected = request.cookies[Self.loginCookie]?.value, WebSessions.same(sent, expected) else {
            return try await loginPage(request, error: "The sign-in form expired; try again.", status: .forbidden)
        }
        let token = (form["token"] ?? "").trimmingCharacters(in: .whitespaces)
        guard !token.isEmpty, let caller = await authenticate(token) else {
            return try await loginPage(request, error: "That access token is not valid.", status: .unauthorized)
        }
        let (id, _) = await sessions.create(caller: caller)
        var response = Self.redirect(Self.safeNext(form["next"]))
        response.setCookie(Cookie(name: Self.sessionCookie, value: id, path: "/", httpOnly: true, sameSite: .lax))
        response.setCookie(Cookie(name: Self.loginCookie, value: "", maxAge: 0, path: "/ui/login", httpOnly: true, sameSite: .strict))
        return response
    }

    func logout<Context: RequestContext>(_ request: Request, context: Context) async throws -> Response {
        let form = try await Self.form(request, context: context)
        guard let id = request.cookies[Self.sessionCookie]?.value, let session = await sessions.session(id) else {
            return Self.redirect("/ui/login")
        }
        guard let sent = form["csrf"], WebSessions.same(sent, session.csrf) else {
            return Self.html(HTML.page(title: "Refused", session: session, body: HTML.notice("The form did not carry this session's CSRF token.")),
                             status: .forbidden)
        }
        await sessions.end(id)
        var response = Self.redirect("/ui/login")
        response.setCookie(Cookie(name: Self.sessionCookie, value: "", maxAge: 0, path: "/", httpOnly: true, sameSite: .lax))
        return response
    }

    /// Where to go after signing in: a path on this server (never another site), else the experiments.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.contains("\\") else { return "/ui/experiments" }
        return next
    }

    static func form<Context: RequestContext>(_ request: Request, context: Context) async throws -> [String: String] {
        let body = try await request.body.collect(upTo: 64 * 1024)
        return formFields(Substring(String(buffer: body)))
    }

    // MARK: Responses

    /// Pages may load only this server's styles, scripts and images; nothing may frame them.
    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        .xContentTypeOptions: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "same-origin",
        .cacheControl: "no-store",
    ]

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ location: String) -> Response {
        var headers = securityHeaders
        headers[.location] = location
        return Response(status: .seeOther, headers: headers)
    }

    /// `/`: turns the mlflow client's links (`#/experiments/ID[/runs/RUN]`, `#/models/NAME[/versions/N]`) into
    /// page paths.
    static let hashRouter = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Kiln</title>
        <link rel="icon" href="/favicon.ico" type="image/svg+xml">
        <link rel="stylesheet" href="/ui/static/kiln.css">
        <script src="/ui/static/route.js"></script></head>
        <body><main><h1>Kiln</h1><p><a href="/ui/experiments">Experiments</a></p></main></body></html>
        """
}
