import Foundation
import Hummingbird
import KilnCore
import KilnRegistry

/// The model registry: the model list, a model (aliases, tags, every version) and a version (stage, aliases,
/// source run, where its files are, tags, open transition requests, stage changes, requests and comments).
struct ModelPages: Sendable {
    let registry: RegistryService
    static let pageSize = 100

    /// `/ui/models?q=TEXT&page=TOKEN`: models whose name contains TEXT.
    func list(_ request: Request, session: WebSession, only visible: Set<String>? = nil) async throws -> Response {
        let query = formFields(Substring(request.uri.query ?? ""))
        let text = query["q"] ?? ""
        let page = try await registry.searchRegisteredModels(filter: ExperimentPages.nameFilter(text), orderBy: ["name ASC"],
                                                             maxResults: Self.pageSize, pageToken: query["page"].flatMap { $0.isEmpty ? nil : $0 },
                                                             only: visible)
        var rows = ""
        for model in page.items {
            let latest = model.latestVersions.sorted { $0.version > $1.version }.map { "v\($0.version) \($0.stage.rawValue)" }.joined(separator: ", ")
            let aliases = model.aliases.map { "@\($0.alias) → v\($0.version)" }.joined(separator: ", ")
            rows += """
                <tr data-testid="model-row"><td><a href="/ui/models/\(HTML.segment(model.name))">\(HTML.escape(model.name))</a></td>
                <td>\(HTML.escape(latest))</td><td>\(HTML.escape(aliases))</td><td>\(HTML.time(model.lastUpdatedTime))</td></tr>
                """
        }
        let next = page.nextPageToken.map {
            "<a class=\"next\" data-testid=\"next-page\" href=\"/ui/models?q=\(HTML.query(text))&amp;page=\(HTML.query($0))\">Next page</a>"
        } ?? ""
        let body = """
            <form method="get" action="/ui/models" class="search"><label for="q">Name contains</label>
            <input id="q" name="q" value="\(HTML.escape(text))" data-testid="model-search"><button type="submit">Search</button></form>
            <table data-testid="models"><thead><tr><th>Name</th><th>Latest versions</th><th>Aliases</th><th>Last updated</th></tr></thead>
            <tbody>\(rows.isEmpty ? "<tr><td colspan=\"4\">No registered models match.</td></tr>" : rows)</tbody></table>
            \(next)
            """
        return WebUI.html(HTML.page(title: "Models", session: session, body: body))
    }

    /// `/ui/models/NAME`: description, aliases, tags and every version, newest first.
    /// - Parameter access: the model's access panel (HTML), shown under the versions.
    func model(name: String, session: WebSession, access: String = "") async throws -> Response {
        let model = try await registry.getRegisteredModel(name: name)
        let versions = try await registry.searchModelVersions(filter: "name = \(ExperimentPages.literal(name))",
                                                              orderBy: ["version_number DESC"], maxResults: 1000).items
        func versionLink(_ v: Int64) -> String { "<a href=\"/ui/models/\(HTML.segment(name))/versions/\(v)\">Version \(v)</a>" }
        var rows = ""
        for v in versions {
            rows += """
                <tr data-testid="version-row" data-version="\(v.version)"><td>\(versionLink(v.version))</td>
                <td><span class="stage">\(v.stage.rawValue)</span></td><td>\(HTML.escape(v.aliases.map { "@" + $0 }.joined(separator: " ")))</td>
                <td>\(HTML.time(v.creationTime))</td><td>\(v.runID.map { "<a href=\"/ui/runs/\(HTML.segment($0))\">\(HTML.escape($0))</a>" } ?? "")</td></tr>
                """
        }
        let aliases = model.aliases.map { "<li data-testid=\"alias\">@\(HTML.escape($0.alias)) → \(versionLink($0.version))</li>" }.joined()
        let body = """
            \(model.description.map { "<p data-testid=\"description\">\(HTML.escape($0))</p>" } ?? "")
            \(aliases.isEmpty ? "" : "<section><h2>Aliases</h2><ul>\(aliases)</ul></section>")
            \(Self.tags(model.tags))
            <section><h2>Versions</h2><table data-testid="versions"><thead><tr><th>Version</th><th>Stage</th><th>Aliases</th><th>Registered</th><th>Source run</th></tr></thead>
            <tbody>\(rows.isEmpty ? "<tr><td colspan=\"5\">No versions yet.</td></tr>" : rows)</tbody></table></section>
            \(access)
            """
        return WebUI.html(HTML.page(title: model.name, session: session, body: body))
    }

    /// `/ui/models/NAME/versions/N`.
    func version(name: String, version: String, session: WebSession, notice: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        let lineage = try await registry.lineage(name: name, version: version)
        let v = lineage.version
        let requests = try await registry.transitionRequests(name: name, version: version)
        let activities = lineage.activities
        let hooks = try await registry.listWebhooks(modelName: name, events: [])
        var overview = """
            <tr><th>Model</th><td><a href="/ui/models/\(HTML.segment(name))">\(HTML.escape(name))</a></td></tr>
            <tr><th>Stage</th><td data-testid="stage">\(v.stage.rawValue)</td></tr>
            <tr><th>Aliases</th><td data-testid="aliases">\(HTML.escape(v.aliases.map { "@" + $0 }.joined(separator: " ")))</td></tr>
            <tr><th>Registered</th><td>\(HTML.time(v.creationTime))</td></tr>
            <tr><th>Source</th><td><code>\(HTML.escape(v.source))</code></td></tr>
            <tr><th>Files</th><td><code>\(HTML.escape(v.storageLocation))</code></td></tr>
            """
        if let runID = v.runID {
            overview += "<tr><th>Source run</th><td data-testid=\"source-run\"><a href=\"/ui/runs/\(HTML.segment(runID))\">\(HTML.escape(runID))</a></td></tr>"
        }
        if let user = v.userID { overview += "<tr><th>User</th><td>\(HTML.escape(user))</td></tr>" }
        let action = "/ui/models/\(HTML.segment(name))/versions/\(v.version)/actions"
        let csrf = "<input type=\"hidden\" name=\"csrf\" value=\"\(HTML.escape(session.csrf))\">"
        let pending = requests.map { r -> String in
            let form = { (verb: String, label: String) in
                "<form method=\"post\" action=\"\(action)\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"\(HTML.escape(session.csrf))\">"
                    + "<input type=\"hidden\" name=\"stage\" value=\"\(HTML.escape(r.toStage))\"><input type=\"hidden\" name=\"action\" value=\"\(verb)\">"
                    + "<button type=\"submit\" data-testid=\"\(verb)-request\">\(label)</button></form>"
            }
            return "<tr data-testid=\"transition-request\"><td>\(HTML.escape(r.toStage))</td><td>\(HTML.escape(r.userID))</td><td>\(HTML.escape(r.comment ?? ""))</td><td>\(HTML.time(r.creationTime))</td>"
                + "<td>\(form("approve", "Approve"))\(form("reject", "Reject"))</td></tr>"
        }.joined()
        let stages = ModelStage.allCases.filter { $0 != v.stage }.map { "<option>\($0.rawValue)</option>" }.joined()
        let stageForms = """
            <section><h2>Stage</h2>
            <form method="post" action="\(action)" class="search" data-testid="stage-form">\(csrf)
            <label for="to-stage">Move to</label><select id="to-stage" name="stage" data-testid="stage-select">\(stages)</select>
            <label for="stage-comment">Comment</label><input id="stage-comment" name="comment" size="30" data-testid="stage-comment">
            <label><input type="checkbox" name="archive" value="1" data-testid="archive-existing"> Archive other versions in that stage</label>
            <button type="submit" name="action" value="transition" data-testid="transition">Move now</button>
            <button type="submit" name="action" value="request" data-testid="request-transition">Request</button></form></section>
            """
        let activityRows = activities.reversed().map { a -> String in
            let what: String
            switch a.activityType {
            case "NEW_COMMENT": what = "commented"
            case "REQUESTED_TRANSITION": what = "requested \(a.fromStage ?? "?") → \(a.toStage ?? "?")"
            case "APPROVED_REQUEST": what = "approved \(a.fromStage ?? "?") → \(a.toStage ?? "?")"
            case "REJECTED_REQUEST": what = "rejected the request for \(a.toStage ?? "?")"
            case "CANCELLED_REQUEST": what = "cancelled the request for \(a.toStage ?? "?")"
            default: what = "moved \(a.fromStage ?? "?") → \(a.toStage ?? "?")"
            }
            let note = [a.comment, a.systemComment].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " · ")
            return "<tr data-testid=\"activity\" data-type=\"\(HTML.escape(a.activityType))\"><td>\(HTML.time(a.creationTime))</td><td>\(HTML.escape(a.userID ?? ""))</td>"
                + "<td>\(HTML.escape(what))</td><td>\(HTML.escape(note))</td></tr>"
        }.joined()
        let activity = """
            <section><h2>Activity and comments</h2>
            <form method="post" action="\(action)" class="search" data-testid="comment-form">\(csrf)
            <label for="comment">Comment</label><input id="comment" name="comment" size="60" data-testid="comment-text">
            <button type="submit" name="action" value="comment" data-testid="add-comment">Add comment</button></form>
            <table data-testid="activities"><thead><tr><th>When</th><th>Who</th><th>What</th><th>Comment</th></tr></thead>
            <tbody>\(activityRows.isEmpty ? "<tr><td colspan=\"4\">No activity yet.</td></tr>" : activityRows)</tbody></table></section>
            """
        // The model's signature (from its MLmodel, when the server holds the files), what the source run was
        // trained with, and what is listening for this model's events.
        var signature = ""
        if let sig = lineage.mlmodel?.signature {
            let parts = [("Inputs", sig.inputs), ("Outputs", sig.outputs), ("Params", sig.params)].compactMap { label, json in
                json.map { "<tr><th>\(label)</th><td>\(Self.signatureColumns($0))</td></tr>" }
            }.joined()
            signature = "<section><h2>Signature</h2><table class=\"kv\" data-testid=\"signature\">\(parts)</table></section>"
        } else if let flavors = lineage.mlmodel?.flavors.keys.sorted(), !flavors.isEmpty {
            signature = "<section><h2>Signature</h2><p class=\"hint\" data-testid=\"signature\">None logged (flavors: \(HTML.escape(flavors.joined(separator: ", ")))).</p></section>"
        }
        var lineageHTML = ""
        if let run = lineage.run {
            let params = run.params.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
            let metrics = run.metrics.sorted { $0.key < $1.key }.map { "\($0.key)=\(HTML.number($0.value))" }.joined(separator: ", ")
            let datasets = run.datasets.map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
            lineageHTML = """
                <section><h2>Lineage</h2><table class="kv" data-testid="lineage">
                <tr><th>Trained by run</th><td><a href="/ui/runs/\(HTML.segment(run.runID))">\(HTML.escape(run.runName.isEmpty ? run.runID : run.runName))</a> (\(HTML.escape(run.userID)))</td></tr>
                <tr><th>Params</th><td data-testid="lineage-params">\(HTML.escape(params))</td></tr>
                <tr><th>Metrics</th><td data-testid="lineage-metrics">\(HTML.escape(metrics))</td></tr>
                <tr><th>Datasets</th><td>\(HTML.escape(datasets.isEmpty ? "none logged" : datasets))</td></tr>
                \(lineage.aliasChanges.map { c in "<tr><th>@\(HTML.escape(c.alias))</th><td>\(c.toVersion == v.version ? "set here" : "moved away") \(HTML.time(c.time))\(c.userID.map { " by " + HTML.escape($0) } ?? "")</td></tr>" }.joined())
                </table></section>
                """
        }
        let hookRows = hooks.map { h in
            "<tr data-testid=\"webhook\"><td><code>\(HTML.escape(h.url))</code></td><td>\(HTML.escape(h.events.map(\.rawValue).joined(separator: ", ")))</td><td>\(HTML.escape(h.status.rawValue))</td><td>\(HTML.escape(h.description ?? ""))</td></tr>"
        }.joined()
        let webhooks = hookRows.isEmpty ? "" : "<section><h2>Webhooks for this model</h2><table data-testid=\"webhooks\"><thead><tr><th>URL</th><th>Events</th><th>Status</th><th>Description</th></tr></thead><tbody>\(hookRows)</tbody></table></section>"
        let body = """
            \(notice.map { HTML.notice($0) } ?? "")
            \(v.description.map { "<p data-testid=\"description\">\(HTML.escape($0))</p>" } ?? "")
            <section><table class="kv" data-testid="overview">\(overview)</table></section>
            \(Self.tags(v.tags))
            \(pending.isEmpty ? "" : "<section><h2>Transition requests</h2><table><thead><tr><th>To stage</th><th>By</th><th>Comment</th><th>When</th><th></th></tr></thead><tbody>\(pending)</tbody></table></section>")
            \(signature)
            \(lineageHTML)
            \(stageForms)
            \(activity)
            \(webhooks)
            """
        return WebUI.html(HTML.page(title: "\(name) version \(v.version)", session: session, body: body), status: status)
    }

    /// A signature's column specs (`[{"name": "a", "type": "double"}, ...]`) as "a: double, ...", or the JSON as is.
    static func signatureColumns(_ json: String) -> String {
        guard case .array(let specs)? = try? JSONValue.parse(Array(json.utf8)) else { return "<code>\(HTML.escape(json))</code>" }
        let columns = specs.map { spec -> String in
            guard case .object(let fields) = spec else { return spec.json }
            var type = fields["type"].map(JSONValue.text) ?? "?"
            if type == "tensor", case .object(let spec)? = fields["tensor-spec"] {
                type = "tensor<\(spec["dtype"].map(JSONValue.text) ?? "?")>" + (spec["shape"].map { " \($0.json)" } ?? "")
            }
            guard let name = fields["name"].map(JSONValue.text) else { return type }
            return "\(name): \(type)"
        }
        return HTML.escape(columns.joined(separator: ", "))
    }

    static func tags(_ tags: [KeyValue]) -> String {
        guard !tags.isEmpty else { return "" }
        let rows = tags.sorted { $0.key < $1.key }.map { "<tr data-testid=\"tag-row\"><th>\(HTML.escape($0.key))</th><td>\(HTML.escape($0.value))</td></tr>" }.joined()
        return "<section><h2>Tags</h2><table class=\"kv\">\(rows)</table></section>"
    }

    /// A version page's forms, as the signed-in principal: move to a stage now (`transition`), request a move
    /// (`request`), approve or reject an open request, or comment. A refused action (a blank comment, a request
    /// that already exists) comes back as the page with the reason.
    func act(name: String, version: String, form: [String: String], session: WebSession) async throws -> Response {
        let comment = form["comment"].flatMap { $0.allSatisfy(\.isWhitespace) ? nil : $0 }
        do {
            switch form["action"] {
            case "approve":
                _ = try await registry.approveTransitionRequest(name: name, version: version, stage: try ModelStage.parse(form["stage"] ?? ""),
                                                                archiveExisting: false, comment: comment, userID: session.principal)
            case "reject":
                _ = try await registry.rejectTransitionRequest(name: name, version: version, stage: try ModelStage.parse(form["stage"] ?? ""),
                                                               comment: comment, userID: session.principal)
            case "transition":
                _ = try await registry.transitionStage(name: name, version: version, stage: try ModelStage.parse(form["stage"] ?? ""),
                                                       archiveExisting: form["archive"] == "1", userID: session.principal, comment: comment)
            case "request":
                _ = try await registry.createTransitionRequest(name: name, version: version, stage: try ModelStage.parse(form["stage"] ?? ""),
                                                               comment: comment, userID: session.principal)
            case "comment":
                _ = try await registry.createComment(name: name, version: version, comment: form["comment"] ?? "", userID: session.principal)
            default:
                throw KilnError.invalid("Unknown action '\(form["action"] ?? "")': transition, request, approve, reject or comment")
            }
        } catch let error as KilnError {
            // The page again (its own 404 when the version is gone), saying why.
            return try await self.version(name: name, version: version, session: session, notice: error.message,
                                          status: error.code == .resourceDoesNotExist ? .notFound : .badRequest)
        }
        return WebUI.redirect("/ui/models/\(HTML.segment(name))/versions/\(HTML.segment(version))")
    }
}
