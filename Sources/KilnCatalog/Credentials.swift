import Foundation
import KilnCore

/// Temporary credentials, as Unity Catalog vends them to engines that read a table's or volume's files directly
/// (delta-rs, DuckDB, Spark). Kiln's storage is local today: the answer is the object's `file://` location and an
/// expiry, given only after the same check a read or write through Kiln makes (S3 credentials come with issue 23).
public struct TemporaryCredential: Sendable, Equatable {
    public var url: String
    public var expirationTime: Int64
}

extension UnityCatalog {
    /// How long a vended credential is good for.
    public static let credentialLifetimeMillis: Int64 = 60 * 60 * 1000

    /// For the table whose id is `tableID`: `READ` takes `SELECT`, `READ_WRITE` `MODIFY` (with the USE chain).
    /// - Throws: `RESOURCE_DOES_NOT_EXIST`, `PERMISSION_DENIED`, `INVALID_PARAMETER_VALUE` for another operation.
    public func tableCredential(tableID: String, operation: String, caller: Caller?) async throws -> TemporaryCredential {
        let privilege: Privilege
        switch operation.uppercased() {
        case "READ": privilege = .select
        case "READ_WRITE": privilege = .modify
        default: throw KilnError.invalid("operation must be READ or READ_WRITE, not '\(operation)'")
        }
        for c in catalog.catalogs() where c != "system" {
            for s in (try? catalog.schemas(in: c)) ?? [] {
                for t in (try? catalog.tables(in: c, s)) ?? [] where (try? tableIdentity(c, s, t))?.id == tableID {
                    let p = try await path(.table, "\(c).\(s).\(t)")
                    if let caller, !(try await allowed(caller, privilege, p)) {
                        throw Self.denied(caller, privilege == .select ? "read" : "change", p, needs: "USE_CATALOG, USE_SCHEMA and \(privilege.name)")
                    }
                    return TemporaryCredential(url: "file://" + (try catalog.path([c, s, t])), expirationTime: clock.nowMillis() + Self.credentialLifetimeMillis)
                }
            }
        }
        throw KilnError.notFound("No table with id \(tableID) exists")
    }

    /// For the volume whose id is `volumeID`: `READ_VOLUME` or `WRITE_VOLUME` (with the USE chain).
    public func volumeCredential(volumeID: String, operation: String, caller: Caller?) async throws -> TemporaryCredential {
        let privilege: Privilege
        switch operation.uppercased() {
        case "READ_VOLUME": privilege = .readVolume
        case "WRITE_VOLUME": privilege = .writeVolume
        default: throw KilnError.invalid("operation must be READ_VOLUME or WRITE_VOLUME, not '\(operation)'")
        }
        for c in catalog.catalogs() where c != "system" {
            for s in (try? catalog.schemas(in: c)) ?? [] {
                for name in (try? catalog.volumes(in: c, s)) ?? [] {
                    guard let v = try? loadVolume(c, s, name), v.volumeID == volumeID else { continue }
                    let p = try await path(.volume, v.fullName)
                    if let caller, !(try await allowed(caller, privilege, p)) {
                        throw Self.denied(caller, privilege == .readVolume ? "read" : "write to", p, needs: "USE_CATALOG, USE_SCHEMA and \(privilege.name)")
                    }
                    return TemporaryCredential(url: "file://" + v.location, expirationTime: clock.nowMillis() + Self.credentialLifetimeMillis)
                }
            }
        }
        throw KilnError.notFound("No volume with id \(volumeID) exists")
    }

    /// For a storage path: only admins (Kiln has no external locations to grant on yet).
    public func pathCredential(url: String, operation: String, caller: Caller?) throws -> TemporaryCredential {
        guard ["PATH_READ", "PATH_READ_WRITE", "PATH_CREATE_TABLE"].contains(operation.uppercased()) else {
            throw KilnError.invalid("operation must be PATH_READ, PATH_READ_WRITE or PATH_CREATE_TABLE, not '\(operation)'")
        }
        if let caller, !caller.isAdmin {
            throw KilnError(.permissionDenied, "\(caller.name) may not get credentials for a path: Kiln has no external locations to grant on; ask an admin, or use a table or volume")
        }
        return TemporaryCredential(url: url, expirationTime: clock.nowMillis() + Self.credentialLifetimeMillis)
    }
}
