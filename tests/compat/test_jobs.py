"""Jobs through the stock databricks-sdk: definitions (create, get, list, update, reset, delete; bad definitions are
400s with the reason and store nothing) and runs (run-now and wait, task values, condition tasks, retries, notebooks
through papermill, repair, cancel, timeouts, queueing, schedules with an injected clock, file arrival, a server
restart in the middle of a run, and a retraining pipeline of Kiln's native tasks)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, NotFound
from databricks.sdk.service.jobs import (ConditionTask, ConditionTaskOp, CronSchedule, JobParameterDefinition, JobSettings, NotebookTask,
                                         PauseStatus, PythonWheelTask, QueueSettings, RunIf, RunLifeCycleState, RunResultState, SparkPythonTask,
                                         Task, TaskDependency)

from conftest import TOKEN, KilnServer


@pytest.fixture(scope="module")
def w(kiln):
    return WorkspaceClient(host=kiln.url, token=TOKEN, auth_type="pat")


def dag():
    return [
        Task(task_key="ingest", spark_python_task=SparkPythonTask(python_file="ingest.py", parameters=["--day", "{{job.start_time.iso_date}}"])),
        Task(task_key="check", depends_on=[TaskDependency(task_key="ingest")],
             condition_task=ConditionTask(op=ConditionTaskOp.GREATER_THAN, left="{{tasks.ingest.values.rows}}", right="0")),
        Task(task_key="train", depends_on=[TaskDependency(task_key="check", outcome="true")], max_retries=2,
             notebook_task=NotebookTask(notebook_path="/train.ipynb")),
        Task(task_key="report", depends_on=[TaskDependency(task_key="train"), TaskDependency(task_key="check")], run_if=RunIf.ALL_DONE,
             spark_python_task=SparkPythonTask(python_file="report.py")),
    ]


def test_create_get_list_update_reset_delete(w):
    schedule = CronSchedule(quartz_cron_expression="0 30 6 ? * MON-FRI", timezone_id="Europe/Amsterdam", pause_status=PauseStatus.UNPAUSED)
    created = w.jobs.create(name="nightly", tasks=dag(), schedule=schedule, max_concurrent_runs=1, tags={"team": "ml"})
    job = w.jobs.get(created.job_id)
    assert job.settings.name == "nightly" and [t.task_key for t in job.settings.tasks] == ["ingest", "check", "train", "report"]
    assert job.settings.schedule.quartz_cron_expression == "0 30 6 ? * MON-FRI" and job.settings.tags == {"team": "ml"}
    assert job.settings.tasks[2].max_retries == 2 and job.settings.tasks[3].run_if == RunIf.ALL_DONE
    assert job.created_time > 0 and job.creator_user_name
    others = [w.jobs.create(name=f"job-{k}", tasks=[Task(task_key="t", notebook_task=NotebookTask(notebook_path="/n"))]).job_id for k in range(25)]
    listed = [j.job_id for j in w.jobs.list()]  # the SDK follows next_page_token across pages of 20
    assert created.job_id in listed and set(others) <= set(listed) and len(listed) == len(set(listed))
    assert [j.job_id for j in w.jobs.list(name="job-3")] == [others[3]]
    w.jobs.update(created.job_id, new_settings=JobSettings(name="nightly-v2", tasks=[
        Task(task_key="report", depends_on=[TaskDependency(task_key="train")], spark_python_task=SparkPythonTask(python_file="r2.py"))]),
        fields_to_remove=["tags"])
    job = w.jobs.get(created.job_id)
    assert job.settings.name == "nightly-v2" and job.settings.tags is None
    assert job.settings.tasks[3].spark_python_task.python_file == "r2.py" and len(job.settings.tasks) == 4
    w.jobs.reset(created.job_id, new_settings=JobSettings(name="small", tasks=dag()[:1]))
    assert [t.task_key for t in w.jobs.get(created.job_id).settings.tasks] == ["ingest"]
    w.jobs.delete(created.job_id)
    with pytest.raises(NotFound):
        w.jobs.get(created.job_id)


@pytest.mark.parametrize("tasks,schedule,reason", [
    ([Task(task_key="a", depends_on=[TaskDependency(task_key="b")], notebook_task=NotebookTask(notebook_path="/a")),
      Task(task_key="b", depends_on=[TaskDependency(task_key="c")], notebook_task=NotebookTask(notebook_path="/b")),
      Task(task_key="c", depends_on=[TaskDependency(task_key="a")], notebook_task=NotebookTask(notebook_path="/c"))], None, "cycle: a → b → c → a"),
    ([Task(task_key="a", depends_on=[TaskDependency(task_key="ghost")], notebook_task=NotebookTask(notebook_path="/a"))], None, "unknown task 'ghost'"),
    ([Task(task_key="a", depends_on=[TaskDependency(task_key="a")], notebook_task=NotebookTask(notebook_path="/a"))], None, "depends on itself"),
    ([Task(task_key="a")], None, "has no task type"),
    ([Task(task_key="a", notebook_task=NotebookTask(notebook_path="/a")), Task(task_key="a", notebook_task=NotebookTask(notebook_path="/b"))],
     None, "used twice"),
    ([Task(task_key="a", notebook_task=NotebookTask(notebook_path="/a"))], CronSchedule(quartz_cron_expression="0 61 * * * ?", timezone_id="UTC"),
     "bad minutes field '61'"),
    ([Task(task_key="a", notebook_task=NotebookTask(notebook_path="/a"))], CronSchedule(quartz_cron_expression="0 0 12 * *", timezone_id="UTC"),
     "6 or 7 fields"),
    ([Task(task_key="a", notebook_task=NotebookTask(notebook_path="/a"))], CronSchedule(quartz_cron_expression="0 0 12 * * MON", timezone_id="UTC"),
     "exactly one of day-of-month and day-of-week"),
    ([Task(task_key="a", notebook_task=NotebookTask(notebook_path="/a"))], CronSchedule(quartz_cron_expression="0 0 12 * * ?", timezone_id="Mars/Base"),
     "not a time zone"),
])
def test_bad_definitions_are_refused_and_nothing_is_created(w, tasks, schedule, reason):
    before = len(list(w.jobs.list()))
    with pytest.raises(BadRequest) as error:
        w.jobs.create(name="bad", tasks=tasks, schedule=schedule)
    assert reason in str(error.value)
    assert len(list(w.jobs.list())) == before


def test_quartz_expressions_databricks_users_write_are_accepted(w):
    for cron in ["0 0 0 * * ?", "0 15 10 ? * 6L", "0 0/5 14,18 * * ?", "0 0 12 1/5 * ?", "0 11 11 11 11 ?", "0 0 9 ? * 2#1",
                 "0 0 8 L * ?", "0 0 8 15W * ?", "30 45 23 ? JAN-MAR SUN 2030", "0 0 6 ? * MON-FRI"]:
        job = w.jobs.create(name="cron", tasks=[Task(task_key="t", notebook_task=NotebookTask(notebook_path="/n"))],
                            schedule=CronSchedule(quartz_cron_expression=cron, timezone_id="UTC"))
        w.jobs.delete(job.job_id)


def test_jobs_need_a_token(kiln):
    assert requests.get(f"{kiln.url}/api/2.2/jobs/list").status_code == 401


# ---------------------------------------------------------------------------------------------------------------------
# Runs

def script(path, text):
    path.write_text(text)
    return str(path)


def wait_run(w, run_id, timeout=120):
    """Polls runs/get until the run is final (what the SDK's waiter does, without its back-off)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = w.jobs.get_run(run_id)
        if run.state.life_cycle_state in (RunLifeCycleState.TERMINATED, RunLifeCycleState.SKIPPED, RunLifeCycleState.INTERNAL_ERROR):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {w.jobs.get_run(run_id).state}")


def tasks_by_key(run):
    return {t.task_key: t for t in run.tasks}


NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ["rows = '0'\n"], "outputs": [], "execution_count": None},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": [
            "upstream = dbutils.jobs.taskValues.get(taskKey='extract', key='rows')\n",
            "assert int(rows) == upstream, (rows, upstream)\n",
            "print('report sees', rows)\n",
            "dbutils.jobs.taskValues.set('report', f'rows={rows}')\n",
            "dbutils.notebook.exit(f'rows={rows}')\n"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": ["raise RuntimeError('a cell after exit ran')\n"]},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def test_five_task_dag_with_condition_retries_task_values_and_a_notebook(w, tmp_path):
    counter = tmp_path / "flaky.count"
    token_file = tmp_path / "token"
    extract = script(tmp_path / "extract.py", f"""
import os, sys
from databricks.sdk import WorkspaceClient
from databricks.sdk.runtime import dbutils
print("args", sys.argv[1:])
print("job name seen with the run's token:", WorkspaceClient().jobs.get(int(sys.argv[3])).settings.name)
open({str(token_file)!r}, "w").write(os.environ["DATABRICKS_TOKEN"])
dbutils.jobs.taskValues.set("rows", 42)
dbutils.jobs.taskValues.set("meta", {{"source": "landing", "ok": True}})
""")
    flaky = script(tmp_path / "flaky.py", f"""
import os
path = {str(counter)!r}
n = int(open(path).read()) if os.path.exists(path) else 0
open(path, "w").write(str(n + 1))
if n == 0:
    raise SystemExit("first attempt fails on purpose")
print("second attempt works")
""")
    never = script(tmp_path / "never.py", "raise SystemExit('must not run')\n")
    notebook = tmp_path / "report.ipynb"
    notebook.write_text(json.dumps(NOTEBOOK))
    job = w.jobs.create(name="dag5", parameters=[JobParameterDefinition(name="day", default="2026-01-01")], tasks=[
        Task(task_key="extract", spark_python_task=SparkPythonTask(python_file=extract,
             parameters=["{{job.run_id}}", "{{job.parameters.day}}", "{{job.id}}", "{{task.name}}"])),
        Task(task_key="check", depends_on=[TaskDependency(task_key="extract")],
             condition_task=ConditionTask(op=ConditionTaskOp.GREATER_THAN, left="{{tasks.extract.values.rows}}", right="10")),
        Task(task_key="flaky", depends_on=[TaskDependency(task_key="check", outcome="true")], max_retries=2, min_retry_interval_millis=200,
             spark_python_task=SparkPythonTask(python_file=flaky)),
        Task(task_key="report", depends_on=[TaskDependency(task_key="flaky")],
             notebook_task=NotebookTask(notebook_path=str(notebook), base_parameters={"rows": "{{tasks.extract.values.rows}}"})),
        Task(task_key="skipped", depends_on=[TaskDependency(task_key="check", outcome="false")], spark_python_task=SparkPythonTask(python_file=never)),
    ])
    run = w.jobs.run_now(job.job_id, job_parameters={"day": "2026-11-29"}).result(timeout=__import__("datetime").timedelta(minutes=3))
    assert run.state.result_state == RunResultState.SUCCESS, run.state
    t = tasks_by_key(run)
    assert [x.task_key for x in run.tasks] == ["extract", "check", "flaky", "report", "skipped"]
    assert t["check"].condition_task.outcome == "true"
    assert t["flaky"].attempt_number == 1 and t["flaky"].state.result_state == RunResultState.SUCCESS and counter.read_text() == "2"
    assert t["skipped"].state.result_state == RunResultState.EXCLUDED
    out = w.jobs.get_run_output(t["extract"].run_id)
    assert f"args ['{run.run_id}', '2026-11-29', '{job.job_id}', 'extract']" in out.logs
    assert "job name seen with the run's token: dag5" in out.logs
    # The task's token is the run's own, not the admin's, and dies with the run.
    run_token = token_file.read_text()
    assert run_token.startswith("kiln_run_") and run_token != TOKEN
    assert requests.get(f"{w.config.host}/api/2.2/jobs/list", headers={"Authorization": f"Bearer {run_token}"}).status_code == 401
    report = w.jobs.get_run_output(t["report"].run_id)
    assert report.notebook_output.result == "rows=42"
    exported = w.jobs.export_run(t["report"].run_id)
    assert "report sees" in exported.views[0].content and exported.views[0].name == "report"
    raw = requests.get(f"{w.config.host}/api/2.2/jobs/runs/get-output", params={"run_id": t["extract"].run_id},
                       headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert raw["task_values"] == {"rows": 42, "meta": {"source": "landing", "ok": True}}
    # The first, failed attempt of the retried task keeps its own output.
    outputs = [w.jobs.get_run_output(i) for i in range(t["check"].run_id + 1, t["flaky"].run_id)]
    first = [o for o in outputs if o.metadata.tasks[0].task_key == "flaky"]
    assert len(first) == 1 and first[0].metadata.attempt_number == 0 and "first attempt fails on purpose" in first[0].error
    with pytest.raises(BadRequest, match="multi-task run"):
        w.jobs.get_run_output(run.run_id)
    listed = list(w.jobs.list_runs(job_id=job.job_id))
    assert [r.run_id for r in listed] == [run.run_id] and listed[0].job_parameters[0].value == "2026-11-29"


def test_repair_reruns_only_failed_tasks_and_their_dependents(w, tmp_path):
    log = tmp_path / "executions.log"
    marker = tmp_path / "fixed"
    step = script(tmp_path / "step.py", f"""
import os, sys
open({str(log)!r}, "a").write(sys.argv[1] + "\\n")
if sys.argv[1] == "transform" and not os.path.exists({str(marker)!r}):
    raise SystemExit("transform is broken")
""")
    job = w.jobs.create(name="repairable", tasks=[
        Task(task_key="load", spark_python_task=SparkPythonTask(python_file=step, parameters=["load"])),
        Task(task_key="transform", depends_on=[TaskDependency(task_key="load")], spark_python_task=SparkPythonTask(python_file=step, parameters=["transform"])),
        Task(task_key="publish", depends_on=[TaskDependency(task_key="transform")], spark_python_task=SparkPythonTask(python_file=step, parameters=["publish"])),
        Task(task_key="audit", spark_python_task=SparkPythonTask(python_file=step, parameters=["audit"])),
    ])
    run_id = w.jobs.run_now(job.job_id).run_id
    run = wait_run(w, run_id)
    t = tasks_by_key(run)
    assert run.state.result_state == RunResultState.FAILED and "transform is broken" in run.state.state_message
    assert t["transform"].state.result_state == RunResultState.FAILED and t["publish"].state.result_state == RunResultState.UPSTREAM_FAILED
    assert sorted(log.read_text().split()) == ["audit", "load", "transform"]
    with pytest.raises(BadRequest, match="Nothing to repair"):
        w.jobs.repair_run(run_id, rerun_tasks=[])
    marker.write_text("yes")
    repair = w.jobs.repair_run(run_id, rerun_all_failed_tasks=True)
    run = wait_run(w, run_id)
    t2 = tasks_by_key(run)
    assert run.state.result_state == RunResultState.SUCCESS
    assert sorted(log.read_text().split()) == ["audit", "load", "publish", "transform", "transform"]
    assert t2["load"].run_id == t["load"].run_id and t2["audit"].run_id == t["audit"].run_id
    assert t2["transform"].run_id != t["transform"].run_id
    assert [h.type.value for h in run.repair_history] == ["ORIGINAL", "REPAIR"] and run.repair_history[1].id == repair.response.repair_id
    assert set(run.repair_history[1].task_run_ids) == {t2["transform"].run_id, t2["publish"].run_id}
    with pytest.raises(BadRequest, match="latest_repair_id"):
        w.jobs.repair_run(run_id, rerun_tasks=["audit"])


def test_run_if_rules_cancel_timeouts_and_queueing(w, tmp_path):
    fail = script(tmp_path / "fail.py", "raise SystemExit(1)\n")
    ok = script(tmp_path / "ok.py", "print('ok')\n")
    sleep = script(tmp_path / "sleep.py", "import time\ntime.sleep(60)\n")
    job = w.jobs.create(name="rules", tasks=[
        Task(task_key="bad", spark_python_task=SparkPythonTask(python_file=fail)),
        Task(task_key="good", spark_python_task=SparkPythonTask(python_file=ok)),
        Task(task_key="all_done", run_if=RunIf.ALL_DONE, depends_on=[TaskDependency("bad"), TaskDependency("good")], spark_python_task=SparkPythonTask(python_file=ok)),
        Task(task_key="one_failed", run_if=RunIf.AT_LEAST_ONE_FAILED, depends_on=[TaskDependency("bad"), TaskDependency("good")],
             spark_python_task=SparkPythonTask(python_file=ok)),
        Task(task_key="none_failed", run_if=RunIf.NONE_FAILED, depends_on=[TaskDependency("bad"), TaskDependency("good")],
             spark_python_task=SparkPythonTask(python_file=ok)),
        Task(task_key="one_success", run_if=RunIf.AT_LEAST_ONE_SUCCESS, depends_on=[TaskDependency("bad"), TaskDependency("good")],
             spark_python_task=SparkPythonTask(python_file=ok)),
        Task(task_key="all_failed", run_if=RunIf.ALL_FAILED, depends_on=[TaskDependency("bad"), TaskDependency("good")],
             spark_python_task=SparkPythonTask(python_file=ok)),
    ])
    run = wait_run(w, w.jobs.run_now(job.job_id).run_id)
    r = {k: v.state.result_state for k, v in tasks_by_key(run).items()}
    assert r == {"bad": RunResultState.FAILED, "good": RunResultState.SUCCESS, "all_done": RunResultState.SUCCESS, "one_failed": RunResultState.SUCCESS,
                 "none_failed": RunResultState.UPSTREAM_FAILED, "one_success": RunResultState.SUCCESS, "all_failed": RunResultState.EXCLUDED}
    # none_failed is a leaf that did not run because of a failure: the run failed.
    assert run.state.result_state == RunResultState.FAILED

    # Timeouts, with and without retry_on_timeout.
    job = w.jobs.create(name="slow", tasks=[
        Task(task_key="slow", timeout_seconds=1, spark_python_task=SparkPythonTask(python_file=sleep)),
        Task(task_key="slow_retried", timeout_seconds=1, max_retries=1, retry_on_timeout=True, spark_python_task=SparkPythonTask(python_file=sleep)),
    ])
    started = time.time()
    run = wait_run(w, w.jobs.run_now(job.job_id).run_id)
    t = tasks_by_key(run)
    assert t["slow"].state.result_state == RunResultState.TIMEDOUT and t["slow_retried"].attempt_number == 1
    assert t["slow_retried"].state.result_state == RunResultState.TIMEDOUT and time.time() - started < 30

    # Cancel stops the process; queueing behind max_concurrent_runs; without a queue the second run is skipped.
    job = w.jobs.create(name="sleepy", max_concurrent_runs=1, queue=QueueSettings(enabled=True),
                        tasks=[Task(task_key="sleep", spark_python_task=SparkPythonTask(python_file=sleep))])
    first = w.jobs.run_now(job.job_id).run_id
    second = w.jobs.run_now(job.job_id).run_id
    time.sleep(1)
    assert w.jobs.get_run(second).state.life_cycle_state == RunLifeCycleState.QUEUED
    assert w.jobs.get_run(first).state.life_cycle_state == RunLifeCycleState.RUNNING
    started = time.time()
    w.jobs.cancel_run(first)
    run = wait_run(w, first, timeout=20)
    assert run.state.result_state == RunResultState.CANCELED and time.time() - started < 10
    deadline = time.time() + 20
    while w.jobs.get_run(second).state.life_cycle_state != RunLifeCycleState.RUNNING:
        assert time.time() < deadline
        time.sleep(0.1)
    w.jobs.cancel_all_runs(job_id=job.job_id)
    assert wait_run(w, second, timeout=20).state.result_state == RunResultState.CANCELED
    w.jobs.update(job.job_id, new_settings=JobSettings(queue=QueueSettings(enabled=False)))
    first = w.jobs.run_now(job.job_id).run_id
    skipped = w.jobs.get_run(w.jobs.run_now(job.job_id).run_id)
    assert skipped.state.life_cycle_state == RunLifeCycleState.SKIPPED and "max_concurrent_runs" in skipped.state.state_message
    w.jobs.cancel_run(first)
    wait_run(w, first)
    w.jobs.delete_run(first)
    with pytest.raises(NotFound):
        w.jobs.get_run(first)


def test_sql_for_each_run_job_and_shell_tasks(w, kiln, tmp_path):
    child = w.jobs.create(name="child", parameters=[JobParameterDefinition(name="who", default="nobody")], tasks=[
        Task(task_key="greet", condition_task=ConditionTask(op=ConditionTaskOp.EQUAL_TO, left="{{job.parameters.who}}", right="parent"))])
    sql_file = tmp_path / "make.sql"
    sql_file.write_text("CREATE SCHEMA IF NOT EXISTS main.jobs_test; CREATE TABLE IF NOT EXISTS main.jobs_test.numbers (n BIGINT); INSERT INTO main.jobs_test.numbers VALUES (1), (2), (3);"
                        " SELECT SUM(n) AS total FROM main.jobs_test.numbers")
    out_file = tmp_path / "shell.out"
    body = {"name": "mixed", "tasks": [
        {"task_key": "sql", "sql_task": {"file": {"path": str(sql_file)}, "warehouse_id": "kiln"}},
        {"task_key": "loop", "depends_on": [{"task_key": "sql"}],
         "for_each_task": {"inputs": '["a", "b", "c"]', "concurrency": 2,
                           "task": {"task_key": "echo", "shell_command_task": {"command": f"echo {{{{input}}}} >> {out_file}"}}}},
        {"task_key": "call", "depends_on": [{"task_key": "loop"}], "run_job_task": {"job_id": child.job_id, "job_parameters": {"who": "parent"}}},
    ]}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    job_id = requests.post(f"{kiln.url}/api/2.2/jobs/create", json=body, headers=headers).json()["job_id"]
    run = wait_run(w, w.jobs.run_now(job_id).run_id)
    assert run.state.result_state == RunResultState.SUCCESS, run.state
    t = tasks_by_key(run)
    sql_out = requests.get(f"{kiln.url}/api/2.2/jobs/runs/get-output", params={"run_id": t["sql"].run_id}, headers=headers).json()
    assert sql_out["sql_output"]["query_output"]["rows"] == [["6"]]
    assert sorted(out_file.read_text().split()) == ["a", "b", "c"]
    assert t["loop"].for_each_task.stats.task_run_stats.succeeded_iterations == 3
    child_run = w.jobs.get_run(w.jobs.get_run_output(t["call"].run_id).run_job_output.run_id)
    assert child_run.trigger.value == "RUN_JOB_TASK" and child_run.job_id == child.job_id
    assert child_run.tasks[0].condition_task.outcome == "true"


def test_run_bad_input(w, kiln):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    job = w.jobs.create(name="params", parameters=[JobParameterDefinition(name="a", default="1")],
                        tasks=[Task(task_key="t", condition_task=ConditionTask(op=ConditionTaskOp.EQUAL_TO, left="1", right="1"))])
    with pytest.raises(NotFound):
        w.jobs.run_now(987654)
    with pytest.raises(BadRequest, match="no parameter 'b'"):
        w.jobs.run_now(job.job_id, job_parameters={"b": "2"})
    with pytest.raises(BadRequest, match="no task 'ghost'"):
        w.jobs.run_now(job.job_id, only=["ghost"])
    with pytest.raises(NotFound):
        w.jobs.get_run(987654)
    assert list(w.jobs.list_runs(job_id=job.job_id)) == []
    for body, reason in [({"tasks": [{"task_key": "a", "spark_jar_task": {"main_class_name": "x"}}]}, "does not run spark_jar_task"),
                         ({"tasks": [{"task_key": "a", "condition_task": {"op": "LIKE", "left": "1", "right": "1"}}]}, "condition_task.op"),
                         ({"tasks": [{"task_key": "a", "condition_task": {"op": "EQUAL_TO", "left": "{{tasks.zz.values.x}}", "right": "1"}}]}, "unknown task 'zz'"),
                         ({"tasks": [{"task_key": "a", "kiln_task": {"action": "launch_rockets"}}]}, "Unknown Kiln task action")]:
        response = requests.post(f"{kiln.url}/api/2.2/jobs/runs/submit", json=body, headers=headers)
        assert response.status_code == 400 and reason in response.json()["message"], response.text
    # A reference that cannot be resolved at run time fails the task with its name.
    run_id = requests.post(f"{kiln.url}/api/2.2/jobs/runs/submit", headers=headers, json={"run_name": "oops", "tasks": [
        {"task_key": "a", "condition_task": {"op": "EQUAL_TO", "left": "{{job.parameters.missing}}", "right": "1"}}]}).json()["run_id"]
    run = wait_run(w, run_id)
    assert run.run_type.value == "SUBMIT_RUN" and run.state.result_state == RunResultState.FAILED
    assert "{{job.parameters.missing}}" in run.state.state_message


def test_cron_schedule_with_an_injected_clock_runs_each_slot_once(tmp_path, monkeypatch):
    from datetime import datetime
    from zoneinfo import ZoneInfo
    monkeypatch.setenv("KILN_TEST_CLOCK", "1")
    monkeypatch.setenv("KILN_SCHEDULER_TICK_MS", "3600000")  # only the clock endpoint ticks
    server = KilnServer(str(tmp_path)).start()
    try:
        w = WorkspaceClient(host=server.url, token=TOKEN, auth_type="pat")
        headers = {"Authorization": f"Bearer {TOKEN}"}

        def at(*parts):
            ms = int(datetime(*parts, tzinfo=ZoneInfo("Europe/Amsterdam")).timestamp() * 1000)
            return requests.post(f"{server.url}/api/2.0/kiln/test/clock", json={"now_ms": ms}, headers=headers).json()["started_run_ids"]

        job = w.jobs.create(name="weekday-0630", tasks=[Task(task_key="t", condition_task=ConditionTask(op=ConditionTaskOp.EQUAL_TO, left="{{job.trigger.type}}", right="PERIODIC"))],
                            schedule=CronSchedule(quartz_cron_expression="0 30 6 ? * MON-FRI", timezone_id="Europe/Amsterdam"))
        paused = w.jobs.create(name="paused", tasks=[Task(task_key="t", condition_task=ConditionTask(op=ConditionTaskOp.EQUAL_TO, left="1", right="1"))],
                               schedule=CronSchedule(quartz_cron_expression="0 * * * * ?", timezone_id="UTC", pause_status=PauseStatus.PAUSED))
        assert at(2030, 1, 3, 12, 0, 0) == []                  # first look: the schedule starts counting from here
        missed = at(2030, 1, 7, 6, 29, 0)                      # Fri 06:30 was missed while "down": it runs once
        assert len(missed) == 1
        run = wait_run(w, missed[0])
        assert run.trigger.value == "PERIODIC" and run.state.result_state == RunResultState.SUCCESS
        raw = requests.get(f"{server.url}/api/2.2/jobs/runs/get", params={"run_id": missed[0]}, headers=headers).json()
        assert raw["schedule_slot"] == int(datetime(2030, 1, 4, 6, 30, tzinfo=ZoneInfo("Europe/Amsterdam")).timestamp() * 1000)
        assert at(2030, 1, 7, 6, 29, 59) == []
        due = at(2030, 1, 7, 6, 30, 1)                          # Monday's slot, once
        assert len(due) == 1 and at(2030, 1, 7, 6, 30, 30) == [] and at(2030, 1, 7, 18, 0, 0) == []
        assert at(2030, 1, 12, 10, 0, 0) != [] and at(2030, 1, 13, 10, 0, 0) == []   # Tue–Fri collapse into one; Sunday nothing
        server.stop()
        server.start()                                          # a restart does not run a slot again
        w = WorkspaceClient(host=server.url, token=TOKEN, auth_type="pat")
        assert at(2030, 1, 13, 10, 0, 0) == []
        runs = list(w.jobs.list_runs(job_id=job.job_id))
        assert len(runs) == 3 and all(r.trigger.value == "PERIODIC" for r in runs)
        assert list(w.jobs.list_runs(job_id=paused.job_id)) == []
    finally:
        server.stop()


def test_file_arrival_trigger(w, tmp_path):
    from databricks.sdk.service.jobs import FileArrivalTriggerConfiguration, TriggerSettings
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "old.csv").write_text("a\n1\n")
    job = w.jobs.create(name="on-files", trigger=TriggerSettings(file_arrival=FileArrivalTriggerConfiguration(url=str(landing))),
                        tasks=[Task(task_key="t", condition_task=ConditionTask(op=ConditionTaskOp.EQUAL_TO, left="{{job.trigger.type}}", right="FILE_ARRIVAL"))])
    time.sleep(2.5)  # the scheduler's first look records what is already there
    assert list(w.jobs.list_runs(job_id=job.job_id)) == []
    (landing / "new.csv").write_text("a\n2\n")
    deadline = time.time() + 15
    while not (runs := list(w.jobs.list_runs(job_id=job.job_id))):
        assert time.time() < deadline, "no run after a file arrived"
        time.sleep(0.2)
    assert len(runs) == 1 and runs[0].trigger.value == "FILE_ARRIVAL"
    assert wait_run(w, runs[0].run_id).state.result_state == RunResultState.SUCCESS
    time.sleep(2.5)
    assert len(list(w.jobs.list_runs(job_id=job.job_id))) == 1


def test_restart_during_a_run_adopts_live_processes_and_retries_vanished_ones(tmp_path):
    log = tmp_path / "log"
    marker = tmp_path / "vanish.marker"
    adopted = script(tmp_path / "adopted.py", f"""
import time
open({str(log)!r}, "a").write("adopted-start\\n")
time.sleep(5)
open({str(log)!r}, "a").write("adopted-end\\n")
""")
    vanish = script(tmp_path / "vanish.py", f"""
import os, time
open({str(log)!r}, "a").write("vanish-start\\n")
if not os.path.exists({str(marker)!r}):
    open({str(marker)!r}, "w").write("1")
    time.sleep(120)
""")
    after = script(tmp_path / "after.py", f"open({str(log)!r}, 'a').write('after\\n')\n")
    home = tmp_path / "home"
    home.mkdir()
    server = KilnServer(str(home)).start()
    try:
        w = WorkspaceClient(host=server.url, token=TOKEN, auth_type="pat")
        job = w.jobs.create(name="survivor", tasks=[
            Task(task_key="adopted", spark_python_task=SparkPythonTask(python_file=adopted)),
            Task(task_key="vanish", max_retries=1, spark_python_task=SparkPythonTask(python_file=vanish)),
            Task(task_key="after", depends_on=[TaskDependency("adopted"), TaskDependency("vanish")], spark_python_task=SparkPythonTask(python_file=after)),
        ])
        run_id = w.jobs.run_now(job.job_id).run_id
        deadline = time.time() + 30
        while not (log.exists() and {"adopted-start", "vanish-start"} <= set(log.read_text().split())):
            assert time.time() < deadline
            time.sleep(0.1)
        server.kill()
        for pid in os.listdir("/proc"):                          # this one dies while the server is down
            try:
                if pid.isdigit() and b"vanish.py" in open(f"/proc/{pid}/cmdline", "rb").read():
                    os.kill(int(pid), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        server.start()
        w = WorkspaceClient(host=server.url, token=TOKEN, auth_type="pat")
        run = wait_run(w, run_id, timeout=60)
        t = tasks_by_key(run)
        assert run.state.result_state == RunResultState.SUCCESS, run.state
        assert sorted(log.read_text().split()) == sorted(["adopted-start", "vanish-start", "vanish-start", "adopted-end", "after"])
        assert log.read_text().split().count("adopted-start") == 1 and log.read_text().split()[-1] == "after"
        assert t["adopted"].attempt_number == 0 and t["vanish"].attempt_number == 1
    finally:
        server.stop()


def test_retraining_pipeline_moves_the_alias_only_when_the_candidate_wins(w, client_env, tmp_path):
    kiln = client_env
    import numpy as np
    from mlflow import MlflowClient
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=3000, n_features=8, n_informative=4, n_redundant=0, shuffle=False, random_state=7)
    order = np.random.default_rng(7).permutation(len(y))  # rows in random order; f0–f3 informative, f4–f7 noise
    X, y = X[order], y[order]
    columns = [f"f{i}" for i in range(8)]
    for name, rows in [("train", slice(0, 2000)), ("holdout", slice(2000, 3000))]:
        (tmp_path / name).mkdir()
        with open(tmp_path / name / "part-0.csv", "w") as f:
            f.write(",".join(columns + ["label"]) + "\n")
            for xi, yi in zip(X[rows], y[rows]):
                f.write(",".join(f"{v:.6f}" for v in xi) + f",{yi}\n")
    model = f"retrain_{int(time.time() * 1000)}"
    schema = f"main.{model}"

    def kiln_task(key, action, deps=(), **params):
        return Task(task_key=key, depends_on=[TaskDependency(task_key=d) for d in deps],
                    python_wheel_task=PythonWheelTask(package_name="kiln", entry_point=action, named_parameters=params))

    job = w.jobs.create(name="retrain", parameters=[JobParameterDefinition(name="features", default=",".join(columns))], tasks=[
        kiln_task("ingest", "ingest", source=str(tmp_path / "train"), table=f"{schema}.train"),
        kiln_task("ingest_holdout", "ingest", source=str(tmp_path / "holdout"), table=f"{schema}.holdout"),
        kiln_task("train", "train", ["ingest"], table=f"{schema}.train", target="label", algorithm="logistic", register=model,
                  features="{{job.parameters.features}}", experiment=model),
        kiln_task("promote", "promote", ["train", "ingest_holdout"], model=model, version="{{tasks.train.values.version}}", table=f"{schema}.holdout"),
        Task(task_key="gate", depends_on=[TaskDependency("promote")],
             condition_task=ConditionTask(op=ConditionTaskOp.EQUAL_TO, left="{{tasks.promote.values.promoted}}", right="true")),
        kiln_task("score", "predict", ["gate"], model=f"models:/{model}@champion", table=f"{schema}.holdout", output=f"{schema}.scored"),
    ])
    job.job_id  # noqa: B018
    for task in w.jobs.get(job.job_id).settings.tasks:
        if task.task_key == "score":
            assert task.depends_on[0].task_key == "gate"
    w.jobs.update(job.job_id, new_settings=JobSettings(tasks=[
        Task(task_key="score", depends_on=[TaskDependency(task_key="gate", outcome="true")],
             python_wheel_task=PythonWheelTask(package_name="kiln", entry_point="predict",
                                               named_parameters={"model": f"models:/{model}@champion", "table": f"{schema}.holdout", "output": f"{schema}.scored"}))]))
    first = wait_run(w, w.jobs.run_now(job.job_id).run_id, timeout=300)
    assert first.state.result_state == RunResultState.SUCCESS, first.state
    t = tasks_by_key(first)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    values = lambda task: requests.get(f"{kiln.url}/api/2.2/jobs/runs/get-output", params={"run_id": task.run_id}, headers=headers).json()["task_values"]
    assert values(t["ingest"])["rows"] == 2000 and values(t["promote"])["promoted"] is True
    assert t["score"].state.result_state == RunResultState.SUCCESS and values(t["score"])["rows"] == 1000
    client = MlflowClient(tracking_uri=kiln.url)
    assert client.get_model_version_by_alias(model, "champion").version == "1"
    # A candidate trained on noise only loses: the alias stays, scoring is skipped.
    second = wait_run(w, w.jobs.run_now(job.job_id, job_parameters={"features": "f6,f7"}).run_id, timeout=300)
    assert second.state.result_state == RunResultState.SUCCESS, second.state
    t = tasks_by_key(second)
    promote = values(t["promote"])
    assert promote["promoted"] is False and promote["candidate_version"] == "2" and promote["p_value"] < 0.05, promote
    assert promote["champion_accuracy_score"] > 0.8 and promote["champion_accuracy_score"] > promote["candidate_accuracy_score"] + 0.2, promote
    assert t["gate"].condition_task.outcome == "false" and t["score"].state.result_state == RunResultState.EXCLUDED
    assert client.get_model_version_by_alias(model, "champion").version == "1"
    assert values(t["ingest"])["rows"] == 0  # nothing new landed


def test_notifications_webhooks_through_destinations_and_email_through_smtp(w, tmp_path):
    import http.server
    import threading
    from aiosmtpd.controller import Controller
    from databricks.sdk.service.jobs import JobEmailNotifications, Webhook, WebhookNotifications
    from databricks.sdk.service.settings import Config, EmailConfig, GenericWebhookConfig
    received, mails = [], []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.path, self.headers.get("Authorization"), json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(500 if len(received) == 1 else 200)  # the first delivery fails and is retried
            self.end_headers()

        def log_message(self, *args):
            pass

    hook_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook_server.serve_forever, daemon=True).start()

    class Mailbox:
        async def handle_DATA(self, server, session, envelope):
            mails.append((envelope.rcpt_tos, envelope.content.decode()))
            return "250 OK"

    port = __import__("conftest").free_port()
    smtp = Controller(Mailbox(), hostname="127.0.0.1", port=port)
    smtp.start()
    server = None
    try:
        # Email needs the server started with KILN_SMTP_HOST; a server of its own.
        os.environ["KILN_SMTP_HOST"], os.environ["KILN_SMTP_PORT"] = "127.0.0.1", str(port)
        server = KilnServer(str(tmp_path)).start()
        w = WorkspaceClient(host=server.url, token=TOKEN, auth_type="pat")
        dest = w.notification_destinations.create(display_name="ops hook", config=Config(generic_webhook=GenericWebhookConfig(
            url=f"http://127.0.0.1:{hook_server.server_port}/jobs", username="kiln", password="s3cret")))
        got = w.notification_destinations.get(dest.id)
        assert got.config.generic_webhook.password is None and got.config.generic_webhook.password_set
        assert [d.display_name for d in w.notification_destinations.list()] == ["ops hook"]
        mail_dest = w.notification_destinations.create(display_name="team", config=Config(email=EmailConfig(addresses=["team@example.com"])))
        fail = script(tmp_path / "fail.py", "raise SystemExit('boom')\n")
        job = w.jobs.create(name="noisy", tasks=[Task(task_key="t", spark_python_task=SparkPythonTask(python_file=fail))],
                            webhook_notifications=WebhookNotifications(on_start=[Webhook(id=dest.id)], on_failure=[Webhook(id=dest.id), Webhook(id=mail_dest.id)]),
                            email_notifications=JobEmailNotifications(on_failure=["oncall@example.com"], on_success=["nobody@example.com"]))
        run = wait_run(w, w.jobs.run_now(job.job_id).run_id)
        assert run.state.result_state == RunResultState.FAILED
        deadline = time.time() + 20
        while (len(received) < 3 or len(mails) < 2) and time.time() < deadline:
            time.sleep(0.1)
        events = [body["event_type"] for _, _, body in received]
        assert events.count("jobs.on_start") >= 1 and events.count("jobs.on_failure") == 1, events
        assert all(path == "/jobs" and auth == "Basic a2lsbjpzM2NyZXQ=" for path, auth, _ in received)
        failure = [body for _, _, body in received if body["event_type"] == "jobs.on_failure"][0]
        assert failure["run_id"] == run.run_id and failure["result_state"] == "FAILED"
        assert sorted(to for to, _ in mails) == [["oncall@example.com"], ["team@example.com"]], mails
        assert all(f"run {run.run_id}: FAILED" in text and "boom" in text for _, text in mails)
        assert {d.id for d in w.notification_destinations.list(page_size=1)} == {dest.id, mail_dest.id}  # followed across pages
        w.notification_destinations.delete(mail_dest.id)
        with pytest.raises(NotFound):
            w.notification_destinations.get(mail_dest.id)
        with pytest.raises(BadRequest, match="generic_webhook"):
            w.notification_destinations.create(display_name="x", config=Config())
    finally:
        os.environ.pop("KILN_SMTP_HOST", None)
        os.environ.pop("KILN_SMTP_PORT", None)
        if server:
            server.stop()
        smtp.stop()
        hook_server.shutdown()


def make_wheel(directory, name, version, body):
    """A minimal pure-Python wheel, built by hand (no network, no build backend)."""
    import base64
    import hashlib
    import zipfile
    path = directory / f"{name}-{version}-py3-none-any.whl"
    files = {f"{name}/__init__.py": body, f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: kiln-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = [f"{k},sha256={base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b'=').decode()},{len(v)}" for k, v in files.items()]
    files[f"{name}-{version}.dist-info/RECORD"] = "\n".join(record + [f"{name}-{version}.dist-info/RECORD,,"]) + "\n"
    with zipfile.ZipFile(path, "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
    return str(path)


def test_task_libraries_get_a_cached_environment_and_install_failures_fail_the_task(w, kiln, tmp_path):
    from databricks.sdk.service.compute import Library, PythonPyPiLibrary
    from databricks.sdk.service.jobs import JobEnvironment
    wheel = make_wheel(tmp_path, "kilnhello", "1.2.3", "def greet():\n    return 'hello from a wheel'\n")
    use = script(tmp_path / "use.py", "import sys, kilnhello\nprint(kilnhello.greet(), sys.prefix)\n")
    job = w.jobs.create(name="libs", tasks=[
        Task(task_key="a", libraries=[Library(whl=wheel)], spark_python_task=SparkPythonTask(python_file=use)),
        Task(task_key="b", libraries=[Library(whl=wheel)], spark_python_task=SparkPythonTask(python_file=use)),
    ])
    first = wait_run(w, w.jobs.run_now(job.job_id).run_id, timeout=300)
    second = wait_run(w, w.jobs.run_now(job.job_id).run_id, timeout=300)
    assert first.state.result_state == RunResultState.SUCCESS and second.state.result_state == RunResultState.SUCCESS, (first.state, second.state)
    prefixes = {w.jobs.get_run_output(t.run_id).logs.split()[-1] for r in (first, second) for t in r.tasks}
    assert len(prefixes) == 1 and "hello from a wheel" in w.jobs.get_run_output(first.tasks[0].run_id).logs  # one environment, reused
    headers = {"Authorization": f"Bearer {TOKEN}"}
    raw = requests.get(f"{kiln.url}/api/2.2/jobs/runs/get", params={"run_id": first.run_id}, headers=headers).json()
    assert "kilnhello==1.2.3" in "\n".join(raw["tasks"][0]["resolved_libraries"])
    # A job environment's dependencies work the same way; an install failure fails the task with pip's words.
    from databricks.sdk.service.compute import Environment
    job = w.jobs.create(name="envs", environments=[JobEnvironment(environment_key="default", spec=Environment(client="1", dependencies=[wheel]))], tasks=[
        Task(task_key="ok", environment_key="default", spark_python_task=SparkPythonTask(python_file=use)),
        Task(task_key="broken", libraries=[Library(pypi=PythonPyPiLibrary(package="kiln-no-such-package-for-tests==9.9.9"))],
             spark_python_task=SparkPythonTask(python_file=use)),
    ])
    run = wait_run(w, w.jobs.run_now(job.job_id).run_id, timeout=300)
    t = tasks_by_key(run)
    assert t["ok"].state.result_state == RunResultState.SUCCESS
    assert t["broken"].state.result_state == RunResultState.FAILED and "kiln-no-such-package-for-tests" in t["broken"].state.state_message


def test_table_update_and_continuous_triggers(w, kiln):
    from databricks.sdk.service.jobs import Continuous, TableUpdateTriggerConfiguration, TriggerSettings
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def sql(statement):
        r = requests.post(f"{kiln.url}/api/2.0/sql/statements", headers=headers, json={"statement": statement, "warehouse_id": "kiln", "wait_timeout": "30s"})
        assert r.json()["status"]["state"] == "SUCCEEDED", r.text

    sql("CREATE SCHEMA IF NOT EXISTS main.triggers")
    sql("CREATE TABLE main.triggers.events (id BIGINT)")
    job = w.jobs.create(name="on-table", trigger=TriggerSettings(table_update=TableUpdateTriggerConfiguration(table_names=["main.triggers.events"])),
                        tasks=[Task(task_key="t", condition_task=ConditionTask(op=ConditionTaskOp.EQUAL_TO, left="{{job.trigger.type}}", right="TABLE"))])
    time.sleep(2.5)
    assert list(w.jobs.list_runs(job_id=job.job_id)) == []
    sql("INSERT INTO main.triggers.events VALUES (1), (2)")
    deadline = time.time() + 15
    while not (runs := list(w.jobs.list_runs(job_id=job.job_id))):
        assert time.time() < deadline, "no run after the table changed"
        time.sleep(0.2)
    assert runs[0].trigger.value == "TABLE" and wait_run(w, runs[0].run_id).state.result_state == RunResultState.SUCCESS
    w.jobs.delete(job.job_id)
    # A continuous job keeps one run going; pausing it stops new runs.
    job = w.jobs.create(name="always", continuous=Continuous(pause_status=PauseStatus.UNPAUSED),
                        tasks=[Task(task_key="t", condition_task=ConditionTask(op=ConditionTaskOp.EQUAL_TO, left="1", right="1"))])
    deadline = time.time() + 20
    while len(runs := list(w.jobs.list_runs(job_id=job.job_id))) < 2:
        assert time.time() < deadline, "the continuous job did not keep running"
        time.sleep(0.2)
    assert all(r.trigger.value == "CONTINUOUS" for r in runs), [(r.trigger, r.run_id, r.job_id) for r in runs]
    w.jobs.update(job.job_id, new_settings=JobSettings(continuous=Continuous(pause_status=PauseStatus.PAUSED)))
    time.sleep(1.5)
    count = len(list(w.jobs.list_runs(job_id=job.job_id)))
    time.sleep(2.5)
    assert len(list(w.jobs.list_runs(job_id=job.job_id))) == count
    w.jobs.delete(job.job_id)


def test_jobs_cli(kiln, tmp_path):
    from conftest import KILN
    env = dict(os.environ, KILN_URL=kiln.url, KILN_TOKEN=TOKEN)
    marker = tmp_path / "fixed"
    spec = {"name": "cli", "parameters": [{"name": "who", "default": "world"}], "tasks": [
        {"task_key": "hello", "shell_command_task": {"command": "echo hello {{job.parameters.who}}; echo '{\"n\": 3}' > $KILN_TASK_VALUES_FILE"}},
        {"task_key": "flaky", "depends_on": [{"task_key": "hello"}], "shell_command_task": {"command": f"test -e {marker} || {{ echo not yet >&2; exit 3; }}"}}]}
    (tmp_path / "job.json").write_text(json.dumps(spec))

    def cli(*args, check=True):
        r = subprocess.run([KILN, "jobs", *args], env=env, capture_output=True, text=True, timeout=120)
        assert not check or r.returncode == 0, r.stdout + r.stderr
        return r

    job_id = json.loads(cli("create", str(tmp_path / "job.json"), "--json").stdout)["job_id"]
    assert "cli" in cli("list").stdout and "shell_command_task" in cli("get", str(job_id)).stdout
    failed = cli("run-now", str(job_id), "--param", "who=kiln", "--wait", check=False)
    assert failed.returncode == 1 and "FAILED" in failed.stdout and "not yet" in failed.stdout
    run = json.loads(cli("runs", "--job-id", str(job_id), "--json").stdout)[0]
    detail = json.loads(cli("runs", "--run-id", str(run["run_id"]), "--json").stdout)
    hello = [t for t in detail["tasks"] if t["task_key"] == "hello"][0]
    out = cli("output", str(hello["run_id"])).stdout
    assert "hello kiln" in out and "n     3" in out
    marker.write_text("ok")
    repaired = cli("repair", str(run["run_id"]), "--wait")
    assert "SUCCESS" in repaired.stdout
    bad = cli("run-now", str(job_id), "--param", "nope=1", check=False)
    assert bad.returncode != 0 and "no parameter 'nope'" in bad.stderr


def test_spark_submit_task_runs_pyspark_in_local_mode(w, tmp_path):
    pytest.importorskip("pyspark", reason="pyspark is in tests/compat/requirements.txt; CI installs it")
    app = script(tmp_path / "count.py", """
import sys
from pyspark.sql import SparkSession
from databricks.sdk.runtime import dbutils
spark = SparkSession.builder.appName("kiln-job").getOrCreate()
n = spark.range(int(sys.argv[1])).filter("id % 3 = 0").count()
print("multiples of three:", n)
dbutils.jobs.taskValues.set("count", n)
spark.stop()
""")
    job = w.jobs.create(name="spark", tasks=[
        Task(task_key="count", spark_submit_task=__import__("databricks.sdk.service.jobs", fromlist=["SparkSubmitTask"]).SparkSubmitTask(
            parameters=["--conf", "spark.ui.enabled=false", app, "1000"])),
        Task(task_key="check", depends_on=[TaskDependency("count")],
             condition_task=ConditionTask(op=ConditionTaskOp.EQUAL_TO, left="{{tasks.count.values.count}}", right="334"))])
    run = wait_run(w, w.jobs.run_now(job.job_id).run_id, timeout=300)
    t = tasks_by_key(run)
    assert run.state.result_state == RunResultState.SUCCESS, (run.state, w.jobs.get_run_output(t["count"].run_id).logs[-3000:])
    assert "multiples of three: 334" in w.jobs.get_run_output(t["count"].run_id).logs
    assert t["check"].condition_task.outcome == "true"


def test_typed_submit_and_waiters(w, tmp_path):
    from datetime import timedelta
    from databricks.sdk.service.jobs import SubmitTask
    ok = script(tmp_path / "ok.py", "print('one-time run')\n")
    run = w.jobs.submit(run_name="adhoc", tasks=[
        SubmitTask(task_key="py", spark_python_task=SparkPythonTask(python_file=ok)),
        SubmitTask(task_key="cond", depends_on=[TaskDependency("py")],
                   condition_task=ConditionTask(op=ConditionTaskOp.NOT_EQUAL, left="{{tasks.py.result_state}}", right="FAILED"))]).result(timeout=timedelta(minutes=2))
    assert run.run_type.value == "SUBMIT_RUN" and run.state.result_state == RunResultState.SUCCESS and run.job_id is None
    assert "one-time run" in w.jobs.get_run_output(tasks_by_key(run)["py"].run_id).logs
    sleep = script(tmp_path / "sleep.py", "import time\ntime.sleep(60)\n")
    long_run = w.jobs.submit(run_name="long", tasks=[SubmitTask(task_key="s", spark_python_task=SparkPythonTask(python_file=sleep))])
    time.sleep(0.5)
    canceled = w.jobs.cancel_run(long_run.run_id).result(timeout=timedelta(minutes=1))
    assert canceled.state.result_state == RunResultState.CANCELED
