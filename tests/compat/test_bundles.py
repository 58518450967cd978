"""Jobs as code: `kiln bundle init|validate|deploy|run|destroy` on a real server. The ml-project template's own tests
pass, deploys are idempotent, targets override variables, the retrain job (ingest → train → evaluate → promote →
serve) runs and serves the champion, bad bundles are refused with the reason and create nothing."""
import json
import os
import subprocess
import sys

import pytest
import requests
from databricks.sdk import WorkspaceClient
from mlflow import MlflowClient

from conftest import KILN, TOKEN


def kiln_cmd(server, *args, cwd, check=True):
    env = dict(os.environ, KILN_URL=server.url, KILN_TOKEN=TOKEN)
    result = subprocess.run([KILN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_ml_project_bundle_end_to_end(kiln, tmp_path):
    kiln_cmd(kiln, "bundle", "init", "ml-project", "--name", "churn", cwd=tmp_path)
    project = tmp_path / "churn"
    # The template's own tests.
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests"], cwd=project, capture_output=True, text=True)
    assert tests.returncode == 0 and "4 passed" in tests.stdout, tests.stdout + tests.stderr
    validated = json.loads(kiln_cmd(kiln, "bundle", "validate", "--json", cwd=project).stdout)
    job = validated["resources"]["jobs"]["retrain"]
    assert validated["target"] == "dev" and job["name"] == "[dev] churn-retrain-dev" and job["schedule"]["pause_status"] == "PAUSED"
    assert job["tasks"][3]["spark_python_task"]["python_file"] == str(project / "src" / "evaluate.py")
    assert job["tasks"][0]["python_wheel_task"]["named_parameters"]["source"] == str(project / "data" / "landing")
    first = json.loads(kiln_cmd(kiln, "bundle", "deploy", "--json", cwd=project).stdout)
    again = json.loads(kiln_cmd(kiln, "bundle", "deploy", "--json", cwd=project).stdout)
    assert first == again and set(first) == {"experiments", "registered_models", "jobs"}
    w = WorkspaceClient(host=kiln.url, token=TOKEN, auth_type="pat")
    assert [j.job_id for j in w.jobs.list(name="[dev] churn-retrain-dev")] == [int(first["jobs"]["retrain"])]
    ran = kiln_cmd(kiln, "bundle", "run", "retrain", cwd=project)
    assert "SUCCESS" in ran.stdout and "Endpoint churn-dev created (version 1)" in ran.stdout, ran.stdout
    client = MlflowClient(tracking_uri=kiln.url)
    os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN
    try:
        assert client.get_model_version_by_alias("churn_dev", "champion").version == "1"
    finally:
        os.environ.pop("MLFLOW_TRACKING_TOKEN")
    answer = requests.post(f"{kiln.url}/serving-endpoints/churn-dev/invocations", headers={"Authorization": f"Bearer {TOKEN}"},
                           json={"dataframe_records": [{"tenure": 2.0, "monthly_spend": -1.0, "support_calls": 1.5, "region_score": 0.0}]})
    assert answer.status_code == 200 and answer.json()["predictions"] in ([1], ["1"], [1.0]), answer.text
    # A changed job definition updates the same job; prod is a separate set of resources with its own variables.
    (project / "kiln.yml").write_text((project / "kiln.yml").read_text().replace("max_concurrent_runs: 1", "max_concurrent_runs: 2"))
    updated = kiln_cmd(kiln, "bundle", "deploy", cwd=project).stdout
    assert "updated" in updated and w.jobs.get(int(first["jobs"]["retrain"])).settings.max_concurrent_runs == 2
    prod = json.loads(kiln_cmd(kiln, "bundle", "validate", "--target", "prod", "--json", cwd=project).stdout)
    assert prod["variables"] == {"catalog": "prod", "min_accuracy": "0.8"}
    assert prod["resources"]["jobs"]["retrain"]["tasks"][0]["python_wheel_task"]["named_parameters"]["table"] == "prod.churn_prod.training"
    override = json.loads(kiln_cmd(kiln, "bundle", "validate", "--target", "prod", "--var", "catalog=lab", "--json", cwd=project).stdout)
    assert override["variables"]["catalog"] == "lab"
    destroyed = kiln_cmd(kiln, "bundle", "destroy", "--auto-approve", cwd=project).stdout
    assert "Destroyed target dev" in destroyed and list(w.jobs.list(name="[dev] churn-retrain-dev")) == []
    assert not (project / ".kiln" / "dev" / "state.json").exists()
    kiln_cmd(kiln, "endpoints", "delete", "churn-dev", cwd=project)


@pytest.mark.parametrize("mutate,reason", [
    (lambda y: y.replace("default: true\n", ""), "none is default"),
    (lambda y: y.replace("    default: main\n", ""), "Variable 'catalog' has no value"),
    (lambda y: y.replace("depends_on: [{task_key: ingest}]", "depends_on: [{task_key: serve}]"), "cycle"),
    (lambda y: y.replace("${var.catalog}", "${var.catalgo}", 1), "Unknown reference ${var.catalgo}"),
    (lambda y: y.replace("  experiments:", "  pipelines:", 1), "Unknown resource kind 'pipelines'"),
    (lambda y: y + "  : [", "not valid YAML"),
])
def test_bad_bundles_are_refused_with_the_reason_and_deploy_nothing(kiln, tmp_path, mutate, reason):
    kiln_cmd(kiln, "bundle", "init", "ml-project", "--name", "broken", cwd=tmp_path)
    project = tmp_path / "broken"
    (project / "kiln.yml").write_text(mutate((project / "kiln.yml").read_text()))
    before = requests.get(f"{kiln.url}/api/2.2/jobs/list", headers={"Authorization": f"Bearer {TOKEN}"}).json().get("jobs", [])
    for command in (["bundle", "validate"], ["bundle", "deploy"]):
        result = kiln_cmd(kiln, *command, cwd=project, check=False)
        assert result.returncode != 0 and reason in result.stderr, result.stderr
    after = requests.get(f"{kiln.url}/api/2.2/jobs/list", headers={"Authorization": f"Bearer {TOKEN}"}).json().get("jobs", [])
    assert len(after) == len(before) and not (project / ".kiln").exists()


def test_minimal_template_and_unknown_targets(kiln, tmp_path):
    kiln_cmd(kiln, "bundle", "init", "minimal", "--name", "hello", cwd=tmp_path)
    project = tmp_path / "hello"
    kiln_cmd(kiln, "bundle", "deploy", "--var", "greeting=bonjour", cwd=project)
    out = kiln_cmd(kiln, "bundle", "run", "hello", "--var", "greeting=bonjour", "--json", cwd=project).stdout
    run = json.loads(out)
    w = WorkspaceClient(host=kiln.url, token=TOKEN, auth_type="pat")
    assert w.jobs.get_run_output(run["tasks"][0]["run_id"]).logs.startswith(f"bonjour {run['run_id']}")
    bad = kiln_cmd(kiln, "bundle", "validate", "--target", "qa", cwd=project, check=False)
    assert bad.returncode != 0 and "no target 'qa'" in bad.stderr
    nope = kiln_cmd(kiln, "bundle", "init", "spaceship", cwd=tmp_path, check=False)
    assert nope.returncode != 0 and "Unknown template 'spaceship'" in nope.stderr
    again = kiln_cmd(kiln, "bundle", "init", "minimal", "--name", "hello", cwd=tmp_path, check=False)
    assert again.returncode != 0 and "already holds a kiln.yml" in again.stderr
    kiln_cmd(kiln, "bundle", "destroy", "--auto-approve", cwd=project)


def test_includes_and_job_id_references(kiln, tmp_path):
    project = tmp_path / "multi"
    (project / "resources").mkdir(parents=True)
    (project / "kiln.yml").write_text("""
bundle: {name: multi}
include: [resources/*.yml]
targets: {dev: {default: true}}
""")
    (project / "resources" / "child.yml").write_text("""
variables: {who: {default: parent}}
resources:
  jobs:
    child:
      name: multi-child
      parameters: [{name: who, default: nobody}]
      tasks: [{task_key: check, condition_task: {op: EQUAL_TO, left: "{{job.parameters.who}}", right: parent}}]
""")
    (project / "resources" / "parent.yml").write_text("""
resources:
  jobs:
    parent:
      name: multi-parent
      tasks: [{task_key: call, run_job_task: {job_id: "${resources.jobs.child.id}", job_parameters: {who: "${var.who}"}}}]
""")
    deployed = json.loads(kiln_cmd(kiln, "bundle", "deploy", "--json", cwd=project).stdout)
    child_id = int(deployed["jobs"]["child"])
    w = WorkspaceClient(host=kiln.url, token=TOKEN, auth_type="pat")
    assert w.jobs.get(int(deployed["jobs"]["parent"])).settings.tasks[0].run_job_task.job_id == child_id
    run = json.loads(kiln_cmd(kiln, "bundle", "run", "parent", "--json", cwd=project).stdout)
    assert run["state"]["result_state"] == "SUCCESS", run["state"]
    child_runs = list(w.jobs.list_runs(job_id=child_id))
    assert len(child_runs) == 1 and child_runs[0].trigger.value == "RUN_JOB_TASK"
    again = kiln_cmd(kiln, "bundle", "deploy", cwd=project).stdout
    assert again.count("unchanged") == 2, again
    (project / "resources" / "parent.yml").write_text((project / "resources" / "parent.yml").read_text().replace("jobs.child.id", "jobs.ghost.id"))
    bad = kiln_cmd(kiln, "bundle", "validate", cwd=project, check=False)
    assert bad.returncode != 0 and "${resources.jobs.ghost.id} names no job" in bad.stderr
    (project / "kiln.yml").write_text((project / "kiln.yml").read_text().replace("resources/*.yml", "jobs/*.yml"))
    bad = kiln_cmd(kiln, "bundle", "validate", cwd=project, check=False)
    assert bad.returncode != 0 and "matches no file" in bad.stderr
    (project / "kiln.yml").write_text((project / "kiln.yml").read_text().replace("jobs/*.yml", "resources/child.yml"))
    kiln_cmd(kiln, "bundle", "destroy", "--auto-approve", cwd=project)
