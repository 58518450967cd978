import Foundation
import KilnCore
import KilnFrame

/// What a model predicts.
public enum LearningTask: String, Sendable, Codable {
    case classification, regression
    /// Grouping rows without a target (k-means).
    case clustering
    /// Ordering rows within query groups by relevance (XGBoost's rank:* objectives).
    case ranking
}

/// Features as a dense row-major matrix of doubles (missing values are NaN) with a label per row.
///
/// ```swift
/// let data = try Dataset(frame, target: "label")           // every other numeric column is a feature
/// let (train, test) = data.split(trainFraction: 0.8, seed: 7)
/// ```
public struct Dataset: Sendable {
    public var features: [Double]
    public let width: Int
    public var rows: Int { width == 0 ? labels.count : features.count / width }
    public let featureNames: [String]
    /// For classification: the index of the row's class in `classes`; for regression: the target value.
    public var labels: [Double]
    public let task: LearningTask
    /// The distinct target values in sorted order (classification only), as text.
    public let classes: [String]
    /// Ranking: the sizes of the query groups, whose rows are contiguous and in this order.
    public var groupSizes: [Int]?

    public init(features: [Double], width: Int, featureNames: [String], labels: [Double], task: LearningTask, classes: [String] = []) {
        self.features = features
        self.width = width
        self.featureNames = featureNames
        self.labels = labels
        self.task = task
        self.classes = classes
    }

    /// The task a target column suggests: strings and booleans, and integers with at most 20 distinct values, are
    /// classes; other numbers are regression targets.
    public static func inferTask(_ frame: Frame, target: String) throws -> LearningTask {
        let column = try frame.column(target)
        if column.type == .string || column.type == .bool { return .classification }
        if column.type.isInteger {
            let distinct = Grouping(keys: [column], rows: column.count).count
            return distinct <= 20 ? .classification : .regression
        }
        return .regression
    }

    /// Reads `target` and the `features` (default: every other column) of `frame`. Numeric and boolean columns
    /// become features; nulls become NaN. Rows whose target is null are dropped.
    /// - Throws: for a missing or string feature column (encode it first), or a non-numeric regression target.
    public init(_ frame: Frame, target: String, features wanted: [String]? = nil, task: LearningTask? = nil) throws {
        let names = wanted ?? frame.names.filter { $0.lowercased() != target.lowercased() }
        guard !names.isEmpty else { throw KilnError.invalid("No feature columns: the table has only the target '\(target)'") }
        let task = try task ?? Self.inferTask(frame, target: target)
        let source = try Self.droppingNullTargets(frame, target: target)
        let y = try source.column(target)
        let classes = task == .classification ? try Self.classes(of: y, target: target) : []
        self.init(features: try Self.features(of: source, columns: names), width: names.count, featureNames: names,
                  labels: try Self.labels(y, task: task, classes: classes, target: target), task: task, classes: classes)
    }

    /// `frame` without the rows whose `target` is null.
    public static func droppingNullTargets(_ frame: Frame, target: String) throws -> Frame {
        let y = try frame.column(target)
        guard y.validity != nil else { return frame }
        return frame.take((0..<frame.rowCount).filter { !y.isNull($0) })
    }

    /// The distinct values of a classification target in sorted order (numbers numerically), as text.
    /// - Throws: with fewer than two classes.
    public static func classes(of y: Column, target: String) throws -> [String] {
        let numeric = y.type.isNumeric || y.type == .bool
        func number(_ s: String) -> Double? { Double(s == "true" ? "1" : s == "false" ? "0" : s) }
        let classes = Array(Set((0..<y.count).filter { !y.isNull($0) }.map { y.value($0).text })).sorted { a, b in
            if numeric, let x = number(a), let z = number(b) { return x < z }
            return a < b
        }
        guard classes.count >= 2 else { throw KilnError.invalid("Target '\(target)' has \(classes.count) class; classification needs at least 2") }
        return classes
    }

    /// Labels of target values: class indices into `classes` (classification) or the values (regression).
    /// - Throws: for a class not in `classes`, or a non-numeric regression target.
    public static func labels(_ y: Column, task: LearningTask, classes: [String], target: String) throws -> [Double] {
        switch task {
        case .classification:
            let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, Double($0)) })
            return try (0..<y.count).map { i in
                let text = y.value(i).text
                guard let k = index[text] else { throw KilnError.invalid("Target '\(target)' has class '\(text)', which the training data lacks (classes: \(classes.joined(separator: ", ")))") }
                return k
            }
        case .regression, .ranking:
            guard y.type.isNumeric || y.type == .bool else { throw KilnError.invalid("Target '\(target)' is a \(y.type); \(task.rawValue) needs numbers") }
            guard case .double(let v) = try y.cast(to: .float64).values else { throw KilnError(.internalError, "Cast to double gave no doubles") }
            return v
        case .clustering:
            return []
        }
    }

    /// The rows of a seeded random split: about `trainFraction` of `rows` train, the rest test, each ascending.
    public static func splitRows(_ rows: Int, trainFraction: Double, seed: UInt64) -> (train: [Int], test: [Int]) {
        var order = Array(0..<rows)
        var generator = SplitMix64(seed: seed)
        order.shuffle(using: &generator)
        let cut = Int((Double(rows) * trainFraction).rounded())
        return (Array(order[..<cut]).sorted(), Array(order[cut...]).sorted())
    }

    /// The feature matrix (row-major, NaN for nulls) of `columns` in `frame` — of the rows `index` when given.
    /// - Throws: when a column is missing or not numeric.
    public static func features(of frame: Frame, columns: [String], rows index: [Int]? = nil) throws -> [Double] {
        let rows = index?.count ?? frame.rowCount, width = columns.count
        var matrix = [Double](repeating: 0, count: rows * width)
        for (j, name) in columns.enumerated() {
            guard let column = try? frame.column(name) else {
                throw KilnError.invalid("The model needs feature '\(name)', which the table does not have (it has \(frame.names.joined(separator: ", ")))")
            }
            guard column.type.isNumeric || column.type == .bool, case .double(let v) = try column.cast(to: .float64).values else {
                throw KilnError.invalid("Feature '\(name)' is a \(column.type); features must be numbers or booleans (index strings into numbers first, or leave the column out with --features)")
            }
            matrix.withUnsafeMutableBufferPointer { m in
                if let index {
                    for (i, r) in index.enumerated() { m[i * width + j] = column.isNull(r) ? .nan : v[r] }
                } else {
                    for i in 0..<rows { m[i * width + j] = column.isNull(i) ? .nan : v[i] }
                }
            }
        }
        return matrix
    }

    /// The rows `indices`, in that order.
    public func subset(_ indices: [Int]) -> Dataset {
        var out = [Double](repeating: 0, count: indices.count * width)
        features.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (k, i) in indices.enumerated() {
                    for j in 0..<width { dst[k * width + j] = src[i * width + j] }
                }
            }
        }
        return Dataset(features: out, width: width, featureNames: featureNames, labels: indices.map { labels[$0] }, task: task, classes: classes)
    }

    /// A seeded random split: about `trainFraction` of the rows train, the rest test (reproducible for a seed).
    public func split(trainFraction: Double, seed: UInt64) -> (train: Dataset, test: Dataset) {
        let (train, test) = Self.splitRows(rows, trainFraction: trainFraction, seed: seed)
        return (subset(train), subset(test))
    }

    /// Row `i`'s features.
    public func row(_ i: Int) -> ArraySlice<Double> { features[(i * width)..<((i + 1) * width)] }

    /// Whether any feature is missing (NaN).
    public var hasMissing: Bool { features.contains { $0.isNaN } }

    /// The number of classes (classification) or 1.
    public var classCount: Int { task == .classification ? classes.count : 1 }
}
