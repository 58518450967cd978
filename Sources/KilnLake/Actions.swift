import Foundation
import KilnCore

/// `protocol`: the reader and writer versions (and, at 3 / 7, the named table features) a table needs.
public struct DeltaProtocol: Sendable, Equatable {
    public var minReaderVersion: Int
    public var minWriterVersion: Int
    public var readerFeatures: [String]?
    public var writerFeatures: [String]?

    public init(minReaderVersion: Int = 1, minWriterVersion: Int = 2, readerFeatures: [String]? = nil, writerFeatures: [String]? = nil) {
        self.minReaderVersion = minReaderVersion
        self.minWriterVersion = minWriterVersion
        self.readerFeatures = readerFeatures
        self.writerFeatures = writerFeatures
    }

    /// Reader features Kiln understands (it reads their tables correctly).
    static let readableFeatures: Set<String> = ["timestampNtz", "columnMapping", "deletionVectors", "v2Checkpoint", "domainMetadata",
                                               "vacuumProtocolCheck", "inCommitTimestamp", "typeWidening", "typeWidening-preview"]
    /// Writer features Kiln honours when it writes.
    static let writableFeatures: Set<String> = ["appendOnly", "invariants", "checkConstraints", "timestampNtz", "changeDataFeed",
                                               "generatedColumns"]

    /// Refuses a table Kiln cannot read correctly, naming what it lacks. (Column mapping and deletion vectors are
    /// checked again by the scan, which refuses them until it applies them.)
    func checkReadable() throws {
        guard minReaderVersion <= 3 else {
            throw KilnError(.invalidState, "The table needs Delta reader version \(minReaderVersion); Kiln reads versions 1 to 3")
        }
        if minReaderVersion == 3 {
            for feature in readerFeatures ?? [] where !Self.readableFeatures.contains(feature) {
                throw KilnError(.invalidState, "The table uses the reader feature '\(feature)', which Kiln does not support")
            }
        }
    }

    /// Refuses to write a table whose writer protocol Kiln does not fully implement.
    func checkWritable() throws {
        try checkReadable()
        guard minWriterVersion <= 7 else {
            throw KilnError(.invalidState, "The table needs Delta writer version \(minWriterVersion); Kiln writes versions 2 to 7")
        }
        if minWriterVersion == 7 {
            for feature in writerFeatures ?? [] where !Self.writableFeatures.contains(feature) {
                throw KilnError(.invalidState, "The table uses the writer feature '\(feature)', which Kiln cannot write; it can still read the table")
            }
        } else if minWriterVersion >= 5 {
            throw KilnError(.invalidState, "The table needs writer version \(minWriterVersion) (column mapping or identity columns), which Kiln cannot write")
        }
        if minReaderVersion >= 2 && !(readerFeatures ?? []).allSatisfy({ ["timestampNtz"].contains($0) }) {
            throw KilnError(.invalidState, "The table uses reader features Kiln can read but not write: \((readerFeatures ?? ["columnMapping"]).joined(separator: ", "))")
        }
    }

    func write(_ w: inout JSONWriter) {
        w.object { w in
            w.key("minReaderVersion"); w.value(minReaderVersion)
            w.key("minWriterVersion"); w.value(minWriterVersion)
            if let readerFeatures { w.key("readerFeatures"); w.array { w in readerFeatures.forEach { w.value($0) } } }
            if let writerFeatures { w.key("writerFeatures"); w.array { w in writerFeatures.forEach { w.value($0) } } }
        }
    }
}

/// `metaData`: schema, partition columns and table properties.
public struct DeltaMetadata: Sendable, Equatable {
    public var id: String
    public var name: String?
    public var description: String?
    public var schemaString: String
    public var partitionColumns: [String]
    public var configuration: [String: String]
    public var createdTime: Int64?

    public init(id: String = UUID().uuidString.lowercased(), name: String? = nil, description: String? = nil, schema: DeltaSchema,
                partitionColumns: [String] = [], configuration: [String: String] = [:], createdTime: Int64? = nil) {
        self.id = id
        self.name = name
        self.description = description
        schemaString = schema.json
        self.partitionColumns = partitionColumns
        self.configuration = configuration
        self.createdTime = createdTime
    }

    public func schema() throws -> DeltaSchema { try DeltaSchema(json: schemaString) }

    func write(_ w: inout JSONWriter) {
        w.object { w in
            w.key("id"); w.value(id)
            if let name { w.key("name"); w.value(name) }
            if let description { w.key("description"); w.value(description) }
            w.key("format"); w.object { w in w.key("provider"); w.value("parquet"); w.key("options"); w.object { _ in } }
            w.key("schemaString"); w.value(schemaString)
            w.key("partitionColumns"); w.array { w in partitionColumns.forEach { w.value($0) } }
            w.key("configuration"); w.object { w in for k in configuration.keys.sorted() { w.key(k); w.value(configuration[k]!) } }
            if let createdTime { w.key("createdTime"); w.value(createdTime) }
        }
    }
}

/// `add`: a data file in the table.
public struct AddFile: Sendable, Equatable {
    /// Relative, URI-encoded path (as stored in the log).
    public var path: String
    public var partitionValues: [String: String?]
    public var size: Int64
    public var modificationTime: Int64
    public var dataChange: Bool
    /// JSON text: numRecords, minValues, maxValues, nullCount.
    public var stats: String?
    public var tags: [String: String]?
    /// Present when rows of the file are deleted by a deletion vector (read support only).
    public var deletionVector: [String: JSONValue]?

    public init(path: String, partitionValues: [String: String?], size: Int64, modificationTime: Int64, dataChange: Bool = true,
                stats: String? = nil) {
        self.path = path
        self.partitionValues = partitionValues
        self.size = size
        self.modificationTime = modificationTime
        self.dataChange = dataChange
        self.stats = stats
    }

    /// The `cdc` action of a change-data file.
    var cdc: DeltaAction { .cdc(path: path, partitionValues: partitionValues, size: size) }

    /// The key files are reconciled by: path plus the deletion vector's id.
    var key: String {
        guard let dv = deletionVector else { return path }
        let id = [dv["storageType"], dv["pathOrInlineDv"], dv["offset"]].map { $0.map(JSONText.string) ?? "" }.joined(separator: "|")
        return path + "#" + id
    }

    func write(_ w: inout JSONWriter) {
        w.object { w in
            w.key("path"); w.value(path)
            w.key("partitionValues"); Self.writeMap(partitionValues, &w)
            w.key("size"); w.value(size)
            w.key("modificationTime"); w.value(modificationTime)
            w.key("dataChange"); w.value(dataChange)
            if let stats { w.key("stats"); w.value(stats) }
            if let tags { w.key("tags"); w.object { w in for k in tags.keys.sorted() { w.key(k); w.value(tags[k]!) } } }
            if let deletionVector { w.key("deletionVector"); JSONText.write(.object(deletionVector), into: &w) }
        }
    }

    static func writeMap(_ values: [String: String?], _ w: inout JSONWriter) {
        w.object { w in
            for key in values.keys.sorted() {
                w.key(key)
                if let v = values[key]! { w.value(v) } else { w.null() }
            }
        }
    }
}

/// `remove`: a file that left the table (a tombstone until VACUUM).
public struct RemoveFile: Sendable, Equatable {
    public var path: String
    public var deletionTimestamp: Int64?
    public var dataChange: Bool
    public var partitionValues: [String: String?]?
    public var size: Int64?
    public var deletionVector: [String: JSONValue]?

    var key: String {
        var add = AddFile(path: path, partitionValues: [:], size: 0, modificationTime: 0)
        add.deletionVector = deletionVector
        return add.key
    }

    func write(_ w: inout JSONWriter) {
        w.object { w in
            w.key("path"); w.value(path)
            if let deletionTimestamp { w.key("deletionTimestamp"); w.value(deletionTimestamp) }
            w.key("dataChange"); w.value(dataChange)
            w.key("extendedFileMetadata"); w.value(partitionValues != nil && size != nil)
            if let partitionValues { w.key("partitionValues"); AddFile.writeMap(partitionValues, &w) }
            if let size { w.key("size"); w.value(size) }
            if let deletionVector { w.key("deletionVector"); JSONText.write(.object(deletionVector), into: &w) }
        }
    }
}

/// One action of a commit.
public enum DeltaAction: Sendable, Equatable {
    case protocolAction(DeltaProtocol)
    case metadata(DeltaMetadata)
    case add(AddFile)
    case remove(RemoveFile)
    case txn(appId: String, version: Int64, lastUpdated: Int64?)
    case commitInfo([String: JSONValue])
    case cdc(path: String, partitionValues: [String: String?], size: Int64)
    /// Actions Kiln does not know (domainMetadata, checkpointMetadata, sidecar...); kept for replay rules.
    case other(String, JSONValue)

    /// One NDJSON line.
    var json: String {
        var w = JSONWriter()
        w.object { w in
            switch self {
            case .protocolAction(let p): w.key("protocol"); p.write(&w)
            case .metadata(let m): w.key("metaData"); m.write(&w)
            case .add(let a): w.key("add"); a.write(&w)
            case .remove(let r): w.key("remove"); r.write(&w)
            case .txn(let appId, let version, let lastUpdated):
                w.key("txn")
                w.object { w in
                    w.key("appId"); w.value(appId)
                    w.key("version"); w.value(version)
                    if let lastUpdated { w.key("lastUpdated"); w.value(lastUpdated) }
                }
            case .commitInfo(let info): w.key("commitInfo"); JSONText.write(.object(info), into: &w)
            case .cdc(let path, let values, let size):
                w.key("cdc")
                w.object { w in
                    w.key("path"); w.value(path)
                    w.key("partitionValues"); AddFile.writeMap(values, &w)
                    w.key("size"); w.value(size)
                    w.key("dataChange"); w.value(false)
                }
            case .other(let name, let value): w.key(name); JSONText.write(value, into: &w)
            }
        }
        return String(decoding: w.bytes, as: UTF8.self)
    }

    /// Parses one log line (an object with a single action key).
    static func parse(_ line: JSONValue) throws -> DeltaAction? {
        guard case .object(let o) = line, let (name, value) = o.first else { return nil }
        guard case .object(let a) = value else { return .other(name, value) }
        func string(_ k: String) -> String? { if case .string(let s)? = a[k] { return s }; return nil }
        func int(_ k: String) -> Int64? { if case .number(let n)? = a[k] { return Int64(n) ?? Double(n).map { Int64($0) } }; return nil }
        func bool(_ k: String) -> Bool? { if case .bool(let b)? = a[k] { return b }; return nil }
        func strings(_ k: String) -> [String]? {
            guard case .array(let items)? = a[k] else { return nil }
            return items.compactMap { if case .string(let s) = $0 { return s }; return nil }
        }
        func map(_ k: String) -> [String: String?]? {
            guard case .object(let m)? = a[k] else { return nil }
            return m.mapValues { v -> String? in
                switch v {
                case .string(let s): return s
                case .number(let n): return n
                case .bool(let b): return b ? "true" : "false"
                default: return nil
                }
            }
        }
        func object(_ k: String) -> [String: JSONValue]? { if case .object(let m)? = a[k] { return m }; return nil }
        switch name {
        case "protocol":
            return .protocolAction(DeltaProtocol(minReaderVersion: Int(int("minReaderVersion") ?? 1), minWriterVersion: Int(int("minWriterVersion") ?? 2),
                                                 readerFeatures: strings("readerFeatures"), writerFeatures: strings("writerFeatures")))
        case "metaData":
            guard let schema = string("schemaString") else { throw KilnError(.invalidState, "A metaData action without schemaString") }
            var m = DeltaMetadata(id: string("id") ?? "", name: string("name"), description: string("description"), schema: DeltaSchema([]),
                                  partitionColumns: strings("partitionColumns") ?? [],
                                  configuration: (map("configuration") ?? [:]).compactMapValues { $0 }, createdTime: int("createdTime"))
            m.schemaString = schema
            return .metadata(m)
        case "add":
            guard let path = string("path") else { throw KilnError(.invalidState, "An add action without a path") }
            var add = AddFile(path: path, partitionValues: map("partitionValues") ?? [:], size: int("size") ?? 0,
                              modificationTime: int("modificationTime") ?? 0, dataChange: bool("dataChange") ?? true, stats: string("stats"))
            add.tags = map("tags")?.compactMapValues { $0 }
            add.deletionVector = object("deletionVector")
            return .add(add)
        case "remove":
            guard let path = string("path") else { throw KilnError(.invalidState, "A remove action without a path") }
            return .remove(RemoveFile(path: path, deletionTimestamp: int("deletionTimestamp"), dataChange: bool("dataChange") ?? true,
                                      partitionValues: map("partitionValues"), size: int("size"), deletionVector: object("deletionVector")))
        case "txn":
            return .txn(appId: string("appId") ?? "", version: int("version") ?? 0, lastUpdated: int("lastUpdated"))
        case "commitInfo":
            return .commitInfo(a)
        case "cdc":
            return .cdc(path: string("path") ?? "", partitionValues: map("partitionValues") ?? [:], size: int("size") ?? 0)
        default:
            return .other(name, value)
        }
    }
}
