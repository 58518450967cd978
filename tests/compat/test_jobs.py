"""Jobs API definitions through the stock databricks-sdk: create, get, list (paged), update, reset, delete; bad
definitions (cycles, unknown dependencies, bad cron or time zone, task types) are 400s with the reason and store
nothing. Running jobs comes next (issue P8)."""
import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, NotFound
from databricks.sdk.service.jobs import (ConditionTask, ConditionTaskOp, CronSchedule, JobSettings, NotebookTask, PauseStatus, RunIf,
                                         SparkPythonTask, Task, TaskDependency)

from conftest import TOKEN


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
