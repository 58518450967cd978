"""Kiln SQL against DuckDB and pandas, same data, same run.

TPC-H-shaped customer/orders/lineitem at scale factor 1 (numpy-generated: 150,000 / 1,500,000 / ~6,000,000 rows), then
Q1, Q3 and Q6, a 10,000,000-row GROUP BY (100,000 groups) and a 1,000,000 × 1,000,000 hash join. Kiln reads Delta
tables written by `kiln table write` and runs each query as `kiln sql` (process start and JSON output included;
"in process" is the statement time `kiln sql --timing` reports); DuckDB and pandas read the same data from Parquet
files in this process. Ratios > 1 mean Kiln is faster.

    make release && python3 bench/sql_bench.py --kiln .build/release/kiln [--scale 1]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def tpch(scale, seed=7):
    rng = np.random.default_rng(seed)
    n_cust, n_orders = int(150_000 * scale), int(1_500_000 * scale)
    segments = np.array(["AUTOMOBILE", "BUILDING", "FURNITURE", "HOUSEHOLD", "MACHINERY"])
    customer = pa.table({"c_custkey": np.arange(1, n_cust + 1, dtype=np.int64),
                         "c_mktsegment": segments[rng.integers(0, 5, n_cust)],
                         "c_nationkey": rng.integers(0, 25, n_cust, dtype=np.int64)})
    base = np.datetime64("1992-01-01")
    orderdate = base + rng.integers(0, 2406, n_orders).astype("timedelta64[D]")
    orders = pa.table({"o_orderkey": np.arange(1, n_orders + 1, dtype=np.int64) * 4,
                       "o_custkey": rng.integers(1, n_cust + 1, n_orders, dtype=np.int64),
                       "o_orderdate": pa.array(orderdate, pa.date32()),
                       "o_shippriority": np.zeros(n_orders, dtype=np.int32)})
    per = rng.integers(1, 8, n_orders)
    n_lines = int(per.sum())
    okey = np.repeat(orders.column("o_orderkey").to_numpy(), per)
    odate = np.repeat(orderdate, per)
    qty = rng.integers(1, 51, n_lines)
    price = np.round(qty * rng.uniform(900, 2100, n_lines), 2)
    ship = odate + rng.integers(1, 122, n_lines).astype("timedelta64[D]")
    cutoff = np.datetime64("1995-06-17")
    returnflag = np.where(ship + 15 <= cutoff, np.array(["R", "A"])[rng.integers(0, 2, n_lines)], "N")
    d = pa.decimal128(15, 2)

    def dec(values):
        return pa.compute.cast(pa.array(np.round(values, 2)), d)

    lineitem = pa.table({"l_orderkey": okey, "l_quantity": dec(qty.astype(np.float64)), "l_extendedprice": dec(price),
                         "l_discount": dec(rng.integers(0, 11, n_lines) / 100), "l_tax": dec(rng.integers(0, 9, n_lines) / 100),
                         "l_returnflag": returnflag, "l_linestatus": np.where(ship > cutoff, "O", "F"),
                         "l_shipdate": pa.array(ship, pa.date32())})
    return {"customer": customer, "orders": orders, "lineitem": lineitem}


QUERIES = {
    "q1": """SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS sum_base_price,
             sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price, sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
             avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price, avg(l_discount) AS avg_disc, count(*) AS count_order
             FROM lineitem WHERE l_shipdate <= DATE '1998-09-02' GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus""",
    "q3": """SELECT l_orderkey, sum(l_extendedprice * (1 - l_discount)) AS revenue, o_orderdate, o_shippriority
             FROM customer, orders, lineitem WHERE c_mktsegment = 'BUILDING' AND c_custkey = o_custkey AND l_orderkey = o_orderkey
             AND o_orderdate < DATE '1995-03-15' AND l_shipdate > DATE '1995-03-15'
             GROUP BY l_orderkey, o_orderdate, o_shippriority ORDER BY revenue DESC, o_orderdate, l_orderkey LIMIT 10""",
    "q6": """SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem WHERE l_shipdate >= DATE '1994-01-01'
             AND l_shipdate < DATE '1995-01-01' AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24""",
    "groupby_10m": "SELECT k, count(*) AS n, sum(v) AS s, avg(v) AS a FROM big GROUP BY k",
    "join_1m": "SELECT count(*) AS n, sum(a.v + b.w) AS s FROM left_side a JOIN right_side b ON a.k = b.k",
}


def pandas_answers(files):
    import pandas as pd

    def q1():
        l = pd.read_parquet(files["lineitem"], columns=["l_returnflag", "l_linestatus", "l_quantity", "l_extendedprice", "l_discount", "l_tax", "l_shipdate"])
        for c in ["l_quantity", "l_extendedprice", "l_discount", "l_tax"]:
            l[c] = l[c].astype(float)
        l = l[l.l_shipdate <= pd.Timestamp("1998-09-02").date()]
        l["disc_price"] = l.l_extendedprice * (1 - l.l_discount)
        l["charge"] = l.disc_price * (1 + l.l_tax)
        return l.groupby(["l_returnflag", "l_linestatus"]).agg(sum_qty=("l_quantity", "sum"), sum_base_price=("l_extendedprice", "sum"),
                                                               sum_disc_price=("disc_price", "sum"), sum_charge=("charge", "sum"),
                                                               avg_qty=("l_quantity", "mean"), avg_price=("l_extendedprice", "mean"),
                                                               avg_disc=("l_discount", "mean"), count_order=("l_quantity", "size")).reset_index()

    def q3():
        c = pd.read_parquet(files["customer"], columns=["c_custkey", "c_mktsegment"])
        o = pd.read_parquet(files["orders"])
        l = pd.read_parquet(files["lineitem"], columns=["l_orderkey", "l_extendedprice", "l_discount", "l_shipdate"])
        day = pd.Timestamp("1995-03-15").date()
        c = c[c.c_mktsegment == "BUILDING"]
        o = o[o.o_orderdate < day]
        l = l[l.l_shipdate > day]
        j = c.merge(o, left_on="c_custkey", right_on="o_custkey").merge(l, left_on="o_orderkey", right_on="l_orderkey")
        j["revenue"] = j.l_extendedprice.astype(float) * (1 - j.l_discount.astype(float))
        g = j.groupby(["l_orderkey", "o_orderdate", "o_shippriority"]).revenue.sum().reset_index()
        return g.sort_values(["revenue", "o_orderdate", "l_orderkey"], ascending=[False, True, True]).head(10)

    def q6():
        l = pd.read_parquet(files["lineitem"], columns=["l_extendedprice", "l_discount", "l_quantity", "l_shipdate"])
        d = l.l_discount.astype(float)
        m = (l.l_shipdate >= pd.Timestamp("1994-01-01").date()) & (l.l_shipdate < pd.Timestamp("1995-01-01").date()) & (d >= 0.05) & (d <= 0.07) & (l.l_quantity.astype(float) < 24)
        return (l.l_extendedprice.astype(float)[m] * d[m]).sum()

    def groupby():
        b = pd.read_parquet(files["big"])
        return b.groupby("k").v.agg(["size", "sum", "mean"])

    def join():
        a = pd.read_parquet(files["left_side"])
        b = pd.read_parquet(files["right_side"])
        j = a.merge(b, on="k")
        return len(j), (j.v + j.w).sum()

    return {"q1": q1, "q3": q3, "q6": q6, "groupby_10m": groupby, "join_1m": join}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=".build/release/kiln")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--only", help="comma-separated query names")
    parser.add_argument("--keep", help="write the tables to this directory and keep them (reused when present)")
    args = parser.parse_args()
    import duckdb

    work = args.keep or tempfile.mkdtemp(prefix="kiln-sql-bench-")
    os.makedirs(work, exist_ok=True)
    home = os.path.join(work, "home")
    reuse = args.keep and os.path.isdir(home)
    rng = np.random.default_rng(1)
    tables = tpch(args.scale)
    n_big = int(10_000_000 * args.scale)
    tables["big"] = pa.table({"k": rng.integers(0, 100_000, n_big, dtype=np.int64), "v": rng.random(n_big)})
    n_join = int(1_000_000 * args.scale)
    tables["left_side"] = pa.table({"k": rng.permutation(n_join).astype(np.int64), "v": rng.random(n_join)})
    tables["right_side"] = pa.table({"k": rng.permutation(n_join).astype(np.int64), "w": rng.random(n_join)})
    files = {}
    con = duckdb.connect()
    for name, table in tables.items():
        files[name] = os.path.join(work, f"{name}.parquet")
        if reuse:
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{files[name]}')")
            continue
        pq.write_table(table, files[name])
        out = subprocess.run([args.kiln, "table", "write", f"main.default.{name}", "--home", home, "--from", files[name]], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{files[name]}')")
    print(f"rows: lineitem {tables['lineitem'].num_rows:,}, orders {tables['orders'].num_rows:,}, big {n_big:,}, join {n_join:,} x {n_join:,}")

    def timed(f):
        start = time.perf_counter()
        result = f()
        return time.perf_counter() - start, result

    def best(f):
        runs = [timed(f) for _ in range(args.runs)]
        return min(r[0] for r in runs), runs[0][1]

    inside = {}

    def kiln(sql):
        out = subprocess.run([args.kiln, "sql", "--home", home, "--format", "json", "--timing", sql], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        seconds = float(re.search(r"Time: ([0-9.]+) s", out.stderr).group(1))
        inside[sql] = min(inside.get(sql, seconds), seconds)
        return out.stdout  # parsed after timing: Python's JSON decoding is not Kiln's time

    answers = pandas_answers(files)
    results = {}
    for name, sql in QUERIES.items():
        if args.only and name not in args.only.split(","):
            continue
        t_kiln, ours = best(lambda: kiln(sql))
        ours = json.loads(ours)
        t_duck, theirs = best(lambda: con.execute(sql).fetchall())
        t_pandas, _ = best(answers[name])
        assert len(ours) == len(theirs), (name, len(ours), len(theirs))
        results[name] = {"kiln": round(t_kiln, 3), "duckdb": round(t_duck, 3), "pandas": round(t_pandas, 3),
                         "vs_duckdb": round(t_duck / t_kiln, 2), "vs_pandas": round(t_pandas / t_kiln, 2),
                         "kiln_in_process": round(inside[sql], 3), "vs_duckdb_in_process": round(t_duck / inside[sql], 2)}
    print(json.dumps(results, indent=2))
    for name, r in results.items():
        print(f"{name:12s} kiln {r['kiln']:7.3f} s  duckdb {r['duckdb']:7.3f} s  pandas {r['pandas']:7.3f} s   "
              f"→ {r['vs_duckdb']}× duckdb, {r['vs_pandas']}× pandas   (in process {r['kiln_in_process']:.3f} s → {r['vs_duckdb_in_process']}× duckdb)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
