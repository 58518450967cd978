import Foundation
import KilnCore
import KilnFrame
import KilnSQL

/// `<catalog>.information_schema.<view>`: the catalog's objects as rows, showing only what the caller may see (the
/// same rules as the API's lists); the privilege views show grants the caller holds (directly or through a group) and
/// every grant on objects it may manage.
extension UnityCatalog {
    public static let informationSchemaViews = ["catalogs", "schemata", "tables", "columns", "table_privileges", "schema_privileges", "volumes",
                                                "routines"]

    /// One view's rows for `caller` (nil: Kiln itself, which sees everything).
    /// - Throws: `RESOURCE_DOES_NOT_EXIST` for a view Kiln does not have.
    public func informationSchema(_ view: String, in catalogName: String, caller: Caller?) async throws -> Frame {
        var rows = Rows()
        // A catalog the caller may not see has nothing in its information_schema for it.
        guard (try? await getCatalog(catalogName, caller: caller)) != nil else { return try Self.empty(view) }
        let schemas = try await schemas(in: catalogName, caller: caller).filter { $0.schema != "information_schema" }
        switch view {
        case "catalogs":
            for c in try await catalogs(caller: caller) where c.catalog == catalogName {
                rows.add(["catalog_name": .s(c.catalog), "catalog_owner": .s(c.ownership.owner), "comment": .s(c.info.comment),
                          "created": .t(c.ownership.createdAt ?? c.info.createdAt), "created_by": .s(c.ownership.createdBy),
                          "last_altered": .t(c.ownership.updatedAt), "last_altered_by": .s(c.ownership.updatedBy)])
            }
        case "schemata":
            for s in schemas {
                rows.add(["catalog_name": .s(s.catalog), "schema_name": .s(s.schema), "schema_owner": .s(s.ownership.owner), "comment": .s(s.info.comment),
                          "created": .t(s.ownership.createdAt ?? s.info.createdAt), "created_by": .s(s.ownership.createdBy),
                          "last_altered": .t(s.ownership.updatedAt), "last_altered_by": .s(s.ownership.updatedBy)])
            }
        case "tables", "columns":
            for s in schemas {
                for t in try await tables(in: catalogName, s.schema!, caller: caller) {
                    if view == "tables" {
                        rows.add(["table_catalog": .s(t.catalog), "table_schema": .s(t.schema), "table_name": .s(t.name), "table_type": .s(t.tableType),
                                  "table_owner": .s(t.ownership.owner), "comment": .s(t.comment), "created": .t(t.createdAt),
                                  "created_by": .s(t.ownership.createdBy), "last_altered": .t(t.updatedAt), "data_source_format": .s("DELTA")])
                        continue
                    }
                    for (i, c) in t.columns.enumerated() {
                        rows.add(["table_catalog": .s(t.catalog), "table_schema": .s(t.schema), "table_name": .s(t.name), "column_name": .s(c.name),
                                  "ordinal_position": .i(Int64(i)), "is_nullable": .s(c.nullable ? "YES" : "NO"), "data_type": .s(ColumnTypes.name(c.type)),
                                  "full_data_type": .s(ColumnTypes.text(c.type)),
                                  "comment": .s({ if case .string(let text)? = c.metadata["comment"] { return text } else { return nil } }())])
                    }
                }
            }
        case "volumes":
            for s in schemas {
                for v in try await volumes(in: catalogName, s.schema!, caller: caller) {
                    rows.add(["volume_catalog": .s(v.catalog), "volume_schema": .s(v.schema), "volume_name": .s(v.name), "volume_type": .s(v.volumeType),
                              "volume_owner": .s(v.ownership.owner), "comment": .s(v.comment), "storage_location": .s("file://" + v.location),
                              "created": .t(v.createdAt), "created_by": .s(v.ownership.createdBy)])
                }
            }
        case "routines":
            for s in schemas {
                for e in try await functions(in: catalogName, s.schema!, caller: caller) {
                    let f = e.function
                    let returns = (try? Parser.type(f.returnsText))?.delta ?? .primitive("string")
                    rows.add(["specific_catalog": .s(f.catalog), "specific_schema": .s(f.schema), "specific_name": .s(f.name),
                              "routine_catalog": .s(f.catalog), "routine_schema": .s(f.schema), "routine_name": .s(f.name), "routine_type": .s("FUNCTION"),
                              "routine_owner": .s(e.ownership.owner), "data_type": .s(ColumnTypes.name(returns)), "full_data_type": .s(ColumnTypes.text(returns)),
                              "routine_body": .s(f.language == .sql ? "SQL" : "EXTERNAL"), "routine_definition": .s(f.body), "comment": .s(f.comment), "created": .t(f.createdAt)])
                }
            }
        case "schema_privileges", "table_privileges":
            let names = caller.map { $0.groups.union([$0.name]) }
            var securables: [SecurablePath] = []
            for s in schemas {
                if view == "schema_privileges" {
                    securables.append(try await path(.schema, s.fullName))
                } else {
                    for t in try await tables(in: catalogName, s.schema!, caller: caller) { securables.append(try await path(.table, t.fullName)) }
                }
            }
            for p in securables {
                let manages = try await mayManage(caller, p)
                for (grantee, privileges) in try await permissions(p) where manages || names?.contains(grantee) ?? true {
                    let parts = p.target.fullName.split(separator: ".").map(String.init)
                    for privilege in privileges {
                        var row: [String: Cell] = ["grantor": .s(p.target.ownership.owner), "grantee": .s(grantee), "privilege_type": .s(privilege.spaced),
                                                   "is_grantable": .s("NO"), "inherited_from": .s("NONE")]
                        if view == "schema_privileges" {
                            row["catalog_name"] = .s(parts[0]); row["schema_name"] = .s(parts[1])
                        } else {
                            row["table_catalog"] = .s(parts[0]); row["table_schema"] = .s(parts[1]); row["table_name"] = .s(parts[2])
                        }
                        rows.add(row)
                    }
                }
            }
        default:
            throw KilnError.notFound("\(catalogName).information_schema.\(view) is not a view Kiln has; use one of \(Self.informationSchemaViews.joined(separator: ", "))")
        }
        return try rows.frame(Self.columns(view))
    }

    static func empty(_ view: String) throws -> Frame { try Rows().frame(columns(view)) }

    /// Each view's columns, in Databricks' order, with their types.
    static func columns(_ view: String) throws -> [(String, FrameType)] {
        let audit: [(String, FrameType)] = [("created", .timestamp), ("created_by", .string), ("last_altered", .timestamp), ("last_altered_by", .string)]
        switch view {
        case "catalogs": return [("catalog_name", .string), ("catalog_owner", .string), ("comment", .string)] + audit
        case "schemata": return [("catalog_name", .string), ("schema_name", .string), ("schema_owner", .string), ("comment", .string)] + audit
        case "tables":
            return [("table_catalog", .string), ("table_schema", .string), ("table_name", .string), ("table_type", .string), ("table_owner", .string),
                    ("comment", .string), ("created", .timestamp), ("created_by", .string), ("last_altered", .timestamp), ("data_source_format", .string)]
        case "columns":
            return [("table_catalog", .string), ("table_schema", .string), ("table_name", .string), ("column_name", .string), ("ordinal_position", .int64),
                    ("is_nullable", .string), ("data_type", .string), ("full_data_type", .string), ("comment", .string)]
        case "volumes":
            return [("volume_catalog", .string), ("volume_schema", .string), ("volume_name", .string), ("volume_type", .string), ("volume_owner", .string),
                    ("comment", .string), ("storage_location", .string), ("created", .timestamp), ("created_by", .string)]
        case "routines":
            return [("specific_catalog", .string), ("specific_schema", .string), ("specific_name", .string), ("routine_catalog", .string),
                    ("routine_schema", .string), ("routine_name", .string), ("routine_type", .string), ("routine_owner", .string), ("data_type", .string),
                    ("full_data_type", .string), ("routine_body", .string), ("routine_definition", .string), ("comment", .string), ("created", .timestamp)]
        case "schema_privileges":
            return [("grantor", .string), ("grantee", .string), ("catalog_name", .string), ("schema_name", .string), ("privilege_type", .string),
                    ("is_grantable", .string), ("inherited_from", .string)]
        case "table_privileges":
            return [("grantor", .string), ("grantee", .string), ("table_catalog", .string), ("table_schema", .string), ("table_name", .string),
                    ("privilege_type", .string), ("is_grantable", .string), ("inherited_from", .string)]
        default: throw KilnError.notFound("information_schema.\(view) is not a view Kiln has; use one of \(informationSchemaViews.joined(separator: ", "))")
        }
    }

    /// A cell of a view: text, a number, or milliseconds since the epoch (shown as a timestamp).
    enum Cell { case s(String?), i(Int64), t(Int64?) }

    struct Rows {
        var rows: [[String: Cell]] = []
        mutating func add(_ row: [String: Cell]) { rows.append(row) }

        func frame(_ columns: [(String, FrameType)]) throws -> Frame {
            Frame(names: columns.map(\.0), columns: columns.map { name, type in
                switch type {
                case .int64, .timestamp:
                    var values: [Int64] = [], valid: [Bool] = []
                    for row in rows {
                        switch row[name] {
                        case .i(let n)?: values.append(n); valid.append(true)
                        case .t(let ms?)?: values.append(ms * 1000); valid.append(true)
                        default: values.append(0); valid.append(false)
                        }
                    }
                    return Column(type: type, values: .int(values), validity: valid)
                default:
                    var bytes = ByteColumn(), valid: [Bool] = []
                    for row in rows {
                        if case .s(let text?)? = row[name] { bytes.append(text); valid.append(true) } else { bytes.append(""); valid.append(false) }
                    }
                    return Column(type: .string, values: .bytes(bytes), validity: valid)
                }
            })
        }
    }
}
