"""Kiln's Delta tables against delta-rs (`deltalake`): tables Kiln writes read identically by delta-rs, and tables
delta-rs writes read identically by Kiln, at every version (issue P4)."""
import datetime
import decimal
import json
import os
import random
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from conftest import KILN
import delta_features as features
from test_parquet_interop import expected_json, floats_equal


def kiln(*args, ok=True, timeout=120):
    out = subprocess.run([KILN, "table", *args], capture_output=True, text=True, timeout=timeout)
    if ok:
        assert out.returncode == 0, out.stderr
    return out


def kiln_json(*args):
    return json.loads(kiln(*args, "--json").stdout)


def kiln_rows(path, *args):
    return [json.loads(line) for line in kiln("cat", path, *args).stdout.splitlines()]


def canonical(rows):
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


def delta_rows(table):
    """What `kiln table cat` should print for a pyarrow table."""
    return [{name: expected_json(row[name], table.schema.field(name).type) for name in table.column_names} for row in table.to_pylist()]


def assert_same(path, version=None):
    """Kiln and delta-rs read the same rows at `version`."""
    args = ["--version", str(version)] if version is not None else []
    ours = kiln_rows(path, *args)
    theirs = DeltaTable(path, version=version).to_pyarrow_table()
    expected = delta_rows(theirs)
    assert len(ours) == len(expected)
    assert floats_equal(sorted(ours, key=lambda r: json.dumps(r, sort_keys=True)),
                        sorted(expected, key=lambda r: json.dumps(r, sort_keys=True))), (version, ours[:3], expected[:3])


def sample(n, start=0, seed=1):
    rng = random.Random(seed)
    return pa.table({
        "id": pa.array(range(start, start + n), pa.int64()),
        "region": pa.array([rng.choice(["us", "eu", "ap"]) if i % 11 else None for i in range(n)]),
        "x": pa.array([rng.random() for _ in range(n)]),
        "n": pa.array([rng.randint(-100, 100) for _ in range(n)], pa.int32()),
        "day": pa.array([datetime.date(2024, 1, 1 + i % 5) for i in range(n)]),
        "ts": pa.array([datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=i) for i in range(n)],
                       pa.timestamp("us", tz="UTC")),
        "amount": pa.array([decimal.Decimal(rng.randint(-10**6, 10**6)) / 100 for _ in range(n)], pa.decimal128(12, 2)),
        "tags": pa.array([[f"t{i % 3}"] if i % 4 else None for i in range(n)], pa.list_(pa.string())),
        "point": pa.array([{"a": i, "b": str(i)} if i % 5 else None for i in range(n)],
                          pa.struct([("a", pa.int64()), ("b", pa.string())])),
    })


def write_input(tmp_path, name, table):
    path = str(tmp_path / f"{name}.parquet")
    pq.write_table(table, path)
    return path


# ---- Kiln writes, delta-rs reads ------------------------------------------------------------------------

@pytest.mark.parametrize("partitioned", [False, True])
def test_kiln_tables_read_by_delta_rs(tmp_path, partitioned):
    path = str(tmp_path / "t")
    extra = ["--partition-by", "region"] if partitioned else []
    kiln("write", path, "--from", write_input(tmp_path, "a", sample(300)), *extra)
    # Version 0 holds the table's metadata and first rows (one commit); 12 appends: a checkpoint at version 10.
    for k in range(1, 13):
        kiln("write", path, "--from", write_input(tmp_path, f"b{k}", sample(20, start=1000 * k, seed=k)))
    assert os.path.exists(os.path.join(path, "_delta_log", "00000000000000000010.checkpoint.parquet"))
    assert json.load(open(os.path.join(path, "_delta_log", "_last_checkpoint")))["version"] == 10
    kiln("delete", path, "--where", "n < 0 AND id < 1000")
    kiln("write", path, "--from", write_input(tmp_path, "c", sample(50, start=50_000, seed=99)), "--mode", "overwrite")
    kiln("restore", path, "--version", "13")
    dt = DeltaTable(path)
    assert dt.version() == 15
    assert dt.metadata().partition_columns == (["region"] if partitioned else [])
    for version in [0, 1, 5, 10, 12, 13, 14, 15]:
        assert_same(path, version)
    theirs = [(h["version"], h["operation"]) for h in dt.history()]
    ours = [(h["version"], h["operation"]) for h in kiln_json("history", path)]
    assert theirs == ours
    assert ours[:4] == [(15, "RESTORE"), (14, "WRITE"), (13, "DELETE"), (12, "WRITE")] and ours[-1] == (0, "WRITE")
    schema = {f.name: str(f.type) for f in dt.schema().fields}
    assert schema["id"] == 'PrimitiveType("long")' and schema["amount"] == 'PrimitiveType("decimal(12,2)")'
    described = kiln_json("describe", path)
    assert described["version"] == 15 and described["num_files"] == len(dt.file_uris())
    # delta-rs keeps writing the table Kiln made, and Kiln reads what it wrote.
    write_deltalake(path, sample(10, start=90_000, seed=5), mode="append")
    assert_same(path)


def test_kiln_merge_and_optimize_read_by_delta_rs(tmp_path):
    path = str(tmp_path / "t")
    for k in range(4):
        kiln("write", path, "--from", write_input(tmp_path, f"a{k}", sample(100, start=k * 100, seed=k)),
             *(["--partition-by", "region"] if k == 0 else []))
    source = sample(60, start=370, seed=77)  # 370..399 update, 400..429 insert
    result = kiln_json("merge", path, "--from", write_input(tmp_path, "s", source), "--on", "t.id = s.id")
    assert (result["updated"], result["inserted"], result["deleted"]) == (30, 30, 0)
    rows = {r["id"]: r for r in DeltaTable(path).to_pyarrow_table().to_pylist()}
    assert len(rows) == 430 and rows[375]["x"] == source.to_pylist()[5]["x"]
    assert DeltaTable(path).history(1)[0]["operation"] == "MERGE"
    assert_same(path)
    before = DeltaTable(path).to_pyarrow_table().num_rows
    updated = kiln_json("update", path, "--set", "x = 0.25, region = 'zz'", "--where", "id >= 420")
    assert updated["rows_updated"] == 10
    assert sorted(r["id"] for r in DeltaTable(path).to_pyarrow_table().to_pylist() if r["region"] == "zz") == list(range(420, 430))
    assert DeltaTable(path).history(1)[0]["operation"] == "UPDATE"
    optimized = kiln_json("optimize", path)
    assert optimized["files_removed"] > optimized["files_added"] > 0
    dt = DeltaTable(path)
    assert dt.to_pyarrow_table().num_rows == before and dt.history(1)[0]["operation"] == "OPTIMIZE"
    assert_same(path)
    # delta-rs merges into the table Kiln compacted; Kiln reads the result.
    (dt.merge(sample(5, start=0, seed=9), "t.id = s.id", source_alias="s", target_alias="t")
       .when_matched_delete().execute())
    assert_same(path)


def test_kiln_schema_evolution_and_replace_where(tmp_path):
    path = str(tmp_path / "t")
    base = sample(100)
    kiln("write", path, "--from", write_input(tmp_path, "a", base), "--partition-by", "day")
    wider = sample(20, start=500).append_column("score", pa.array([float(i) for i in range(20)]))
    bad = kiln("write", path, "--from", write_input(tmp_path, "w", wider), ok=False)
    assert bad.returncode != 0 and "score" in bad.stderr and "merge-schema" in bad.stderr.replace("mergeSchema", "merge-schema")
    kiln("write", path, "--from", write_input(tmp_path, "w2", wider), "--merge-schema")
    assert "score" in [f.name for f in DeltaTable(path).schema().fields]
    assert_same(path)
    jan2 = sample(7, start=800).set_column(4, "day", pa.array([datetime.date(2024, 1, 2)] * 7))
    kiln("write", path, "--from", write_input(tmp_path, "r", jan2), "--mode", "overwrite", "--replace-where", "day = '2024-01-02'")
    rows = DeltaTable(path).to_pyarrow_table().to_pylist()
    assert sorted(r["id"] for r in rows if r["day"] == datetime.date(2024, 1, 2)) == list(range(800, 807))
    assert_same(path)
    wrong = kiln("write", path, "--from", write_input(tmp_path, "wt", pa.table({"id": pa.array(["x"])})), ok=False)
    assert "BIGINT" in wrong.stderr and "STRING" in wrong.stderr


def test_kiln_time_travel_by_timestamp_matches_delta_rs(tmp_path):
    path = str(tmp_path / "t")
    kiln("write", path, "--from", write_input(tmp_path, "a", sample(10)))
    time.sleep(1.1)
    middle = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(1.1)
    kiln("write", path, "--from", write_input(tmp_path, "b", sample(10, start=100)))
    stamp = middle.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ours = kiln_rows(path, "--timestamp", stamp)
    dt = DeltaTable(path)
    dt.load_as_version(middle)
    assert dt.version() == 0  # the first write created the table: version 0 holds its rows
    assert canonical(ours) == canonical(delta_rows(dt.to_pyarrow_table()))
    early = kiln("cat", path, "--timestamp", "2000-01-01T00:00:00Z", ok=False)
    assert early.returncode != 0 and "no version" in early.stderr


# ---- delta-rs writes, Kiln reads -------------------------------------------------------------------------

def test_delta_rs_tables_read_by_kiln_at_every_version(tmp_path):
    path = str(tmp_path / "t")
    write_deltalake(path, sample(200), partition_by=["region"])                                   # 0
    write_deltalake(path, sample(50, start=1000, seed=2), mode="append")                          # 1
    dt = DeltaTable(path)
    dt.delete("n < -50")                                                                          # 2
    dt = DeltaTable(path)
    source = sample(40, start=150, seed=3)
    (dt.merge(source, "t.id = s.id", source_alias="s", target_alias="t")
       .when_matched_update_all().when_not_matched_insert_all().execute())                         # 3
    dt = DeltaTable(path)
    dt.update({"x": "x * 2"}, predicate="region = 'eu'")                                           # 4
    wider = sample(10, start=5000, seed=4).append_column("extra", pa.array(["e"] * 10))
    write_deltalake(path, wider, mode="append", schema_mode="merge")                              # 5
    DeltaTable(path).alter.add_constraint({"n_range": "n >= -100"})                               # 6
    DeltaTable(path).optimize.compact()                                                           # 7
    DeltaTable(path).create_checkpoint()
    write_deltalake(path, sample(5, start=9000, seed=6), mode="overwrite", schema_mode="merge")    # 8
    final = DeltaTable(path)
    assert final.version() == 8
    for version in range(0, 9):
        assert_same(path, version)
    ours = [(h["version"], h["operation"]) for h in kiln_json("history", path)]
    assert ours == [(h["version"], h["operation"]) for h in final.history()]
    # Kiln's skipping agrees with the answer.
    scanned = kiln_json("scan", path, "--where", "region = 'us'", "--version", "1")
    theirs = DeltaTable(path, version=1).to_pyarrow_table().filter(pa.compute.equal(pa.compute.field("region"), "us"))
    assert scanned["rows"] == theirs.num_rows and scanned["files_skipped"] > 0


def test_delta_rs_constraints_are_honoured(tmp_path):
    path = str(tmp_path / "c")
    write_deltalake(path, sample(20))
    DeltaTable(path).alter.add_constraint({"x_small": "x < 0.99"})
    bad = sample(3, start=100).set_column(2, "x", pa.array([0.5, 2.0, 0.1]))
    out = kiln("write", path, "--from", write_input(tmp_path, "bad", bad), ok=False)
    assert out.returncode != 0 and "x_small" in out.stderr
    kiln("write", path, "--from", write_input(tmp_path, "good", sample(3, start=100).set_column(2, "x", pa.array([0.5, 0.2, 0.1]))))
    assert DeltaTable(path).version() == 2


def test_delta_rs_generated_columns_and_invariants_are_honoured(tmp_path):
    from deltalake import Field, Schema
    path = str(tmp_path / "gen")
    schema = Schema([Field("id", "long"), Field("ts", "timestamp"),
                     Field("day", "date", metadata={"delta.generationExpression": "CAST(ts AS DATE)"}),
                     Field("x", "double", metadata={"delta.invariants": json.dumps({"expression": {"expression": "x > 0"}})})])
    DeltaTable.create(path, schema=schema, partition_by=["day"])
    utc = datetime.timezone.utc
    stamps = [datetime.datetime(2024, 1, 1, 23, 30, tzinfo=utc), datetime.datetime(2024, 1, 2, 1, 0, tzinfo=utc),
              datetime.datetime(1969, 12, 31, 22, 0, tzinfo=utc), None]
    rows = pa.table({"id": pa.array([1, 2, 3, 4], pa.int64()), "ts": pa.array(stamps, pa.timestamp("us", tz="UTC")),
                     "x": [1.0, 2.0, 3.0, 4.0]})
    kiln("write", path, "--from", write_input(tmp_path, "rows", rows))                 # day and hour computed by Kiln
    got = {r["id"]: r["day"] for r in kiln_rows(path)}
    assert got == {1: "2024-01-01", 2: "2024-01-02", 3: "1969-12-31", 4: None}
    assert_same(path)
    write_deltalake(path, rows.slice(0, 2).set_column(0, "id", pa.array([5, 6], pa.int64())), mode="append")   # delta-rs computes too
    assert_same(path)
    theirs = {r["id"]: r["day"] for r in kiln_rows(path) if r["id"] >= 5}
    assert theirs == {5: "2024-01-01", 6: "2024-01-02"}
    wrong = rows.slice(0, 1).append_column("day", pa.array([datetime.date(2024, 5, 5)]))
    out = kiln("write", path, "--from", write_input(tmp_path, "wrong", wrong), ok=False)
    assert out.returncode != 0 and "generated" in out.stderr
    negative = rows.slice(0, 1).set_column(2, "x", pa.array([-1.0]))
    out = kiln("write", path, "--from", write_input(tmp_path, "neg", negative), ok=False)
    assert out.returncode != 0 and "x > 0" in out.stderr
    out = kiln("update", path, "--set", "day = '2020-01-01'", ok=False)
    assert out.returncode != 0 and "generated" in out.stderr
    kiln("update", path, "--set", "ts = '2030-06-07T08:09:10Z'", "--where", "id = 1")  # the generated columns follow
    assert {r["id"]: r["day"] for r in kiln_rows(path)}[1] == "2030-06-07"
    assert_same(path)
    assert DeltaTable(path).version() == 3


# ---- change data feed -----------------------------------------------------------------------------------

def kiln_changes(path, start, end=None):
    args = ["changes", path, "--from", str(start)] + (["--to", str(end)] if end is not None else [])
    rows = [json.loads(line) for line in kiln(*args).stdout.splitlines()]
    for row in rows:
        assert row.pop("_commit_timestamp")
    return rows


def delta_changes(path, start, end=None):
    """delta-rs's `load_cdf`, as `kiln table changes` prints rows (string views read as strings)."""
    table = pa.table(DeltaTable(path).load_cdf(starting_version=start, ending_version=end).read_all())
    table = table.cast(pa.schema([pa.field(f.name, pa.string() if pa.types.is_string_view(f.type) else f.type) for f in table.schema]))
    return [{name: expected_json(row[name], table.schema.field(name).type) for name in table.column_names if name != "_commit_timestamp"}
            for row in table.to_pylist()]


def assert_same_changes(path, start, end=None):
    ours, theirs = kiln_changes(path, start, end), delta_changes(path, start, end)
    assert len(ours) == len(theirs), (start, end, len(ours), len(theirs))
    key = lambda r: json.dumps(r, sort_keys=True)
    assert floats_equal(sorted(ours, key=key), sorted(theirs, key=key)), (start, end)
    return ours


SAMPLE_DDL = ("id BIGINT, region STRING, x DOUBLE, n INT, day DATE, ts TIMESTAMP, amount DECIMAL(12,2), tags ARRAY<STRING>, "
              "point STRUCT<a: BIGINT, b: STRING>")


@pytest.mark.parametrize("partitioned", [False, True])
def test_kiln_change_data_feed_read_by_delta_rs(tmp_path, partitioned):
    path = str(tmp_path / "cdf")
    kiln("create", path, "--schema", SAMPLE_DDL, "--property", "delta.enableChangeDataFeed=true",
         *(["--partition-by", "region"] if partitioned else []))                                          # 0
    kiln("write", path, "--from", write_input(tmp_path, "a", sample(120)))                                # 1
    kiln("delete", path, "--where", "n < -50")                                                            # 2
    kiln("update", path, "--set", "x = 0.5", "--where", "n > 50")                                         # 3
    upserts = sample(30, start=100, seed=5)
    kiln("merge", path, "--from", write_input(tmp_path, "m", upserts), "--on", "t.id = s.id")             # 4
    kiln("optimize", path)                                                                                 # 5 (no data change)
    kiln("merge", path, "--from", write_input(tmp_path, "d", sample(5, start=0, seed=9)), "--on", "t.id = s.id",
         "--when-matched", "delete", "--no-insert")                                                        # 6
    assert DeltaTable(path).version() == 6
    assert DeltaTable(path).protocol().min_writer_version >= 4
    changes = assert_same_changes(path, 0)
    kinds = {(r["_commit_version"], r["_change_type"]) for r in changes}
    assert {(1, "insert"), (2, "delete"), (3, "update_preimage"), (3, "update_postimage"), (4, "update_preimage"),
            (4, "update_postimage"), (4, "insert"), (6, "delete")} <= kinds
    assert not any(r["_commit_version"] == 5 for r in changes)
    for start, end in [(2, 2), (3, 4), (4, 6)]:
        assert_same_changes(path, start, end)
    # The pre- and post-images of the UPDATE are the same rows before and after.
    pre = {r["id"]: r for r in changes if r["_commit_version"] == 3 and r["_change_type"] == "update_preimage"}
    post = {r["id"]: r for r in changes if r["_commit_version"] == 3 and r["_change_type"] == "update_postimage"}
    assert pre.keys() == post.keys() and pre and all(post[i]["x"] == 0.5 for i in post)
    assert_same(path)


def test_delta_rs_change_data_feed_read_by_kiln(tmp_path):
    path = str(tmp_path / "cdf")
    write_deltalake(path, sample(100), partition_by=["region"], configuration={"delta.enableChangeDataFeed": "true"})  # 0
    write_deltalake(path, sample(20, start=500, seed=2), mode="append")                                       # 1
    DeltaTable(path).delete("n < -50")                                                                         # 2
    DeltaTable(path).update({"x": "x * 2"}, predicate="region = 'eu'")                                         # 3
    (DeltaTable(path).merge(sample(30, start=90, seed=3), "t.id = s.id", source_alias="s", target_alias="t")
        .when_matched_update_all().when_not_matched_insert_all().execute())                                    # 4
    kiln("delete", path, "--where", "id = 95")                                                                 # 5, by Kiln
    for start in range(0, 6):
        assert_same_changes(path, start)
    assert {r["_change_type"] for r in kiln_changes(path, 5)} == {"delete"}


def test_changes_need_the_feed(tmp_path):
    path = str(tmp_path / "plain")
    write_deltalake(path, sample(10))
    out = kiln("changes", path, "--from", "0", ok=False)
    assert out.returncode != 0 and "enableChangeDataFeed" in out.stderr
    out = kiln("changes", path, "--from", "5", ok=False)
    assert out.returncode != 0 and "version" in out.stderr


def test_kiln_log_cleanup_leaves_a_table_delta_rs_reads(tmp_path):
    path = str(tmp_path / "clean")
    kiln("create", path, "--schema", SAMPLE_DDL, "--property", "delta.checkpointInterval=2",
         "--property", "delta.logRetentionDuration=interval 0 seconds")
    for k in range(5):
        time.sleep(0.01)
        kiln("write", path, "--from", write_input(tmp_path, f"part{k}", sample(20, start=100 * k, seed=k)))   # 1..5
    names = sorted(os.listdir(os.path.join(path, "_delta_log")))
    assert "00000000000000000000.json" not in names and "00000000000000000004.checkpoint.parquet" in names
    assert "00000000000000000003.json" not in names and "00000000000000000005.json" in names
    assert DeltaTable(path).version() == 5
    assert_same(path)
    out = kiln("cat", path, "--version", "1", ok=False)
    assert out.returncode != 0 and "cleaned up" in out.stderr


# ---- reader features delta-rs does not write: deletion vectors, column mapping ---------------------------

def data_files(path, version):
    """Live add actions at `version`, from the log."""
    live = {}
    for v in range(version + 1):
        for action in features.log_actions(path, v):
            if "add" in action:
                live[action["add"]["path"]] = action["add"]
            if "remove" in action:
                live.pop(action["remove"]["path"], None)
    return live


def test_deletion_vectors_are_applied(tmp_path):
    path = str(tmp_path / "dv")
    write_deltalake(path, sample(6000))                                                     # 0
    write_deltalake(path, sample(300, start=6000, seed=2), mode="append")                   # 1
    write_deltalake(path, sample(50, start=7000, seed=3), mode="append")                    # 2
    files = sorted(data_files(path, 2).values(), key=lambda a: -a["size"])
    big, middle, small = (f["path"] for f in files)
    rng = random.Random(7)
    gone = {
        big: sorted(rng.sample(range(6000), 4500)),          # > 4096 in one container: a bitmap container
        middle: list(range(10, 201)) + [299],                # a run container
        small: [0, 3, 49],                                   # inline
    }
    shared = features.write_dv_file(path, [(gone[big], False), (gone[middle], True)], prefix="ab")
    features.add_deletion_vectors(path, 3, {big: shared[0], middle: shared[1], small: features.inline_dv(gone[small])})
    expected = []
    for name, positions in gone.items():
        table = pq.read_table(os.path.join(path, name))
        keep = sorted(set(range(table.num_rows)) - set(positions))
        expected += delta_rows(table.take(pa.array(keep, pa.int64())))
    ours = kiln_rows(path)
    assert len(ours) == 6350 - 4500 - 192 - 3 == len(expected)
    assert floats_equal(sorted(ours, key=lambda r: json.dumps(r, sort_keys=True)), sorted(expected, key=lambda r: json.dumps(r, sort_keys=True)))
    assert len(kiln_rows(path, "--version", "2")) == 6350                                   # time travel before the vectors
    assert kiln_json("scan", path)["rows"] == len(expected)
    us = [r for r in expected if r["region"] == "us"]
    assert kiln_json("scan", path, "--where", "region = 'us'")["rows"] == len(us)
    assert kiln_json("describe", path)["num_rows"] == len(expected)                       # numRecords less the vectors' rows
    # Kiln does not write deletion vectors, so it refuses to change the table rather than mishandle them.
    refused = kiln("delete", path, "--where", "id = 1", ok=False)
    assert refused.returncode != 0 and "deletionVectors" in refused.stderr
    # A damaged vector is an error, never silently ignored.
    dv_file = [f for f in os.listdir(os.path.join(path, "ab")) if f.startswith("deletion_vector_")][0]
    with open(os.path.join(path, "ab", dv_file), "r+b") as f:
        f.seek(40)
        byte = f.read(1)
        f.seek(40)
        f.write(bytes([byte[0] ^ 0xFF]))
    broken = kiln("cat", path, ok=False)
    assert broken.returncode != 0 and "deletion vector" in broken.stderr


@pytest.mark.parametrize("mode", ["name", "id"])
def test_column_mapping_is_resolved(tmp_path, mode):
    path = str(tmp_path / "cm")
    rng = random.Random(3)
    table = pa.table({"id": pa.array(range(60), pa.int64()), "region": pa.array([["us", "eu", "ap"][i % 3] for i in range(60)]),
                      "x": pa.array([rng.random() for _ in range(60)]), "n": pa.array([rng.randint(-9, 9) for _ in range(60)], pa.int32())})
    physical, schema = features.column_mapped_table(path, table, "region", mode)
    assert all(os.path.isdir(os.path.join(path, f"{physical['region']}={r}")) for r in ["us", "eu", "ap"])
    assert canonical(kiln_rows(path)) == canonical(delta_rows(table))
    scanned = kiln_json("scan", path, "--where", "region = 'eu' AND x > 0.5")
    assert scanned["rows"] == sum(1 for r in table.to_pylist() if r["region"] == "eu" and r["x"] > 0.5)
    assert scanned["files_skipped"] == 2
    top = max(table.column("x").to_pylist())
    assert kiln_json("scan", path, "--where", f"x > {top}")["files_read"] == 0   # statistics keyed by physical names
    features.rename_column(path, 1, schema, "x", "score")
    renamed = kiln_rows(path)
    assert canonical(renamed) == canonical([{("score" if k == "x" else k): v for k, v in r.items()} for r in delta_rows(table)])
    assert canonical(kiln_rows(path, "--version", "0")) == canonical(delta_rows(table))
    refused = kiln("write", path, "--from", write_input(tmp_path, "more", table.slice(0, 2)), ok=False)
    assert refused.returncode != 0


# ---- concurrency and crashes -----------------------------------------------------------------------------

def test_two_processes_appending_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "t")
    kiln("create", path, "--schema", "id BIGINT, region STRING, x DOUBLE")
    inputs = []
    for k in range(16):
        p = tmp_path / f"in{k}.csv"
        p.write_text("id,region,x\n" + "".join(f"{k * 1000 + i},r{k},{i / 7}\n" for i in range(25)))
        inputs.append(str(p))
    procs = [subprocess.Popen([KILN, "table", "write", path, "--from", f, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for f in inputs]
    acknowledged = 0
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            acknowledged += json.loads(out)["rows"]
    assert acknowledged == 16 * 25
    dt = DeltaTable(path)
    assert dt.version() == 16
    assert dt.to_pyarrow_table().num_rows == acknowledged
    assert kiln_json("scan", path)["rows"] == acknowledged
    versions = sorted(int(n.split(".")[0]) for n in os.listdir(os.path.join(path, "_delta_log")) if n.endswith(".json"))
    assert versions == list(range(17))


def test_conflicting_overwrite_fails_with_conflict_error(tmp_path):
    """A Kiln overwrite racing many appends either commits on a fresh snapshot or fails with RESOURCE_CONFLICT."""
    path = str(tmp_path / "t")
    kiln("create", path, "--schema", "id BIGINT")
    big = tmp_path / "big.csv"
    big.write_text("id\n" + "".join(f"{i}\n" for i in range(200_000)))
    small = tmp_path / "small.csv"
    small.write_text("id\n1\n")
    writers = [subprocess.Popen([KILN, "table", "write", path, "--from", str(small)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(6)]
    overwrite = subprocess.run([KILN, "table", "write", path, "--from", str(big), "--mode", "overwrite"], capture_output=True, text=True, timeout=300)
    for w in writers:
        w.communicate(timeout=120)
        assert w.returncode == 0
    rows = DeltaTable(path).to_pyarrow_table().num_rows
    if overwrite.returncode != 0:
        assert "RESOURCE_CONFLICT" in overwrite.stderr and "retry" in overwrite.stderr
        assert rows == 6
    else:
        assert 200_000 <= rows <= 200_006


def test_sigkill_during_writes_never_breaks_the_table(tmp_path):
    path = str(tmp_path / "t")
    kiln("create", path, "--schema", "id BIGINT, s STRING")
    big = tmp_path / "big.csv"
    big.write_text("id,s\n" + "".join(f"{i},value-{i}\n" for i in range(100_000)))
    rng = random.Random(42)
    committed = 0
    for attempt in range(12):
        proc = subprocess.Popen([KILN, "table", "write", path, "--from", str(big), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        version = DeltaTable(path).version()
        rows = DeltaTable(path).to_pyarrow_table().num_rows
        assert rows == 100_000 * version  # every commit is whole: no partial version
        assert kiln_json("scan", path)["rows"] == rows
        committed = version
    leftovers = [n for n in os.listdir(os.path.join(path, "_delta_log")) if n.startswith(".tmp")]
    assert all(n.startswith(".tmp") for n in leftovers)  # temp files are never mistaken for commits
    orphans = kiln_json("vacuum", path, "--retain-hours", "0", "--force", "--dry-run")
    live = {os.path.basename(u) for u in DeltaTable(path).file_uris()}
    assert not live & {os.path.basename(f) for f in orphans["files"]}
    kiln("vacuum", path, "--retain-hours", "0", "--force")
    assert DeltaTable(path).to_pyarrow_table().num_rows == 100_000 * committed
