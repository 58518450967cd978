"""`kiln parquet` against files pyarrow writes (issue 4, first slice: footer, schema and stats)."""
import datetime
import decimal
import json
import os
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import KILN


def kiln_json(*args):
    out = subprocess.run([KILN, "parquet", *args, "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


TABLE = pa.table({
    "i8": pa.array([1, -2, None], pa.int8()),
    "u32": pa.array([1, 2, 3], pa.uint32()),
    "i64": pa.array([1, None, 3], pa.int64()),
    "f": pa.array([1.5, float("nan"), None], pa.float32()),
    "d": pa.array([0.25, float("inf"), -1.0], pa.float64()),
    "b": pa.array([True, False, None]),
    "s": pa.array(["a", None, "ccc"]),
    "bin": pa.array([b"\x00\x01", b"", None], pa.binary()),
    "date": pa.array([datetime.date(2024, 1, 2)] * 3, pa.date32()),
    "ts_ms": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5)] * 3, pa.timestamp("ms")),
    "ts_us_utc": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5)] * 3, pa.timestamp("us", tz="UTC")),
    "dec": pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("-3.50")], pa.decimal128(10, 2)),
    "list": pa.array([[1, 2], [], None], pa.list_(pa.int64())),
    "struct": pa.array([{"x": 1, "y": "q"}, None, {"x": 3, "y": None}]),
    "map": pa.array([[("k", 1)], [], None], pa.map_(pa.string(), pa.int32())),
})


@pytest.mark.parametrize("codec", ["none", "snappy", "gzip", "zstd"])
@pytest.mark.parametrize("version", ["1.0", "2.6"])
def test_schema_and_stats_match_pyarrow(tmp_path, codec, version):
    path = str(tmp_path / f"t-{codec}-{version}.parquet")
    pq.write_table(TABLE, path, compression=codec, version=version, row_group_size=2)
    meta = pq.ParquetFile(path).metadata
    schema = kiln_json("schema", path)
    theirs = pq.ParquetFile(path).schema
    assert [c["path"] for c in schema] == [theirs.column(i).path for i in range(len(theirs))]
    assert [c["physical_type"] for c in schema] == [theirs.column(i).physical_type for i in range(len(theirs))]
    by_path = {c["path"]: c for c in schema}
    # Format 1.0 files may carry only the legacy converted type; 2.x files carry the logical type.
    def annotation(column):
        return {by_path[column].get("logical_type"), by_path[column].get("converted_type")}
    assert annotation("s") & {"STRING", "UTF8"}
    assert annotation("dec") & {"DECIMAL(10, 2)", "DECIMAL"}
    assert annotation("ts_us_utc") & {"TIMESTAMP(MICROS, UTC)", "TIMESTAMP_MICROS"}
    assert annotation("i8") & {"INT(8, signed)", "INT_8"}
    if version != "1.0":  # format 1.0 stores uint32 as a plain INT64
        assert annotation("u32") & {"INT(32, unsigned)", "UINT_32"}
    assert annotation("date") & {"DATE"}

    stats = kiln_json("stats", path)
    assert stats["num_rows"] == meta.num_rows == 3
    assert stats["row_groups"] == meta.num_row_groups == 2
    expected_codec = {"none": "UNCOMPRESSED"}.get(codec, codec.upper())
    for i, column in enumerate(stats["columns"]):
        total = sum(meta.row_group(g).column(i).num_values for g in range(meta.num_row_groups))
        assert column["path"] == meta.row_group(0).column(i).path_in_schema
        assert column["num_values"] == total
        assert column["codec"] == expected_codec
        assert column["compressed_bytes"] == sum(meta.row_group(g).column(i).total_compressed_size for g in range(meta.num_row_groups))


def test_hostile_files_fail_cleanly(tmp_path):
    good = tmp_path / "good.parquet"
    pq.write_table(TABLE, str(good))
    data = good.read_bytes()
    cases = {
        "empty": b"",
        "bad_magic": b"XXXX" + data[4:],
        "truncated": data[: len(data) // 2],
        "lying_footer_length": data[:-8] + (len(data) * 4).to_bytes(4, "little") + b"PAR1",
        "garbage_footer": data[:-8 - 40] + os.urandom(40) + data[-8:],
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.parquet"
        path.write_bytes(content)
        out = subprocess.run([KILN, "parquet", "schema", str(path)], capture_output=True, text=True, timeout=30)
        assert out.returncode != 0, name
        assert "Error" in out.stderr and "Traceback" not in out.stderr, (name, out.stderr)
