import Foundation
import KilnCore
import KilnFrame
import KilnLake

/// The embedded online store: per published feature table, the latest row of each primary key, in memory for
/// lookups by key, kept on disk (`<folder>/<table>.parquet` and `.json`, each replaced atomically) so a restart
/// serves what was last published. No extra service to start.
///
/// Publishing reads the offline table: `SNAPSHOT` (and the first publish) takes the latest row per key of the whole
/// table; `TRIGGERED`/`CONTINUOUS` apply the change data feed since the last published version when the table records
/// one — inserted and updated rows replace a key's row only when their time is not older (a replayed old batch never
/// overwrites a newer value), and keys whose online row was deleted are looked up again in the table — else they
/// fall back to a snapshot. After each publish every key's online row equals the offline latest row.
public actor OnlineStore {
    /// A named online store (Databricks' Lakebase-backed stores; here a namespace with a capacity label).
    public struct Store: Sendable, Equatable {
        public var name: String
        public var capacity: String
        public var creationTime: Int64
        public var creator: String?
    }

    /// A published table: where it came from and what it holds.
    public struct Table: Sendable {
        public var name: String
        public var source: String
        /// The source table's folder (re-read by CONTINUOUS publishing).
        public var path: String
        public var store: String
        public var keys: [String]
        public var timeseries: String?
        public var version: Int64
        public var mode: String
        public var publishedAt: Int64
        /// Rows whose time is older than this (microseconds before now) are not served: a lookup answers as for a
        /// missing key, never with a stale value. Needs a TIMESERIES key; nil: no limit.
        public var ttlMicros: Int64?
        /// Every row written, including rows of keys since replaced or removed (see `index`).
        public var rows: Frame
        /// The row of each key.
        var index: [[Value]: Int]
        public var keyCount: Int { index.count }

        /// Whether `row` may be served at `now` (microseconds since the epoch).
        func fresh(_ row: Int, now: Int64) -> Bool {
            guard let ttl = ttlMicros, let time = timeseries, let column = try? rows.column(time) else { return true }
            guard let t = column.value(row).int else { return false }
            return t >= now - ttl
        }

        /// Drops the rows no key points at.
        mutating func compact() throws {
            let live = index.values.sorted()
            guard live.count < rows.rowCount else { return }
            rows = rows.take(live)
            index = try OnlineStore.index(rows, keys: keys)
        }
    }

    /// What a publish did.
    public struct Publication: Sendable, Equatable {
        public var version: Int64
        public var incremental: Bool
        /// Rows read from the table (the whole table for a snapshot, the changes for an incremental publish).
        public var rowsRead: Int
        public var keys: Int
    }

    let folder: String
    var stores: [String: Store] = [:]
    var tables: [String: Table] = [:]
    /// Feature specs, served by feature-serving endpoints.
    var specs: [String: FeatureSpec] = [:]
    /// Tables being published now (one publish of a table at a time).
    var publishing: Set<String> = []
    /// CONTINUOUS tables' publishing loops.
    var streams: [String: Task<Void, Never>] = [:]
    /// How often a CONTINUOUS table looks for new commits.
    public static let streamInterval: Duration = .milliseconds(500)
    /// The last failure of each table's CONTINUOUS publishing, until one succeeds.
    public private(set) var streamErrors: [String: String] = [:]
    /// Saves to disk run one after another, off the publish path; a failure is kept per table until a save succeeds.
    var saving: Task<Void, Never>?
    public private(set) var saveErrors: [String: String] = [:]
    /// The published tables found on disk at open, being read in the background (so a server with large online
    /// tables starts at once); everything that touches `tables` waits for them first (``ready()``).
    var loading: Task<[String: (store: String, outcome: Result<Table, KilnError>)], Never>?
    /// Tables whose files could not be read at open (why, and their store): named in the error of every use until
    /// published again or dropped.
    var loadErrors: [String: (message: String, store: String)] = [:]

    /// Opens the store kept in `folder`; its published tables are read in the background.
    public init(folder: String) throws {
        self.folder = folder
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if let data = FileManager.default.contents(atPath: folder + "/stores.json"), case .array(let items)? = try? JSONValue.parse(Array(data)) {
            for case .object(let o) in items {
                guard case .string(let name)? = o["name"] else { continue }
                var capacity = "CU_1", created: Int64 = 0, creator: String?
                if case .string(let c)? = o["capacity"] { capacity = c }
                if case .number(let t)? = o["creation_time"] { created = Int64(t) ?? 0 }
                if case .string(let c)? = o["creator"] { creator = c }
                stores[name] = Store(name: name, capacity: capacity, creationTime: created, creator: creator)
            }
        }
        if let data = FileManager.default.contents(atPath: folder + "/specs.json"), case .array(let items)? = try? JSONValue.parse(Array(data)) {
            for item in items { if let spec = try? FeatureSpec(json: item) { specs[spec.name] = spec } }
        }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter {
            $0.hasSuffix(".json") && $0 != "stores.json" && $0 != "specs.json"
        }
        loading = Task.detached(priority: .userInitiated) {
            var loaded: [String: (store: String, outcome: Result<Table, KilnError>)] = [:]
            for file in files {
                guard let (name, store, outcome) = Self.load(file, folder: folder) else { continue }
                loaded[name] = (store, outcome)
            }
            return loaded
        }
    }

    /// Reads one published table's description and rows; nil when `file` describes none.
    static func load(_ file: String, folder: String) -> (String, String, Result<Table, KilnError>)? {
        guard let data = FileManager.default.contents(atPath: folder + "/" + file), case .object(let o)? = try? JSONValue.parse(Array(data)),
              case .string(let name)? = o["name"], case .string(let source)? = o["source"], case .string(let store)? = o["store"],
              case .array(let keys)? = o["keys"], case .number(let version)? = o["version"],
              case .string(let file)? = o["file"] else { return nil }
        guard let bytes = FileManager.default.contents(atPath: folder + "/" + file) else {
            return (name, store, .failure(KilnError(.internalError, "its rows file \(file) is missing")))
        }
        var timeseries: String?
        if case .string(let t)? = o["timeseries"] { timeseries = t }
        var mode = "SNAPSHOT", published: Int64 = 0
        if case .string(let m)? = o["mode"] { mode = m }
        if case .number(let p)? = o["published_at"] { published = Int64(p) ?? 0 }
        var ttl: Int64?
        if case .number(let t)? = o["ttl_micros"] { ttl = Int64(t) }
        var sourcePath = ""
        if case .string(let p)? = o["path"] { sourcePath = p }
        let keyNames = keys.compactMap { if case .string(let s) = $0 { return s }; return nil }
        do {
            let rows = try Frame.read(parquetBytes: Array(bytes))
            return (name, store, .success(Table(name: name, source: source, path: sourcePath, store: store, keys: keyNames, timeseries: timeseries,
                                         version: Int64(version) ?? 0, mode: mode, publishedAt: published, ttlMicros: ttl, rows: rows,
                                         index: try Self.index(rows, keys: keyNames))))
        } catch {
            return (name, store, .failure(error as? KilnError ?? KilnError(.internalError, "\(error)")))
        }
    }

    /// Waits until the tables on disk at open have been read.
    public func ready() async {
        guard let task = loading else { return }
        let loaded = await task.value
        guard loading != nil else { return }  // another caller merged them while this one waited
        loading = nil
        for (name, entry) in loaded where tables[name] == nil {
            switch entry.outcome {
            case .success(let table): tables[name] = table
            case .failure(let error): loadErrors[name] = (error.message, entry.store)
            }
        }
    }

    // MARK: - Stores

    public func createStore(_ name: String, capacity: String?, creator: String?, now: Int64) throws -> Store {
        try Self.checkName(name, "online store")
        guard stores[name] == nil else { throw KilnError.alreadyExists("Online store \(name) already exists") }
        let store = Store(name: name, capacity: capacity ?? "CU_1", creationTime: now, creator: creator)
        stores[name] = store
        try saveStores()
        return store
    }

    public func store(_ name: String) throws -> Store {
        guard let store = stores[name] else { throw KilnError.notFound("Online store \(name) does not exist") }
        return store
    }

    public func listStores() -> [Store] { stores.values.sorted { $0.name < $1.name } }

    /// Deletes a store; refused while tables are published to it.
    public func deleteStore(_ name: String) async throws {
        await ready()
        _ = try store(name)
        if let table = tables.values.first(where: { $0.store == name }) {
            throw KilnError(.invalidState, "Online store \(name) still serves \(table.name); drop its online tables first")
        }
        stores[name] = nil
        try saveStores()
    }

    // MARK: - Tables

    public func table(_ name: String) async throws -> Table {
        await ready()
        if let error = loadErrors[name] {
            throw KilnError(.internalError, "Online table \(name) could not be read from \(folder) (\(error.message)); publish it again or drop it")
        }
        guard let table = tables[name] else { throw KilnError.notFound("Online table \(name) does not exist; publish a feature table to it first") }
        return table
    }

    public func listTables() async -> [Table] {
        await ready()
        return tables.values.sorted { $0.name < $1.name }
    }

    /// The store an online table belongs to (also for one whose file could not be read).
    public func store(ofTable name: String) async throws -> String {
        await ready()
        if let damaged = loadErrors[name] { return damaged.store }
        return try await table(name).store
    }

    public func dropTable(_ name: String) async throws {
        await ready()
        // A table whose file could not be read can still be dropped (its description and file go).
        if loadErrors.removeValue(forKey: name) != nil {
            Self.remove(name, folder: folder)
            return
        }
        _ = try await table(name)
        streams.removeValue(forKey: name)?.cancel()
        tables[name] = nil
        Self.remove(name, folder: folder)
    }

    /// Publishes the feature table at `path` (named `source`, keyed by `key`) to `name` in `store`.
    /// `ttlSeconds` sets the table's TTL (nil keeps the one it has).
    public func publish(source: String, path: String, key: PrimaryKey, store: String, name: String, mode: String, ttlSeconds: Double? = nil,
                        now: Int64) async throws -> Publication {
        await ready()
        if ttlSeconds != nil, key.timeseries.isEmpty {
            throw KilnError.invalid("A TTL needs a TIMESERIES key on \(source): the age of a row is the time in its key")
        }
        _ = try self.store(store)
        try Self.checkName(name, "online table")
        guard ["SNAPSHOT", "TRIGGERED", "CONTINUOUS"].contains(mode) else {
            throw KilnError.invalid("publish_mode is SNAPSHOT, TRIGGERED or CONTINUOUS, not \(mode)")
        }
        if let existing = tables[name], existing.source != source {
            throw KilnError.alreadyExists("Online table \(name) already publishes \(existing.source); pick another online_table_name")
        }
        guard publishing.insert(name).inserted else {
            throw KilnError(.invalidState, "A publish of \(name) is running; try again when it has finished")
        }
        defer { publishing.remove(name) }
        let previous = tables[name]
        let keys = key.columns.filter { !key.timeseries.contains($0) }
        let timeseries = key.timeseries.first
        let (table, publication) = try await offload { () -> (Table, Publication) in
            let delta = try DeltaTable.open(path)
            let snapshot = try delta.snapshot()
            if let previous, mode != "SNAPSHOT", previous.keys == keys, previous.timeseries == timeseries,
               let updated = try Self.incremental(previous, delta: delta, snapshot: snapshot) {
                return updated
            }
            let rows = try Self.latest(try Self.read(delta, snapshot), keys: keys, timeseries: timeseries)
            let table = Table(name: name, source: source, path: path, store: store, keys: keys, timeseries: timeseries, version: snapshot.version,
                              mode: mode, publishedAt: now, ttlMicros: previous?.ttlMicros, rows: rows, index: try Self.index(rows, keys: keys))
            return (table, Publication(version: snapshot.version, incremental: false, rowsRead: rows.rowCount, keys: rows.rowCount))
        }
        var published = table
        published.path = path
        published.mode = mode
        published.publishedAt = now
        if let ttlSeconds { published.ttlMicros = Int64((ttlSeconds * 1_000_000).rounded()) }
        published.store = store
        tables[name] = published
        loadErrors[name] = nil
        scheduleSave(published)
        if mode == "CONTINUOUS" { startStream(name) } else { streams.removeValue(forKey: name)?.cancel() }
        return publication
    }

    /// Rows for `keys` (each in the table's key order, as scalars): the columns named (all by default), nil for a
    /// key the table does not hold.
    public func lookup(_ name: String, keys: [[Value]], columns wanted: [String]? = nil, now: Int64) async throws -> (names: [String], rows: [[Value]?]) {
        let table = try await self.table(name)
        let columns = try (wanted ?? table.rows.names).map { column -> Int in
            guard let i = table.rows.index(of: column) else {
                throw KilnError.invalid("Online table \(name) has no column '\(column)'; it has \(table.rows.names.joined(separator: ", "))")
            }
            return i
        }
        let types = try table.keys.map { try table.rows.column($0).type }
        let rows = try keys.map { key -> [Value]? in
            guard key.count == types.count else {
                throw KilnError.invalid("A key of \(name) has \(types.count) value(s) (\(table.keys.joined(separator: ", "))), not \(key.count)")
            }
            let normalized = zip(key, types).map { Column.from([$0], type: $1).value(0) }
            guard let row = table.index[normalized], table.fresh(row, now: now) else { return nil }
            return columns.map { table.rows.columns[$0].exactValue(row) }
        }
        return (columns.map { table.rows.names[$0] }, rows)
    }

    // MARK: - CONTINUOUS publishing

    /// Starts (once) the loop that publishes `name` incrementally whenever its source table gains a commit, so the
    /// online rows trail the table by about ``streamInterval`` plus the publish.
    func startStream(_ name: String) {
        guard streams[name] == nil else { return }
        streams[name] = Task.detached { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: OnlineStore.streamInterval)
                guard let self, await self.streamStep(name) else { return }
            }
        }
    }

    /// One look at the source table; false when the table is no longer published continuously.
    func streamStep(_ name: String) async -> Bool {
        guard let table = tables[name], table.mode == "CONTINUOUS" else {
            streams[name] = nil
            return false
        }
        do {
            let latest = try DeltaTable.open(table.path).log.latestVersion() ?? 0
            guard latest > table.version else { return true }
            let key = PrimaryKey(name: "pk", columns: table.keys + [table.timeseries].compactMap { $0 }, timeseries: [table.timeseries].compactMap { $0 })
            _ = try await publish(source: table.source, path: table.path, key: key, store: table.store, name: name, mode: "CONTINUOUS",
                                  now: Int64(Date().timeIntervalSince1970 * 1000))
            streamErrors[name] = nil
        } catch let error as KilnError where error.code == .invalidState {
            // A publish of it is running (by hand): the next look catches up.
        } catch {
            streamErrors[name] = "\(error)"
        }
        return true
    }

    /// Starts the loops of the tables published CONTINUOUS (after a restart).
    public func resumeStreams() async {
        await ready()
        for table in tables.values where table.mode == "CONTINUOUS" { startStream(table.name) }
    }

    /// Stops every loop (shutdown).
    public func stopStreams() {
        for task in streams.values { task.cancel() }
        streams = [:]
    }

    // MARK: - Feature specs and serving

    public func createSpec(_ spec: FeatureSpec) throws {
        try Self.checkName(spec.name, "feature spec")
        guard specs[spec.name] == nil else { throw KilnError.alreadyExists("Feature spec \(spec.name) already exists") }
        specs[spec.name] = spec
        try saveSpecs()
    }

    public func spec(_ name: String) throws -> FeatureSpec {
        guard let spec = specs[name] else { throw KilnError.notFound("Feature spec \(name) does not exist") }
        return spec
    }

    public func hasSpec(_ name: String) -> Bool { specs[name] != nil }

    public func deleteSpec(_ name: String) throws {
        _ = try spec(name)
        specs[name] = nil
        try saveSpecs()
    }

    func saveSpecs() throws {
        try Self.replace(folder + "/specs.json", Data(JSONText.string(.array(specs.keys.sorted().map { specs[$0]!.json })).utf8))
    }

    /// The request's rows with the spec's features joined on from the online tables published from its lookups'
    /// tables (the latest row per key); columns the request has win, the spec's excluded columns are dropped.
    /// - Throws: `INVALID_PARAMETER_VALUE` naming a missing key column, or keys no online row has (unless the lookup
    ///   gives defaults for every feature it takes); `RESOURCE_DOES_NOT_EXIST` for a table never published.
    public func serve(_ name: String, request: Frame, now: Int64) async throws -> Frame { try await serve(try spec(name), request: request, now: now) }

    /// ``serve(_:request:)`` for a spec that is not stored (a model's own lookups).
    public func serve(_ spec: FeatureSpec, request: Frame, now: Int64) async throws -> Frame {
        await ready()
        let name = spec.name
        var out = request
        for lookup in spec.lookups {
            guard let table = tables.values.sorted(by: { $0.publishedAt > $1.publishedAt }).first(where: { $0.source == lookup.tableName }) else {
                throw KilnError.notFound("\(lookup.tableName) is not published to an online store; publish_table it before serving \(name)")
            }
            guard lookup.lookupKey.count == table.keys.count else {
                throw KilnError.invalid("The lookup on \(lookup.tableName) gives \(lookup.lookupKey.count) key column(s); its online table is keyed by \(table.keys.joined(separator: ", "))")
            }
            let keyColumns = try zip(lookup.lookupKey, table.keys).map { requested, stored -> Column in
                guard let i = request.index(of: requested) else {
                    throw KilnError.invalid("The request lacks the column '\(requested)', the key of \(lookup.tableName); send it in every record")
                }
                return try request.columns[i].cast(to: try table.rows.column(stored).type)
            }
            let keySet = Set(table.keys + [table.timeseries].compactMap { $0 })
            let features = try lookup.featureNames.map { names in
                try names.map { n -> String in
                    guard table.rows.index(of: n) != nil else { throw KilnError.invalid("\(lookup.tableName) has no feature '\(n)' online") }
                    return n
                }
            } ?? table.rows.names.filter { !keySet.contains($0) }
            var rows = [Int](repeating: -1, count: request.rowCount)
            var missing: [String] = []
            let defaulted = features.allSatisfy { lookup.defaultValues[$0] != nil }
            for i in 0..<request.rowCount {
                let key = keyColumns.map { $0.value(i) }
                if let row = table.index[key] {
                    if table.fresh(row, now: now) { rows[i] = row; continue }
                    if !defaulted, missing.count < 5 { missing.append("(" + key.map(\.text).joined(separator: ", ") + ", older than the TTL)") }
                } else if !defaulted, missing.count < 5 {
                    missing.append("(" + key.map(\.text).joined(separator: ", ") + ")")
                }
            }
            if !missing.isEmpty {
                throw KilnError.invalid("No online row of \(lookup.tableName) for key \(missing.joined(separator: ", ")) (\(lookup.lookupKey.joined(separator: ", "))); publish the table again or send only known keys")
            }
            out = try TrainingSet.appending(features, of: lookup, from: table.rows, rows: rows, to: out)
        }
        return TrainingSet.dropping(spec.exclude, from: out)
    }

    // MARK: - Publishing

    /// The table's rows, files in the order they were written (later writes win ties).
    static func read(_ delta: DeltaTable, _ snapshot: DeltaSnapshot) throws -> Frame {
        var plan = try delta.plan(snapshot)
        plan.files.sort { ($0.modificationTime, $0.path) < ($1.modificationTime, $1.path) }
        return try Frame.read(delta, plan: plan)
    }

    /// The latest row of each key: the greatest time (the later row on ties); the last row for a table without one.
    static func latest(_ rows: Frame, keys: [String], timeseries: String?) throws -> Frame {
        let grouping = Grouping(keys: try keys.map { try rows.column($0) }, rows: rows.rowCount)
        var best = [Int](repeating: -1, count: grouping.count)
        let times = try timeseries.map { try rows.column($0).cast(to: .timestamp) }
        var stamps: [Int64] = []
        if let times, case .int(let v) = times.values { stamps = v }
        for row in 0..<rows.rowCount {
            let g = grouping.groupOf[row]
            guard let times else { best[g] = row; continue }
            if times.isNull(row) { if best[g] < 0 { best[g] = row }; continue }
            if best[g] < 0 || times.isNull(best[g]) || stamps[row] >= stamps[best[g]] { best[g] = row }
        }
        return rows.take(best)
    }

    static func index(_ rows: Frame, keys: [String]) throws -> [[Value]: Int] {
        let columns = try keys.map { try rows.column($0) }
        var index: [[Value]: Int] = [:]
        index.reserveCapacity(rows.rowCount)
        for row in 0..<rows.rowCount { index[columns.map { $0.value(row) }] = row }
        return index
    }

    /// Applies the change data feed since `previous.version`; nil when the table keeps none for that range or its
    /// columns changed (then a snapshot is taken).
    static func incremental(_ previous: Table, delta: DeltaTable, snapshot: DeltaSnapshot) throws -> (Table, Publication)? {
        guard snapshot.version > previous.version else {
            return (previous, Publication(version: previous.version, incremental: true, rowsRead: 0, keys: previous.keyCount))
        }
        guard snapshot.metadata.configuration["delta.enableChangeDataFeed"]?.lowercased() == "true",
              snapshot.schema.fields.map(\.name) == previous.rows.names else { return nil }
        let types = previous.rows.columns.map(\.type)
        var upserts: [[Value]] = []
        var deleted: [[Value]] = []
        do {
            try delta.changes(from: previous.version + 1, to: snapshot.version) { change in
                let values = zip(change.cells, types).map { Value(cell: $0, type: $1) }
                switch change.changeType {
                case "insert", "update_postimage": upserts.append(values)
                case "delete": deleted.append(values)
                default: break
                }
                return true
            }
        } catch {
            return nil
        }
        var table = previous
        let names = table.rows.names
        let keyIndexes = table.keys.compactMap { names.firstIndex(of: $0) }
        let timeIndex = table.timeseries.flatMap { names.firstIndex(of: $0) }
        func newer(_ a: Value, than b: Value) -> Bool {
            switch (a.int, b.int) {
            case (let x?, let y?): return x >= y
            case (nil, _?): return false
            default: return true
            }
        }
        var current: [[Value]: [Value]] = [:]
        var stale = Set<[Value]>()
        // A key with a deleted row (whichever, in whatever order with its inserts) is looked up again in the table.
        for row in deleted { stale.insert(keyIndexes.map { row[$0] }) }
        for row in upserts {
            let key = keyIndexes.map { row[$0] }
            // A key whose online row was deleted is settled from the table below, whatever else changed.
            guard !stale.contains(key) else { continue }
            let existing = current[key] ?? table.index[key].map { at in names.indices.map { table.rows.columns[$0].value(at) } }
            if let timeIndex, let existing, !newer(row[timeIndex], than: existing[timeIndex]) { continue }
            current[key] = row
        }
        if !stale.isEmpty {
            // Keys whose latest row went away: their latest row now, from the table.
            let all = try latest(try read(delta, snapshot), keys: table.keys, timeseries: table.timeseries)
            let columns = try table.keys.map { try all.column($0) }
            for row in 0..<all.rowCount {
                let key = columns.map { $0.value(row) }
                if stale.contains(key) { current[key] = all.row(row); stale.remove(key) }
            }
        }
        // Changed keys take a new row at the end (the old one becomes garbage), keys gone leave the index: the cost is
        // the changes plus one copy per column. Rows are compacted once garbage passes a quarter of them.
        var index = table.index
        for key in stale where current[key] == nil { index[key] = nil }
        let changed = Array(current)
        var next = table.rows.rowCount
        for (key, _) in changed {
            index[key] = next
            next += 1
        }
        let added = Frame(names: names, columns: names.indices.map { c in Column.from(changed.map { $0.value[c] }, type: types[c]) })
        table.rows = Frame.concatenate([table.rows, added])
        table.index = index
        if index.count * 4 < table.rows.rowCount * 3 { try table.compact() }
        table.version = snapshot.version
        return (table, Publication(version: snapshot.version, incremental: true, rowsRead: upserts.count + deleted.count, keys: table.keyCount))
    }

    // MARK: - Files

    /// Writes `table` to disk after the saves before it, without holding up lookups or the publish that made it.
    /// A crash before it finishes leaves the previous publish on disk, with its version: the next TRIGGERED publish
    /// catches up from there.
    func scheduleSave(_ table: Table) {
        let previous = saving, folder = folder
        saving = Task.detached {
            await previous?.value
            let outcome = Result { try Self.write(table, folder: folder) }
            await self.saved(table, outcome)
        }
    }

    func saved(_ table: Table, _ outcome: Result<Void, any Error>) {
        switch outcome {
        case .success:
            saveErrors[table.name] = nil
            // Dropped meanwhile: take the files away again.
            if tables[table.name] == nil { Self.remove(table.name, folder: folder) }
        case .failure(let error): saveErrors[table.name] = "\(error)"
        }
    }

    /// Waits for every save scheduled so far (server shutdown, tests).
    public func flush() async { await saving?.value }

    /// The live rows as `<table>.v<version>.parquet`, then the description naming that file (renamed into place
    /// last, so a reader sees one whole version or the one before); older row files are removed.
    static func write(_ table: Table, folder: String) throws {
        let base = folder + "/" + fileName(table.name)
        var live = table
        try live.compact()
        let file = fileName(table.name) + ".v\(table.version).parquet"
        try replace(folder + "/" + file, Data(try live.rows.parquetBytes()))
        var spec: [String: JSONValue] = ["name": .string(table.name), "source": .string(table.source), "store": .string(table.store),
                                         "keys": .array(table.keys.map(JSONValue.string)), "version": .number(String(table.version)),
                                         "mode": .string(table.mode), "published_at": .number(String(table.publishedAt)), "file": .string(file)]
        if let t = table.timeseries { spec["timeseries"] = .string(t) }
        if let ttl = table.ttlMicros { spec["ttl_micros"] = .number(String(ttl)) }
        spec["path"] = .string(table.path)
        try replace(base + ".json", Data(JSONText.string(.object(spec)).utf8))
        for other in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        where other.hasPrefix(fileName(table.name) + ".v") && other.hasSuffix(".parquet") && other != file {
            try? FileManager.default.removeItem(atPath: folder + "/" + other)
        }
    }

    static func remove(_ name: String, folder: String) {
        for file in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        where file == fileName(name) + ".json" || (file.hasPrefix(fileName(name) + ".v") && file.hasSuffix(".parquet")) {
            try? FileManager.default.removeItem(atPath: folder + "/" + file)
        }
    }

    func saveStores() throws {
        let items = listStores().map { s -> JSONValue in
            var o: [String: JSONValue] = ["name": .string(s.name), "capacity": .string(s.capacity), "creation_time": .number(String(s.creationTime))]
            if let c = s.creator { o["creator"] = .string(c) }
            return .object(o)
        }
        try Self.replace(folder + "/stores.json", Data(JSONText.string(.array(items)).utf8))
    }

    /// Writes a file whole: a temporary file, flushed, renamed over the old one.
    static func replace(_ path: String, _ data: Data) throws {
        let temporary = path + ".tmp-" + UUID().uuidString
        guard FileManager.default.createFile(atPath: temporary, contents: data), let handle = FileHandle(forWritingAtPath: temporary) else {
            throw KilnError(.internalError, "Cannot write \(temporary)")
        }
        try handle.synchronize()
        try handle.close()
        guard rename(temporary, path) == 0 else {
            try? FileManager.default.removeItem(atPath: temporary)
            throw KilnError(.internalError, "Cannot replace \(path)")
        }
    }

    static func fileName(_ name: String) -> String { name.replacingOccurrences(of: "/", with: "_") }

    static func checkName(_ name: String, _ what: String) throws {
        guard !name.isEmpty, name.count <= 255, !name.contains("/"), !name.hasPrefix("."), !name.contains("\0") else {
            throw KilnError.invalid("Invalid \(what) name '\(name)': 1 to 255 characters, no '/'")
        }
    }
}
