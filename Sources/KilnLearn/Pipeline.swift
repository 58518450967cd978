import Foundation
import KilnCore
import KilnFrame

/// One pipeline stage with Spark ML's semantics: its parameters, and after `fit` its fitted state. Stages are
/// values: the same struct is the definition a user writes (JSON) and the fitted stage saved with a model.
///
/// ```json
/// [{"kind": "string_indexer", "input_cols": ["color"], "output_cols": ["color_index"], "handle_invalid": "keep"},
///  {"kind": "one_hot_encoder", "input_cols": ["color_index"], "output_cols": ["color_vec"]},
///  {"kind": "vector_assembler", "input_cols": ["color_vec", "size"], "output_cols": ["features"]}]
/// ```
public struct Stage: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case stringIndexer = "string_indexer", oneHotEncoder = "one_hot_encoder", vectorAssembler = "vector_assembler"
        case standardScaler = "standard_scaler", minMaxScaler = "min_max_scaler", imputer, bucketizer
        case quantileDiscretizer = "quantile_discretizer", featureHasher = "feature_hasher", tokenizer
        case hashingTF = "hashing_tf", idf
    }

    public var kind: Kind
    public var inputCols: [String]
    public var outputCols: [String]
    // Parameters (nil: Spark's default).
    /// error (default), skip (drop the row) or keep (an extra index/bucket, or NaN kept by the assembler).
    public var handleInvalid: String?
    /// StringIndexer order: frequencyDesc (default; ties alphabetical), frequencyAsc, alphabetDesc, alphabetAsc.
    public var stringOrderType: String?
    public var dropLast: Bool?
    public var withMean: Bool?
    public var withStd: Bool?
    /// MinMaxScaler's target range (default [0, 1]).
    public var min: Double?
    public var max: Double?
    /// Imputer: mean (default), median or mode; `missingValue` (default NaN) counts as missing besides nulls.
    public var strategy: String?
    public var missingValue: Double?
    /// Bucketizer's splits per input column (QuantileDiscretizer: the fitted splits).
    public var splits: [[Double]]?
    public var numBuckets: Int?
    /// Hashed width (default 2^18, as Spark).
    public var numFeatures: Int?
    public var categoricalCols: [String]?
    public var binary: Bool?
    public var minDocFreq: Int?
    // Fitted state.
    public var labels: [[String]]?
    public var categorySizes: [Int]?
    public var mean: [Double]?
    public var std: [Double]?
    public var originalMin: [Double]?
    public var originalMax: [Double]?
    public var surrogates: [Double]?
    public var idf: [Double]?

    enum CodingKeys: String, CodingKey {
        case kind, inputCols = "input_cols", outputCols = "output_cols", handleInvalid = "handle_invalid", stringOrderType = "string_order_type"
        case dropLast = "drop_last", withMean = "with_mean", withStd = "with_std", min, max, strategy, missingValue = "missing_value"
        case splits, numBuckets = "num_buckets", numFeatures = "num_features", categoricalCols = "categorical_cols", binary
        case minDocFreq = "min_doc_freq", labels, categorySizes = "category_sizes", mean, std, originalMin = "original_min"
        case originalMax = "original_max", surrogates, idf
    }

    public init(_ kind: Kind, inputs: [String], outputs: [String]) {
        self.kind = kind
        self.inputCols = inputs
        self.outputCols = outputs
    }

    /// Whether `fit` learns state from data (Spark's estimators); the others are plain transformers.
    public var isEstimator: Bool {
        switch kind {
        case .stringIndexer, .oneHotEncoder, .standardScaler, .minMaxScaler, .imputer, .quantileDiscretizer, .idf: true
        case .vectorAssembler, .bucketizer, .featureHasher, .tokenizer, .hashingTF: false
        }
    }

    /// `kind(inputs)`, for messages and the logged `pipeline` parameter.
    public var name: String { "\(kind.rawValue)(\(inputCols.joined(separator: ", ")))" }

    /// Checks the parameters before any data is read.
    func validate() throws {
        let invalid = handleInvalid ?? "error"
        guard ["error", "skip", "keep"].contains(invalid) else { throw KilnError.invalid("\(name): handle_invalid is error, skip or keep, not '\(invalid)'") }
        guard !inputCols.isEmpty else { throw KilnError.invalid("\(kind.rawValue): input_cols is empty") }
        switch kind {
        case .vectorAssembler, .featureHasher:
            guard outputCols.count == 1 else { throw KilnError.invalid("\(name) writes one output column; give output_cols one name") }
        case .standardScaler, .minMaxScaler, .tokenizer, .hashingTF, .idf:
            guard inputCols.count == 1, outputCols.count == 1 else { throw KilnError.invalid("\(name) reads one column and writes one: give one input and one output") }
        default:
            guard outputCols.count == inputCols.count else { throw KilnError.invalid("\(name): give one output column per input column") }
        }
        if kind == .stringIndexer, let order = stringOrderType,
           !["frequencyDesc", "frequencyAsc", "alphabetDesc", "alphabetAsc"].contains(order) {
            throw KilnError.invalid("\(name): string_order_type is frequencyDesc, frequencyAsc, alphabetDesc or alphabetAsc")
        }
        if kind == .imputer, let s = strategy, !["mean", "median", "mode"].contains(s) { throw KilnError.invalid("\(name): strategy is mean, median or mode") }
        if kind == .bucketizer {
            guard let splits, splits.count == inputCols.count else { throw KilnError.invalid("\(name) needs splits: one list per input column") }
            for s in splits {
                guard s.count >= 3, zip(s, s.dropFirst()).allSatisfy({ $0 < $1 }) else {
                    throw KilnError.invalid("\(name): splits need at least 3 strictly increasing values, got \(s)")
                }
            }
        }
        if kind == .quantileDiscretizer, (numBuckets ?? 2) < 2 { throw KilnError.invalid("\(name): num_buckets must be at least 2") }
        if [.featureHasher, .hashingTF].contains(kind), (numFeatures ?? 1) < 1 { throw KilnError.invalid("\(name): num_features must be positive") }
        if kind == .minMaxScaler, (min ?? 0) >= (max ?? 1) { throw KilnError.invalid("\(name): min must be below max") }
    }

    // MARK: Fit

    /// This stage fitted on `table` (transformers come back unchanged).
    public func fit(_ table: FeatureTable) throws -> Stage {
        try validate()
        var out = self
        switch kind {
        case .stringIndexer:
            out.labels = try inputCols.map { name in
                var counts: [String: Int] = [:]
                for case let text? in try categories(name, table) { counts[text, default: 0] += 1 }
                guard !counts.isEmpty else { throw KilnError.invalid("\(self.name): column '\(name)' has only nulls") }
                switch stringOrderType ?? "frequencyDesc" {
                case "frequencyAsc": return counts.sorted { $0.value != $1.value ? $0.value < $1.value : $0.key < $1.key }.map(\.key)
                case "alphabetDesc": return counts.keys.sorted(by: >)
                case "alphabetAsc": return counts.keys.sorted()
                default: return counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map(\.key)
                }
            }
        case .oneHotEncoder:
            out.categorySizes = try inputCols.map { name in
                let values = try table.numbers(name, for: self.name).filter { !$0.isNaN }
                if let bad = values.first(where: { $0 < 0 || $0 != $0.rounded() }) {
                    throw KilnError.invalid("\(self.name): '\(name)' holds \(bad); one-hot encoding needs category indices 0, 1, 2, … (index strings with a string_indexer first)")
                }
                return Int(values.max() ?? 0) + 1
            }
        case .standardScaler, .minMaxScaler:
            let rows = try vector(inputCols[0], table)
            guard !rows.values.contains(where: { $0.isNaN }) else { throw KilnError.invalid("\(name): '\(inputCols[0])' has missing values; put an imputer first") }
            let n = Double(rows.rows)
            var sum = [Double](repeating: 0, count: rows.width), sq = sum
            var low = [Double](repeating: .infinity, count: rows.width), high = [Double](repeating: -.infinity, count: rows.width)
            var stored = [Int](repeating: 0, count: rows.width)
            for e in rows.values.indices {
                let j = Int(rows.indices[e]), v = rows.values[e]
                sum[j] += v
                low[j] = Swift.min(low[j], v)
                high[j] = Swift.max(high[j], v)
                stored[j] += 1
            }
            for j in 0..<rows.width where stored[j] < rows.rows { low[j] = Swift.min(low[j], 0); high[j] = Swift.max(high[j], 0) }
            let mean = sum.map { $0 / Swift.max(n, 1) }
            for e in rows.values.indices { let j = Int(rows.indices[e]), d = rows.values[e] - mean[j]; sq[j] += d * d }
            for j in 0..<rows.width { sq[j] += Double(rows.rows - stored[j]) * mean[j] * mean[j] }  // unstored zeros
            if kind == .standardScaler {
                out.mean = mean
                out.std = sq.map { n > 1 ? ($0 / (n - 1)).squareRoot() : 0 }
            } else {
                out.originalMin = low
                out.originalMax = high
            }
        case .imputer:
            let missing = missingValue ?? .nan
            out.surrogates = try inputCols.map { name in
                let values = try table.numbers(name, for: self.name).filter { !$0.isNaN && !($0 == missing) }.sorted()
                guard !values.isEmpty else { throw KilnError.invalid("\(self.name): every value of '\(name)' is missing; no surrogate can be computed") }
                switch strategy ?? "mean" {
                case "median":
                    let m = values.count / 2
                    return values.count % 2 == 1 ? values[m] : (values[m - 1] + values[m]) / 2
                case "mode":
                    var best = values[0], bestCount = 0, i = 0
                    while i < values.count {
                        var j = i
                        while j + 1 < values.count && values[j + 1] == values[i] { j += 1 }
                        if j - i + 1 > bestCount { (best, bestCount) = (values[i], j - i + 1) }
                        i = j + 1
                    }
                    return best
                default: return values.reduce(0, +) / Double(values.count)
                }
            }
        case .quantileDiscretizer:
            let buckets = numBuckets ?? 2
            out.splits = try inputCols.map { name in
                let values = try table.numbers(name, for: self.name).filter { !$0.isNaN }.sorted()
                guard !values.isEmpty else { throw KilnError.invalid("\(self.name): '\(name)' has no values") }
                // The smallest value whose cumulative share reaches each probability i/numBuckets.
                var cuts: [Double] = []
                for i in 1..<buckets {
                    let rank = Swift.max(0, Int((Double(i) / Double(buckets) * Double(values.count)).rounded(.up)) - 1)
                    let v = values[Swift.min(rank, values.count - 1)]
                    if cuts.last != v { cuts.append(v) }
                }
                return [-.infinity] + cuts + [.infinity]
            }
        case .idf:
            let rows = try vector(inputCols[0], table)
            var documents = [Int](repeating: 0, count: rows.width)
            for e in rows.values.indices where rows.values[e] != 0 { documents[Int(rows.indices[e])] += 1 }
            let m = Double(rows.rows), minimum = minDocFreq ?? 0
            out.idf = documents.map { $0 >= minimum ? Foundation.log((m + 1) / (Double($0) + 1)) : 0 }
        case .vectorAssembler, .bucketizer, .featureHasher, .tokenizer, .hashingTF:
            break
        }
        return out
    }

    // MARK: Transform

    /// Adds this stage's output columns to `table` (and drops rows under handle_invalid=skip).
    /// - Throws: for an estimator that was not fitted, or invalid data under handle_invalid=error.
    public func transform(_ table: inout FeatureTable) throws {
        let invalid = handleInvalid ?? "error"
        var keep = [Bool](repeating: true, count: table.rowCount)
        func notFitted() -> KilnError { KilnError.invalid("\(name) is not fitted") }
        switch kind {
        case .stringIndexer:
            guard let labels else { throw notFitted() }
            for (c, name) in inputCols.enumerated() {
                let index = Dictionary(uniqueKeysWithValues: labels[c].enumerated().map { ($1, Double($0)) })
                let texts = try categories(name, table)
                var out = [Double](repeating: 0, count: texts.count)
                for (i, text) in texts.enumerated() {
                    if let text, let k = index[text] { out[i] = k; continue }
                    switch invalid {
                    case "keep": out[i] = Double(labels[c].count)
                    case "skip": keep[i] = false
                    default:
                        throw KilnError.invalid(text == nil ? "\(self.name): '\(name)' is null in a row; set handle_invalid to keep or skip"
                                                            : "\(self.name): unseen label '\(text!)' in '\(name)'; set handle_invalid to keep or skip")
                    }
                }
                table.set(outputCols[c], .numbers(out))
                table.labels[outputCols[c]] = labels[c] + (invalid == "keep" ? ["__unknown"] : [])
            }
        case .oneHotEncoder:
            guard let sizes = categorySizes else { throw notFitted() }
            for (c, name) in inputCols.enumerated() {
                let values = try table.numbers(name, for: self.name)
                let slots = sizes[c] + (invalid == "keep" ? 1 : 0)
                let width = slots - ((dropLast ?? true) ? 1 : 0)
                let labels = table.labels[name]
                var rows = SparseRows(width: width, slotNames: (0..<width).map { k in "\(name)_\(labels.flatMap { k < $0.count ? $0[k] : nil } ?? String(k))" })
                for (i, v) in values.enumerated() {
                    var k: Int
                    if !v.isNaN, v >= 0, v == v.rounded(), Int(v) < sizes[c] { k = Int(v) }
                    else if invalid == "keep" { k = sizes[c] }
                    else { throw KilnError.invalid("\(self.name): '\(name)' holds \(v), outside the \(sizes[c]) categories seen in fitting; set handle_invalid to keep") }
                    if k >= width { k = -1 }  // the dropped last slot
                    rows.append(k >= 0 ? [(k, 1)] : [])
                }
                table.set(outputCols[c], .vectors(rows))
            }
        case .vectorAssembler:
            var parts: [(name: String, values: FeatureValues)] = []
            var width = 0, names: [String] = []
            for name in inputCols {
                let column = try table.column(name)
                switch column {
                case .numbers: width += 1; names.append(name)
                case .vectors(let v): width += v.width; names += v.slotNames
                default: throw KilnError.invalid("\(self.name): '\(name)' holds \(column.kind); the assembler takes numbers and vectors")
                }
                parts.append((name, column))
            }
            var out = SparseRows(width: width, slotNames: names)
            out.indices.reserveCapacity(table.rowCount * width)
            out.values.reserveCapacity(table.rowCount * width)
            for i in 0..<table.rowCount {
                var base = 0
                for part in parts {
                    switch part.values {
                    case .numbers(let v):
                        if v[i].isNaN {
                            if invalid == "error" { throw KilnError.invalid("\(self.name): '\(part.name)' is missing (null or NaN) in a row; impute it, or set handle_invalid to keep or skip") }
                            if invalid == "skip" { keep[i] = false }
                        }
                        out.indices.append(Int32(base)); out.values.append(v[i])
                        base += 1
                    case .vectors(let v):
                        for e in v.range(i) {
                            if v.values[e].isNaN, invalid != "keep" {
                                if invalid == "error" { throw KilnError.invalid("\(self.name): vector '\(part.name)' holds NaN; set handle_invalid to keep or skip") }
                                keep[i] = false
                            }
                            out.indices.append(Int32(base) + v.indices[e]); out.values.append(v.values[e])
                        }
                        base += v.width
                    default: break
                    }
                }
                out.offsets.append(out.indices.count)
            }
            table.set(outputCols[0], .vectors(out))
        case .standardScaler:
            guard let mean, let std else { throw notFitted() }
            let rows = try vector(inputCols[0], table)
            let center = withMean ?? false, scale = withStd ?? true
            let factor = std.map { scale ? ($0 != 0 ? 1 / $0 : 0) : 1 }
            table.set(outputCols[0], try output(center ? densify(rows).mapValues { j, v in (v - mean[j]) * factor[j] } : rows.mapValues { j, v in v * factor[j] }))
        case .minMaxScaler:
            guard let low = originalMin, let high = originalMax else { throw notFitted() }
            let rows = densify(try vector(inputCols[0], table))
            let a = min ?? 0, b = max ?? 1
            table.set(outputCols[0], try output(rows.mapValues { j, v in
                high[j] == low[j] ? 0.5 * (a + b) : (v - low[j]) / (high[j] - low[j]) * (b - a) + a
            }))
        case .imputer:
            guard let surrogates else { throw notFitted() }
            let missing = missingValue ?? .nan
            for (c, name) in inputCols.enumerated() {
                table.set(outputCols[c], .numbers(try table.numbers(name, for: self.name).map { $0.isNaN || $0 == missing ? surrogates[c] : $0 }))
            }
        case .bucketizer, .quantileDiscretizer:
            guard let splits else { throw notFitted() }
            for (c, name) in inputCols.enumerated() {
                let s = splits[c], values = try table.numbers(name, for: self.name)
                var out = [Double](repeating: 0, count: values.count)
                for (i, v) in values.enumerated() {
                    if v.isNaN {
                        switch invalid {
                        case "keep": out[i] = Double(s.count - 1)
                        case "skip": keep[i] = false
                        default: throw KilnError.invalid("\(self.name): '\(name)' is missing in a row; set handle_invalid to keep or skip")
                        }
                        continue
                    }
                    guard v >= s[0], v <= s[s.count - 1] else {
                        throw KilnError.invalid("\(self.name): \(v) in '\(name)' is outside the splits [\(s[0]), \(s[s.count - 1])]; add -inf/inf splits")
                    }
                    // The bucket [s[k], s[k+1]) holding v; the last bucket includes its upper bound.
                    var lo = 0, hi = s.count - 1
                    while hi - lo > 1 { let mid = (lo + hi) / 2; if v < s[mid] { hi = mid } else { lo = mid } }
                    out[i] = Double(lo)
                }
                table.set(outputCols[c], .numbers(out))
            }
        case .featureHasher:
            let width = numFeatures ?? 1 << 18
            let categorical = Set(categoricalCols ?? [])
            let columns = try inputCols.map { try table.column($0) }
            var out = SparseRows(width: width, slotNames: (0..<width).map { "\(outputCols[0])_\($0)" })
            let numericSlots = inputCols.map { hashSlot($0, width: width) }
            for i in 0..<table.rowCount {
                var entries: [Int: Double] = [:]
                for (c, column) in columns.enumerated() {
                    let name = inputCols[c]
                    switch column {
                    case .numbers(let v) where !v[i].isNaN:
                        if categorical.contains(name) || table.booleans.contains(name) {
                            let text = table.booleans.contains(name) ? (v[i] != 0 ? "true" : "false") : categoryText(v[i])
                            entries[hashSlot("\(name)=\(text)", width: width), default: 0] += 1
                        } else {
                            entries[numericSlots[c], default: 0] += v[i]
                        }
                    case .strings(let v):
                        if let text = v[i] { entries[hashSlot("\(name)=\(text)", width: width), default: 0] += 1 }
                    case .numbers: break
                    default: throw KilnError.invalid("\(self.name): '\(name)' holds \(column.kind); the hasher takes numbers, booleans and strings")
                    }
                }
                out.append(entries.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
            }
            table.set(outputCols[0], .vectors(out))
        case .tokenizer:
            guard case .strings(let texts) = try table.column(inputCols[0]) else { throw KilnError.invalid("\(name) needs text in '\(inputCols[0])'") }
            table.set(outputCols[0], .tokens(texts.map { $0.map(Self.tokenize) }))
        case .hashingTF:
            guard case .tokens(let documents) = try table.column(inputCols[0]) else {
                throw KilnError.invalid("\(name) needs token lists in '\(inputCols[0])' (put a tokenizer first)")
            }
            let width = numFeatures ?? 1 << 18
            var out = SparseRows(width: width, slotNames: (0..<width).map { "\(outputCols[0])_\($0)" })
            for document in documents {
                var counts: [Int: Double] = [:]
                for term in document ?? [] {
                    let slot = hashSlot(term, width: width)
                    counts[slot] = (binary ?? false) ? 1 : counts[slot, default: 0] + 1
                }
                out.append(counts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
            }
            table.set(outputCols[0], .vectors(out))
        case .idf:
            guard let idf else { throw notFitted() }
            table.set(outputCols[0], .vectors(try vector(inputCols[0], table).mapValues { j, v in v * idf[j] }))
        }
        table.keep(keep)
    }

    /// Spark's Tokenizer: lower case, split at every whitespace character (runs give empty tokens), trailing empty
    /// tokens dropped.
    static func tokenize(_ text: String) -> [String] {
        var tokens = text.lowercased().split(omittingEmptySubsequences: false, whereSeparator: { " \t\n\u{0B}\u{0C}\r".contains($0) }).map(String.init)
        while tokens.last == "" { tokens.removeLast() }
        return tokens
    }

    /// The column read as categories: text, or numbers as text (booleans as "true"/"false").
    func categories(_ name: String, _ table: FeatureTable) throws -> [String?] {
        switch try table.column(name) {
        case .strings(let v): return v
        case .numbers(let v):
            let boolean = table.booleans.contains(name)
            return v.map { $0.isNaN ? nil : boolean ? ($0 != 0 ? "true" : "false") : categoryText($0) }
        case let other: throw KilnError.invalid("\(self.name): '\(name)' holds \(other.kind), not categories")
        }
    }

    /// The column as vectors (a number column is a one-slot vector).
    func vector(_ name: String, _ table: FeatureTable) throws -> SparseRows {
        switch try table.column(name) {
        case .vectors(let v): return v
        case .numbers(let v):
            var rows = SparseRows(width: 1, slotNames: [name])
            for x in v { rows.append([(0, x)]) }
            return rows
        case let other: throw KilnError.invalid("\(self.name) needs numbers or a vector in '\(name)', which holds \(other.kind)")
        }
    }

    /// Scaler output keeps the input's kind: numbers in, numbers out.
    func output(_ rows: SparseRows) throws -> FeatureValues {
        if rows.width == 1, rows.slotNames == [inputCols[0]] { return .numbers(densify(rows).values) }
        return .vectors(rows)
    }

    /// Every slot stored (so a transform of zeros is applied too).
    func densify(_ rows: SparseRows) -> SparseRows {
        if rows.values.count == rows.rows * rows.width { return rows }
        var out = SparseRows(width: rows.width, slotNames: rows.slotNames)
        let dense = rows.dense()
        dense.withUnsafeBufferPointer { b in
            for i in 0..<rows.rows { out.append(dense: UnsafeBufferPointer(rebasing: b[(i * rows.width)..<((i + 1) * rows.width)])) }
        }
        return out
    }
}

/// Stages run in order, each fitted on the output of the ones before (Spark's Pipeline); the fitted pipeline is the
/// PipelineModel. Its output is the vector column `featuresCol` the estimator trains on.
public struct Pipeline: Codable, Sendable, Equatable {
    public var stages: [Stage]
    public var featuresCol: String
    /// Slot names of the features vector (set when fitted).
    public var slotNames: [String]?
    /// The input columns that held text when fitted (the rest were numbers).
    public var textInputs: [String]?

    enum CodingKeys: String, CodingKey { case stages, featuresCol = "features_col", slotNames = "slot_names", textInputs = "text_inputs" }

    /// The widest features vector training densifies.
    public static let maxWidth = 65_536

    public init(stages: [Stage], featuresCol: String = "features") {
        self.stages = stages
        self.featuresCol = featuresCol
    }

    /// The columns the pipeline reads from a table: stage inputs no earlier stage writes.
    public var inputColumns: [String] {
        var made = Set<String>(), out: [String] = []
        for stage in stages {
            for name in stage.inputCols where !made.contains(name) && !out.contains(name) { out.append(name) }
            made.formUnion(stage.outputCols)
        }
        return out
    }

    /// Checks the stage definitions and that the last stages produce `featuresCol`.
    public func validate(featuresNeeded: Bool = true) throws {
        guard !stages.isEmpty else { throw KilnError.invalid("The pipeline has no stages") }
        for stage in stages { try stage.validate() }
        guard !featuresNeeded || stages.contains(where: { $0.outputCols.contains(featuresCol) }) else {
            throw KilnError.invalid("No pipeline stage writes the features column '\(featuresCol)'; end with a vector_assembler whose output_cols is [\"\(featuresCol)\"]")
        }
    }

    /// Fits every stage in order on `frame`: the fitted pipeline and the table after the last stage.
    public func fitTable(_ frame: Frame) throws -> (pipeline: Pipeline, table: FeatureTable) {
        try validate(featuresNeeded: false)
        var table = try FeatureTable(frame, columns: inputColumns)
        var fitted = self
        fitted.textInputs = inputColumns.filter { if case .strings = try? table.column($0) { return true } else { return false } }
        for (k, stage) in stages.enumerated() {
            fitted.stages[k] = try stage.fit(table)
            try fitted.stages[k].transform(&table)
        }
        return (fitted, table)
    }

    /// Fits every stage in order on `frame` and returns the fitted pipeline with the features of `frame`.
    public func fit(_ frame: Frame) throws -> (pipeline: Pipeline, features: SparseRows, rows: [Int]) {
        try validate()
        var (fitted, table) = try fitTable(frame)
        let features = try Self.features(table, featuresCol)
        fitted.slotNames = features.slotNames
        return (fitted, features, table.sourceRows)
    }

    /// Runs the fitted stages on `frame`: the features vector and, per vector row, the frame row it came from.
    public func transform(_ frame: Frame) throws -> (features: SparseRows, rows: [Int]) {
        var table = try FeatureTable(frame, columns: inputColumns)
        for stage in stages { try stage.transform(&table) }
        return (try Self.features(table, featuresCol), table.sourceRows)
    }

    static func features(_ table: FeatureTable, _ name: String) throws -> SparseRows {
        switch try table.column(name) {
        case .vectors(let v):
            guard v.width <= maxWidth else {
                throw KilnError.invalid("The features vector has \(v.width) slots; training takes up to \(maxWidth) (lower num_features)")
            }
            return v
        case .numbers(let v):
            var rows = SparseRows(width: 1, slotNames: [name])
            for x in v { rows.append([(0, x)]) }
            return rows
        case let other: throw KilnError.invalid("The features column '\(name)' holds \(other.kind); end the pipeline with a vector_assembler")
        }
    }

    /// The pipeline `kiln train` builds when features include text columns: each text column indexed (unseen and
    /// null labels kept as an extra index), one-hot encoded for linear models (whose numeric inputs are also
    /// mean-imputed), then everything assembled (missing values kept for tree models).
    public static func automatic(numeric: [String], text: [String], oneHot: Bool) -> Pipeline {
        var stages: [Stage] = []
        var assembled: [String] = []
        var indexer = Stage(.stringIndexer, inputs: text, outputs: text.map { $0 + "_index" })
        indexer.handleInvalid = "keep"
        if !text.isEmpty { stages.append(indexer) }
        if oneHot {
            if !numeric.isEmpty {
                stages.append(Stage(.imputer, inputs: numeric, outputs: numeric.map { $0 + "_imputed" }))
                assembled += numeric.map { $0 + "_imputed" }
            }
            if !text.isEmpty {
                var encoder = Stage(.oneHotEncoder, inputs: indexer.outputCols, outputs: text.map { $0 + "_vec" })
                encoder.handleInvalid = "keep"
                stages.append(encoder)
                assembled += text.map { $0 + "_vec" }
            }
        } else {
            assembled = numeric + indexer.outputCols.prefix(text.count)
        }
        var assembler = Stage(.vectorAssembler, inputs: assembled, outputs: ["features"])
        assembler.handleInvalid = oneHot ? "error" : "keep"
        stages.append(assembler)
        return Pipeline(stages: stages)
    }
}

/// JSON coding for specs, pipelines and model documents: sorted keys, and the non-finite numbers pipelines hold
/// (±inf bucket splits, a NaN missing value) as the strings "Infinity", "-Infinity" and "NaN", as Spark writes them.
public enum LearnJSON {
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return decoder
    }
}
