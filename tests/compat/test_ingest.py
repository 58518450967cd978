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
    window = 0.4  # kill somewhere in the first `window` seconds; shrinks when runs finish first (a fast build)
    for attempt in range(30):
        if attempt == 10:
            add_files(30, 15)                                                     # more files arrive between runs
        if attempt in (0, 10):
            window = 0.4
        proc = subprocess.Popen([KILN, "ingest", "--from", str(land), "--into", "main.raw.parts", "--home", str(home)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, window))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        else:
            window /= 2
        proc.wait()
    # Finish: repeat until nothing is new.
    while ingest(home, land, "main.raw.parts")["files"]:
        pass
    assert kills > 0
    counts = rows(home, "SELECT count(*) AS n, count(DISTINCT id) AS d, count(DISTINCT file) AS f FROM raw.parts")[0]
    assert counts == {"n": expected, "d": expected, "f": 45}
    assert DeltaTable(str(home / "warehouse" / "main" / "raw" / "parts")).to_pyarrow_table().num_rows == expected


def test_expectations_apply_to_inserts_and_ingest(tmp_path):
    home, land = tmp_path / "home", tmp_path / "land"
    land.mkdir()

    def sql(statement, ok=True):
        out = subprocess.run([KILN, "sql", "--home", str(home), "--format", "json", statement], capture_output=True, text=True)
        assert (out.returncode == 0) == ok, (statement, out.stderr)
        return out

    sql("CREATE SCHEMA IF NOT EXISTS raw")
    sql("CREATE TABLE raw.pay (id BIGINT, amount DOUBLE, email STRING)")
    sql("ALTER TABLE raw.pay ADD CONSTRAINT positive EXPECT (amount > 0) ON VIOLATION DROP ROW")
    sql("ALTER TABLE raw.pay ADD CONSTRAINT has_email EXPECT (email IS NOT NULL)")                 # warn only
    sql("INSERT INTO raw.pay VALUES (1, 5.0, 'a@x'), (2, -1.0, 'b@x'), (3, 2.0, NULL)")
    (land / "p.csv").write_text("id,amount,email\n4,7.5,d@x\n5,-3,e@x\n6,0,\n7,1,g@x\n")
    ingest(home, land, "main.raw.pay")
    assert [r["id"] for r in rows(home, "SELECT id FROM raw.pay ORDER BY id")] == [1, 3, 4, 7]
    history = rows(home, "DESCRIBE HISTORY raw.pay")
    table = DeltaTable(str(home / "warehouse" / "main" / "raw" / "pay"))
    metrics = [h["operationMetrics"] for h in table.history() if h["operation"] in ("WRITE", "COPY INTO")]
    assert {m["numDroppedRows"] for m in metrics} == {"1", "2"}
    assert any(m["expectations.has_email.failed"] == "1" for m in metrics)
    sql("ALTER TABLE raw.pay ADD CONSTRAINT sane EXPECT (amount < 1000) ON VIOLATION FAIL UPDATE")
    out = sql("INSERT INTO raw.pay (id, amount, email) VALUES (9, 5000.0, 'z@x')", ok=False)
    assert "sane" in out.stderr and "refused" in out.stderr
    sql("ALTER TABLE raw.pay DROP CONSTRAINT sane")
    sql("INSERT INTO raw.pay (id, amount, email) VALUES (9, 5000.0, 'z@x')")
    assert len(history) >= 4


def test_copy_into_and_read_files_in_sql(tmp_path):
    home, land = tmp_path / "home", tmp_path / "land"
    land.mkdir()
    (land / "a.csv").write_text("id,city,temp\n1,Oslo,-3.5\n2,Rome,14.0\n")
    (land / "b.jsonl").write_text('{"id": 3, "city": "Lima", "temp": 19.5, "wind": 12}\n')

    def sql(statement):
        out = subprocess.run([KILN, "sql", "--home", str(home), "--format", "json", statement], capture_output=True, text=True)
        assert out.returncode == 0, (statement, out.stderr)
        return json.loads(out.stdout)

    first = sql(f"COPY INTO raw.weather FROM '{land}' FILEFORMAT = CSV FORMAT_OPTIONS ('header' = 'true') COPY_OPTIONS ('mergeSchema' = 'true')")
    assert first == [{"num_affected_rows": 2, "num_inserted_rows": 2, "num_skipped_corrupt_files": 0}]
    assert sql(f"COPY INTO raw.weather FROM '{land}' FILEFORMAT = CSV")[0]["num_inserted_rows"] == 0       # already loaded
    assert sql(f"COPY INTO raw.weather FROM '{land}' FILEFORMAT = JSON")[0]["num_inserted_rows"] == 1      # the JSON file, new column
    got = sql("SELECT id, city, temp, wind FROM raw.weather ORDER BY id")
    assert got == [{"id": 1, "city": "Oslo", "temp": -3.5, "wind": None}, {"id": 2, "city": "Rome", "temp": 14.0, "wind": None},
                   {"id": 3, "city": "Lima", "temp": 19.5, "wind": 12}]
    assert sql(f"SELECT count(*) AS n, max(temp) AS hot FROM read_files('{land / 'a.csv'}')") == [{"n": 2, "hot": 14.0}]
    both = sql(f"SELECT city FROM read_files('{land}') ORDER BY city")
    assert [r["city"] for r in both] == ["Lima", "Oslo", "Rome"]
    bad = subprocess.run([KILN, "sql", "--home", str(home), f"COPY INTO raw.weather FROM '{land}' FILEFORMAT = XML"], capture_output=True, text=True)
    assert bad.returncode != 0 and "CSV, JSON or PARQUET" in bad.stderr


def test_csv_options_and_modes(tmp_path):
    home = tmp_path / "home"

    def sql(statement, ok=True):
        out = subprocess.run([KILN, "sql", "--home", str(home), "--format", "json", statement], capture_output=True, text=True)
        assert (out.returncode == 0) == ok, (statement, out.stderr)
        return json.loads(out.stdout) if ok else out.stderr

    for name in ["drop", "fail", "keep"]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "1.csv").write_text('1;"semi; colon \\"quoted\\"";1.5\n2;plain;2.5\n')
    options = "'sep' = ';', 'header' = 'false'"
    for name in ["drop", "fail", "keep"]:
        sql(f"COPY INTO raw.{name} FROM '{tmp_path / name}' FILEFORMAT = CSV FORMAT_OPTIONS ({options})")
        (tmp_path / name / "2.csv").write_text("3;bad;oops\n4;good;4.5\n")
    assert sql("SELECT _c1 FROM raw.keep WHERE _c0 = 1") == [{"_c1": 'semi; colon "quoted"'}]
    sql(f"COPY INTO raw.drop FROM '{tmp_path / 'drop'}' FILEFORMAT = CSV FORMAT_OPTIONS ({options}, 'mode' = 'DROPMALFORMED')")
    assert [r["_c0"] for r in sql("SELECT _c0 FROM raw.drop ORDER BY _c0")] == [1, 2, 4]
    assert "oops" in sql(f"COPY INTO raw.fail FROM '{tmp_path / 'fail'}' FILEFORMAT = CSV FORMAT_OPTIONS ({options}, 'mode' = 'FAILFAST')", ok=False)
    assert [r["_c0"] for r in sql("SELECT _c0 FROM raw.fail ORDER BY _c0")] == [1, 2]                    # nothing of the failed load
    sql(f"COPY INTO raw.keep FROM '{tmp_path / 'keep'}' FILEFORMAT = CSV FORMAT_OPTIONS ({options})")     # PERMISSIVE
    kept = sql("SELECT _c0, _c2, _rescued_data FROM raw.keep ORDER BY _c0")
    assert [r["_c0"] for r in kept] == [1, 2, 3, 4] and kept[2]["_c2"] is None and json.loads(kept[2]["_rescued_data"]) == {"_c2": "oops"}
    rows = sql(f"SELECT * FROM read_files('{tmp_path / 'keep' / '1.csv'}', sep => ';', header => false)")
    assert [r["_c1"] for r in rows] == ['semi; colon "quoted"', "plain"]
    assert "Unknown CSV option" in sql(f"SELECT * FROM read_files('{tmp_path / 'keep'}', delim => ';')", ok=False)
