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


def expected_json(value, arrow_type):
    """What `kiln parquet cat` prints for a pyarrow value."""
    import base64
    import math
    if value is None:
        return None
    if pa.types.is_timestamp(arrow_type):
        return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value.tzinfo else value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if pa.types.is_date(arrow_type):
        return value.isoformat()
    if pa.types.is_decimal(arrow_type):
        return str(value)
    if pa.types.is_binary(arrow_type):
        return base64.b64encode(value).decode()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


FLAT = pa.table({
    "i8": pa.array([1, -2, None, 4], pa.int8()),
    "u32": pa.array([1, 4_000_000_000, 3, None], pa.uint32()),
    "i64": pa.array([1, None, -3, 2**62], pa.int64()),
    "f": pa.array([1.5, float("nan"), None, float("inf")], pa.float32()),
    "d": pa.array([0.25, float("-inf"), -1.0, None], pa.float64()),
    "b": pa.array([True, False, None, True]),
    "s": pa.array(["a", None, "ccc", "a"]),
    "bin": pa.array([b"\x00\x01", b"", None, b"\xff"], pa.binary()),
    "date": pa.array([datetime.date(2024, 1, 2), None, datetime.date(1969, 12, 31), datetime.date(2000, 2, 29)], pa.date32()),
    "ts_ms": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5, 678000), None, datetime.datetime(1970, 1, 1), datetime.datetime(1969, 12, 31, 23, 59, 59)], pa.timestamp("ms")),
    "ts_us_utc": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)] * 4, pa.timestamp("us", tz="UTC")),
    "dec": pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("-3.50"), decimal.Decimal("0.01")], pa.decimal128(10, 2)),
    "bigdec": pa.array([decimal.Decimal("-12345678901234567890.123"), None, decimal.Decimal("0.000"), decimal.Decimal("1.000")], pa.decimal128(38, 3)),
})


@pytest.mark.parametrize("codec", ["none", "snappy", "gzip", "zstd"])
@pytest.mark.parametrize("use_dictionary", [True, False])
@pytest.mark.parametrize("data_page_version", ["1.0", "2.0"])
def test_cat_matches_pyarrow_values(tmp_path, codec, use_dictionary, data_page_version):
    path = str(tmp_path / "flat.parquet")
    pq.write_table(FLAT, path, compression=codec, use_dictionary=use_dictionary, data_page_version=data_page_version,
                   row_group_size=3)
    out = subprocess.run([KILN, "parquet", "cat", path], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    theirs = pq.read_table(path)
    assert len(rows) == theirs.num_rows
    for name in theirs.column_names:
        column = theirs.column(name)
        expected = [expected_json(v.as_py(), column.type) for v in column]
        got = [row[name] for row in rows]
        if pa.types.is_floating(column.type):
            got = [g if isinstance(g, (str, type(None))) else float(g) for g in got]
        assert got == expected, name
    limited = subprocess.run([KILN, "parquet", "cat", path, "--columns", "s,i64", "--limit", "2"], capture_output=True, text=True)
    assert [json.loads(l) for l in limited.stdout.splitlines()] == [{"s": "a", "i64": 1}, {"s": None, "i64": None}]


def test_cat_says_what_it_does_not_support_yet(tmp_path):
    path = str(tmp_path / "brotli.parquet")
    pq.write_table(FLAT, path, compression="brotli")
    out = subprocess.run([KILN, "parquet", "cat", path], capture_output=True, text=True)
    assert out.returncode != 0 and "BROTLI" in out.stderr
    nested = str(tmp_path / "nested.parquet")
    pq.write_table(TABLE, nested, compression="none")
    out = subprocess.run([KILN, "parquet", "cat", nested, "--columns", "list.list.element"], capture_output=True, text=True)
    assert out.returncode != 0 and "nested" in out.stderr


def test_cat_rejects_corrupt_pages(tmp_path):
    path = tmp_path / "flat.parquet"
    pq.write_table(FLAT, str(path), compression="snappy")
    data = bytearray(path.read_bytes())
    meta = pq.ParquetFile(str(path)).metadata
    start = meta.row_group(0).column(2).data_page_offset
    for offset in range(start + 2, start + 40):  # scribble over a page header and its body
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))
    out = subprocess.run([KILN, "parquet", "cat", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "Error" in out.stderr
