import Foundation
import KilnCore
import KilnFrame
import KilnLake
import KilnSQL

/// Feature tables and training sets over the warehouse's Delta tables: what Databricks' `FeatureEngineeringClient`
/// does (`create_table`, `write_table`, `read_table`, `create_training_set`), checked as the caller (a feature
/// table is a table: SELECT to read, MODIFY to write, CREATE_TABLE to create).
public struct FeatureStore: Sendable {
    public typealias Authorizer = @Sendable (_ caller: Caller?, _ references: StatementReferences) async throws -> Void

    let warehouse: String
    let statements: StatementService
    let authorize: Authorizer
    /// Published tables, served by key.
    public let online: OnlineStore
    let clock: any KilnClock
    /// Runs the feature functions written in Python.
    let python: any PythonFunctionRunning

    public init(warehouse: String, statements: StatementService, online: OnlineStore, clock: any KilnClock, python: any PythonFunctionRunning,
                authorize: @escaping Authorizer) {
        self.python = python
        self.warehouse = warehouse
        self.statements = statements
        self.online = online
        self.clock = clock
        self.authorize = authorize
    }

    var nowMicros: Int64 { clock.nowMillis() * 1000 }
    /// The store's clock, in milliseconds.
    public var nowMillis: Int64 { clock.nowMillis() }

    /// Publishes the feature table `source` to the online table `name` in `store` (`publish_table`); reading the
    /// table takes SELECT on it.
    public func publish(_ source: String, store: String, name: String?, mode: String, ttlSeconds: Double? = nil, caller: Caller?) async throws -> (name: String, OnlineStore.Publication) {
        let full = try qualified(source)
        var references = StatementReferences()
        references.tablesRead = [full.dotted]
        try await authorize(caller, references)
        let path = try Catalog(warehouse: warehouse).path([full.catalog, full.schema, full.table])
        let table = try Self.open(path, full.dotted)
        guard let pk = PrimaryKey(properties: try table.snapshot().metadata.configuration) else {
            throw KilnError.invalid("\(full.dotted) is not a feature table: it has no primary key, so it cannot be published")
        }
        let target = name ?? full.dotted + "_online"
        return (target, try await online.publish(source: full.dotted, path: path, key: pk, store: store, name: target, mode: mode,
                                                 ttlSeconds: ttlSeconds, now: clock.nowMillis()))
    }

    /// Creates a feature spec after checking its lookups name feature tables the caller may read.
    public func createSpec(_ spec: FeatureSpec, caller: Caller?) async throws -> FeatureSpec {
        var spec = spec
        var references = StatementReferences()
        for i in spec.lookups.indices {
            let full = try qualified(spec.lookups[i].tableName)
            spec.lookups[i].tableName = full.dotted
            references.tablesRead.insert(full.dotted)
            let path = try Catalog(warehouse: warehouse).path([full.catalog, full.schema, full.table])
            guard PrimaryKey(properties: try Self.open(path, full.dotted).snapshot().metadata.configuration) != nil else {
                throw KilnError.invalid("\(full.dotted) is not a feature table: it has no primary key")
            }
        }
        for f in spec.functions { references.functionsCalled.insert(try call(f).function.fullName) }
        try await authorize(caller, references)
        spec.creator = caller?.name
        try await online.createSpec(spec)
        return spec
    }

    /// Serves the spec `name` for a request's rows (a feature-serving endpoint's `invocations`).
    public func serve(_ name: String, request: Frame) async throws -> Frame { try await serve(try await online.spec(name), request: request) }

    /// Serves `spec` (stored, or a model's own): lookups from the online store, then its functions, then exclusions.
    public func serve(_ spec: FeatureSpec, request: Frame) async throws -> Frame {
        var lookupsOnly = spec
        lookupsOnly.exclude = []
        let joined = try await online.serve(lookupsOnly, request: request, now: nowMicros)
        let calls = try spec.functions.map { try call($0) }
        let warehouse = warehouse, python = python
        return TrainingSet.dropping(spec.exclude, from: try await offload { try Self.apply(calls, to: joined, warehouse: warehouse, python: python) })
    }

    /// Checks the caller may read `table` (SELECT); returns its full name.
    public func checkRead(_ table: String, caller: Caller?) async throws -> String {
        let full = try qualified(table)
        var references = StatementReferences()
        references.tablesRead = [full.dotted]
        try await authorize(caller, references)
        return full.dotted
    }

    /// Rows of the online table `name` for `keys`: reading them takes SELECT on its source table.
    public func lookup(_ name: String, keys: [[Value]], columns: [String]?, caller: Caller?) async throws -> (names: [String], rows: [[Value]?]) {
        var references = StatementReferences()
        references.tablesRead = [try await online.table(name).source]
        try await authorize(caller, references)
        return try await online.lookup(name, keys: keys, columns: columns, now: nowMicros)
    }

    /// What a write did.
    public struct WriteResult: Sendable, Equatable {
        public var version: Int64?
        public var inserted: Int
        public var updated: Int
        /// Columns the rows brought that the table did not have (new features).
        public var addedColumns: [String]
    }

    /// Creates a feature table from the columns of `schema` (its rows are written too when it has any), keyed on
    /// `primaryKeys` (NOT NULL), `timeseriesColumn` being one of them. Runs as a `CREATE TABLE` statement, so the
    /// catalog records the caller as its owner.
    public func createTable(_ name: String, primaryKeys: [String], timeseriesColumn: String?, partitionColumns: [String] = [],
                            description: String?, schema: Frame, caller: Caller?) async throws -> WriteResult? {
        guard !primaryKeys.isEmpty else { throw KilnError.invalid("A feature table needs primary_keys: the columns that identify a row") }
        let full = try qualified(name)
        for key in primaryKeys + partitionColumns where schema.index(of: key) == nil {
            throw KilnError.invalid("'\(key)' is not a column of the data; its columns are \(schema.names.joined(separator: ", "))")
        }
        if let timeseriesColumn, !primaryKeys.contains(where: { $0.lowercased() == timeseriesColumn.lowercased() }) {
            throw KilnError.invalid("The timeseries column '\(timeseriesColumn)' must be one of the primary keys (\(primaryKeys.joined(separator: ", ")))")
        }
        let keys = Set(primaryKeys.map { $0.lowercased() })
        var columns = zip(schema.names, schema.columns).map { name, column in
            "\(Self.quote(name)) \(column.type)" + (keys.contains(name.lowercased()) ? " NOT NULL" : "")
        }
        let keyList = primaryKeys.map { $0.lowercased() == timeseriesColumn?.lowercased() ? "\(Self.quote($0)) TIMESERIES" : Self.quote($0) }
        columns.append("CONSTRAINT \(Self.quote(full.table + "_pk")) PRIMARY KEY (\(keyList.joined(separator: ", ")))")
        var sql = "CREATE TABLE \(full.quoted) (\(columns.joined(separator: ", ")))"
        if !partitionColumns.isEmpty { sql += " PARTITIONED BY (\(partitionColumns.map(Self.quote).joined(separator: ", ")))" }
        if let description { sql += " COMMENT '\(description.replacingOccurrences(of: "'", with: "''"))'" }
        // The change data feed lets publish_table bring the online store up to date incrementally.
        sql += " TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')"
        let snapshot = try await statements.execute(sql, caller: caller, wait: 120)
        if let error = snapshot.error { throw error }
        guard schema.rowCount > 0 else { return nil }
        return try await writeTable(name, rows: schema, caller: caller)
    }

    /// Upserts `rows` into the feature table on its primary key (`write_table`'s only mode, merge): matched keys get
    /// the rows' values for the columns the rows have (others keep theirs), new keys are inserted, columns the table
    /// lacks are added first as new features. Refused whole, before anything changes, when a key column is missing or
    /// null or a key repeats (the offending keys named).
    public func writeTable(_ name: String, rows: Frame, caller: Caller?) async throws -> WriteResult {
        let full = try qualified(name)
        var references = StatementReferences()
        references.tablesModified = [full.dotted]
        references.written = [full.dotted]
        try await authorize(caller, references)
        let path = try Catalog(warehouse: warehouse).path([full.catalog, full.schema, full.table])
        return try await offload {
            let table = try Self.open(path, full.dotted)
            let snapshot = try table.snapshot()
            guard let pk = PrimaryKey(properties: snapshot.metadata.configuration) else {
                throw KilnError.invalid("\(full.dotted) is not a feature table: it has no primary key. Add one with ALTER TABLE \(full.dotted) ADD CONSTRAINT pk PRIMARY KEY (...), or create it with create_table(primary_keys=...)")
            }
            try Self.checkKeys(rows, pk, full.dotted)
            let added = rows.names.filter { snapshot.schema.field($0) == nil }
            if !added.isEmpty {
                try table.addColumns(try added.map { DeltaField(name: $0, type: try rows.column($0).type.delta) })
            }
            let source = "__kiln_feature_rows"
            let keySet = Set(pk.columns.map { $0.lowercased() })
            let on = pk.columns.map { "t.\(Self.quote($0)) = s.\(Self.quote($0))" }.joined(separator: " AND ")
            let values = rows.names.filter { !keySet.contains($0.lowercased()) }
            var sql = "MERGE INTO \(full.quoted) AS t USING \(source) AS s ON \(on)"
            if !values.isEmpty {
                sql += " WHEN MATCHED THEN UPDATE SET " + values.map { "\(Self.quote($0)) = s.\(Self.quote($0))" }.joined(separator: ", ")
            }
            sql += " WHEN NOT MATCHED THEN INSERT (\(rows.names.map(Self.quote).joined(separator: ", "))) VALUES (\(rows.names.map { "s.\(Self.quote($0))" }.joined(separator: ", ")))"
            var engine = SQLEngine(catalog: Catalog(warehouse: warehouse))
            engine.inputs[source] = rows
            let result = try engine.execute(sql)
            func count(_ column: String) -> Int { Int(((try? result.column(column))?.value(0).int) ?? 0) }
            return WriteResult(version: try? table.snapshot().version, inserted: count("num_inserted_rows"),
                               updated: count("num_updated_rows"), addedColumns: added)
        }
    }

    /// A feature table's rows (its latest version).
    public func readTable(_ name: String, caller: Caller?) async throws -> Frame {
        let full = try qualified(name)
        var references = StatementReferences()
        references.tablesRead = [full.dotted]
        try await authorize(caller, references)
        let path = try Catalog(warehouse: warehouse).path([full.catalog, full.schema, full.table])
        return try await offload {
            let table = try Self.open(path, full.dotted)
            return try Frame.read(table, plan: try table.plan())
        }
    }

    /// `labels` with the lookups' features joined on (``TrainingSet``), `exclude` dropped. Reads each feature table
    /// once, only the columns its lookups need, in commit order (so ties on key and time go to the newer write).
    public func trainingSet(labels: Frame, lookups: [FeatureLookup], functions: [FeatureFunction] = [], exclude: [String] = [],
                            caller: Caller?) async throws -> Frame {
        var qualifiedLookups = lookups
        var references = StatementReferences()
        for i in qualifiedLookups.indices {
            let full = try qualified(qualifiedLookups[i].tableName)
            qualifiedLookups[i].tableName = full.dotted
            references.tablesRead.insert(full.dotted)
        }
        let calls = try functions.map { try call($0) }
        for c in calls { references.functionsCalled.insert(c.function.fullName) }
        try await authorize(caller, references)
        let warehouse = warehouse, resolved = qualifiedLookups, python = python
        return try await offload {
            var tables: [String: (DeltaTable, DeltaSnapshot)] = [:]
            var keys: [String: (primaryKey: PrimaryKey, columns: [String])] = [:]
            for name in Set(resolved.map(\.tableName)) {
                let table = try Self.open(try Catalog(warehouse: warehouse).path(name.components(separatedBy: ".")), name)
                let snapshot = try table.snapshot()
                guard let pk = PrimaryKey(properties: snapshot.metadata.configuration) else {
                    throw KilnError.invalid("\(name) is not a feature table: it has no primary key (ALTER TABLE \(name) ADD CONSTRAINT pk PRIMARY KEY (...))")
                }
                tables[name] = (table, snapshot)
                keys[name] = (pk, snapshot.schema.fields.map(\.name))
            }
            let needed = try TrainingSet.plan(resolved, labelColumns: labels.names, keys: keys)
            var sources: [String: TrainingSet.Source] = [:]
            for (name, columns) in needed {
                let (table, snapshot) = tables[name]!
                var plan = try table.plan(snapshot)
                // Commit order: files by the time they were written, rows within a file in their order.
                plan.files.sort { ($0.modificationTime, $0.path) < ($1.modificationTime, $1.path) }
                sources[name] = TrainingSet.Source(frame: try Frame.read(table, plan: plan, columns: columns), primaryKey: keys[name]!.primaryKey)
            }
            let joined = try TrainingSet.join(labels: labels, lookups: resolved, sources: sources)
            return TrainingSet.dropping(exclude, from: try Self.apply(calls, to: joined, warehouse: warehouse, python: python))
        }
    }

    // MARK: - On-demand features

    /// A function checked against the catalog: its definition and the SQL that computes it.
    struct Call: Sendable {
        var function: SQLFunction
        var output: String
        var arguments: [String]
    }

    /// Resolves a ``FeatureFunction`` against the catalog's SQL functions.
    func call(_ f: FeatureFunction) throws -> Call {
        let parts = f.udfName.split(separator: ".").map(String.init)
        guard parts.count == 3 else { throw KilnError.invalid("A FeatureFunction names its function catalog.schema.name: '\(f.udfName)'") }
        guard let function = try Catalog(warehouse: warehouse).functionResolver(parts) else {
            throw KilnError.notFound("Function \(f.udfName) does not exist; create it with CREATE FUNCTION")
        }
        let bindings = Dictionary(f.inputBindings.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        let arguments = try function.parameters.map { p -> String in
            guard let column = bindings[p.name.lowercased()] else {
                throw KilnError.invalid("FeatureFunction \(f.udfName) needs input_bindings for its parameter '\(p.name)' (parameters: \(function.parameters.map(\.name).joined(separator: ", ")))")
            }
            return column
        }
        return Call(function: function, output: f.outputName ?? function.fullName, arguments: arguments)
    }

    /// The rows with each function's output appended (in order, so a function may read an earlier one's output),
    /// computed by the SQL engine, or by `python` for a Python function; an output the rows already have is the
    /// caller's and is kept.
    static func apply(_ calls: [Call], to rows: Frame, warehouse: String, python: any PythonFunctionRunning) throws -> Frame {
        var out = rows
        for c in calls where out.index(of: c.output) == nil {
            for column in c.arguments where out.index(of: column) == nil {
                throw KilnError.invalid("\(c.function.fullName) takes the column '\(column)', which the rows do not have; they have \(out.names.joined(separator: ", "))")
            }
            if c.function.language == .python {
                let arguments = try zip(c.arguments, c.function.parameters).map { column, p in
                    try out.columns[out.index(of: column)!].cast(to: try Parser.type(p.typeText))
                }
                let column = try python.call(c.function, arguments: arguments, rows: out.rowCount)
                out = Frame(names: out.names + [c.output], columns: out.columns + [column])
                continue
            }
            var engine = SQLEngine(catalog: Catalog(warehouse: warehouse))
            engine.inputs["__kiln_feature_rows"] = out
            let name = [c.function.catalog, c.function.schema, c.function.name].map(quote).joined(separator: ".")
            let result = try engine.execute("SELECT \(name)(\(c.arguments.map(quote).joined(separator: ", "))) FROM __kiln_feature_rows")
            guard result.rowCount == out.rowCount, let column = result.columns.first else {
                throw KilnError(.internalError, "\(c.function.fullName) gave \(result.rowCount) values for \(out.rowCount) rows")
            }
            out = Frame(names: out.names + [c.output], columns: out.columns + [column])
        }
        return out
    }


    // MARK: - Helpers

    struct Name {
        var catalog: String, schema: String, table: String
        var dotted: String { "\(catalog).\(schema).\(table)" }
        var quoted: String { [catalog, schema, table].map(FeatureStore.quote).joined(separator: ".") }
    }

    func qualified(_ name: String) throws -> Name {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3 else { throw KilnError.invalid("Feature table names have three parts, catalog.schema.table: '\(name)'") }
        let n = try Catalog(warehouse: warehouse).tableName(parts)
        return Name(catalog: n.catalog, schema: n.schema, table: n.table)
    }

    static func quote(_ name: String) -> String { "`" + name.replacingOccurrences(of: "`", with: "``") + "`" }

    static func open(_ path: String, _ name: String) throws -> DeltaTable {
        guard FileManager.default.fileExists(atPath: path + "/_delta_log") else { throw KilnError.notFound("Table \(name) does not exist") }
        return try DeltaTable.open(path)
    }

    /// Every key column present and non-null, and no key twice.
    static func checkKeys(_ rows: Frame, _ pk: PrimaryKey, _ name: String) throws {
        let keys = try pk.columns.map { column in
            guard let i = rows.index(of: column) else {
                throw KilnError.invalid("The rows lack the primary-key column '\(column)' of \(name); every write carries the key (\(pk.columns.joined(separator: ", ")))")
            }
            return rows.columns[i]
        }
        for (column, values) in zip(pk.columns, keys) {
            let nulls = (0..<values.count).filter { values.isNull($0) }.count
            if nulls > 0 { throw KilnError.invalid("The primary-key column '\(column)' is null in \(nulls) of the \(rows.rowCount) rows; keys are NOT NULL") }
        }
        let grouping = Grouping(keys: keys, rows: rows.rowCount)
        guard grouping.count < rows.rowCount else { return }
        var repeated: [String] = []
        var seen = Set<Int>()
        for row in 0..<rows.rowCount where grouping.firstRow[grouping.groupOf[row]] != row && seen.insert(grouping.groupOf[row]).inserted {
            repeated.append("(" + keys.map { $0.value(row).text }.joined(separator: ", ") + ")")
            if repeated.count == 5 { break }
        }
        throw KilnError.invalid("\(rows.rowCount - grouping.count) row(s) repeat a primary key of \(name) (\(pk.columns.joined(separator: ", "))), e.g. \(repeated.joined(separator: ", ")); write one row per key")
    }
}
