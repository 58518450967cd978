"""The model registry through the stock mlflow client against a real `kiln server`."""
import random

import mlflow
import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from conftest import TOKEN


def unique(name):
    return f"{name}-{random.randrange(1 << 30)}"


@pytest.fixture()
def trained(client_env):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    X, y = load_iris(return_X_y=True)
    mlflow.set_experiment(unique("registry"))
    with mlflow.start_run() as run:
        model = LogisticRegression(max_iter=300).fit(X, y)
        info = mlflow.sklearn.log_model(model, name="model")
    return X, model, run, info


def test_register_twice_load_by_version_alias_and_stage(trained):
    X, model, run, info = trained
    client = MlflowClient()
    name = unique("iris")
    v1 = mlflow.register_model(info.model_uri, name)
    v2 = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert (v1.version, v2.version) == ("1", "2")
    assert v1.status == "READY"

    expected = model.predict(X)
    for uri in (f"models:/{name}/1", f"models:/{name}/2"):
        assert np.array_equal(mlflow.pyfunc.load_model(uri).predict(X), expected)

    client.set_registered_model_alias(name, "champion", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert np.array_equal(mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(X), expected)
    assert client.get_registered_model(name).aliases == {"champion": "2"}

    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "production", archive_existing_versions=True)
    assert client.get_model_version(name, "1").current_stage == "Archived"
    assert client.get_model_version(name, "2").current_stage == "Production"
    assert np.array_equal(mlflow.pyfunc.load_model(f"models:/{name}/Production").predict(X), expected)
    latest = client.get_latest_versions(name, stages=["Production"])
    assert [v.version for v in latest] == ["2"]

    client.delete_registered_model_alias(name, "champion")
    with pytest.raises(MlflowException) as err:
        client.get_model_version_by_alias(name, "champion")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"  # what mlflow server answers for a deleted alias


def test_versions_survive_deleting_the_source_run_artifacts(trained, kiln):
    X, model, run, info = trained
    name = unique("copy")
    mlflow.register_model(info.model_uri, name)
    # Remove every file the run and its logged model own; the version keeps its own copy.
    headers = {"Authorization": f"Bearer {TOKEN}"}
    logged = MlflowClient().get_logged_model(info.model_id)
    path = logged.artifact_location.split("mlflow-artifacts:", 1)[1].lstrip("/")
    r = requests.delete(f"{kiln.url}/api/2.0/mlflow-artifacts/artifacts/{path}", headers=headers)
    assert r.status_code == 200
    assert np.array_equal(mlflow.pyfunc.load_model(f"models:/{name}/1").predict(X), model.predict(X))


def test_search_rename_tags_and_delete(trained):
    X, model, run, info = trained
    client = MlflowClient()
    prefix = unique("search")
    names = [f"{prefix}-a", f"{prefix}-b"]
    for n in names:
        client.create_registered_model(n, tags={"team": "ml" if n.endswith("a") else "bi"}, description="d")
        client.create_model_version(n, info.model_uri, run_id=run.info.run_id, tags={"k": "v"})
    found = client.search_registered_models(filter_string=f"name LIKE '{prefix}-%'")
    assert sorted(m.name for m in found) == names
    assert [m.name for m in client.search_registered_models(filter_string=f"name LIKE '{prefix}-%' and tags.team = 'ml'")] == [names[0]]
    versions = client.search_model_versions(f"name = '{names[0]}'")
    assert [v.version for v in versions] == ["1"]
    assert versions[0].tags == {"k": "v"}
    assert {v.name for v in client.search_model_versions(f"run_id = '{run.info.run_id}'")} >= set(names)

    renamed = f"{prefix}-renamed"
    client.rename_registered_model(names[0], renamed)
    assert client.get_model_version(renamed, "1").version == "1"
    assert np.array_equal(mlflow.pyfunc.load_model(f"models:/{renamed}/1").predict(X), model.predict(X))
    with pytest.raises(MlflowException) as err:
        client.get_registered_model(names[0])
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    client.set_registered_model_tag(renamed, "owner", "ana")
    client.delete_registered_model_tag(renamed, "team")
    assert client.get_registered_model(renamed).tags == {"owner": "ana"}
    client.update_model_version(renamed, "1", description="first")
    assert client.get_model_version(renamed, "1").description == "first"

    client.delete_model_version(renamed, "1")
    with pytest.raises(MlflowException) as err:
        client.get_model_version(renamed, "1")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.create_model_version(renamed, info.model_uri, run_id=run.info.run_id)
    assert client.get_latest_versions(renamed)[0].version == "2"  # numbers are never reused
    client.delete_registered_model(renamed)
    assert client.search_registered_models(filter_string=f"name = '{renamed}'") == []


def test_registry_errors(trained):
    X, model, run, info = trained
    client = MlflowClient()
    name = unique("errors")
    client.create_registered_model(name)
    with pytest.raises(MlflowException) as err:
        client.create_registered_model(name)
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as err:
        client.get_registered_model(unique("missing"))
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.create_model_version(name, info.model_uri, run_id=run.info.run_id)
    for bad_version in ("7", "abc", "-1"):
        with pytest.raises(MlflowException) as err:
            client.get_model_version(name, bad_version)
        assert err.value.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as err:
        client.transition_model_version_stage(name, "1", "Shipping")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_model_version(name, "1").current_stage == "None"
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == ["1"]


def register_from(client, source, with_run):
    """Registers `source` ({run} and {artifacts} filled in from a fresh empty run); the outcome with the run's own
    identifiers put back as placeholders, so two servers' answers compare."""
    run = client.create_run(client.create_experiment(unique("sources")))
    fill = lambda text: text.replace("{run}", run.info.run_id).replace("{artifacts}", run.info.artifact_uri)
    back = lambda text: text.replace(run.info.artifact_uri, "{artifacts}").replace(run.info.run_id, "{run}")
    name = unique("source")
    client.create_registered_model(name)
    try:
        version = client.create_model_version(name, fill(source), run_id=run.info.run_id if with_run else None)
    except MlflowException as error:
        return ("refused", error.error_code, back(error.message).split(".")[0])
    uri = client.get_model_version_download_uri(name, version.version)
    return ("recorded", version.version, back(version.source), back(uri), back(client.get_model_version(name, "1").source))


# Sources Kiln holds no files for: external URIs, empty folders of a run, paths on the client's machine.
SOURCES = [("s3://bucket/models/churn", False), ("gs://bucket/m", True), ("dbfs:/databricks/mlflow/model", False),
           ("runs:/{run}/model", True), ("runs:/{run}/model", False), ("{artifacts}/model", True), ("{artifacts}/model", False),
           ("mlflow-artifacts:/nowhere/at/all", True), ("/home/someone/model", False), ("/home/someone/model", True),
           ("file:///home/someone/model", True)]


@pytest.mark.parametrize("source,with_run", SOURCES)
def test_versions_kiln_cannot_copy_are_recorded_or_refused_as_mlflow_server_does(client_env, kiln, mlflow_server, source, with_run):
    """Recorded with download URI = source (never refused for having no files), or refused with mlflow server's error."""
    kiln_answer = register_from(MlflowClient(tracking_uri=kiln.url, registry_uri=kiln.url), source, with_run)
    peer_answer = register_from(MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server), source, with_run)
    assert kiln_answer == peer_answer
    if source.startswith(("s3:", "gs:", "dbfs:")) or (source.startswith("runs:") and with_run):
        assert kiln_answer[0] == "recorded" and kiln_answer[3] == source


def test_version_lineage(client_env, kiln):
    import pandas as pd
    from sklearn.linear_model import LinearRegression
    mlflow.set_experiment(unique("lineage"))
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]})
    with mlflow.start_run() as run:
        mlflow.log_param("fit_intercept", True)
        mlflow.log_metric("r2", 1.0)
        mlflow.log_input(mlflow.data.from_pandas(df, source="/tmp/kiln-compat/lineage.csv", name="lineage-set"), context="training")
        info = mlflow.sklearn.log_model(LinearRegression().fit(df[["x"]], df["y"]), name="model")
    name = unique("lineage-model")
    mlflow.register_model(info.model_uri, name)
    client = MlflowClient()
    client.transition_model_version_stage(name, "1", "Staging")
    client.set_registered_model_alias(name, "candidate", "1")
    body = requests.get(f"{kiln.url}/api/2.0/kiln/registry/lineage", params={"name": name, "version": "1"},
                        headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert body["created_by"] == "admin"
    assert body["run"]["run_id"] == run.info.run_id
    assert {"key": "fit_intercept", "value": "True"} in body["run"]["params"]
    assert body["run"]["metrics"]["r2"] == 1.0
    assert body["run"]["datasets"][0]["name"].startswith("lineage-set@")
    assert set(body["mlmodel"]["flavors"]) >= {"python_function", "sklearn"}
    assert body["mlmodel"]["loader_module"] == "mlflow.sklearn"
    assert [(a["activity_type"], a["to_stage"]) for a in body["activities"]] == [("APPLIED_TRANSITION", "Staging")]
    assert [(c["alias"], c["to_version"]) for c in body["alias_changes"]] == [("candidate", "1")]
