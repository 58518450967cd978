import Foundation
import KilnCore
import KilnFrame
import KilnLake

/// Features to join from one feature table onto label rows, as Databricks' `FeatureLookup` names them.
public struct FeatureLookup: Sendable, Equatable {
    /// The feature table, `catalog.schema.table`.
    public var tableName: String
    /// Label columns matched, in order, to the table's primary-key columns other than its TIMESERIES column (or to
    /// all of them, for an exact-match join on a time-series table).
    public var lookupKey: [String]
    /// Features to take; nil: every column outside the primary key.
    public var featureNames: [String]?
    /// Output names for features (feature → output column).
    public var renameOutputs: [String: String]
    /// The label column holding each row's time: a point-in-time join on the table's TIMESERIES column.
    public var timestampLookupKey: String?
    /// The oldest a feature row may be, in microseconds before the label time (inclusive); nil: no limit.
    public var lookbackMicros: Int64?
    /// Values for rows with no matching feature row (feature → value).
    public var defaultValues: [String: Value]

    public init(tableName: String, lookupKey: [String], featureNames: [String]? = nil, renameOutputs: [String: String] = [:],
                timestampLookupKey: String? = nil, lookbackMicros: Int64? = nil, defaultValues: [String: Value] = [:]) {
        self.tableName = tableName
        self.lookupKey = lookupKey
        self.featureNames = featureNames
        self.renameOutputs = renameOutputs
        self.timestampLookupKey = timestampLookupKey
        self.lookbackMicros = lookbackMicros
        self.defaultValues = defaultValues
    }
}

/// A feature computed on demand by a catalog SQL function (Databricks' `FeatureFunction`): its parameters bound to
/// columns of the rows (labels, or features looked up before), its result the column `outputName` (by default the
/// function's full name). The same function runs for training sets, `score_batch` and serving.
public struct FeatureFunction: Sendable, Equatable {
    public var udfName: String
    public var inputBindings: [String: String]
    public var outputName: String?

    public init(udfName: String, inputBindings: [String: String], outputName: String? = nil) {
        self.udfName = udfName
        self.inputBindings = inputBindings
        self.outputName = outputName
    }
}

/// Training sets: label rows with features joined on, by the rules of Databricks' Feature Engineering client.
///
/// - Exact lookups match every primary-key column; point-in-time lookups match the keys and take, per label row, the
///   feature row with the greatest time not after the label's (inclusive `<=`), whole: its nulls stay null.
/// - `lookbackMicros` drops a match older than that (microsecond precision; Databricks compares whole seconds).
/// - No match: null, or the lookup's default. Label rows are never dropped, duplicated or reordered.
/// - A feature whose output column the labels already have is skipped: the caller's value wins.
/// - Ties on (key, time) go to the feature row that comes last in `table` (callers pass rows in commit order).
public enum TrainingSet {
    /// One lookup's table: its rows (at least the key and the wanted features) and primary key.
    public struct Source: Sendable {
        public var frame: Frame
        public var primaryKey: PrimaryKey
        public init(frame: Frame, primaryKey: PrimaryKey) {
            self.frame = frame
            self.primaryKey = primaryKey
        }
    }

    /// Checks `lookups` against their tables' keys (before any table is read): the columns each needs, by table.
    public static func plan(_ lookups: [FeatureLookup], labelColumns: [String], keys: [String: (primaryKey: PrimaryKey, columns: [String])]) throws -> [String: [String]] {
        var needed: [String: [String]] = [:]
        var lookback: [String: Int64?] = [:]
        var outputs: [String: String] = [:]
        let labels = Set(labelColumns.map { $0.lowercased() })
        for lookup in lookups {
            guard let (pk, columns) = keys[lookup.tableName] else { throw KilnError.notFound("Feature table \(lookup.tableName) does not exist") }
            let (keyColumns, time) = try matchedKeys(lookup, pk)
            for column in lookup.lookupKey + [lookup.timestampLookupKey].compactMap({ $0 }) where !labels.contains(column.lowercased()) {
                throw KilnError.invalid("The lookup on \(lookup.tableName) uses the column '\(column)', which the label rows do not have; they have \(labelColumns.joined(separator: ", "))")
            }
            let table = lookup.tableName.lowercased()
            if let earlier = lookback[table], earlier != lookup.lookbackMicros {
                throw KilnError.invalid("Lookups on \(lookup.tableName) give different lookback windows; one feature table takes one lookback window")
            }
            lookback[table] = lookup.lookbackMicros
            let features = try featureNames(lookup, pk, columns)
            for feature in features {
                let output = lookup.renameOutputs[feature] ?? feature
                if labels.contains(output.lowercased()) { continue }
                if let other = outputs[output.lowercased()] {
                    throw KilnError.invalid("Two lookups give a column named '\(output)' (from \(other) and \(lookup.tableName)); rename one with rename_outputs")
                }
                outputs[output.lowercased()] = lookup.tableName
            }
            var wanted = needed[lookup.tableName] ?? []
            for column in keyColumns + [time].compactMap({ $0 }) + features where !wanted.contains(column) { wanted.append(column) }
            needed[lookup.tableName] = wanted
        }
        return needed
    }

    /// The label rows with every lookup's features appended, in lookup order, then `exclude` dropped.
    public static func join(labels: Frame, lookups: [FeatureLookup], sources: [String: Source], exclude: [String] = []) throws -> Frame {
        var out = labels
        for lookup in lookups {
            guard let source = sources[lookup.tableName] else { throw KilnError.notFound("Feature table \(lookup.tableName) does not exist") }
            let (keyColumns, time) = try matchedKeys(lookup, source.primaryKey)
            let table = source.frame
            let leftKeys = try lookup.lookupKey.map { try labels.column($0) }
            let rightKeys = try keyColumns.map { try table.column($0) }
            var rows: [Int]
            if let time, let labelTime = lookup.timestampLookupKey {
                let leftOn = try labels.column(labelTime), rightOn = try table.column(time)
                for (column, name) in [(leftOn, labelTime), (rightOn, time)] where column.type != .date && column.type != .timestamp {
                    throw KilnError.invalid("The timestamp lookup key '\(name)' is a \(column.type); it must be a DATE or TIMESTAMP")
                }
                rows = try Frame.asofJoinPairs(leftKeys: leftKeys, rightKeys: rightKeys, leftOn: leftOn, rightOn: rightOn, op: ">=",
                                               leftRows: labels.rowCount, rightRows: table.rowCount, outer: true).right
                if let lookback = lookup.lookbackMicros {
                    let l = try micros(leftOn), r = try micros(rightOn)
                    for i in rows.indices where rows[i] >= 0 && l[i] - r[rows[i]] > lookback { rows[i] = -1 }
                }
            } else {
                rows = try exactRows(leftKeys: leftKeys, rightKeys: rightKeys, labels: labels.rowCount, table: table.rowCount, name: lookup.tableName)
            }
            out = try appending(try featureNames(lookup, source.primaryKey, table.names), of: lookup, from: table, rows: rows, to: out)
        }
        return dropping(exclude, from: out)
    }

    /// `out` with each feature of `table` at `rows` (a row per row of `out`, -1 for none: the lookup's default, else
    /// null) appended under its output name; a name `out` already has is the caller's and is skipped.
    static func appending(_ features: [String], of lookup: FeatureLookup, from table: Frame, rows: [Int], to out: Frame) throws -> Frame {
        var out = out
        for feature in features {
            let output = lookup.renameOutputs[feature] ?? feature
            if out.index(of: output) != nil { continue }
            var column = try table.column(feature)
            var picks = rows
            if let fallback = lookup.defaultValues[feature], fallback != .null, rows.contains(-1) {
                column = Column.concatenate([column, Column.from([fallback], type: column.type)])
                picks = rows.map { $0 < 0 ? table.rowCount : $0 }
            }
            out = Frame(names: out.names + [output], columns: out.columns + [column.take(optional: picks)])
        }
        return out
    }

    /// The frame without the columns `exclude` names (case-insensitively).
    static func dropping(_ exclude: [String], from frame: Frame) -> Frame {
        let dropped = Set(exclude.map { $0.lowercased() })
        let kept = frame.names.indices.filter { !dropped.contains(frame.names[$0].lowercased()) }
        return Frame(names: kept.map { frame.names[$0] }, columns: kept.map { frame.columns[$0] })
    }

    /// The table's key columns the lookup key matches, and its time column when the join is point-in-time.
    static func matchedKeys(_ lookup: FeatureLookup, _ pk: PrimaryKey) throws -> (keys: [String], time: String?) {
        let time = pk.timeseries.first
        let plain = pk.columns.filter { $0 != time }
        let described = pk.columns.map { $0 == time ? "\($0) TIMESERIES" : $0 }.joined(separator: ", ")
        if lookup.timestampLookupKey != nil {
            guard let time else {
                throw KilnError.invalid("\(lookup.tableName) has no TIMESERIES key column, so a lookup on it takes no timestamp_lookup_key")
            }
            guard lookup.lookupKey.count == plain.count else {
                throw KilnError.invalid("The lookup on \(lookup.tableName) gives \(lookup.lookupKey.count) lookup key column(s); its primary key (\(described)) needs \(plain.count) besides the time")
            }
            return (plain, time)
        }
        if time != nil, lookup.lookupKey.count == plain.count {
            throw KilnError.invalid("\(lookup.tableName) is a time-series feature table (primary key \(described)): give the lookup a timestamp_lookup_key, or a lookup key for every key column to match exactly")
        }
        guard lookup.lookupKey.count == pk.columns.count else {
            throw KilnError.invalid("The lookup on \(lookup.tableName) gives \(lookup.lookupKey.count) lookup key column(s); its primary key (\(described)) has \(pk.columns.count)")
        }
        return (pk.columns, nil)
    }

    /// The features a lookup takes: its names (each a column of the table, not a key), or every non-key column.
    static func featureNames(_ lookup: FeatureLookup, _ pk: PrimaryKey, _ columns: [String]) throws -> [String] {
        let keys = Set(pk.columns.map { $0.lowercased() })
        guard let names = lookup.featureNames else { return columns.filter { !keys.contains($0.lowercased()) } }
        return try names.map { name in
            guard let found = columns.first(where: { $0.lowercased() == name.lowercased() }) else {
                throw KilnError.invalid("\(lookup.tableName) has no feature '\(name)'; its features are \(columns.filter { !keys.contains($0.lowercased()) }.joined(separator: ", "))")
            }
            guard !keys.contains(found.lowercased()) else { throw KilnError.invalid("'\(found)' is a primary-key column of \(lookup.tableName), not a feature") }
            return found
        }
    }

    /// Exact-match rows: the feature row of each label row's key, or -1.
    static func exactRows(leftKeys: [Column], rightKeys: [Column], labels: Int, table: Int, name: String) throws -> [Int] {
        let pairs = try Frame.equiJoinPairs(leftKeys: leftKeys, rightKeys: rightKeys, leftRows: labels, rightRows: table)
        var rows = [Int](repeating: -1, count: labels)
        // Keys are unique in a feature table written by merge; rows written around it keep the last one.
        for (l, r) in zip(pairs.left, pairs.right) where r > rows[l] { rows[l] = r }
        return rows
    }

    /// A date or timestamp column in microseconds (nulls read as 0; callers skip them).
    static func micros(_ column: Column) throws -> [Int64] {
        guard case .int(let v) = try column.cast(to: .timestamp).values else { return [] }
        return v
    }
}
