"""Peak memory and time of `kiln train` at scale: N rows × 50 float32 features (default 10M), binary target.

Writes the data as Parquet in 1M-row row groups, loads it with `kiln table write`, trains each algorithm with
`kiln train` under /usr/bin/time, and prints seconds and peak resident memory (the issue's bound: 24 GiB).

    make release && python3 bench/learn_scale.py --kiln .build/release/kiln [--rows 10000000] [--algorithms xgboost,logistic]
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=".build/release/kiln")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--algorithms", default="xgboost,logistic")
    parser.add_argument("--params", default="xgboost=num_boost_round=20;random_forest=n_estimators=4,max_depth=10")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="kiln-learn-scale-")
    home = os.path.join(work, "home")
    path = os.path.join(work, "data.parquet")
    rng = np.random.default_rng(0)
    weights = rng.normal(size=args.features).astype(np.float32)
    names = [f"f{i}" for i in range(args.features)]
    start = time.perf_counter()
    schema = pa.schema([(n, pa.float32()) for n in names] + [("label", pa.int64())])
    with pq.ParquetWriter(path, schema, compression="snappy") as writer:
        for offset in range(0, args.rows, 1_000_000):
            n = min(1_000_000, args.rows - offset)
            X = rng.normal(size=(n, args.features)).astype(np.float32)
            y = ((X @ weights + rng.normal(size=n).astype(np.float32)) > 0).astype(np.int64)
            writer.write_table(pa.table({**{name: X[:, i] for i, name in enumerate(names)}, "label": y}, schema=schema))
    print(f"generated {args.rows:,} × {args.features} float32 in {time.perf_counter() - start:.1f} s ({os.path.getsize(path) / 2**30:.2f} GiB Parquet)")
    start = time.perf_counter()
    subprocess.run([args.kiln, "table", "write", "main.scale.data", "--home", home, "--from", path], check=True, capture_output=True)
    print(f"kiln table write: {time.perf_counter() - start:.1f} s")
    os.unlink(path)
    params = dict(p.split("=", 1) for p in args.params.split(";") if p)
    for algorithm in args.algorithms.split(","):
        cmd = ["/usr/bin/time", "-v", args.kiln, "train", "--home", home, "--table", "main.scale.data", "--target", "label",
               "--algorithm", algorithm, "--json"] + (["--params", params[algorithm]] if algorithm in params else [])
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if out.returncode != 0:
            print(f"{algorithm}: failed: {out.stderr[-2000:]}")
            continue
        peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
        result = json.loads(out.stdout)
        print(f"{algorithm:14s} wall {wall:7.1f} s  read {result['seconds']['read']:6.1f} s  fit {result['seconds']['fit']:7.1f} s  "
              f"peak RSS {peak_kb / 2**20:5.2f} GiB  test_accuracy {result['metrics']['test_accuracy_score']:.4f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
