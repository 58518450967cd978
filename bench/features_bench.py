"""Point-in-time training sets: Kiln against DuckDB's ASOF LEFT JOIN, same data, one run.

1M label rows x 5M feature rows, 100k keys, 10 features (issue 22's shape). Kiln runs as a server (the binary
given by --kiln); the training set goes through `kiln_client.feature_engineering` as a user's notebook would
(labels up as Parquet, the join in the server, the result back as a pandas frame). Reported:
- Kiln end to end (`load_df()` to a pandas frame) and the server's own join time (its Server-Timing header);
- DuckDB in process (the same join to Arrow, and to pandas);
- creating the feature table through `create_table` (5M rows: upload, merge on the key, commit);
- the server's peak memory (VmHWM).
Answers are compared row by row on the features. Usage: python bench/features_bench.py --kiln .build/release/kiln
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
from kiln_client.feature_engineering import FeatureEngineeringClient, FeatureLookup  # noqa: E402


def data(labels, rows, keys, features, seed=1):
    rng = np.random.default_rng(seed)
    base = np.datetime64("2024-01-01T00:00:00", "us")
    span = 90 * 86_400 * 1_000_000
    k = rng.integers(0, keys, rows)
    ts = base + rng.integers(0, span, rows).astype("timedelta64[us]")
    feats = pd.DataFrame({"k": k, "ts": ts})
    feats = feats.drop_duplicates(["k", "ts"]).reset_index(drop=True)
    for i in range(features):
        feats[f"f{i}"] = rng.standard_normal(len(feats))
    lab = pd.DataFrame({"k": rng.integers(0, keys, labels), "t": base + rng.integers(0, span, labels).astype("timedelta64[us]"),
                        "y": rng.integers(0, 2, labels)})
    return feats, lab


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def best(f, repeats):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - start)
    return min(times), out


def lookup_worker(url, name, keys, batch, seconds, seed):
    """One closed-loop client: requests of `batch` random keys for `seconds`; returns each request's latency."""
    import random
    rng = random.Random(seed)
    session = requests.Session()
    session.headers["Authorization"] = "Bearer bench"
    path = f"{url}/api/2.0/kiln/features/online-tables/{name}/lookup"
    latencies, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        body = {"keys": [{"k": rng.randrange(keys)} for _ in range(batch)]}
        start = time.perf_counter()
        r = session.post(path, json=body)
        latencies.append(time.perf_counter() - start)
        assert r.status_code == 200 and None not in r.json()["outputs"], r.text[:200]
    return latencies


def online(fe, url, args, pid):
    """Publish a table of `online_keys` keys x 10 features, then look keys up: latency at one client, throughput at 8."""
    from concurrent.futures import ProcessPoolExecutor
    rng = np.random.default_rng(2)
    n = args.online_keys
    frame = pd.DataFrame({"k": np.arange(n)})
    for i in range(10):
        frame[f"f{i}"] = rng.standard_normal(n)
    fe.create_table(name="main.default.online_src", primary_keys=["k"], df=frame)
    fe.create_online_store(name="bench")
    start = time.perf_counter()
    fe.publish_table(online_store="bench", source_table_name="main.default.online_src", online_table_name="online_bench", publish_mode="SNAPSHOT")
    snapshot_s = time.perf_counter() - start
    changed = frame.sample(n // 100, random_state=3).assign(f0=0.5)
    fe.write_table(name="main.default.online_src", df=changed)
    start = time.perf_counter()
    step = fe.publish_table(online_store="bench", source_table_name="main.default.online_src", online_table_name="online_bench", publish_mode="TRIGGERED")
    incremental_s = time.perf_counter() - start
    print(f"online store, {n:,} keys x 10 features: publish (SNAPSHOT) {snapshot_s:.2f} s; "
          f"TRIGGERED after {len(changed):,} changed rows {incremental_s:.2f} s (incremental: {step['incremental']}, {step['rows_read']:,} rows read)")
    results = {"online_keys": n, "publish_snapshot_s": round(snapshot_s, 2), "publish_incremental_1pct_s": round(incremental_s, 3)}
    lookup_worker(url, "online_bench", n, 1, 1.0, 0)  # warm up
    for batch in (1, 10, 100):
        lat = np.array(lookup_worker(url, "online_bench", n, batch, 4.0, batch)) * 1000
        print(f"  1 client, {batch:3d} key(s)/request: p50 {np.percentile(lat, 50):.2f} ms  p99 {np.percentile(lat, 99):.2f} ms  max {lat.max():.2f} ms  ({len(lat) / 4:.0f} req/s)")
        results[f"p50_ms_batch{batch}"] = round(float(np.percentile(lat, 50)), 3)
        results[f"p99_ms_batch{batch}"] = round(float(np.percentile(lat, 99)), 3)
    for clients in (8, 32):
        with ProcessPoolExecutor(clients) as pool:
            runs = list(pool.map(lookup_worker, [url] * clients, ["online_bench"] * clients, [n] * clients, [1] * clients, [4.0] * clients,
                                 range(clients)))
        lat = np.concatenate([np.array(r) for r in runs]) * 1000
        print(f"  {clients} clients, 1 key/request: {len(lat) / 4:.0f} req/s, p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms")
        results[f"req_per_s_{clients}_clients"] = round(len(lat) / 4)
    import wrkload
    if wrkload.available():
        got = wrkload.rate(f"{url}/api/2.0/kiln/features/online-tables/online_bench/lookup", '{"keys":[{"k":%d}]}', n,
                           headers={"Authorization": "Bearer bench"})
        print(f"  wrk, 8 connections, 1 key/request: {got['req_per_s']} req/s, p50 {got['p50_ms']} ms, p99 {got['p99_ms']} ms, non-2xx {got['non_2xx']}")
        results.update({f"wrk_8_connections_{k}": v for k, v in got.items()})
    with open(f"/proc/{pid}/status") as f:
        results["server_peak_mib_after_online"] = next((int(line.split()[1]) // 1024 for line in f if line.startswith("VmHWM")), 0)
    if args.feast_python:
        frame.assign(ts=pd.Timestamp("2024-01-01")).to_parquet(os.path.join(args.scratch, "online.parquet"))
    print(json.dumps(results, indent=1))
    return results


def feast(args, kiln_online, kiln_join_s, query_answer):
    """Feast's side on the same files (bench/feast_peer.py in the Python given by --feast-python), after Kiln's server
    has stopped, then the ratios."""
    peer = [args.feast_python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "feast_peer.py"), "--seconds", "4"]
    if kiln_online:
        peer += ["--online-file", os.path.join(args.scratch, "online.parquet")]
    if kiln_join_s:
        peer += ["--features-file", os.path.join(args.scratch, "feats.parquet"), "--labels-file", os.path.join(args.scratch, "labels.parquet"),
                 "--answer-file", os.path.join(args.scratch, "feast_answer.parquet"), "--features", str(args.features)]
    out = subprocess.run(peer, capture_output=True, text=True)
    if out.returncode != 0:
        print("Feast failed:", out.stderr[-2000:])
        return
    got = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"Feast {got}")
    if kiln_online and "wrk_8_connections_req_per_s" in kiln_online and "feast_wrk_8_connections_req_per_s" in got:
        print(f"online, wrk 8 connections, 1 key/request: Kiln {kiln_online['wrk_8_connections_req_per_s']} req/s, feast serve "
              f"{got['feast_wrk_8_connections_req_per_s']} req/s -> {kiln_online['wrk_8_connections_req_per_s'] / got['feast_wrk_8_connections_req_per_s']:.1f}x "
              f"(p99 {kiln_online['wrk_8_connections_p99_ms']} vs {got['feast_wrk_8_connections_p99_ms']} ms)")
    if kiln_online:
        print(f"online, 8 clients, 1 key/request: Kiln {kiln_online['req_per_s_8_clients']} req/s, feast serve {got['feast_8_clients_req_per_s']} req/s "
              f"-> {kiln_online['req_per_s_8_clients'] / got['feast_8_clients_req_per_s']:.1f}x; one client p99 Kiln {kiln_online['p99_ms_batch1']} ms, "
              f"Feast {got['feast_1_client_p99_ms']} ms; publish/materialize {kiln_online['publish_snapshot_s']} s vs {got['feast_materialize_s']} s")
    if kiln_join_s:
        theirs = pd.read_parquet(os.path.join(args.scratch, "feast_answer.parquet"))
        cols = [f"f{i}" for i in range(args.features)]
        merged = theirs.merge(query_answer.drop_duplicates(["k", "t", "y"]), on=["k", "t", "y"], suffixes=("", "_want"))
        agree = len(merged) == len(theirs) and all(np.allclose(merged[c].to_numpy(dtype=float), merged[c + "_want"].to_numpy(dtype=float), equal_nan=True) for c in cols)
        print(f"point-in-time join: Kiln load_df() {kiln_join_s:.3f} s, Feast get_historical_features().to_df() {got['feast_join_s']:.3f} s "
              f"-> {got['feast_join_s'] / kiln_join_s:.1f}x; Feast returned {got['feast_join_rows']:,} of {args.labels:,} label rows "
              f"(its answers agree with DuckDB's on those rows: {agree}); Feast peak {got['feast_peak_mib']} MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiln", required=True)
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--online-keys", type=int, default=1_000_000, help="keys of the table published to the online store")
    parser.add_argument("--lookups", type=int, default=3000, help="requests per latency measurement")
    parser.add_argument("--skip-join", action="store_true")
    parser.add_argument("--feast-python", help="a python with feast installed: also run Feast on the same data (bench/feast_peer.py)")
    args = parser.parse_args()
    args.scratch = tempfile.mkdtemp(prefix="kiln-features-data-")
    import duckdb

    feats, labels = data(args.labels, args.rows, args.keys, args.features)
    if args.feast_python:
        feats.to_parquet(os.path.join(args.scratch, "feats.parquet"))
        labels.to_parquet(os.path.join(args.scratch, "labels.parquet"))
    home = tempfile.mkdtemp(prefix="kiln-features-bench-")
    port = free_port()
    server = subprocess.Popen([args.kiln, "server", "--host", "127.0.0.1", "--port", str(port), "--home", home],
                              env=dict(os.environ, KILN_ADMIN_TOKEN="bench"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if requests.get(url + "/health", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        fe = FeatureEngineeringClient(host=url, token="bench")
        kiln_online = online(fe, url, args, server.pid)
        kiln_s, want = None, None
        if args.skip_join:
            return
        start = time.perf_counter()
        fe.create_table(name="main.default.bench_features", primary_keys=["k", "ts"], timeseries_column="ts", df=feats)
        create_s = time.perf_counter() - start
        lookup = FeatureLookup(table_name="main.default.bench_features", lookup_key="k", timestamp_lookup_key="t")
        timings = []

        def kiln():
            conn = fe._conn
            original = conn.call

            def call(method, path, **kw):
                r = original(method, path, **kw)
                timings.append(r.headers.get("Server-Timing", ""))
                return r
            conn.call = call
            try:
                return fe.create_training_set(df=labels, feature_lookups=[lookup], label="y").load_df()
            finally:
                conn.call = original

        kiln_s, kiln_df = best(kiln, args.repeats)
        joins = [float(part.split("dur=")[1]) / 1000 for t in timings for part in t.split(",") if part.strip().startswith("join")]
        server_join_s = min(joins) if joins else float("nan")
        with open(f"/proc/{server.pid}/status") as f:
            peak = next((int(line.split()[1]) // 1024 for line in f if line.startswith("VmHWM")), 0)

        con = duckdb.connect()
        con.register("labels", pa.Table.from_pandas(labels, preserve_index=False))
        con.register("feats", pa.Table.from_pandas(feats, preserve_index=False))
        cols = ", ".join(f"f.f{i}" for i in range(args.features))
        query = f"SELECT l.*, {cols} FROM labels l ASOF LEFT JOIN feats f ON l.k = f.k AND l.t >= f.ts"
        duck_s, _ = best(lambda: con.sql(query).to_arrow_table(), args.repeats)
        duck_pd_s, _ = best(lambda: con.execute(query).df(), args.repeats)

        # Same answers: DuckDB does not keep label order, so compare by (k, t, y) sorted, features alike.
        want = con.execute(query + " ORDER BY l.k, l.t, l.y, f.f0").df()
        got = kiln_df.sort_values(["k", "t", "y", "f0"], na_position="last").reset_index(drop=True)
        same = len(got) == len(want) == args.labels and all(
            np.allclose(got[f"f{i}"].to_numpy(dtype=float), want[f"f{i}"].to_numpy(dtype=float), equal_nan=True) for i in range(args.features))

        result = {
            "labels": args.labels, "feature_rows": len(feats), "keys": args.keys, "features": args.features,
            "kiln_end_to_end_s": round(kiln_s, 3), "kiln_server_join_s": round(server_join_s, 3),
            "duckdb_in_process_arrow_s": round(duck_s, 3), "duckdb_to_pandas_s": round(duck_pd_s, 3),
            "kiln_join_vs_duckdb_in_process": round(duck_s / server_join_s, 3),
            "kiln_end_to_end_vs_duckdb_to_pandas": round(duck_pd_s / kiln_s, 3),
            "kiln_label_rows_per_s_in_server": round(args.labels / server_join_s),
            "duckdb_label_rows_per_s": round(args.labels / duck_s),
            "create_table_5m_rows_s": round(create_s, 2), "kiln_server_peak_mib": peak, "same_answers": bool(same),
        }
        print(f"point-in-time join, {args.labels:,} labels x {len(feats):,} feature rows, {args.keys:,} keys, {args.features} features")
        print(f"  Kiln server join   {server_join_s:7.3f} s   DuckDB in process (Arrow)  {duck_s:7.3f} s  -> {duck_s / server_join_s:.2f}x DuckDB")
        print(f"  Kiln load_df()     {kiln_s:7.3f} s   DuckDB to pandas           {duck_pd_s:7.3f} s  -> {duck_pd_s / kiln_s:.2f}x")
        print(f"  create_table of {len(feats):,} rows {create_s:.2f} s; server peak {peak} MiB; answers agree: {same}")
        print(json.dumps(result, indent=1))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)
        if args.feast_python and sys.exc_info()[0] is None:
            feast(args, kiln_online, kiln_s, want)
        shutil.rmtree(args.scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
