"""The stock mlflow client against a real `kiln server`: tracking end to end, and search_runs filter/order_by
cases checked against computed answers and against a real `mlflow server` started in the same session."""
import filecmp
import math
import os
import random

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from conftest import TOKEN


def unique(name):
    return f"{name}-{random.randrange(1 << 30)}"


def test_experiments_create_get_search_rename_tag_delete_restore(client_env):
    client = MlflowClient()
    name = unique("exp")
    exp = mlflow.set_experiment(name)
    assert exp.name == name
    assert exp.artifact_location.startswith("mlflow-artifacts:")
    assert client.get_experiment_by_name(name).experiment_id == exp.experiment_id
    assert client.get_experiment_by_name(unique("missing")) is None

    with pytest.raises(MlflowException) as err:
        client.create_experiment(name)
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"

    client.set_experiment_tag(exp.experiment_id, "team", "search")
    found = client.search_experiments(filter_string=f"name = '{name}'")
    assert [e.experiment_id for e in found] == [exp.experiment_id]
    assert found[0].tags["team"] == "search"
    assert exp.experiment_id in [e.experiment_id for e in client.search_experiments(filter_string="tags.team = 'search'")]

    client.rename_experiment(exp.experiment_id, name + "-renamed")
    assert client.get_experiment(exp.experiment_id).name == name + "-renamed"

    client.delete_experiment(exp.experiment_id)
    assert client.get_experiment(exp.experiment_id).lifecycle_stage == "deleted"
    active = [e.experiment_id for e in client.search_experiments()]
    assert exp.experiment_id not in active
    deleted = [e.experiment_id for e in client.search_experiments(view_type=mlflow.entities.ViewType.DELETED_ONLY)]
    assert exp.experiment_id in deleted
    client.restore_experiment(exp.experiment_id)
    assert client.get_experiment(exp.experiment_id).lifecycle_stage == "active"


def test_experiment_search_pages(client_env):
    client = MlflowClient()
    prefix = unique("paged")
    ids = {client.create_experiment(f"{prefix}-{i}") for i in range(7)}
    page = client.search_experiments(filter_string=f"name LIKE '{prefix}-%'", max_results=3)
    seen = [e.experiment_id for e in page]
    while page.token:
        page = client.search_experiments(filter_string=f"name LIKE '{prefix}-%'", max_results=3, page_token=page.token)
        seen += [e.experiment_id for e in page]
    assert len(seen) == 7 and set(seen) == ids


def test_nested_runs_params_metrics_tags_and_batch(client_env):
    client = MlflowClient()
    mlflow.set_experiment(unique("runs"))
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_params({"beta": "x", "gamma": 3})
        mlflow.log_metric("loss", 1.5, step=0, timestamp=1000)
        mlflow.log_metric("loss", 0.75, step=1, timestamp=2000)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=2)
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"owner": "ana", "team": "ml"})
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("inner", 7.0)
        client.log_batch(parent.info.run_id,
                         metrics=[Metric("batch", float(i), 5000 + i, i) for i in range(10)],
                         params=[Param("batch_param", "p")],
                         tags=[RunTag("batch_tag", "t")])
        client.log_metric(parent.info.run_id, "weird", float("nan"), step=0)
        client.log_metric(parent.info.run_id, "pos_inf", float("inf"))
        client.log_metric(parent.info.run_id, "neg_inf", float("-inf"))

    run = client.get_run(parent.info.run_id)
    assert run.info.status == "FINISHED" and run.info.end_time is not None
    assert run.info.run_name == "parent"
    assert run.data.params == {"alpha": "0.5", "beta": "x", "gamma": "3", "batch_param": "p"}
    assert run.data.metrics["loss"] == 0.75
    assert run.data.metrics["acc"] == 0.9
    assert run.data.metrics["batch"] == 9.0
    assert math.isnan(run.data.metrics["weird"])
    assert run.data.metrics["pos_inf"] == float("inf")
    assert run.data.metrics["neg_inf"] == float("-inf")
    assert run.data.tags["stage"] == "dev" and run.data.tags["owner"] == "ana" and run.data.tags["batch_tag"] == "t"

    child_run = client.get_run(child.info.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert [r.info.run_id for r in children] == [child.info.run_id]

    history = client.get_metric_history(parent.info.run_id, "loss")
    assert [(m.value, m.step, m.timestamp) for m in history] == [(1.5, 0, 1000), (0.75, 1, 2000)]

    client.delete_tag(parent.info.run_id, "stage")
    assert "stage" not in client.get_run(parent.info.run_id).data.tags


def test_metric_history_pages_through_many_points(client_env):
    client = MlflowClient()
    exp = client.create_experiment(unique("history"))
    run = client.create_run(exp)
    for start in range(0, 3000, 1000):
        client.log_batch(run.info.run_id, metrics=[Metric("m", i * 0.5, 10_000 + i, i) for i in range(start, start + 1000)])
    history = client.get_metric_history(run.info.run_id, "m")
    assert len(history) == 3000
    assert [m.step for m in history] == list(range(3000))
    # Raw paging with a small page size walks every point exactly once.
    headers = {"Authorization": f"Bearer {TOKEN}"}
    seen, token = [], None
    while True:
        params = {"run_id": run.info.run_id, "metric_key": "m", "max_results": 700}
        if token:
            params["page_token"] = token
        body = requests.get(f"{client_env.url}/api/2.0/mlflow/metrics/get-history", params=params, headers=headers).json()
        seen += [m["step"] for m in body["metrics"]]
        token = body.get("next_page_token")
        if not token:
            break
    assert seen == list(range(3000))


def test_params_are_immutable(client_env):
    client = MlflowClient()
    run = client.create_run(client.create_experiment(unique("immutable")))
    client.log_param(run.info.run_id, "lr", "0.1")
    client.log_param(run.info.run_id, "lr", "0.1")  # same value: fine
    with pytest.raises(MlflowException) as err:
        client.log_param(run.info.run_id, "lr", "0.2")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run.info.run_id).data.params["lr"] == "0.1"


def test_delete_and_restore_run(client_env):
    client = MlflowClient()
    exp = client.create_experiment(unique("lifecycle"))
    run = client.create_run(exp)
    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    assert client.search_runs([exp]) == []
    deleted = client.search_runs([exp], run_view_type=mlflow.entities.ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [run.info.run_id]
    with pytest.raises(MlflowException) as err:
        client.log_metric(run.info.run_id, "m", 1.0)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    client.restore_run(run.info.run_id)
    assert [r.info.run_id for r in client.search_runs([exp])] == [run.info.run_id]


def test_artifacts_file_and_folder_round_trip(client_env, tmp_path):
    mlflow.set_experiment(unique("artifacts"))
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("hello kiln\n")
    (src / "sub" / "b.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (src / "sub" / "name with space.txt").write_text("spaces")
    single = tmp_path / "single.json"
    single.write_text('{"x": 1}')
    with mlflow.start_run() as run:
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")
        mlflow.log_artifact(str(single))
        mlflow.log_artifacts(str(src), artifact_path="folder")
    client = MlflowClient()
    top = sorted((f.path, f.is_dir) for f in client.list_artifacts(run.info.run_id))
    assert top == [("folder", True), ("single.json", False)]
    inner = sorted(f.path for f in client.list_artifacts(run.info.run_id, "folder/sub"))
    assert inner == ["folder/sub/b.bin", "folder/sub/name with space.txt"]
    sizes = {f.path: f.file_size for f in client.list_artifacts(run.info.run_id, "folder/sub")}
    assert sizes["folder/sub/b.bin"] == 3 * 1024 * 1024 + 17

    out = tmp_path / "out"
    out.mkdir()
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="folder", dst_path=str(out))
    cmp = filecmp.dircmp(str(src), local)
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only
    assert filecmp.cmp(src / "sub" / "b.bin", os.path.join(local, "sub", "b.bin"), shallow=False)
    one = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="single.json", dst_path=str(out))
    assert open(one).read() == '{"x": 1}'


def test_log_input_dataset(client_env):
    import pandas as pd
    mlflow.set_experiment(unique("datasets"))
    df = pd.DataFrame({"a": [1, 2, 3], "b": [0.1, 0.2, 0.3]})
    dataset = mlflow.data.from_pandas(df, source="/tmp/kiln-compat/train.csv", name="train-set")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
    fetched = MlflowClient().get_run(run.info.run_id)
    inputs = fetched.inputs.dataset_inputs
    assert len(inputs) == 1
    assert inputs[0].dataset.name == "train-set"
    assert inputs[0].dataset.digest == dataset.digest
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"
    exp = fetched.info.experiment_id
    assert [r.info.run_id for r in MlflowClient().search_runs([exp], "datasets.name = 'train-set'")] == [run.info.run_id]
    assert [r.info.run_id for r in MlflowClient().search_runs([exp], "datasets.context = 'training'")] == [run.info.run_id]
    assert MlflowClient().search_runs([exp], "datasets.name = 'other'") == []


def test_sklearn_autolog_logs_params_metrics_and_a_loadable_model(client_env):
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment(unique("autolog"))
    mlflow.sklearn.autolog(log_input_examples=False, log_model_signatures=True)
    try:
        X, y = load_iris(return_X_y=True)
        with mlflow.start_run() as run:
            model = LogisticRegression(max_iter=200).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    client = MlflowClient()
    fetched = client.get_run(run.info.run_id)
    assert fetched.data.params["max_iter"] == "200"
    assert "training_accuracy_score" in fetched.data.metrics
    assert fetched.data.tags["estimator_name"] == "LogisticRegression"
    outputs = fetched.outputs.model_outputs
    assert len(outputs) == 1
    model_id = outputs[0].model_id
    logged = client.get_logged_model(model_id)
    assert logged.status.to_proto() == mlflow.entities.LoggedModelStatus.READY.to_proto()
    loaded = mlflow.sklearn.load_model(f"models:/{model_id}")
    assert np.array_equal(loaded.predict(X), model.predict(X))
    loaded_by_run = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model") if any(
        f.path == "model" for f in client.list_artifacts(run.info.run_id)) else mlflow.pyfunc.load_model(f"models:/{model_id}")
    assert np.array_equal(np.asarray(loaded_by_run.predict(X)), model.predict(X))


def test_client_errors_have_mlflow_codes(client_env):
    client = MlflowClient()
    with pytest.raises(MlflowException) as err:
        client.get_run("0" * 32)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as err:
        client.get_experiment("987654321")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as err:
        client.search_runs(["0"], "metrics.a >")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as err:
        client.search_runs(["0"], "metrics.a > 1 OR metrics.b < 2")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


# ---- search_runs: computed answers and a real mlflow server side by side ----

# name, start offset, metrics, params, tags
SEED = [
    ("r0", 0, {"acc": 0.91, "loss": 0.30}, {"model": "tree", "depth": "3"}, {"team": "a", "env": "prod"}),
    ("r1", 1, {"acc": 0.85, "loss": 0.45}, {"model": "tree", "depth": "5"}, {"team": "b"}),
    ("r2", 2, {"acc": 0.97, "loss": 0.10}, {"model": "linear"}, {"team": "a", "env": "dev"}),
    ("r3", 3, {"acc": 0.60}, {"model": "Linear-Big"}, {"team": "c", "note": "has space"}),
    ("r4", 4, {"loss": 0.99, "my metric": 1.0}, {"model": "forest", "depth": "10"}, {}),
    ("r5", 5, {"acc": 0.91, "loss": 0.29}, {"model": "forest", "depth": "3"}, {"team": "b", "env": "prod"}),
]

# (filter, order_by, expected names in order)
CASES = [
    ("metrics.acc > 0.9", ["attributes.run_name ASC"], ["r0", "r2", "r5"]),
    ("metrics.acc >= 0.91 and metrics.loss < 0.3", [], ["r5", "r2"]),
    ("metrics.loss <= 0.3", ["metrics.loss DESC"], ["r0", "r5", "r2"]),
    ("metrics.acc != 0.91", ["metrics.acc ASC"], ["r3", "r1", "r2"]),
    ("params.model = 'tree'", ["params.depth DESC"], ["r1", "r0"]),
    ("params.model != 'tree'", ["attributes.run_name ASC"], ["r2", "r3", "r4", "r5"]),
    ("params.model LIKE 'lin%'", [], ["r2"]),
    ("params.model ILIKE 'lin%'", ["attributes.run_name DESC"], ["r3", "r2"]),
    ("tags.team = 'a'", ["metrics.acc DESC"], ["r2", "r0"]),
    ("tags.env != 'prod'", [], ["r2"]),
    ("tags.`note` = 'has space'", [], ["r3"]),
    ("metrics.`my metric` = 1", [], ["r4"]),
    ("attributes.run_name = 'r4'", [], ["r4"]),
    ("attributes.run_name LIKE 'r%' and params.depth = '3'", ["metrics.loss ASC"], ["r5", "r0"]),
    ("attributes.status = 'FINISHED'", ["attributes.start_time ASC"], ["r0", "r1", "r2", "r3", "r4", "r5"]),
    ("", ["metrics.acc DESC", "attributes.run_name ASC"], ["r2", "r0", "r5", "r1", "r3", "r4"]),
    ("", ["metrics.loss ASC"], ["r2", "r5", "r0", "r1", "r4", "r3"]),
    ("", ["params.model ASC"], ["r3", "r5", "r4", "r2", "r1", "r0"]),
    ("", [], ["r5", "r4", "r3", "r2", "r1", "r0"]),
    ("params.depth IN ('3', '10')", ["attributes.run_name ASC"], ["r0", "r4", "r5"]),
    ("attributes.run_name IN ('r1', 'r3')", ["attributes.run_name ASC"], ["r1", "r3"]),
    ("attributes.run_name NOT IN ('r1', 'r3')", ["attributes.run_name ASC"], ["r0", "r2", "r4", "r5"]),
    ("tags.env IS NULL", ["attributes.run_name ASC"], ["r1", "r3", "r4"]),
    ("metrics.acc > 0.5 and tags.team = 'b' and params.model = 'forest'", [], ["r5"]),
    ("params.model = 'tree' and metrics.acc < 0.5", [], []),
]


def seed(client, experiment_id, base_time=1_700_000_000_000):
    ids = {}
    for name, offset, metrics, params, tags in SEED:
        run = client.create_run(experiment_id, run_name=name, start_time=base_time + offset * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, base_time, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()])
        client.set_terminated(run.info.run_id, end_time=base_time + offset * 1000 + 500)
        ids[name] = run.info.run_id
    return ids


def names(client, experiment_id, filter_string, order_by):
    runs = client.search_runs([experiment_id], filter_string, order_by=order_by)
    return [r.info.run_name for r in runs]


@pytest.fixture(scope="module")
def kiln_seeded(kiln, monkeypatch_module):
    monkeypatch_module.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    client = MlflowClient(tracking_uri=kiln.url)
    exp = client.create_experiment(f"search-{random.randrange(1 << 30)}")
    seed(client, exp)
    return client, exp


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.parametrize("filter_string,order_by,expected", CASES)
def test_search_matches_computed_answer(kiln_seeded, filter_string, order_by, expected):
    client, exp = kiln_seeded
    got = names(client, exp, filter_string, order_by)
    assert got == expected


@pytest.fixture(scope="module")
def both_seeded(kiln_seeded, mlflow_server):
    peer = MlflowClient(tracking_uri=mlflow_server)
    exp = peer.create_experiment(f"search-{random.randrange(1 << 30)}")
    seed(peer, exp)
    return kiln_seeded, (peer, exp)


# Filters Kiln accepts that mlflow server rejects (IN on params and run names): Kiln may accept more, never fewer.
KILN_EXTENSIONS = {"params.depth IN ('3', '10')", "attributes.run_name IN ('r1', 'r3')", "attributes.run_name NOT IN ('r1', 'r3')"}


@pytest.mark.parametrize("filter_string,order_by,expected", [c for c in CASES if c[0] not in KILN_EXTENSIONS])
def test_search_matches_real_mlflow_server(both_seeded, monkeypatch, filter_string, order_by, expected):
    (kiln_client, kiln_exp), (peer, peer_exp) = both_seeded
    ours = names(kiln_client, kiln_exp, filter_string, order_by)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    theirs = names(peer, peer_exp, filter_string, order_by)
    assert ours == theirs


def test_search_pages_without_gaps_or_repeats(kiln_seeded):
    client, exp = kiln_seeded
    seen, token = [], None
    while True:
        page = client.search_runs([exp], "", order_by=["metrics.acc DESC"], max_results=4, page_token=token)
        seen += [r.info.run_name for r in page]
        token = page.token
        if not token:
            break
    assert seen == ["r2", "r5", "r0", "r1", "r3", "r4"]
