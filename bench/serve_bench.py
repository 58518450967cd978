"""Kiln serving endpoints against `mlflow models serve`, same model, same requests, same run.

Starts a Kiln server in a scratch home (or uses --url with --token), trains and registers an XGBoost booster on
breast_cancer, serves it from a Kiln endpoint and from `mlflow models serve -m models:/bench_bc/1 --env-manager
local` (which downloads it from Kiln's registry), then drives both with single-row and 1,000-row
`dataframe_split` requests at concurrency 1, 16 and 64 (client worker processes with keep-alive connections, for
--seconds each) and prints p50/p99 latency, successful requests/s and the ratios (> 1: Kiln better). The Kiln
endpoint is workload_size Large (64 concurrent requests admitted), so concurrency 64 is not answered with 429s.

    make release && python3 bench/serve_bench.py --kiln .build/release/kiln [--seconds 5]
    python3 bench/serve_bench.py http://127.0.0.1:5000 --token $KILN_TOKEN     (a running server on this machine)

The client runs on the same cores as the servers, so at high concurrency both are partly client-bound.
"""
import argparse
import http.client
import json
import multiprocessing
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
import requests
from sklearn import datasets


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url, proc, path="/health"):
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.args}")
        try:
            if requests.get(url + path, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} never became healthy")


def worker(host, port, path, headers, body, seconds, queue):
    connection = http.client.HTTPConnection(host, port)
    latencies, errors = [], 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            errors += 1
        latencies.append(time.perf_counter() - start)
    queue.put((latencies, errors))


def load(url, path, headers, body, concurrency, seconds):
    host, port = url.split("//")[1].split(":")
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=(host, int(port), path, headers, body, seconds, queue)) for _ in range(concurrency)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    latencies = np.array([x for r in results for x in r[0]])
    errors = sum(r[1] for r in results)
    return {"requests": len(latencies), "errors": errors, "p50_ms": float(np.percentile(latencies, 50) * 1000),
            "p99_ms": float(np.percentile(latencies, 99) * 1000), "rps": (len(latencies) - errors) / seconds}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url", nargs="?", help="a running Kiln server (default: start one from --kiln in a scratch home)")
    parser.add_argument("--token", help="its token (with URL; default: KILN_TOKEN)")
    parser.add_argument("--kiln", default=".build/release/kiln")
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="kiln-serve-bench-")
    home = os.path.join(work, "home")
    os.makedirs(home)
    procs = []
    try:
        if args.url:
            url, token = args.url.rstrip("/"), args.token or os.environ.get("KILN_TOKEN", "")
        else:
            port = free_port()
            kiln = subprocess.Popen([args.kiln, "server", "--port", str(port), "--home", home], stdout=open(os.path.join(work, "kiln.log"), "wb"),
                                    stderr=subprocess.STDOUT, start_new_session=True)
            procs.append(kiln)
            url = f"http://127.0.0.1:{port}"
            wait(url, kiln)
            token = open(os.path.join(home, "admin.token")).read().strip()
        X, y = datasets.load_breast_cancer(return_X_y=True)
        df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
        df["label"] = y
        df.to_parquet(os.path.join(work, "bc.parquet"), index=False)
        # The table goes through the server's SQL-free path: kiln table write into the server's home when we started it,
        # else training reads it from a local table directory.
        table = "main.bench.bc" if not args.url else os.path.join(work, "bc_table")
        subprocess.run([args.kiln, "table", "write", table, "--from", os.path.join(work, "bc.parquet"), "--home", home], check=True,
                       capture_output=True)
        trained = subprocess.run([args.kiln, "train", "--url", url, "--token", token, "--table", table, "--target", "label", "--algorithm",
                                  "xgboost", "--register", "bench_bc", "--json"], check=True, capture_output=True, text=True)
        version = json.loads(trained.stdout)["registered_model_version"]
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        endpoint = f"bench-{os.getpid()}"
        r = requests.post(f"{url}/api/2.0/serving-endpoints", headers=auth,
                          json={"name": endpoint, "config": {"served_entities": [{"entity_name": "bench_bc", "entity_version": version,
                                                                                  "workload_size": "Large"}]}})
        r.raise_for_status()
        mport = free_port()
        env = dict(os.environ, MLFLOW_TRACKING_URI=url, MLFLOW_TRACKING_TOKEN=token)
        mlflow_proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/bench_bc/{version}", "--env-manager", "local",
                                        "--port", str(mport), "--host", "127.0.0.1"], env=env, stdout=open(os.path.join(work, "mlflow.log"), "wb"),
                                       stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(mlflow_proc)
        murl = f"http://127.0.0.1:{mport}"
        wait(murl, mlflow_proc, "/ping")
        features = df.drop(columns="label")
        rows = {1: features.head(1), 1000: pd.concat([features] * 2).head(1000)}
        results = []
        for batch, frame in rows.items():
            body = json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}})
            # Same answers from both before timing anything.
            a = requests.post(f"{url}/serving-endpoints/{endpoint}/invocations", headers=auth, data=body).json()["predictions"]
            b = requests.post(f"{murl}/invocations", headers={"Content-Type": "application/json"}, data=body).json()["predictions"]
            assert np.allclose(a, b, rtol=0, atol=0), "Kiln and mlflow answer differently"
            for concurrency in (1, 16, 64):
                k = load(url, f"/serving-endpoints/{endpoint}/invocations", auth, body, concurrency, args.seconds)
                m = load(murl, "/invocations", {"Content-Type": "application/json"}, body, concurrency, args.seconds)
                results.append({"batch": batch, "concurrency": concurrency, "kiln": k, "mlflow": m})
                print(f"batch {batch:5d} conc {concurrency:3d}: kiln p50 {k['p50_ms']:8.2f} ms p99 {k['p99_ms']:8.2f} ms {k['rps']:8.1f} req/s"
                      f" (errors {k['errors']}) | mlflow p50 {m['p50_ms']:8.2f} ms p99 {m['p99_ms']:8.2f} ms {m['rps']:7.1f} req/s"
                      f" (errors {m['errors']}) | p50 ratio {m['p50_ms'] / k['p50_ms']:6.1f}×  throughput ratio {k['rps'] / m['rps']:6.1f}×",
                      flush=True)
        print(json.dumps(results, indent=1))
        requests.delete(f"{url}/api/2.0/serving-endpoints/{endpoint}", headers=auth)
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=20)
            except Exception:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
