"""Two `kiln server` processes on one home (one store): ids come from the store, so neither hands out an id the
other already gave — job runs, task runs, numbers in a job, tracking runs and model versions."""
import concurrent.futures
import shutil
import tempfile
import time

import pytest
import requests

from conftest import TOKEN, KilnServer

H = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def servers():
    home = tempfile.mkdtemp(prefix="kiln-two-servers-")
    a = KilnServer(home).start()
    b = KilnServer(home).start()
    yield a, b
    a.stop()
    b.stop()
    shutil.rmtree(home, ignore_errors=True)


def post(server, path, body):
    r = requests.post(server.url + path, json=body, headers=H, timeout=60)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def get(server, path, **params):
    r = requests.get(server.url + path, params=params, headers=H, timeout=60)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def wait_terminated(server, run_id, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = get(server, "/api/2.1/jobs/runs/get", run_id=run_id)
        if run["state"]["life_cycle_state"] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


def test_job_run_ids_are_unique_across_two_servers(servers):
    a, b = servers
    tasks = [{"task_key": "check", "condition_task": {"op": "EQUAL_TO", "left": "1", "right": "1"}},
             {"task_key": "after", "depends_on": [{"task_key": "check", "outcome": "true"}],
              "condition_task": {"op": "GREATER_THAN", "left": "2", "right": "1"}}]
    job_id = post(a, "/api/2.1/jobs/create", {"name": "shared", "tasks": tasks, "max_concurrent_runs": 100})["job_id"]

    def submit(i):
        server = (a, b)[i % 2]
        return server, post(server, "/api/2.1/jobs/runs/submit", {"run_name": f"r{i}", "tasks": tasks})["run_id"]

    def run_now(i):
        server = (a, b)[i % 2]
        body = post(server, "/api/2.1/jobs/run-now", {"job_id": job_id})
        return server, body["run_id"], body["number_in_job"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        submitted = list(pool.map(submit, range(40)))
        started = list(pool.map(run_now, range(40)))

    run_ids = [r for _, r in submitted] + [r for _, r, _ in started]
    assert len(set(run_ids)) == len(run_ids) == 80
    numbers = sorted(n for _, _, n in started)
    assert numbers == list(range(1, 41)), "two servers gave runs of one job the same number_in_job"

    task_run_ids = []
    for server, run_id in [(s, r) for s, r in submitted] + [(s, r) for s, r, _ in started]:
        run = wait_terminated(server, run_id)
        assert run["state"]["result_state"] == "SUCCESS", run["state"]
        task_run_ids += [t["run_id"] for t in run["tasks"]]
        # The other server reads the same run from the shared store.
        other = b if server is a else a
        assert get(other, "/api/2.1/jobs/runs/get", run_id=run_id)["run_id"] == run_id
    assert len(task_run_ids) == 160
    assert len(set(task_run_ids + run_ids)) == 240, "a task run id collided with another run or task run id"


def test_tracking_ids_and_model_versions_are_unique_across_two_servers(servers):
    a, b = servers
    experiment_id = post(a, "/api/2.0/mlflow/experiments/create", {"name": "two-servers"})["experiment_id"]
    post(b, "/api/2.0/mlflow/registered-models/create", {"name": "shared-model"})
    source_run = post(a, "/api/2.0/mlflow/runs/create", {"experiment_id": experiment_id})["run"]["info"]
    artifact_path = source_run["artifact_uri"].split("mlflow-artifacts:/", 1)[1].lstrip("/")
    r = requests.put(f"{a.url}/api/2.0/mlflow-artifacts/artifacts/{artifact_path}/model/MLmodel", data=b"flavors: {}\n", headers=H)
    assert r.status_code == 200, r.text

    def create_run(i):
        server = (a, b)[i % 2]
        return post(server, "/api/2.0/mlflow/runs/create", {"experiment_id": experiment_id, "start_time": i})["run"]["info"]["run_id"]

    def create_version(i):
        server = (a, b)[i % 2]
        body = post(server, "/api/2.0/mlflow/model-versions/create",
                    {"name": "shared-model", "source": f"runs:/{source_run['run_id']}/model", "run_id": source_run["run_id"]})
        return body["model_version"]["version"]

    def create_experiment(i):
        return post((a, b)[i % 2], "/api/2.0/mlflow/experiments/create", {"name": f"exp-{i}"})["experiment_id"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(create_run, range(60)))
        versions = list(pool.map(create_version, range(30)))
        experiments = list(pool.map(create_experiment, range(20)))
    assert len(set(runs)) == 60
    assert len(set(experiments)) == 20 and experiment_id not in experiments
    assert sorted(int(v) for v in versions) == list(range(1, 31))
    listed = post(a, "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id], "max_results": 1000})["runs"]
    assert len(listed) == 61
