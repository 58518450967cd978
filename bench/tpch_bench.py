"""All 22 TPC-H queries: Kiln against DuckDB on the same data, answers checked, one run.

Data comes from the repo's generator (tests/compat/tpch_gen.py; SF1 takes ~3 minutes and ~9 GB in Python), written
once as Parquet (DuckDB reads those files in this process) and as Delta tables with `kiln table write`. Each query
runs as a `kiln sql` process: "in process" is the statement time `kiln sql --timing` reports, "whole" is the process
(start and JSON output included), "peak MiB" its maximum resident memory. DuckDB runs in this process with its
default threads. Best of --runs. Ratios > 1 mean Kiln is faster.

    python3 bench/tpch_bench.py --kiln .build/release/kiln [--scale 1] [--keep /tmp/tpch-sf1] [--only q01,q06]
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "compat"))
from tpch_queries import TPCH  # noqa: E402


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b)) or abs(a - b) < 1e-6
    return str(a) == str(b)


def plain(v):
    import datetime
    import decimal
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    return v


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=".build/release/kiln")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--only", help="comma-separated query names (q01 ... q22)")
    parser.add_argument("--keep", help="generate into this directory and reuse it next time")
    args = parser.parse_args()
    import duckdb

    work = args.keep or tempfile.mkdtemp(prefix="kiln-tpch-")
    os.makedirs(work, exist_ok=True)
    home = os.path.join(work, "home")
    if not os.path.isdir(home):
        import pyarrow.parquet as pq
        from tpch_gen import generate
        t = time.perf_counter()
        for name, table in generate(args.scale).items():
            path = os.path.join(work, f"{name}.parquet")
            pq.write_table(table, path)
            out = subprocess.run([args.kiln, "table", "write", f"main.tpch.{name}", "--home", home, "--from", path], capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(out.stderr)
        print(f"generated SF{args.scale} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA tpch")
    for file in sorted(os.listdir(work)):
        if file.endswith(".parquet"):
            con.execute(f"CREATE VIEW tpch.{file[:-8]} AS SELECT * FROM read_parquet('{os.path.join(work, file)}')")

    results = {}
    for name, sql in TPCH:
        if args.only and name not in args.only.split(","):
            continue
        whole, inside, peak, ours = math.inf, math.inf, 0, None
        for _ in range(args.runs):
            t = time.perf_counter()
            out = subprocess.run(["/usr/bin/time", "-f", "%M", args.kiln, "sql", "--home", home, "--format", "json", "--timing", sql],
                                 capture_output=True, text=True)
            whole = min(whole, time.perf_counter() - t)
            if out.returncode != 0:
                raise SystemExit(f"{name}: {out.stderr}")
            inside = min(inside, float(re.search(r"Time: ([0-9.]+) s", out.stderr).group(1)))
            peak = max(peak, int(out.stderr.strip().splitlines()[-1]) / 1024)
            ours = out.stdout
        rows = [list(r.values()) for r in json.loads(ours)]
        duck, theirs = math.inf, None
        for _ in range(args.runs):
            t = time.perf_counter()
            theirs = con.execute(sql).fetchall()
            duck = min(duck, time.perf_counter() - t)
        theirs = [[plain(v) for v in row] for row in theirs]
        same = len(rows) == len(theirs) and all(len(a) == len(b) and all(close(x, y) for x, y in zip(a, b)) for a, b in zip(rows, theirs))
        results[name] = {"kiln_in_process": round(inside, 3), "kiln_whole": round(whole, 3), "duckdb": round(duck, 3),
                         "ratio_in_process": round(duck / inside, 3), "ratio_whole": round(duck / whole, 3),
                         "kiln_peak_mib": round(peak), "rows": len(rows), "same_answer": same}
        r = results[name]
        print(f"{name}  kiln {r['kiln_in_process']:7.3f} s in process, {r['kiln_whole']:7.3f} s whole, {r['kiln_peak_mib']:6d} MiB  "
              f"duckdb {r['duckdb']:7.3f} s  → {r['ratio_in_process']:.2f}× in process, {r['ratio_whole']:.2f}× whole"
              f"{'' if same else '   ANSWERS DIFFER'}", flush=True)
    if results:
        geo = lambda key: math.exp(sum(math.log(r[key]) for r in results.values()) / len(results))
        print(f"geometric mean: {geo('ratio_in_process'):.2f}× in process, {geo('ratio_whole'):.2f}× whole; "
              f"answers equal: {sum(r['same_answer'] for r in results.values())} of {len(results)}")
    print(json.dumps(results))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
