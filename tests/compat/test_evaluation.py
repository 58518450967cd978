"""Evaluation beyond one test set: cross-validation, cohorts, calibration, permutation importance, SHAP plots, model
comparison with significance tests, and autologging into a caller's run — checked against scikit-learn/SciPy."""
import json
import os

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from deltalake import DeltaTable
from mlflow.tracking import MlflowClient
from scipy import stats
from sklearn import datasets
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import TOKEN
from test_learn import kiln_cli

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def data(kiln, tmp_path_factory):
    """Train/test tables of a binary problem with a cohort column ("region") and a pure-noise feature."""
    work = tmp_path_factory.mktemp("evaluation")
    X, y = datasets.make_classification(n_samples=6000, n_features=6, n_informative=3, n_redundant=0, random_state=3, flip_y=0.05)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    df["noise"] = np.random.default_rng(0).normal(size=len(df))
    df["region"] = np.random.default_rng(1).choice(["north", "south", "east"], len(df))
    df["label"] = y
    X, y = datasets.load_diabetes(return_X_y=True)
    reg = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    reg["label"] = y
    out = {}
    for name, frame, cut in [("cls", df, 4500), ("reg", reg, 330)]:
        for part, rows in {"train": frame.iloc[:cut], "test": frame.iloc[cut:]}.items():
            path = work / f"{name}_{part}.parquet"
            rows.to_parquet(path, index=False)
            kiln_cli("table", "write", f"main.evaluation.{name}_{part}", "--from", str(path), home=kiln.home)
            out[(name, part)] = rows.reset_index(drop=True)
    return out


def train(kiln, name, algorithm, *extra, features=None):
    args = ["train", "--url", kiln.url, "--table", f"main.evaluation.{name}_train", "--test-table", f"main.evaluation.{name}_test",
            "--target", "label", "--algorithm", algorithm, "--json", *extra]
    if features:
        args += ["--features", ",".join(features)]
    return json.loads(kiln_cli(*args).stdout)


CLS_FEATURES = [f"f{i}" for i in range(6)] + ["noise"]


def artifact(kiln, run_id, path):
    client = MlflowClient(kiln.url)
    return open(client.download_artifacts(run_id, path)).read()


def scored(kiln, model, table, output):
    kiln_cli("predict", "--model", model, "--table", table, "--output", f"main.evaluation.{output}", home=kiln.home)
    return DeltaTable(os.path.join(kiln.home, "warehouse", "main", "evaluation", output)).to_pandas()


def test_cross_validation_matches_scikit_learn(kiln, data, client_env):
    out = train(kiln, "cls", "logistic", "--cv", "5", features=CLS_FEATURES)
    train_df = data[("cls", "train")]
    peer = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression()), train_df[CLS_FEATURES], train_df["label"],
                           cv=KFold(5, shuffle=True, random_state=0), scoring="accuracy")
    # Other fold assignments, so the means agree to sampling noise, not exactly.
    assert abs(out["metrics"]["cv_accuracy_score_mean"] - peer.mean()) < 0.01
    assert 0 < out["metrics"]["cv_accuracy_score_std"] < 0.05
    history = MlflowClient(kiln.url).get_metric_history(out["run_id"], "cv_accuracy_score")
    assert sorted(m.step for m in history) == [0, 1, 2, 3, 4]
    assert np.mean([m.value for m in history]) == pytest.approx(out["metrics"]["cv_accuracy_score_mean"], rel=1e-12)


def test_cohorts_calibration_permutation_and_shap(kiln, data, client_env):
    out = train(kiln, "cls", "xgboost", "--cohort", "region", "--params", "max_depth=3", features=CLS_FEATURES)
    run_id, metrics = out["run_id"], out["metrics"]
    test_df = data[("cls", "test")]
    predictions = scored(kiln, f"runs:/{run_id}/model", "main.evaluation.cls_test", "cohort_scores")
    # Cohort metrics are the metrics of the rows with that value.
    for region in ["north", "south", "east"]:
        rows = predictions[predictions["region"] == region]
        assert metrics[f"test_accuracy_score/region/{region}"] == pytest.approx((rows["prediction"] == rows["label"]).mean(), abs=1e-12)
        assert metrics[f"test_example_count/region/{region}"] == len(rows)
    cohorts = json.loads(artifact(kiln, run_id, "cohort_metrics.json"))
    assert set(cohorts["region"]) == {"north", "south", "east"}
    # Calibration: the expected calibration error over scikit-learn's uniform bins.
    p1 = np.where(predictions["prediction"] == 1, predictions["probability"], 1 - predictions["probability"])
    observed, predicted = calibration_curve(predictions["label"], p1, n_bins=10, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], p1), minlength=10)
    counts = counts[counts > 0]
    ece = float(np.sum(counts * np.abs(observed - predicted)) / len(p1))
    assert metrics["test_calibration_error"] == pytest.approx(ece, rel=1e-6)
    assert "<svg" in artifact(kiln, run_id, "plots/calibration_curve.svg")
    # Permutation importance: the informative features matter, pure noise does not.
    importance = json.loads(artifact(kiln, run_id, "permutation_importance.json"))
    assert set(importance) == set(CLS_FEATURES)
    assert abs(importance["noise"]["mean"]) < 0.01
    assert max(v["mean"] for v in importance.values()) > 0.05
    # SHAP summary plots for a booster.
    assert artifact(kiln, run_id, "plots/shap_beeswarm_plot.svg").count("<circle") > 1000
    assert "noise" in artifact(kiln, run_id, "plots/shap_feature_importance_plot.svg")


def test_comparing_classifiers_uses_mcnemar(kiln, data):
    a = train(kiln, "cls", "xgboost", "--register", "eval_cls", features=CLS_FEATURES)
    b = train(kiln, "cls", "logistic", "--register", "eval_cls", features=CLS_FEATURES)
    response = requests.post(f"{kiln.url}/api/2.0/kiln/models/compare", headers=AUTH,
                             json={"model_a": "models:/eval_cls/1", "model_b": "models:/eval_cls/2", "table": "main.evaluation.cls_test"})
    assert response.status_code == 200, response.text
    c = response.json()
    pa = scored(kiln, "models:/eval_cls/1", "main.evaluation.cls_test", "cmp_a")
    pb = scored(kiln, "models:/eval_cls/2", "main.evaluation.cls_test", "cmp_b")
    right_a, right_b = pa["prediction"] == pa["label"], pb["prediction"] == pb["label"]
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    assert (c["only_a_correct"], c["only_b_correct"]) == (only_a, only_b)
    # statsmodels' mcnemar(exact=False, correction=True) when b + c ≥ 25.
    statistic = (abs(only_a - only_b) - 1) ** 2 / (only_a + only_b)
    assert c["statistic"] == pytest.approx(statistic, rel=1e-12)
    assert c["p_value"] == pytest.approx(stats.chi2.sf(statistic, 1), rel=1e-9)
    assert c["metrics_a"]["accuracy_score"] == pytest.approx(a["metrics"]["test_accuracy_score"], abs=1e-15)
    assert c["metrics_b"]["accuracy_score"] == pytest.approx(b["metrics"]["test_accuracy_score"], abs=1e-15)
    assert c["better"] == ("neither" if c["p_value"] >= 0.05 else ("a" if only_a > only_b else "b"))
    out = kiln_cli("models", "compare", "models:/eval_cls/1", "models:/eval_cls/2", "--table", "main.evaluation.cls_test", "--url", kiln.url,
                   "--token", TOKEN)
    assert "McNemar on 1500 rows" in out.stdout


def test_comparing_regressors_uses_a_paired_bootstrap(kiln, data):
    train(kiln, "reg", "linear", "--register", "eval_reg")
    train(kiln, "reg", "decision_tree", "--register", "eval_reg", "--params", "max_depth=2")
    c = requests.post(f"{kiln.url}/api/2.0/kiln/models/compare", headers=AUTH,
                      json={"model_a": "models:/eval_reg/1", "model_b": "models:/eval_reg/2", "table": "main.evaluation.reg_test"}).json()
    assert c["test"] == "paired_bootstrap"
    difference = c["metrics_a"]["root_mean_squared_error"] - c["metrics_b"]["root_mean_squared_error"]
    assert c["difference"] == pytest.approx(difference, rel=1e-12)
    assert c["ci_low"] <= difference <= c["ci_high"]
    # A model against itself: no difference at all.
    same = requests.post(f"{kiln.url}/api/2.0/kiln/models/compare", headers=AUTH,
                         json={"model_a": "models:/eval_reg/1", "model_b": "models:/eval_reg/1", "table": "main.evaluation.reg_test"}).json()
    assert (same["difference"], same["ci_low"], same["ci_high"], same["better"]) == (0, 0, 0, "neither")
    bad = requests.post(f"{kiln.url}/api/2.0/kiln/models/compare", headers=AUTH,
                        json={"model_a": "models:/eval_reg/1", "model_b": "models:/eval_cls/1", "table": "main.evaluation.reg_test"})
    assert bad.status_code == 400 and "two classifiers or two regressors" in bad.json()["message"]


def test_kiln_train_logs_into_the_active_run(kiln, data, client_env):
    mlflow.set_tracking_uri(kiln.url)
    mlflow.set_experiment("autolog")
    with mlflow.start_run() as run:
        mlflow.log_param("owner", "me")
        env = dict(os.environ, MLFLOW_RUN_ID=run.info.run_id, KILN_TOKEN=TOKEN)
        import subprocess
        from conftest import KILN
        out = subprocess.run([KILN, "train", "--url", kiln.url, "--table", "main.evaluation.cls_train", "--target", "label", "--algorithm",
                              "logistic", "--json"], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["run_id"] == run.info.run_id
        live = MlflowClient(kiln.url).get_run(run.info.run_id)
        assert live.info.status == "RUNNING"
        assert live.data.params["owner"] == "me" and live.data.params["algorithm"] == "logistic"
        assert "test_accuracy_score" in live.data.metrics
    done = MlflowClient(kiln.url).get_run(run.info.run_id)
    assert done.info.status == "FINISHED"
    assert any(f.path == "model" for f in MlflowClient(kiln.url).list_artifacts(run.info.run_id))
    # A finished run takes nothing more.
    out = kiln_cli("train", "--url", kiln.url, "--table", "main.evaluation.cls_train", "--target", "label", "--algorithm", "logistic",
                   "--run-id", run.info.run_id, check=False)
    assert out.returncode != 0 and "RUNNING run" in out.stderr


def test_batch_scoring_streams_many_files_into_one_commit_with_lineage(kiln, data, tmp_path):
    """A table of many files is scored wave by wave into one commit whose commitInfo names the model and source."""
    test_df = data[("cls", "test")]
    for k in range(40):
        part = test_df.iloc[k * len(test_df) // 40:(k + 1) * len(test_df) // 40]
        path = tmp_path / f"part{k}.parquet"
        part.to_parquet(path, index=False)
        kiln_cli("table", "write", "main.evaluation.many_files", "--from", str(path), "--mode", "append", home=kiln.home)
    train(kiln, "cls", "xgboost", "--register", "eval_stream", features=CLS_FEATURES)
    out = scored(kiln, "models:/eval_stream/1", "main.evaluation.many_files", "stream_scores")
    reference = scored(kiln, "models:/eval_stream/1", "main.evaluation.cls_test", "stream_reference")
    assert len(out) == len(test_df)
    key = CLS_FEATURES + ["region"]
    merged = out.merge(reference, on=key, suffixes=("", "_ref"))
    assert len(merged) == len(test_df) and (merged["probability"] == merged["probability_ref"]).all()
    table = DeltaTable(os.path.join(kiln.home, "warehouse", "main", "evaluation", "stream_scores"))
    assert table.version() == 0  # created and filled by one commit
    info = table.history(1)[0]
    parameters = info.get("operationParameters", {})
    assert parameters.get("kiln.model") == "eval_stream/1" and parameters.get("kiln.sourceTable") == "main.evaluation.many_files"
    source = DeltaTable(os.path.join(kiln.home, "warehouse", "main", "evaluation", "many_files"))
    assert len(source.file_uris()) == 40 and int(parameters.get("kiln.sourceVersion")) == source.version()
