import Foundation

/// The templates `kiln bundle init` writes. `__NAME__` is the project name.
enum BundleTemplates {
    static let names = ["ml-project", "minimal"]

    static func files(_ template: String, name: String) -> [String: String]? {
        let raw: [String: String]
        switch template {
        case "ml-project":
            raw = ["kiln.yml": mlProject, "src/evaluate.py": evaluate, "tests/test_project.py": projectTests, "README.md": readme,
                   "data/landing/part-0.csv": data(rows: 800, seed: 1), "data/holdout/part-0.csv": data(rows: 400, seed: 2), ".gitignore": ".kiln/\n"]
        case "minimal":
            raw = ["kiln.yml": minimal, "src/hello.py": hello, ".gitignore": ".kiln/\n"]
        default:
            return nil
        }
        return raw.mapValues { $0.replacingOccurrences(of: "__NAME__", with: name) }
    }

    /// A small classification set: four numeric features, a label that depends on three of them plus noise.
    static func data(rows: Int, seed: UInt64) -> String {
        var state = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        func uniform() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) / Double(1 << 53)
        }
        func normal() -> Double { sqrt(-2 * log(max(uniform(), 1e-12))) * cos(2 * .pi * uniform()) }
        var out = "tenure,monthly_spend,support_calls,region_score,label\n"
        for _ in 0..<rows {
            let x = (0..<4).map { _ in normal() }
            let label = 1.2 * x[0] - 0.8 * x[1] + 0.9 * x[2] + 0.4 * normal() > 0 ? 1 : 0
            out += String(format: "%.4f,%.4f,%.4f,%.4f,%d\n", x[0], x[1], x[2], x[3], label)
        }
        return out
    }

    static let mlProject = #"""
# __NAME__: an ML project as code. Deploy with `kiln bundle deploy` (target dev), run with `kiln bundle run retrain`.
# The retrain job: ingest → train → evaluate → promote → serve. The alias `champion` moves (and the endpoint follows)
# only when the new model is significantly better than the current champion on the holdout set.
bundle:
  name: __NAME__

variables:
  catalog:
    description: Catalog of the project's tables
    default: main
  min_accuracy:
    description: The evaluate task fails a candidate below this test accuracy
    default: 0.75

targets:
  dev:
    default: true
    mode: development        # job names get "[dev] ", schedules are paused
  staging:
    variables:
      catalog: staging
  prod:
    variables:
      catalog: prod
      min_accuracy: 0.8

resources:
  experiments:
    training:
      name: /__NAME__-${bundle.target}

  registered_models:
    model:
      name: __NAME___${bundle.target}
      description: Churn classifier trained by the retrain job

  jobs:
    retrain:
      name: __NAME__-retrain-${bundle.target}
      max_concurrent_runs: 1
      queue: {enabled: true}
      schedule:
        quartz_cron_expression: "0 0 6 ? * MON-FRI"
        timezone_id: UTC
      tasks:
        - task_key: ingest
          python_wheel_task:
            package_name: kiln
            entry_point: ingest
            named_parameters:
              source: ${workspace.file_path}/data/landing
              table: ${var.catalog}.__NAME___${bundle.target}.training
        - task_key: ingest_holdout
          python_wheel_task:
            package_name: kiln
            entry_point: ingest
            named_parameters:
              source: ${workspace.file_path}/data/holdout
              table: ${var.catalog}.__NAME___${bundle.target}.holdout
        - task_key: train
          depends_on: [{task_key: ingest}]
          python_wheel_task:
            package_name: kiln
            entry_point: train
            named_parameters:
              table: ${var.catalog}.__NAME___${bundle.target}.training
              target: label
              algorithm: logistic
              split: "0.25"
              experiment: /__NAME__-${bundle.target}
              register: __NAME___${bundle.target}
        - task_key: evaluate
          depends_on: [{task_key: train}]
          spark_python_task:
            python_file: src/evaluate.py
            parameters: ["{{tasks.train.values.run_id}}", "${var.min_accuracy}"]
        - task_key: promote
          depends_on: [{task_key: evaluate}, {task_key: ingest_holdout}]
          python_wheel_task:
            package_name: kiln
            entry_point: promote
            named_parameters:
              model: __NAME___${bundle.target}
              version: "{{tasks.train.values.version}}"
              table: ${var.catalog}.__NAME___${bundle.target}.holdout
              alias: champion
        - task_key: promoted
          depends_on: [{task_key: promote}]
          condition_task: {op: EQUAL_TO, left: "{{tasks.promote.values.promoted}}", right: "true"}
        - task_key: serve
          depends_on: [{task_key: promoted, outcome: "true"}]
          python_wheel_task:
            package_name: kiln
            entry_point: serve
            named_parameters:
              endpoint: __NAME__-${bundle.target}
              model: __NAME___${bundle.target}
              alias: champion
"""#

    static let evaluate = #"""
"""The evaluate task: reads the candidate's test metrics from its MLflow run (the stock client, pointed at Kiln by the
job) and fails the job when its accuracy is below the bar, so nothing worse than the bar is ever promoted."""
import sys


def accuracy(metrics):
    """The run's test accuracy, whatever the trainer called it."""
    for key in ("test_accuracy_score", "accuracy_score", "test_accuracy", "accuracy"):
        if key in metrics:
            return float(metrics[key])
    raise KeyError(f"no accuracy among the run's metrics: {sorted(metrics)}")


def main(run_id, bar):
    from mlflow import MlflowClient
    from databricks.sdk.runtime import dbutils
    value = accuracy(MlflowClient().get_run(run_id).data.metrics)
    print(f"candidate {run_id}: accuracy {value:.4f} (bar {bar})")
    dbutils.jobs.taskValues.set("accuracy", value)
    if value < bar:
        raise SystemExit(f"accuracy {value:.4f} is below the bar {bar}")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
"""#

    static let projectTests = #"""
"""Tests of the project itself (no server needed): `pytest tests/`."""
import csv
import pathlib
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from evaluate import accuracy  # noqa: E402


@pytest.mark.parametrize("folder", ["landing", "holdout"])
def test_data_has_the_columns_and_both_classes(folder):
    with open(ROOT / "data" / folder / "part-0.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["tenure", "monthly_spend", "support_calls", "region_score", "label"]
    assert {r["label"] for r in rows} == {"0", "1"}
    assert all(float(r["tenure"]) == float(r["tenure"]) for r in rows)


def test_accuracy_reads_the_test_metric():
    assert accuracy({"test_accuracy_score": 0.91, "train_accuracy_score": 0.99}) == 0.91
    with pytest.raises(KeyError):
        accuracy({"rmse": 1.0})


def test_the_job_runs_ingest_train_evaluate_promote_serve_in_order():
    bundle = yaml.safe_load((ROOT / "kiln.yml").read_text())
    tasks = bundle["resources"]["jobs"]["retrain"]["tasks"]
    keys = [t["task_key"] for t in tasks]
    assert keys == ["ingest", "ingest_holdout", "train", "evaluate", "promote", "promoted", "serve"]
    assert tasks[-1]["depends_on"] == [{"task_key": "promoted", "outcome": "true"}]
"""#

    static let readme = #"""
# __NAME__

An ML project as a Kiln bundle: `kiln.yml` declares an experiment, a registered model and the `retrain` job —
ingest (new files of `data/landing` and `data/holdout` into Delta tables) → train (logistic regression, registered)
→ evaluate (`src/evaluate.py`: fails below `min_accuracy`) → promote (the `champion` alias moves only when the new
version is significantly better on the holdout table) → serve (the `__NAME__-<target>` endpoint follows the champion).

    kiln bundle validate                 # check kiln.yml for the default target (dev)
    kiln bundle deploy                   # create or update the experiment, model and job (idempotent)
    kiln bundle run retrain              # run the job and wait
    kiln bundle deploy --target prod     # the same resources for prod, with prod's variables
    kiln bundle destroy --auto-approve   # delete what the dev deploy created
    pytest tests/                        # the project's own tests

Drop new CSV files into `data/landing` and run again: only the new files are ingested. The endpoint is the job's
doing (its serve task), not a bundle resource: `kiln endpoints delete __NAME__-dev` removes it.
"""#

    static let minimal = #"""
bundle:
  name: __NAME__

variables:
  greeting:
    default: hello

targets:
  dev:
    default: true
    mode: development
  prod: {}

resources:
  jobs:
    hello:
      name: __NAME__-hello-${bundle.target}
      tasks:
        - task_key: hello
          spark_python_task:
            python_file: src/hello.py
            parameters: ["${var.greeting}", "{{job.run_id}}"]
"""#

    static let hello = #"""
import sys

print(" ".join(sys.argv[1:]))
"""#
}
