import Foundation
import KilnCore
import KilnParquet

/// A data-quality expectation on a table (Delta Live Tables' `CONSTRAINT name EXPECT (expr) ON VIOLATION ...`),
/// stored as the table property `kiln.expectations.<name>` = `{"expression": ..., "action": "warn|drop|fail"}`.
/// Writes count the rows that pass and fail each one; `drop` removes failing rows, `fail` refuses the write.
/// A condition that is null for a row (a null input) counts as passing, as CHECK constraints do.
public struct Expectation: Sendable, Equatable {
    public enum Action: String, Sendable { case warn, drop, fail }

    public var name: String
    public var expression: String
    public var action: Action

    public init(name: String, expression: String, action: Action) {
        self.name = name
        self.expression = expression
        self.action = action
    }

    static let prefix = "kiln.expectations."

    /// The property that stores it.
    public var property: (key: String, value: String) {
        (Self.prefix + name.lowercased(), JSONText.string(.object(["expression": .string(expression), "action": .string(action.rawValue)])))
    }

    /// The expectations of a table's properties. - Throws: for an unreadable one.
    static func of(_ configuration: [String: String]) throws -> [Expectation] {
        try configuration.keys.filter { $0.hasPrefix(prefix) }.sorted().map { key in
            guard case .object(let o) = try JSONValue.parse(Array(configuration[key]!.utf8)), case .string(let expression)? = o["expression"],
                  case .string(let action)? = o["action"], let a = Action(rawValue: action) else {
                throw KilnError(.invalidState, "The expectation \(key) cannot be read: \(configuration[key]!)")
            }
            return Expectation(name: String(key.dropFirst(prefix.count)), expression: expression, action: a)
        }
    }
}

extension DeltaTable {
    /// Applies the table's expectations to a batch: counts passing/failing rows per expectation (into `counts`),
    /// drops the failing rows of `drop` expectations, throws for `fail` ones.
    static func applyExpectations(_ expectations: [Expectation], to batch: LakeBatch, schema: DeltaSchema,
                                  counts: inout [String: (passed: Int, failed: Int)]) throws -> LakeBatch {
        guard !expectations.isEmpty, batch.rowCount > 0 else { return batch }
        var keep = [Bool](repeating: true, count: batch.rowCount)
        for expectation in expectations {
            let mask = try Self.mask(try LakePredicate.parse(expectation.expression), batch, schema: schema)
            let failing = mask.indices.filter { mask[$0] == 0 }
            counts[expectation.name, default: (0, 0)].passed += batch.rowCount - failing.count
            counts[expectation.name, default: (0, 0)].failed += failing.count
            switch expectation.action {
            case .warn: continue
            case .drop: for row in failing { keep[row] = false }
            case .fail:
                if let first = failing.first {
                    throw KilnError.invalid("Expectation \(expectation.name) (\(expectation.expression)) failed for \(failing.count) rows, the first row \(first + 1); the write was refused (ON VIOLATION FAIL UPDATE)")
                }
            }
        }
        guard keep.contains(false) else { return batch }
        let rows = keep.indices.filter { keep[$0] }
        return LakeBatch(schema: batch.schema, columns: batch.columns.indices.map {
            batch.columns[$0].take(rows: rows, maxDefinitionLevel: batch.schema.columns[$0].maxDefinitionLevel)
        })
    }
}
