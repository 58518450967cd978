import Hummingbird
import KilnCatalog
import KilnCore
import KilnLake
import KilnSQL

/// Unity Catalog 2.1 (`/api/2.1/unity-catalog/`): the metastore summary, catalogs, schemas and tables, answered in
/// the shapes both `unitycatalog-client` 0.7 and databricks-sdk read (the OSS client drops the fields it does not
/// know). Lists are sorted by name and paged with `max_results` and `page_token`.
struct UnityCatalogRoutes: Sendable {
    let catalog: UnityCatalog

    func register(on router: Router<KilnRequestContext>) {
        MessageRoute.register([
            MessageRoute(.get, "metastore_summary", summary),
            MessageRoute(.get, "catalogs", listCatalogs),
            MessageRoute(.post, "catalogs", createCatalog),
            MessageRoute(.get, "catalogs/{name}", getCatalog),
            MessageRoute(.patch, "catalogs/{name}", updateCatalog),
            MessageRoute(.delete, "catalogs/{name}", deleteCatalog),
            MessageRoute(.get, "schemas", listSchemas),
            MessageRoute(.post, "schemas", createSchema),
            MessageRoute(.get, "schemas/{full_name}", getSchema),
            MessageRoute(.patch, "schemas/{full_name}", updateSchema),
            MessageRoute(.delete, "schemas/{full_name}", deleteSchema),
            MessageRoute(.get, "tables", listTables),
            MessageRoute(.post, "tables", createTable),
            MessageRoute(.get, "tables/{full_name}", getTable),
            MessageRoute(.patch, "tables/{full_name}", updateTable),
            MessageRoute(.delete, "tables/{full_name}", deleteTable),
            MessageRoute(.get, "tables/{full_name}/exists", tableExists),
            MessageRoute(.get, "table-summaries", tableSummaries),
            MessageRoute(.get, "volumes", listVolumes),
            MessageRoute(.post, "volumes", createVolume),
            MessageRoute(.get, "volumes/{full_name}", getVolume),
            MessageRoute(.patch, "volumes/{full_name}", updateVolume),
            MessageRoute(.delete, "volumes/{full_name}", deleteVolume),
            MessageRoute(.post, "temporary-table-credentials") { m in
                Self.credential(try await catalog.tableCredential(tableID: try m.requireString("table_id"), operation: try m.requireString("operation"),
                                                                  caller: m.caller))
            },
            MessageRoute(.post, "temporary-volume-credentials") { m in
                Self.credential(try await catalog.volumeCredential(volumeID: try m.requireString("volume_id"), operation: try m.requireString("operation"),
                                                                   caller: m.caller))
            },
            MessageRoute(.post, "temporary-path-credentials") { m in
                Self.credential(try catalog.pathCredential(url: try m.requireString("url"), operation: try m.requireString("operation"), caller: m.caller))
            },
            MessageRoute(.get, "functions", listFunctions),
            MessageRoute(.post, "functions", createFunction),
            MessageRoute(.get, "functions/{full_name}", getFunction),
            MessageRoute(.patch, "functions/{full_name}", updateFunction),
            MessageRoute(.delete, "functions/{full_name}", deleteFunction),
            MessageRoute(.get, "permissions/{securable_type}/{full_name}", getPermissions),
            MessageRoute(.patch, "permissions/{securable_type}/{full_name}", updatePermissions),
            MessageRoute(.get, "effective-permissions/{securable_type}/{full_name}", effectivePermissions),
        ], prefixes: ["/api/2.1/unity-catalog/", "/api/2.0/unity-catalog/"], on: router)
    }

    func summary(_ m: RequestMessage) async throws -> Response {
        .json { w in
            w.field("metastore_id", UnityCatalog.metastoreID)
            w.field("name", "kiln")
            w.field("owner", UnityCatalog.metastoreAdmin)
            w.field("region", "local")
            w.field("cloud", "kiln")
        }
    }

    // MARK: Catalogs

    func listCatalogs(_ m: RequestMessage) async throws -> Response {
        let (page, next) = try Self.page(try await catalog.catalogs(caller: m.caller), name: \.catalog, m)
        return .json { w in
            w.key("catalogs")
            w.array { w in for c in page { w.object { Self.write(c, &$0) } } }
            w.field("next_page_token", next)
        }
    }

    func createCatalog(_ m: RequestMessage) async throws -> Response {
        let entry = try await catalog.createCatalog(try m.requireString("name"), comment: try m.string("comment"),
                                                    properties: try Self.properties(m) ?? [:], caller: m.caller)
        return .json { Self.write(entry, &$0) }
    }

    func getCatalog(_ m: RequestMessage) async throws -> Response {
        let entry = try await catalog.getCatalog(try m.requireString("name"), caller: m.caller)
        return .json { Self.write(entry, &$0) }
    }

    func updateCatalog(_ m: RequestMessage) async throws -> Response {
        let entry = try await catalog.updateCatalog(try m.requireString("name"), newName: try m.string("new_name"), comment: try m.string("comment"),
                                                    owner: try m.string("owner"), properties: try Self.properties(m), caller: m.caller)
        return .json { Self.write(entry, &$0) }
    }

    func deleteCatalog(_ m: RequestMessage) async throws -> Response {
        try await catalog.deleteCatalog(try m.requireString("name"), force: try m.bool("force") ?? false, caller: m.caller)
        return .json { _ in }
    }

    // MARK: Schemas

    func listSchemas(_ m: RequestMessage) async throws -> Response {
        let (page, next) = try Self.page(try await catalog.schemas(in: try m.requireString("catalog_name"), caller: m.caller), name: \.fullName, m)
        return .json { w in
            w.key("schemas")
            w.array { w in for s in page { w.object { Self.write(s, &$0) } } }
            w.field("next_page_token", next)
        }
    }

    func createSchema(_ m: RequestMessage) async throws -> Response {
        let entry = try await catalog.createSchema(try m.requireString("catalog_name"), try m.requireString("name"), comment: try m.string("comment"),
                                                   properties: try Self.properties(m) ?? [:], storageRoot: try m.string("storage_root"),
                                                   caller: m.caller)
        return .json { Self.write(entry, &$0) }
    }

    func getSchema(_ m: RequestMessage) async throws -> Response {
        let n = try UnityCatalog.split(try m.requireString("full_name"), parts: 2)
        let entry = try await catalog.getSchema(n[0], n[1], caller: m.caller)
        return .json { Self.write(entry, &$0) }
    }

    func updateSchema(_ m: RequestMessage) async throws -> Response {
        let n = try UnityCatalog.split(try m.requireString("full_name"), parts: 2)
        let entry = try await catalog.updateSchema(n[0], n[1], newName: try m.string("new_name"), comment: try m.string("comment"),
                                                   owner: try m.string("owner"), properties: try Self.properties(m), caller: m.caller)
        return .json { Self.write(entry, &$0) }
    }

    func deleteSchema(_ m: RequestMessage) async throws -> Response {
        let n = try UnityCatalog.split(try m.requireString("full_name"), parts: 2)
        try await catalog.deleteSchema(n[0], n[1], force: try m.bool("force") ?? false, caller: m.caller)
        return .json { _ in }
    }

    // MARK: Tables

    func listTables(_ m: RequestMessage) async throws -> Response {
        let tables = try await catalog.tables(in: try m.requireString("catalog_name"), try m.requireString("schema_name"), caller: m.caller)
        let (page, next) = try Self.page(tables, name: \.name, m)
        let omitColumns = try m.bool("omit_columns") ?? false, omitProperties = try m.bool("omit_properties") ?? false
        return .json { w in
            w.key("tables")
            w.array { w in for t in page { w.object { Self.write(t, columns: !omitColumns, properties: !omitProperties, &$0) } } }
            w.field("next_page_token", next)
        }
    }

    func tableSummaries(_ m: RequestMessage) async throws -> Response {
        let catalogName = try m.requireString("catalog_name")
        let schemaPattern = try m.string("schema_name_pattern"), tablePattern = try m.string("table_name_pattern")
        var summaries: [TableEntry] = []
        for schema in try await catalog.schemas(in: catalogName, caller: m.caller) where Self.like(schema.schema ?? "", schemaPattern) {
            summaries += try await catalog.tables(in: catalogName, schema.schema ?? "", caller: m.caller).filter { Self.like($0.name, tablePattern) }
        }
        let (page, next) = try Self.page(summaries, name: \.fullName, m)
        return .json { w in
            w.key("tables")
            w.array { w in for t in page { w.object { w in w.field("full_name", t.fullName); w.field("table_type", t.tableType) } } }
            w.field("next_page_token", next)
        }
    }

    func createTable(_ m: RequestMessage) async throws -> Response {
        let type = try m.string("table_type")?.uppercased() ?? "MANAGED"
        guard type == "MANAGED" || type == "EXTERNAL" else { throw KilnError.invalid("table_type \(type) is not supported: use MANAGED or EXTERNAL") }
        let location = try m.string("storage_location").flatMap { $0.isEmpty ? nil : $0 }
        guard (type == "EXTERNAL") == (location != nil) else {
            throw KilnError.invalid(type == "EXTERNAL" ? "An EXTERNAL table needs storage_location" : "storage_location makes an EXTERNAL table: set table_type EXTERNAL")
        }
        let format = try m.string("data_source_format")?.uppercased() ?? "DELTA"
        guard format == "DELTA" else { throw KilnError.invalid("data_source_format \(format) is not supported: Kiln's tables are DELTA") }
        let columns: [JSONValue]
        if case .array(let given)? = m.fields["columns"] { columns = given } else if location != nil { columns = [] } else {
            throw KilnError.invalid("columns is required: a list of {name, type_name, ...}")
        }
        var fields: [(position: Int, partition: Int?, field: DeltaField)] = []
        for (i, column) in columns.enumerated() {
            guard case .object(let o) = column else { throw KilnError.invalid("Each column must be an object") }
            let c = RequestMessage(fields: o)
            fields.append((try c.int("position") ?? i, try c.int("partition_index"), try ColumnTypes.field(
                name: try c.requireString("name"), typeName: try c.string("type_name"), typeText: try c.string("type_text"),
                typeJSON: try c.string("type_json"), precision: try c.int("type_precision"), scale: try c.int("type_scale"),
                nullable: try c.bool("nullable") ?? true)))
        }
        fields.sort { $0.position < $1.position }
        let partitions = fields.filter { $0.partition != nil }.sorted { $0.partition! < $1.partition! }.map(\.field.name)
        let entry = try await catalog.createTable(try m.requireString("catalog_name"), try m.requireString("schema_name"), try m.requireString("name"),
                                                  columns: fields.map(\.field), partitionColumns: partitions, comment: try m.string("comment"),
                                                  properties: try Self.properties(m) ?? [:], location: location, caller: m.caller)
        return .json { Self.write(entry, columns: true, properties: true, &$0) }
    }

    func getTable(_ m: RequestMessage) async throws -> Response {
        let n = try UnityCatalog.split(try m.requireString("full_name"), parts: 3)
        let entry = try await catalog.getTable(n[0], n[1], n[2], caller: m.caller)
        return .json { Self.write(entry, columns: true, properties: true, &$0) }
    }

    func updateTable(_ m: RequestMessage) async throws -> Response {
        let n = try UnityCatalog.split(try m.requireString("full_name"), parts: 3)
        let entry = try await catalog.updateTable(n[0], n[1], n[2], owner: try m.string("owner"), caller: m.caller)
        return .json { Self.write(entry, columns: true, properties: true, &$0) }
    }

    func deleteTable(_ m: RequestMessage) async throws -> Response {
        let n = try UnityCatalog.split(try m.requireString("full_name"), parts: 3)
        try await catalog.deleteTable(n[0], n[1], n[2], caller: m.caller)
        return .json { _ in }
    }

    func tableExists(_ m: RequestMessage) async throws -> Response {
        let n = try UnityCatalog.split(try m.requireString("full_name"), parts: 3)
        let exists = try await catalog.tableExists(n[0], n[1], n[2], caller: m.caller)
        return .json { $0.field("table_exists", exists) }
    }

    // MARK: Volumes

    func listVolumes(_ m: RequestMessage) async throws -> Response {
        let volumes = try await catalog.volumes(in: try m.requireString("catalog_name"), try m.requireString("schema_name"), caller: m.caller)
        let (page, next) = try Self.page(volumes, name: \.name, m)
        return .json { w in
            w.key("volumes")
            w.array { w in for v in page { w.object { Self.write(v, &$0) } } }
            w.field("next_page_token", next)
        }
    }

    func createVolume(_ m: RequestMessage) async throws -> Response {
        let type = try m.string("volume_type")?.uppercased() ?? "MANAGED"
        guard type == "MANAGED" || type == "EXTERNAL" else { throw KilnError.invalid("volume_type \(type) is not supported: use MANAGED or EXTERNAL") }
        let location = try m.string("storage_location").flatMap { $0.isEmpty ? nil : $0 }
        guard (type == "EXTERNAL") == (location != nil) else {
            throw KilnError.invalid(type == "EXTERNAL" ? "An EXTERNAL volume needs storage_location" : "storage_location makes an EXTERNAL volume: set volume_type EXTERNAL")
        }
        let v = try await catalog.createVolume(try m.requireString("catalog_name"), try m.requireString("schema_name"), try m.requireString("name"),
                                               comment: try m.string("comment"), location: location, caller: m.caller)
        return .json { Self.write(v, &$0) }
    }

    func getVolume(_ m: RequestMessage) async throws -> Response {
        let n = try UnityCatalog.split(try m.requireString("full_name"), parts: 3)
        let v = try await catalog.getVolume(n[0], n[1], n[2], caller: m.caller)
        return .json { Self.write(v, &$0) }
    }

    func updateVolume(_ m: RequestMessage) async throws -> Response {
        let n = try UnityCatalog.split(try m.requireString("full_name"), parts: 3)
        let v = try await catalog.updateVolume(n[0], n[1], n[2], newName: try m.string("new_name"), comment: try m.string("comment"),
                                               owner: try m.string("owner"), caller: m.caller)
        return .json { Self.write(v, &$0) }
    }

    func deleteVolume(_ m: RequestMessage) async throws -> Response {
        let n = try UnityCatalog.split(try m.requireString("full_name"), parts: 3)
        try await catalog.deleteVolume(n[0], n[1], n[2], caller: m.caller)
        return .json { _ in }
    }

    /// Local storage: the location, no secrets (readers open it directly).
    static func credential(_ c: TemporaryCredential) -> Response {
        .json { w in
            w.field("url", c.url)
            w.field("expiration_time", c.expirationTime)
        }
    }

    // MARK: Functions

    func listFunctions(_ m: RequestMessage) async throws -> Response {
        let functions = try await catalog.functions(in: try m.requireString("catalog_name"), try m.requireString("schema_name"), caller: m.caller)
        let (page, next) = try Self.page(functions, name: \.function.name, m)
        return .json { w in
            w.key("functions")
            w.array { w in for f in page { w.object { Self.write(f, &$0) } } }
            w.field("next_page_token", next)
        }
    }

    /// `{"function_info": {name, catalog_name, schema_name, input_params: {parameters: [{name, type_text | type_name,
    /// position, comment}]}, data_type, full_data_type, routine_body: "SQL", routine_definition, comment, ...}}`:
    /// SQL-bodied scalar functions; the other fields both clients send are accepted as given.
    func createFunction(_ m: RequestMessage) async throws -> Response {
        guard case .object(let info)? = m.fields["function_info"] else {
            throw KilnError.invalid("Missing function_info: give name, catalog_name, schema_name, input_params, data_type, routine_body and routine_definition")
        }
        let f = JSONFields(info)
        let body = try f.string("routine_body")?.uppercased() ?? "SQL"
        let language: SQLFunction.Language
        switch (body, try f.string("external_language")?.uppercased()) {
        case ("SQL", _): language = .sql
        case ("EXTERNAL", "PYTHON"?): language = .python
        default:
            throw KilnError.invalid("routine_body \(body) is not supported: Kiln runs SQL functions (routine_body SQL, routine_definition an expression) and Python functions (routine_body EXTERNAL, external_language PYTHON, routine_definition the body)")
        }
        var parameters: [SQLFunction.Parameter] = []
        if case .object(let input)? = info["input_params"], case .array(let items)? = input["parameters"] {
            var indexed: [(Int, SQLFunction.Parameter)] = []
            for (i, item) in items.enumerated() {
                guard case .object(let p) = item else { throw KilnError.invalid("input_params.parameters must be objects") }
                let pf = JSONFields(p)
                let name = try pf.require("name")
                // type_text as SQL writes it first (it carries a decimal's precision), else the other spellings.
                let type: DeltaType
                if let text = try pf.string("type_text"), let parsed = try? Parser.type(text) { type = parsed.delta } else {
                    type = try ColumnTypes.field(name: name, typeName: try pf.string("type_name"), typeText: try pf.string("type_text"),
                                                 typeJSON: try pf.string("type_json"), precision: try pf.int64("type_precision").map(Int.init),
                                                 scale: try pf.int64("type_scale").map(Int.init), nullable: true).type
                }
                indexed.append((Int(try pf.int64("position") ?? Int64(i)), SQLFunction.Parameter(name: name, typeText: ColumnTypes.text(type),
                                                                                             comment: try pf.string("comment"))))
            }
            parameters = indexed.sorted { $0.0 < $1.0 }.map(\.1)
        }
        let returns: String
        if let text = try f.string("full_data_type"), !text.isEmpty { returns = text }
        else { returns = ColumnTypes.text(try ColumnTypes.field(name: "result", typeName: try f.string("data_type"), typeText: nil, typeJSON: nil,
                                                                precision: nil, scale: nil, nullable: true).type) }
        let function = SQLFunction(catalog: try f.require("catalog_name"), schema: try f.require("schema_name"), name: try f.require("name").lowercased(),
                                   parameters: parameters, returnsText: returns, body: try f.require("routine_definition"), comment: try f.string("comment"),
                                   language: language)
        let created = try await catalog.createFunction(function, caller: m.caller)
        return .json { Self.write(created, &$0) }
    }

    func getFunction(_ m: RequestMessage) async throws -> Response {
        let n = try UnityCatalog.split(try m.requireString("full_name"), parts: 3)
        let f = try await catalog.getFunction(n[0], n[1], n[2], caller: m.caller)
        return .json { Self.write(f, &$0) }
    }

    func updateFunction(_ m: RequestMessage) async throws -> Response {
        let n = try UnityCatalog.split(try m.requireString("full_name"), parts: 3)
        let f = try await catalog.updateFunction(n[0], n[1], n[2], owner: try m.string("owner"), caller: m.caller)
        return .json { Self.write(f, &$0) }
    }

    func deleteFunction(_ m: RequestMessage) async throws -> Response {
        let n = try UnityCatalog.split(try m.requireString("full_name"), parts: 3)
        try await catalog.deleteFunction(n[0], n[1], n[2], caller: m.caller)
        return .json { _ in }
    }

    static func write(_ e: FunctionEntry, _ w: inout JSONWriter) {
        let f = e.function
        let returns = (try? Parser.type(f.returnsText))?.delta ?? .primitive("string")
        w.field("name", f.name)
        w.field("catalog_name", f.catalog)
        w.field("schema_name", f.schema)
        w.field("full_name", f.fullName)
        w.field("function_id", f.id)
        w.key("input_params")
        w.object { w in
            w.key("parameters")
            w.array { w in
                for (i, p) in f.parameters.enumerated() {
                    let type = (try? Parser.type(p.typeText))?.delta ?? .primitive("string")
                    w.object { w in
                        w.field("name", p.name)
                        w.field("type_text", ColumnTypes.text(type))
                        w.field("type_name", ColumnTypes.name(type))
                        w.field("type_json", DeltaField(name: p.name, type: type, nullable: true).jsonText)
                        if case .decimal(let precision, let scale) = type {
                            w.field("type_precision", Int64(precision))
                            w.field("type_scale", Int64(scale))
                        }
                        w.field("position", Int64(i))
                        w.field("parameter_mode", "IN")
                        w.field("parameter_type", "PARAM")
                        w.field("comment", p.comment)
                    }
                }
            }
        }
        w.field("data_type", ColumnTypes.name(returns))
        w.field("full_data_type", ColumnTypes.text(returns))
        w.field("routine_body", f.language == .sql ? "SQL" : "EXTERNAL")
        if f.language == .python { w.field("external_language", "PYTHON") }
        w.field("routine_definition", f.body)
        w.field("parameter_style", "S")
        w.field("is_deterministic", true)
        w.field("sql_data_access", "CONTAINS_SQL")
        w.field("is_null_call", false)
        w.field("security_type", "DEFINER")
        w.field("specific_name", f.name)
        w.field("comment", f.comment)
        var ownership = e.ownership
        ownership.createdAt = ownership.createdAt ?? f.createdAt
        writeOwnership(ownership, &w)
        w.field("metastore_id", UnityCatalog.metastoreID)
    }

    static func write(_ v: VolumeEntry, _ w: inout JSONWriter) {
        w.field("name", v.name)
        w.field("catalog_name", v.catalog)
        w.field("schema_name", v.schema)
        w.field("full_name", v.fullName)
        w.field("volume_type", v.volumeType)
        w.field("storage_location", "file://" + v.location)
        w.field("comment", v.comment)
        var ownership = v.ownership
        ownership.createdAt = ownership.createdAt ?? v.createdAt
        writeOwnership(ownership, &w)
        w.field("volume_id", v.volumeID)
        w.field("metastore_id", UnityCatalog.metastoreID)
    }

    // MARK: Grants

    /// The securable a permissions path names (`function`, `model` and `registered_model` all name UC models).
    func securable(_ m: RequestMessage) async throws -> SecurablePath {
        let type = try SecurableType(parsing: try m.requireString("securable_type"))
        return try await catalog.path(type, try m.requireString("full_name"))
    }

    /// The direct grants: all of them for those who may manage the securable, else the caller's own.
    func getPermissions(_ m: RequestMessage) async throws -> Response {
        let path = try await securable(m)
        var principal = try m.string("principal")
        if let caller = m.caller, !(try await catalog.mayManage(caller, path)) {
            guard try await catalog.visible(caller, path) else { throw KilnError(.permissionDenied, "\(caller.name) may not see \(path.target.fullName)") }
            principal = caller.name
        }
        return Self.assignments(try await catalog.permissions(path, principal: principal), oss: m.fromOSSClient)
    }

    func updatePermissions(_ m: RequestMessage) async throws -> Response {
        let path = try await securable(m)
        guard case .array(let items)? = m.fields["changes"] else {
            throw KilnError.invalid("changes is required: [{\"principal\": ..., \"add\": [...], \"remove\": [...]}]")
        }
        var changes: [(principal: String, add: [Privilege], remove: [Privilege])] = []
        for item in items {
            guard case .object(let o) = item else { throw KilnError.invalid("Each of changes must be an object") }
            let change = RequestMessage(fields: o)
            // A missing add or remove is empty (databricks-sdk leaves out empty lists).
            changes.append((try change.requireString("principal"),
                            try (change.fields["add"] == nil ? [] : try change.strings("add")).map(Privilege.init(parsing:)),
                            try (change.fields["remove"] == nil ? [] : try change.strings("remove")).map(Privilege.init(parsing:))))
        }
        try await catalog.updatePermissions(path, changes: changes, caller: m.caller)
        if try m.bool("omit_permissions_in_response") == true { return .json { _ in } }
        return Self.assignments(try await catalog.permissions(path), oss: m.fromOSSClient)
    }

    func effectivePermissions(_ m: RequestMessage) async throws -> Response {
        let path = try await securable(m)
        var principal = try m.string("principal")
        if let caller = m.caller, !(try await catalog.mayManage(caller, path)) { principal = caller.name }
        let effective = try await catalog.effectivePermissions(path, principal: principal)
        return .json { w in
            w.key("privilege_assignments")
            w.array { w in
                for (who, privileges) in effective {
                    w.object { w in
                        w.field("principal", who)
                        w.key("privileges")
                        w.array { w in
                            for p in privileges {
                                w.object { w in
                                    w.field("privilege", p.privilege.name)
                                    w.field("inherited_from_type", p.inheritedFromType?.upper)
                                    w.field("inherited_from_name", p.inheritedFromName)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `{"privilege_assignments": [...]}` in the spelling the client reads: spaces and only the privileges its
    /// enum has for unitycatalog-client, underscores for everyone else.
    static func assignments(_ list: [(principal: String, privileges: [Privilege])], oss: Bool) -> Response {
        .json { w in
            w.key("privilege_assignments")
            w.array { w in
                for (who, privileges) in list {
                    let shown = oss ? privileges.filter(\.inOSSClient) : privileges
                    guard !shown.isEmpty else { continue }
                    w.object { w in
                        w.field("principal", who)
                        w.key("privileges")
                        w.array { w in for p in shown { w.value(oss ? p.spaced : p.name) } }
                    }
                }
            }
        }
    }

    // MARK: Wire shapes

    static func write(_ e: NamespaceEntry, _ w: inout JSONWriter) {
        w.field("name", e.schema ?? e.catalog)
        if e.schema != nil { w.field("catalog_name", e.catalog) }
        w.field("full_name", e.fullName)
        w.field("comment", e.info.comment)
        w.key("properties")
        w.object { w in for key in e.info.properties.keys.sorted() { w.field(key, e.info.properties[key]) } }
        writeOwnership(e.ownership, &w)
        w.field(e.schema == nil ? "id" : "schema_id", e.id)
        w.field("storage_root", e.info.location)
        w.field("metastore_id", UnityCatalog.metastoreID)
        w.field("securable_type", e.schema == nil ? "CATALOG" : "SCHEMA")
        if e.schema == nil {
            w.field("catalog_type", "MANAGED_CATALOG")
            w.field("isolation_mode", "OPEN")
        }
        w.field("browse_only", false)
    }

    static func write(_ t: TableEntry, columns: Bool, properties: Bool, _ w: inout JSONWriter) {
        w.field("name", t.name)
        w.field("catalog_name", t.catalog)
        w.field("schema_name", t.schema)
        w.field("full_name", t.fullName)
        w.field("table_type", t.tableType)
        w.field("data_source_format", "DELTA")
        w.field("storage_location", "file://" + t.location)
        w.field("comment", t.comment)
        if properties {
            w.key("properties")
            w.object { w in for key in t.properties.keys.sorted() { w.field(key, t.properties[key]) } }
        }
        if columns {
            w.key("columns")
            w.array { w in
                for (i, f) in t.columns.enumerated() {
                    w.object { w in
                        w.field("name", f.name)
                        w.field("type_text", ColumnTypes.text(f.type))
                        w.field("type_json", f.jsonText)
                        w.field("type_name", ColumnTypes.name(f.type))
                        if case .decimal(let p, let s) = f.type {
                            w.field("type_precision", Int64(p))
                            w.field("type_scale", Int64(s))
                        }
                        w.field("position", Int64(i))
                        w.field("nullable", f.nullable)
                        if case .string(let comment)? = f.metadata["comment"] { w.field("comment", comment) }
                        if let p = t.partitionColumns.firstIndex(where: { $0.lowercased() == f.name.lowercased() }) { w.field("partition_index", Int64(p)) }
                    }
                }
            }
        }
        if let key = PrimaryKey(properties: t.properties) {
            w.key("table_constraints")
            w.array { w in
                w.object { w in
                    w.key("primary_key_constraint")
                    w.object { w in
                        w.field("name", key.name)
                        w.key("child_columns")
                        w.array { w in for c in key.columns { w.value(c) } }
                        if !key.timeseries.isEmpty {
                            w.key("timeseries_columns")
                            w.array { w in for c in key.timeseries { w.value(c) } }
                        }
                    }
                }
            }
        }
        var ownership = t.ownership
        ownership.createdAt = ownership.createdAt ?? t.createdAt
        ownership.updatedAt = ownership.updatedAt ?? t.updatedAt
        writeOwnership(ownership, &w)
        w.field("table_id", t.tableID)
        w.field("metastore_id", UnityCatalog.metastoreID)
        w.field("securable_type", "TABLE")
        w.field("browse_only", false)
    }

    static func writeOwnership(_ o: Ownership, _ w: inout JSONWriter) {
        w.field("owner", o.owner)
        w.field("created_at", o.createdAt)
        w.field("created_by", o.createdBy)
        w.field("updated_at", o.updatedAt)
        w.field("updated_by", o.updatedBy)
    }

    /// `properties` as a string map; nil when absent.
    static func properties(_ m: RequestMessage) throws -> [String: String]? {
        guard let value = m.fields["properties"], value != .null else { return nil }
        guard case .object(let o) = value else { throw KilnError.invalid("properties must be an object of strings") }
        var out: [String: String] = [:]
        for (k, v) in o {
            guard case .string(let s) = v else { throw KilnError.invalid("properties.\(k) must be a string") }
            out[k] = s
        }
        return out
    }

    /// The page after `page_token` (a name this server gave), at most `max_results` long (0 or absent: all).
    static func page<T>(_ items: [T], name: (T) -> String, _ m: RequestMessage) throws -> ([T], String?) {
        let limit = try m.int("max_results") ?? 0
        guard limit >= 0 else { throw KilnError.invalid("max_results must not be negative") }
        let sorted = items.sorted { name($0) < name($1) }
        var rest = sorted[...]
        if let token = try m.string("page_token"), !token.isEmpty { rest = sorted.drop { name($0) <= token } }
        guard limit > 0, rest.count > limit else { return (Array(rest), nil) }
        let page = Array(rest.prefix(limit))
        return (page, name(page.last!))
    }

    /// SQL LIKE with `%` and `_` (nil matches all).
    static func like(_ text: String, _ pattern: String?) -> Bool {
        guard let pattern, !pattern.isEmpty else { return true }
        let t = Array(text.lowercased()), p = Array(pattern.lowercased())
        func match(_ i: Int, _ j: Int) -> Bool {
            if j == p.count { return i == t.count }
            if p[j] == "%" { return (i...t.count).contains { match($0, j + 1) } }
            return i < t.count && (p[j] == "_" || p[j] == t[i]) && match(i + 1, j + 1)
        }
        return match(0, 0)
    }
}
