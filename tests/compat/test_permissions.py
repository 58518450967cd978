"""Workspace object permissions through the stock clients: experiments and runs (mlflow client), registered models and
stage transitions, jobs (incl. run-as and what a job's task may do), serving endpoints (query needs CAN_QUERY) —
with `/api/2.0/permissions/...` driven by databricks-sdk. One server of the module's own; users ada, bob (in group
`team`) and eve, each with a personal access token."""
import contextlib
import os
import sys
import time
import uuid

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import PermissionDenied, NotFound
from databricks.sdk.service import iam, jobs, ml, serving
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from conftest import TOKEN
from test_identities import issue
from test_learn import kiln_cli


class World:
    def __init__(self, kiln):
        self.kiln = kiln
        self.admin = WorkspaceClient(host=kiln.url, token=TOKEN, auth_type="pat")
        suffix = uuid.uuid4().hex[:6]
        self.names, self.tokens = {}, {}
        for who in ["ada", "bob", "eve"]:
            name = f"{who}-{suffix}@example.com"
            self.admin.users.create(user_name=name)
            self.names[who] = name
            self.tokens[who] = issue(kiln, name)
        bob = next(iter(self.admin.users.list(filter=f'userName eq "{self.names["bob"]}"')))
        self.team = f"team-{suffix}"
        self.admin.groups.create(display_name=self.team, members=[iam.ComplexValue(value=bob.id)])

    def sdk(self, who):
        return WorkspaceClient(host=self.kiln.url, token=self.tokens[who], auth_type="pat")

    @contextlib.contextmanager
    def mlflow(self, who):
        """The stock MlflowClient acting as `who` (its token in MLFLOW_TRACKING_TOKEN, as users set it)."""
        saved = {k: os.environ.get(k) for k in ["MLFLOW_TRACKING_TOKEN", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"]}
        os.environ["MLFLOW_TRACKING_TOKEN"] = self.tokens[who] if who != "admin" else TOKEN
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
        try:
            yield MlflowClient(tracking_uri=self.kiln.url, registry_uri=self.kiln.url)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def http(self, who, method, path, **kwargs):
        token = TOKEN if who == "admin" else self.tokens[who]
        return requests.request(method, self.kiln.url + path, headers={"Authorization": f"Bearer {token}"}, **kwargs)


@pytest.fixture(scope="module")
def world(own_kiln):
    return World(own_kiln)


def denied(call):
    with pytest.raises(MlflowException) as caught:
        call()
    assert caught.value.error_code == "PERMISSION_DENIED", caught.value
    return caught.value


def test_experiments_are_their_creators_until_shared(world, tmp_path):
    with world.mlflow("ada") as ada:
        exp = ada.create_experiment(f"ada-{uuid.uuid4().hex[:6]}")
        run = ada.create_run(exp).info.run_id
        ada.log_metric(run, "loss", 0.5)
        (tmp_path / "notes.txt").write_text("secret")
        ada.log_artifact(run, str(tmp_path / "notes.txt"))
    with world.mlflow("eve") as eve:
        assert exp not in [e.experiment_id for e in eve.search_experiments()]
        denied(lambda: eve.get_experiment(exp))
        denied(lambda: eve.get_run(run))
        denied(lambda: eve.log_metric(run, "loss", 9.0))
        denied(lambda: eve.search_runs([exp]))
        with pytest.raises(Exception):
            eve.download_artifacts(run, "notes.txt", str(tmp_path / "eve"))
        # A missing experiment is still 404, not 403; the Default experiment is everyone's.
        with pytest.raises(MlflowException) as missing:
            eve.get_experiment("987654")
        assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        eve.log_metric(eve.create_run("0").info.run_id, "x", 1.0)
    r = world.http("eve", "GET", "/api/2.0/mlflow-artifacts/artifacts", params={"path": ""})
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"

    perms = world.sdk("ada").experiments.get_permissions(exp)
    levels = {(a.user_name or a.group_name): [p.permission_level.value for p in a.all_permissions] for a in perms.access_control_list}
    assert levels[world.names["ada"]] == ["CAN_MANAGE"] and levels["admins"] == ["CAN_MANAGE"]
    assert perms.object_id == f"/experiments/{exp}" and perms.object_type == "mlflowExperiment"
    assert [l.permission_level.value for l in world.sdk("ada").experiments.get_permission_levels(exp).permission_levels] == \
        ["CAN_READ", "CAN_EDIT", "CAN_MANAGE"]
    with pytest.raises(PermissionDenied):
        world.sdk("eve").experiments.update_permissions(exp, access_control_list=[
            ml.ExperimentAccessControlRequest(user_name=world.names["eve"], permission_level=ml.ExperimentPermissionLevel.CAN_MANAGE)])

    # Shared with a group: bob (a member) reads, but may not write.
    world.sdk("ada").experiments.update_permissions(exp, access_control_list=[
        ml.ExperimentAccessControlRequest(group_name=world.team, permission_level=ml.ExperimentPermissionLevel.CAN_READ)])
    with world.mlflow("bob") as bob:
        assert bob.get_run(run).data.metrics == {"loss": 0.5}
        assert exp in [e.experiment_id for e in bob.search_experiments()]
        assert [r.info.run_id for r in bob.search_runs([exp])] == [run]
        assert open(bob.download_artifacts(run, "notes.txt", str(tmp_path))).read() == "secret"
        denied(lambda: bob.log_metric(run, "loss", 0.1))
        denied(lambda: bob.delete_experiment(exp))

    # PUT replaces the list: bob loses access on his next call, eve may now log.
    world.sdk("ada").experiments.set_permissions(exp, access_control_list=[
        ml.ExperimentAccessControlRequest(user_name=world.names["eve"], permission_level=ml.ExperimentPermissionLevel.CAN_EDIT)])
    with world.mlflow("bob") as bob:
        denied(lambda: bob.get_run(run))
    with world.mlflow("eve") as eve:
        eve.log_metric(run, "loss", 0.25)
        denied(lambda: eve.rename_experiment(exp, "taken-over"))
    with world.mlflow("ada") as ada:  # the owner keeps nothing after a PUT that leaves her out — admins still see it
        denied(lambda: ada.get_run(run))
    with world.mlflow("admin") as admin:
        assert admin.get_metric_history(run, "loss")[-1].value == 0.25


def test_registered_models_and_stage_transitions(world, tmp_path):
    with world.mlflow("ada") as ada:
        exp = ada.create_experiment(f"ada-models-{uuid.uuid4().hex[:6]}")
        run = ada.create_run(exp).info.run_id
        (tmp_path / "MLmodel").write_text("flavors: {}\n")
        ada.log_artifact(run, str(tmp_path / "MLmodel"), artifact_path="model")
        name = f"ada-model-{uuid.uuid4().hex[:6]}"
        ada.create_registered_model(name)
        ada.create_model_version(name, f"runs:/{run}/model", run_id=run)
    with world.mlflow("bob") as bob:
        assert name not in [m.name for m in bob.search_registered_models()]
        assert bob.search_model_versions(f"name = '{name}'") == []
        denied(lambda: bob.get_registered_model(name))
        # A version needs the model's CAN_EDIT and the source run's CAN_READ.
        denied(lambda: bob.create_model_version(name, f"runs:/{run}/model", run_id=run))

    world.sdk("ada").model_registry.update_permissions(name, access_control_list=[
        ml.RegisteredModelAccessControlRequest(user_name=world.names["bob"],
                                               permission_level=ml.RegisteredModelPermissionLevel.CAN_MANAGE_STAGING_VERSIONS)])
    with world.mlflow("bob") as bob:
        assert name in [m.name for m in bob.search_registered_models()]
        assert bob.transition_model_version_stage(name, "1", "Staging").current_stage == "Staging"
        denied(lambda: bob.transition_model_version_stage(name, "1", "Production"))
        denied(lambda: bob.delete_registered_model(name))
        assert bob.get_model_version_download_uri(name, "1")
    with world.mlflow("ada") as ada:
        ada.transition_model_version_stage(name, "1", "Production")
    with world.mlflow("bob") as bob:  # out of Production takes the Production level too
        denied(lambda: bob.transition_model_version_stage(name, "1", "Staging"))

    # Renamed: the list follows the model. Deleted and made again: nothing comes back.
    with world.mlflow("ada") as ada:
        ada.rename_registered_model(name, name + "-v2")
    with world.mlflow("bob") as bob:
        assert bob.get_registered_model(name + "-v2").name == name + "-v2"
    with world.mlflow("ada") as ada:
        ada.delete_registered_model(name + "-v2")
    with world.mlflow("eve") as eve:
        eve.create_registered_model(name + "-v2")
    with world.mlflow("bob") as bob:
        denied(lambda: bob.get_registered_model(name + "-v2"))
    with world.mlflow("ada") as ada:
        denied(lambda: ada.get_registered_model(name + "-v2"))


def test_jobs_run_as_their_owner_and_need_levels(world, tmp_path):
    with world.mlflow("ada") as ada:
        ada_exp = ada.create_experiment(f"ada-job-{uuid.uuid4().hex[:6]}")
    with world.mlflow("bob") as bob:
        bob_exp = bob.create_experiment(f"bob-job-{uuid.uuid4().hex[:6]}")
    outcome = tmp_path / "outcome.txt"
    script = tmp_path / "task.py"
    script.write_text(f"""
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
c = MlflowClient()
lines = []
for exp in [{ada_exp!r}, {bob_exp!r}]:
    try:
        c.create_run(exp)
        lines.append(exp + " allowed")
    except MlflowException as e:
        lines.append(exp + " " + e.error_code)
open({str(outcome)!r}, "w").write("\\n".join(lines))
""")
    task = jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(python_file=str(script)))
    ada = world.sdk("ada")
    with pytest.raises(PermissionDenied):
        ada.jobs.create(name="as-admin", tasks=[task], run_as=jobs.JobRunAs(user_name="admin"))
    job = ada.jobs.create(name=f"ada-job-{uuid.uuid4().hex[:6]}", tasks=[task]).job_id
    perms = ada.jobs.get_permissions(str(job))
    assert {(a.user_name, a.all_permissions[0].permission_level.value) for a in perms.access_control_list if a.user_name} == \
        {(world.names["ada"], "IS_OWNER")}

    with pytest.raises(PermissionDenied):  # handing the job to someone else would run its tasks as them
        ada.jobs.update_permissions(str(job), access_control_list=[
            jobs.JobAccessControlRequest(user_name=world.names["bob"], permission_level=jobs.JobPermissionLevel.IS_OWNER)])
    eve = world.sdk("eve")
    assert job not in [j.job_id for j in eve.jobs.list()]
    with pytest.raises(PermissionDenied):
        eve.jobs.get(job)
    with pytest.raises(PermissionDenied):
        eve.jobs.run_now(job)
    ada.jobs.update_permissions(str(job), access_control_list=[
        jobs.JobAccessControlRequest(user_name=world.names["eve"], permission_level=jobs.JobPermissionLevel.CAN_MANAGE_RUN)])
    # Eve starts it; it runs as its owner, ada: her experiment allowed, bob's refused.
    run = eve.jobs.run_now(job).result(timeout=__import__("datetime").timedelta(minutes=3))
    assert run.state.result_state.value == "SUCCESS", run.state
    assert outcome.read_text().splitlines() == [f"{ada_exp} allowed", f"{bob_exp} PERMISSION_DENIED"]
    assert run.run_id in [r.run_id for r in eve.jobs.list_runs(job_id=job)]
    with pytest.raises(PermissionDenied):
        eve.jobs.delete(job)
    with pytest.raises(PermissionDenied):
        world.sdk("bob").jobs.get_run(run.run_id)
    assert run.run_id not in [r.run_id for r in world.sdk("bob").jobs.list_runs()]
    # A one-time run is its submitter's alone.
    once = eve.jobs.submit(run_name="once", tasks=[jobs.SubmitTask(task_key="t", spark_python_task=task.spark_python_task)]).run_id
    assert eve.jobs.get_run(once).run_id == once
    with pytest.raises(PermissionDenied):
        world.sdk("bob").jobs.get_run(once)
    assert once in [r.run_id for r in eve.jobs.list_runs()] and once not in [r.run_id for r in world.sdk("bob").jobs.list_runs()]


def test_serving_queries_need_can_query(world, tmp_path):
    import pandas as pd
    model = f"perm_serve_{uuid.uuid4().hex[:6]}"
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 1.5, 3.5], "label": [0, 0, 1, 1, 0, 1]}).to_parquet(tmp_path / "rows.parquet", index=False)
    kiln_cli("table", "write", "main.default.perm_rows", "--from", str(tmp_path / "rows.parquet"), home=world.kiln.home)
    kiln_cli("train", "--url", world.kiln.url, "--table", "main.default.perm_rows", "--target", "label", "--algorithm", "logistic",
             "--features", "x", "--register", model, "--json")
    ada, eve = world.sdk("ada"), world.sdk("eve")
    config = [serving.ServedEntityInput(entity_name=model, entity_version="1", workload_size="Small", scale_to_zero_enabled=True)]
    endpoint = f"perm-{uuid.uuid4().hex[:6]}"
    with pytest.raises(PermissionDenied):  # ada may not read the model yet
        ada.serving_endpoints.create(name=endpoint, config=serving.EndpointCoreConfigInput(name=endpoint, served_entities=config))
    world.admin.model_registry.update_permissions(model, access_control_list=[
        ml.RegisteredModelAccessControlRequest(user_name=world.names["ada"], permission_level=ml.RegisteredModelPermissionLevel.CAN_READ)])
    created = ada.serving_endpoints.create_and_wait(name=endpoint, config=serving.EndpointCoreConfigInput(name=endpoint, served_entities=config))
    rows = {"dataframe_split": {"columns": ["x"], "data": [[1.5], [3.5]]}}
    assert len(world.http("ada", "POST", f"/serving-endpoints/{endpoint}/invocations", json=rows).json()["predictions"]) == 2
    r = world.http("eve", "POST", f"/serving-endpoints/{endpoint}/invocations", json=rows)
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    assert endpoint not in [e.name for e in eve.serving_endpoints.list()]
    ada.serving_endpoints.update_permissions(created.id, access_control_list=[
        serving.ServingEndpointAccessControlRequest(user_name=world.names["eve"],
                                                    permission_level=serving.ServingEndpointPermissionLevel.CAN_QUERY)])
    assert world.http("eve", "POST", f"/serving-endpoints/{endpoint}/invocations", json=rows).status_code == 200
    assert endpoint in [e.name for e in eve.serving_endpoints.list()]
    with pytest.raises(PermissionDenied):
        eve.serving_endpoints.delete(endpoint)
    levels = ada.serving_endpoints.get_permissions(created.id)
    assert levels.object_id == f"/serving-endpoints/{endpoint}"


def test_bad_permission_requests(world):
    with world.mlflow("ada") as ada:
        exp = ada.create_experiment(f"ada-bad-{uuid.uuid4().hex[:6]}")
    for body, word in [({"access_control_list": [{"user_name": "nobody@example.com", "permission_level": "CAN_READ"}]}, "nobody"),
                       ({"access_control_list": [{"user_name": world.names["bob"], "permission_level": "CAN_QUERY"}]}, "CAN_QUERY"),
                       ({"access_control_list": [{"permission_level": "CAN_READ"}]}, "user_name")]:
        r = world.http("ada", "PATCH", f"/api/2.0/permissions/experiments/{exp}", json=body)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE" and word in r.json()["message"], r.text
    r = world.http("ada", "GET", "/api/2.0/permissions/clusters/abc")
    assert r.status_code == 400 and "experiments" in r.json()["message"]
    r = world.http("ada", "GET", "/api/2.0/permissions/experiments/987654")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # Admin-only routes say so.
    r = world.http("eve", "POST", "/api/2.0/mlflow/registry-webhooks/create", json={"events": ["MODEL_VERSION_CREATED"], "http_url_spec": {"url": "http://127.0.0.1:9"}})
    assert r.status_code == 403 and "admins" in r.json()["message"]


def web_session(world, who):
    """A browser-like session signed in to the web UI with `who`'s token."""
    s = requests.Session()
    page = s.get(world.kiln.url + "/ui/login").text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    r = s.post(world.kiln.url + "/ui/login", data={"csrf": csrf, "token": world.tokens[who], "next": "/ui/experiments"}, allow_redirects=False)
    assert r.status_code == 303, r.text
    return s


def test_web_pages_show_only_what_the_user_may_see(world, tmp_path):
    with world.mlflow("ada") as ada:
        name = f"ada-web-{uuid.uuid4().hex[:6]}"
        exp = ada.create_experiment(name)
        run = ada.create_run(exp).info.run_id
        (tmp_path / "MLmodel").write_text("flavors: {}\n")
        ada.log_artifact(run, str(tmp_path / "MLmodel"), artifact_path="model")
        model = f"ada-web-model-{uuid.uuid4().hex[:6]}"
        ada.create_registered_model(model)
        ada.create_model_version(model, f"runs:/{run}/model", run_id=run)
    job = world.sdk("ada").jobs.create(name=f"ada-web-job-{uuid.uuid4().hex[:6]}").job_id
    base = world.kiln.url
    eve, ada_web = web_session(world, "eve"), web_session(world, "ada")
    pages = [f"/ui/experiments/{exp}", f"/ui/experiments/{exp}/runs/{run}", f"/ui/experiments/0/runs/{run}", f"/ui/runs/{run}",
             f"/ui/experiments/{exp}/runs/{run}/artifacts", f"/ui/experiments/{exp}/runs/{run}/artifacts/raw?path=model/MLmodel",
             f"/ui/models/{model}", f"/ui/models/{model}/versions/1", f"/ui/jobs/{job}"]
    for path in pages:
        assert ada_web.get(base + path).status_code == 200, path
        r = eve.get(base + path, allow_redirects=False)
        assert r.status_code == 403 and "CAN_" in r.text, (path, r.status_code)
    for path, hidden in [("/ui/experiments", name), ("/ui/models", model), ("/ui/jobs", f"/ui/jobs/{job}\""), (f"/ui/search?q={name}", f'/ui/experiments/{exp}"'),
                         (f"/ui/search?q={model}", f'/ui/models/{model}"')]:
        assert hidden in ada_web.get(base + path).text, path
        assert hidden not in eve.get(base + path).text, path
    # Buttons take the API's levels: eve may not move ada's version, even to Staging.
    page = eve.get(base + "/ui/experiments").text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    r = eve.post(base + f"/ui/models/{model}/versions/1/actions", data={"csrf": csrf, "action": "transition", "stage": "Staging"}, allow_redirects=False)
    assert r.status_code == 403
    r = eve.post(base + f"/ui/jobs/{job}/run-now", data={"csrf": csrf}, allow_redirects=False)
    assert r.status_code == 403
    # Shared: the next page view sees it.
    world.sdk("ada").experiments.update_permissions(exp, access_control_list=[
        ml.ExperimentAccessControlRequest(user_name=world.names["eve"], permission_level=ml.ExperimentPermissionLevel.CAN_READ)])
    assert eve.get(base + f"/ui/experiments/{exp}/runs/{run}").status_code == 200
    assert name in eve.get(base + "/ui/experiments").text
    # The experiment's page says who has access (and the model's, to its owner).
    page = eve.get(base + f"/ui/experiments/{exp}").text
    access = page.split('data-testid="access"')[1].split("</section>")[0]
    assert f"{world.names['ada']}</span> · <code>CAN_MANAGE" in access and f"{world.names['eve']}</span> · <code>CAN_READ" in access
    assert "admins</span>" in access and f"/api/2.0/permissions/experiments/{exp}" in access
    assert f"{world.names['ada']}</span> · <code>CAN_MANAGE" in ada_web.get(base + f"/ui/models/{model}").text


def test_training_reads_and_writes_as_the_caller(world, tmp_path):
    import pandas as pd
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 1.5, 3.5, 0.5, 4.5], "label": [0, 0, 1, 1, 0, 1, 0, 1]}).to_parquet(tmp_path / "t.parquet", index=False)
    kiln_cli("table", "write", "main.default.train_rows", "--from", str(tmp_path / "t.parquet"), home=world.kiln.home)
    experiment, model = f"eve-train-{uuid.uuid4().hex[:6]}", f"eve_model_{uuid.uuid4().hex[:6]}"
    args = ["train", "--url", world.kiln.url, "--token", world.tokens["eve"], "--table", "main.default.train_rows", "--target", "label",
            "--algorithm", "logistic", "--features", "x", "--experiment", experiment, "--register", model, "--json"]
    refused = kiln_cli(*args, check=False)
    assert refused.returncode != 0 and "SELECT" in refused.stderr, refused.stderr
    for sql in ["GRANT USE CATALOG ON CATALOG main TO `{u}`", "GRANT USE SCHEMA ON SCHEMA main.default TO `{u}`",
                "GRANT SELECT ON TABLE main.default.train_rows TO `{u}`"]:
        kiln_cli("sql", "--url", world.kiln.url, sql.format(u=world.names["eve"]))
    kiln_cli(*args)
    with world.mlflow("eve") as eve:  # what training made is hers
        exp = eve.get_experiment_by_name(experiment)
        assert eve.search_runs([exp.experiment_id])[0].data.metrics
        assert eve.get_registered_model(model).latest_versions
    with world.mlflow("bob") as bob:
        denied(lambda: bob.get_registered_model(model))
        assert experiment not in [e.name for e in bob.search_experiments()]
    # Training into someone else's model needs CAN_EDIT on it.
    bob_args = [a if a != world.tokens["eve"] else world.tokens["bob"] for a in args]
    kiln_cli("sql", "--url", world.kiln.url, "GRANT USE CATALOG, USE SCHEMA, SELECT ON CATALOG main TO `{}`".format(world.names["bob"]))
    refused = kiln_cli(*bob_args[:-5], "--register", model, "--json", check=False)
    assert refused.returncode != 0 and "CAN_EDIT" in refused.stderr, refused.stderr
    # Reproducing her run: reading how it was made takes CAN_READ on her experiment; the new run, CAN_EDIT there.
    with world.mlflow("eve") as eve:
        run_id = eve.search_runs([eve.get_experiment_by_name(experiment).experiment_id])[0].info.run_id
        eve_experiment = eve.get_experiment_by_name(experiment).experiment_id
    reproduce = ["runs", "reproduce", run_id, "--url", world.kiln.url, "--token"]
    refused = kiln_cli(*reproduce, world.tokens["bob"], check=False)
    assert refused.returncode != 0 and "CAN_READ" in refused.stderr, refused.stderr
    world.sdk("eve").experiments.update_permissions(eve_experiment, access_control_list=[
        ml.ExperimentAccessControlRequest(user_name=world.names["bob"], permission_level=ml.ExperimentPermissionLevel.CAN_READ)])
    refused = kiln_cli(*reproduce, world.tokens["bob"], check=False)
    assert refused.returncode != 0 and "CAN_EDIT" in refused.stderr, refused.stderr
    assert "match" in kiln_cli(*reproduce, world.tokens["eve"]).stdout.lower()


def test_one_user_is_allowed_or_denied_alike_on_every_path(world, tmp_path):
    """One user, one table, one model and one endpoint, reached through databricks-sdk, `kiln sql --url`,
    `kiln train --url`, the mlflow client, a serving query, and a job's SQL and Python tasks (which act as the job's
    owner, and so does a native `kiln_task`): before any grant every path is refused; after the grants every path is allowed; with the table's SELECT
    revoked, every path to the table is refused again and every path to the model and endpoint still allowed."""
    import datetime
    import json
    import subprocess

    import pandas as pd
    from databricks.sdk.service import catalog as uc

    from conftest import KILN
    suffix = uuid.uuid4().hex[:6]
    table, model, endpoint = f"main.default.alike_{suffix}", f"alike_model_{suffix}", f"alike-{suffix}"
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 1.5, 3.5], "label": [0, 0, 1, 1, 0, 1]}).to_parquet(tmp_path / "rows.parquet", index=False)
    kiln_cli("table", "write", table, "--from", str(tmp_path / "rows.parquet"), home=world.kiln.home)
    kiln_cli("train", "--url", world.kiln.url, "--table", table, "--target", "label", "--algorithm", "logistic", "--features", "x",
             "--register", model, "--json")
    config = [serving.ServedEntityInput(entity_name=model, entity_version="1", workload_size="Small", scale_to_zero_enabled=True)]
    created = world.admin.serving_endpoints.create_and_wait(name=endpoint, config=serving.EndpointCoreConfigInput(name=endpoint, served_entities=config))
    eve, token = world.sdk("eve"), world.tokens["eve"]
    rows = {"columns": ["x"], "data": [[1.5], [3.5]]}
    outcome = tmp_path / "task.json"
    script = tmp_path / "task.py"
    script.write_text(f"""
import json, os, requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
url, auth = os.environ["KILN_URL"], {{"Authorization": "Bearer " + os.environ["KILN_TOKEN"]}}
out = {{}}
r = requests.post(url + "/api/2.0/sql/statements", headers=auth,
                  json={{"statement": "SELECT count(*) FROM {table}", "warehouse_id": "kiln", "wait_timeout": "30s"}})
out["job python task: table"] = r.status_code == 200 and r.json()["status"]["state"] == "SUCCEEDED"
try:
    MlflowClient().get_registered_model({model!r})
    out["job python task: model"] = True
except MlflowException as e:
    assert e.error_code == "PERMISSION_DENIED", e
    out["job python task: model"] = False
r = requests.post(url + "/serving-endpoints/{endpoint}/invocations", headers=auth, json={{"dataframe_split": {rows!r}}})
out["job python task: endpoint"] = r.status_code == 200
open({str(outcome)!r}, "w").write(json.dumps(out))
""")
    job = eve.jobs.create(name=f"alike-{suffix}", tasks=[
        jobs.Task(task_key="sql", sql_task=jobs.SqlTask(query=jobs.SqlTaskQuery(query_id="q"), warehouse_id="kiln")),
        jobs.Task(task_key="py", spark_python_task=jobs.SparkPythonTask(python_file=str(script)))]).job_id
    # The SQL task's text (Kiln reads query.query_text; the SDK's SqlTaskQuery has only query_id).
    world.http("eve", "POST", "/api/2.1/jobs/update", json={"job_id": job, "new_settings": {"tasks": [
        {"task_key": "sql", "sql_task": {"query": {"query_text": f"SELECT count(*) FROM {table}"}, "warehouse_id": "kiln"}},
        {"task_key": "py", "spark_python_task": {"python_file": str(script)}},
        {"task_key": "predict", "kiln_task": {"action": "predict", "parameters": {
            "model": f"models:/{model}/1", "table": table, "output": f"main.default.alike_scores_{suffix}"}}}]}}).raise_for_status()

    def refused(call, error=PermissionDenied):
        try:
            call()
            return False
        except error:
            return True

    def paths():
        seen = {}
        seen["databricks-sdk: table"] = not refused(lambda: eve.statement_execution.execute_statement(
            statement=f"SELECT count(*) FROM {table}", warehouse_id="kiln", wait_timeout="30s"))
        r = subprocess.run([KILN, "sql", "--url", world.kiln.url, "--token", token, f"SELECT count(*) FROM {table}"],
                           capture_output=True, text=True)
        assert r.returncode == 0 or "SELECT" in r.stderr, r.stderr
        seen["kiln sql --url: table"] = r.returncode == 0
        r = subprocess.run([KILN, "train", "--url", world.kiln.url, "--token", token, "--table", table, "--target", "label",
                            "--algorithm", "logistic", "--features", "x", "--json"], capture_output=True, text=True)
        assert r.returncode == 0 or "SELECT" in r.stderr, r.stderr
        seen["kiln train --url: table"] = r.returncode == 0
        with world.mlflow("eve") as client:
            seen["mlflow client: model"] = not refused(lambda: client.get_registered_model(model), MlflowException)
        seen["databricks-sdk: model"] = not refused(lambda: eve.model_registry.get_model(model))
        seen["databricks-sdk: endpoint"] = not refused(lambda: eve.serving_endpoints.query(
            endpoint, dataframe_split=serving.DataframeSplitInput(columns=rows["columns"], data=rows["data"])))
        r = world.http("eve", "POST", f"/serving-endpoints/{endpoint}/invocations", json={"dataframe_split": rows})
        assert r.status_code in (200, 403), r.text
        seen["serving query: endpoint"] = r.status_code == 200
        run = eve.jobs.run_now(job).result(timeout=datetime.timedelta(minutes=3))
        states = {t.task_key: t.state.result_state.value for t in eve.jobs.get_run(run.run_id).tasks}
        seen["job SQL task: table"] = states["sql"] == "SUCCESS"
        seen["job native predict task (reads the model too): table"] = states["predict"] == "SUCCESS"
        assert states["py"] == "SUCCESS", states
        seen.update(json.loads(outcome.read_text()))
        return seen

    def alike(seen, table_allowed, others_allowed):
        expected = {k: table_allowed if k.endswith(": table") else others_allowed for k in seen}
        assert seen == expected, {k: v for k, v in seen.items() if v != expected[k]}

    alike(paths(), False, False)
    user = world.names["eve"]
    world.admin.grants.update(securable_type="catalog", full_name="main", changes=[uc.PermissionsChange(principal=user, add=[uc.Privilege.USE_CATALOG])])
    world.admin.grants.update(securable_type="schema", full_name="main.default",
                              changes=[uc.PermissionsChange(principal=user, add=[uc.Privilege.USE_SCHEMA, uc.Privilege.CREATE_TABLE])])
    world.admin.grants.update(securable_type="table", full_name=table, changes=[uc.PermissionsChange(principal=user, add=[uc.Privilege.SELECT])])
    world.admin.model_registry.update_permissions(model, access_control_list=[
        ml.RegisteredModelAccessControlRequest(user_name=user, permission_level=ml.RegisteredModelPermissionLevel.CAN_READ)])
    world.admin.serving_endpoints.update_permissions(created.id, access_control_list=[
        serving.ServingEndpointAccessControlRequest(user_name=user, permission_level=serving.ServingEndpointPermissionLevel.CAN_QUERY)])
    alike(paths(), True, True)
    assert world.admin.tables.get(f"main.default.alike_scores_{suffix}").owner == user  # what the task made is its run-as identity's
    world.admin.grants.update(securable_type="table", full_name=table, changes=[uc.PermissionsChange(principal=user, remove=[uc.Privilege.SELECT])])
    alike(paths(), False, True)


def test_registry_webhooks_are_for_the_models_managers(world):
    """A model's webhooks take CAN_MANAGE on it (databricks-sdk's model_registry webhooks); registry-wide ones an
    admin; lists hold what the caller manages."""
    ada, eve = world.sdk("ada"), world.sdk("eve")
    model = f"hooked_{uuid.uuid4().hex[:6]}"
    with world.mlflow("ada") as client:
        client.create_registered_model(model)
    spec = ml.HttpUrlSpec(url="http://127.0.0.1:9/hook")
    hook = ada.model_registry.create_webhook(events=[ml.RegistryWebhookEvent.MODEL_VERSION_CREATED], model_name=model, http_url_spec=spec).webhook
    with pytest.raises(PermissionDenied):
        eve.model_registry.create_webhook(events=[ml.RegistryWebhookEvent.MODEL_VERSION_CREATED], model_name=model, http_url_spec=spec)
    with pytest.raises(PermissionDenied):  # registry-wide: admins only
        ada.model_registry.create_webhook(events=[ml.RegistryWebhookEvent.MODEL_VERSION_CREATED], http_url_spec=spec)
    assert hook.id in [h.id for h in ada.model_registry.list_webhooks()]
    assert hook.id not in [h.id for h in eve.model_registry.list_webhooks()]
    with pytest.raises(PermissionDenied):
        eve.model_registry.delete_webhook(id=hook.id)
    wide = world.admin.model_registry.create_webhook(events=[ml.RegistryWebhookEvent.MODEL_VERSION_CREATED], http_url_spec=spec).webhook
    assert {hook.id, wide.id} <= {h.id for h in world.admin.model_registry.list_webhooks()}
    assert wide.id not in [h.id for h in ada.model_registry.list_webhooks()]
    world.admin.model_registry.update_permissions(model, access_control_list=[
        ml.RegisteredModelAccessControlRequest(user_name=world.names["eve"], permission_level=ml.RegisteredModelPermissionLevel.CAN_MANAGE)])
    eve.model_registry.delete_webhook(id=hook.id)
    world.admin.model_registry.delete_webhook(id=wide.id)
