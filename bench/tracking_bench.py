#!/usr/bin/env python3
"""Drives any MLflow tracking server (and its model registry) and prints JSON timings.

    python bench/tracking_bench.py URI [--token T] [--mode raw|client]

raw:    one kept-alive HTTP connection with TCP_NODELAY and hand-built JSON (the server's own cost).
client: the stock mlflow client (what a user sees; the client itself tops out near 760 log_metric calls/s).
"""
import argparse
import http.client
import json
import random
import socket
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor


class Raw:
    """A kept-alive HTTP/1.1 connection speaking the MLflow REST API."""

    def __init__(self, uri, token):
        parsed = urllib.parse.urlparse(uri)
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.conn = None

    def connect(self):
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call(self, method, path, body=None, query=None):
        if self.conn is None:
            self.connect()
        url = "/api/2.0/mlflow/" + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = json.dumps(body).encode() if body is not None else None
        try:
            self.conn.request(method, url, body=data, headers=self.headers)
            response = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.connect()
            self.conn.request(method, url, body=data, headers=self.headers)
            response = self.conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload) if payload else {}


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def seed_runs(uri, token, experiment_id, count, threads=8):
    """Creates `count` runs with two metrics and two params each, in parallel over kept-alive connections."""
    def work(chunk):
        raw = Raw(uri, token)
        for i in chunk:
            run = raw.call("POST", "runs/create", {"experiment_id": experiment_id, "start_time": 1_700_000_000_000 + i})
            run_id = run["run"]["info"]["run_id"]
            raw.call("POST", "runs/log-batch", {
                "run_id": run_id,
                "metrics": [{"key": "acc", "value": (i * 37 % 100) / 100, "timestamp": 1, "step": 0},
                            {"key": "loss", "value": (i * 53 % 100) / 100, "timestamp": 1, "step": 0}],
                "params": [{"key": "model", "value": ["tree", "linear", "forest"][i % 3]}, {"key": "depth", "value": str(i % 10)}]})
    chunks = [range(t, count, threads) for t in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, chunks))


def bench(uri, token, mode, runs, singles, batches, history_points, repeats, registry_rounds=100):
    raw = Raw(uri, token)
    exp = raw.call("POST", "experiments/create", {"name": f"bench-{random.randrange(1 << 40)}"})["experiment_id"]
    run_id = raw.call("POST", "runs/create", {"experiment_id": exp, "start_time": 1})["run"]["info"]["run_id"]
    hist_run = raw.call("POST", "runs/create", {"experiment_id": exp, "start_time": 1})["run"]["info"]["run_id"]
    for start in range(0, history_points, 1000):
        raw.call("POST", "runs/log-batch", {"run_id": hist_run, "metrics": [
            {"key": "h", "value": i * 0.001, "timestamp": 1_700_000_000_000 + i, "step": i}
            for i in range(start, min(start + 1000, history_points))]})
    search_exp = raw.call("POST", "experiments/create", {"name": f"bench-search-{random.randrange(1 << 40)}"})["experiment_id"]
    seed_runs(uri, token, search_exp, runs)
    search_filter = "metrics.acc > 0.5 and params.model = 'tree'"
    results = {"mode": mode, "runs": runs}
    # A model file for registry operations: the server copies (Kiln) or references (mlflow) it per version.
    model_run = raw.call("POST", "runs/create", {"experiment_id": search_exp, "start_time": 1})["run"]["info"]["run_id"]
    model_dir = f"{search_exp}/{model_run}/artifacts/model"
    put_artifact(uri, token, f"{model_dir}/MLmodel", b"artifact_path: model\nflavors: {}\n")
    model_source = f"mlflow-artifacts:/{model_dir}"

    if mode == "raw":
        t = time.perf_counter()
        for i in range(singles):
            raw.call("POST", "runs/log-metric", {"run_id": run_id, "key": "single", "value": i * 0.5, "timestamp": 1_700_000_000_000 + i, "step": i})
        results["log_metric_per_s"] = singles / (time.perf_counter() - t)
        t = time.perf_counter()
        for b in range(batches):
            raw.call("POST", "runs/log-batch", {"run_id": run_id, "metrics": [
                {"key": f"b{i % 10}", "value": i * 0.1, "timestamp": 1_700_000_000_000 + b, "step": b * 1000 + i} for i in range(1000)]})
        results["log_batch_metrics_per_s"] = batches * 1000 / (time.perf_counter() - t)
        timings = []
        for _ in range(repeats):
            t = time.perf_counter()
            out = raw.call("POST", "runs/search", {"experiment_ids": [search_exp], "filter": search_filter, "max_results": 1000})
            timings.append(time.perf_counter() - t)
        results["search_matches"] = len(out.get("runs", []))
        results["search_p50_ms"] = percentile(timings, 50) * 1000
        results["search_p95_ms"] = percentile(timings, 95) * 1000
        timings = []
        for _ in range(repeats):
            t = time.perf_counter()
            out = raw.call("GET", "metrics/get-history", query={"run_id": hist_run, "metric_key": "h", "max_results": 25000})
            timings.append(time.perf_counter() - t)
        assert len(out["metrics"]) == history_points, len(out["metrics"])
        results["history_p50_ms"] = percentile(timings, 50) * 1000
        results["registry_ops_per_s"] = registry_ops(lambda method, path, body=None, query=None: raw.call(method, path, body, query),
                                                     model_source, model_run, registry_rounds)
    else:
        import os
        os.environ["MLFLOW_TRACKING_TOKEN"] = token or ""
        from mlflow import MlflowClient
        from mlflow.entities import Metric
        client = MlflowClient(tracking_uri=uri)
        t = time.perf_counter()
        for i in range(singles):
            client.log_metric(run_id, "single_c", i * 0.5, timestamp=1_700_000_000_000 + i, step=i)
        results["log_metric_per_s"] = singles / (time.perf_counter() - t)
        t = time.perf_counter()
        for b in range(batches):
            client.log_batch(run_id, metrics=[Metric(f"c{i % 10}", i * 0.1, 1_700_000_000_000 + b, b * 1000 + i) for i in range(1000)])
        results["log_batch_metrics_per_s"] = batches * 1000 / (time.perf_counter() - t)
        timings = []
        for _ in range(repeats):
            t = time.perf_counter()
            out = client.search_runs([search_exp], search_filter, max_results=1000)
            timings.append(time.perf_counter() - t)
        results["search_matches"] = len(out)
        results["search_p50_ms"] = percentile(timings, 50) * 1000
        results["search_p95_ms"] = percentile(timings, 95) * 1000
        timings = []
        for _ in range(repeats):
            t = time.perf_counter()
            out = client.get_metric_history(hist_run, "h")
            timings.append(time.perf_counter() - t)
        assert len(out) == history_points
        results["history_p50_ms"] = percentile(timings, 50) * 1000
        name = f"bench-model-{random.randrange(1 << 40)}"
        client.create_registered_model(name)
        t = time.perf_counter()
        for i in range(registry_rounds):
            version = client.create_model_version(name, model_source, run_id=model_run).version
            client.transition_model_version_stage(name, version, "Staging", archive_existing_versions=True)
            client.search_model_versions(f"name = '{name}'", max_results=10)
        results["registry_ops_per_s"] = registry_rounds * 3 / (time.perf_counter() - t)
    return results


def put_artifact(uri, token, path, data):
    parsed = urllib.parse.urlparse(uri)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port or 80, timeout=60)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn.request("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{path}", body=data, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"artifact upload failed: {response.status}")


def registry_ops(call, source, run_id, rounds):
    """Registry operations/s: each round creates a version, transitions it with archiving, and searches."""
    name = f"bench-model-{random.randrange(1 << 40)}"
    call("POST", "registered-models/create", {"name": name})
    t = time.perf_counter()
    for _ in range(rounds):
        version = call("POST", "model-versions/create", {"name": name, "source": source, "run_id": run_id})["model_version"]["version"]
        call("POST", "model-versions/transition-stage", {"name": name, "version": version, "stage": "Staging",
                                                         "archive_existing_versions": True})
        call("GET", "model-versions/search", query={"filter": f"name = '{name}'", "max_results": 10})
    return rounds * 3 / (time.perf_counter() - t)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("uri")
    parser.add_argument("--token", default=None)
    parser.add_argument("--mode", choices=["raw", "client"], default="raw")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--singles", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--history", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--registry-rounds", type=int, default=100)
    args = parser.parse_args()
    results = bench(args.uri, args.token, args.mode, args.runs, args.singles, args.batches, args.history, args.repeats, args.registry_rounds)
    json.dump(results, sys.stdout)
    print()


if __name__ == "__main__":
    main()
