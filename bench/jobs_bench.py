"""Jobs: throughput of a 1,000-task DAG of trivial native tasks, and task start latency for native tasks and Python
processes, next to the floor a user gets without an orchestrator (spawning `python3` directly).

    make release && python3 bench/jobs_bench.py --kiln .build/release/kiln

Task start latency is measured from a task's upstream end (the server's end_time) to the moment the task's code ran:
the server's start_time for a native task, the first line of the script (time.time()) for a Python task. The
targets from issue P8: native < 50 ms, Python < 300 ms.
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import requests

TOKEN = "bench-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(kiln, home):
    port = free_port()
    proc = subprocess.Popen([kiln, "server", "--host", "127.0.0.1", "--port", str(port), "--home", home],
                            env=dict(os.environ, KILN_ADMIN_TOKEN=TOKEN, KILN_LOG_LEVEL="warning"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(url + "/health", timeout=1).ok:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError("kiln server did not start")


class Api:
    def __init__(self, url):
        self.url = url
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {TOKEN}"

    def post(self, path, body):
        r = self.s.post(f"{self.url}/api/2.2/jobs/{path}", json=body)
        r.raise_for_status()
        return r.json()

    def get(self, path, **params):
        r = self.s.get(f"{self.url}/api/2.2/jobs/{path}", params=params)
        r.raise_for_status()
        return r.json()

    def run(self, tasks):
        job = self.post("create", {"name": "bench", "tasks": tasks, "max_concurrent_runs": 1})["job_id"]
        started = time.time()
        run_id = self.post("run-now", {"job_id": job})["run_id"]
        while True:
            run = self.get("runs/get", run_id=run_id)
            if run["state"]["life_cycle_state"] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
                break
            time.sleep(0.02)
        assert run["state"]["result_state"] == "SUCCESS", run["state"]
        return run, time.time() - started


def native(key, deps=()):
    return {"task_key": key, "depends_on": [{"task_key": d} for d in deps],
            "condition_task": {"op": "EQUAL_TO", "left": "{{job.id}}", "right": "{{job.id}}"}}


def dag_throughput(api, layers=10, width=100):
    """1,000 tasks in 10 layers of 100; each task depends on two of the layer before."""
    tasks = []
    for layer in range(layers):
        for i in range(width):
            deps = () if layer == 0 else (f"t{layer - 1}_{i}", f"t{layer - 1}_{(i + 1) % width}")
            tasks.append(native(f"t{layer}_{i}", deps))
    run, seconds = api.run(tasks)
    assert len(run["tasks"]) == layers * width
    return layers * width, seconds


def chain_latency(api, n, make):
    run, _ = api.run([make(k) for k in range(n)])
    by_key = {t["task_key"]: t for t in run["tasks"]}
    return [by_key[f"c{k}"] for k in range(n)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=".build/release/kiln" if os.path.exists(".build/release/kiln") else ".build/debug/kiln")
    parser.add_argument("--python-tasks", type=int, default=30)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="kiln-jobs-bench-")
    proc, url = start_server(args.kiln, home)
    api = Api(url)
    try:
        api.run([native("warm")])
        count, seconds = dag_throughput(api)
        print(f"1,000-task DAG of native tasks: {seconds:.2f} s, {count / seconds:,.0f} tasks/s")

        chain = chain_latency(api, 100, lambda k: native(f"c{k}", [f"c{k - 1}"] if k else []))
        native_gaps = [chain[k]["start_time"] - chain[k - 1]["end_time"] for k in range(1, len(chain))]
        print(f"native task start latency (100-task chain): median {statistics.median(native_gaps):.1f} ms, "
              f"p95 {sorted(native_gaps)[int(0.95 * len(native_gaps))]:.1f} ms, max {max(native_gaps):.1f} ms (target < 50 ms)")

        script = os.path.join(home, "stamp.py")
        with open(script, "w") as f:
            f.write("import time\nT0 = time.time()\nimport os\nopen(os.environ['KILN_TASK_VALUES_FILE'], 'w').write('{\"t0\": %r}' % T0)\n")

        def python_task(k):
            return {"task_key": f"c{k}", "depends_on": [{"task_key": f"c{k - 1}"}] if k else [], "spark_python_task": {"python_file": script}}

        n = args.python_tasks
        chain = chain_latency(api, n, python_task)
        t0 = [float(api.get("runs/get-output", run_id=t["run_id"])["task_values"]["t0"]) * 1000 for t in chain]
        python_gaps = [t0[k] - chain[k - 1]["end_time"] for k in range(1, n)]
        spawn = []
        for _ in range(n):
            begin = time.time()
            out = subprocess.run([sys.executable if os.path.basename(sys.executable).startswith("python") else "python3", "-c",
                                  "import time; print(time.time())"], capture_output=True, text=True)
            spawn.append(float(out.stdout) * 1000 - begin * 1000)
        py_median, floor = statistics.median(python_gaps), statistics.median(spawn)
        print(f"python task start latency ({n}-task chain): median {py_median:.1f} ms, p95 {sorted(python_gaps)[int(0.95 * len(python_gaps))]:.1f} ms "
              f"(target < 300 ms); spawning python directly: median {floor:.1f} ms -> Kiln adds {py_median - floor:.1f} ms "
              f"({py_median / floor:.2f}x the bare spawn)")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
