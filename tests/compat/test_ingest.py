"""`kiln ingest` (incremental loading, issue P5): each file lands exactly once, across kills and restarts; schema
evolution and rescued data."""
import json
import os
import random
import signal
import subprocess
import time

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from conftest import KILN


def ingest(home, source, table, *args, ok=True):
    out = subprocess.run([KILN, "ingest", "--from", str(source), "--into", table, "--home", str(home), "--json", *args],
                         capture_output=True, text=True, timeout=120)
    if ok:
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)
    return out


def rows(home, sql):
    out = subprocess.run([KILN, "sql", "--home", str(home), "--format", "json", sql], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_csv_and_json_with_evolution_and_rescued_data(tmp_path):
    home, land = tmp_path / "home", tmp_path / "land"
    land.mkdir()
    (land / "a.csv").write_text("id,name,amount\n1,ann,1.5\n2,bob,2.5\n")
    (land / "b.csv").write_text("id,name,amount\n3,cy,not-a-number\n4,dee,4.25\n")
    first = ingest(home, land, "main.raw.orders")
    assert first["files"] == ["a.csv", "b.csv"] and first["rows"] == 4
    assert ingest(home, land, "main.raw.orders")["files"] == []                 # nothing new: nothing loaded twice
    (land / "c.csv").write_text("id,name,amount,coupon\n5,eve,5.0,SAVE10\n")      # a new column
    assert ingest(home, land, "main.raw.orders")["files"] == ["c.csv"]
    got = rows(home, "SELECT id, amount, coupon, _rescued_data FROM raw.orders ORDER BY id")
    assert [r["id"] for r in got] == [1, 2, 3, 4, 5]
    assert got[2]["amount"] is None and json.loads(got[2]["_rescued_data"]) == {"amount": "not-a-number"}
    assert got[4]["coupon"] == "SAVE10" and got[0]["coupon"] is None and got[0]["_rescued_data"] is None
    # JSON lines into another table: nested values and wrong types rescued.
    jland = tmp_path / "jland"
    jland.mkdir()
    (jland / "1.jsonl").write_text('{"id": 1, "score": 0.5, "tag": "x"}\n{"id": 2, "score": 1.5, "tag": "y"}\n')
    (jland / "2.jsonl").write_text('{"id": 3, "score": "high", "tag": "z", "new": true}\n')
    ingest(home, jland, "main.raw.events", "--format", "json")
    got = rows(home, "SELECT id, score, new, _rescued_data FROM raw.events ORDER BY id")
    assert [r["score"] for r in got] == [0.5, 1.5, None] and json.loads(got[2]["_rescued_data"]) == {"score": "high"}
    assert got[2]["new"] is True
    # History shows what each load took, and delta-rs reads the table.
    history = rows(home, "DESCRIBE HISTORY raw.orders")
    assert [h["operation"] for h in history][:2] == ["COPY INTO", "COPY INTO"]
    assert DeltaTable(str(home / "warehouse" / "main" / "raw" / "orders")).to_pyarrow_table().num_rows == 5


def test_killed_ingests_load_every_file_exactly_once(tmp_path):
    home, land = tmp_path / "home", tmp_path / "land"
    land.mkdir()
    rng = random.Random(5)
    expected = 0

    def add_files(start, count):
        nonlocal expected
        for k in range(start, start + count):
            n = 3000
            ids = range(k * 100_000, k * 100_000 + n)
            pq.write_table(pa.table({"id": pa.array(ids, pa.int64()), "file": [k] * n, "x": [rng.random() for _ in ids]}),
                           str(land / f"part-{k:04d}.parquet"))
            expected += n

    add_files(0, 30)
    kills = 0
    for attempt in range(30):
        if attempt == 10:
            add_files(30, 15)                                                     # more files arrive between runs
        proc = subprocess.Popen([KILN, "ingest", "--from", str(land), "--into", "main.raw.parts", "--home", str(home)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.01, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    # Finish: repeat until nothing is new.
    while ingest(home, land, "main.raw.parts")["files"]:
        pass
    assert kills > 0
    counts = rows(home, "SELECT count(*) AS n, count(DISTINCT id) AS d, count(DISTINCT file) AS f FROM raw.parts")[0]
    assert counts == {"n": expected, "d": expected, "f": 45}
    assert DeltaTable(str(home / "warehouse" / "main" / "raw" / "parts")).to_pyarrow_table().num_rows == expected
