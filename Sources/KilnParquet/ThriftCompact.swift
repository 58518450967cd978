/// Thrift compact-protocol wire types.
public enum ThriftType: UInt8, Sendable, Equatable {
    case stop = 0
    case boolTrue = 1
    case boolFalse = 2
    case byte = 3
    case i16 = 4
    case i32 = 5
    case i64 = 6
    case double = 7
    case binary = 8
    case list = 9
    case set = 10
    case map = 11
    case structure = 12
}

/// A decoded Thrift value. Parquet's footer (`FileMetaData`) and page headers are Thrift structs in the compact
/// protocol; this generic tree lets typed views read the fields they know and skip the rest.
public indirect enum ThriftValue: Sendable, Equatable {
    case bool(Bool)
    case byte(Int8)
    case i16(Int16)
    case i32(Int32)
    case i64(Int64)
    case double(Double)
    case binary([UInt8])
    case list(ThriftType, [ThriftValue])
    case set(ThriftType, [ThriftValue])
    case map(ThriftType, ThriftType, [ThriftPair])
    case structure(ThriftStruct)

    /// The compact-protocol type of this value (booleans report `boolTrue`).
    public var type: ThriftType {
        switch self {
        case .bool: .boolTrue
        case .byte: .byte
        case .i16: .i16
        case .i32: .i32
        case .i64: .i64
        case .double: .double
        case .binary: .binary
        case .list: .list
        case .set: .set
        case .map: .map
        case .structure: .structure
        }
    }
}

/// One key/value entry of a Thrift map.
public struct ThriftPair: Sendable, Equatable {
    public var key: ThriftValue
    public var value: ThriftValue
    public init(_ key: ThriftValue, _ value: ThriftValue) {
        self.key = key
        self.value = value
    }
}

/// A Thrift struct: field id → value.
public struct ThriftStruct: Sendable, Equatable {
    public var fields: [Int16: ThriftValue]
    public init(_ fields: [Int16: ThriftValue] = [:]) { self.fields = fields }

    public subscript(id: Int16) -> ThriftValue? {
        get { fields[id] }
        set { fields[id] = newValue }
    }

    /// Typed accessors; nil when the field is absent or of another type.
    public func i32(_ id: Int16) -> Int32? { if case .i32(let v)? = fields[id] { return v }; return nil }
    public func i64(_ id: Int16) -> Int64? { if case .i64(let v)? = fields[id] { return v }; return nil }
    public func bool(_ id: Int16) -> Bool? { if case .bool(let v)? = fields[id] { return v }; return nil }
    public func binary(_ id: Int16) -> [UInt8]? { if case .binary(let v)? = fields[id] { return v }; return nil }
    public func string(_ id: Int16) -> String? { binary(id).map { String(decoding: $0, as: UTF8.self) } }
    public func structure(_ id: Int16) -> ThriftStruct? { if case .structure(let v)? = fields[id] { return v }; return nil }
    public func list(_ id: Int16) -> [ThriftValue]? { if case .list(_, let v)? = fields[id] { return v }; return nil }
}

/// Decodes the Thrift compact protocol from a byte buffer, safely on hostile input: every length is checked
/// against the bytes that remain, nesting is bounded, and malformed input is a `ParquetError`, never a trap.
public struct ThriftCompactReader {
    public let bytes: [UInt8]
    public private(set) var position: Int
    /// Deepest struct/container nesting accepted.
    public var maxDepth = 64
    private var depth = 0

    public init(_ bytes: [UInt8], position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    func fail(_ message: String) -> ParquetError { ParquetError("Malformed Thrift: \(message)", offset: position) }

    mutating func readByte() throws -> UInt8 {
        guard position < bytes.count else { throw fail("unexpected end of data") }
        defer { position += 1 }
        return bytes[position]
    }

    /// An unsigned LEB128 varint of at most 10 bytes.
    mutating func readVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readByte()
            guard shift < 64 else { throw fail("varint too long") }
            if shift == 63, byte > 1 { throw fail("varint overflows 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func readZigZag() throws -> Int64 {
        let raw = try readVarint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    mutating func readI32() throws -> Int32 {
        let value = try readZigZag()
        guard let narrow = Int32(exactly: value) else { throw fail("i32 out of range") }
        return narrow
    }

    mutating func readI16() throws -> Int16 {
        let value = try readZigZag()
        guard let narrow = Int16(exactly: value) else { throw fail("i16 out of range") }
        return narrow
    }

    mutating func readLength() throws -> Int {
        let raw = try readVarint()
        guard raw <= UInt64(bytes.count - position) else { throw fail("length \(raw) exceeds the \(bytes.count - position) bytes left") }
        return Int(raw)
    }

    mutating func readBinary() throws -> [UInt8] {
        let length = try readLength()
        defer { position += length }
        return Array(bytes[position..<position + length])
    }

    mutating func readDouble() throws -> Double {
        guard bytes.count - position >= 8 else { throw fail("unexpected end of data in a double") }
        var bits: UInt64 = 0
        for i in 0..<8 { bits |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += 8
        return Double(bitPattern: bits)
    }

    static func type(_ raw: UInt8) -> ThriftType? { ThriftType(rawValue: raw) }

    mutating func readValue(_ type: ThriftType, inContainer: Bool = false) throws -> ThriftValue {
        switch type {
        case .boolTrue, .boolFalse:
            if inContainer {
                let byte = try readByte()
                guard byte == 1 || byte == 2 || byte == 0 else { throw fail("bad boolean \(byte)") }
                return .bool(byte == 1)
            }
            return .bool(type == .boolTrue)
        case .byte: return .byte(Int8(bitPattern: try readByte()))
        case .i16: return .i16(try readI16())
        case .i32: return .i32(try readI32())
        case .i64: return .i64(try readZigZag())
        case .double: return .double(try readDouble())
        case .binary: return .binary(try readBinary())
        case .list, .set:
            try enter()
            defer { depth -= 1 }
            let header = try readByte()
            guard let element = Self.type(header & 0x0F), element != .stop else { throw fail("bad list element type") }
            var count = Int(header >> 4)
            if count == 15 { count = try readLength() }
            // Every element takes at least one byte, booleans included (no elements of zero width).
            guard count <= bytes.count - position else { throw fail("list of \(count) elements exceeds the data left") }
            var items: [ThriftValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count { items.append(try readValue(element, inContainer: true)) }
            return type == .list ? .list(element, items) : .set(element, items)
        case .map:
            try enter()
            defer { depth -= 1 }
            let count = try readLength()
            guard count > 0 else { return .map(.binary, .binary, []) }
            let header = try readByte()
            guard let key = Self.type(header >> 4), let value = Self.type(header & 0x0F), key != .stop, value != .stop else {
                throw fail("bad map types")
            }
            var pairs: [ThriftPair] = []
            pairs.reserveCapacity(min(count, 1024))
            for _ in 0..<count {
                pairs.append(ThriftPair(try readValue(key, inContainer: true), try readValue(value, inContainer: true)))
            }
            return .map(key, value, pairs)
        case .structure:
            return .structure(try readStruct())
        case .stop:
            throw fail("unexpected STOP")
        }
    }

    mutating func enter() throws {
        depth += 1
        guard depth <= maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
    }

    /// Reads one struct (up to and including its STOP byte).
    public mutating func readStruct() throws -> ThriftStruct {
        try enter()
        defer { depth -= 1 }
        var result = ThriftStruct()
        var lastID: Int16 = 0
        while true {
            let header = try readByte()
            guard let type = Self.type(header & 0x0F) else { throw fail("unknown field type \(header & 0x0F)") }
            if type == .stop { return result }
            let delta = Int16(header >> 4)
            let id: Int16
            if delta == 0 {
                id = try readI16()
            } else {
                let (sum, overflow) = lastID.addingReportingOverflow(delta)
                guard !overflow else { throw fail("field id overflow") }
                id = sum
            }
            result[id] = try readValue(type)
            lastID = id
        }
    }
}

/// Encodes the Thrift compact protocol.
public struct ThriftCompactWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func writeZigZag(_ value: Int64) {
        writeVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    mutating func writeElement(_ value: ThriftValue) {
        switch value {
        case .bool(let b): bytes.append(b ? 1 : 2)
        default: writeValue(value)
        }
    }

    mutating func writeValue(_ value: ThriftValue) {
        switch value {
        case .bool: break  // encoded in the field header
        case .byte(let v): bytes.append(UInt8(bitPattern: v))
        case .i16(let v): writeZigZag(Int64(v))
        case .i32(let v): writeZigZag(Int64(v))
        case .i64(let v): writeZigZag(v)
        case .double(let v):
            let bits = v.bitPattern
            for i in 0..<8 { bytes.append(UInt8((bits >> (8 * UInt64(i))) & 0xFF)) }
        case .binary(let v):
            writeVarint(UInt64(v.count))
            bytes.append(contentsOf: v)
        case .list(let element, let items), .set(let element, let items):
            let wireType = element == .boolFalse ? ThriftType.boolTrue : element
            if items.count < 15 {
                bytes.append(UInt8(items.count) << 4 | wireType.rawValue)
            } else {
                bytes.append(0xF0 | wireType.rawValue)
                writeVarint(UInt64(items.count))
            }
            for item in items { writeElement(item) }
        case .map(let key, let valueType, let pairs):
            writeVarint(UInt64(pairs.count))
            guard !pairs.isEmpty else { return }
            bytes.append(key.rawValue << 4 | valueType.rawValue)
            for pair in pairs {
                writeElement(pair.key)
                writeElement(pair.value)
            }
        case .structure(let s):
            writeStruct(s)
        }
    }

    /// Writes one struct, fields in id order, then STOP.
    public mutating func writeStruct(_ value: ThriftStruct) {
        var lastID: Int16 = 0
        for id in value.fields.keys.sorted() {
            let field = value.fields[id]!
            var type = field.type
            if case .bool(let b) = field { type = b ? .boolTrue : .boolFalse }
            let delta = Int(id) - Int(lastID)
            if delta > 0, delta <= 15 {
                bytes.append(UInt8(delta) << 4 | type.rawValue)
            } else {
                bytes.append(type.rawValue)
                writeZigZag(Int64(id))
            }
            writeValue(field)
            lastID = id
        }
        bytes.append(ThriftType.stop.rawValue)
    }
}
