import CXGBoost
import Foundation
import KilnCore

/// A gradient-boosted tree model trained and evaluated through XGBoost's C API (libxgboost). The handle is used
/// under a lock: one call at a time per booster.
/// The opened library's functions, for code that runs after `Booster.api()` succeeded (a booster or matrix exists).
private var xgb: KilnXGBoostAPI { try! Booster.api() }

public final class Booster: @unchecked Sendable {
    private var handle: BoosterHandle?
    private let lock = NSLock()

    /// The XGBoost library version, e.g. "1.7.4" ("unknown" where libxgboost is missing).
    public static var libraryVersion: String {
        guard let xgb = try? api() else { return "unknown" }
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        xgb.XGBoostVersion(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }

    private static let library: Result<KilnXGBoostAPI, KilnError> = {
        let api = UnsafeMutablePointer<KilnXGBoostAPI>.allocate(capacity: 1)  // lives as long as the process
        if let problem = kiln_xgboost_open(api) {
            return .failure(KilnError(.internalError, "XGBoost is not available (\(String(cString: problem))): install it with `apt-get install libxgboost0`"))
        }
        return .success(api.pointee)
    }()

    /// libxgboost's functions, opened on first use (not linked: loading it costs every `kiln` process ~2 ms).
    static func api() throws -> KilnXGBoostAPI { try library.get() }

    static func check(_ code: Int32, _ what: String) throws {
        guard code == 0 else {
            let message = xgb.XGBGetLastError().map { String(cString: $0) } ?? "unknown error"
            throw KilnError.invalid("XGBoost \(what) failed: \(message)")
        }
    }

    private init(handle: BoosterHandle?) { self.handle = handle }

    deinit { if let handle { xgb.XGBoosterFree(handle) } }

    /// A DMatrix over row-major features (NaN: missing), with labels when given.
    static func matrix(_ features: [Double], rows: Int, width: Int, labels: [Double]? = nil, weights: [Double]? = nil, groups: [Int]? = nil) throws -> DMatrixHandle {
        _ = try api()
        var out: DMatrixHandle?
        let floats = features.map { Float($0) }
        try check(floats.withUnsafeBufferPointer { xgb.XGDMatrixCreateFromMat($0.baseAddress, bst_ulong(rows), bst_ulong(width), Float.nan, &out) }, "creating a matrix")
        guard let out else { throw KilnError(.internalError, "XGBoost returned no matrix") }
        do {
            if let labels {
                let l = labels.map { Float($0) }
                try check(l.withUnsafeBufferPointer { xgb.XGDMatrixSetFloatInfo(out, "label", $0.baseAddress, bst_ulong(rows)) }, "setting labels")
            }
            if let groups {
                let g = groups.map { UInt32($0) }
                try check(g.withUnsafeBufferPointer { xgb.XGDMatrixSetUIntInfo(out, "group", $0.baseAddress, bst_ulong(g.count)) }, "setting query groups")
            }
            if let weights {
                let w = weights.map { Float($0) }
                try check(w.withUnsafeBufferPointer { xgb.XGDMatrixSetFloatInfo(out, "weight", $0.baseAddress, bst_ulong(rows)) }, "setting weights")
            }
        } catch {
            xgb.XGDMatrixFree(out)
            throw error
        }
        return out
    }

    /// One evaluation line per round: `[round]\tname-metric:value...`, as XGBoost prints it.
    public struct Evaluation: Sendable {
        public var round: Int
        public var values: [String: Double]
    }

    /// Trains `rounds` boosting rounds with `parameters` (XGBoost's names: objective, eta, max_depth, ...). With a
    /// validation set and `earlyStoppingRounds`, stops when the last evaluation metric on it has not improved for
    /// that many rounds and keeps the best rounds only. `progress` sees each round's evaluation.
    public static func train(parameters: [(String, String)], rounds: Int, train: (features: [Double], rows: Int, width: Int, labels: [Double]),
                             groups: [Int]? = nil, validation: (features: [Double], rows: Int, labels: [Double])? = nil, earlyStoppingRounds: Int? = nil,
                             progress: (Evaluation) -> Void = { _ in }) throws -> (booster: Booster, bestRound: Int, history: [Evaluation]) {
        let dtrain = try matrix(train.features, rows: train.rows, width: train.width, labels: train.labels, groups: groups)
        defer { xgb.XGDMatrixFree(dtrain) }
        let dvalid = try validation.map { try matrix($0.features, rows: $0.rows, width: train.width, labels: $0.labels) }
        defer { if let dvalid { xgb.XGDMatrixFree(dvalid) } }
        var handle: BoosterHandle?
        var cache: [DMatrixHandle?] = [dtrain] + (dvalid.map { [$0] } ?? [])
        var evaluated: [DMatrixHandle?] = dvalid.map { [$0] } ?? []
        try check(xgb.XGBoosterCreate(&cache, bst_ulong(cache.count), &handle), "creating a booster")
        let booster = Booster(handle: handle)
        for (key, value) in parameters { try check(xgb.XGBoosterSetParam(handle, key, value), "setting \(key)=\(value)") }
        var history: [Evaluation] = []
        var best = (round: 0, value: Double.infinity, higherIsBetter: false)
        let evalNames = ["validation"]
        for round in 0..<rounds {
            try check(xgb.XGBoosterUpdateOneIter(handle, Int32(round), dtrain), "boosting round \(round)")
            // Evaluating costs a pass over the data each round: only with a validation set (early stopping).
            guard dvalid != nil else {
                best.round = round
                progress(Evaluation(round: round, values: [:]))
                continue
            }
            var result: UnsafePointer<CChar>?
            let cNames = evalNames.map { strdup($0) }
            defer { cNames.forEach { free($0) } }
            var namePointers = cNames.map { UnsafePointer($0) }
            try check(xgb.XGBoosterEvalOneIter(handle, Int32(round), &evaluated, &namePointers, bst_ulong(evaluated.count), &result), "evaluating round \(round)")
            let evaluation = Evaluation(round: round, values: parseEvaluation(result.map { String(cString: $0) } ?? ""))
            history.append(evaluation)
            progress(evaluation)
            if let earlyStoppingRounds {
                // The last metric on the validation set decides (XGBoost's rule).
                guard let key = evaluation.values.keys.filter({ $0.hasPrefix("validation-") }).sorted().last, let value = evaluation.values[key] else { continue }
                let metric = String(key.dropFirst("validation-".count))
                let higher = ["auc", "aucpr", "map", "ndcg", "pre"].contains { metric.hasPrefix($0) }
                if round == 0 || (higher ? value > best.value : value < best.value) { best = (round, value, higher) }
                if round - best.round >= earlyStoppingRounds { break }
            } else {
                best.round = round
            }
        }
        if dvalid != nil, earlyStoppingRounds != nil, best.round + 1 < history.count {
            // Keep the best rounds only.
            var sliced: BoosterHandle?
            try check(xgb.XGBoosterSlice(handle, 0, Int32(best.round + 1), 1, &sliced), "keeping the best rounds")
            return (Booster(handle: sliced), best.round, history)
        }
        return (booster, best.round, history)
    }

    static func parseEvaluation(_ line: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for part in line.split(separator: "\t").dropFirst() {
            let kv = part.split(separator: ":", maxSplits: 1)
            if kv.count == 2, let v = Double(kv[1]) { out[String(kv[0])] = v }
        }
        return out
    }

    /// Raw predictions (`output_margin`: scores before the link) or transformed ones (probabilities for
    /// classification), row-major with one column per output; `contributions` gives SHAP values (features + bias
    /// per output).
    public func predict(_ features: [Double], rows: Int, width: Int, margin: Bool = false, contributions: Bool = false) throws -> (values: [Double], shape: [Int]) {
        guard rows > 0 else { return ([], [0]) }
        let type = contributions ? 2 : margin ? 1 : 0
        var shape: UnsafePointer<bst_ulong>?
        var dimension: bst_ulong = 0
        var result: UnsafePointer<Float>?
        if contributions {
            let dmatrix = try Booster.matrix(features, rows: rows, width: width)
            defer { xgb.XGDMatrixFree(dmatrix) }
            lock.lock()
            defer { lock.unlock() }
            let config = "{\"type\": \(type), \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, \"strict_shape\": false}"
            try Booster.check(xgb.XGBoosterPredictFromDMatrix(handle, dmatrix, config, &shape, &dimension, &result), "predicting")
        } else {
            // In-place prediction straight from the doubles (no DMatrix, no copy): XGBoost reads them through the
            // array interface.
            lock.lock()
            defer { lock.unlock() }
            let config = "{\"type\": \(type), \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, \"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}"
            try features.withUnsafeBufferPointer { buffer in
                let address = UInt(bitPattern: buffer.baseAddress)
                let interface = "{\"data\": [\(address), true], \"shape\": [\(rows), \(width)], \"typestr\": \"<f8\", \"version\": 3}"
                try Booster.check(xgb.XGBoosterPredictFromDense(handle, interface, config, nil, &shape, &dimension, &result), "predicting")
            }
        }
        let dims = (0..<Int(dimension)).map { Int(shape![$0]) }
        let count = dims.reduce(1, *)
        let values = (0..<count).map { Double(result![$0]) }
        return (values, dims)
    }

    /// The model as XGBoost's JSON document (what `Booster.save_model("model.json")` writes in Python).
    public func json() throws -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        var length: bst_ulong = 0
        var bytes: UnsafePointer<CChar>?
        try Booster.check(xgb.XGBoosterSaveModelToBuffer(handle, "{\"format\": \"json\"}", &length, &bytes), "saving the model")
        return bytes.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(length))) } ?? []
    }

    /// A booster from XGBoost JSON (or UBJSON) bytes.
    public static func load(_ model: [UInt8]) throws -> Booster {
        _ = try api()
        var handle: BoosterHandle?
        try check(xgb.XGBoosterCreate(nil, 0, &handle), "creating a booster")
        let booster = Booster(handle: handle)
        try check(model.withUnsafeBytes { xgb.XGBoosterLoadModelFromBuffer(handle, $0.baseAddress, bst_ulong($0.count)) }, "loading the model")
        return booster
    }

    /// Feature importance of `type` (weight, gain, cover, total_gain, total_cover) by feature index (`f0`, `f1`, …).
    public func importance(_ type: String = "gain") throws -> [String: Double] {
        lock.lock()
        defer { lock.unlock() }
        var count: bst_ulong = 0
        var names: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        var dims: bst_ulong = 0
        var shape: UnsafePointer<bst_ulong>?
        var scores: UnsafePointer<Float>?
        try Booster.check(xgb.XGBoosterFeatureScore(handle, "{\"importance_type\": \"\(type)\"}", &count, &names, &dims, &shape, &scores), "feature importance")
        var out: [String: Double] = [:]
        for i in 0..<Int(count) {
            if let name = names?[i] { out[String(cString: name)] = Double(scores![i]) }
        }
        return out
    }

    /// Boosted rounds in the model.
    public var rounds: Int {
        lock.lock()
        defer { lock.unlock() }
        var n: Int32 = 0
        _ = xgb.XGBoosterBoostedRounds(handle, &n)
        return Int(n)
    }
}
