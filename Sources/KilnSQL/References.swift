/// The tables and files a statement reads and writes: what an authorization check needs to see before it runs.
public struct StatementReferences: Sendable, Equatable {
    /// Tables read, as `catalog.schema.table` completed with the defaults.
    public var tablesRead: Set<String> = []
    /// Tables (and, for DDL, catalogs and schemas) created, changed or dropped, fully qualified: the union of the
    /// four sets below.
    public var written: Set<String> = []
    /// Tables whose rows change (INSERT, UPDATE, DELETE, MERGE, COPY INTO, OPTIMIZE, VACUUM, RESTORE).
    public var tablesModified: Set<String> = []
    /// Tables created (CREATE TABLE, CTAS; with OR REPLACE an existing one is replaced).
    public var tablesCreated: Set<String> = []
    /// Tables dropped or altered, and catalogs or schemas dropped: what only an owner may do.
    public var ownerOnly: Set<String> = []
    /// Catalogs (one part) and schemas (`catalog.schema`) created.
    public var namespacesCreated: Set<String> = []
    /// Files read by path (`delta.\`/p\``, `parquet.\`/p\``, `read_files('/p')`, `COPY INTO ... FROM '/p'`).
    public var pathsRead: Set<String> = []
    /// Folders a statement puts data in by path (`CREATE SCHEMA ... LOCATION '/p'`).
    public var locationsWritten: Set<String> = []
    /// What a SHOW lists: `catalogs`, `schemas` of a catalog, or `tables` of a schema (completed with the defaults).
    public var listing: Listing?

    public enum Listing: Sendable, Equatable {
        case catalogs
        case schemas(catalog: String)
        case tables(catalog: String, schema: String)
        case volumes(catalog: String, schema: String)
        case functions(catalog: String, schema: String)
    }
    /// Volumes whose files are read (LIST), as `catalog.schema.volume`.
    public var volumesRead: Set<String> = []
    /// `information_schema` views read, as `catalog.information_schema.view` (not in `tablesRead`).
    public var informationSchemaRead: Set<String> = []
    /// User functions called, as `catalog.schema.name` (functions they call in turn run with their definer's rights).
    public var functionsCalled: Set<String> = []
    /// Functions created (CREATE FUNCTION; with OR REPLACE an existing one is replaced) and dropped.
    public var functionsCreated: Set<String> = []
    public var functionsDropped: Set<String> = []

    /// No references; callers that act on tables without SQL fill in what they touch.
    public init() {}

    /// The references of `sql`, whose unqualified names resolve against `catalog`'s defaults.
    /// - Throws: the parser's syntax errors, and bad names.
    public static func of(_ sql: String, catalog: Catalog) throws -> StatementReferences {
        try of(try Parser.parse(sql, functions: catalog.functionResolver), catalog: catalog)
    }

    /// The references of a statement parsed already.
    public static func of(_ parsed: ParsedStatement, catalog: Catalog) throws -> StatementReferences {
        let (statement, subqueries, functions) = (parsed.statement, parsed.subqueries, parsed.functions)
        var walker = Walker(catalog: catalog)
        for query in subqueries { walker.ctes(query) }
        try walker.statement(statement)
        for query in subqueries { try walker.query(query) }
        walker.out.functionsCalled.formUnion(functions)
        return walker.out
    }

    struct Walker {
        let catalog: Catalog
        var out = StatementReferences()
        var cteNames: Set<String> = []

        mutating func ctes(_ q: Query) {
            for (name, inner) in q.ctes {
                cteNames.insert(name.lowercased())
                ctes(inner)
            }
        }

        func qualified(_ parts: [String]) throws -> String {
            let n = try catalog.tableName(parts)
            return "\(n.catalog).\(n.schema).\(n.table)".lowercased()
        }

        func namespace(_ parts: [String], kind: NamespaceKind) throws -> String {
            if kind == .catalog { return parts.joined(separator: ".").lowercased() }
            let n = try catalog.schemaName(parts)
            return "\(n.catalog).\(n.schema)".lowercased()
        }

        mutating func write(_ parts: [String], into set: WritableKeyPath<StatementReferences, Set<String>>) throws {
            let name = try qualified(parts)
            out.written.insert(name)
            out[keyPath: set].insert(name)
        }

        mutating func namespace(_ name: String, into set: WritableKeyPath<StatementReferences, Set<String>>) {
            out.written.insert(name)
            out[keyPath: set].insert(name)
        }

        /// Files read by path: a volume's (`/Volumes/...`, its `READ_VOLUME`), else the server's (an admin's).
        mutating func files(_ path: String) throws {
            if path.hasPrefix("/Volumes/") { out.volumesRead.insert(try catalog.volumePath(path).volume) } else { out.pathsRead.insert(path) }
        }

        mutating func read(_ parts: [String]) throws {
            if parts.count == 2, ["delta", "parquet"].contains(parts[0].lowercased()) {
                out.pathsRead.insert(parts[1])
                return
            }
            if parts.count == 1, cteNames.contains(parts[0].lowercased()) { return }
            let name = try qualified(parts)
            if name.split(separator: ".")[1] == "information_schema" {
                out.informationSchemaRead.insert(name)
                return
            }
            out.tablesRead.insert(name)
        }

        mutating func statement(_ s: Statement) throws {
            switch s {
            case .query(let q), .explain(let q, _): ctes(q); try query(q)
            case .createTable(let c):
                try write(c.table, into: \.tablesCreated)
                if let location = c.location { out.locationsWritten.insert(location) }
                if let q = c.query { ctes(q); try query(q) }
            case .insert(let table, _, _, let source): try write(table, into: \.tablesModified); ctes(source); try query(source)
            case .delete(let table, _, _, _), .update(let table, _, _, _, _, _), .optimize(let table, _, _), .vacuum(let table, _, _),
                 .restore(let table, _, _):
                try write(table, into: \.tablesModified)
            case .copyInto(let table, let from, _, _):
                try write(table, into: \.tablesModified)
                try files(from)
            case .dropTable(let table, _), .alter(let table, _, _, _): try write(table, into: \.ownerOnly)
            case .merge(let m):
                try write(m.target, into: \.tablesModified)
                try from(m.source)
            case .describe(let table, _), .describeDetail(let table): try read(table)
            case .createCatalog(let name, _, _): namespace(name.lowercased(), into: \.namespacesCreated)
            case .createSchema(let name, _, _, let location):
                namespace(try namespace(name, kind: .schema), into: \.namespacesCreated)
                if let location { out.locationsWritten.insert(location) }
            case .dropNamespace(let kind, let name, _, _): namespace(try namespace(name, kind: kind), into: \.ownerOnly)
            case .show(let what, let scope, _):
                switch what {
                case "catalogs": out.listing = .catalogs
                case "schemas": out.listing = .schemas(catalog: (scope.first ?? catalog.defaultCatalog).lowercased())
                default:
                    let n = scope.isEmpty ? (catalog.defaultCatalog, catalog.defaultSchema) : try catalog.schemaName(scope)
                    switch what {
                    case "volumes": out.listing = .volumes(catalog: n.0.lowercased(), schema: n.1.lowercased())
                    case "functions": out.listing = .functions(catalog: n.0.lowercased(), schema: n.1.lowercased())
                    default: out.listing = .tables(catalog: n.0.lowercased(), schema: n.1.lowercased())
                    }
                }
            case .list(let path): out.volumesRead.insert(try catalog.volumePath(path).volume)
            case .describeNamespace: break
            case .describeFunction(let name, _):
                // Seeing a function's definition takes what calling it takes (EXECUTE, with the USE chain).
                let n = try catalog.functionName(name)
                out.functionsCalled.insert("\(n.catalog).\(n.schema).\(n.name)".lowercased())
            case .createFunction(let name, _, _, _, _, _, _, _):
                let n = try catalog.functionName(name)
                out.functionsCreated.insert("\(n.catalog).\(n.schema).\(n.name)".lowercased())
            case .dropFunction(let name, _):
                let n = try catalog.functionName(name)
                out.functionsDropped.insert("\(n.catalog).\(n.schema).\(n.name)".lowercased())
            case .use, .grants: break  // grants are checked by the catalog that keeps them
            }
        }

        mutating func query(_ q: Query) throws {
            for (_, inner) in q.ctes { try query(inner) }
            try set(q.body)
        }

        mutating func set(_ s: SetExpr) throws {
            switch s {
            case .select(let select): for item in select.from { try from(item) }
            case .values: break
            case .query(let q): try query(q)
            case .setOperation(_, let a, let b, _): try set(a); try set(b)
            }
        }

        mutating func from(_ item: FromItem) throws {
            switch item {
            case .table(let parts, _, _, _): try read(parts)
            case .subquery(let q, _): ctes(q); try query(q)
            case .join(let a, let b, _, _, _): try from(a); try from(b)
            case .function(let name, let args, _, _):
                if name.lowercased() == "read_files", case .literal(.string(let path))? = args.first { try files(path) }
            }
        }
    }
}
