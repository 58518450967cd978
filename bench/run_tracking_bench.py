#!/usr/bin/env python3
"""Runs tracking_bench.py against kiln and mlflow server (default workers and --workers 1), and the Go
backend where it installs, in one run on the same machine, and prints figures and ratios.

    python bench/run_tracking_bench.py --kiln .build/release/kiln [--quick]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "bench-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_kib(pid):
    """Resident memory of a process and all its descendants, in KiB."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(parts[1]), []).append(int(entry))
        except OSError:
            continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
        stack.extend(children.get(p, []))
    return total


class Server:
    def __init__(self, name, argv, env=None, token=None):
        self.name, self.argv, self.env, self.token = name, argv, env, token
        self.peak = 0
        self.proc = None

    def start(self, port, workdir):
        t = time.perf_counter()
        self.log = open(os.path.join(workdir, f"{self.name.replace(' ', '_')}.log"), "wb")
        self.proc = subprocess.Popen(self.argv, env=dict(os.environ, **(self.env or {})), stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log.name}")
            try:
                if requests.get(url + "/health", timeout=0.5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.01)
        self.cold_start = time.perf_counter() - t
        self.url = url
        self.sampling = True
        threading.Thread(target=self.sample, daemon=True).start()
        return self

    def sample(self):
        while self.sampling:
            self.peak = max(self.peak, tree_rss_kib(self.proc.pid))
            time.sleep(0.2)

    def stop(self):
        self.sampling = False
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except Exception:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def run_bench(server, mode, args):
    cmd = [sys.executable, os.path.join(HERE, "tracking_bench.py"), server.url, "--mode", mode,
           "--runs", str(args.runs), "--singles", str(args.singles), "--batches", str(args.batches),
           "--history", str(args.history), "--repeats", str(args.repeats), "--registry-rounds", str(args.registry_rounds)]
    if server.token:
        cmd += ["--token", server.token]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"bench against {server.name} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=os.path.join(os.path.dirname(HERE), ".build", "release", "kiln"))
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--skip-default-workers", action="store_true")
    parser.add_argument("--go-python", default=os.environ.get("MLFLOW_GO_PYTHON"),
                        help="a Python whose environment has mlflow-go-backend (keep it in its own venv: it replaces "
                             "mlflow's sqlite store entry point); see bench/README.md")
    args = parser.parse_args()
    args.kiln = os.path.abspath(args.kiln)
    args.runs, args.singles, args.batches, args.history, args.repeats, args.registry_rounds = (
        (300, 200, 5, 2000, 5, 10) if args.quick else (2000, 1000, 50, 10000, 20, 100))

    work = tempfile.mkdtemp(prefix="kiln-bench-")
    servers = []
    port = free_port()
    servers.append(("kiln", lambda p: Server("kiln", [args.kiln, "server", "--port", str(p), "--home", os.path.join(work, "kiln-home")],
                                             env={"KILN_ADMIN_TOKEN": TOKEN, "KILN_LOG_LEVEL": "warning"}, token=TOKEN)))
    mlflow = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
    servers.append(("mlflow --workers 1", lambda p: Server("mlflow-w1", mlflow + ["--port", str(p), "--workers", "1",
                    "--backend-store-uri", f"sqlite:///{work}/mlflow-w1.db", "--artifacts-destination", f"{work}/mlflow-w1-art"])))
    if not args.skip_default_workers:
        servers.append(("mlflow (default workers)", lambda p: Server("mlflow-default", mlflow + ["--port", str(p),
                        "--backend-store-uri", f"sqlite:///{work}/mlflow-default.db", "--artifacts-destination", f"{work}/mlflow-default-art"])))
    if args.go_python:
        go_cli = os.path.join(os.path.dirname(args.go_python), "mlflow-go")
        servers.append(("mlflow-go-backend", lambda p: Server("mlflow-go", [go_cli, "server", "--host", "127.0.0.1", "--port", str(p),
                        "--workers", "1", "--backend-store-uri", f"sqlite:///{work}/mlflow-go.db",
                        "--default-artifact-root", f"{work}/mlflow-go-art"])))
    else:
        print("no --go-python given: skipping mlflow-go-backend", file=sys.stderr)

    table = {}
    for name, make in servers:
        port = free_port()
        server = make(port)
        try:
            server.start(port, work)
        except RuntimeError as error:
            print(f"{name}: could not start ({error})", file=sys.stderr)
            continue
        try:
            row = {"cold_start_s": server.cold_start}
            for mode in ("raw", "client"):
                row[mode] = run_bench(server, mode, args)
                print(f"{name} [{mode}]: {json.dumps(row[mode])}", file=sys.stderr)
            row["peak_rss_mib"] = server.peak / 1024
            table[name] = row
        finally:
            server.stop()
    shutil.rmtree(work, ignore_errors=True)

    metrics = [("log_metric_per_s", "single log_metric req/s", True), ("log_batch_metrics_per_s", "log_batch metrics/s", True),
               ("search_p50_ms", "search_runs p50 ms", False), ("search_p95_ms", "search_runs p95 ms", False),
               ("history_p50_ms", "get_metric_history 10k p50 ms", False),
               ("registry_ops_per_s", "registry ops/s", True)]
    names = list(table)
    print(f"\n{'figure':34}" + "".join(f"{n:>26}" for n in names))
    for mode in ("raw", "client"):
        for key, label, _ in metrics:
            print(f"{label + ' (' + mode + ')':34}" + "".join(f"{table[n][mode][key]:>26.1f}" for n in names))
    print(f"{'peak RSS MiB':34}" + "".join(f"{table[n]['peak_rss_mib']:>26.1f}" for n in names))
    print(f"{'cold start to /health s':34}" + "".join(f"{table[n]['cold_start_s']:>26.2f}" for n in names))
    if "kiln" in table:
        print("\nRatios (kiln vs peer; >1 means kiln is better)")
        for peer in names[1:]:
            for mode in ("raw", "client"):
                parts = []
                for key, label, higher in metrics:
                    a, b = table["kiln"][mode][key], table[peer][mode][key]
                    parts.append(f"{label}: {a / b if higher else b / a:.1f}x")
                print(f"  vs {peer} [{mode}]: " + "; ".join(parts))
            print(f"  vs {peer}: memory {table[peer]['peak_rss_mib'] / table['kiln']['peak_rss_mib']:.1f}x less; "
                  f"cold start {table[peer]['cold_start_s'] / table['kiln']['cold_start_s']:.1f}x faster")
        # Through the stock client, each call also pays the client's own work (building protos, parsing the answer),
        # the same for every server. Kiln's client time minus its raw time estimates it; no server, however fast,
        # can show a client ratio above peer client time / that work.
        print("\nThe stock client's own work per operation (kiln client − kiln raw) and the client ratio it allows at most")
        for peer in names[1:]:
            parts = []
            for key, label, higher in metrics:
                def per_op(v):
                    return 1 / v if higher else v
                own = per_op(table["kiln"]["client"][key]) - per_op(table["kiln"]["raw"][key])
                if own > 0:
                    parts.append(f"{label}: ≤ {per_op(table[peer]['client'][key]) / own:.1f}x")
            print(f"  vs {peer} [client]: " + "; ".join(parts))


if __name__ == "__main__":
    main()
