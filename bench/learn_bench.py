"""Kiln's learning runtime against scikit-learn and Python xgboost, same data, same split, same run.

Generates 200,000-row make_classification (2 and 5 classes) and make_regression sets (20 features), writes the
train/test parts as Delta tables with `kiln table write`, and fits each algorithm in both: Kiln through
`kiln train --json` (fit and evaluate seconds as Kiln reports them: no process start, table read or logging), the
peers in this process. Prints fit and predict time ratios (> 1: Kiln faster) and the test metric side by side.

    make release && python3 bench/learn_bench.py --kiln .build/release/kiln [--rows 200000]
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs, make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=".build/release/kiln")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--only", help="comma-separated algorithms to run (e.g. logistic,kmeans); default all")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="kiln-learn-bench-")
    home = os.path.join(work, "home")
    threads = os.cpu_count()

    sets = {
        "binary": make_classification(n_samples=args.rows, n_features=20, n_informative=10, random_state=0),
        "multiclass": make_classification(n_samples=args.rows, n_features=20, n_informative=10, n_classes=5, random_state=0),
        "regression": make_regression(n_samples=args.rows, n_features=20, n_informative=10, noise=10.0, random_state=0),
        "blobs": make_blobs(n_samples=args.rows, n_features=20, centers=8, random_state=0),
    }
    parts = {}
    for name, (X, y) in sets.items():
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
        parts[name] = (X_train, X_test, y_train, y_test)
        for part, (Xp, yp) in {"train": (X_train, y_train), "test": (X_test, y_test)}.items():
            df = pd.DataFrame(Xp, columns=[f"f{i}" for i in range(Xp.shape[1])])
            df["label"] = yp
            path = os.path.join(work, f"{name}_{part}.parquet")
            df.to_parquet(path, index=False)
            subprocess.run([args.kiln, "table", "write", f"main.bench.{name}_{part}", "--home", home, "--from", path], check=True, capture_output=True)

    def kiln(name, algorithm, params=""):
        target = ["--features", ",".join(f"f{i}" for i in range(20))] if algorithm == "kmeans" else ["--target", "label"]
        cmd = [args.kiln, "train", "--home", home, "--table", f"main.bench.{name}_train", "--test-table", f"main.bench.{name}_test",
               "--algorithm", algorithm, "--json"] + target + (["--params", params] if params else [])
        best = None
        for _ in range(args.runs):
            out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            if best is None or out["seconds"]["fit"] < best["seconds"]["fit"]:
                best = out
        return best

    def peer(make, name, metric, classify):
        X_train, X_test, y_train, y_test = parts[name]
        fits, predicts = [], []
        for _ in range(args.runs):
            model = make()
            start = time.perf_counter()
            model.fit(X_train, y_train)
            fits.append(time.perf_counter() - start)
            start = time.perf_counter()
            predicted = model.predict_proba(X_test) if classify is True else model.predict(X_test)
            predicts.append(time.perf_counter() - start)
        if classify == "cluster":
            return min(fits), min(predicts), -model.score(X_train)  # inertia on the training rows
        value = metric(y_test, predicted.argmax(axis=1) if classify else predicted)
        return min(fits), min(predicts), value

    cases = [
        ("logistic", "binary", "scikit-learn", lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=10_000)), True, ""),
        ("logistic", "multiclass", "scikit-learn", lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=10_000)), True, ""),
        ("logistic", "binary", "scikit-learn (saga, L1)", lambda: make_pipeline(StandardScaler(), LogisticRegression(l1_ratio=1.0, C=0.1, solver="saga", max_iter=10_000)), True, "l1_ratio=1,C=0.1"),
        ("linear", "regression", "scikit-learn", LinearRegression, False, ""),
        ("kmeans", "blobs", "scikit-learn", lambda: KMeans(n_clusters=8, n_init=1, random_state=0), "cluster", "k=8"),
        ("random_forest", "binary", "scikit-learn", lambda: RandomForestClassifier(n_estimators=50, max_depth=12, n_jobs=threads, random_state=0), True, "n_estimators=50,max_depth=12"),
        ("random_forest", "regression", "scikit-learn", lambda: RandomForestRegressor(n_estimators=50, max_depth=12, n_jobs=threads, random_state=0), False, "n_estimators=50,max_depth=12"),
        ("decision_tree", "binary", "scikit-learn", lambda: DecisionTreeClassifier(random_state=0), True, ""),
        ("xgboost", "binary", "xgboost", lambda: xgb.XGBClassifier(n_estimators=100, tree_method="hist", base_score=0.5, n_jobs=threads), True, ""),
        ("xgboost", "multiclass", "xgboost", lambda: xgb.XGBClassifier(n_estimators=100, tree_method="hist", base_score=0.5, n_jobs=threads), True, ""),
        ("xgboost", "regression", "xgboost", lambda: xgb.XGBRegressor(n_estimators=100, tree_method="hist", base_score=0.5, n_jobs=threads), False, ""),
    ]
    if args.only:
        wanted = set(args.only.split(","))
        cases = [case for case in cases if case[0] in wanted]
    rows = []
    for algorithm, name, peer_name, make, classify, params in cases:
        metric_name = "inertia" if classify == "cluster" else "accuracy_score" if classify else "r2_score"
        fit, predict, theirs = peer(make, name, accuracy_score if classify else r2_score, classify)
        out = kiln(name, algorithm, params)
        ours = out["metrics"][f"{'training' if classify == 'cluster' else 'test'}_{metric_name}"]
        rows.append({"algorithm": algorithm, "data": name, "peer": peer_name, "peer_fit_s": round(fit, 3), "kiln_fit_s": round(out["seconds"]["fit"], 3),
                     "fit_ratio": round(fit / out["seconds"]["fit"], 2), "peer_predict_s": round(predict, 4),
                     "kiln_evaluate_s": round(out["seconds"]["evaluate"], 4), "predict_ratio": round(predict / out["seconds"]["evaluate"], 2),
                     "metric": metric_name, "peer_metric": round(theirs, 4), "kiln_metric": round(ours, 4)})
    print(json.dumps(rows, indent=2))
    print(f"rows: {args.rows:,} (75% train), 20 features, {threads} threads, xgboost {xgb.__version__} (Python) vs libxgboost (Kiln)")
    for r in rows:
        print(f"{r['algorithm']:13s} {r['data']:10s} fit: {r['peer']} {r['peer_fit_s']:7.3f} s  kiln {r['kiln_fit_s']:7.3f} s  → {r['fit_ratio']}×   "
              f"predict: {r['peer_predict_s']:.4f} s vs {r['kiln_evaluate_s']:.4f} s (with metrics) → {r['predict_ratio']}×   "
              f"{r['metric']} {r['peer_metric']} vs {r['kiln_metric']}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
