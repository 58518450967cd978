import Foundation
import KilnCore
import KilnLearn

/// Typed reads of a JSON object's fields with `INVALID_PARAMETER_VALUE` errors that name the field: what REST
/// bodies and job task parameters share.
public struct JSONFields: Sendable {
    public var fields: [String: JSONValue]

    public init(_ fields: [String: JSONValue]) { self.fields = fields }

    /// A string; numbers and booleans are taken as their text.
    public func string(_ key: String) throws -> String? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        case .number(let n)?: return n
        case .bool(let b)?: return b ? "true" : "false"
        case let other?: throw KilnError.invalid("\(key) must be a string, got \(other.typeName)")
        }
    }

    public func require(_ key: String) throws -> String {
        guard let value = try string(key), !value.isEmpty else { throw KilnError.invalid("Missing value for required parameter '\(key)'") }
        return value
    }

    public func int64(_ key: String) throws -> Int64? {
        guard let text = try string(key) else { return nil }
        if let v = Int64(text) { return v }
        if let d = Double(text), d == d.rounded(), abs(d) < 9.2e18 { return Int64(d) }
        throw KilnError.invalid("\(key) must be an integer, got '\(text)'")
    }

    public func double(_ key: String) throws -> Double? {
        guard let text = try string(key) else { return nil }
        guard let v = Double(text) else { throw KilnError.invalid("\(key) must be a number, got '\(text)'") }
        return v
    }

    /// A list of strings; a comma-separated string is taken as a list too.
    public func strings(_ key: String) throws -> [String]? {
        switch fields[key] {
        case nil, .null?: return nil
        case .array(let items)?:
            return try items.map {
                guard case .string(let s) = $0 else { throw KilnError.invalid("\(key) must be a list of strings") }
                return s
            }
        case .string(let s)?: return s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        case let other?: throw KilnError.invalid("\(key) must be a list of strings, got \(other.typeName)")
        }
    }

    /// A map of names to scalars, as text.
    public func map(_ key: String) throws -> [String: String] {
        guard let value = fields[key], value != .null else { return [:] }
        guard case .object(let object) = value else { throw KilnError.invalid("\(key) must be an object of name: value") }
        var out: [String: String] = [:]
        for (k, v) in object {
            switch v {
            case .string(let s): out[k] = s
            case .number(let n): out[k] = n
            case .bool(let b): out[k] = b ? "true" : "false"
            default: throw KilnError.invalid("\(key).\(k) must be a string, number or boolean")
            }
        }
        return out
    }
}

extension TrainRequest {
    /// A training request from JSON fields, as `POST /api/2.0/kiln/train` and the jobs' native `train` task take
    /// it: table, target, algorithm, test_table | split, task, params, features, seed, experiment, register,
    /// run_name, table_version, test_table_version, pipeline, folds, cohorts, run_id.
    public init(json: [String: JSONValue]) throws {
        let m = JSONFields(json)
        let algorithmName = try m.require("algorithm")
        guard let algorithm = Algorithm(rawValue: algorithmName) else {
            throw KilnError.invalid("Unknown algorithm '\(algorithmName)'; use one of \(Algorithm.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var task: LearningTask?
        if let name = try m.string("task") {
            guard let t = LearningTask(rawValue: name) else { throw KilnError.invalid("task must be classification, regression, clustering or ranking") }
            task = t
        }
        var seed: UInt64 = 0
        if let s = try m.int64("seed") {
            guard s >= 0 else { throw KilnError.invalid("seed must not be negative") }
            seed = UInt64(s)
        }
        var pipeline: Pipeline?
        if let value = json["pipeline"], value != .null {
            do {
                if case .array = value { pipeline = Pipeline(stages: try LearnJSON.decoder().decode([Stage].self, from: Data(value.json.utf8))) }
                else { pipeline = try LearnJSON.decoder().decode(Pipeline.self, from: Data(value.json.utf8)) }
            } catch {
                throw KilnError.invalid("pipeline is not a valid pipeline: \(error)")
            }
        }
        self.init(table: try m.require("table"), target: algorithm == .kmeans ? try m.string("target") ?? "" : try m.require("target"), algorithm: algorithm,
                  testTable: try m.string("test_table"), split: try m.double("split"), task: task, params: try m.map("params"),
                  features: try m.strings("features"), seed: seed, experiment: try m.string("experiment"), register: try m.string("register"),
                  runName: try m.string("run_name"), tableVersion: try m.int64("table_version"),
                  testTableVersion: try m.int64("test_table_version"), pipeline: pipeline)
        folds = try m.int64("folds").map { Int($0) }
        cohorts = try m.strings("cohorts")
        runID = try m.string("run_id")
    }
}
