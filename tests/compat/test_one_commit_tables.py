"""A write that creates a table is one commit: version 0 holds the metadata and the rows together (as Spark and
delta-rs write it), for `kiln table write`, CREATE TABLE AS SELECT (CLI and statements API), `kiln ingest` and
`kiln predict`; a write that fails leaves no table at all."""
import json
import os
import subprocess

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from deltalake import DeltaTable

from conftest import KILN, TOKEN


def kiln(*args, ok=True):
    out = subprocess.run([KILN, *args], capture_output=True, text=True, timeout=300)
    if ok:
        assert out.returncode == 0, out.stderr
    return out


def one_commit(path, rows):
    """delta-rs sees version 0 only, with every row in it."""
    assert sorted(os.listdir(os.path.join(path, "_delta_log"))) == ["00000000000000000000.json"]
    table = DeltaTable(path)
    assert table.version() == 0 and len(table.history()) == 1
    assert table.to_pyarrow_table().num_rows == rows
    assert DeltaTable(path, version=0).to_pyarrow_table().num_rows == rows


def test_table_write_ctas_and_ingest_create_in_one_commit(tmp_path):
    home = str(tmp_path / "home")
    data = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": list(range(500)), "x": [float(i) for i in range(500)]}), data)
    kiln("table", "write", "main.s.written", "--from", str(data), "--home", home, "--partition-by", "id")
    one_commit(os.path.join(home, "warehouse/main/s/written"), 500)

    kiln("sql", "--home", home, "CREATE TABLE main.s.ctas AS SELECT id, x * 2 AS y FROM main.s.written WHERE id < 100")
    one_commit(os.path.join(home, "warehouse/main/s/ctas"), 100)
    kiln("sql", "--home", home, "CREATE TABLE main.s.empty_ctas AS SELECT id FROM main.s.written WHERE id < 0")
    one_commit(os.path.join(home, "warehouse/main/s/empty_ctas"), 0)

    land = tmp_path / "land"
    land.mkdir()
    (land / "a.csv").write_text("id,name\n1,ann\n2,bob\n")
    (land / "b.csv").write_text("id,name,extra\n3,cy,x\n")
    kiln("ingest", "--from", str(land), "--into", "main.s.ingested", "--home", home)
    one_commit(os.path.join(home, "warehouse/main/s/ingested"), 3)
    # The loaded files are remembered from version 0: nothing is loaded twice.
    out = kiln("ingest", "--from", str(land), "--into", "main.s.ingested", "--home", home, "--json")
    again = json.loads(out.stdout)
    assert again["files"] == [] and again["rows"] == 0


def test_a_failed_create_leaves_no_table(tmp_path):
    home = str(tmp_path / "home")
    bad = tmp_path / "bad.csv"
    bad.write_text("id,amount\n" + "".join(f"{i},{i}.5\n" for i in range(1000)) + "oops,1.0\n")
    out = kiln("table", "write", "main.s.bad", "--from", str(bad), "--home", home, "--schema", "id BIGINT, amount DOUBLE", ok=False)
    assert out.returncode != 0
    path = os.path.join(home, "warehouse/main/s/bad")
    assert not os.path.exists(os.path.join(path, "_delta_log")) or os.listdir(os.path.join(path, "_delta_log")) == []
    assert not [f for f in (os.listdir(path) if os.path.exists(path) else []) if f.endswith(".parquet")]


def test_ctas_through_the_statements_api_and_predict_outputs(kiln_server_home):
    server, home = kiln_server_home
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {TOKEN}"})
    session.post(f"{server.url}/api/2.0/sql/statements", json={"statement": "CREATE SCHEMA IF NOT EXISTS main.one", "warehouse_id": "kiln"})
    r = session.post(f"{server.url}/api/2.0/sql/statements", json={
        "statement": "CREATE TABLE main.one.api_ctas AS SELECT id, id % 3 AS g FROM range(250)", "warehouse_id": "kiln", "wait_timeout": "30s"})
    assert r.json()["status"]["state"] == "SUCCEEDED", r.text
    one_commit(os.path.join(home, "warehouse/main/one/api_ctas"), 250)

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    df["label"] = (df.a + df.b > 0).astype("int64")
    path = os.path.join(home, "bc.parquet")
    df.to_parquet(path, index=False)
    kiln("table", "write", "main.one.bc", "--from", path, "--home", home)
    env = dict(os.environ, KILN_TOKEN=TOKEN)
    out = subprocess.run([KILN, "train", "--url", server.url, "--table", "main.one.bc", "--target", "label", "--algorithm", "logistic",
                          "--register", "one_commit_model", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([KILN, "predict", "--model", "models:/one_commit_model/1", "--table", "main.one.bc", "--output", "main.one.scores",
                          "--home", home], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    one_commit(os.path.join(home, "warehouse/main/one/scores"), 300)


@pytest.fixture()
def kiln_server_home(kiln):
    return kiln, kiln.home
