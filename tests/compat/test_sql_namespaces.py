"""Catalogs and schemas in SQL as Databricks SQL has them: CREATE/DROP/USE/SHOW/DESCRIBE, current_catalog() and
current_schema(), and no table in a schema that does not exist."""
import json
import os
import subprocess

import requests
from deltalake import DeltaTable

from conftest import KILN, TOKEN


def session(home, script):
    """Statements on standard input: one `kiln sql` session (USE carries over); each result as JSON lines."""
    out = subprocess.run([KILN, "sql", "--home", str(home), "--format", "json"], input=script, capture_output=True, text=True, timeout=60)
    return out


def sql(home, statement, ok=True):
    out = subprocess.run([KILN, "sql", "--home", str(home), "--format", "json", statement], capture_output=True, text=True, timeout=60)
    assert (out.returncode == 0) == ok, (statement, out.stderr)
    return json.loads(out.stdout) if ok and out.stdout.strip().startswith("[") else out


def test_create_use_show_describe_drop(tmp_path):
    home = tmp_path / "home"
    assert [r["catalog"] for r in sql(home, "SHOW CATALOGS")] == ["main"]
    assert [r["databaseName"] for r in sql(home, "SHOW SCHEMAS")] == ["default"]
    assert sql(home, "SELECT current_catalog() AS c, current_schema() AS s") == [{"c": "main", "s": "default"}]

    # No table in a schema that does not exist; the error names it.
    out = sql(home, "CREATE TABLE main.sales.orders (id BIGINT)", ok=False)
    assert "main.sales" in out.stderr and "CREATE SCHEMA" in out.stderr
    assert not os.path.exists(home / "warehouse" / "main" / "sales")
    out = sql(home, "CREATE TABLE nocat.s.t (id BIGINT)", ok=False)
    assert "nocat" in out.stderr

    sql(home, "CREATE SCHEMA main.sales COMMENT 'Sales data'")
    out = sql(home, "CREATE SCHEMA main.sales", ok=False)
    assert "already exists" in out.stderr
    sql(home, "CREATE SCHEMA IF NOT EXISTS main.sales")
    sql(home, "CREATE DATABASE IF NOT EXISTS staging")
    sql(home, "CREATE CATALOG IF NOT EXISTS lab COMMENT 'Experiments'")
    sql(home, "CREATE SCHEMA lab.features")
    out = sql(home, "CREATE SCHEMA nocat.x", ok=False)
    assert "nocat" in out.stderr and "CREATE CATALOG" in out.stderr
    assert [r["catalog"] for r in sql(home, "SHOW CATALOGS")] == ["lab", "main"]
    assert [r["catalog"] for r in sql(home, "SHOW CATALOGS LIKE 'l*'")] == ["lab"]
    assert [r["databaseName"] for r in sql(home, "SHOW SCHEMAS")] == ["default", "sales", "staging"]
    assert [r["databaseName"] for r in sql(home, "SHOW SCHEMAS IN lab")] == ["features"]
    assert [r["databaseName"] for r in sql(home, "SHOW DATABASES LIKE 'sa*|st*'")] == ["sales", "staging"]

    described = {r["database_description_item"]: r["database_description_value"] for r in sql(home, "DESCRIBE SCHEMA main.sales")}
    assert described["Catalog Name"] == "main" and described["Namespace Name"] == "sales" and described["Comment"] == "Sales data"
    assert described["Location"].endswith("warehouse/main/sales") and described["Created Time"]
    described = {r["info_name"]: r["info_value"] for r in sql(home, "DESCRIBE CATALOG EXTENDED lab")}
    assert described["Catalog Name"] == "lab" and described["Comment"] == "Experiments"

    # USE carries over within a session; unqualified names resolve there.
    out = session(home, "USE CATALOG lab;\nUSE features;\nCREATE TABLE f (k BIGINT, v DOUBLE);\nINSERT INTO f VALUES (1, 0.5);\n"
                        "SELECT current_catalog() AS c, current_schema() AS s, count(*) AS n FROM f;\nSHOW TABLES;\nUSE SCHEMA main.sales;\n"
                        "SELECT current_catalog() AS c, current_schema() AS s;\nUSE nothere;\n")
    assert out.returncode != 0 and "nothere" in out.stderr
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("[")]
    assert [{"c": "lab", "s": "features", "n": 1}] in results and [{"c": "main", "s": "sales"}] in results
    assert [{"database": "features", "tableName": "f", "isTemporary": False}] in results
    assert DeltaTable(str(home / "warehouse" / "lab" / "features" / "f")).to_pyarrow_table().num_rows == 1

    # A schema with a LOCATION keeps its tables there.
    location = tmp_path / "elsewhere"
    sql(home, f"CREATE SCHEMA main.ext LOCATION '{location}'")
    sql(home, "CREATE TABLE main.ext.t AS SELECT 1 AS x")
    assert DeltaTable(str(location / "t")).to_pyarrow_table().num_rows == 1
    assert sql(home, "SELECT x FROM main.ext.t") == [{"x": 1}]
    assert [r["tableName"] for r in sql(home, "SHOW TABLES IN main.ext")] == ["t"]

    # DROP: RESTRICT (the default) refuses a schema with tables; CASCADE drops them.
    sql(home, "CREATE TABLE main.sales.orders (id BIGINT)")
    out = sql(home, "DROP SCHEMA main.sales", ok=False)
    assert "CASCADE" in out.stderr and os.path.exists(home / "warehouse" / "main" / "sales" / "orders")
    sql(home, "DROP SCHEMA main.sales CASCADE")
    assert not os.path.exists(home / "warehouse" / "main" / "sales")
    sql(home, "DROP SCHEMA main.ext CASCADE")
    assert not os.path.exists(location / "t")
    sql(home, "DROP SCHEMA IF EXISTS main.sales")
    out = sql(home, "DROP SCHEMA main.sales", ok=False)
    assert "main.sales" in out.stderr
    out = sql(home, "DROP CATALOG lab", ok=False)
    assert "CASCADE" in out.stderr
    sql(home, "DROP CATALOG lab CASCADE")
    assert [r["catalog"] for r in sql(home, "SHOW CATALOGS")] == ["main"]


def test_namespaces_through_the_statements_api(kiln):
    def run(statement, **extra):
        r = requests.post(f"{kiln.url}/api/2.0/sql/statements", headers={"Authorization": f"Bearer {TOKEN}"},
                          json={"statement": statement, "warehouse_id": "kiln", "wait_timeout": "30s", **extra}).json()
        return r
    assert run("CREATE SCHEMA IF NOT EXISTS main.api_ns")["status"]["state"] == "SUCCEEDED"
    failed = run("CREATE TABLE main.api_missing.t (x INT)")
    assert failed["status"]["state"] == "FAILED" and failed["status"]["error"]["error_code"] == "NOT_FOUND"
    assert run("CREATE TABLE t (x INT)", schema="api_ns")["status"]["state"] == "SUCCEEDED"
    r = run("SELECT current_catalog(), current_schema()", schema="api_ns")
    assert r["result"]["data_array"] == [["main", "api_ns"]]
    names = [row[0] for row in run("SHOW SCHEMAS")["result"]["data_array"]]
    assert "api_ns" in names and "default" in names
