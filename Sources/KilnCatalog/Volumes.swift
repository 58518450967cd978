import Foundation
import KilnCore
import KilnSQL

/// A volume: a folder of files governed like a table (`READ_VOLUME`, `WRITE_VOLUME`) — managed (inside its schema's
/// folder, deleted with it) or external (at a LOCATION, left there when the volume is dropped).
public struct VolumeEntry: Sendable {
    public var catalog: String
    public var schema: String
    public var name: String
    public var volumeID: String
    public var comment: String?
    public var createdAt: Int64
    /// The folder holding the volume's files.
    public var location: String
    public var ownership: Ownership
    public var external = false
    public var fullName: String { "\(catalog).\(schema).\(name)" }
    /// `MANAGED` or `EXTERNAL`.
    public var volumeType: String { external ? "EXTERNAL" : "MANAGED" }
}

extension UnityCatalog {
    func volumeInfoPath(_ catalogName: String, _ schemaName: String, _ name: String) -> String {
        catalog.volumesFolder(catalogName, schemaName) + "/\(name).json"
    }

    func loadVolume(_ catalogName: String, _ schemaName: String, _ name: String) throws -> VolumeEntry {
        guard catalog.schemaExists(catalogName, schemaName) else {
            throw KilnError.notFound("[SCHEMA_NOT_FOUND] The schema '\(catalogName).\(schemaName)' does not exist")
        }
        guard let data = FileManager.default.contents(atPath: volumeInfoPath(catalogName, schemaName, name)),
              case .object(let o) = try JSONValue.parse(data), case .string(let id)? = o["id"] else {
            throw KilnError.notFound("The volume '\(catalogName).\(schemaName).\(name)' does not exist")
        }
        var comment: String?, created: Int64 = 0
        if case .string(let c)? = o["comment"] { comment = c }
        if case .number(let n)? = o["created_at"] { created = Int64(n) ?? 0 }
        return VolumeEntry(catalog: catalogName, schema: schemaName, name: name, volumeID: id, comment: comment, createdAt: created,
                           location: catalog.volumeLocation(catalogName, schemaName, name),
                           ownership: Ownership(owner: Self.metastoreAdmin, createdAt: created), external: o["location"] != nil)
    }

    func writeVolumeInfo(_ v: VolumeEntry) throws {
        var fields: [String: JSONValue] = ["id": .string(v.volumeID), "name": .string(v.name), "created_at": .number(String(v.createdAt))]
        if let comment = v.comment { fields["comment"] = .string(comment) }
        if v.external { fields["location"] = .string(v.location) }
        try Data(JSONValue.object(fields).json.utf8).write(to: URL(fileURLWithPath: volumeInfoPath(v.catalog, v.schema, v.name)), options: .atomic)
    }

    func volume(_ catalogName: String, _ schemaName: String, _ name: String) async throws -> VolumeEntry {
        var v = try loadVolume(catalogName, schemaName, name)
        v.ownership = try await ownership(v.volumeID, createdAt: v.createdAt)
        return v
    }

    /// The volumes of a schema `caller` may see.
    public func volumes(in catalogName: String, _ schemaName: String, caller: Caller?) async throws -> [VolumeEntry] {
        let schemaPath = try await path(.schema, "\(catalogName).\(schemaName)")
        let folder = catalog.volumesFolder(catalogName, schemaName)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".json") }
            .map { String($0.dropLast(5)) }.sorted()
        var found: [VolumeEntry] = []
        for name in names { if let v = try? await volume(catalogName, schemaName, name) { found.append(v) } }
        return try await visibleChildren(found, of: schemaPath, caller: caller) {
            .init(type: .volume, id: $0.volumeID, fullName: $0.fullName, ownership: $0.ownership)
        }
    }

    /// A volume. - Throws: `PERMISSION_DENIED` when `caller` may not see it.
    public func getVolume(_ catalogName: String, _ schemaName: String, _ name: String, caller: Caller?) async throws -> VolumeEntry {
        let v = try await volume(catalogName, schemaName, name)
        try await requireVisible(caller, .volume, v.fullName)
        return v
    }

    /// Creates a managed volume; takes `CREATE_VOLUME` on the schema (with the USE chain).
    /// Creates a managed volume, or with `location` an external one there (external volumes take an admin until
    /// external locations exist to grant `CREATE_EXTERNAL_VOLUME` on).
    public func createVolume(_ catalogName: String, _ schemaName: String, _ name: String, comment: String?, location: String? = nil,
                             caller: Caller?) async throws -> VolumeEntry {
        try Catalog.checkName(name)
        try TextLimit.check(comment, "comment", max: 65_535)
        let parent = try await path(.schema, "\(catalogName).\(schemaName)")
        if let caller, !(try await allowed(caller, .createVolume, parent)) {
            throw Self.denied(caller, "create volumes in", parent, needs: "USE_CATALOG, USE_SCHEMA and CREATE_VOLUME")
        }
        if location != nil, let caller, !caller.isAdmin {
            throw KilnError(.permissionDenied, "\(caller.name) may not create external volumes: a storage location takes an admin (there are no external locations to grant CREATE_EXTERNAL_VOLUME on yet)")
        }
        guard (try? loadVolume(catalogName, schemaName, name)) == nil else {
            throw KilnError.alreadyExists("Volume '\(catalogName).\(schemaName).\(name)' already exists")
        }
        let folder = try location.map { try catalog.externalFolder(location: $0) } ?? catalog.volumesFolder(catalogName, schemaName) + "/" + name
        let v = VolumeEntry(catalog: catalogName, schema: schemaName, name: name, volumeID: UUID().uuidString.lowercased(), comment: comment,
                            createdAt: clock.nowMillis(), location: folder, ownership: Ownership(owner: Self.metastoreAdmin), external: location != nil)
        try FileManager.default.createDirectory(atPath: v.location, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: catalog.volumesFolder(catalogName, schemaName), withIntermediateDirectories: true)
        try writeVolumeInfo(v)
        try await recordCreated(v.volumeID, by: caller)
        return try await volume(catalogName, schemaName, name)
    }

    /// Changes a volume's name, comment or owner (its owner, a container's owner, `MANAGE`, or an admin).
    public func updateVolume(_ catalogName: String, _ schemaName: String, _ name: String, newName: String?, comment: String?, owner: String?,
                             caller: Caller?) async throws -> VolumeEntry {
        try await requireManage(caller, .volume, "\(catalogName).\(schemaName).\(name)", action: "change")
        var v = try await volume(catalogName, schemaName, name)
        if let comment { v.comment = comment }
        if let newName, newName != name {
            try Catalog.checkName(newName)
            guard (try? loadVolume(catalogName, schemaName, newName)) == nil else {
                throw KilnError.alreadyExists("Volume '\(catalogName).\(schemaName).\(newName)' already exists")
            }
            if !v.external {  // an external volume's files stay at its location
                let target = catalog.volumesFolder(catalogName, schemaName) + "/" + newName
                try FileManager.default.moveItem(atPath: v.location, toPath: target)
                v.location = target
            }
            try FileManager.default.removeItem(atPath: volumeInfoPath(catalogName, schemaName, name))
            v.name = newName
        }
        try writeVolumeInfo(v)
        try await recordUpdated(v.volumeID, current: v.ownership, owner: owner, by: caller)
        return try await volume(catalogName, schemaName, v.name)
    }

    /// Deletes a volume and its files.
    public func deleteVolume(_ catalogName: String, _ schemaName: String, _ name: String, caller: Caller?) async throws {
        try await requireManage(caller, .volume, "\(catalogName).\(schemaName).\(name)", action: "delete")
        let v = try await volume(catalogName, schemaName, name)
        try FileManager.default.removeItem(atPath: volumeInfoPath(catalogName, schemaName, name))
        if !v.external { try? FileManager.default.removeItem(atPath: v.location) }  // an external volume's files stay
        try await forget(v.volumeID)
    }

    /// The file or folder a Files API path names (`/Volumes/catalog/schema/volume/...`), checked: reading takes
    /// `READ_VOLUME`, writing `WRITE_VOLUME` (with the USE chain); `..` and links out of the volume are refused.
    /// - Returns: the local path, and the volume's folder.
    public func volumeFile(_ path: String, write: Bool, caller: Caller?) async throws -> (file: String, root: String) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard parts.count >= 4, parts[0] == "Volumes" else {
            throw KilnError.invalid("Files API paths look like /Volumes/<catalog>/<schema>/<volume>/<path>, not '\(path)'")
        }
        guard !parts.contains(".."), !parts.contains("."), !parts.contains(where: { $0.contains("\0") }) else {
            throw KilnError.invalid("'\(path)' has '.' or '..' segments")
        }
        let v = try await volume(parts[1], parts[2], parts[3])
        let p = try await self.path(.volume, v.fullName)
        if let caller, !(try await allowed(caller, write ? .writeVolume : .readVolume, p)) {
            throw Self.denied(caller, write ? "write to" : "read", p, needs: "USE_CATALOG, USE_SCHEMA and \(write ? "WRITE_VOLUME" : "READ_VOLUME")")
        }
        let file = ([v.location] + parts.dropFirst(4)).joined(separator: "/")
        let resolved = URL(fileURLWithPath: file).resolvingSymlinksInPath().path
        let root = URL(fileURLWithPath: v.location).resolvingSymlinksInPath().path
        guard resolved == root || resolved.hasPrefix(root + "/") else { throw KilnError.invalid("'\(path)' leads out of its volume") }
        return (file, v.location)
    }
}
