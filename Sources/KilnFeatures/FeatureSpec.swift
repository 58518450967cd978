import Foundation
import KilnCore
import KilnFrame

/// A feature spec (Databricks' `create_feature_spec`): lookups served together by key — the unit a feature-serving
/// endpoint serves. Its lookups read the online tables published from their feature tables (the latest row per key;
/// timestamps are not used online, as on Databricks).
public struct FeatureSpec: Sendable, Equatable {
    public var name: String
    public var lookups: [FeatureLookup]
    public var functions: [FeatureFunction]
    public var exclude: [String]
    public var creator: String?

    public init(name: String, lookups: [FeatureLookup], functions: [FeatureFunction] = [], exclude: [String] = [], creator: String? = nil) {
        self.name = name
        self.lookups = lookups
        self.functions = functions
        self.exclude = exclude
        self.creator = creator
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = ["name": .string(name), "exclude_columns": .array(exclude.map(JSONValue.string)),
                                      "feature_lookups": .array(lookups.map(Self.lookupJSON))]
        if !functions.isEmpty { o["feature_functions"] = .array(functions.map(Self.functionJSON)) }
        if let creator { o["creator"] = .string(creator) }
        return .object(o)
    }

    public init(json: JSONValue) throws {
        guard case .object(let o) = json, case .string(let name)? = o["name"] else { throw KilnError.invalid("A feature spec needs a name") }
        var items: [JSONValue] = [], calls: [JSONValue] = []
        if case .array(let l)? = o["feature_lookups"] { items = l }
        if case .array(let f)? = o["feature_functions"] { calls = f }
        guard !items.isEmpty || !calls.isEmpty else {
            throw KilnError.invalid("Feature spec \(name) needs features: FeatureLookups or FeatureFunctions")
        }
        self.name = name
        lookups = try items.map(Self.lookup)
        functions = try calls.map(Self.function)
        exclude = try Self.strings(o["exclude_columns"], "exclude_columns") ?? []
        if case .string(let c)? = o["creator"] { creator = c }
    }

    // MARK: - Lookups as JSON (the wire's and the file's spelling: Databricks' argument names)

    public static func lookupJSON(_ l: FeatureLookup) -> JSONValue {
        var o: [String: JSONValue] = ["table_name": .string(l.tableName), "lookup_key": .array(l.lookupKey.map(JSONValue.string)),
                                      "rename_outputs": .object(l.renameOutputs.mapValues(JSONValue.string))]
        if let f = l.featureNames { o["feature_names"] = .array(f.map(JSONValue.string)) }
        if let t = l.timestampLookupKey { o["timestamp_lookup_key"] = .string(t) }
        if let b = l.lookbackMicros { o["lookback_window_seconds"] = .number(String(Double(b) / 1_000_000)) }
        o["default_values"] = .object(l.defaultValues.mapValues { v in
            switch v {
            case .bool(let b): return .bool(b)
            case .int(let n): return .number(String(n))
            case .double(let d): return .number(String(d))
            case .null: return .null
            default: return .string(v.text)
            }
        })
        return .object(o)
    }

    public static func functionJSON(_ f: FeatureFunction) -> JSONValue {
        var o: [String: JSONValue] = ["udf_name": .string(f.udfName), "input_bindings": .object(f.inputBindings.mapValues(JSONValue.string))]
        if let output = f.outputName { o["output_name"] = .string(output) }
        return .object(o)
    }

    public static func function(_ value: JSONValue) throws -> FeatureFunction {
        guard case .object(let o) = value, case .string(let udf)? = o["udf_name"] else { throw KilnError.invalid("A FeatureFunction needs udf_name") }
        var bindings: [String: String] = [:]
        if case .object(let b)? = o["input_bindings"] {
            for (k, v) in b {
                guard case .string(let column) = v else { throw KilnError.invalid("input_bindings of \(udf) maps parameters to column names") }
                bindings[k] = column
            }
        }
        var output: String?
        if case .string(let s)? = o["output_name"] { output = s }
        return FeatureFunction(udfName: udf, inputBindings: bindings, outputName: output)
    }

    public static func lookup(_ value: JSONValue) throws -> FeatureLookup {
        guard case .object(let o) = value else { throw KilnError.invalid("Each feature lookup is an object") }
        guard case .string(let table)? = o["table_name"] else { throw KilnError.invalid("A feature lookup needs table_name") }
        guard let keys = try strings(o["lookup_key"], "lookup_key"), !keys.isEmpty else {
            throw KilnError.invalid("The lookup on \(table) needs lookup_key: a column name or a list of them")
        }
        var rename: [String: String] = [:]
        if case .object(let r)? = o["rename_outputs"] {
            for (k, v) in r {
                guard case .string(let s) = v else { throw KilnError.invalid("rename_outputs maps feature names to strings") }
                rename[k] = s
            }
        }
        var defaults: [String: Value] = [:]
        if case .object(let d)? = o["default_values"] {
            for (k, v) in d {
                switch v {
                case .string(let s): defaults[k] = .string(s)
                case .bool(let b): defaults[k] = .bool(b)
                case .number(let n):
                    if let i = Int64(n) { defaults[k] = .int(i) } else if let x = Double(n) { defaults[k] = .double(x) }
                case .null: defaults[k] = .null
                default: throw KilnError.invalid("default_values[\(k)] must be a number, string or boolean")
                }
            }
        }
        var lookback: Int64?
        if let v = o["lookback_window_seconds"], v != .null {
            guard case .number(let text) = v, let seconds = Double(text), seconds >= 0 else {
                throw KilnError.invalid("lookback_window_seconds must be a number of seconds, 0 or more")
            }
            lookback = Int64((seconds * 1_000_000).rounded())
        }
        var timestampKey: String?
        if case .string(let s)? = o["timestamp_lookup_key"] { timestampKey = s }
        return FeatureLookup(tableName: table, lookupKey: keys, featureNames: try strings(o["feature_names"], "feature_names"),
                             renameOutputs: rename, timestampLookupKey: timestampKey, lookbackMicros: lookback, defaultValues: defaults)
    }

    public static func strings(_ value: JSONValue?, _ field: String) throws -> [String]? {
        switch value {
        case nil, .null?: return nil
        case .string(let s)?: return [s]
        case .array(let items)?:
            return try items.map {
                guard case .string(let s) = $0 else { throw KilnError.invalid("\(field) is a list of column names") }
                return s
            }
        default: throw KilnError.invalid("\(field) is a list of column names")
        }
    }
}

/// Feature rows as JSON, as lookups and feature serving answer them.
public enum FeatureJSON {
    /// A value as JSON: numbers as numbers, dates and timestamps as text, binary as base64, non-finite doubles as text,
    /// arrays, maps and structs as JSON.
    public static func write(_ value: Value, into w: inout JSONWriter) { NestedText.writeScalar(value, into: &w) }

    /// `{"dataframe_split": {"columns": [...], "data": [[...] per row]}}`: a scoring request of the rows.
    public static func scoringRequest(_ frame: Frame) -> String {
        var w = JSONWriter()
        w.object { w in
            w.key("dataframe_split")
            w.object { w in
                w.key("columns")
                w.array { w in for name in frame.names { w.value(name) } }
                w.key("data")
                w.array { w in
                    for i in 0..<frame.rowCount {
                        w.array { w in for column in frame.columns { write(column.exactValue(i), into: &w) } }
                    }
                }
            }
        }
        return String(decoding: w.bytes, as: UTF8.self)
    }

    /// `{"outputs": [{column: value, ...} per row]}`.
    public static func outputs(_ frame: Frame) -> String {
        var w = JSONWriter()
        w.object { w in
            w.key("outputs")
            w.array { w in
                for i in 0..<frame.rowCount {
                    w.object { w in
                        for (name, column) in zip(frame.names, frame.columns) {
                            w.key(name)
                            write(column.exactValue(i), into: &w)
                        }
                    }
                }
            }
        }
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
