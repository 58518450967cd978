"""Feast's side of bench/features_bench.py, run in a Python that has `feast` installed (it is not a test or Kiln
dependency: `python -m venv /tmp/feastenv && /tmp/feastenv/bin/pip install feast`).

Given the same Parquet files the Kiln bench uses, it times what a Feast user runs:
- `join`: a local repo (file offline store, sqlite online store) over the features file, then
  `get_historical_features(entity_df=labels, features=[fv:f0..]).to_df()`, best of N; its answer is written back
  as Parquet so the caller compares it with DuckDB's;
- `online`: `materialize` of the online file into sqlite, then `feast serve` (one worker, as started by default)
  answering `/get-online-features` for one random key per request from 1 and 8 closed-loop clients.
Prints one JSON object.
"""
import argparse
import datetime
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

import pandas as pd
import pyarrow.parquet as pq


def repo(directory, features_path, features, name):
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64
    os.makedirs(os.path.join(directory, "data"), exist_ok=True)
    with open(os.path.join(directory, "feature_store.yaml"), "w") as f:
        f.write("project: kilnbench\nregistry: data/registry.db\nprovider: local\n"
                "online_store:\n  type: sqlite\n  path: data/online.db\noffline_store:\n  type: file\n"
                "entity_key_serialization_version: 3\n")
    store = FeatureStore(repo_path=directory)
    entity = Entity(name="k", join_keys=["k"], value_type=ValueType.INT64)
    source = FileSource(path=features_path, timestamp_field="ts")
    view = FeatureView(name=name, entities=[entity], ttl=datetime.timedelta(days=36500),
                       schema=[Field(name=f"f{i}", dtype=Float64) for i in range(features)], source=source, online=True)
    store.apply([entity, view])
    return store


def join(args):
    directory = tempfile.mkdtemp(prefix="feast-bench-")
    store = repo(directory, args.features_file, args.features, "fv")
    labels = pq.read_table(args.labels_file).to_pandas().rename(columns={"t": "event_timestamp"})
    labels["event_timestamp"] = labels["event_timestamp"].dt.tz_localize("UTC")
    refs = [f"fv:f{i}" for i in range(args.features)]
    times, out = [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = store.get_historical_features(entity_df=labels, features=refs).to_df()
        times.append(time.perf_counter() - start)
    out = out.rename(columns={"event_timestamp": "t"})
    out["t"] = out["t"].dt.tz_convert(None).astype("datetime64[us]")
    out.to_parquet(args.answer_file)
    return {"feast_join_s": round(min(times), 3), "feast_join_rows": len(out)}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(url, keys, features, seconds, seed):
    import random

    import requests
    rng = random.Random(seed)
    session = requests.Session()
    refs = [f"online_fv:f{i}" for i in range(features)]
    latencies, failures, end = [], 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        body = {"features": refs, "entities": {"k": [rng.randrange(keys)]}}
        start = time.perf_counter()
        try:
            r = session.post(url + "/get-online-features", json=body)
        except requests.RequestException:
            # feast serve resets connections under load; count it and go on with a fresh connection.
            failures += 1
            session = requests.Session()
            continue
        latencies.append(time.perf_counter() - start)
        assert r.status_code == 200, r.text[:300]
    return latencies, failures


def online(args):
    from concurrent.futures import ProcessPoolExecutor

    import numpy as np
    import requests
    directory = tempfile.mkdtemp(prefix="feast-online-")
    store = repo(directory, args.online_file, 10, "online_fv")
    start = time.perf_counter()
    store.materialize(start_date=datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc),
                      end_date=datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc))
    materialize_s = time.perf_counter() - start
    port = free_port()
    feast = os.path.join(os.path.dirname(sys.executable), "feast")
    server = subprocess.Popen([feast, "-c", directory, "serve", "-h", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                requests.get(url + "/health", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        keys = pq.read_metadata(args.online_file).num_rows
        worker(url, keys, 10, 1.0, 0)
        result = {"feast_materialize_s": round(materialize_s, 2)}
        lat, failed = worker(url, keys, 10, args.seconds, 1)
        lat = np.array(lat) * 1000
        result.update({"feast_1_client_req_per_s": round(len(lat) / args.seconds), "feast_1_client_p50_ms": round(float(np.percentile(lat, 50)), 3),
                       "feast_1_client_p99_ms": round(float(np.percentile(lat, 99)), 3)})
        with ProcessPoolExecutor(8) as pool:
            runs = list(pool.map(worker, [url] * 8, [keys] * 8, [10] * 8, [args.seconds] * 8, range(8)))
        lat = np.concatenate([np.array(r[0]) for r in runs]) * 1000
        import wrkload
        if wrkload.available():
            refs = ",".join(f'"online_fv:f{i}"' for i in range(10))
            got = wrkload.rate(url + "/get-online-features", '{"features":[' + refs + '],"entities":{"k":[%d]}}', keys)
            result.update({f"feast_wrk_8_connections_{k}": v for k, v in got.items()})
        result.update({"feast_8_clients_req_per_s": round(len(lat) / args.seconds), "feast_8_clients_p99_ms": round(float(np.percentile(lat, 99)), 3),
                       "feast_8_clients_connection_resets": sum(r[1] for r in runs), "feast_1_client_connection_resets": failed})
        return result
    finally:
        server.terminate()
        server.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features-file")
    parser.add_argument("--labels-file")
    parser.add_argument("--answer-file")
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--online-file")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    for name in ("features_file", "labels_file", "answer_file", "online_file"):
        if getattr(args, name):
            setattr(args, name, os.path.abspath(getattr(args, name)))
    result = {}
    if args.online_file:
        result.update(online(args))
    if args.features_file:
        result.update(join(args))
    result["feast_peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
