"""Random queries over random tables with nulls, answered by Kiln and by DuckDB (issue P13): joins, filters,
group-bys with HAVING, windows, DISTINCT, subqueries, ORDER BY/LIMIT. Every seed makes two small tables and a few
queries; the answers must agree (as multisets, or in order where the query orders totally).

    KILN_QUERY_SEEDS=2000 python3 -m pytest tests/compat/test_sql_random_vs_duckdb.py -q   # more seeds
"""
import json
import os
import random
import subprocess

import duckdb
import pytest

from conftest import KILN
from test_sql_vs_duckdb import normalize, same, sql_value as literal

SEEDS = range(int(os.environ.get("KILN_QUERY_SEEDS", "520")))
CHUNKS = 4
QUERIES_PER_SEED = 4

INT_COLUMNS = {"a": ["id", "k", "n"], "b": ["k", "m"]}
DOUBLE_COLUMNS = {"a": ["x"], "b": ["y"]}
STRING_COLUMNS = {"a": ["g"], "b": ["h"]}
DATE_COLUMNS = {"a": ["d"], "b": []}
WORDS = ["ant", "bee", "cat", "dog", "eel", "fox", "Ant", "bat", ""]


def random_tables(rng):
    """Rows of a (id unique, k key, n int, x double, g string, d date) and b (k key, m int, y double, h string)."""
    def maybe(v, p=0.15):
        return None if rng.random() < p else v
    keys = list(range(rng.randint(2, 9)))
    a = []
    for i in range(rng.randint(0, rng.choice([40, 40, 300]))):  # some tables big enough for the engine's bulk paths (sorts over 64 rows)
        a.append((i + 1, maybe(rng.choice(keys)), maybe(rng.randint(-20, 20)), maybe(round(rng.uniform(-50, 50), 2)),
                  maybe(rng.choice(WORDS)), maybe(f"2024-0{rng.randint(1, 9)}-{rng.randint(10, 28)}")))
    b = [(maybe(rng.choice(keys + [100])), maybe(rng.randint(0, 5)), maybe(round(rng.uniform(0, 10), 1)), maybe(rng.choice(WORDS)))
         for _ in range(rng.randint(0, 15))]
    return a, b


SCHEMA = {"a": "id INT, k INT, n INT, x DOUBLE, g STRING, d DATE", "b": "k INT, m INT, y DOUBLE, h STRING"}


def create_statements(name, table, rows, dialect):
    schema = SCHEMA[table] if dialect == "kiln" else SCHEMA[table].replace("STRING", "VARCHAR")
    out = [f"CREATE TABLE {name} ({schema})"]
    if rows:
        def value(v, column):
            if v is not None and column == "d":
                return f"DATE '{v}'"
            return literal(v)
        columns = [c.split()[0] for c in SCHEMA[table].split(", ")]
        out.append(f"INSERT INTO {name} VALUES " + ", ".join(
            "(" + ", ".join(value(v, c) for v, c in zip(r, columns)) + ")" for r in rows))
    return out


class Gen:
    """Random expressions over the columns of the tables in scope (alias → table)."""

    def __init__(self, rng, scope):
        self.rng, self.scope = rng, scope

    def column(self, kind):
        choices = []
        for alias, table in self.scope.items():
            pool = {"int": INT_COLUMNS, "double": DOUBLE_COLUMNS, "string": STRING_COLUMNS, "date": DATE_COLUMNS}[kind][table]
            choices += [f"{alias}.{c}" for c in pool]
        return self.rng.choice(choices) if choices else None

    def number(self, depth=0):
        r = self.rng.random()
        if depth > 1 or r < 0.45:
            return self.column(self.rng.choice(["int", "int", "double"]))
        if r < 0.6:
            return str(self.rng.randint(-5, 5))
        if r < 0.8:
            return f"({self.number(depth + 1)} {self.rng.choice(['+', '-', '*'])} {self.number(depth + 1)})"
        if r < 0.9:
            return f"abs({self.number(depth + 1)})"
        return f"coalesce({self.number(depth + 1)}, {self.rng.randint(-3, 3)})"

    def string(self):
        r = self.rng.random()
        c = self.column("string")
        if r < 0.7:
            return c
        if r < 0.85:
            return f"upper({c})"
        return f"coalesce({c}, 'none')"

    def condition(self, depth=0):
        r = self.rng.random()
        if depth < 2 and r < 0.25:
            return f"({self.condition(depth + 1)} {self.rng.choice(['AND', 'OR'])} {self.condition(depth + 1)})"
        if depth < 2 and r < 0.3:
            return f"NOT ({self.condition(depth + 1)})"
        r = self.rng.random()
        if r < 0.35:
            return f"{self.number()} {self.rng.choice(['<', '<=', '>', '>=', '=', '<>'])} {self.number()}"
        if r < 0.45:
            return f"{self.column(self.rng.choice(['int', 'double', 'string']))} IS {self.rng.choice(['', 'NOT '])}NULL"
        if r < 0.55:
            values = ", ".join(str(self.rng.randint(-3, 8)) for _ in range(self.rng.randint(1, 4)))
            return f"{self.column('int')} {self.rng.choice(['', 'NOT '])}IN ({values})"
        if r < 0.65:
            lo = self.rng.randint(-20, 10)
            return f"{self.number()} BETWEEN {lo} AND {lo + self.rng.randint(0, 20)}"
        if r < 0.75:
            return f"{self.string()} LIKE '{self.rng.choice(['a', 'b', 'c', 'A', 'e', ''])}%'"
        if r < 0.85:
            words = ", ".join(literal(w) for w in self.rng.sample(WORDS, self.rng.randint(1, 3)))
            return f"{self.column('string')} IN ({words})"
        d = self.column("date")
        if d:
            return f"{d} {self.rng.choice(['<', '>=', '='])} DATE '2024-0{self.rng.randint(1, 9)}-15'"
        return f"{self.column('int')} > {self.rng.randint(-5, 5)}"

    def aggregate(self):
        f = self.rng.choice(["count(*)", "count", "sum", "min", "max", "avg", "count_distinct", "min_string", "max_string"])
        if f == "count(*)":
            return "count(*)"
        if f == "count_distinct":
            return f"count(DISTINCT {self.column(self.rng.choice(['int', 'string']))})"
        if f in ("min_string", "max_string"):
            return f"{f[:3]}({self.column('string')})"
        if f == "count":
            return f"count({self.column(self.rng.choice(['int', 'double', 'string']))})"
        return f"{f}({self.number(1)})"


def order_all(columns, rng):
    """An ORDER BY over every output column, nulls placed explicitly (Spark and DuckDB differ by default)."""
    return ", ".join(f"{c} {rng.choice(['ASC', 'DESC'])} NULLS {rng.choice(['FIRST', 'LAST'])}" for c in columns)


def random_query(rng, ta, tb):
    """(sql, ordered): `ordered` when the query's ORDER BY fixes the order of every row."""
    shape = rng.choice(["filter", "filter", "aggregate", "aggregate", "join", "join_aggregate", "window", "distinct",
                        "subquery", "global_aggregate", "set_operation", "expressions", "grouped_expression", "three_way_join",
                        "top_n", "asof", "comma_join_or"])
    if shape == "comma_join_or":
        # An OR across both tables: each table's part of every branch is pushed into its scan as an implied filter.
        g, h = Gen(rng, {"t": "a"}), Gen(rng, {"u": "b"})
        branches = [f"({g.condition(1)} AND {h.condition(1)})" if rng.random() < 0.8 else f"({g.condition(1)})"
                    for _ in range(rng.randint(2, 3))]
        join = "t.k = u.k AND " if rng.random() < 0.8 else ""
        return f"SELECT t.id AS c0, u.m AS c1, u.h AS c2 FROM {ta} t, {tb} u WHERE {join}({' OR '.join(branches)})", False
    if shape == "asof":
        # Each left row with the nearest right row in one direction; only the key and the as-of value are selected,
        # so rows tied on both (which one DuckDB picks is unspecified) give the same answer.
        op = rng.choice([">=", ">", "<=", "<"])
        keys = rng.choice(["t.k = u.k AND ", "t.k = u.k AND ", ""])
        outputs = "t.id AS c0, u.k AS c1, u.m AS c2" if keys else "t.id AS c0, u.m AS c2"
        return f"SELECT {outputs} FROM {ta} t ASOF {rng.choice(['', 'LEFT '])}JOIN {tb} u ON {keys}t.n {op} u.m", False
    if shape == "set_operation":
        g, h = Gen(rng, {"t": "a"}), Gen(rng, {"u": "b"})
        op = rng.choice(["UNION", "UNION ALL", "INTERSECT", "EXCEPT"])
        return (f"WITH c AS (SELECT t.k AS k, t.g AS s FROM {ta} t WHERE {g.condition()}) "
                f"SELECT k, s FROM c {op} SELECT u.k, u.h FROM {tb} u WHERE {h.condition()}"), False
    if shape == "expressions":
        g = Gen(rng, {"t": "a"})
        outputs = ["t.id",
                   f"CASE WHEN {g.condition()} THEN {g.number()} WHEN {g.condition()} THEN {g.number()} ELSE {g.number()} END",
                   rng.choice([f"length({g.column('string')})", f"substring({g.column('string')}, {rng.randint(1, 3)}, {rng.randint(0, 3)})",
                               f"{g.column('string')} || '-' || {g.column('string')}", f"lower({g.column('string')})"]),
                   rng.choice([f"{g.column('int')} % {rng.choice([2, 3, -4])}", f"CAST(floor({g.column('double')}) AS BIGINT)",
                               f"CAST({g.column('int')} AS STRING)", f"nullif({g.column('int')}, {rng.randint(-2, 2)})",
                               f"year({g.column('date')})", f"month({g.column('date')})",
                               f"greatest({g.column('int')}, {rng.randint(-5, 5)})", f"least({g.number()}, {rng.randint(-5, 5)})",
                               f"{g.number()} / nullif({g.column('int')}, 0)"]),
                   f"(SELECT count(*) FROM {tb} u WHERE u.m > {rng.randint(0, 4)})"]
        select = ", ".join(f"{e} AS c{i}" for i, e in enumerate(outputs))
        return f"SELECT {select} FROM {ta} t WHERE {g.condition()}", False
    if shape == "grouped_expression":
        g = Gen(rng, {"t": "a"})
        key = rng.choice(["t.k % 3", "t.n > 0", "coalesce(t.g, 'none')", "year(t.d)", "month(t.d)", "t.k + t.n", "upper(t.g)"])
        agg = g.aggregate()
        having = f" HAVING {rng.choice(['sum(t.n)', 'count(*)', 'max(t.x)', 'min(t.id)'])} {rng.choice(['>', '<', '>='])} {rng.randint(-3, 12)}" if rng.random() < 0.5 else ""
        return f"SELECT {key} AS k0, {agg} AS a0, count(*) AS a1 FROM {ta} t GROUP BY {key}{having}", False
    if shape == "three_way_join":
        g = Gen(rng, {"t": "a", "u": "b", "v": "b"})
        kinds = [rng.choice(["JOIN", "LEFT JOIN"]) for _ in range(2)]
        sql = (f"SELECT t.id AS c0, u.m AS c1, v.h AS c2, {g.number()} AS c3 FROM {ta} t {kinds[0]} {tb} u ON t.k = u.k "
               f"{kinds[1]} {tb} v ON u.m = v.m")
        if rng.random() < 0.5:
            sql += f" WHERE {g.condition()}"
        return sql, False
    if shape == "top_n":
        g = Gen(rng, {"t": "a"})
        key = rng.choice([g.number(), g.string(), "t.d", "t.x"])
        direction = rng.choice(["ASC", "DESC"])
        nulls = rng.choice(["FIRST", "LAST"])
        return (f"SELECT t.id AS c0, {key} AS c1 FROM {ta} t ORDER BY c1 {direction} NULLS {nulls}, c0 "
                f"LIMIT {rng.randint(0, 10)}{' OFFSET ' + str(rng.randint(1, 4)) if rng.random() < 0.3 else ''}"), True
    if shape == "filter":
        g = Gen(rng, {"t": "a"})
        outputs = ["t.id"] + [rng.choice([g.number(), g.string(), g.column("date"), g.condition()]) for _ in range(rng.randint(1, 3))]
        select = ", ".join(f"{e} AS c{i}" for i, e in enumerate(outputs))
        sql = f"SELECT {select} FROM {ta} t WHERE {g.condition()}"
        if rng.random() < 0.5:
            sql += f" ORDER BY c0 {rng.choice(['ASC', 'DESC'])}"
            if rng.random() < 0.5:
                sql += f" LIMIT {rng.randint(0, 12)}"
                if rng.random() < 0.3:
                    sql += f" OFFSET {rng.randint(0, 5)}"
            return sql, True
        return sql, False
    if shape in ("aggregate", "join_aggregate"):
        scope = {"t": "a"} if shape == "aggregate" else {"t": "a", "u": "b"}
        g = Gen(rng, scope)
        keys = rng.sample([g.column("int"), g.column("string"), g.column(rng.choice(["int", "string"]))], rng.randint(1, 2))
        keys = list(dict.fromkeys(keys))
        aggs = [g.aggregate() for _ in range(rng.randint(1, 3))]
        select = ", ".join([f"{k} AS k{i}" for i, k in enumerate(keys)] + [f"{a} AS a{i}" for i, a in enumerate(aggs)])
        source = f"{ta} t" if shape == "aggregate" else f"{ta} t {rng.choice(['JOIN', 'LEFT JOIN'])} {tb} u ON t.k = u.k"
        sql = f"SELECT {select} FROM {source}"
        if rng.random() < 0.7:
            sql += f" WHERE {g.condition()}"
        sql += " GROUP BY " + ", ".join(keys)
        if rng.random() < 0.3:
            sql += f" HAVING count(*) {rng.choice(['>', '>=', '='])} {rng.randint(1, 3)}"
        if rng.random() < 0.5:
            sql += " ORDER BY " + order_all([f"k{i}" for i in range(len(keys))], rng)
            if rng.random() < 0.4:
                sql += f" LIMIT {rng.randint(1, 6)}"
                return sql, True
            return sql, True
        return sql, False
    if shape == "join":
        g = Gen(rng, {"t": "a", "u": "b"})
        kind = rng.choice(["JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL OUTER JOIN", "JOIN"])
        on = "t.k = u.k" if rng.random() < 0.8 else f"t.k = u.k AND {g.condition()}"
        outputs = ["t.id", "u.k", "u.m", rng.choice([g.number(), g.string()])]
        select = ", ".join(f"{e} AS c{i}" for i, e in enumerate(outputs))
        sql = f"SELECT {select} FROM {ta} t {kind} {tb} u ON {on}"
        if rng.random() < 0.5 and kind in ("JOIN", "LEFT JOIN"):
            sql += f" WHERE {g.condition()}"
        return sql, False
    if shape == "window":
        g = Gen(rng, {"t": "a"})
        part = rng.choice(["t.k", "t.g", "t.k, t.g", None])
        over = (f"PARTITION BY {part} " if part else "") + "ORDER BY t.id"
        funcs = [rng.choice([f"row_number() OVER ({over})", f"rank() OVER ({'PARTITION BY ' + part + ' ' if part else ''}ORDER BY t.n NULLS FIRST)",
                             f"dense_rank() OVER ({'PARTITION BY ' + part + ' ' if part else ''}ORDER BY t.g DESC NULLS LAST)",
                             f"sum(t.n) OVER ({over})", f"count(t.x) OVER ({over})", f"max(t.x) OVER ({'PARTITION BY ' + part if part else ''})",
                             f"lag(t.n) OVER ({over})", f"lead(t.g, 2) OVER ({over})", f"avg(t.x) OVER ({over} ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)",
                             f"min(t.n) OVER ({over} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"])
                 for _ in range(rng.randint(1, 3))]
        select = ", ".join(["t.id AS c0"] + [f"{f} AS w{i}" for i, f in enumerate(funcs)])
        sql = f"SELECT {select} FROM {ta} t"
        if rng.random() < 0.4:
            sql += f" WHERE {g.condition()}"
        return sql + " ORDER BY c0", True
    if shape == "distinct":
        g = Gen(rng, {"t": "a"})
        cols = list(dict.fromkeys(rng.choice([g.column("int"), g.string(), g.column("string")]) for _ in range(rng.randint(1, 2))))
        select = ", ".join(f"{c} AS c{i}" for i, c in enumerate(cols))
        sql = f"SELECT DISTINCT {select} FROM {ta} t"
        if rng.random() < 0.5:
            sql += f" WHERE {g.condition()}"
        if rng.random() < 0.5:
            return sql + " ORDER BY " + order_all([f"c{i}" for i in range(len(cols))], rng), True
        return sql, False
    if shape == "subquery":
        g = Gen(rng, {"t": "a"})
        inner = Gen(rng, {"u": "b"})
        r = rng.random()
        if r < 0.35:
            cond = f"t.k {rng.choice(['', 'NOT '])}IN (SELECT u.k FROM {tb} u WHERE {inner.condition()})"
            if "NOT IN" in cond:  # NOT IN over a set with nulls is never true: both engines must agree on that too
                pass
        elif r < 0.7:
            cond = f"{rng.choice(['', 'NOT '])}EXISTS (SELECT 1 FROM {tb} u WHERE u.k = t.k AND {inner.condition()})"
        else:
            cond = f"t.n > (SELECT {rng.choice(['avg', 'min', 'max'])}(u.m) FROM {tb} u)"
        return f"SELECT t.id AS c0, {g.number()} AS c1 FROM {ta} t WHERE {cond}", False
    g = Gen(rng, {"t": "a"})
    aggs = [g.aggregate() for _ in range(rng.randint(1, 4))]
    sql = "SELECT " + ", ".join(f"{a} AS a{i}" for i, a in enumerate(aggs)) + f" FROM {ta} t"
    if rng.random() < 0.6:
        sql += f" WHERE {g.condition()}"
    return sql, False


def canonical(rows):
    def key(v):
        return (0, "") if v is None else (1, f"{v:.6f}") if isinstance(v, float) and not isinstance(v, bool) else (2, str(v))
    return sorted(rows, key=lambda r: [key(v) for v in r])


def agree(ours, theirs, ordered):
    if len(ours) != len(theirs):
        return False
    if not ordered:
        ours, theirs = canonical(ours), canonical(theirs)
    return all(len(a) == len(b) and all(same(x, y) for x, y in zip(a, b)) for a, b in zip(ours, theirs))


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_random_queries_match_duckdb(tmp_path, chunk):
    seeds = [s for s in SEEDS if s % CHUNKS == chunk]
    home = tmp_path / "home"
    compared = 0
    failures = []
    for seed in seeds:
        rng = random.Random(seed)
        a_rows, b_rows = random_tables(rng)
        ta, tb = f"a{seed}", f"b{seed}"
        con = duckdb.connect()
        for statement in create_statements(ta, "a", a_rows, "duckdb") + create_statements(tb, "b", b_rows, "duckdb"):
            con.execute(statement)
        queries = []
        for _ in range(QUERIES_PER_SEED):
            sql, ordered = random_query(rng, ta, tb)
            try:
                expected = [[normalize(v) for v in row] for row in con.execute(sql).fetchall()]
            except duckdb.Error:
                continue  # a query DuckDB refuses (e.g. a type it will not compare) is not a test of Kiln
            queries.append((sql, ordered, expected))
        statements = create_statements(ta, "a", a_rows, "kiln") + create_statements(tb, "b", b_rows, "kiln") + [q[0] for q in queries]
        # Odd seeds stream the largest table of every eligible join through a hash index of the others (the tables
        # here are too small for the planner to choose it): both plans are checked against DuckDB.
        env = dict(os.environ, KILN_SQL_STREAMED_JOINS="always" if seed % 2 else "auto")
        out = subprocess.run([KILN, "sql", "--home", str(home), "--format", "json"], input=";\n".join(statements) + ";\n",
                             capture_output=True, text=True, timeout=120, env=env)
        lines = out.stdout.strip().splitlines()
        if out.returncode != 0 or len(lines) != len(statements):
            failures.append((seed, "kiln failed", out.stderr.strip()[-400:], [q[0] for q in queries]))
            continue
        for (sql, ordered, expected), line in zip(queries, lines[len(statements) - len(queries):]):
            ours = [list(r.values()) for r in json.loads(line)]
            compared += 1
            if not agree(ours, expected, ordered):
                failures.append((seed, sql, ours[:8], expected[:8]))
    print(f"chunk {chunk}: seeds {len(seeds)}, queries compared {compared}, failures {len(failures)}")
    assert not failures, "\n\n".join(repr(f) for f in failures[:6]) + f"\n\n({len(failures)} failing in all)"
    assert compared >= len(seeds) * 2, compared
