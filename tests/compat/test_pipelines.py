"""Feature pipelines (Spark ML's transformers) through `kiln features` and `kiln train --pipeline`: every stage's
output against a NumPy/scikit-learn reference of the same definition, models with pipelines against scikit-learn
pipelines, persistence and reproduction."""
import json
import os

import numpy as np
import pandas as pd
import pytest
import requests
from deltalake import DeltaTable
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.utils import murmurhash3_32

from conftest import TOKEN
from test_learn import kiln_cli

N = 3000


@pytest.fixture(scope="module")
def mixed(kiln, tmp_path_factory):
    """A table with text, numbers with gaps, and sentences; a label that depends on the text and the numbers."""
    rng = np.random.default_rng(7)
    color = rng.choice(["red", "green", "blue", "violet", None], N, p=[0.35, 0.3, 0.2, 0.1, 0.05])
    size = rng.normal(10, 3, N).round(3)
    size[rng.random(N) < 0.05] = np.nan
    weight = rng.gamma(2.0, 2.0, N).round(2)
    words = np.array(["the cat sat", "A dog  ran fast", "cat and DOG\tplay", "  leading space", "dog"])
    text = words[rng.integers(0, len(words), N)]
    logit = (color == "red") * 1.5 - (color == "blue") * 1.0 + (np.nan_to_num(size, nan=10) - 10) / 2 + (weight - 4) / 3
    label = (logit + rng.logistic(0, 1, N) > 0).astype(np.int64)
    df = pd.DataFrame({"color": color, "size": size, "weight": weight, "text": text, "label": label})
    path = tmp_path_factory.mktemp("pipelines") / "mixed.parquet"
    df.to_parquet(path, index=False)
    kiln_cli("table", "write", "main.pipes.mixed", "--from", str(path), home=kiln.home)
    return df


counter = iter(range(10_000))


def features(kiln, stages, check=True):
    """Fits `stages` on main.pipes.mixed with `kiln features`; returns (fitted pipeline, output frame) or the failure."""
    output = f"main.pipes.out{next(counter)}"
    out = kiln_cli("features", "--table", "main.pipes.mixed", "--output", output, "--pipeline", json.dumps(stages), "--json",
                   home=kiln.home, check=check)
    if out.returncode != 0:
        return out, output
    result = json.loads(out.stdout)
    frame = DeltaTable(os.path.join(kiln.home, "warehouse", "main", "pipes", output.split(".")[-1])).to_pandas()
    return result["pipeline"], frame


def stage(kind, inputs, outputs, **params):
    return {"kind": kind, "input_cols": inputs, "output_cols": outputs, **params}


def test_string_indexer_orders_and_handles_invalid(kiln, mixed):
    fitted, out = features(kiln, [stage("string_indexer", ["color"], ["ci"], handle_invalid="keep")])
    counts = mixed["color"].value_counts()
    expected = sorted(counts.index, key=lambda label: (-counts[label], label))
    assert fitted["stages"][0]["labels"] == [expected]
    want = mixed["color"].map(lambda c: expected.index(c) if isinstance(c, str) else len(expected))
    assert out["ci"].tolist() == want.astype(float).tolist()
    fitted, _ = features(kiln, [stage("string_indexer", ["color"], ["ci"], string_order_type="alphabetAsc", handle_invalid="keep")])
    assert fitted["stages"][0]["labels"] == [sorted(counts.index)]
    # skip drops the null rows; error (the default) refuses them and writes nothing.
    _, out = features(kiln, [stage("string_indexer", ["color"], ["ci"], handle_invalid="skip")])
    assert len(out) == mixed["color"].notna().sum()
    failed, output = features(kiln, [stage("string_indexer", ["color"], ["ci"])], check=False)
    assert failed.returncode != 0 and "null" in failed.stderr and "handle_invalid" in failed.stderr
    assert not os.path.exists(os.path.join(kiln.home, "warehouse", "main", "pipes", output.split(".")[-1]))


def test_one_hot_encoder_and_assembler(kiln, mixed):
    _, out = features(kiln, [stage("string_indexer", ["color"], ["ci"], handle_invalid="keep", string_order_type="alphabetAsc"),
                             stage("one_hot_encoder", ["ci"], ["cv"]),
                             stage("vector_assembler", ["weight", "cv"], ["features"])])
    labels = sorted(mixed["color"].dropna().unique())  # + the null index; drop_last drops that last slot
    for k, label in enumerate(labels):
        assert out[f"cv_{k}"].tolist() == (mixed["color"] == label).astype(float).tolist()
    assert f"cv_{len(labels)}" not in out
    assert out["features_0"].tolist() == mixed["weight"].tolist()
    for k in range(len(labels)):
        assert out[f"features_{k + 1}"].tolist() == out[f"cv_{k}"].tolist()
    # The assembler refuses missing values unless told to keep or skip them.
    failed, _ = features(kiln, [stage("vector_assembler", ["size", "weight"], ["features"])], check=False)
    assert failed.returncode != 0 and "'size' is missing" in failed.stderr
    _, out = features(kiln, [stage("vector_assembler", ["size", "weight"], ["features"], handle_invalid="skip")])
    assert len(out) == mixed["size"].notna().sum()


def test_scalers_match_their_definitions(kiln, mixed):
    x = mixed["weight"].to_numpy()
    _, out = features(kiln, [stage("standard_scaler", ["weight"], ["std"]),
                             stage("standard_scaler", ["weight"], ["centered"], with_mean=True),
                             stage("min_max_scaler", ["weight"], ["mm"]),
                             stage("min_max_scaler", ["weight"], ["mm2"], min=-1.0, max=3.0)])
    # Spark's StandardScaler: the sample standard deviation; no centering unless with_mean.
    np.testing.assert_allclose(out["std"], x / x.std(ddof=1), rtol=1e-12)
    np.testing.assert_allclose(out["centered"], (x - x.mean()) / x.std(ddof=1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out["mm"], MinMaxScaler().fit_transform(x.reshape(-1, 1)).ravel(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out["mm2"], MinMaxScaler((-1, 3)).fit_transform(x.reshape(-1, 1)).ravel(), rtol=1e-12, atol=1e-15)
    # Scaling an assembled vector scales each slot.
    _, out = features(kiln, [stage("vector_assembler", ["weight", "size"], ["v"], handle_invalid="skip"),
                             stage("standard_scaler", ["v"], ["s"], with_mean=True)])
    both = mixed[["weight", "size"]].dropna().to_numpy()
    np.testing.assert_allclose(out[["s_0", "s_1"]].to_numpy(), StandardScaler().fit(both).transform(both) * np.sqrt((len(both) - 1) / len(both)),
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("strategy,peer", [("mean", "mean"), ("median", "median"), ("mode", "most_frequent")])
def test_imputer_matches_scikit_learn(kiln, mixed, strategy, peer):
    fitted, out = features(kiln, [stage("imputer", ["size", "weight"], ["size_i", "weight_i"], strategy=strategy)])
    expected = SimpleImputer(strategy=peer).fit(mixed[["size", "weight"]])
    np.testing.assert_allclose(fitted["stages"][0]["surrogates"], expected.statistics_, rtol=1e-13)
    np.testing.assert_allclose(out["size_i"], expected.transform(mixed[["size", "weight"]])[:, 0], rtol=1e-13)


def test_bucketizer_and_quantile_discretizer(kiln, mixed):
    splits = [-np.inf, 5.0, 10.0, 12.5, np.inf]
    _, out = features(kiln, [stage("bucketizer", ["size"], ["b"], splits=[["-Infinity", 5.0, 10.0, 12.5, "Infinity"]], handle_invalid="keep")])
    size = mixed["size"].to_numpy()
    want = np.where(np.isnan(size), len(splits) - 1, np.digitize(size, splits[1:-1]))
    assert out["b"].tolist() == want.astype(float).tolist()
    # Values outside finite splits are errors that say so.
    failed, _ = features(kiln, [stage("bucketizer", ["weight"], ["b"], splits=[[0.0, 1.0, 2.0]])], check=False)
    assert failed.returncode != 0 and "outside the splits" in failed.stderr
    fitted, out = features(kiln, [stage("quantile_discretizer", ["weight"], ["q"], num_buckets=4)])
    w = np.sort(mixed["weight"].to_numpy())
    cuts = sorted(set(w[max(0, int(np.ceil(p * len(w))) - 1)] for p in (0.25, 0.5, 0.75)))
    assert fitted["stages"][0]["splits"] == [["-Infinity", *cuts, "Infinity"]]
    assert out["q"].tolist() == np.digitize(mixed["weight"], cuts).astype(float).tolist()
    assert sorted(out["q"].value_counts().tolist()) == pytest.approx([N / 4] * 4, rel=0.05)


def spark_slot(term, width):
    return murmurhash3_32(term, seed=42) % width  # Spark: non-negative modulo of the signed hash


def test_tokenizer_hashing_tf_and_idf(kiln, mixed):
    width = 32
    _, out = features(kiln, [stage("tokenizer", ["text"], ["words"]),
                             stage("hashing_tf", ["words"], ["tf"], num_features=width),
                             stage("idf", ["tf"], ["tfidf"])])
    # Java's split on each whitespace character: runs give empty tokens, trailing empties dropped.
    tokens = [t.lower().replace("\t", " ").split(" ") for t in mixed["text"]]
    tokens = [t[:max(i + 1 for i, w in enumerate(t) if w)] if any(t) else [] for t in tokens]
    assert out["words"].tolist() == [" ".join(t) for t in tokens]
    tf = np.zeros((N, width))
    for i, terms in enumerate(tokens):
        for term in terms:
            tf[i, spark_slot(term, width)] += 1
    np.testing.assert_array_equal(out[[f"tf_{j}" for j in range(width)]].to_numpy(), tf)
    df = (tf > 0).sum(axis=0)
    idf = np.log((N + 1) / (df + 1))
    np.testing.assert_allclose(out[[f"tfidf_{j}" for j in range(width)]].to_numpy(), tf * idf, rtol=1e-13)


def test_feature_hasher(kiln, mixed):
    width = 64
    _, out = features(kiln, [stage("feature_hasher", ["color", "weight"], ["h"], num_features=width)])
    expected = np.zeros((N, width))
    for i, (color, weight) in enumerate(zip(mixed["color"], mixed["weight"])):
        if isinstance(color, str):
            expected[i, spark_slot(f"color={color}", width)] += 1
        expected[i, spark_slot("weight", width)] += weight
    np.testing.assert_allclose(out[[f"h_{j}" for j in range(width)]].to_numpy(), expected, rtol=1e-15)


def test_bad_pipelines_say_what_is_wrong(kiln, mixed):
    failed, _ = features(kiln, [stage("string_indexer", ["nope"], ["x"])], check=False)
    assert failed.returncode != 0 and "'nope'" in failed.stderr
    failed, _ = features(kiln, [{"kind": "stringindexer", "input_cols": ["color"], "output_cols": ["x"]}], check=False)
    assert failed.returncode != 0 and "not a valid pipeline" in failed.stderr
    failed, _ = features(kiln, [stage("one_hot_encoder", ["weight"], ["x"])], check=False)
    assert failed.returncode != 0 and "category indices" in failed.stderr
    failed, _ = features(kiln, [stage("imputer", ["size"], ["a", "b"])], check=False)
    assert failed.returncode != 0 and "one output column per input" in failed.stderr


def test_text_features_get_an_automatic_pipeline_matching_scikit_learn(kiln, mixed, tmp_path):
    train_df, test_df = mixed.iloc[:2400], mixed.iloc[2400:]
    for name, df in {"train": train_df, "test": test_df}.items():
        path = tmp_path / f"{name}.parquet"
        df.to_parquet(path, index=False)
        kiln_cli("table", "write", f"main.pipes.auto_{name}", "--from", str(path), home=kiln.home)
    out = json.loads(kiln_cli("train", "--url", kiln.url, "--table", "main.pipes.auto_train", "--test-table", "main.pipes.auto_test",
                              "--target", "label", "--algorithm", "logistic", "--features", "color,size,weight", "--json").stdout)
    cols = ["color", "size", "weight"]
    peer = make_pipeline(
        ColumnTransformer([("text", OneHotEncoder(handle_unknown="ignore"), ["color"]), ("num", SimpleImputer(), ["size", "weight"])]),
        StandardScaler(), LogisticRegression(max_iter=10_000))
    X = train_df[cols].fillna({"color": "__null"})
    peer.fit(X, train_df["label"])
    theirs = accuracy_score(test_df["label"], peer.predict(test_df[cols].fillna({"color": "__null"})))
    ours = out["metrics"]["test_accuracy_score"]
    assert abs(ours - theirs) <= max(0.01 * theirs, 1 / len(test_df) + 1e-12), (ours, theirs)
    # The logged spec holds the automatic pipeline, and the model says Python cannot load it.
    run = requests.get(f"{kiln.url}/api/2.0/mlflow/runs/get", params={"run_id": out["run_id"]},
                       headers={"Authorization": f"Bearer {TOKEN}"}).json()["run"]
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["pipeline"].startswith("string_indexer(color) → imputer(size, weight)")


def test_pipeline_models_predict_reload_and_reproduce(kiln, mixed):
    stages = [stage("string_indexer", ["color"], ["ci"], handle_invalid="keep"),
              stage("tokenizer", ["text"], ["words"]), stage("hashing_tf", ["words"], ["tf"], num_features=16),
              stage("imputer", ["size"], ["size_i"], strategy="median"),
              stage("vector_assembler", ["ci", "size_i", "weight", "tf"], ["features"])]
    # Through REST, as a list of stages.
    response = requests.post(f"{kiln.url}/api/2.0/kiln/train", headers={"Authorization": f"Bearer {TOKEN}"},
                             json={"table": "main.pipes.mixed", "target": "label", "algorithm": "xgboost", "seed": 4,
                                   "pipeline": stages, "register": "pipes_xgb", "params": {"max_depth": 3}})
    assert response.status_code == 200, response.text
    run_id = response.json()["run_id"]
    model_dir = os.path.join(kiln.home, "artifacts")
    mlmodel = next(os.path.join(root, "MLmodel") for root, _, files in os.walk(model_dir) if run_id in root and "MLmodel" in files)
    text = open(mlmodel).read()
    assert "python_loadable: false" in text and "xgboost:" not in text and '"type": "string", "name": "color"' in text
    for output in ["scored_a", "scored_b"]:
        kiln_cli("predict", "--model", "models:/pipes_xgb/1", "--table", "main.pipes.mixed", "--output", f"main.pipes.{output}", home=kiln.home)
    a = DeltaTable(os.path.join(kiln.home, "warehouse", "main", "pipes", "scored_a")).to_pandas()
    b = DeltaTable(os.path.join(kiln.home, "warehouse", "main", "pipes", "scored_b")).to_pandas()
    assert len(a) == N and a["probability"].tolist() == b["probability"].tolist()
    assert accuracy_score(mixed["label"], a["prediction"]) > 0.7
    out = kiln_cli("runs", "reproduce", run_id, "--url", kiln.url, "--token", TOKEN)
    assert "Match: run" in out.stdout, out.stdout
    # A pipeline without the features column is refused before anything runs.
    response = requests.post(f"{kiln.url}/api/2.0/kiln/train", headers={"Authorization": f"Bearer {TOKEN}"},
                             json={"table": "main.pipes.mixed", "target": "label", "algorithm": "xgboost", "pipeline": stages[:1]})
    assert response.status_code == 400 and "features column" in response.json()["message"]
