import Foundation
import KilnCore
import KilnParquet

/// A generated column (`delta.generationExpression`): its value is a function of another column, computed by the
/// writer when the data lacks it and checked when the data has it.
///
/// Kiln computes the forms tables use for partitioning by time: `src`, `CAST(src AS DATE)`, `TO_DATE(src)`,
/// `YEAR(src)`, `MONTH(src)`, `DAY(src)` / `DAYOFMONTH(src)`, `HOUR(src)` over date and timestamp columns (UTC), and
/// `CAST(src AS BIGINT|INT|STRING)`. Other expressions are refused for writing with a message naming them.
struct GeneratedColumn: Sendable {
    enum Function: String, Sendable { case identity, toDate, year, month, day, hour, toLong, toInt, toString }

    var field: DeltaField
    var source: DeltaField
    var function: Function
    var expression: String

    /// The generated columns of a schema. - Throws: for an expression Kiln cannot compute.
    static func of(_ schema: DeltaSchema) throws -> [GeneratedColumn] {
        try schema.fields.compactMap { field in
            guard case .string(let expression)? = field.metadata["delta.generationExpression"] else { return nil }
            return try GeneratedColumn(field: field, expression: expression, schema: schema)
        }
    }

    init(field: DeltaField, expression: String, schema: DeltaSchema) throws {
        self.field = field
        self.expression = expression
        func refuse() -> KilnError {
            KilnError(.invalidState, "Column '\(field.name)' is generated as \(expression), which Kiln cannot compute yet; it can read the table")
        }
        var parser = PredicateParser(expression)
        var function = Function.identity
        let name: String
        if parser.keyword("CAST") {
            guard parser.symbol("(") else { throw refuse() }
            name = try parser.identifier()
            guard parser.keyword("AS") else { throw refuse() }
            let target = try parser.identifier().lowercased()
            guard let f = ["date": Function.toDate, "bigint": .toLong, "long": .toLong, "int": .toInt, "integer": .toInt,
                           "string": .toString][target] else { throw refuse() }
            function = f
            guard parser.symbol(")") else { throw refuse() }
        } else {
            let first = try parser.identifier()
            if parser.symbol("(") {
                guard let f = ["to_date": Function.toDate, "year": .year, "month": .month, "day": .day, "dayofmonth": .day,
                               "hour": .hour][first.lowercased()] else { throw refuse() }
                function = f
                name = try parser.identifier()
                guard parser.symbol(")") else { throw refuse() }
            } else {
                name = first
            }
        }
        parser.skip()
        guard parser.atEnd, let source = schema.field(name), case .primitive(let sourceType) = source.type else { throw refuse() }
        switch function {
        case .toDate, .year, .month, .day: guard ["date", "timestamp", "timestamp_ntz"].contains(sourceType) else { throw refuse() }
        case .hour: guard sourceType.hasPrefix("timestamp") else { throw refuse() }
        case .toLong, .toInt: guard ["long", "integer", "short", "byte"].contains(sourceType) else { throw refuse() }
        case .identity, .toString: break
        }
        self.source = source
        self.function = function
    }

    /// The generated value of one source value (dates as days, timestamps as µs, as `LakeValue` holds them).
    func value(_ input: LakeValue) -> LakeValue {
        guard input != .null else { return .null }
        guard case .primitive(let sourceType) = source.type else { return .null }
        let isTimestamp = sourceType.hasPrefix("timestamp")
        func days(_ v: Int64) -> Int64 {
            guard isTimestamp else { return v }
            let day: Int64 = 86_400_000_000
            return v >= 0 ? v / day : -((-v + day - 1) / day)
        }
        switch (function, input) {
        case (.identity, _): return input
        case (.toDate, .int(let v)): return .int(days(v))
        case (.year, .int(let v)): return .int(TextValues.civil(days: days(v)).year)
        case (.month, .int(let v)): return .int(TextValues.civil(days: days(v)).month)
        case (.day, .int(let v)): return .int(TextValues.civil(days: days(v)).day)
        case (.hour, .int(let v)):
            let inDay = v - days(v) * 86_400_000_000
            return .int(inDay / 3_600_000_000)
        case (.toLong, .int), (.toInt, .int): return input
        case (.toString, _): return input.text(type: source.type).map(LakeValue.string) ?? .null
        default: return .null
        }
    }
}

extension DeltaTable {
    /// Fills in the generated columns a batch (laid out as the table) lacks, and checks those it has.
    /// `provided` names the columns the data brought.
    static func generate(_ batch: LakeBatch, columns generated: [GeneratedColumn], provided: Set<String>) throws -> LakeBatch {
        guard !generated.isEmpty, batch.rowCount > 0 else { return batch }
        var batch = batch
        let nodes = batch.schema.root.children
        for generation in generated {
            guard let sourceLeaf = nodes.first(where: { $0.name.lowercased() == generation.source.name.lowercased() })?.leafIndex,
                  let targetLeaf = nodes.first(where: { $0.name.lowercased() == generation.field.name.lowercased() })?.leafIndex else { continue }
            let inputs = try values(rescaleTimestamps(batch.columns[sourceLeaf], from: batch.schema.columns[sourceLeaf].element),
                                    column: batch.schema.columns[sourceLeaf], type: generation.source.type)
            let outputs = inputs.map(generation.value)
            let descriptor = batch.schema.columns[targetLeaf]
            if provided.contains(generation.field.name.lowercased()) {
                let given = try values(batch.columns[targetLeaf], column: descriptor, type: generation.field.type)
                for row in outputs.indices where given[row] != outputs[row] {
                    throw KilnError.invalid("Column '\(generation.field.name)' is generated as \(generation.expression); row \(row + 1) has "
                        + "\(given[row].text(type: generation.field.type) ?? "NULL") where the expression gives \(outputs[row].text(type: generation.field.type) ?? "NULL")")
                }
                continue
            }
            if outputs.contains(.null), descriptor.maxDefinitionLevel == 0 {
                throw KilnError.invalid("Column '\(generation.field.name)' is NOT NULL, but \(generation.expression) is null for some rows")
            }
            batch.columns[targetLeaf] = try column(outputs, descriptor: descriptor)
        }
        return batch
    }

    /// A flat column of `values` for a leaf of the table's Parquet schema.
    static func column(_ values: [LakeValue], descriptor: ColumnDescriptor) throws -> ColumnData {
        var builder = ValueBuilder(descriptor.element.physicalType!, width: Int(descriptor.element.typeLength ?? 0))
        var levels: [UInt8] = []
        levels.reserveCapacity(values.count)
        for value in values {
            let cell: ParquetCell
            switch (value, descriptor.element.physicalType!) {
            case (.null, _): levels.append(0); continue
            case (.int(let v), .int32): cell = .int32(Int32(truncatingIfNeeded: v))
            case (.int(let v), .int64): cell = .int64(v)
            case (.string(let s), .byteArray): cell = .bytes(Array(s.utf8))
            default: throw KilnError.invalid("Cannot store \(value) in column \(descriptor.dottedPath)")
            }
            _ = builder.append(cell)
            levels.append(1)
        }
        return ColumnData(values: builder.build(), definitionLevels: descriptor.maxDefinitionLevel == 0 ? nil : levels, count: values.count)
    }
}
