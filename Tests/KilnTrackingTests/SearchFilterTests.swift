import KilnCore
import KilnTracking
import Testing

@Suite("The search filter DSL")
struct SearchFilterTests {
    @Test("parses every entity prefix, quoting style and operator")
    func parsesClauses() throws {
        let filter = try SearchFilter.parse(
            "metrics.acc >= 0.9 and params.`learning rate` = '0.1' AND tags.\"my tag\" LIKE 'x%' and attributes.status IN ('FINISHED', 'FAILED') "
            + "and run_name != 'a''b' and datasets.name ILIKE 'Train%' and param.model IS NOT NULL and tag.env IS NULL and metric.loss < -1e-3 "
            + "and attr.run_id NOT IN ('x')")
        #expect(filter.clauses.map(\.entity) == [.metric, .param, .tag, .attribute, .attribute, .dataset, .param, .tag, .metric, .attribute])
        #expect(filter.clauses.map(\.key) == ["acc", "learning rate", "my tag", "status", "run_name", "name", "model", "env", "loss", "run_id"])
        #expect(filter.clauses.map(\.op) == [.greaterOrEqual, .equal, .like, .in, .notEqual, .ilike, .isNotNull, .isNull, .less, .notIn])
        #expect(filter.clauses[0].value == .number(0.9, text: "0.9"))
        #expect(filter.clauses[3].value == .list(["FINISHED", "FAILED"]))
        #expect(filter.clauses[4].value == .string("a'b"))
        #expect(filter.clauses[8].value == .number(-0.001, text: "-1e-3"))
    }

    @Test("an empty or blank filter has no clauses", arguments: [nil, "", "   "] as [String?])
    func emptyFilter(text: String?) throws {
        #expect(try SearchFilter.parse(text).clauses.isEmpty)
    }

    @Test("dotted keys keep their dots after the prefix")
    func dottedKeys() throws {
        let clause = try #require(try SearchFilter.parse("tags.mlflow.parentRunId = 'abc'").clauses.first)
        #expect(clause.entity == .tag)
        #expect(clause.key == "mlflow.parentRunId")
    }

    @Test("invalid filters fail with INVALID_PARAMETER_VALUE naming a position", arguments: [
        "metrics.acc >", "metrics.acc > 1 or metrics.b < 2", "metrics.acc 1", "foo.bar = 1", "params.x = unquoted",
        "params.x = 'open", "metrics.acc > 1 and", "params.x IN 'a'", "params.x IN ('a'", "params.x = ('a')",
        "metrics.acc ! 1", "and metrics.acc > 1", "params.x IS 'a'", "tags.x NOT LIKE 'a'",
    ])
    func rejectsInvalid(text: String) {
        let error = #expect(throws: KilnError.self) { try SearchFilter.parse(text) }
        #expect(error?.code == .invalidParameterValue)
        #expect(error?.message.contains("position") == true)
    }

    @Test("order_by entries parse with ASC/DESC")
    func orderBy() throws {
        #expect(try OrderClause.parse("metrics.acc DESC") == OrderClause(entity: .metric, key: "acc", ascending: false))
        #expect(try OrderClause.parse("params.`a b`") == OrderClause(entity: .param, key: "a b", ascending: true))
        #expect(try OrderClause.parse("start_time asc") == OrderClause(entity: .attribute, key: "start_time", ascending: true))
        let error = #expect(throws: KilnError.self) { try OrderClause.parse("metrics.acc sideways") }
        #expect(error?.code == .invalidParameterValue)
    }
}
