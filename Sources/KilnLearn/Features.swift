import Foundation
import KilnCore
import KilnFrame

/// Rows of a vector column in compressed sparse row form: row `i`'s entries are `indices[offsets[i]..<offsets[i+1]]`
/// (ascending) with their `values`; `slotNames` name the `width` slots (for importances and explanations).
public struct SparseRows: Sendable, Equatable {
    public var width: Int
    public var offsets: [Int]
    public var indices: [Int32]
    public var values: [Double]
    public var slotNames: [String]

    public init(width: Int, slotNames: [String]) {
        self.width = width
        self.offsets = [0]
        self.indices = []
        self.values = []
        self.slotNames = slotNames
    }

    public var rows: Int { offsets.count - 1 }

    /// Appends a row from sorted (index, value) entries.
    mutating func append(_ entries: [(Int, Double)]) {
        for (j, v) in entries { indices.append(Int32(j)); values.append(v) }
        offsets.append(indices.count)
    }

    /// Appends a dense row (every slot stored).
    mutating func append(dense row: UnsafeBufferPointer<Double>) {
        for j in 0..<row.count { indices.append(Int32(j)); values.append(row[j]) }
        offsets.append(indices.count)
    }

    /// Row `i`'s entry range.
    func range(_ i: Int) -> Range<Int> { offsets[i]..<offsets[i + 1] }

    /// The rows as a dense row-major matrix (unstored slots are 0).
    public func dense() -> [Double] {
        var out = [Double](repeating: 0, count: rows * width)
        for i in 0..<rows {
            for e in range(i) { out[i * width + Int(indices[e])] = values[e] }
        }
        return out
    }

    /// The rows `keep`, in order.
    func take(_ keep: [Int]) -> SparseRows {
        var out = SparseRows(width: width, slotNames: slotNames)
        for i in keep {
            let r = range(i)
            out.indices += indices[r]
            out.values += values[r]
            out.offsets.append(out.indices.count)
        }
        return out
    }

    /// The same rows with every value mapped (slot index, value) → value.
    func mapValues(_ transform: (Int, Double) -> Double) -> SparseRows {
        var out = self
        for e in values.indices { out.values[e] = transform(Int(indices[e]), values[e]) }
        return out
    }
}

/// A column as pipeline stages see it: numbers (NaN where missing), text (nil where null), token lists, or vectors.
public enum FeatureValues: Sendable, Equatable {
    case numbers([Double])
    case strings([String?])
    case tokens([[String]?])
    case vectors(SparseRows)

    var count: Int {
        switch self {
        case .numbers(let v): v.count
        case .strings(let v): v.count
        case .tokens(let v): v.count
        case .vectors(let v): v.rows
        }
    }

    var kind: String {
        switch self {
        case .numbers: "numbers"
        case .strings: "strings"
        case .tokens: "tokens"
        case .vectors: "a vector"
        }
    }

    func take(_ keep: [Int]) -> FeatureValues {
        switch self {
        case .numbers(let v): .numbers(keep.map { v[$0] })
        case .strings(let v): .strings(keep.map { v[$0] })
        case .tokens(let v): .tokens(keep.map { v[$0] })
        case .vectors(let v): .vectors(v.take(keep))
        }
    }
}

/// The named columns a pipeline works on, with the original row number of each row (stages may drop rows).
public struct FeatureTable: Sendable {
    public private(set) var names: [String] = []
    public private(set) var columns: [FeatureValues] = []
    /// For each row, its row number in the frame the table came from.
    public private(set) var sourceRows: [Int]
    /// Columns that were booleans in the frame (text "true"/"false" where a stage reads them as categories).
    var booleans: Set<String> = []
    /// The labels behind index columns made by a StringIndexer (to name one-hot slots).
    var labels: [String: [String]] = [:]

    public var rowCount: Int { sourceRows.count }

    /// The `columns` of `frame`: strings stay text, numbers, booleans, dates and timestamps become numbers.
    /// - Throws: for a missing or binary column.
    public init(_ frame: Frame, columns wanted: [String]) throws {
        sourceRows = Array(0..<frame.rowCount)
        for name in wanted {
            guard let i = frame.index(of: name) else {
                throw KilnError.invalid("The pipeline reads column '\(name)', which the table does not have (it has \(frame.names.joined(separator: ", ")))")
            }
            let column = frame.columns[i]
            switch column.type {
            case .string:
                set(name, .strings((0..<column.count).map { column.isNull($0) ? nil : column.value($0).text }))
            case .binary:
                throw KilnError.invalid("Column '\(name)' is binary; pipelines read numbers, booleans and strings")
            default:
                guard case .double(let v) = try column.cast(to: .float64).values else { throw KilnError.invalid("Column '\(name)' is not numeric") }
                set(name, .numbers((0..<column.count).map { column.isNull($0) ? .nan : v[$0] }))
                if column.type == .bool { booleans.insert(name) }
            }
        }
    }

    public func column(_ name: String) throws -> FeatureValues {
        guard let i = names.firstIndex(of: name) else {
            throw KilnError.invalid("No column '\(name)' at this stage of the pipeline (columns: \(names.joined(separator: ", ")))")
        }
        return columns[i]
    }

    func numbers(_ name: String, for stage: String) throws -> [Double] {
        guard case .numbers(let v) = try column(name) else { throw KilnError.invalid("\(stage) needs numbers in '\(name)', which holds \(try column(name).kind)") }
        return v
    }

    /// Sets (replaces or adds) a column.
    mutating func set(_ name: String, _ values: FeatureValues) {
        if let i = names.firstIndex(of: name) { columns[i] = values } else { names.append(name); columns.append(values) }
    }

    /// Keeps the rows where `keep` is true.
    mutating func keep(_ keep: [Bool]) {
        guard keep.contains(false) else { return }
        let rows = keep.indices.filter { keep[$0] }
        columns = columns.map { $0.take(rows) }
        sourceRows = rows.map { sourceRows[$0] }
    }
}

/// Text for a number read as a category: integers without a fraction ("3"), others in Swift's shortest form.
func categoryText(_ v: Double) -> String {
    if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
    return String(v)
}

/// MurmurHash3 (x86, 32-bit) of `bytes`, as Spark's HashingTF/FeatureHasher and scikit-learn's `murmurhash3_32`
/// compute it.
public func murmur3(_ bytes: [UInt8], seed: UInt32 = 42) -> UInt32 {
    let c1: UInt32 = 0xcc9e_2d51, c2: UInt32 = 0x1b87_3593
    var h = seed
    let blocks = bytes.count / 4
    for b in 0..<blocks {
        var k = UInt32(bytes[4 * b]) | UInt32(bytes[4 * b + 1]) << 8 | UInt32(bytes[4 * b + 2]) << 16 | UInt32(bytes[4 * b + 3]) << 24
        k = k &* c1
        k = (k << 15) | (k >> 17)
        k = k &* c2
        h ^= k
        h = (h << 13) | (h >> 19)
        h = h &* 5 &+ 0xe654_6b64
    }
    var k: UInt32 = 0
    let tail = blocks * 4
    switch bytes.count & 3 {
    case 3:
        k ^= UInt32(bytes[tail + 2]) << 16
        fallthrough
    case 2:
        k ^= UInt32(bytes[tail + 1]) << 8
        fallthrough
    case 1:
        k ^= UInt32(bytes[tail])
        k = k &* c1
        k = (k << 15) | (k >> 17)
        k = k &* c2
        h ^= k
    default: break
    }
    h ^= UInt32(truncatingIfNeeded: bytes.count)
    h ^= h >> 16
    h = h &* 0x85eb_ca6b
    h ^= h >> 13
    h = h &* 0xc2b2_ae35
    h ^= h >> 16
    return h
}

/// The slot of a term in a hashed vector of `width` slots: Spark's non-negative modulo of the signed hash.
func hashSlot(_ term: String, width: Int) -> Int {
    let signed = Int(Int32(bitPattern: murmur3(Array(term.utf8))))
    let r = signed % width
    return r < 0 ? r + width : r
}
