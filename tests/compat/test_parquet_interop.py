"""`kiln parquet` against the Parquet files the ecosystem writes (pyarrow, DuckDB, Polars, delta-rs), and Kiln's
own files read back by pyarrow, DuckDB and Polars (issue P3)."""
import base64
import csv
import datetime
import decimal
import glob
import json
import math
import os
import subprocess
import uuid

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import KILN


def run(*args, ok=True, timeout=120):
    out = subprocess.run([KILN, "parquet", *args], capture_output=True, text=True, timeout=timeout)
    if ok:
        assert out.returncode == 0, out.stderr
    return out


def kiln_json(*args):
    return json.loads(run(*args, "--json").stdout)


def cat(path, *args):
    return [json.loads(line) for line in run("cat", path, *args).stdout.splitlines()]


def expected_json(value, arrow_type):
    """What `kiln parquet cat` prints for a pyarrow value, recursively."""
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return str(value)
    if pa.types.is_timestamp(arrow_type):
        if value.tzinfo:
            value = value.astimezone(datetime.timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if pa.types.is_date(arrow_type):
        return value.isoformat()
    if pa.types.is_time(arrow_type):
        return value.strftime("%H:%M:%S.%f")
    if pa.types.is_decimal(arrow_type):
        return str(value)
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type) or pa.types.is_fixed_size_binary(arrow_type):
        return base64.b64encode(value).decode()
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return [expected_json(v, arrow_type.value_type) for v in value]
    if pa.types.is_map(arrow_type):
        return {str(expected_json(k, arrow_type.key_type)): expected_json(v, arrow_type.item_type) for k, v in value}
    if pa.types.is_struct(arrow_type):
        return {f.name: expected_json(value[f.name], f.type) for f in arrow_type}
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, float):
        return value
    return value


def normalize(got):
    """JSON prints 1.0 as 1.0 and pyarrow gives floats; compare numbers as numbers."""
    if isinstance(got, list):
        return [normalize(v) for v in got]
    if isinstance(got, dict):
        return {k: normalize(v) for k, v in got.items()}
    return got


def assert_cat_matches(path, columns=None):
    """`kiln parquet cat` equals pyarrow's reading of the same file, value by value."""
    rows = cat(path, *(["--columns", ",".join(columns)] if columns else []))
    theirs = pq.read_table(path, columns=columns)
    assert len(rows) == theirs.num_rows
    for name in theirs.column_names:
        column = theirs.column(name)
        expected = [expected_json(v.as_py(), column.type) for v in column]
        got = [row[name] for row in rows]
        assert floats_equal(got, expected), (name, got[:5], expected[:5])


def floats_equal(a, b):
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(floats_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(floats_equal(a[k], b[k]) for k in a)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b or abs(a - b) <= 1e-12 * max(abs(a), abs(b))
    return a == b


def tables_equal(a, b):
    """Same schema and the same values (NaN equal to NaN, which `Table.equals` does not allow)."""
    return a.schema == b.schema and floats_equal(a.to_pylist(), b.to_pylist())


FLAT = pa.table({
    "i8": pa.array([1, -2, None, 4], pa.int8()),
    "i16": pa.array([300, -2, None, 4], pa.int16()),
    "u8": pa.array([255, 0, None, 4], pa.uint8()),
    "u32": pa.array([1, 4_000_000_000, 3, None], pa.uint32()),
    "u64": pa.array([1, 2**64 - 1, 3, None], pa.uint64()),
    "i64": pa.array([1, None, -3, 2**62], pa.int64()),
    "f": pa.array([1.5, float("nan"), None, float("inf")], pa.float32()),
    "d": pa.array([0.25, float("-inf"), -1.0, None], pa.float64()),
    "b": pa.array([True, False, None, True]),
    "s": pa.array(["a", None, "ccc", "a"]),
    "big_s": pa.array(["x" * 5000, "", None, "é✓"], pa.large_string()),
    "bin": pa.array([b"\x00\x01", b"", None, b"\xff"], pa.binary()),
    "fixed": pa.array([b"abcd", None, b"\x00\x00\x00\x01", b"zzzz"], pa.binary(4)),
    "date": pa.array([datetime.date(2024, 1, 2), None, datetime.date(1969, 12, 31), datetime.date(2000, 2, 29)], pa.date32()),
    "t_ms": pa.array([datetime.time(1, 2, 3, 4000), None, datetime.time(0, 0), datetime.time(23, 59, 59, 999000)], pa.time32("ms")),
    "t_us": pa.array([datetime.time(1, 2, 3, 4), None, datetime.time(0, 0), datetime.time(23, 59, 59, 999999)], pa.time64("us")),
    "ts_ms": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5, 678000), None, datetime.datetime(1970, 1, 1), datetime.datetime(1969, 12, 31, 23, 59, 59)], pa.timestamp("ms")),
    "ts_us_utc": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)] * 4, pa.timestamp("us", tz="UTC")),
    "ts_ns": pa.array([0, None, 1_700_000_000_123_456_000, -1_000], pa.timestamp("ns")),
    "dec": pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("-3.50"), decimal.Decimal("0.01")], pa.decimal128(10, 2)),
    "bigdec": pa.array([decimal.Decimal("-12345678901234567890.123"), None, decimal.Decimal("0.000"), decimal.Decimal("1.000")], pa.decimal128(38, 3)),
    "req": pa.array([1, 2, 3, 4], pa.int32()),
})
FLAT = FLAT.cast(FLAT.schema.set(FLAT.schema.get_field_index("req"), pa.field("req", pa.int32(), nullable=False)))

NESTED = pa.table({
    "id": pa.array([1, 2, 3, 4], pa.int64()),
    "list": pa.array([[1, 2], [], None, [None, 5]], pa.list_(pa.int64())),
    "strings": pa.array([["a", None], None, [], ["bb"]], pa.list_(pa.string())),
    "struct": pa.array([{"x": 1, "y": "q"}, None, {"x": 3, "y": None}, {"x": None, "y": "r"}]),
    "map": pa.array([[("k", 1), ("j", None)], [], None, [("z", 9)]], pa.map_(pa.string(), pa.int32())),
    "int_map": pa.array([[(1, "a")], None, [], [(2, "b"), (3, None)]], pa.map_(pa.int64(), pa.string())),
    "list_of_lists": pa.array([[[1], [None, 2]], None, [[]], [[3, 4], None]], pa.list_(pa.list_(pa.int32()))),
    "list_of_structs": pa.array([[{"a": 1, "b": [1.5]}], [None], [], None],
                                pa.list_(pa.struct([("a", pa.int32()), ("b", pa.list_(pa.float64()))]))),
    "deep": pa.array([{"s": {"t": [1, 2]}}, {"s": None}, None, {"s": {"t": None}}],
                     pa.struct([("s", pa.struct([("t", pa.list_(pa.int16()))]))])),
})


@pytest.mark.parametrize("codec", ["none", "snappy", "gzip", "zstd"])
@pytest.mark.parametrize("version", ["1.0", "2.6"])
def test_schema_and_stats_match_pyarrow(tmp_path, codec, version):
    path = str(tmp_path / f"t-{codec}-{version}.parquet")
    table = pa.concat_tables([NESTED.slice(0, 3).append_column("dec", pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("-3.50")], pa.decimal128(10, 2)))])
    pq.write_table(table, path, compression=codec, version=version, row_group_size=2)
    meta = pq.ParquetFile(path).metadata
    schema = kiln_json("schema", path)
    theirs = pq.ParquetFile(path).schema
    assert [c["path"] for c in schema] == [theirs.column(i).path for i in range(len(theirs))]
    assert [c["physical_type"] for c in schema] == [theirs.column(i).physical_type for i in range(len(theirs))]
    assert [c["max_definition_level"] for c in schema] == [theirs.column(i).max_definition_level for i in range(len(theirs))]
    assert [c["max_repetition_level"] for c in schema] == [theirs.column(i).max_repetition_level for i in range(len(theirs))]
    stats = kiln_json("stats", path)
    assert stats["num_rows"] == meta.num_rows == 3
    assert stats["row_groups"] == meta.num_row_groups == 2
    expected_codec = {"none": "UNCOMPRESSED"}.get(codec, codec.upper())
    for i, column in enumerate(stats["columns"]):
        total = sum(meta.row_group(g).column(i).num_values for g in range(meta.num_row_groups))
        assert column["path"] == meta.row_group(0).column(i).path_in_schema
        assert column["num_values"] == total
        assert column["codec"] == expected_codec


@pytest.mark.parametrize("codec", ["none", "snappy", "gzip", "zstd"])
@pytest.mark.parametrize("use_dictionary", [True, False])
@pytest.mark.parametrize("data_page_version", ["1.0", "2.0"])
def test_cat_matches_pyarrow_values(tmp_path, codec, use_dictionary, data_page_version):
    for name, table in {"flat": FLAT, "nested": NESTED}.items():
        path = str(tmp_path / f"{name}.parquet")
        pq.write_table(table, path, compression=codec, use_dictionary=use_dictionary, data_page_version=data_page_version,
                       row_group_size=3)
        assert_cat_matches(path)


def test_cat_selects_columns_and_limits(tmp_path):
    path = str(tmp_path / "flat.parquet")
    pq.write_table(FLAT, path)
    assert cat(path, "--columns", "s,i64", "--limit", "2") == [{"s": "a", "i64": 1}, {"s": None, "i64": None}]
    nested = str(tmp_path / "nested.parquet")
    pq.write_table(NESTED, nested)
    assert cat(nested, "--columns", "struct.y", "--limit", "2") == [{"struct": {"y": "q"}}, {"struct": None}]
    assert_cat_matches(nested, columns=["list_of_structs", "id"])
    out = run("cat", path, "--columns", "nope", ok=False)
    assert out.returncode != 0 and "No column 'nope'" in out.stderr


def test_int96_timestamps_and_legacy_layouts(tmp_path):
    path = str(tmp_path / "int96.parquet")
    table = pa.table({"ts": pa.array([datetime.datetime(2020, 5, 6, 7, 8, 9, 123456), None, datetime.datetime(1900, 1, 1)], pa.timestamp("us")),
                      "l": pa.array([[1], [], None], pa.list_(pa.int32()))})
    pq.write_table(table, path, use_deprecated_int96_timestamps=True, use_compliant_nested_type=False)
    assert pq.ParquetFile(path).schema.column(0).physical_type == "INT96"
    assert_cat_matches(path)


def test_uuid_and_float_edge_values(tmp_path):
    path = str(tmp_path / "uuid.parquet")
    ids = [uuid.uuid4(), None, uuid.UUID(int=0)]
    table = pa.table({"u": pa.array([u.bytes if u else None for u in ids], pa.uuid()),
                      "z": pa.array([-0.0, 0.0, None], pa.float64())})
    pq.write_table(table, path, store_schema=False)
    assert "UUID" in {c.get("logical_type") for c in kiln_json("schema", path)}
    assert [row["u"] for row in cat(path)] == [str(ids[0]), None, "00000000-0000-0000-0000-000000000000"]


def rows_table(n, seed=1):
    import random
    rng = random.Random(seed)
    words = [f"word-{i}" for i in range(50)]
    return pa.table({
        "i32": pa.array([rng.randint(-2**31, 2**31 - 1) if i % 7 else None for i in range(n)], pa.int32()),
        "i64": pa.array([i * 1000 + rng.randint(-50, 50) for i in range(n)], pa.int64()),
        "f": pa.array([rng.random() for _ in range(n)], pa.float32()),
        "d": pa.array([rng.gauss(0, 1e6) if i % 5 else None for i in range(n)], pa.float64()),
        "s": pa.array([rng.choice(words) + ("" if i % 3 else str(i)) for i in range(n)]),
        "b": pa.array([rng.random() < 0.3 if i % 11 else None for i in range(n)]),
        "fixed": pa.array([rng.randbytes(6) for _ in range(n)], pa.binary(6)),
        "dec": pa.array([decimal.Decimal(rng.randint(-10**12, 10**12)) / 100 for _ in range(n)], pa.decimal128(20, 2)),
    })


ENCODINGS = [
    {"i32": "DELTA_BINARY_PACKED", "i64": "DELTA_BINARY_PACKED", "s": "DELTA_LENGTH_BYTE_ARRAY", "fixed": "DELTA_BYTE_ARRAY"},
    {"i32": "BYTE_STREAM_SPLIT", "i64": "BYTE_STREAM_SPLIT", "f": "BYTE_STREAM_SPLIT", "d": "BYTE_STREAM_SPLIT",
     "fixed": "BYTE_STREAM_SPLIT", "dec": "BYTE_STREAM_SPLIT"},
    {"s": "DELTA_BYTE_ARRAY", "dec": "DELTA_BYTE_ARRAY", "b": "RLE"},
]


@pytest.mark.parametrize("encodings", ENCODINGS, ids=["delta", "byte_stream_split", "delta_byte_array"])
@pytest.mark.parametrize("data_page_version", ["1.0", "2.0"])
def test_every_encoding_pyarrow_writes(tmp_path, encodings, data_page_version):
    path = str(tmp_path / "enc.parquet")
    pq.write_table(rows_table(3000), path, use_dictionary=False, column_encoding=encodings, data_page_version=data_page_version,
                   data_page_size=2048, row_group_size=1200, compression="snappy")
    meta = pq.ParquetFile(path).metadata
    written = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i).encodings for i in range(meta.num_columns)}
    for column, encoding in encodings.items():
        assert encoding in written[column], (column, written[column])
    assert_cat_matches(path)


def test_many_pages_row_groups_and_dictionary_fallback(tmp_path):
    path = str(tmp_path / "big.parquet")
    table = rows_table(20000, seed=3)
    pq.write_table(table, path, data_page_size=1024, row_group_size=7000, dictionary_pagesize_limit=4096, write_statistics=True)
    assert_cat_matches(path)
    scanned = kiln_json("scan", path)
    assert scanned["rows"] == 20000 and scanned["row_groups_read"] == 3


def test_sql_string_filters_over_dictionary_fallback_match_duckdb(tmp_path):
    """Kiln decides filters on string columns once per dictionary entry; a pyarrow file whose dictionary outgrows
    its page limit in the middle of a chunk (dictionary pages, then PLAIN pages) must still filter row for row."""
    from deltalake import convert_to_deltalake
    folder = tmp_path / "strings"
    folder.mkdir()
    n = 20000
    pool = ["a", "ab", "abc", "Ab", "é", "s001", "s0017", ""]
    s = [None if i % 11 == 0 else pool[i % len(pool)] if i < 6000 else f"unique-{i}-" + "x" * (i % 40) for i in range(n)]
    t = [None if i % 7 == 0 else pool[(i * 3) % len(pool)] for i in range(n)]
    table = pa.table({"id": pa.array(range(n), pa.int64()), "s": pa.array(s, pa.string()), "t": pa.array(t, pa.string())})
    path = str(folder / "part-0.parquet")
    pq.write_table(table, path, data_page_size=2048, row_group_size=n, dictionary_pagesize_limit=8192)
    encodings = pq.ParquetFile(path).metadata.row_group(0).column(1).encodings
    assert "RLE_DICTIONARY" in encodings and "PLAIN" in encodings, encodings
    convert_to_deltalake(str(folder))
    for condition in ["s LIKE 'a%'", "s IN ('a', 'é', 'unique-7000-')", "s IS NULL", "s LIKE 'unique-1%' AND t = 'ab'",
                      "lower(s) = 'ab' OR s IS NULL", "NOT (s = 'abc')", "s = t", "length(s) > 20 AND id % 3 = 0"]:
        query = "SELECT count(*) AS n, count(s) AS c, sum(id) AS total FROM {} WHERE " + condition
        out = subprocess.run([KILN, "sql", "--home", str(tmp_path / "home"), "--format", "json",
                              query.format(f"delta.`{folder}`")], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        ours = [list(row.values()) for row in json.loads(out.stdout)]
        theirs = [list(row) for row in duckdb.sql(query.format(f"'{path}'")).fetchall()]
        assert ours == theirs, (condition, ours, theirs)


def test_duckdb_files(tmp_path):
    for version in ["V1", "V2"]:
        path = str(tmp_path / f"duck-{version}.parquet")
        duckdb.sql(f"""
            COPY (SELECT i AS id, i::INTEGER % 7 AS small, 'name-' || (i % 13) AS name,
                         CASE WHEN i % 4 = 0 THEN NULL ELSE i * 1.5 END AS x,
                         DATE '2024-01-01' + (i % 400)::INTEGER AS day,
                         TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (i) SECOND AS ts,
                         (i / 100.0)::DECIMAL(12, 2) AS amount, (i * 7)::DECIMAL(30, 5) AS wide,
                         [i, i + 1] AS pair, {{'k': i % 3, 'v': 'v' || i}} AS obj,
                         MAP {{'a': i}} AS m, i % 2 = 0 AS even, uuid()::VARCHAR AS u
                  FROM range(5000) t(i))
            TO '{path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 2048, PARQUET_VERSION {version})""")
        assert_cat_matches(path)


def test_polars_files(tmp_path):
    frame = pl.DataFrame({
        "id": list(range(3000)),
        "name": [f"n{i % 17}" if i % 9 else None for i in range(3000)],
        "score": [i / 3 for i in range(3000)],
        "tags": [[f"t{i % 3}", "x"] if i % 5 else [] for i in range(3000)],
        "when": [datetime.datetime(2024, 1, 1) + datetime.timedelta(minutes=i) for i in range(3000)],
        "point": [{"x": i, "y": -i} for i in range(3000)],
    })
    for compression in ["snappy", "zstd", "uncompressed", "lz4"]:
        path = str(tmp_path / f"polars-{compression}.parquet")
        frame.write_parquet(path, compression=compression, row_group_size=1000, data_page_size=4096)
        if compression == "lz4":
            out = run("cat", path, ok=False)
            assert out.returncode != 0 and "LZ4" in out.stderr and "SNAPPY" in out.stderr
            continue
        assert_cat_matches(path)


def test_delta_rs_files(tmp_path):
    from deltalake import write_deltalake
    table = rows_table(2000, seed=9).drop_columns(["fixed"])
    write_deltalake(str(tmp_path / "delta"), table)
    write_deltalake(str(tmp_path / "delta"), rows_table(500, seed=10).drop_columns(["fixed"]), mode="append")
    files = glob.glob(str(tmp_path / "delta" / "*.parquet"))
    assert len(files) == 2
    for path in files:
        assert_cat_matches(path)


# ---- Kiln writes, everyone reads ----------------------------------------------------------------------------

def read_everywhere(path):
    """The file as pyarrow, DuckDB and Polars see it."""
    return pq.read_table(path), duckdb.sql(f"SELECT * FROM '{path}'").fetchall(), pl.read_parquet(path)


@pytest.mark.parametrize("codec", ["snappy", "zstd", "gzip", "none"])
def test_convert_parquet_round_trip_is_read_equal_by_pyarrow_duckdb_polars(tmp_path, codec):
    for name, table in {"flat": FLAT.drop_columns(["t_ms", "t_us"]), "nested": NESTED, "rows": rows_table(5000)}.items():
        source = str(tmp_path / f"{name}-src.parquet")
        pq.write_table(table, source, row_group_size=2000)
        out = str(tmp_path / f"{name}-{codec}.parquet")
        result = json.loads(run("convert", source, out, "--codec", codec, "--json").stdout)
        assert result["rows"] == table.num_rows
        ours = pq.read_table(out)
        assert tables_equal(ours, pq.read_table(source)), name
        expected = {"none": "UNCOMPRESSED"}.get(codec, codec.upper())
        assert pq.ParquetFile(out).metadata.row_group(0).column(0).compression == expected
        assert floats_equal(duckdb.sql(f"SELECT * FROM '{out}'").fetchall(), duckdb.sql(f"SELECT * FROM '{source}'").fetchall()), name
        assert pl.read_parquet(out).equals(pl.read_parquet(source)), name
        assert_cat_matches(out)


def test_convert_writes_statistics_and_dictionary_pages_readers_use(tmp_path):
    source = str(tmp_path / "src.parquet")
    n = 60000
    pq.write_table(pa.table({"k": pa.array(range(n), pa.int64()), "cat": pa.array([f"c{i % 10}" for i in range(n)]),
                             "uniq": pa.array([f"unique-value-{i:08d}-" + "p" * 50 for i in range(n)])}), source)
    out = str(tmp_path / "out.parquet")
    run("convert", source, out, "--row-group-rows", "20000")
    meta = pq.ParquetFile(out).metadata
    assert meta.num_row_groups == 3
    for g in range(3):
        k = meta.row_group(g).column(0).statistics
        assert k.has_min_max and (k.min, k.max) == (g * 20000, g * 20000 + 19999) and k.null_count == 0
        assert meta.row_group(g).column(1).statistics.min == "c0"
        assert "RLE_DICTIONARY" in meta.row_group(g).column(1).encodings
        # 20,000 unique ~70-byte strings pass the 1 MiB dictionary limit: the chunk falls back to PLAIN.
        assert "RLE_DICTIONARY" not in meta.row_group(g).column(2).encodings
    skipped = kiln_json("scan", out, "--where", "k >= 45000")
    assert (skipped["row_groups_read"], skipped["row_groups_skipped"]) == (1, 2)
    assert duckdb.sql(f"SELECT count(*) FROM '{out}' WHERE k >= 45000").fetchall() == [(15000,)]
    rows = cat(out, "--where", "k >= 59998", "--columns", "k,cat")
    assert rows == [{"k": 59998, "cat": "c8"}, {"k": 59999, "cat": "c9"}]


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_convert_csv_infers_types(tmp_path):
    source = str(tmp_path / "in.csv")
    write_csv(source, [
        ["id", "score", "ok", "day", "at", "name"],
        ["1", "1.5", "true", "2024-01-02", "2024-01-02T03:04:05.123456Z", 'plain'],
        ["2", "", "false", "", "2024-01-02 03:04:05", 'has "quotes", commas\nand a newline'],
        ["-3", "1e3", "", "1969-12-31", "", ""],
    ])
    out = str(tmp_path / "out.parquet")
    result = json.loads(run("convert", source, out, "--json").stdout)
    assert result["schema"] == "id BIGINT, score DOUBLE, ok BOOLEAN, day DATE, at TIMESTAMP, name STRING"
    utc = datetime.timezone.utc
    expected = pa.table({
        "id": pa.array([1, 2, -3], pa.int64()),
        "score": pa.array([1.5, None, 1000.0]),
        "ok": pa.array([True, False, None]),
        "day": pa.array([datetime.date(2024, 1, 2), None, datetime.date(1969, 12, 31)]),
        "at": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=utc), datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=utc), None],
                       pa.timestamp("us", tz="UTC")),
        "name": pa.array(["plain", 'has "quotes", commas\nand a newline', None]),
    })
    reference = str(tmp_path / "reference.parquet")
    pq.write_table(expected, reference)
    assert pq.read_table(out).equals(expected)
    assert duckdb.sql(f"SELECT * FROM '{out}'").fetchall() == duckdb.sql(f"SELECT * FROM '{reference}'").fetchall()
    assert pl.read_parquet(out).equals(pl.read_parquet(reference))


def test_convert_csv_with_schema(tmp_path):
    source = str(tmp_path / "in.csv")
    with open(source, "w") as f:  # a quoted empty field is an empty string; an unquoted one is null
        f.write('price,qty,big,label,when,day\r\n12.50,3,-12345678901234567890.1234,x,2024-03-04 05:06:07+02:00,2020-02-29\r\n'
                '-0.01,,0,"",,\r\n')
    out = str(tmp_path / "out.parquet")
    run("convert", source, out, "--codec", "zstd", "--schema",
        "price DECIMAL(10,2), qty SMALLINT, big DECIMAL(30,4), label STRING NOT NULL, when TIMESTAMP, day DATE")
    table = pq.read_table(out)
    assert table.schema.field("price").type == pa.decimal128(10, 2)
    assert table.schema.field("qty").type == pa.int16()
    assert table.schema.field("label").nullable is False
    assert table.to_pylist() == [
        {"price": decimal.Decimal("12.50"), "qty": 3, "big": decimal.Decimal("-12345678901234567890.1234"), "label": "x",
         "when": datetime.datetime(2024, 3, 4, 3, 6, 7, tzinfo=datetime.timezone.utc), "day": datetime.date(2020, 2, 29)},
        {"price": decimal.Decimal("-0.01"), "qty": None, "big": decimal.Decimal("0.0000"), "label": "", "when": None, "day": None},
    ]
    assert duckdb.sql(f"SELECT price, big FROM '{out}'").fetchall() == [(decimal.Decimal("12.50"), decimal.Decimal("-12345678901234567890.1234")),
                                                                       (decimal.Decimal("-0.01"), decimal.Decimal("0.0000"))]
    assert pl.read_parquet(out)["qty"].to_list() == [3, None]


def test_convert_jsonl_nested(tmp_path):
    source = str(tmp_path / "in.jsonl")
    records = [
        {"id": 1, "user": {"name": "ann", "langs": ["en", "fr"]}, "scores": [1.5, 2], "attrs": {"a": 1}},
        {"id": 2, "user": None, "scores": [], "attrs": {}},
        {"id": 3, "user": {"name": None, "langs": None}, "attrs": None},
    ]
    with open(source, "w") as f:
        f.write("\n".join(json.dumps(r) for r in records) + "\n\n")
    out = str(tmp_path / "out.parquet")
    run("convert", source, out, "--schema", "id BIGINT NOT NULL, user STRUCT<name: STRING, langs: ARRAY<STRING>>, "
                                            "scores ARRAY<DOUBLE>, attrs MAP<STRING, INT>")
    table = pq.read_table(out)
    assert table.to_pylist() == [
        {"id": 1, "user": {"name": "ann", "langs": ["en", "fr"]}, "scores": [1.5, 2.0], "attrs": [("a", 1)]},
        {"id": 2, "user": None, "scores": [], "attrs": []},
        {"id": 3, "user": {"name": None, "langs": None}, "scores": None, "attrs": None},
    ]
    reference = str(tmp_path / "reference.parquet")
    pq.write_table(table, reference)
    assert duckdb.sql(f"SELECT * FROM '{out}'").fetchall() == duckdb.sql(f"SELECT * FROM '{reference}'").fetchall()
    assert pl.read_parquet(out).equals(pl.read_parquet(reference))
    # Without a schema, fields are inferred and sorted by name, as Spark does.
    inferred = str(tmp_path / "inferred.parquet")
    run("convert", source, inferred)
    assert pq.read_table(inferred).column_names == ["attrs", "id", "scores", "user"]
    assert pq.read_table(inferred).column("scores").to_pylist() == [[1.5, 2.0], [], None]
    assert pq.read_table(inferred).column("attrs").to_pylist() == [{"a": 1}, {"a": None}, None]


def test_convert_bad_input_says_where_and_leaves_nothing(tmp_path):
    source = str(tmp_path / "in.csv")
    write_csv(source, [["a", "b"], ["1", "x"], ["oops", "y"]])
    out = str(tmp_path / "out.parquet")
    result = run("convert", source, out, "--schema", "a BIGINT, b STRING", ok=False)
    assert result.returncode != 0 and "Row 3" in result.stderr and "'a'" in result.stderr and "oops" in result.stderr
    assert not os.path.exists(out) and os.listdir(tmp_path) == ["in.csv"]
    for schema, message in [("a BIGINT, c STRING", "'c'"), ("a FOO", "unknown type"), ("a DECIMAL(50,2)", "precision"),
                            ("a ARRAY<INT>, b STRING", "flat")]:
        result = run("convert", source, out, "--schema", schema, ok=False)
        assert result.returncode != 0 and message in result.stderr, (schema, result.stderr)
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    result = run("convert", str(tmp_path / "bad.jsonl"), out, ok=False)
    assert result.returncode != 0 and "Line 2" in result.stderr
    result = run("convert", source, str(tmp_path / "x.parquet"), "--codec", "brotli", ok=False)
    assert "Unknown codec" in result.stderr


def test_hostile_files_fail_cleanly(tmp_path):
    good = tmp_path / "good.parquet"
    pq.write_table(NESTED, str(good))
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
        for command in ["schema", "cat", "scan"]:
            out = subprocess.run([KILN, "parquet", command, str(path)], capture_output=True, text=True, timeout=30)
            assert out.returncode != 0, (name, command)
            assert "Error" in out.stderr and "Fatal" not in out.stderr, (name, out.stderr)


def test_cat_rejects_corrupt_pages(tmp_path):
    path = tmp_path / "flat.parquet"
    pq.write_table(FLAT, str(path), compression="snappy")
    meta = pq.ParquetFile(str(path)).metadata
    start = meta.row_group(0).column(5).data_page_offset
    clean = path.read_bytes()
    for offset in range(start, start + 40):  # scribble over a page header and its body, one byte at a time
        data = bytearray(clean)
        data[offset] ^= 0x5A
        path.write_bytes(bytes(data))
        out = subprocess.run([KILN, "parquet", "cat", str(path)], capture_output=True, text=True, timeout=30)
        assert out.returncode in (0, 64, 1), (offset, out.returncode, out.stderr)
        assert "Fatal" not in out.stderr
