"""Unity Catalog's catalogs, schemas and tables through the stock clients — databricks-sdk (`w.catalogs`,
`w.schemas`, `w.tables`, `w.metastores`) and unitycatalog-client 0.7 (in its own virtual environment: it pins
versions mlflow cannot live with) — over the same objects SQL sees, with ownership deciding who may change what."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, InvalidParameterValue, NotFound, PermissionDenied, ResourceAlreadyExists
from databricks.sdk.service import catalog as uc

from conftest import KILN, TOKEN, KilnServer

HERE = os.path.dirname(os.path.abspath(__file__))
UC_VENV = os.path.join(HERE, ".venv-uc")


@pytest.fixture(scope="module")
def server():
    home = tempfile.mkdtemp(prefix="kiln-catalog-")
    s = KilnServer(home).start()
    yield s
    s.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def uc_python():
    """The OSS client's own interpreter (made once: `python -m venv` + `pip install unitycatalog-client==0.7.0`)."""
    python = os.path.join(UC_VENV, "bin", "python")
    if not os.path.exists(python) or subprocess.run([python, "-c", "import unitycatalog.client"], capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", UC_VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "unitycatalog-client==0.7.0"], check=True)
    return python


def admin(server):
    return WorkspaceClient(host=server.url, token=TOKEN, auth_type="pat")


def user(server, name):
    """A new user and a client signed in as them."""
    admin(server).users.create(user_name=name)
    token = requests.post(server.url + "/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": name},
                          headers={"Authorization": f"Bearer {TOKEN}"}).json()["token_value"]
    return WorkspaceClient(host=server.url, token=token, auth_type="pat")


def statement(server, sql):
    r = requests.post(server.url + "/api/2.0/sql/statements", headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"statement": sql, "warehouse_id": "kiln", "wait_timeout": "30s"}).json()
    assert r["status"]["state"] == "SUCCEEDED", r
    return r.get("result", {}).get("data_array", [])


def test_unitycatalog_client_round_trip(server, uc_python):
    prefix = "oss_" + uuid.uuid4().hex[:6]
    out = subprocess.run([uc_python, os.path.join(HERE, "clients", "uc_client_catalog.py"), server.url, TOKEN, prefix],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["metastore"]
    assert seen["catalog"]["name"] == f"{prefix}_cat" and seen["catalog"]["properties"] == {"k": "v"}
    assert seen["catalog"]["owner"] == "admin" and seen["catalog"]["id"]
    # Paging one at a time reaches every catalog, main included.
    assert len(seen["first_page"]) == 1 and seen["first_token"]
    assert set(seen["all_catalogs"]) == {"main", f"{prefix}_cat"}
    assert seen["renamed"]["name"] == f"{prefix}_cat2" and seen["renamed"]["comment"] == "changed"
    assert seen["renamed"]["id"] == seen["catalog"]["id"]
    assert seen["schema"]["full_name"] == f"{prefix}_cat2.raw" and seen["schema_updated"]["properties"] == {"a": "b"}
    assert seen["schemas"] == [f"{prefix}_cat2.raw"]
    table = seen["got_table"]
    assert table["table_type"] == "MANAGED" and table["data_source_format"] == "DELTA" and table["table_id"]
    assert [(c["name"], c["type_name"], c["type_text"], c["nullable"]) for c in table["columns"]] == [
        ("id", "LONG", "bigint", False), ("day", "DATE", "date", True), ("tags", "ARRAY", "array<string>", True)]
    assert table["columns"][1]["partition_index"] == 0 and table["comment"] == "t"
    assert seen["tables"] == ["events"]
    assert seen["missing_status"] == 404 and seen["delete_nonempty_status"] == 400
    assert seen["after_delete"] == ["main"]


def test_databricks_sdk_round_trip(server):
    w = admin(server)
    assert w.metastores.summary().metastore_id
    name = "sdk_" + uuid.uuid4().hex[:6]
    created = w.catalogs.create(name=name, comment="first", properties={"team": "ml"})
    assert created.owner == "admin" and created.created_by == "admin" and created.properties == {"team": "ml"}
    assert w.catalogs.get(name).comment == "first"
    with pytest.raises(ResourceAlreadyExists):
        w.catalogs.create(name=name)
    w.schemas.create(name="gold", catalog_name=name, comment="curated")
    assert [s.name for s in w.schemas.list(catalog_name=name)] == ["gold"]
    table = w.tables.create(name="scores", catalog_name=name, schema_name="gold", table_type=uc.TableType.MANAGED,
                            data_source_format=uc.DataSourceFormat.DELTA, storage_location="",
                            columns=[uc.ColumnInfo(name="id", type_name=uc.ColumnTypeName.LONG, type_text="bigint", position=0, nullable=False),
                                     uc.ColumnInfo(name="score", type_name=uc.ColumnTypeName.DECIMAL, type_precision=9, type_scale=3,
                                                   type_text="decimal(9,3)", position=1)])
    assert table.columns[1].type_precision == 9 and table.columns[1].type_scale == 3
    assert w.tables.exists(f"{name}.gold.scores").table_exists
    assert not w.tables.exists(f"{name}.gold.nothing").table_exists
    summaries = list(w.tables.list_summaries(catalog_name=name, table_name_pattern="sc%"))
    assert [s.full_name for s in summaries] == [f"{name}.gold.scores"]
    # Every table of a schema, one page at a time.
    for i in range(3):
        w.tables.create(name=f"t{i}", catalog_name=name, schema_name="gold", table_type=uc.TableType.MANAGED,
                        data_source_format=uc.DataSourceFormat.DELTA, storage_location="",
                        columns=[uc.ColumnInfo(name="a", type_name=uc.ColumnTypeName.INT, type_text="int", position=0)])
    assert [t.name for t in w.tables.list(catalog_name=name, schema_name="gold", max_results=2)] == ["scores", "t0", "t1", "t2"]
    with pytest.raises(NotFound):
        w.tables.get(f"{name}.gold.nothing")
    with pytest.raises((BadRequest, InvalidParameterValue)):
        w.tables.create(name="bad", catalog_name=name, schema_name="gold", table_type=uc.TableType.MANAGED,
                        data_source_format=uc.DataSourceFormat.DELTA, storage_location="",
                        columns=[uc.ColumnInfo(name="a", type_name=uc.ColumnTypeName.INTERVAL, type_text="interval", position=0)])
    assert not w.tables.exists(f"{name}.gold.bad").table_exists
    updated = w.schemas.update(f"{name}.gold", comment="changed", new_name="platinum")
    assert updated.full_name == f"{name}.platinum" and updated.comment == "changed"
    assert [t.name for t in w.tables.list(catalog_name=name, schema_name="platinum")] == ["scores", "t0", "t1", "t2"]
    w.catalogs.delete(name, force=True)
    with pytest.raises(NotFound):
        w.catalogs.get(name)


def test_sql_and_the_api_see_the_same_objects(server):
    w = admin(server)
    schema = "shared_" + uuid.uuid4().hex[:6]
    statement(server, f"CREATE SCHEMA main.{schema} COMMENT 'from sql'")
    statement(server, f"CREATE TABLE main.{schema}.made_by_sql (a BIGINT, b STRING) COMMENT 'sql table'")
    got = w.tables.get(f"main.{schema}.made_by_sql")
    assert [c.name for c in got.columns] == ["a", "b"] and got.comment == "sql table" and got.owner == "admin"
    assert w.schemas.get(f"main.{schema}").comment == "from sql"
    w.tables.create(name="made_by_api", catalog_name="main", schema_name=schema, table_type=uc.TableType.MANAGED,
                    data_source_format=uc.DataSourceFormat.DELTA, storage_location="",
                    columns=[uc.ColumnInfo(name="x", type_name=uc.ColumnTypeName.DOUBLE, type_text="double", position=0)])
    statement(server, f"INSERT INTO main.{schema}.made_by_api VALUES (1.5), (2.5)")
    assert statement(server, f"SELECT SUM(x) FROM main.{schema}.made_by_api") == [["4.0"]]
    assert sorted(r[1] for r in statement(server, f"SHOW TABLES IN main.{schema}")) == ["made_by_api", "made_by_sql"]
    # Drop and recreate: a new table id, so nothing granted to the old table carries over.
    first = w.tables.get(f"main.{schema}.made_by_sql").table_id
    statement(server, f"DROP TABLE main.{schema}.made_by_sql")
    with pytest.raises(NotFound):
        w.tables.get(f"main.{schema}.made_by_sql")
    statement(server, f"CREATE TABLE main.{schema}.made_by_sql (a BIGINT)")
    assert w.tables.get(f"main.{schema}.made_by_sql").table_id != first
    # Tables written by the local CLI are there too.
    local = subprocess.run([KILN, "sql", "--home", server.home, f"CREATE TABLE main.{schema}.made_locally AS SELECT 1 AS one"],
                           capture_output=True, text=True, timeout=60)
    assert local.returncode == 0, local.stderr
    assert w.tables.get(f"main.{schema}.made_locally").columns[0].name == "one"


def test_owners_decide_who_changes_what(server):
    w = admin(server)
    ada = user(server, f"ada-{uuid.uuid4().hex[:6]}@example.com")
    bob = user(server, f"bob-{uuid.uuid4().hex[:6]}@example.com")
    ada_name = ada.current_user.me().user_name
    name = "owned_" + uuid.uuid4().hex[:6]
    with pytest.raises(PermissionDenied):
        ada.catalogs.create(name=name)
    w.catalogs.create(name=name)
    with pytest.raises(PermissionDenied):
        ada.schemas.create(name="s", catalog_name=name)
    with pytest.raises((BadRequest, InvalidParameterValue)):
        w.catalogs.update(name, owner="nobody@example.com")
    assert w.catalogs.update(name, owner=ada_name).owner == ada_name
    # Ada owns the catalog now: she makes and changes what is in it; Bob may look but not touch.
    ada.schemas.create(name="s", catalog_name=name)
    ada.tables.create(name="t", catalog_name=name, schema_name="s", table_type=uc.TableType.MANAGED,
                      data_source_format=uc.DataSourceFormat.DELTA, storage_location="",
                      columns=[uc.ColumnInfo(name="a", type_name=uc.ColumnTypeName.INT, type_text="int", position=0)])
    assert bob.tables.get(f"{name}.s.t").owner == ada_name
    with pytest.raises(PermissionDenied):
        bob.tables.delete(f"{name}.s.t")
    with pytest.raises(PermissionDenied):
        bob.catalogs.update(name, comment="mine now")
    with pytest.raises(PermissionDenied):
        bob.catalogs.delete(name, force=True)
    ada.tables.update(f"{name}.s.t", owner=bob.current_user.me().user_name)
    bob.tables.delete(f"{name}.s.t")
    ada.catalogs.delete(name, force=True)
