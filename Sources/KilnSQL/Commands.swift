import Foundation
import KilnCore
import KilnFrame
import KilnLake

/// DDL and DML statements on Delta tables: CREATE TABLE [AS SELECT], INSERT, DELETE, UPDATE, DROP, SHOW, DESCRIBE.
extension Execution {
    func command(_ statement: Statement) throws -> Frame {
        switch statement {
        case .query, .explain: throw KilnError.invalid("Not a command")
        case .createTable(let c): return try createTable(c)
        case .insert(let name, let overwrite, let columns, let source):
            var run = self
            run.needed = Execution.columnsNeeded(source, subqueries: subqueries)
            let rows = try run.query(source, env: [:]).visible()
            let table = try open(name)
            let schema = try table.snapshot().schema
            let target = columns ?? schema.fields.map(\.name)
            guard target.count == rows.columns.count else {
                throw KilnError.invalid("INSERT names \(target.count) columns but the query gives \(rows.columns.count)")
            }
            // Columns go by position into the named (or all) table columns, cast to the table's types.
            var fields: [DeltaField] = [], cast: [Column] = []
            for (name, column) in zip(target, rows.columns) {
                guard let field = schema.field(name) else { throw KilnError.invalid("Table \(name) has no column '\(name)'") }
                guard let type = FrameType(delta: field.type) else { throw KilnError.invalid("Column '\(field.name)' is a \(field.type.sqlName), a type INSERT cannot write") }
                fields.append(field)
                cast.append(try column.cast(to: type))
            }
            let batch = try Frame(names: fields.map(\.name), columns: cast).lakeBatch(DeltaSchema(fields))
            let result = try table.write(batch, mode: overwrite ? .overwrite : .append)
            return Frame(names: ["num_affected_rows", "num_inserted_rows"],
                         columns: [Column(type: .int64, values: .int([Int64(result.rowsWritten)])), Column(type: .int64, values: .int([Int64(result.rowsWritten)]))])
        case .delete(let name, let alias, let condition, let text):
            return try deleteStatement(name, alias: alias, condition: condition, text: text)
        case .update(let name, let alias, let assignments, let condition, let assignmentsText, let conditionText):
            return try updateStatement(name, alias: alias, assignments: assignments, condition: condition, assignmentsText: assignmentsText,
                                       conditionText: conditionText)
        case .dropTable(let name, let ifExists):
            let n = try engine.catalog.tableName(name)
            if engine.catalog.externalLocation(n.catalog, n.schema, n.table) != nil {
                // An external table: forget it; its files stay at its LOCATION.
                try engine.catalog.unregisterExternal(n.catalog, n.schema, n.table)
                return .empty
            }
            let path = try engine.catalog.path(name)
            guard FileManager.default.fileExists(atPath: path + "/_delta_log") else {
                if ifExists { return .empty }
                throw KilnError.notFound("Table \(name.joined(separator: ".")) does not exist")
            }
            try FileManager.default.removeItem(atPath: path)
            return .empty
        case .show(let what, let scope, let like): return try show(what, scope, like: like)
        case .grants:
            throw KilnError.invalid("GRANT, REVOKE, SHOW GRANTS, ALTER ... OWNER TO and COMMENT ON run on a server, which keeps owners and grants: use kiln sql --url (or the statements API)")
        case .list(let path): return try list(path)
        case .createFunction(let name, let orReplace, let ifNotExists, let parameters, let returns, let body, let comment, let language):
            let n = try engine.catalog.functionName(name)
            if ifNotExists, try engine.catalog.function(n.catalog, n.schema, n.name) != nil { return .empty }
            var function = SQLFunction(catalog: n.catalog, schema: n.schema, name: n.name.lowercased(), parameters: parameters, returnsText: returns,
                                       body: body, comment: comment, language: language)
            if let existing = try engine.catalog.function(n.catalog, n.schema, n.name) { function.id = existing.id }  // grants stay
            try engine.catalog.saveFunction(function, replace: orReplace)
            return .empty
        case .dropFunction(let name, let ifExists):
            let n = try engine.catalog.functionName(name)
            try engine.catalog.dropFunction(n.catalog, n.schema, n.name, ifExists: ifExists)
            return .empty
        case .createCatalog(let name, let ifNotExists, let comment):
            try engine.catalog.createCatalog(name, comment: comment, ifNotExists: ifNotExists)
            return .empty
        case .createSchema(let name, let ifNotExists, let comment, let location):
            let (catalog, schema) = try engine.catalog.schemaName(name)
            try engine.catalog.createSchema(catalog, schema, comment: comment, location: location, ifNotExists: ifNotExists)
            return .empty
        case .dropNamespace(.catalog, let name, let ifExists, let cascade):
            try engine.catalog.dropCatalog(name[0], cascade: cascade, ifExists: ifExists)
            return .empty
        case .dropNamespace(.schema, let name, let ifExists, let cascade):
            let (catalog, schema) = try engine.catalog.schemaName(name)
            try engine.catalog.dropSchema(catalog, schema, cascade: cascade, ifExists: ifExists)
            return .empty
        case .use(.catalog, let name):
            guard engine.catalog.catalogExists(name[0]) else { throw Catalog.noCatalog(name[0]) }
            engine.catalog.defaultCatalog = name[0]
            engine.catalog.defaultSchema = "default"
            return .empty
        case .use(.schema, let name):
            let (catalog, schema) = try engine.catalog.schemaName(name)
            guard engine.catalog.schemaExists(catalog, schema) else { throw Catalog.noSchema(catalog, schema) }
            engine.catalog.defaultCatalog = catalog
            engine.catalog.defaultSchema = schema
            return .empty
        case .describeNamespace(let kind, let name): return try describeNamespace(kind, name)
        case .describeFunction(let name, let extended): return try describeFunction(name, extended: extended)
        case .describe(let name, let history): return try describe(name, history: history)
        case .describeDetail(let name): return try describeDetail(name)
        case .optimize(let name, let condition, let zOrder):
            let result = try open(name).optimize(where: condition, zOrderBy: zOrder)
            return Frame(names: ["numFilesAdded", "numFilesRemoved"],
                         columns: [Column(type: .int64, values: .int([Int64(result.filesAdded)])), Column(type: .int64, values: .int([Int64(result.filesRemoved)]))])
        case .vacuum(let name, let hours, let dryRun):
            let files = try open(name).vacuum(retentionHours: hours, dryRun: dryRun)
            return Frame(names: ["path"], columns: [Column.from(files.map(Value.string), type: .string)])
        case .restore(let name, let version, let timestamp):
            let table = try open(name)
            var target = version
            if let timestamp {
                guard let micros = Dates.parseTimestamp(timestamp) else { throw KilnError.invalid("Cannot read the timestamp '\(timestamp)'") }
                target = try table.log.version(at: micros / 1000)
            }
            let result = try table.restore(to: target ?? 0)
            return Frame(names: ["table_size_after_restore", "num_restored_files", "num_removed_files"],
                         columns: [Column(type: .int64, values: .int([try table.snapshot().files.reduce(0) { $0 + $1.size }])),
                                   Column(type: .int64, values: .int([Int64(result.filesAdded)])),
                                   Column(type: .int64, values: .int([Int64(result.filesRemoved)]))])
        case .alter(let name, var set, var unset, let columns):
            let table = try open(name)
            let current = try table.snapshot()
            if let text = set[PrimaryKey.property], let key = PrimaryKey(properties: [PrimaryKey.property: text]) {
                if let existing = PrimaryKey(properties: current.metadata.configuration) {
                    throw KilnError.alreadyExists("Table \(name.joined(separator: ".")) already has the primary key \(existing.name); drop it first (ALTER TABLE ... DROP PRIMARY KEY)")
                }
                set[PrimaryKey.property] = try key.validated(current.schema).propertyValue
            }
            // DROP CONSTRAINT names the primary key too.
            if let existing = PrimaryKey(properties: current.metadata.configuration),
               unset.contains("delta.constraints.\(existing.name.lowercased())") {
                unset.append(PrimaryKey.property)
            }
            if !columns.isEmpty {
                try table.addColumns(columns.map { DeltaField(name: $0.name, type: $0.type.delta) })
            } else {
                try table.alterProperties(set: set, unset: unset, operation: set.keys.contains { $0.hasPrefix("delta.constraints.") || $0.hasPrefix("kiln.expectations.") || $0 == PrimaryKey.property } ? "ADD CONSTRAINT"
                                          : unset.contains { $0.hasPrefix("delta.constraints.") } ? "DROP CONSTRAINT"
                                          : set.isEmpty ? "UNSET TBLPROPERTIES" : "SET TBLPROPERTIES")
            }
            return .empty
        case .copyInto(let name, let from, let format, let options):
            let source = from.hasPrefix("/Volumes/") ? try engine.catalog.volumePath(from).local : from
            let result = try DeltaTable.ingest(directory: source, into: try engine.catalog.path(name), format: format, csv: try CSVOptions(options))
            return Frame(names: ["num_affected_rows", "num_inserted_rows", "num_skipped_corrupt_files"],
                         columns: [Int64(result.rows), Int64(result.rows), 0].map { Column(type: .int64, values: .int([$0])) })
        case .merge(let m): return try mergeStatement(m)
        }
    }

    static func count(_ name: String, _ n: Int64) -> Frame {
        Frame(names: [name], columns: [Column(type: .int64, values: .int([n]))])
    }

    func open(_ name: [String]) throws -> DeltaTable {
        let path = try engine.catalog.path(name)
        guard FileManager.default.fileExists(atPath: path + "/_delta_log") else {
            throw KilnError.notFound("Table \(name.joined(separator: ".")) does not exist")
        }
        return try DeltaTable.open(path)
    }

    func createTable(_ c: CreateTable) throws -> Frame {
        try engine.catalog.requireSchema(ofTable: c.table)
        if let location = c.location { return try createExternal(c, location) }
        let path = try engine.catalog.path(c.table)
        let exists = FileManager.default.fileExists(atPath: path + "/_delta_log")
        if exists {
            if c.ifNotExists { return .empty }
            guard c.orReplace else { throw KilnError.alreadyExists("Table \(c.table.joined(separator: ".")) already exists") }
        }
        var rows: Frame?
        var fields = c.columns.map { DeltaField(name: $0.name, type: $0.type.delta, nullable: $0.nullable) }
        if let q = c.query {
            var run = self
            run.needed = Execution.columnsNeeded(q, subqueries: subqueries)
            let result = try run.query(q, env: [:]).visible()
            if fields.isEmpty {
                fields = zip(result.names, result.columns).map { DeltaField(name: $0, type: $1.type.delta) }
            }
            guard fields.count == result.columns.count else { throw KilnError.invalid("The table has \(fields.count) columns; the query gives \(result.columns.count)") }
            rows = Frame(names: fields.map(\.name), columns: try zip(fields, result.columns).map { field, column in
                try column.cast(to: FrameType(delta: field.type) ?? column.type)
            })
        }
        let schema = DeltaSchema(fields)
        var c = c
        if let key = c.primaryKey { c.properties[PrimaryKey.property] = try key.validated(schema).propertyValue }
        if exists {
            // CREATE OR REPLACE: a new version of the same table with the new schema and content.
            let table = try DeltaTable.open(path)
            try table.replace(schema: schema, partitionColumns: c.partitionedBy, properties: c.properties, rows: try rows?.lakeBatch(schema))
            return .empty
        }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        if let rows {
            // CREATE TABLE AS SELECT: version 0 holds the metadata and the rows, one commit.
            let batch = try rows.lakeBatch(schema)
            try DeltaTable.create(at: path, schema: schema, partitionColumns: c.partitionedBy, properties: c.properties, name: c.table.last,
                                  description: c.comment, operation: "CREATE TABLE AS SELECT") { emit in
                if batch.rowCount > 0 { try emit(batch) }
            }
        } else {
            try DeltaTable.create(at: path, schema: schema, partitionColumns: c.partitionedBy, properties: c.properties,
                                  name: c.table.last, description: c.comment)
        }
        return .empty
    }

    /// CREATE TABLE ... LOCATION: a Delta table already at the folder is adopted as it is (columns, when given, must be
    /// its columns); an empty folder gets a new table. The name then reads and writes the folder; DROP TABLE forgets
    /// the name and leaves the files.
    func createExternal(_ c: CreateTable, _ location: String) throws -> Frame {
        let n = try engine.catalog.tableName(c.table)
        let folder = try engine.catalog.externalFolder(location: location)
        let managed = try engine.catalog.path(c.table)
        if engine.catalog.externalLocation(n.catalog, n.schema, n.table) != nil || FileManager.default.fileExists(atPath: managed + "/_delta_log") {
            if c.ifNotExists { return .empty }
            throw KilnError.alreadyExists("Table \(c.table.joined(separator: ".")) already exists")
        }
        if FileManager.default.fileExists(atPath: folder + "/_delta_log") {
            guard c.query == nil else { throw KilnError.invalid("LOCATION '\(location)' already holds a Delta table: CREATE TABLE ... LOCATION adopts it, without AS SELECT") }
            let existing = try DeltaTable.open(folder).snapshot().schema.fields.map { $0.name.lowercased() }
            if !c.columns.isEmpty, c.columns.map({ $0.name.lowercased() }) != existing {
                throw KilnError.invalid("The Delta table at '\(location)' has columns \(existing.joined(separator: ", ")); leave the columns out to adopt it as it is")
            }
        } else {
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            guard contents.filter({ !$0.hasPrefix(".") }).isEmpty else {
                throw KilnError.invalid("LOCATION '\(location)' holds files but no Delta table; choose an empty folder or a Delta table's")
            }
            guard !c.columns.isEmpty || c.query != nil else { throw KilnError.invalid("LOCATION '\(location)' holds no Delta table: give the columns") }
            var managedLess = c
            managedLess.location = nil
            try engine.catalog.registerExternal(n.catalog, n.schema, n.table, at: folder)
            do {
                _ = try createTable(managedLess)
            } catch {
                try? engine.catalog.unregisterExternal(n.catalog, n.schema, n.table)
                throw error
            }
            return .empty
        }
        try engine.catalog.registerExternal(n.catalog, n.schema, n.table, at: folder)
        return .empty
    }

    /// LIST '/Volumes/...': path, name, size and modification time of each entry, as Databricks SQL answers it.
    func list(_ path: String) throws -> Frame {
        let (_, local) = try engine.catalog.volumePath(path)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: local) else {
            throw KilnError.notFound("'\(path)' is not a folder of the volume")
        }
        let base = path.hasSuffix("/") ? String(path.dropLast()) : path
        var paths: [Value] = [], shown: [Value] = [], sizes: [Value] = [], times: [Value] = []
        for name in names.sorted() where !name.hasPrefix("._upload-") {
            let attributes = (try? FileManager.default.attributesOfItem(atPath: local + "/" + name)) ?? [:]
            let directory = (attributes[.type] as? FileAttributeType) == .typeDirectory
            paths.append(.string(base + "/" + name + (directory ? "/" : "")))
            shown.append(.string(name + (directory ? "/" : "")))
            sizes.append(.int(directory ? 0 : ((attributes[.size] as? NSNumber)?.int64Value ?? 0)))
            times.append(.int(Int64(((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0) * 1000)))
        }
        return Frame(names: ["path", "name", "size", "modification_time"],
                     columns: [Column.from(paths, type: .string), Column.from(shown, type: .string), Column.from(sizes, type: .int64),
                               Column.from(times, type: .int64)])
    }

    func show(_ what: String, _ scope: [String], like: String?) throws -> Frame {
        let catalog = engine.catalog
        func strings(_ values: [String]) -> Column { Column.from(values.map(Value.string), type: .string) }
        let matches = Self.likePattern(like)
        switch what {
        case "catalogs":
            return Frame(names: ["catalog"], columns: [strings(catalog.catalogs().filter(matches))])
        case "functions":
            // User functions only (Databricks' SHOW USER FUNCTIONS), by full name.
            let (catalogName, schema) = scope.isEmpty ? (catalog.defaultCatalog, catalog.defaultSchema) : try catalog.schemaName(scope)
            let names = try catalog.functions(in: catalogName, schema).map(\.name).filter(matches)
            return Frame(names: ["function"], columns: [strings(names.map { "\(catalogName).\(schema).\($0)" })])
        case "volumes":
            let (catalogName, schema) = scope.isEmpty ? (catalog.defaultCatalog, catalog.defaultSchema) : try catalog.schemaName(scope)
            let volumes = try catalog.volumes(in: catalogName, schema).filter(matches)
            return Frame(names: ["database", "volume_name"], columns: [strings(volumes.map { _ in schema }), strings(volumes)])
        case "schemas":
            guard scope.count <= 1 else { throw KilnError.invalid("SHOW SCHEMAS IN takes a catalog name") }
            return Frame(names: ["databaseName"], columns: [strings(try catalog.schemas(in: scope.first ?? catalog.defaultCatalog).filter(matches))])
        default:
            let (catalogName, schema) = scope.isEmpty ? (catalog.defaultCatalog, catalog.defaultSchema) : try catalog.schemaName(scope)
            let tables = try catalog.tables(in: catalogName, schema).filter(matches)
            return Frame(names: ["database", "tableName", "isTemporary"],
                         columns: [strings(tables.map { _ in schema }), strings(tables),
                                   Column(type: .bool, values: .bool([Bool](repeating: false, count: tables.count)))])
        }
    }

    /// SHOW ... LIKE patterns as Databricks reads them: `*` any characters, `|` between alternatives, case-insensitive.
    static func likePattern(_ pattern: String?) -> (String) -> Bool {
        guard let pattern else { return { _ in true } }
        let alternatives = pattern.lowercased().split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        return { name in
            let text = name.lowercased()
            return alternatives.contains { alternative in
                let regex = "^" + alternative.split(separator: "*", omittingEmptySubsequences: false)
                    .map { NSRegularExpression.escapedPattern(for: String($0)) }.joined(separator: ".*") + "$"
                return text.range(of: regex, options: .regularExpression) != nil
            }
        }
    }

    /// DESCRIBE SCHEMA|CATALOG: name, comment, location, creation time, as Databricks lists them.
    func describeNamespace(_ kind: NamespaceKind, _ name: [String]) throws -> Frame {
        let catalog = engine.catalog
        let info: Catalog.NamespaceInfo
        var rows: [(String, String?)]
        switch kind {
        case .catalog:
            guard let found = try catalog.catalogInfo(name[0]) else { throw Catalog.noCatalog(name[0]) }
            info = found
            rows = [("Catalog Name", info.name), ("Comment", info.comment)]
        case .schema:
            let (c, s) = try catalog.schemaName(name)
            guard let found = try catalog.schemaInfo(c, s) else { throw Catalog.noSchema(c, s) }
            info = found
            rows = [("Catalog Name", info.catalog), ("Namespace Name", info.name), ("Comment", info.comment),
                    ("Location", try catalog.schemaRoot(c, s))]
        }
        rows.append(("Created Time", info.createdAt.map { Value.timestamp($0 * 1000).text }))
        return Frame(names: kind == .catalog ? ["info_name", "info_value"] : ["database_description_item", "database_description_value"],
                     columns: [Column.from(rows.map { .string($0.0) }, type: .string),
                               Column.from(rows.map { $0.1.map(Value.string) ?? .null }, type: .string)])
    }

    /// DESCRIBE FUNCTION [EXTENDED]: `Function`, `Type`, `Input` (one line per parameter), `Returns`; EXTENDED adds
    /// the comment and body (`Deterministic`, `Data Access`, `Body`), as Databricks SQL lists a SQL function.
    func describeFunction(_ name: [String], extended: Bool) throws -> Frame {
        let n = try engine.catalog.functionName(name)
        guard let f = try engine.catalog.function(n.catalog, n.schema, n.name) else {
            throw KilnError.notFound("[ROUTINE_NOT_FOUND] The function \(name.joined(separator: ".")) does not exist")
        }
        var lines = ["Function:    \(f.fullName)", "Type:        SCALAR"]
        let width = f.parameters.map(\.name.count).max() ?? 0
        for (i, p) in f.parameters.enumerated() {
            let text = p.name + String(repeating: " ", count: width - p.name.count) + " " + p.typeText + (p.comment.map { " '\($0)'" } ?? "")
            lines.append((i == 0 ? "Input:       " : "             ") + text)
        }
        if f.parameters.isEmpty { lines.append("Input:       ()") }
        lines.append("Returns:     \(f.returnsText)")
        if extended {
            if let comment = f.comment { lines.append("Comment:     \(comment)") }
            lines += f.language == .python ? ["Language:    PYTHON", "Body:        \(f.body)"]
                : ["Deterministic: true", "Data Access: CONTAINS SQL", "Body:        \(f.body)"]
        }
        return Frame(names: ["function_desc"], columns: [Column.from(lines.map { .string($0) }, type: .string)])
    }

    /// DESCRIBE DETAIL: Databricks' columns, one row; `partitionColumns` and `properties` as JSON text (an array
    /// and an object with sorted keys), as Kiln's frames have no array or map type.
    func describeDetail(_ name: [String]) throws -> Frame {
        let table = try open(name)
        let snapshot = try table.snapshot()
        let metadata = snapshot.metadata
        let lastModified = try table.log.history(limit: 1).first?.timestamp
        func text(_ value: String?) -> Column { Column.from([value.map(Value.string) ?? .null], type: .string) }
        func time(_ millis: Int64?) -> Column { Column.from([millis.map { .timestamp($0 * 1000) } ?? .null], type: .timestamp) }
        func int(_ value: Int64) -> Column { Column(type: .int64, values: .int([value])) }
        let properties = JSONValue.object(metadata.configuration.mapValues { .string($0) }).json
        return Frame(
            names: ["format", "id", "name", "description", "location", "createdAt", "lastModified", "partitionColumns", "numFiles",
                    "sizeInBytes", "properties", "minReaderVersion", "minWriterVersion"],
            columns: [text("delta"), text(metadata.id), text(name.joined(separator: ".")), text(metadata.description), text(try engine.catalog.path(name)),
                      time(metadata.createdTime), time(lastModified), text(JSONValue.array(metadata.partitionColumns.map { .string($0) }).json),
                      int(Int64(snapshot.files.count)), int(snapshot.files.reduce(0) { $0 + $1.size }), text(properties),
                      int(Int64(snapshot.protocolVersion.minReaderVersion)), int(Int64(snapshot.protocolVersion.minWriterVersion))])
    }

    func describe(_ name: [String], history: Bool) throws -> Frame {
        let table = try open(name)
        func strings(_ values: [String?]) -> Column { Column.from(values.map { $0.map(Value.string) ?? .null }, type: .string) }
        if history {
            let entries = try table.log.history()
            return Frame(names: ["version", "timestamp", "operation", "operationParameters"],
                         columns: [Column(type: .int64, values: .int(entries.map(\.version))),
                                   Column.from(entries.map { $0.timestamp.map { .timestamp($0 * 1000) } ?? .null }, type: .timestamp),
                                   strings(entries.map { if case .string(let s)? = $0.info["operation"] { return s }; return nil }),
                                   strings(entries.map { $0.info["operationParameters"].map(JSONText.string) })])
        }
        let snapshot = try table.snapshot()
        return Frame(names: ["col_name", "data_type", "comment"],
                     columns: [strings(snapshot.schema.fields.map(\.name)),
                               strings(snapshot.schema.fields.map { $0.type.sqlName.lowercased() }),
                               strings(snapshot.schema.fields.map { _ in nil })])
    }
}
