"""Every text a client sends has a documented maximum (docs/limits.md): over it, a 400 INVALID_PARAMETER_VALUE that
names the field and the limit, and nothing is written. Null where a string is required is a 400 as well."""
import os
import random

import pytest
import requests

from conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def unique(prefix):
    return f"{prefix}-{random.randrange(1 << 30)}"


@pytest.fixture(scope="module")
def api(kiln):
    session = requests.Session()
    session.headers.update(AUTH)

    def call(method, path, body=None, **params):
        return session.request(method, kiln.url + path, json=body, params=params or None)
    return call


def refused(response, *words):
    assert response.status_code == 400, (response.status_code, response.text[:300])
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
    for word in words:
        assert word in body["message"], (word, body["message"][:300])


def test_tracking_limits(api):
    name = unique("limits")
    refused(api("POST", "/api/2.0/mlflow/experiments/create", {"name": "e" * 501}), "500")
    experiment = api("POST", "/api/2.0/mlflow/experiments/create", {"name": name}).json()["experiment_id"]
    # mlflow's limit for experiment tags is 20,000 characters (8,000 for run tags).
    assert api("POST", "/api/2.0/mlflow/experiments/set-experiment-tag", {"experiment_id": experiment, "key": "k", "value": "v" * 20000}).ok
    refused(api("POST", "/api/2.0/mlflow/experiments/set-experiment-tag", {"experiment_id": experiment, "key": "k", "value": "v" * 20001}), "20000")
    before = api("POST", "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment]}).json().get("runs", [])
    refused(api("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": experiment, "run_name": "r" * 251}), "run_name", "250")
    refused(api("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": experiment, "tags": [{"key": "mlflow.runName", "value": "r" * 251}]}), "250")
    assert api("POST", "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment]}).json().get("runs", []) == before
    run = api("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": experiment, "run_name": "ok"}).json()["run"]["info"]["run_id"]
    refused(api("POST", "/api/2.0/mlflow/runs/update", {"run_id": run, "run_name": "r" * 251}), "run_name", "250")
    refused(api("POST", "/api/2.0/mlflow/runs/set-tag", {"run_id": run, "key": "mlflow.runName", "value": "r" * 251}), "250")
    refused(api("POST", "/api/2.0/mlflow/runs/log-parameter", {"run_id": run, "key": "p", "value": "x" * 6001}), "6000")
    refused(api("POST", "/api/2.0/mlflow/runs/log-parameter", {"run_id": run, "key": "p", "value": None}), "value")
    refused(api("POST", "/api/2.0/mlflow/runs/set-tag", {"run_id": run, "key": "t", "value": "x" * 8001}), "8000")
    refused(api("POST", "/api/2.0/mlflow/runs/set-tag", {"run_id": run, "key": "k" * 251, "value": "x"}), "250")
    got = api("GET", "/api/2.0/mlflow/runs/get", run_id=run).json()["run"]
    assert got["info"]["run_name"] == "ok" and "params" not in got["data"]
    assert {t["key"] for t in got["data"].get("tags", [])} == {"mlflow.runName"}


def test_registry_limits(api):
    name = unique("limits")
    refused(api("POST", "/api/2.0/mlflow/registered-models/create", {"name": "m" * 257}), "256")
    refused(api("POST", "/api/2.0/mlflow/registered-models/create", {"name": name, "description": "d" * 5001}), "description", "5000")
    assert api("GET", "/api/2.0/mlflow/registered-models/get", name=name).status_code == 404
    assert api("POST", "/api/2.0/mlflow/registered-models/create", {"name": name, "description": "short"}).ok
    refused(api("PATCH", "/api/2.0/mlflow/registered-models/update", {"name": name, "description": "d" * 5001}), "description", "5000")
    refused(api("POST", "/api/2.0/mlflow/model-versions/create", {"name": name, "source": "s3://b/m", "description": "d" * 5001}), "5000")
    refused(api("POST", "/api/2.0/mlflow/registered-models/set-tag", {"name": name, "key": "k", "value": "v" * 100001}), "100000")
    refused(api("POST", "/api/2.0/mlflow/model-versions/create", {"name": name, "source": None}), "source")
    model = api("GET", "/api/2.0/mlflow/registered-models/get", name=name).json()["registered_model"]
    assert model["description"] == "short" and "latest_versions" not in model and "tags" not in model
    assert api("POST", "/api/2.0/mlflow/model-versions/create", {"name": name, "source": "s3://b/m"}).ok
    refused(api("POST", "/api/2.0/mlflow/registered-models/alias", {"name": name, "alias": "a" * 256, "version": "1"}), "alias", "255")
    refused(api("PATCH", "/api/2.0/mlflow/model-versions/update", {"name": name, "version": "1", "description": "d" * 5001}), "5000")


def test_job_endpoint_and_table_limits(api, kiln):
    task = [{"task_key": "t", "shell_command_task": {"command": "true"}}]
    name = unique("limits")
    refused(api("POST", "/api/2.1/jobs/create", {"name": "j" * 4097, "tasks": task}), "name", "4096")
    refused(api("POST", "/api/2.1/jobs/create", {"name": name, "description": "d" * 27701, "tasks": task}), "description", "27700")
    refused(api("POST", "/api/2.1/jobs/create", {"name": name, "tags": {"k" * 128: "v"}, "tasks": task}), "127")
    refused(api("POST", "/api/2.1/jobs/create", {"name": name, "tags": {"k": "v" * 256}, "tasks": task}), "255")
    refused(api("POST", "/api/2.1/jobs/create", {"name": name, "tasks": [{"task_key": "t" * 101, "shell_command_task": {"command": "true"}}]}), "100")
    assert not [j for j in api("GET", "/api/2.1/jobs/list", name=name).json().get("jobs", [])]
    job = api("POST", "/api/2.1/jobs/create", {"name": name, "tasks": task}).json()["job_id"]
    refused(api("POST", "/api/2.1/jobs/update", {"job_id": job, "new_settings": {"name": "j" * 4097}}), "4096")
    assert api("GET", "/api/2.1/jobs/get", job_id=job).json()["settings"]["name"] == name

    refused(api("POST", "/api/2.0/serving-endpoints", {"name": "e" * 64, "config": {"served_entities": []}}), "63")
    refused(api("POST", "/api/2.0/serving-endpoints", {"name": None, "config": {}}), "name")

    long_table = "t" * 256
    statement = api("POST", "/api/2.0/sql/statements", {"statement": f"CREATE TABLE main.default.{long_table} (x INT)",
                                                         "warehouse_id": "kiln", "wait_timeout": "30s"}).json()
    assert statement["status"]["state"] == "FAILED" and "255" in statement["status"]["error"]["message"]
    assert not os.path.exists(os.path.join(kiln.home, "warehouse", "main", "default", long_table))
    statement = api("POST", "/api/2.0/sql/statements", {"statement": "CREATE TABLE main.`..`.escape (x INT)",
                                                         "warehouse_id": "kiln", "wait_timeout": "30s"}).json()
    assert statement["status"]["state"] == "FAILED"
    assert not os.path.exists(os.path.join(kiln.home, "warehouse", "escape"))
    refused(api("POST", "/api/2.0/sql/statements", {"statement": None, "warehouse_id": "kiln"}), "statement")
