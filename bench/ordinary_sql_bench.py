"""Kiln SQL against DuckDB on ordinary queries nobody tuned for (issue 21): a 5M-row table, a top-10 by a double
column, a selective IN + AND filter before an aggregate, a join to a 100-row dimension then GROUP BY, a plain
GROUP BY, and a window over 500k rows. Kiln runs each as `kiln sql --home` (the whole process a user runs; "in
process" is what `--timing` reports) over a Delta table written by `kiln table write`; DuckDB reads the same rows from
Parquet in this process. Answers are compared; ratios > 1 mean Kiln is faster.

    python3 bench/ordinary_sql_bench.py --kiln .build/release/kiln [--rows 5000000] [--repeats 3] [--suite micro]

`--suite micro` runs the issue-21 micro-suite over a 10M-row table instead (top-k by number and string, selective and
non-selective filters, string IN, LIKE, IS NULL, GROUP BY 10 / 1M keys / two columns, COUNT(DISTINCT), joins to a
100-row and a 1M-row table, two windows, string functions in a filter).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

QUERIES = {
    "top10": "SELECT id, v FROM {facts} ORDER BY v DESC LIMIT 10",
    "filter_in_agg": "SELECT k, count(*) AS n, sum(v) AS s FROM {facts} WHERE k IN (1, 3, 5) AND v > 50 GROUP BY k ORDER BY k",
    "join_dim": "SELECT d.name, count(*) AS n, sum(f.v) AS s FROM {facts} f JOIN {dim} d ON f.k = d.k GROUP BY d.name ORDER BY d.name",
    "groupby": "SELECT g, count(*) AS n, avg(v) AS a FROM {facts} GROUP BY g ORDER BY g LIMIT 20",
    "window": "SELECT k, max(r) AS top FROM (SELECT k, row_number() OVER (PARTITION BY k ORDER BY v) AS r FROM {facts} WHERE id < 500000) "
              "GROUP BY k ORDER BY k LIMIT 20",
}

# The micro-suite (`--suite micro`, 10M rows by default): every shape, tuned for or not.
MICRO = {
    "topk_number": "SELECT id, v FROM {facts} ORDER BY v DESC LIMIT 10",
    "topk_string": "SELECT id, s FROM {facts} ORDER BY s DESC, id LIMIT 10",
    "filter_selective": "SELECT count(*) AS n, sum(v) AS s FROM {facts} WHERE v BETWEEN 10 AND 10.1",
    "filter_nonselective": "SELECT count(*) AS n, sum(v) AS s FROM {facts} WHERE v > 5",
    "filter_string_in": "SELECT count(*) AS n, sum(v) AS s FROM {facts} WHERE s IN ('s00001', 's00002', 's04999')",
    "filter_like": "SELECT count(*) AS n FROM {facts} WHERE s LIKE 's001%'",
    "filter_is_null": "SELECT count(*) AS n, sum(v) AS s FROM {facts} WHERE n IS NULL",
    "groupby_10_keys": "SELECT c, count(*) AS n, sum(v) AS s FROM {facts} GROUP BY c ORDER BY c",
    "groupby_1m_keys": "SELECT h, count(*) AS n, sum(v) AS s FROM {facts} GROUP BY h ORDER BY n DESC, h LIMIT 10",
    "groupby_two_columns": "SELECT k, g, count(*) AS n FROM {facts} GROUP BY k, g ORDER BY n DESC, k, g LIMIT 10",
    "count_distinct": "SELECT count(DISTINCT h) AS d FROM {facts}",
    "join_small": QUERIES["join_dim"],
    "join_large": "SELECT count(*) AS n, sum(f.v * b.w) AS s FROM {facts} f JOIN {big} b ON f.h = b.h",
    "window_row_number": "SELECT k, max(r) AS top FROM (SELECT k, row_number() OVER (PARTITION BY k ORDER BY v, id) AS r FROM {facts}) "
                         "GROUP BY k ORDER BY k LIMIT 10",
    "window_running_sum": "SELECT k, max(rs) AS m FROM (SELECT k, sum(v) OVER (PARTITION BY k ORDER BY id) AS rs FROM {facts} WHERE id < 2000000) "
                          "GROUP BY k ORDER BY k LIMIT 10",
    "string_function_filter": "SELECT count(*) AS n FROM {facts} WHERE substring(s, 2, 2) = '00' AND lower(s) LIKE '%7'",
}


def micro_data(rows, seed=12):
    import pyarrow.compute as pc
    rng = np.random.default_rng(seed)
    strings = pc.binary_join_element_wise("s", pc.utf8_lpad(pa.array(rng.integers(0, 5000, rows)).cast(pa.string()), 5, "0"), "")
    n = pa.array(rng.integers(0, 1000, rows), mask=rng.random(rows) < 0.1)
    facts = pa.table({"id": np.arange(rows, dtype=np.int64), "k": rng.integers(0, 100, rows, dtype=np.int64),
                      "g": rng.integers(0, 1000, rows, dtype=np.int64), "c": rng.integers(0, 10, rows, dtype=np.int64),
                      "h": rng.integers(0, 1_000_000, rows, dtype=np.int64), "v": rng.random(rows) * 100, "s": strings, "n": n})
    dim = pa.table({"k": np.arange(100, dtype=np.int64), "name": [f"name{i % 17:02d}" for i in range(100)]})
    big = pa.table({"h": rng.permutation(1_000_000).astype(np.int64), "w": rng.random(1_000_000)})
    return {"facts": facts, "dim": dim, "big": big}


def data(rows, seed=11):
    rng = np.random.default_rng(seed)
    facts = pa.table({"id": np.arange(rows, dtype=np.int64), "k": rng.integers(0, 100, rows, dtype=np.int64),
                      "g": rng.integers(0, 1000, rows, dtype=np.int64), "v": rng.random(rows) * 100})
    dim = pa.table({"k": np.arange(100, dtype=np.int64), "name": [f"name{i % 17:02d}" for i in range(100)]})
    return facts, dim


def agree(a, b):
    """Same rows, numbers equal to 1e-9 relative (sums of doubles differ in the last bits with the order of adding)."""
    def number(x):
        try:
            return float(x)
        except (TypeError, ValueError):
            return None
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        if len(ra) != len(rb):
            return False
        for x, y in zip(ra, rb):
            nx, ny = number(x), number(y)
            if nx is not None and ny is not None:
                if abs(nx - ny) > 1e-9 * max(1.0, abs(nx), abs(ny)):
                    return False
            elif str(x) != str(y):
                return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiln", required=True)
    parser.add_argument("--rows", type=int, help="rows of the fact table (5M; 10M for --suite micro)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--suite", choices=["ordinary", "micro"], default="ordinary")
    parser.add_argument("--only", help="comma-separated query names to run (default: all of the suite)")
    args = parser.parse_args()
    micro = args.suite == "micro"
    args.rows = args.rows or (10_000_000 if micro else 5_000_000)
    import duckdb
    work = tempfile.mkdtemp(prefix="kiln-ordinary-sql-")
    home = os.path.join(work, "home")
    try:
        tables = micro_data(args.rows) if micro else dict(zip(["facts", "dim"], data(args.rows)))
        files = {}
        for name, table in tables.items():
            files[name] = os.path.join(work, f"{name}.parquet")
            pq.write_table(table, files[name], row_group_size=1 << 20)
            subprocess.run([args.kiln, "table", "write", f"main.default.{name}", "--from", files[name], "--home", home],
                           check=True, capture_output=True)
        con = duckdb.connect()
        results = {}
        chosen = (MICRO if micro else QUERIES).items()
        if args.only:
            wanted = set(args.only.split(","))
            chosen = [(n, t) for n, t in chosen if n in wanted]
        for name, template in chosen:
            duck_sql = template.format(**{t: f"read_parquet('{files[t]}')" for t in tables})
            kiln_sql = template.format(**{t: f"main.default.{t}" for t in tables})
            duck_times, kiln_times, inside = [], [], []
            for _ in range(args.repeats):
                t = time.perf_counter()
                duck_rows = con.execute(duck_sql).fetchall()
                duck_times.append(time.perf_counter() - t)
                t = time.perf_counter()
                out = subprocess.run([args.kiln, "sql", "--home", home, "--format", "json", "--timing", kiln_sql], capture_output=True, text=True)
                kiln_times.append(time.perf_counter() - t)
                if out.returncode != 0:
                    raise SystemExit(f"{name}: kiln failed: {out.stderr}")
                m = re.search(r"([\d.]+)\s*s", out.stderr)
                if m:
                    inside.append(float(m.group(1)))
            kiln_rows = [list(json.loads(line).values()) for line in out.stdout.strip().splitlines()] if out.stdout.strip().startswith("{") \
                else json.loads(out.stdout)
            if isinstance(kiln_rows, list) and kiln_rows and isinstance(kiln_rows[0], dict):
                kiln_rows = [list(r.values()) for r in kiln_rows]
            same = agree(kiln_rows, [list(r) for r in duck_rows])
            k, d = min(kiln_times), min(duck_times)
            results[name] = {"kiln_s": round(k, 4), "duckdb_s": round(d, 4), "kiln_vs_duckdb": round(d / k, 3),
                             "kiln_in_process_s": round(min(inside), 4) if inside else None, "same_answer": same}
            print(f"{name:14s} kiln {k:7.3f} s (in process {results[name]['kiln_in_process_s']}) duckdb {d:7.3f} s  "
                  f"→ {d / k:.3f}× duckdb  answers {'agree' if same else 'DIFFER'}")
        ratios = [r["kiln_vs_duckdb"] for r in results.values()]
        print(f"geometric mean of the ratios: {float(np.exp(np.mean(np.log(ratios)))):.3f}x; "
              f"within 2x of DuckDB: {sum(r >= 0.5 for r in ratios)} of {len(ratios)}; answers agree: {sum(r['same_answer'] for r in results.values())}")
        print(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
