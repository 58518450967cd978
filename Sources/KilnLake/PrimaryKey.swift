import KilnCore

/// A table's primary key, as feature tables declare it (`CONSTRAINT pk PRIMARY KEY (id, ts TIMESERIES)`): which
/// columns identify a row and which of them is its time. Informational to Delta readers (Databricks does not enforce
/// it either); kept as the table property `kiln.primaryKey` so it travels with the table, and served by the catalog
/// API as `table_constraints`.
public struct PrimaryKey: Sendable, Equatable {
    public static let property = "kiln.primaryKey"

    public var name: String
    public var columns: [String]
    /// The time column (at most one, one of `columns`).
    public var timeseries: [String]

    public init(name: String, columns: [String], timeseries: [String] = []) {
        self.name = name
        self.columns = columns
        self.timeseries = timeseries
    }

    /// The key a table's properties hold, if any.
    public init?(properties: [String: String]) {
        guard let text = properties[Self.property], case .object(let o)? = try? JSONValue.parse(Array(text.utf8)),
              case .string(let name)? = o["name"], case .array(let columns)? = o["columns"] else { return nil }
        self.name = name
        self.columns = columns.compactMap { if case .string(let s) = $0 { return s }; return nil }
        if case .array(let ts)? = o["timeseries"] {
            timeseries = ts.compactMap { if case .string(let s) = $0 { return s }; return nil }
        } else {
            timeseries = []
        }
    }

    /// The property's value.
    public var propertyValue: String {
        JSONText.string(.object(["name": .string(name), "columns": .array(columns.map(JSONValue.string)),
                                 "timeseries": .array(timeseries.map(JSONValue.string))]))
    }

    /// Checks the key against the table's columns, as Databricks does: every column exists once, is not nullable,
    /// and is not a nested type; at most one TIMESERIES column, a date or timestamp. Column names take the table's
    /// spelling. - Throws: `INVALID_PARAMETER_VALUE` naming the column and what to do.
    public func validated(_ schema: DeltaSchema) throws -> PrimaryKey {
        guard !columns.isEmpty else { throw KilnError.invalid("PRIMARY KEY \(name) needs at least one column") }
        var out = self
        out.columns = try columns.map { column in
            guard let field = schema.field(column) else {
                throw KilnError.invalid("PRIMARY KEY \(name) names column '\(column)', which the table does not have; columns are \(schema.fields.map(\.name).joined(separator: ", "))")
            }
            guard !field.nullable else {
                throw KilnError.invalid("Cannot create the primary key \(name) because its column '\(field.name)' is nullable; declare it NOT NULL (CREATE TABLE ... (\(field.name) \(field.type.sqlName) NOT NULL, ...))")
            }
            switch field.type {
            case .primitive, .decimal: return field.name
            default: throw KilnError.invalid("PRIMARY KEY \(name): column '\(field.name)' is a \(field.type.sqlName); keys are plain columns")
            }
        }
        guard Set(out.columns.map { $0.lowercased() }).count == out.columns.count else {
            throw KilnError.invalid("PRIMARY KEY \(name) names a column twice")
        }
        guard timeseries.count <= 1 else { throw KilnError.invalid("PRIMARY KEY \(name) has more than one TIMESERIES column") }
        out.timeseries = try timeseries.map { column in
            guard let field = schema.field(column), out.columns.contains(field.name) else {
                throw KilnError.invalid("The TIMESERIES column '\(column)' must be one of the primary key's columns")
            }
            guard [.primitive("timestamp"), .primitive("timestamp_ntz"), .primitive("date")].contains(field.type) else {
                throw KilnError.invalid("The TIMESERIES column '\(field.name)' is a \(field.type.sqlName); it must be a TIMESTAMP or DATE")
            }
            return field.name
        }
        return out
    }
}
