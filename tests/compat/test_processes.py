"""Processes Kiln starts never outlive it: the `mlflow models serve` scorer of a Python-flavored endpoint (and the
uvicorn it runs) is gone after the server stops on SIGTERM and after it is SIGKILLed; children start with no blocked
signals; a job task process stops on a plain SIGTERM."""
import os
import signal
import tempfile
import time

import mlflow
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.jobs import SparkPythonTask, Task
from databricks.sdk.service.serving import DataframeSplitInput, EndpointCoreConfigInput, ServedEntityInput
from sklearn import datasets
from sklearn.linear_model import Ridge

from conftest import TOKEN, KilnServer

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def stat(pid):
    """(ppid, state) of a live process, or None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return None if fields[0] in "ZX" else (int(fields[1]), fields[0])


def descendants(root):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := stat(int(entry))):
            children.setdefault(info[0], []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def blocked_signals(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigBlk:"):
                return int(line.split()[1], 16)
    return 0


def command(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


def wait_gone(pids, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        alive = [p for p in pids if stat(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return [(p, command(p)) for p in pids if stat(p)]


def serve_python_model(server):
    mlflow.set_tracking_uri(server.url)
    os.environ.update(MLFLOW_TRACKING_TOKEN=TOKEN)
    X, y = datasets.load_diabetes(return_X_y=True, as_frame=True)
    if not requests.get(f"{server.url}/api/2.0/serving-endpoints/sk", headers=AUTH).ok:
        mlflow.set_experiment("processes")
        with mlflow.start_run():
            mlflow.sklearn.log_model(Ridge().fit(X, y), name="model", registered_model_name="sk_proc", input_example=X.head(2))
        w = WorkspaceClient(host=server.url, token=TOKEN, auth_type="pat")
        w.serving_endpoints.create_and_wait(name="sk", config=EndpointCoreConfigInput(
            name="sk", served_entities=[ServedEntityInput(entity_name="sk_proc", entity_version="1", workload_size="Small")]))
    # A request loads the model when the endpoint is not warm yet (after a restart).
    body = {"dataframe_split": {"columns": list(X.columns), "data": X.head(2).values.tolist()}}
    deadline = time.time() + 240
    while time.time() < deadline:
        response = requests.post(f"{server.url}/serving-endpoints/sk/invocations", headers=AUTH, json=body, timeout=240)
        if response.status_code == 200:
            break
        time.sleep(0.5)
    assert response.status_code == 200, response.text
    children = descendants(server.proc.pid)
    scorers = [p for p in children if "mlflow" in command(p) or "uvicorn" in command(p)]
    assert scorers, [command(p) for p in children]
    return children


def test_scorers_do_not_outlive_the_server_on_sigterm_or_sigkill():
    home = tempfile.mkdtemp(prefix="kiln-processes-")
    server = KilnServer(home).start()
    try:
        children = serve_python_model(server)
        for pid in children:
            # Nothing blocked: SIGTERM (bit 15) and SIGINT (bit 2) above all.
            assert blocked_signals(pid) & ((1 << 14) | (1 << 1)) == 0, (command(pid), hex(blocked_signals(pid)))
        server.stop()
        assert wait_gone(children) == []

        server.start()
        children = serve_python_model(server)
        server.kill()
        assert wait_gone(children) == []
    finally:
        server.stop()


def test_a_job_task_process_stops_on_sigterm(tmp_path):
    home = tempfile.mkdtemp(prefix="kiln-task-signals-")
    server = KilnServer(home).start()
    try:
        w = WorkspaceClient(host=server.url, token=TOKEN, auth_type="pat")
        script = tmp_path / "sleepy.py"
        script.write_text("import time\nprint('started', flush=True)\ntime.sleep(300)\n")
        job = w.jobs.create(name="sleepy", tasks=[Task(task_key="sleep", spark_python_task=SparkPythonTask(python_file=str(script)))])
        run = w.jobs.run_now(job.job_id)
        deadline = time.time() + 60
        task = []
        while time.time() < deadline and not task:
            task = [p for p in descendants(server.proc.pid) if str(script) in command(p) and "python" in command(p).split()[0]]
            time.sleep(0.1)
        assert task, "the task process did not start"
        assert blocked_signals(task[0]) & ((1 << 14) | (1 << 1)) == 0
        os.kill(task[0], signal.SIGTERM)
        assert wait_gone(task, timeout=10) == []
        finished = w.jobs.wait_get_run_job_terminated_or_skipped(run.run_id)
        assert finished.state.result_state.value == "FAILED"
    finally:
        server.stop()
