"""Kiln's Parquet reader and writer against pyarrow, same data, same run.

5,000,000 rows (int64 id, timestamp, a 100-value string, two float64, int32), SNAPPY. Each side writes the table
and reads a file fully into memory; throughput is the table's in-memory size (pyarrow's `nbytes`) over the time,
so both sides are measured against the same figure. Kiln writes through `kiln parquet convert` (its write phase is
timed inside the process) and reads through `kiln parquet scan`. Peak RSS comes from each process's own rusage.

    make release && python3 bench/parquet_bench.py --kiln .build/release/kiln [--rows 5000000]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def make_table(rows, seed=7):
    rng = np.random.default_rng(seed)
    words = np.array([f"category_{i:03d}" for i in range(100)])
    return pa.table({
        "id": pa.array(np.arange(rows, dtype=np.int64)),
        "ts": pa.array(np.int64(1_700_000_000_000_000) + rng.integers(0, 10**12, rows), pa.timestamp("us", tz="UTC")),
        "category": pa.array(words[rng.integers(0, 100, rows)]),
        "x": pa.array(rng.standard_normal(rows)),
        "y": pa.array(rng.random(rows) * 1000),
        "n": pa.array(rng.integers(-2**31, 2**31 - 1, rows, dtype=np.int64).astype(np.int32)),
    })


def child(args):
    """Runs a command; returns (stdout, wall seconds, peak RSS bytes of that child)."""
    wrapper = ("import resource, subprocess, sys, time, json; t = time.perf_counter(); "
               "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); w = time.perf_counter() - t; "
               "print(json.dumps({'rc': p.returncode, 'out': p.stdout, 'err': p.stderr, 'wall': w, "
               "'rss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))")
    result = json.loads(subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True, check=True).stdout)
    if result["rc"] != 0:
        raise SystemExit(f"{args} failed: {result['err']}")
    return result["out"], result["wall"], result["rss"]


PYARROW_READ = ("import json, resource, sys, time, pyarrow.parquet as pq; t = time.perf_counter(); "
                "table = pq.read_table(sys.argv[1]); s = time.perf_counter() - t; "
                "print(json.dumps({'seconds': s, 'rows': table.num_rows, 'nbytes': table.nbytes, "
                "'rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))")


def best(runs, f):
    return min(f() for _ in range(runs))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=".build/release/kiln")
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=3, help="best of N for each timing")
    args = parser.parse_args()

    table = make_table(args.rows)
    data_mb = table.nbytes / 1e6
    work = tempfile.mkdtemp(prefix="kiln-parquet-bench-")
    theirs = os.path.join(work, "pyarrow.parquet")
    ours = os.path.join(work, "kiln.parquet")

    def pyarrow_write():
        start = time.perf_counter()
        pq.write_table(table, theirs, compression="snappy")
        return time.perf_counter() - start

    convert_rss = []

    def kiln_write():
        out, _, rss = child([args.kiln, "parquet", "convert", theirs, ours, "--codec", "snappy", "--json"])
        convert_rss.append(rss)
        return json.loads(out)["write_seconds"]

    pa_write = best(args.runs, pyarrow_write)
    kiln_write_s = best(args.runs, kiln_write)

    def pyarrow_read(path):
        out, _, _ = child([sys.executable, "-c", PYARROW_READ, path])
        return json.loads(out)

    def kiln_read(path, *flags):
        out, wall, rss = child([args.kiln, "parquet", "scan", path, "--json", *flags])
        result = json.loads(out)
        result["rss"] = rss
        result["wall"] = wall
        return result

    pa_reads = [pyarrow_read(theirs) for _ in range(args.runs)]
    kiln_reads = [kiln_read(theirs) for _ in range(args.runs)]
    kiln_reads_own = [kiln_read(ours) for _ in range(args.runs)]
    kiln_reads_serial = [kiln_read(theirs, "--serial") for _ in range(args.runs)]
    pa_read_own = [pyarrow_read(ours) for _ in range(args.runs)]
    assert all(r["rows"] == args.rows for r in pa_reads + kiln_reads + kiln_reads_own + pa_read_own)
    equal = pq.read_table(ours).equals(table)

    pa_read = min(r["seconds"] for r in pa_reads)
    kiln_read_s = min(r["seconds"] for r in kiln_reads)
    kiln_rss = max(r["rss"] for r in kiln_reads)
    decoded = kiln_reads[0]["decoded_bytes"]
    results = {
        "rows": args.rows,
        "data_mb": round(data_mb, 1),
        "file_mb": {"pyarrow": round(os.path.getsize(theirs) / 1e6, 1), "kiln": round(os.path.getsize(ours) / 1e6, 1)},
        "write_mb_s": {"pyarrow": round(data_mb / pa_write, 1), "kiln": round(data_mb / kiln_write_s, 1),
                       "ratio": round(pa_write / kiln_write_s, 2)},
        "read_mb_s": {"pyarrow": round(data_mb / pa_read, 1), "kiln": round(data_mb / kiln_read_s, 1),
                      "ratio": round(pa_read / kiln_read_s, 2)},
        # The whole `kiln parquet scan` process (start, read, exit) against pyarrow's read inside a started Python.
        "read_whole_process_mb_s": {"pyarrow": round(data_mb / pa_read, 1), "kiln": round(data_mb / min(r["wall"] for r in kiln_reads), 1),
                                    "ratio": round(pa_read / min(r["wall"] for r in kiln_reads), 2)},
        "read_one_thread_mb_s": {"kiln": round(data_mb / min(r["seconds"] for r in kiln_reads_serial), 1)},
        "read_own_file_mb_s": {"pyarrow": round(data_mb / min(r["seconds"] for r in pa_read_own), 1),
                               "kiln": round(data_mb / min(r["seconds"] for r in kiln_reads_own), 1)},
        "peak_rss_mb": {"kiln_scan": round(kiln_rss / 2**20, 1), "pyarrow_read": round(max(r["rss"] for r in pa_reads) / 2**20, 1),
                        "kiln_convert_row_group_at_a_time": round(max(convert_rss) / 2**20, 1)},
        "kiln_decoded_mb": round(decoded / 2**20, 1),
        "kiln_rss_over_decoded": round(kiln_rss / decoded, 2),
        "kiln_file_reads_back_equal_in_pyarrow": equal,
    }
    print(json.dumps(results, indent=2))
    print(f"\nwrite: kiln {results['write_mb_s']['kiln']} MB/s vs pyarrow {results['write_mb_s']['pyarrow']} MB/s "
          f"→ {results['write_mb_s']['ratio']}×")
    print(f"read:  kiln {results['read_mb_s']['kiln']} MB/s vs pyarrow {results['read_mb_s']['pyarrow']} MB/s "
          f"→ {results['read_mb_s']['ratio']}×")
    whole = results["read_whole_process_mb_s"]
    print(f"read, whole kiln process: kiln {whole['kiln']} MB/s vs pyarrow {whole['pyarrow']} MB/s (in process) → {whole['ratio']}×")
    print(f"scan peak RSS {results['peak_rss_mb']['kiln_scan']} MiB for {results['kiln_decoded_mb']} MiB decoded "
          f"({results['kiln_rss_over_decoded']}×)")


if __name__ == "__main__":
    main()
