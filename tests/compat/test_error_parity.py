"""Errors the stock client branches on answer as mlflow server answers them (status and error_code), side by side on
the same sequence of calls; the deliberate deviations listed in docs/tracking.md are checked to be what it says."""
import random

import requests

from conftest import TOKEN

# (method, path, body or query) — run in order on both servers; {m} is a fresh registered model name.
CALLS = [
    ("POST", "registered-models/create", {"name": "{m}"}),
    ("POST", "model-versions/create", {"name": "{m}", "source": "s3://b/x"}),
    ("GET", "registered-models/alias", {"name": "{m}", "alias": "nope"}),
    ("POST", "registered-models/alias", {"name": "{m}", "alias": "champ", "version": "1"}),
    ("GET", "registered-models/alias", {"name": "{m}", "alias": "champ"}),
    ("DELETE", "registered-models/alias", {"name": "{m}", "alias": "champ"}),
    ("GET", "registered-models/alias", {"name": "{m}", "alias": "champ"}),
    ("DELETE", "registered-models/alias", {"name": "{m}", "alias": "champ"}),
    ("DELETE", "registered-models/alias", {"name": "{m}-missing", "alias": "champ"}),
    ("GET", "registered-models/alias", {"name": "{m}-missing", "alias": "champ"}),
    ("POST", "registered-models/alias", {"name": "{m}", "alias": "champ", "version": "9"}),
    ("POST", "registered-models/alias", {"name": "{m}", "alias": "latest", "version": "1"}),
    ("POST", "registered-models/alias", {"name": "{m}", "alias": "v3", "version": "1"}),
    ("GET", "model-versions/get", {"name": "{m}", "version": "9"}),
    ("GET", "model-versions/get", {"name": "{m}", "version": "x"}),
    ("GET", "model-versions/get", {"name": "{m}-missing", "version": "1"}),
    ("GET", "registered-models/get", {"name": "{m}-missing"}),
    ("DELETE", "model-versions/delete", {"name": "{m}", "version": "9"}),
    ("DELETE", "registered-models/delete", {"name": "{m}-missing"}),
    ("POST", "model-versions/transition-stage", {"name": "{m}", "version": "1", "stage": "bad", "archive_existing_versions": False}),
    ("POST", "registered-models/rename", {"name": "{m}", "new_name": "{m}"}),
    ("POST", "registered-models/create", {"name": "{m}"}),
    ("GET", "model-versions/get-download-uri", {"name": "{m}", "version": "9"}),
    ("GET", "registered-models/get-latest-versions", {"name": "{m}-missing"}),
    ("POST", "registered-models/get-latest-versions", {"name": "{m}", "stages": ["bad"]}),
    ("GET", "model-versions/search", {"filter": "bad filter !!"}),
    ("GET", "registered-models/search", {"max_results": "100000"}),
    ("POST", "model-versions/set-tag", {"name": "{m}", "version": "9", "key": "k", "value": "v"}),
    ("DELETE", "model-versions/delete-tag", {"name": "{m}", "version": "1", "key": "nokey"}),
    ("DELETE", "registered-models/delete-tag", {"name": "{m}", "key": "nokey"}),
    ("GET", "experiments/get", {"experiment_id": "99999"}),
    ("GET", "experiments/get-by-name", {"experiment_name": "{m}"}),
    ("GET", "runs/get", {"run_id": "nope"}),
    ("POST", "runs/delete", {"run_id": "nope"}),
    ("POST", "experiments/create", {"name": ""}),
    ("POST", "experiments/create", {}),
    ("POST", "experiments/delete", {"experiment_id": "99999"}),
    ("POST", "experiments/restore", {"experiment_id": "99999"}),
    ("POST", "runs/search", {"experiment_ids": ["0"], "filter": "metrics.x >"}),
    ("POST", "runs/search", {"experiment_ids": ["0"], "max_results": 100000}),
    ("POST", "runs/log-metric", {"run_id": "nope", "key": "m", "value": 1, "timestamp": 1}),
]

# Deliberate deviations (docs/tracking.md): Kiln's answer, mlflow server's answer.
DEVIATIONS = [
    (("GET", "registered-models/search", {"filter": "name = 'x' AND"}), (400, "INVALID_PARAMETER_VALUE"), (200, None)),
    (("GET", "metrics/get-history", {"run_id": "nope", "metric_key": "m"}), (404, "RESOURCE_DOES_NOT_EXIST"), (200, None)),
]


def answers(base, calls, model):
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {TOKEN}"})
    out = []
    for method, path, fields in calls:
        fields = {k: v.replace("{m}", model) if isinstance(v, str) else v for k, v in fields.items()}
        url = f"{base}/api/2.0/mlflow/{path}"
        response = session.get(url, params=fields) if method == "GET" else session.request(method, url, json=fields)
        code = response.json().get("error_code") if response.headers.get("content-type", "").startswith("application/json") else None
        out.append((method, path, response.status_code, code))
    return out


def test_errors_match_mlflow_server(kiln, mlflow_server):
    model = f"parity-{random.randrange(1 << 30)}"
    assert answers(kiln.url, CALLS, model) == answers(mlflow_server, CALLS, model)


def test_documented_deviations_are_what_the_docs_say(kiln, mlflow_server):
    model = f"deviation-{random.randrange(1 << 30)}"
    for call, ours, theirs in DEVIATIONS:
        assert answers(kiln.url, [call], model)[0][2:] == ours
        assert answers(mlflow_server, [call], model)[0][2:] == theirs
