#!/usr/bin/env python3
"""What governance costs on the hot paths: the same calls against two Kiln binaries (before and after identities,
audit and grants), and, on the new one, the same statement as an admin (no grant check) and as a user whose access
comes from grants (the full check). Prints p50s and ratios.

    python bench/authz_bench.py --kiln NEW_BIN [--base OLD_BIN] [--rounds 2000]

With --hot (and --base a build from before governance, which has only the admin token): the issue's hot paths —
log_metric, search_runs, a single-row serving query and a 5M-row scan — on the base as its admin and on the new
build as a signed-in user whose access comes from grants and object lists (every check on), the pair run --repeats
times interleaved; prints the median p50s and new/base ratios.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

TOKEN = "bench-admin-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary):
        self.home = tempfile.mkdtemp(prefix="kiln-authz-bench-")
        self.port = free_port()
        self.proc = subprocess.Popen([binary, "server", "--host", "127.0.0.1", "--port", str(self.port), "--home", self.home],
                                     env=dict(os.environ, KILN_ADMIN_TOKEN=TOKEN), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)
        shutil.rmtree(self.home, ignore_errors=True)


class Conn:
    def __init__(self, port, token):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.c.connect()
        self.c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        self.c.request(method, path, body=json.dumps(body) if body is not None else None, headers=self.h)
        r = self.c.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:300]!r}")
        return json.loads(data) if data else {}


def p50(fn, rounds):
    for _ in range(min(100, rounds // 10)):
        fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def tracking(port, rounds, token=TOKEN):
    c = Conn(port, token)
    exp = c.call("POST", "/api/2.0/mlflow/experiments/create", {"name": f"b-{uuid.uuid4().hex[:6]}"})["experiment_id"]
    run = c.call("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": exp})["run"]["info"]["run_id"]
    for i in range(200):
        r = c.call("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": exp})["run"]["info"]["run_id"]
        c.call("POST", "/api/2.0/mlflow/runs/log-metric", {"run_id": r, "key": "loss", "value": i / 7, "timestamp": 1, "step": 0})
    step = [0]

    def log():
        step[0] += 1
        c.call("POST", "/api/2.0/mlflow/runs/log-metric", {"run_id": run, "key": "loss", "value": 0.5, "timestamp": 1, "step": step[0]})

    def search():
        c.call("POST", "/api/2.0/mlflow/runs/search", {"experiment_ids": [exp], "max_results": 100, "filter": "metrics.loss < 10"})
    return {"log_metric_ms": p50(log, rounds), "search_runs_ms": p50(search, max(50, rounds // 10))}


def statements(port, rounds):
    admin = Conn(port, TOKEN)
    admin.call("POST", "/api/2.0/sql/statements", {"statement": "CREATE TABLE main.default.bench AS SELECT * FROM range(1000)", "warehouse_id": "k"})
    name = f"u-{uuid.uuid4().hex[:6]}@example.com"
    admin.call("POST", "/api/2.0/preview/scim/v2/Users", {"userName": name})
    token = admin.call("POST", "/api/2.0/token-management/on-behalf-of/tokens", {"user_name": name})["token_value"]
    for sql in [f"GRANT USE CATALOG ON CATALOG main TO `{name}`", f"GRANT USE SCHEMA, SELECT ON SCHEMA main.default TO `{name}`"]:
        admin.call("POST", "/api/2.0/sql/statements", {"statement": sql, "warehouse_id": "k"})
    user = Conn(port, token)
    body = {"statement": "SELECT COUNT(*) FROM main.default.bench", "warehouse_id": "k", "wait_timeout": "30s"}
    return {"sql_admin_ms": p50(lambda: admin.call("POST", "/api/2.0/sql/statements", body), rounds // 4),
            "sql_granted_user_ms": p50(lambda: user.call("POST", "/api/2.0/sql/statements", body), rounds // 4),
            "uc_get_table_admin_ms": p50(lambda: admin.call("GET", "/api/2.1/unity-catalog/tables/main.default.bench"), rounds // 4),
            "uc_get_table_user_ms": p50(lambda: user.call("GET", "/api/2.1/unity-catalog/tables/main.default.bench"), rounds // 4),
            "token_me_ms": p50(lambda: user.call("GET", "/api/2.0/preview/scim/v2/Me"), rounds // 4)}


def workspace(port, rounds):
    """The object-permission checks: the same log_metric, search and single-row serving query as the admin (no check)
    and as a user whose access comes from the experiment's and the endpoint's lists."""
    admin = Conn(port, TOKEN)
    name = f"w-{uuid.uuid4().hex[:6]}@example.com"
    admin.call("POST", "/api/2.0/preview/scim/v2/Users", {"userName": name})
    user_token = admin.call("POST", "/api/2.0/token-management/on-behalf-of/tokens", {"user_name": name})["token_value"]
    user = Conn(port, user_token)
    out = {}
    for label, token in [("admin", TOKEN), ("user", user_token)]:
        r = tracking(port, rounds, token)
        out[f"log_metric_{label}_ms"], out[f"search_runs_{label}_ms"] = r["log_metric_ms"], r["search_runs_ms"]
    admin.call("POST", "/api/2.0/sql/statements", {"statement": "CREATE TABLE main.default.wbench AS SELECT id AS x, id % 2 AS label FROM range(1000)",
                                                   "warehouse_id": "k"})
    admin.call("POST", "/api/2.0/kiln/train", {"table": "main.default.wbench", "target": "label", "algorithm": "logistic", "features": ["x"],
                                               "register": "wbench"})
    admin.call("POST", "/api/2.0/serving-endpoints", {"name": "wbench", "config": {"served_entities": [
        {"entity_name": "wbench", "entity_version": "1", "workload_size": "Small", "scale_to_zero_enabled": True}]}})
    for _ in range(200):
        if admin.call("GET", "/api/2.0/serving-endpoints/wbench").get("state", {}).get("ready") == "READY":
            break
        time.sleep(0.1)
    admin.call("PATCH", "/api/2.0/permissions/serving-endpoints/wbench", {"access_control_list": [{"user_name": name, "permission_level": "CAN_QUERY"}]})
    row = {"dataframe_split": {"columns": ["x"], "data": [[3.0]]}}
    out["serving_admin_ms"] = p50(lambda: admin.call("POST", "/serving-endpoints/wbench/invocations", row), rounds)
    out["serving_user_ms"] = p50(lambda: user.call("POST", "/serving-endpoints/wbench/invocations", row), rounds)
    return out


def hot_paths(port, rounds, as_user, scan_rows):
    """log_metric, search_runs, single-row serving and a full scan of a scan_rows-row table. With as_user, a new user
    does them: it owns the experiment, holds CAN_QUERY on the endpoint and USE/SELECT on the table."""
    admin = Conn(port, TOKEN)
    token = TOKEN
    if as_user:
        name = f"h-{uuid.uuid4().hex[:6]}@example.com"
        admin.call("POST", "/api/2.0/preview/scim/v2/Users", {"userName": name})
        token = admin.call("POST", "/api/2.0/token-management/on-behalf-of/tokens", {"user_name": name})["token_value"]
    caller = Conn(port, token)
    admin.call("POST", "/api/2.0/sql/statements", {"statement": "CREATE TABLE main.default.hot AS SELECT id AS x, id % 2 AS label FROM range(1000)",
                                                   "warehouse_id": "k", "wait_timeout": "50s"})
    admin.call("POST", "/api/2.0/kiln/train", {"table": "main.default.hot", "target": "label", "algorithm": "logistic", "features": ["x"],
                                               "register": "hot"})
    admin.call("POST", "/api/2.0/serving-endpoints", {"name": "hot", "config": {"served_entities": [
        {"entity_name": "hot", "entity_version": "1", "workload_size": "Small", "scale_to_zero_enabled": True}]}})
    for _ in range(200):
        if admin.call("GET", "/api/2.0/serving-endpoints/hot").get("state", {}).get("ready") == "READY":
            break
        time.sleep(0.1)
    admin.call("POST", "/api/2.0/sql/statements", {"statement": f"CREATE TABLE main.default.scan AS SELECT id, id * 2 AS x FROM range({scan_rows})",
                                                   "warehouse_id": "k", "wait_timeout": "50s"})
    if as_user:
        admin.call("PATCH", "/api/2.0/permissions/serving-endpoints/hot", {"access_control_list": [{"user_name": name, "permission_level": "CAN_QUERY"}]})
        for sql in [f"GRANT USE CATALOG ON CATALOG main TO `{name}`", f"GRANT USE SCHEMA ON SCHEMA main.default TO `{name}`",
                    f"GRANT SELECT ON TABLE main.default.scan TO `{name}`"]:
            admin.call("POST", "/api/2.0/sql/statements", {"statement": sql, "warehouse_id": "k"})
    row = {"dataframe_split": {"columns": ["x"], "data": [[3.0]]}}
    scan = {"statement": "SELECT sum(x), count(*) FROM main.default.scan WHERE id % 7 = 3", "warehouse_id": "k", "wait_timeout": "50s"}
    # Blocks of each call in turn, the median of the blocks' p50s: one slow stretch of the machine moves one block.
    blocks = {"log_metric_ms": [], "search_runs_ms": [], "serving_ms": [], "scan_5m_ms": []}
    for _ in range(5):
        r = tracking(port, rounds, token)
        blocks["log_metric_ms"].append(r["log_metric_ms"])
        blocks["search_runs_ms"].append(r["search_runs_ms"])
        blocks["serving_ms"].append(p50(lambda: caller.call("POST", "/serving-endpoints/hot/invocations", row), rounds))
        blocks["scan_5m_ms"].append(p50(lambda: caller.call("POST", "/api/2.0/sql/statements", scan), 5))
    return {k: statistics.median(v) for k, v in blocks.items()}


def hot(args):
    """base as its admin; new as its admin (audited, no lookups) and as a granted user (audited, every check)."""
    runs = [("base", args.base, False), ("new_admin", args.kiln, False), ("new_user", args.kiln, True)]
    results = {label: [] for label, _, _ in runs}
    for _ in range(args.repeats):
        for label, binary, as_user in runs:
            s = Server(binary)
            try:
                results[label].append(hot_paths(s.port, args.rounds, as_user, args.scan_rows))
            finally:
                s.stop()
    print(json.dumps(results, indent=1))
    for key in results["base"][0]:
        b, a, u = (statistics.median(r[key] for r in results[label]) for label in ["base", "new_admin", "new_user"])
        print(f"{key}: base {b:.3f} ms | new as admin {a:.3f} ms ({a / b:.3f}x base) | new as user {u:.3f} ms ({u / b:.3f}x base, "
              f"{u / a:.3f}x admin: the checks {u - a:+.3f} ms)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiln", required=True)
    parser.add_argument("--base")
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workspace", action="store_true", help="also measure object permissions (needs a build that has them)")
    parser.add_argument("--hot", action="store_true", help="the hot paths: base as admin vs new as a granted user")
    parser.add_argument("--scan-rows", type=int, default=5_000_000)
    args = parser.parse_args()
    if args.hot:
        return hot(args)
    results = {"new": [], "base": []}
    for _ in range(args.repeats):
        for label, binary in [("base", args.base), ("new", args.kiln)]:
            if not binary:
                continue
            s = Server(binary)
            try:
                r = tracking(s.port, args.rounds)
                if label == "new":
                    r.update(statements(s.port, args.rounds))
                    if args.workspace:
                        r.update(workspace(s.port, args.rounds))
                results[label].append(r)
            finally:
                s.stop()
    def best(label, key):
        return min(r[key] for r in results[label])
    new = {k: round(best("new", k), 3) for k in results["new"][0]}
    print(json.dumps({"new_p50_ms_best_of_runs": new}, indent=1))
    if results["base"]:
        for key in ["log_metric_ms", "search_runs_ms"]:
            print(f"{key}: base {best('base', key):.3f} ms, new {best('new', key):.3f} ms, new/base {best('new', key) / best('base', key):.3f}")
    print(f"grant check on a SQL statement: {new['sql_granted_user_ms'] - new['sql_admin_ms']:+.3f} ms "
          f"({new['sql_granted_user_ms'] / new['sql_admin_ms']:.3f}x the admin's p50)")
    print(f"grant check on UC tables/get: {new['uc_get_table_user_ms'] - new['uc_get_table_admin_ms']:+.3f} ms")
    for call in ["log_metric", "search_runs", "serving"] if "serving_user_ms" in new else []:
        a, u = new[f"{call}_admin_ms"], new[f"{call}_user_ms"]
        print(f"object permission check on {call}: admin {a:.3f} ms, user {u:.3f} ms, {u - a:+.3f} ms ({u / a:.3f}x)")


if __name__ == "__main__":
    main()
