import Foundation
import KilnCore
import KilnFrame
import KilnLake

/// MERGE, UPDATE and DELETE on Delta tables through the SQL engine's vectorized expressions: conditions and SET values
/// are any SQL expression over the target (and, for MERGE, the source) columns. The files holding a changed row are
/// rewritten (their unchanged rows with them) and everything commits at once; files a WHERE cannot match (by Delta
/// statistics and partition values) are not even read.
extension Execution {
    /// The target's rows, read file by file so each row knows the file it came from.
    struct TargetRows {
        var table: DeltaTable
        var snapshot: DeltaSnapshot
        var files: [AddFile]
        var relation: Relation
        /// The index into `files` of each row.
        var fileOf: [Int]
        var fields: [DeltaField]
        var types: [FrameType]
    }

    /// The frame types of a table's columns; nil when one has a type frames cannot hold (then UPDATE/DELETE fall back
    /// to the Delta engine's own, with its predicate language).
    static func frameTypes(_ schema: DeltaSchema) -> [FrameType]? {
        let types = schema.fields.map { FrameType(delta: $0.type) }
        return types.contains(where: { $0 == nil }) ? nil : types.map { $0! }
    }

    func readTarget(_ table: DeltaTable, name: [String], alias: String?, pruneWith text: String?) throws -> TargetRows {
        var plan = try table.plan()
        if let text, let pruned = try? table.plan(predicate: text) { plan = pruned }
        let snapshot = plan.snapshot
        guard let types = Self.frameTypes(snapshot.schema) else {
            throw KilnError.invalid("This statement cannot change \(name.joined(separator: ".")): a column has a type Kiln cannot read")
        }
        let names = snapshot.schema.fields.map(\.name)
        var parts: [Frame] = [], fileOf: [Int] = []
        for (index, file) in plan.files.enumerated() {
            let frame = try Frame.read(table, plan: ScanPlan(snapshot: snapshot, files: [file]), columns: names)
            parts.append(frame)
            fileOf += [Int](repeating: index, count: frame.rowCount)
        }
        let frame = parts.isEmpty ? try Frame.empty(snapshot.schema, columns: names) : Frame.concatenate(parts)
        return TargetRows(table: table, snapshot: snapshot, files: plan.files, relation: Relation(frame: frame, qualifier: alias ?? name.last!),
                          fileOf: fileOf, fields: snapshot.schema.fields, types: types)
    }

    /// Where a condition is true (null and false are not).
    func truth(_ e: Expr?, on relation: Relation) throws -> [Bool] {
        guard let e else { return [Bool](repeating: true, count: relation.rowCount) }
        let column = try relation.bind(try prepare(e)).evaluate(relation.frame)
        guard case .bool(let bits) = column.values else { throw KilnError.invalid("A condition must be true or false, not \(column.type)") }
        guard let valid = column.validity else { return bits }
        return zip(bits, valid).map { $0 && $1 }
    }

    /// The table's columns for the rows of `relation`: assigned columns evaluated there (cast to the column's type),
    /// the others taken from `base` (the target's own columns for those rows).
    func assign(_ assignments: [(column: String, value: Expr)], on relation: Relation, base: Frame, target: TargetRows) throws -> Frame {
        var columns = base.columns
        for (column, value) in assignments {
            guard let index = target.fields.firstIndex(where: { $0.name.lowercased() == column.lowercased() }) else {
                throw KilnError.invalid("The table has no column '\(column)'; columns are \(target.fields.map(\.name).joined(separator: ", "))")
            }
            columns[index] = try Self.fit(try relation.bind(try prepare(value)).evaluate(relation.frame), to: target.types[index], rows: relation.rowCount)
        }
        return Frame(names: target.fields.map(\.name), columns: columns)
    }

    /// A value column cast to a table column's type (a constant stretched to every row).
    static func fit(_ column: Column, to type: FrameType, rows: Int) throws -> Column {
        var column = column
        if column.count != rows {
            column = column.count == 0 ? Column.nulls(type, count: rows) : column.take([Int](repeating: 0, count: rows))
        }
        return column.type == type ? column : try column.cast(to: type)
    }

    /// The table's columns taken by name from a source relation (`UPDATE SET *`, `INSERT *`).
    func byName(_ relation: Relation, target: TargetRows, clause: String) throws -> Frame {
        let columns = try target.fields.enumerated().map { index, field -> Column in
            guard let i = relation.names.firstIndex(where: { $0.lowercased() == field.name.lowercased() }) else {
                throw KilnError.invalid("\(clause) needs the source to have every column of the table; it has no '\(field.name)'")
            }
            return try Self.fit(relation.frame.columns[i], to: target.types[index], rows: relation.rowCount)
        }
        return Frame(names: target.fields.map(\.name), columns: columns)
    }

    /// Rewrites the files of the changed target rows: their other rows are kept, `updated` replaces the updated ones,
    /// `deletedRows` go, `inserted` is added. One commit.
    func commitChanges(_ target: TargetRows, updatedRows: [Int], updated: [Frame], deletedRows: [Int], inserted: [Frame],
                       operation: String, parameters: [String: JSONValue], metrics: [String: JSONValue]) throws -> Int64? {
        let schema = target.snapshot.schema
        let changedRows = Set(updatedRows).union(deletedRows)
        let touched = Set(changedRows.map { target.fileOf[$0] })
        let kept = target.fileOf.indices.filter { touched.contains(target.fileOf[$0]) && !changedRows.contains($0) }
        let frame = target.relation.frame
        let table = Frame(names: target.fields.map(\.name), columns: frame.columns)
        let rows = Frame.concatenate([table.take(kept)] + updated + inserted)
        var changes: ChangeRows = []
        if !updatedRows.isEmpty {
            changes.append((try table.take(updatedRows).lakeBatch(schema), "update_preimage"))
            changes.append((try Frame.concatenate(updated).lakeBatch(schema), "update_postimage"))
        }
        if !deletedRows.isEmpty { changes.append((try table.take(Array(Set(deletedRows)).sorted()).lakeBatch(schema), "delete")) }
        if !inserted.isEmpty, inserted.contains(where: { $0.rowCount > 0 }) { changes.append((try Frame.concatenate(inserted).lakeBatch(schema), "insert")) }
        let files = touched.sorted().map { target.files[$0] }
        return try target.table.rewrite(snapshot: target.snapshot, removing: files, adding: rows.rowCount > 0 ? try rows.lakeBatch(schema) : nil,
                                        changes: changes, operation: operation, parameters: parameters, metrics: metrics)
    }

    // MARK: UPDATE and DELETE

    func updateStatement(_ name: [String], alias: String?, assignments: [(column: String, value: Expr)], condition: Expr?,
                         assignmentsText: String, conditionText: String?) throws -> Frame {
        let table = try open(name)
        guard Self.frameTypes(try table.snapshot().schema) != nil else {
            return Self.count("num_affected_rows", Int64(try table.update(set: assignmentsText, where: conditionText).rowsUpdated))
        }
        let target = try readTarget(table, name: name, alias: alias, pruneWith: conditionText)
        let mask = try truth(condition, on: target.relation)
        let selected = mask.indices.filter { mask[$0] }
        guard !selected.isEmpty else { return Self.count("num_affected_rows", 0) }
        let rows = target.relation.take(selected)
        let updated = try assign(assignments, on: rows, base: rows.frame, target: target)
        var parameters: [String: JSONValue] = [:]
        if let conditionText { parameters["predicate"] = .string(conditionText) }
        _ = try commitChanges(target, updatedRows: selected, updated: [updated], deletedRows: [], inserted: [], operation: "UPDATE",
                              parameters: parameters, metrics: ["numUpdatedRows": .number(String(selected.count))])
        return Self.count("num_affected_rows", Int64(selected.count))
    }

    func deleteStatement(_ name: [String], alias: String?, condition: Expr?, text: String?) throws -> Frame {
        let table = try open(name)
        guard let condition else {
            let count = try table.snapshot().numRecords ?? 0
            try table.delete(where: "true")
            return Self.count("num_affected_rows", count)
        }
        guard Self.frameTypes(try table.snapshot().schema) != nil, let text else {
            return Self.count("num_affected_rows", Int64(try table.delete(where: text ?? "true").rowsDeleted))
        }
        let target = try readTarget(table, name: name, alias: alias, pruneWith: text)
        let mask = try truth(condition, on: target.relation)
        let selected = mask.indices.filter { mask[$0] }
        guard !selected.isEmpty else { return Self.count("num_affected_rows", 0) }
        _ = try commitChanges(target, updatedRows: [], updated: [], deletedRows: selected, inserted: [], operation: "DELETE",
                              parameters: ["predicate": .string(text)], metrics: ["numDeletedRows": .number(String(selected.count))])
        return Self.count("num_affected_rows", Int64(selected.count))
    }

    // MARK: MERGE

    func mergeStatement(_ m: MergeStatement) throws -> Frame {
        let table = try open(m.target)
        let target = try readTarget(table, name: m.target, alias: m.targetAlias, pruneWith: nil)
        var run = self
        run.needed = nil
        let source = try run.fromItem(m.source, env: [:])
        let (pairsLeft, pairsRight) = try matchPairs(m.condition, target: target.relation, source: source)
        var matches = [Int](repeating: 0, count: target.relation.rowCount)
        var sourceMatched = [Bool](repeating: false, count: source.rowCount)
        for (l, r) in zip(pairsLeft, pairsRight) {
            matches[l] += 1
            sourceMatched[r] = true
        }
        let matchedClauses = m.clauses.filter { $0.kind == .matched }
        let onlyUnconditionalDeletes = matchedClauses.allSatisfy { clause in
            if case .delete = clause.action, clause.condition == nil { return true }
            return false
        }
        if !matchedClauses.isEmpty, !onlyUnconditionalDeletes, let row = matches.firstIndex(where: { $0 > 1 }) {
            throw KilnError.invalid("[DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE] Cannot perform MERGE: \(matches[row]) source rows matched the same target row and attempted to modify it. Make the source rows unique on the merge condition (e.g. pre-aggregate or deduplicate them).")
        }
        let pairs = Relation(columns: target.relation.take(pairsLeft).frame.columns + source.take(pairsRight).frame.columns,
                             qualifiers: target.relation.qualifiers + source.qualifiers, names: target.relation.names + source.names)
        var updatedRows: [Int] = [], updated: [Frame] = [], deleted = Set<Int>(), inserted: [Frame] = []
        var updatedCount = 0, insertedCount = 0

        // WHEN MATCHED: the first clause whose condition holds acts on a pair; none, and the row stays.
        try firstHolding(matchedClauses, on: pairs) { clause, chosen in
            let rows = pairs.take(chosen)
            let targetRows = chosen.map { pairsLeft[$0] }
            switch clause.action {
            case .delete: deleted.formUnion(targetRows)
            case .update(let assignments):
                updated.append(try assign(assignments, on: rows, base: target.relation.frame.take(targetRows), target: target))
                updatedRows += targetRows
                updatedCount += chosen.count
            case .updateAll:
                updated.append(try byName(source.take(chosen.map { pairsRight[$0] }), target: target, clause: "UPDATE SET *"))
                updatedRows += targetRows
                updatedCount += chosen.count
            default: break
            }
        }

        // WHEN NOT MATCHED BY SOURCE: target rows no source row matched.
        let unmatchedTarget = matches.indices.filter { matches[$0] == 0 }
        if !unmatchedTarget.isEmpty {
            let rows = target.relation.take(unmatchedTarget)
            try firstHolding(m.clauses.filter { $0.kind == .notMatchedBySource }, on: rows) { clause, chosen in
                switch clause.action {
                case .delete: deleted.formUnion(chosen.map { unmatchedTarget[$0] })
                case .update(let assignments):
                    let subset = rows.take(chosen)
                    updated.append(try assign(assignments, on: subset, base: subset.frame, target: target))
                    updatedRows += chosen.map { unmatchedTarget[$0] }
                    updatedCount += chosen.count
                default: break
                }
            }
        }

        // WHEN NOT MATCHED [BY TARGET]: source rows that matched no target row.
        let unmatchedSource = sourceMatched.indices.filter { !sourceMatched[$0] }
        if !unmatchedSource.isEmpty {
            let rows = source.take(unmatchedSource)
            try firstHolding(m.clauses.filter { $0.kind == .notMatched }, on: rows) { clause, chosen in
                let subset = rows.take(chosen)
                switch clause.action {
                case .insertAll: inserted.append(try byName(subset, target: target, clause: "INSERT *"))
                case .insert(let columns, let values):
                    let names = columns ?? target.fields.map(\.name)
                    guard names.count == values.count else {
                        throw KilnError.invalid("INSERT VALUES gives \(values.count) values for \(names.count) columns")
                    }
                    let base = Frame(names: target.fields.map(\.name), columns: target.types.map { Column.nulls($0, count: subset.rowCount) })
                    inserted.append(try assign(Array(zip(names, values)).map { (column: $0.0, value: $0.1) }, on: subset, base: base, target: target))
                default: break
                }
                insertedCount += chosen.count
            }
        }

        let deletedRows = Array(deleted).sorted()
        func describe(_ kind: MergeStatement.Kind) -> JSONValue {
            .string(JSONText.string(.array(m.clauses.filter { $0.kind == kind }.map { clause -> JSONValue in
                var o: [String: JSONValue] = ["actionType": .string(Self.actionType(clause.action))]
                if let text = clause.conditionText { o["predicate"] = .string(text) }
                return .object(o)
            })))
        }
        if !updatedRows.isEmpty || !deletedRows.isEmpty || insertedCount > 0 {
            _ = try commitChanges(target, updatedRows: updatedRows, updated: updated, deletedRows: deletedRows, inserted: inserted,
                                  operation: "MERGE",
                                  parameters: ["predicate": .string(m.conditionText), "matchedPredicates": describe(.matched),
                                               "notMatchedPredicates": describe(.notMatched), "notMatchedBySourcePredicates": describe(.notMatchedBySource)],
                                  metrics: ["numSourceRows": .number(String(source.rowCount)), "numTargetRowsUpdated": .number(String(updatedCount)),
                                            "numTargetRowsDeleted": .number(String(deletedRows.count)),
                                            "numTargetRowsInserted": .number(String(insertedCount))])
        }
        return Frame(names: ["num_affected_rows", "num_updated_rows", "num_deleted_rows", "num_inserted_rows"],
                     columns: [updatedCount + deletedRows.count + insertedCount, updatedCount, deletedRows.count, insertedCount].map {
                         Column(type: .int64, values: .int([Int64($0)]))
                     })
    }

    /// Clauses in order over `rows`: each row goes to the first clause whose condition holds (null does not), which
    /// `act` gets with the rows it took; a row no clause takes is left alone.
    func firstHolding(_ clauses: [MergeStatement.Clause], on rows: Relation,
                      _ act: (MergeStatement.Clause, [Int]) throws -> Void) throws {
        var left = [Bool](repeating: true, count: rows.rowCount)
        for clause in clauses {
            let holds = try truth(clause.condition, on: rows)
            let chosen = left.indices.filter { left[$0] && holds[$0] }
            for i in chosen { left[i] = false }
            if !chosen.isEmpty { try act(clause, chosen) }
        }
    }

    static func actionType(_ action: MergeStatement.Action) -> String {
        switch action {
        case .update, .updateAll: "update"
        case .delete: "delete"
        case .insert, .insertAll: "insert"
        }
    }

    /// The (target row, source row) pairs for which the ON condition holds: equalities between a target-only and a
    /// source-only expression become a hash join, the rest is checked on the joined pairs.
    func matchPairs(_ condition: Expr, target: Relation, source: Relation) throws -> ([Int], [Int]) {
        func binds(_ e: Expr, _ r: Relation) -> Bool { (try? r.bind(e)) != nil }
        var targetKeys: [Expr] = [], sourceKeys: [Expr] = [], residual: [Expr] = []
        for conjunct in condition.conjuncts {
            if case .binary("=", let a, let b) = conjunct {
                let aTarget = binds(a, target) && !binds(a, source), aSource = binds(a, source) && !binds(a, target)
                let bTarget = binds(b, target) && !binds(b, source), bSource = binds(b, source) && !binds(b, target)
                if aTarget && bSource { targetKeys.append(a); sourceKeys.append(b); continue }
                if aSource && bTarget { targetKeys.append(b); sourceKeys.append(a); continue }
            }
            residual.append(conjunct)
        }
        var left: [Int], right: [Int]
        if targetKeys.isEmpty {
            let total = target.rowCount * source.rowCount
            guard total <= 50_000_000 else {
                throw KilnError.invalid("The MERGE condition has no equality between a target and a source column; \(total) row pairs are too many to compare")
            }
            left = (0..<target.rowCount).flatMap { [Int](repeating: $0, count: source.rowCount) }
            right = (0..<target.rowCount).flatMap { _ in Array(0..<source.rowCount) }
        } else {
            let lk = try targetKeys.map { try target.bind(try prepare($0)).evaluate(target.frame) }
            var rk = try sourceKeys.map { try source.bind(try prepare($0)).evaluate(source.frame) }
            // Keys compare in one type: the source's cast to the target's where they differ.
            for i in rk.indices where rk[i].type != lk[i].type {
                if let cast = try? rk[i].cast(to: lk[i].type) { rk[i] = cast }
            }
            (left, right) = try Frame.equiJoinPairs(leftKeys: lk, rightKeys: rk, leftRows: target.rowCount, rightRows: source.rowCount)
        }
        guard !residual.isEmpty, !left.isEmpty else { return (left, right) }
        let pairs = Relation(columns: target.take(left).frame.columns + source.take(right).frame.columns,
                             qualifiers: target.qualifiers + source.qualifiers, names: target.names + source.names)
        let holds = try truth(residual.dropFirst().reduce(residual[0]) { .binary("AND", $0, $1) }, on: pairs)
        let keep = holds.indices.filter { holds[$0] }
        return (keep.map { left[$0] }, keep.map { right[$0] })
    }
}
