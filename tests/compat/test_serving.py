"""Model serving through the stock databricks-sdk: endpoints created, queried in every scoring format, updated with
A/B traffic, deleted — predictions compared exactly with offline scoring (`kiln predict`, and for a booster what
`mlflow.pyfunc.load_model` returns in Python)."""
import json
import os
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.serving import DataframeSplitInput, EndpointCoreConfigInput, Route, ServedEntityInput, TrafficConfig
from deltalake import DeltaTable
from sklearn import datasets

from conftest import TOKEN
from test_learn import kiln_cli

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def models(kiln, tmp_path_factory):
    """A booster, a logistic regression and a booster behind a text pipeline, registered; the data they score."""
    work = tmp_path_factory.mktemp("serving")
    X, y = datasets.load_breast_cancer(return_X_y=True)
    df = pd.DataFrame(X[:, :8], columns=[f"f{i}" for i in range(8)])
    df["tier"] = np.random.default_rng(0).choice(["gold", "silver", "bronze"], len(df))
    df["label"] = y
    path = work / "bc.parquet"
    df.to_parquet(path, index=False)
    kiln_cli("table", "write", "main.serving.bc", "--from", str(path), home=kiln.home)
    numeric = ",".join(f"f{i}" for i in range(8))
    for name, algorithm, features in [("serve_xgb", "xgboost", numeric), ("serve_logit", "logistic", numeric),
                                      ("serve_pipe", "xgboost", numeric + ",tier")]:
        kiln_cli("train", "--url", kiln.url, "--table", "main.serving.bc", "--target", "label", "--algorithm", algorithm,
                 "--features", features, "--register", name, "--json")
    return df


@pytest.fixture(scope="module")
def w(kiln):
    return WorkspaceClient(host=kiln.url, token=TOKEN, auth_type="pat")


def offline(kiln, model, output):
    kiln_cli("predict", "--model", model, "--table", "main.serving.bc", "--output", f"main.serving.{output}", home=kiln.home)
    return DeltaTable(os.path.join(kiln.home, "warehouse", "main", "serving", output)).to_pandas()


def entity(name, version="1", served=None):
    return ServedEntityInput(entity_name=name, entity_version=version, name=served, workload_size="Small", scale_to_zero_enabled=True)


def test_booster_endpoint_answers_what_mlflow_pyfunc_predicts(kiln, w, models, client_env):
    created = w.serving_endpoints.create_and_wait(name="bc-xgb", config=EndpointCoreConfigInput(name="bc-xgb", served_entities=[entity("serve_xgb")]))
    assert created.state.ready.value == "READY" and created.config.served_entities[0].name == "serve_xgb-1"
    features = models[[f"f{i}" for i in range(8)]]
    expected = mlflow.pyfunc.load_model("models:/serve_xgb/1").predict(features)
    answers = [
        w.serving_endpoints.query("bc-xgb", dataframe_split=DataframeSplitInput(columns=list(features.columns), data=features.values.tolist())),
        w.serving_endpoints.query("bc-xgb", dataframe_records=features.to_dict(orient="records")),
        w.serving_endpoints.query("bc-xgb", instances=features.to_dict(orient="records")),
        w.serving_endpoints.query("bc-xgb", inputs={c: features[c].tolist() for c in features.columns}),
    ]
    for answer in answers:
        assert answer.served_model_name == "serve_xgb-1"
        assert np.array_equal(np.array(answer.predictions, dtype=np.float64), np.asarray(expected, dtype=np.float64))
    listed = [e.name for e in w.serving_endpoints.list()]
    assert "bc-xgb" in listed


def test_kiln_models_answer_what_batch_scoring_writes(kiln, w, models):
    for endpoint, model in [("bc-logit", "serve_logit"), ("bc-pipe", "serve_pipe")]:
        w.serving_endpoints.create_and_wait(name=endpoint, config=EndpointCoreConfigInput(name=endpoint, served_entities=[entity(model)]))
        scored = offline(kiln, f"models:/{model}/1", f"offline_{model}")
        columns = [f"f{i}" for i in range(8)] + (["tier"] if model == "serve_pipe" else [])
        answer = w.serving_endpoints.query(endpoint, dataframe_split=DataframeSplitInput(columns=columns, data=scored[columns].values.tolist()))
        # Kiln-native models (and a booster behind a Kiln pipeline) answer classes, exactly as batch scoring writes them.
        assert answer.served_model_name == f"{model}-1"
        assert answer.predictions == scored["prediction"].tolist()


def test_traffic_split_and_config_updates(kiln, w, models):
    kiln_cli("train", "--url", kiln.url, "--table", "main.serving.bc", "--target", "label", "--algorithm", "xgboost",
             "--features", ",".join(f"f{i}" for i in range(8)), "--params", "max_depth=2", "--register", "serve_xgb", "--json")
    w.serving_endpoints.create_and_wait(name="bc-ab", config=EndpointCoreConfigInput(name="bc-ab", served_entities=[entity("serve_xgb")]))
    updated = w.serving_endpoints.update_config_and_wait(
        "bc-ab", served_entities=[entity("serve_xgb", "1", "champion"), entity("serve_xgb", "2", "challenger")],
        traffic_config=TrafficConfig(routes=[Route(served_model_name="champion", traffic_percentage=70),
                                             Route(served_model_name="challenger", traffic_percentage=30)]))
    assert updated.config.config_version == 2 and [r.traffic_percentage for r in updated.config.traffic_config.routes] == [70, 30]
    session = requests.Session()
    session.headers.update(AUTH)
    body = {"dataframe_records": models[[f"f{i}" for i in range(8)]].head(1).to_dict(orient="records")}
    counts = {"champion": 0, "challenger": 0}
    for _ in range(10_000):
        response = session.post(f"{kiln.url}/serving-endpoints/bc-ab/invocations", json=body)
        assert response.status_code == 200
        counts[response.headers["served-model-name"]] += 1
    assert abs(counts["challenger"] / 10_000 - 0.30) <= 0.02, counts
    # Routes that do not add up, or name nobody, change nothing.
    for routes in ([Route(served_model_name="champion", traffic_percentage=60)], [Route(served_model_name="nobody", traffic_percentage=100)]):
        response = session.put(f"{kiln.url}/api/2.0/serving-endpoints/bc-ab/config",
                               json={"served_entities": [{"entity_name": "serve_xgb", "entity_version": "1", "name": "champion"}],
                                     "traffic_config": {"routes": [r.as_dict() for r in routes]}})
        assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert w.serving_endpoints.get("bc-ab").config.config_version == 2


def test_bad_requests_get_clear_errors(kiln, w, models):
    session = requests.Session()
    session.headers.update(AUTH)
    w.serving_endpoints.create_and_wait(name="bc-errors", config=EndpointCoreConfigInput(name="bc-errors", served_entities=[entity("serve_xgb")]))
    response = session.post(f"{kiln.url}/serving-endpoints/bc-errors/invocations", json={"dataframe_records": [{"f0": 1.0}]})
    assert response.status_code == 400 and "lacks columns f1" in response.json()["message"]
    response = session.post(f"{kiln.url}/serving-endpoints/bc-errors/invocations", json={"nothing": 1})
    assert response.status_code == 400 and "dataframe_split" in response.json()["message"]
    response = session.post(f"{kiln.url}/serving-endpoints/nope/invocations", json={"dataframe_records": [{"f0": 1}]})
    assert response.status_code == 404
    response = requests.post(f"{kiln.url}/serving-endpoints/bc-errors/invocations", json={"dataframe_records": [{"f0": 1}]})
    assert response.status_code == 401
    # A version that does not exist: nothing is created.
    response = session.post(f"{kiln.url}/api/2.0/serving-endpoints",
                            json={"name": "bc-missing", "config": {"served_entities": [{"entity_name": "serve_xgb", "entity_version": "99"}]}})
    assert response.status_code == 400 and "serve_xgb version 99" in response.json()["message"]
    with pytest.raises(NotFound):
        w.serving_endpoints.get("bc-missing")
    response = session.post(f"{kiln.url}/api/2.0/serving-endpoints",
                            json={"name": "bc-errors", "config": {"served_entities": [{"entity_name": "serve_xgb", "entity_version": "1"}]}})
    assert response.status_code == 409
    w.serving_endpoints.delete("bc-errors")
    with pytest.raises(NotFound):
        w.serving_endpoints.get("bc-errors")


def wine_home(tmp_path):
    """A fresh Kiln home holding main.default.wine, and the frame it came from."""
    home = str(tmp_path / "home")
    os.makedirs(home)
    X, y = datasets.load_wine(return_X_y=True)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    df["label"] = y
    df.to_parquet(tmp_path / "wine.parquet", index=False)
    kiln_cli("table", "write", "main.default.wine", "--from", str(tmp_path / "wine.parquet"), home=home)
    return home, df


def test_endpoints_survive_a_restart(tmp_path):
    """Configs persist; the first request after a restart loads the models (cold start) and answers the same."""
    from conftest import KilnServer
    home, df = wine_home(tmp_path)
    server = KilnServer(home).start()
    try:
        kiln_cli("train", "--url", server.url, "--table", "main.default.wine", "--target", "label", "--algorithm", "random_forest",
                 "--register", "wine_rf", "--json")
        response = requests.post(f"{server.url}/api/2.0/serving-endpoints", headers=AUTH,
                                 json={"name": "wine", "config": {"served_models": [{"model_name": "wine_rf", "model_version": "1"}]}})
        assert response.status_code == 200, response.text
        body = {"dataframe_split": {"columns": list(df.columns[:-1]), "data": df.iloc[:, :-1].values.tolist()}}
        before = requests.post(f"{server.url}/serving-endpoints/wine/invocations", headers=AUTH, json=body).json()["predictions"]
        server.stop()
        server.start()
        after = requests.post(f"{server.url}/serving-endpoints/wine/invocations", headers=AUTH, json=body)
        assert after.status_code == 200 and after.json()["predictions"] == before
        assert sum(p == t for p, t in zip(before, df["label"])) > 0.95 * len(df)
    finally:
        server.stop()


def test_endpoints_cli(kiln, models):
    flags = ["--url", kiln.url, "--token", TOKEN]
    out = kiln_cli("endpoints", "create", "bc-cli", "--model", "serve_logit", "--version", "1", *flags)
    assert "serve_logit-1" in out.stdout and "100%" in out.stdout
    out = kiln_cli("endpoints", "traffic", "bc-cli", "a=serve_logit/1:50", "b=serve_xgb/1:50", *flags)
    assert "config version 2" in out.stdout and "50%" in out.stdout
    out = kiln_cli("endpoints", "list", *flags)
    assert "bc-cli" in out.stdout and "serve_logit/1, serve_xgb/1" in out.stdout
    row = models[[f"f{i}" for i in range(8)]].head(2).to_dict(orient="records")
    out = kiln_cli("endpoints", "query", "bc-cli", "--json-body", json.dumps({"dataframe_records": row}), *flags)
    assert len(json.loads(out.stdout)["predictions"]) == 2
    out = kiln_cli("endpoints", "update", "bc-cli", "--model", "serve_xgb", "--version", "1", *flags)
    assert "config version 3" in out.stdout and "serve_xgb-1" in out.stdout and "100%" in out.stdout
    out = kiln_cli("endpoints", "traffic", "bc-cli", "a=serve_logit/1:60", *flags, check=False)
    assert out.returncode != 0 and "sum to 60" in out.stderr
    kiln_cli("endpoints", "delete", "bc-cli", *flags)
    out = kiln_cli("endpoints", "get", "bc-cli", *flags, check=False)
    assert out.returncode != 0 and "does not exist" in out.stderr


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def test_overload_gets_429_with_flat_memory_and_metrics_count_requests(kiln, w, models):
    from concurrent.futures import ThreadPoolExecutor
    w.serving_endpoints.create_and_wait(name="bc-load", config=EndpointCoreConfigInput(name="bc-load", served_entities=[entity("serve_xgb")]))
    features = models[[f"f{i}" for i in range(8)]]
    big = {"dataframe_split": {"columns": list(features.columns), "data": pd.concat([features] * 40).values.tolist()}}  # 22,760 rows
    payload = json.dumps(big)

    def send(_):
        return requests.post(f"{kiln.url}/serving-endpoints/bc-load/invocations", data=payload,
                             headers={**AUTH, "Content-Type": "application/json"}).status_code
    with ThreadPoolExecutor(8) as pool:  # warm up
        list(pool.map(send, range(8)))
    before = rss_mib(kiln.proc.pid)
    with ThreadPoolExecutor(96) as pool:
        statuses = list(pool.map(send, range(192)))
    after = rss_mib(kiln.proc.pid)
    assert set(statuses) <= {200, 429}, set(statuses)
    assert statuses.count(429) > 0 and statuses.count(200) > 0, (statuses.count(200), statuses.count(429))
    assert after - before < 200, (before, after)  # 4 requests scoring + 32 waiting without their bodies, not 96
    response = requests.get(f"{kiln.url}/api/2.0/serving-endpoints/bc-load/metrics", headers=AUTH)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    lines = dict(line.rsplit(" ", 1) for line in response.text.splitlines() if not line.startswith("#"))
    served = 8 + statuses.count(200)
    assert int(lines['kiln_serving_rejected_total{endpoint="bc-load"}']) == statuses.count(429)
    assert int(lines['kiln_serving_requests_total{endpoint="bc-load",served_entity="serve_xgb-1"}']) == served
    assert int(lines['kiln_serving_errors_total{endpoint="bc-load",served_entity="serve_xgb-1"}']) == 0
    assert int(lines['kiln_serving_latency_seconds_count{endpoint="bc-load",served_entity="serve_xgb-1"}']) == served
    # The same counts reach the server's /metrics.
    text = requests.get(f"{kiln.url}/metrics", headers=AUTH).text
    line = next(l for l in text.splitlines() if l.startswith("kiln_serving_requests_total{") and 'endpoint="bc-load"' in l)
    assert int(float(line.rsplit(" ", 1)[1])) == served


def test_inference_table_captures_every_request(kiln, w, models):
    from databricks.sdk.service.serving import AutoCaptureConfigInput
    w.serving_endpoints.create_and_wait(name="bc-capture", config=EndpointCoreConfigInput(
        name="bc-capture", served_entities=[entity("serve_logit")],
        auto_capture_config=AutoCaptureConfigInput(catalog_name="main", schema_name="serving", table_name_prefix="bc_capture", enabled=True)))
    got = w.serving_endpoints.get("bc-capture")
    assert got.config.auto_capture_config.catalog_name == "main" and got.config.auto_capture_config.enabled
    session = requests.Session()
    session.headers.update(AUTH)
    rows = models[[f"f{i}" for i in range(8)]].head(3).to_dict(orient="records")
    ok, bad = 120, 5
    for k in range(ok):
        response = session.post(f"{kiln.url}/serving-endpoints/bc-capture/invocations", json={"dataframe_records": rows, "client_request_id": f"c{k}"})
        assert response.status_code == 200 and response.headers["x-request-id"]
    for _ in range(bad):
        assert session.post(f"{kiln.url}/serving-endpoints/bc-capture/invocations", json={"dataframe_records": [{"f0": 1.0}]}).status_code == 400
    path = os.path.join(kiln.home, "warehouse", "main", "serving", "bc_capture_payload")
    for _ in range(100):  # micro-batches land within a second or so
        # The table directory exists (data files first) a moment before its first commit does.
        if os.path.exists(os.path.join(path, "_delta_log", "00000000000000000000.json")) and len(DeltaTable(path).to_pandas()) == ok + bad:
            break
        time.sleep(0.1)
    table = DeltaTable(path).to_pandas()
    assert len(table) == ok + bad
    assert sorted(table["status_code"].value_counts().to_dict().items()) == [(200, ok), (400, bad)]
    served = table[table["status_code"] == 200]
    assert set(served["served_entity_name"]) == {"serve_logit-1"} and set(served["model_name"]) == {"serve_logit"}
    assert set(served["client_request_id"]) == {f"c{k}" for k in range(ok)}
    assert json.loads(served.iloc[0]["request"])["dataframe_records"][0]["f0"] == rows[0]["f0"]
    assert len(json.loads(served.iloc[0]["response"])["predictions"]) == 3
    assert (table["execution_time_ms"] >= 0).all() and len(set(table["databricks_request_id"])) == ok + bad
    # The table is queryable by SQL.
    out = kiln_cli("sql", "SELECT status_code, count(*) AS n FROM main.serving.bc_capture_payload GROUP BY status_code ORDER BY status_code",
                   "--format", "json", home=kiln.home)
    assert json.loads(out.stdout) == [{"status_code": 200, "n": ok}, {"status_code": 400, "n": bad}]


def test_config_update_under_load_loses_no_request(kiln, w, models):
    import threading
    w.serving_endpoints.create_and_wait(name="bc-swap", config=EndpointCoreConfigInput(name="bc-swap", served_entities=[entity("serve_logit")]))
    body = {"dataframe_records": models[[f"f{i}" for i in range(8)] + ["tier"]].head(2).to_dict(orient="records")}
    statuses, served, stop = [], set(), threading.Event()

    def traffic():
        session = requests.Session()
        session.headers.update(AUTH)
        while not stop.is_set():
            response = session.post(f"{kiln.url}/serving-endpoints/bc-swap/invocations", json=body)
            statuses.append(response.status_code)
            served.add(response.headers.get("served-model-name"))
    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    for model in ["serve_xgb", "serve_pipe", "serve_logit"]:
        w.serving_endpoints.update_config_and_wait("bc-swap", served_entities=[entity(model)])
        time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert len(statuses) > 100 and set(statuses) == {200}
    assert served == {"serve_logit-1", "serve_xgb-1", "serve_pipe-1"}


def test_python_flavored_model_is_served_by_a_managed_scorer(kiln, w, client_env):
    """mlflow.sklearn.log_model → register → serve: a Python child answers like mlflow.pyfunc; killed, it restarts."""
    import re
    import signal
    from sklearn.linear_model import Ridge
    X, y = datasets.load_diabetes(return_X_y=True, as_frame=True)
    mlflow.set_tracking_uri(kiln.url)
    mlflow.set_experiment("serving-python")
    with mlflow.start_run():
        mlflow.sklearn.log_model(Ridge(alpha=0.5).fit(X, y), name="model", registered_model_name="sk_diabetes", input_example=X.head(3))
    created = w.serving_endpoints.create_and_wait(name="sk", config=EndpointCoreConfigInput(name="sk", served_entities=[entity("sk_diabetes")]))
    message = created.config.served_entities[0].state.deployment_state_message
    assert message.startswith("Python scoring process pid"), message
    expected = mlflow.pyfunc.load_model("models:/sk_diabetes/1").predict(X)
    answer = w.serving_endpoints.query("sk", dataframe_split=DataframeSplitInput(columns=list(X.columns), data=X.values.tolist()))
    assert answer.served_model_name == "sk_diabetes-1"
    np.testing.assert_allclose(np.array(answer.predictions, dtype=float), expected, rtol=1e-9, atol=1e-9)
    # Kill the scorer: clean 503s while it restarts, then answers again.
    pid = int(re.search(r"pid (\d+)", message).group(1))
    os.kill(pid, signal.SIGKILL)
    session = requests.Session()
    session.headers.update(AUTH)
    body = {"dataframe_records": X.head(2).to_dict(orient="records")}
    statuses = []
    deadline = time.time() + 120
    while time.time() < deadline:
        response = session.post(f"{kiln.url}/serving-endpoints/sk/invocations", json=body)
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        if response.status_code == 200 and 503 in statuses:
            break
        time.sleep(0.1)
    assert set(statuses) <= {200, 503} and 503 in statuses and statuses[-1] == 200, statuses[-10:]
    np.testing.assert_allclose(response.json()["predictions"], expected[:2], rtol=1e-9)
    restarted = w.serving_endpoints.get("sk").config.served_entities[0].state.deployment_state_message
    assert restarted != message and restarted.startswith("Python scoring process pid")
    w.serving_endpoints.delete("sk")


def test_shadow_routes_mirror_and_compare(kiln, w, models):
    session = requests.Session()
    session.headers.update(AUTH)
    config = {"served_entities": [{"entity_name": "serve_xgb", "entity_version": "1", "name": "live"},
                                  {"entity_name": "serve_xgb", "entity_version": "1", "name": "same"},
                                  {"entity_name": "serve_logit", "entity_version": "1", "name": "other"}],
              "traffic_config": {"routes": [{"served_model_name": "live", "traffic_percentage": 100}],
                                 "shadow_routes": [{"served_model_name": "same"}, {"served_model_name": "other"}]}}
    response = session.post(f"{kiln.url}/api/2.0/serving-endpoints", json={"name": "bc-shadow", "config": config})
    assert response.status_code == 200, response.text
    assert [r["served_model_name"] for r in response.json()["config"]["traffic_config"]["shadow_routes"]] == ["same", "other"]
    assert w.serving_endpoints.get("bc-shadow").config.traffic_config.routes[0].served_model_name == "live"
    body = {"dataframe_records": models[[f"f{i}" for i in range(8)]].head(4).to_dict(orient="records")}
    for _ in range(50):
        response = session.post(f"{kiln.url}/serving-endpoints/bc-shadow/invocations", json=body)
        assert response.status_code == 200 and response.headers["served-model-name"] == "live"
    lines = {}
    for _ in range(50):  # mirrors run after the answer
        text = session.get(f"{kiln.url}/api/2.0/serving-endpoints/bc-shadow/metrics").text
        lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
        if all(int(lines.get(f'kiln_serving_shadow_requests_total{{endpoint="bc-shadow",served_entity="{e}"}}', 0)) == 50 for e in ["same", "other"]):
            break
        time.sleep(0.1)
    assert int(lines['kiln_serving_shadow_requests_total{endpoint="bc-shadow",served_entity="same"}']) == 50
    assert int(lines['kiln_serving_shadow_disagreements_total{endpoint="bc-shadow",served_entity="same"}']) == 0
    # The logistic model answers classes where the booster answers probabilities: every mirror disagrees.
    assert int(lines['kiln_serving_shadow_disagreements_total{endpoint="bc-shadow",served_entity="other"}']) == 50
    bad = dict(config, traffic_config={"routes": [{"served_model_name": "live", "traffic_percentage": 100}],
                                       "shadow_routes": [{"served_model_name": "ghost"}]})
    response = session.put(f"{kiln.url}/api/2.0/serving-endpoints/bc-shadow/config", json=bad)
    assert response.status_code == 400 and "ghost" in response.json()["message"]


def test_idle_endpoints_scale_to_zero_and_cold_start(tmp_path, monkeypatch):
    from conftest import KilnServer
    monkeypatch.setenv("KILN_SCALE_TO_ZERO_SECONDS", "1")
    home, df = wine_home(tmp_path)
    server = KilnServer(home).start()
    try:
        kiln_cli("train", "--url", server.url, "--table", "main.default.wine", "--target", "label", "--algorithm", "logistic",
                 "--register", "wine_lr", "--json")
        session = requests.Session()
        session.headers.update(AUTH)
        for name, scale in [("idle", True), ("warm", False)]:
            response = session.post(f"{server.url}/api/2.0/serving-endpoints", json={"name": name, "config": {"served_entities": [
                {"entity_name": "wine_lr", "entity_version": "1", "scale_to_zero_enabled": scale}]}})
            assert response.status_code == 200, response.text

        def state(name):
            return session.get(f"{server.url}/api/2.0/serving-endpoints/{name}").json()["config"]["served_entities"][0]["state"]["deployment_state_message"]
        assert state("idle") == "Served in process by Kiln"
        time.sleep(3)
        assert state("idle") == "Loads on the first request" and state("warm") == "Served in process by Kiln"
        body = {"dataframe_split": {"columns": list(df.columns[:-1]), "data": df.iloc[:5, :-1].values.tolist()}}
        response = session.post(f"{server.url}/serving-endpoints/idle/invocations", json=body)
        assert response.status_code == 200 and response.json()["predictions"] == df["label"].iloc[:5].tolist()
        assert state("idle") == "Served in process by Kiln"
    finally:
        server.stop()
