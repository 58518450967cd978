"""Unity Catalog's catalogs, schemas and tables through the stock clients — databricks-sdk (`w.catalogs`,
`w.schemas`, `w.tables`, `w.metastores`) and unitycatalog-client 0.7 (in its own virtual environment: it pins
versions mlflow cannot live with) — over the same objects SQL sees, with ownership deciding who may change what."""
import datetime
import io
import json
import os
import subprocess
import sys
import uuid

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import BadRequest, InvalidParameterValue, NotFound, PermissionDenied, ResourceAlreadyExists
from databricks.sdk.service import catalog as uc
from databricks.sdk.service import iam

from conftest import KILN, TOKEN

HERE = os.path.dirname(os.path.abspath(__file__))
UC_VENV = os.path.join(HERE, ".venv-uc")


@pytest.fixture(scope="module")
def server(own_kiln):
    return own_kiln


def uc_venv_python():
    """The OSS client's own interpreter (made once: `python -m venv` + `pip install unitycatalog-client==0.7.0`)."""
    python = os.path.join(UC_VENV, "bin", "python")
    if not os.path.exists(python) or subprocess.run([python, "-c", "import unitycatalog.client"], capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", UC_VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "unitycatalog-client==0.7.0"], check=True)
    return python


@pytest.fixture(scope="module")
def uc_python():
    return uc_venv_python()


def admin(server):
    return WorkspaceClient(host=server.url, token=TOKEN, auth_type="pat")


def user(server, name):
    """A new user and a client signed in as them."""
    admin(server).users.create(user_name=name)
    token = requests.post(server.url + "/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": name},
                          headers={"Authorization": f"Bearer {TOKEN}"}).json()["token_value"]
    return WorkspaceClient(host=server.url, token=token, auth_type="pat")


def sql_as(server, token, sql):
    """The statements API's raw answer to `sql` run with `token`."""
    return requests.post(server.url + "/api/2.0/sql/statements", headers={"Authorization": f"Bearer {token}"},
                         json={"statement": sql, "warehouse_id": "kiln", "wait_timeout": "30s"})


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


def test_feature_table_primary_keys_reach_the_catalog_api(server):
    """A feature table's PRIMARY KEY ... TIMESERIES, declared in SQL, is what databricks-sdk reads as
    `table_constraints` (issue P14); dropping it removes it."""
    w = admin(server)
    schema = "feat_" + uuid.uuid4().hex[:6]
    statement(server, f"CREATE SCHEMA main.{schema}")
    statement(server, f"CREATE TABLE main.{schema}.user_features (user_id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, clicks DOUBLE, "
                      "CONSTRAINT user_features_pk PRIMARY KEY (user_id, ts TIMESERIES))")
    got = w.tables.get(f"main.{schema}.user_features")
    assert len(got.table_constraints) == 1, got.table_constraints
    pk = got.table_constraints[0].primary_key_constraint
    assert pk.name == "user_features_pk" and pk.child_columns == ["user_id", "ts"] and pk.timeseries_columns == ["ts"], pk
    r = sql_as(server, TOKEN, f"CREATE TABLE main.{schema}.bad (user_id BIGINT, PRIMARY KEY (user_id))").json()
    assert r["status"]["state"] == "FAILED" and "nullable" in r["status"]["error"]["message"], r
    statement(server, f"ALTER TABLE main.{schema}.user_features DROP PRIMARY KEY")
    assert not w.tables.get(f"main.{schema}.user_features").table_constraints


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
    # Ada owns the catalog now: she makes and changes what is in it; Bob, granted nothing, may neither see nor touch it.
    ada.schemas.create(name="s", catalog_name=name)
    ada.tables.create(name="t", catalog_name=name, schema_name="s", table_type=uc.TableType.MANAGED,
                      data_source_format=uc.DataSourceFormat.DELTA, storage_location="",
                      columns=[uc.ColumnInfo(name="a", type_name=uc.ColumnTypeName.INT, type_text="int", position=0)])
    assert w.tables.get(f"{name}.s.t").owner == ada_name
    with pytest.raises(PermissionDenied):
        bob.tables.get(f"{name}.s.t")
    with pytest.raises(PermissionDenied):
        bob.tables.delete(f"{name}.s.t")
    with pytest.raises(PermissionDenied):
        bob.catalogs.update(name, comment="mine now")
    with pytest.raises(PermissionDenied):
        bob.catalogs.delete(name, force=True)
    ada.tables.update(f"{name}.s.t", owner=bob.current_user.me().user_name)
    bob.tables.delete(f"{name}.s.t")
    ada.catalogs.delete(name, force=True)


def test_grants_round_trip_in_each_clients_spelling(server, uc_python):
    w = admin(server)
    name = "granted_" + uuid.uuid4().hex[:6]
    w.catalogs.create(name=name)
    ada = user(server, f"ada-{uuid.uuid4().hex[:6]}@example.com").current_user.me().user_name
    # The OSS client: spaces in and out, both lists always sent.
    out = subprocess.run([uc_python, os.path.join(HERE, "clients", "uc_client_grants.py"), server.url, TOKEN, name, ada],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["after_add"] == [{"principal": ada, "privileges": ["CREATE SCHEMA", "USE CATALOG"]}]
    assert seen["get"] == seen["after_add"]
    assert seen["after_remove"] == [{"principal": ada, "privileges": ["USE CATALOG"]}]
    assert seen["unknown_principal_status"] == 400
    # databricks-sdk: underscores in and out; a missing remove list is empty.
    w.grants.update(securable_type="catalog", full_name=name,
                    changes=[uc.PermissionsChange(principal=ada, add=[uc.Privilege.SELECT, uc.Privilege.ALL_PRIVILEGES])])
    got = w.grants.get(securable_type="CATALOG", full_name=name)
    assert [(a.principal, sorted(p.value for p in a.privileges)) for a in got.privilege_assignments] == [
        (ada, ["ALL_PRIVILEGES", "SELECT", "USE_CATALOG"])]
    # A privilege that does not apply to the securable is refused and nothing changes.
    with pytest.raises((BadRequest, InvalidParameterValue)):
        w.grants.update(securable_type="catalog", full_name=name,
                        changes=[uc.PermissionsChange(principal=ada, add=[uc.Privilege.CREATE_CATALOG])])
    # Raw requests in the other spellings are read the same.
    r = requests.patch(server.url + f"/api/2.1/unity-catalog/permissions/Catalog/{name}", headers={"Authorization": f"Bearer {TOKEN}"},
                       json={"changes": [{"principal": ada, "remove": ["all privileges", "select"]}]})
    assert r.status_code == 200 and r.json() == {"privilege_assignments": [{"principal": ada, "privileges": ["USE_CATALOG"]}]}
    w.catalogs.delete(name, force=True)


def test_privileges_inherit_and_decide_what_a_user_sees_and_does(server):
    w = admin(server)
    name = "shop_" + uuid.uuid4().hex[:6]
    w.catalogs.create(name=name)
    w.schemas.create(name="sales", catalog_name=name)
    statement(server, f"CREATE TABLE {name}.sales.orders (id BIGINT, amount DOUBLE)")
    statement(server, f"INSERT INTO {name}.sales.orders VALUES (1, 9.5), (2, 20.0)")
    ada_name = f"ada-{uuid.uuid4().hex[:6]}@example.com"
    ada = user(server, ada_name)
    ada_token = ada.config.token
    group = w.groups.create(display_name=f"analysts-{uuid.uuid4().hex[:6]}")

    def ada_sql(sql):
        return sql_as(server, ada_token, sql)

    # Nothing granted: the catalog is not in her list, and reading or getting it is refused.
    assert name not in [c.name for c in ada.catalogs.list()]
    with pytest.raises(PermissionDenied):
        ada.tables.get(f"{name}.sales.orders")
    assert ada_sql(f"SELECT * FROM {name}.sales.orders").status_code == 403
    # SELECT granted on the catalog (to a group she is in) reaches the table, but USE CATALOG and USE SCHEMA are needed too.
    w.grants.update(securable_type="catalog", full_name=name, changes=[uc.PermissionsChange(principal=group.display_name, add=[uc.Privilege.SELECT])])
    me = next(iter(w.users.list(filter=f'userName eq "{ada_name}"')))
    w.groups.patch(group.id, schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
                   operations=[iam.Patch(op=iam.PatchOp.ADD, path="members", value=[{"value": me.id}])])
    r = ada_sql(f"SELECT * FROM {name}.sales.orders")
    assert r.status_code == 403 and "USE_CATALOG" in r.json()["message"]
    w.grants.update(securable_type="catalog", full_name=name, changes=[uc.PermissionsChange(principal=ada_name, add=[uc.Privilege.USE_CATALOG])])
    assert ada_sql(f"SELECT * FROM {name}.sales.orders").status_code == 403
    w.grants.update(securable_type="schema", full_name=f"{name}.sales", changes=[uc.PermissionsChange(principal=ada_name, add=[uc.Privilege.USE_SCHEMA])])
    r = ada_sql(f"SELECT SUM(amount) FROM {name}.sales.orders")
    assert r.status_code == 200 and r.json()["result"]["data_array"] == [["29.5"]]
    assert [t.name for t in ada.tables.list(catalog_name=name, schema_name="sales")] == ["orders"]
    assert name in [c.name for c in ada.catalogs.list()]
    # Effective permissions say where each privilege comes from.
    effective = w.grants.get_effective(securable_type="table", full_name=f"{name}.sales.orders")
    found = {(a.principal, p.privilege.value, p.inherited_from_type.value if p.inherited_from_type else None, p.inherited_from_name)
             for a in effective.privilege_assignments for p in a.privileges}
    assert (group.display_name, "SELECT", "CATALOG", name) in found
    assert (ada_name, "USE_SCHEMA", "SCHEMA", f"{name}.sales") in found
    # Reading is not writing; MODIFY on the schema allows it; a future table is covered by the same grants.
    assert ada_sql(f"INSERT INTO {name}.sales.orders VALUES (3, 1.0)").status_code == 403
    w.grants.update(securable_type="schema", full_name=f"{name}.sales", changes=[uc.PermissionsChange(principal=ada_name, add=[uc.Privilege.MODIFY])])
    assert ada_sql(f"INSERT INTO {name}.sales.orders VALUES (3, 1.0)").json()["status"]["state"] == "SUCCEEDED"
    statement(server, f"CREATE TABLE {name}.sales.returns AS SELECT 1 AS id")
    assert ada_sql(f"SELECT * FROM {name}.sales.returns").status_code == 200
    # Creating needs CREATE TABLE; she then owns what she made. Dropping others' tables takes ownership.
    assert ada_sql(f"CREATE TABLE {name}.sales.mine (a INT)").status_code == 403
    w.grants.update(securable_type="schema", full_name=f"{name}.sales", changes=[uc.PermissionsChange(principal=ada_name, add=[uc.Privilege.CREATE_TABLE])])
    assert ada_sql(f"CREATE TABLE {name}.sales.mine (a INT)").json()["status"]["state"] == "SUCCEEDED"
    assert w.tables.get(f"{name}.sales.mine").owner == ada_name
    assert ada_sql(f"DROP TABLE {name}.sales.orders").status_code == 403
    assert ada_sql(f"DROP TABLE {name}.sales.mine").json()["status"]["state"] == "SUCCEEDED"
    # Files by path are not a way around grants.
    r = ada_sql(f"SELECT * FROM delta.`{server.home}/warehouse/{name}/sales/orders`")
    assert r.status_code == 403
    # Revocation takes effect on the next call.
    w.grants.update(securable_type="catalog", full_name=name, changes=[uc.PermissionsChange(principal=group.display_name, remove=[uc.Privilege.SELECT])])
    assert ada_sql(f"SELECT * FROM {name}.sales.orders").status_code == 403
    # Dropping and recreating a table does not bring its grants back.
    w.grants.update(securable_type="table", full_name=f"{name}.sales.orders", changes=[uc.PermissionsChange(principal=ada_name, add=[uc.Privilege.SELECT])])
    assert ada_sql(f"SELECT * FROM {name}.sales.orders").status_code == 200
    statement(server, f"DROP TABLE {name}.sales.orders")
    statement(server, f"CREATE TABLE {name}.sales.orders (id BIGINT)")
    assert ada_sql(f"SELECT * FROM {name}.sales.orders").status_code == 403
    assert not w.grants.get(securable_type="table", full_name=f"{name}.sales.orders").privilege_assignments
    # She sees only her own grants; an admin sees all.
    mine = ada.grants.get(securable_type="schema", full_name=f"{name}.sales")
    assert {a.principal for a in mine.privilege_assignments} == {ada_name}
    w.catalogs.delete(name, force=True)


def test_sql_grant_revoke_and_show_grants(server):
    w = admin(server)
    name = "sqlg_" + uuid.uuid4().hex[:6]
    bob = f"bob-{uuid.uuid4().hex[:6]}@example.com"
    user(server, bob)
    statement(server, f"CREATE CATALOG {name}")
    statement(server, f"GRANT USE CATALOG, CREATE SCHEMA ON CATALOG {name} TO `{bob}`")
    rows = statement(server, f"SHOW GRANTS ON CATALOG {name}")
    assert sorted(rows) == [[bob, "CREATE_SCHEMA", "CATALOG", name], [bob, "USE_CATALOG", "CATALOG", name]]
    assert sorted(p.value for p in w.grants.get(securable_type="catalog", full_name=name).privilege_assignments[0].privileges) == [
        "CREATE_SCHEMA", "USE_CATALOG"]
    statement(server, f"REVOKE CREATE SCHEMA ON CATALOG {name} FROM `{bob}`")
    assert statement(server, f"SHOW GRANTS `{bob}` ON CATALOG {name}") == [[bob, "USE_CATALOG", "CATALOG", name]]
    r = requests.post(server.url + "/api/2.0/sql/statements", headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"statement": f"GRANT FLY ON CATALOG {name} TO `{bob}`", "warehouse_id": "kiln", "wait_timeout": "30s"}).json()
    assert r["status"]["state"] == "FAILED" and "Unknown privilege" in r["status"]["error"]["message"]
    statement(server, f"DROP CATALOG {name}")


def test_a_job_task_acts_as_the_jobs_owner(server, tmp_path):
    """The same user, directly and through a job task's run token, is allowed and denied the same things."""
    from databricks.sdk.service.jobs import SparkPythonTask, Task, RunResultState
    w = admin(server)
    name = "jobs_" + uuid.uuid4().hex[:6]
    w.catalogs.create(name=name)
    w.schemas.create(name="s", catalog_name=name)
    statement(server, f"CREATE TABLE {name}.s.open AS SELECT 1 AS x")
    statement(server, f"CREATE TABLE {name}.s.secret AS SELECT 2 AS x")
    ada_name = f"ada-{uuid.uuid4().hex[:6]}@example.com"
    ada = user(server, ada_name)
    statement(server, f"GRANT USE CATALOG ON CATALOG {name} TO `{ada_name}`")
    statement(server, f"GRANT USE SCHEMA ON SCHEMA {name}.s TO `{ada_name}`")
    statement(server, f"GRANT SELECT ON TABLE {name}.s.open TO `{ada_name}`")
    script = tmp_path / "probe.py"
    script.write_text(f"""
import os, requests
for table in ["open", "secret"]:
    r = requests.post(os.environ["DATABRICKS_HOST"] + "/api/2.0/sql/statements",
                      headers={{"Authorization": "Bearer " + os.environ["DATABRICKS_TOKEN"]}},
                      json={{"statement": "SELECT x FROM {name}.s." + table, "warehouse_id": "k", "wait_timeout": "30s"}})
    print(table, r.status_code)
me = requests.get(os.environ["DATABRICKS_HOST"] + "/api/2.0/preview/scim/v2/Me", headers={{"Authorization": "Bearer " + os.environ["DATABRICKS_TOKEN"]}})
print("as", me.json()["userName"])
""")
    directly = [sql_as(server, ada.config.token, f"SELECT x FROM {name}.s.{t}").status_code for t in ["open", "secret"]]
    assert directly == [200, 403]
    job = ada.jobs.create(name="probe", tasks=[Task(task_key="probe", spark_python_task=SparkPythonTask(python_file=str(script)))])
    run = ada.jobs.run_now(job.job_id).result(timeout=datetime.timedelta(minutes=2))
    assert run.state.result_state == RunResultState.SUCCESS, run.state
    logs = ada.jobs.get_run_output(run.tasks[0].run_id).logs
    assert "open 200" in logs and "secret 403" in logs and f"as {ada_name}" in logs, logs
    w.catalogs.delete(name, force=True)


def test_show_lists_only_what_the_caller_may_see(server):
    w = admin(server)
    seen_name, hidden_name = "seen_" + uuid.uuid4().hex[:6], "hidden_" + uuid.uuid4().hex[:6]
    for name in (seen_name, hidden_name):
        statement(server, f"CREATE CATALOG {name}")
        statement(server, f"CREATE SCHEMA {name}.s")
        statement(server, f"CREATE TABLE {name}.s.a (x INT)")
        statement(server, f"CREATE TABLE {name}.s.b (x INT)")
    cy = f"cy-{uuid.uuid4().hex[:6]}@example.com"
    token = user(server, cy).config.token
    statement(server, f"GRANT USE CATALOG ON CATALOG {seen_name} TO `{cy}`")
    statement(server, f"GRANT USE SCHEMA ON SCHEMA {seen_name}.s TO `{cy}`")
    statement(server, f"GRANT SELECT ON TABLE {seen_name}.s.a TO `{cy}`")

    def show(sql):
        r = sql_as(server, token, sql).json()
        assert r["status"]["state"] == "SUCCEEDED", r
        return [row for row in r.get("result", {}).get("data_array", [])]
    catalogs = [r[0] for r in show("SHOW CATALOGS")]
    assert seen_name in catalogs and hidden_name not in catalogs
    assert [r[0] for r in show(f"SHOW SCHEMAS IN {seen_name}")] == ["s"]
    assert show(f"SHOW SCHEMAS IN {hidden_name}") == []
    assert [r[1] for r in show(f"SHOW TABLES IN {seen_name}.s")] == ["a"]
    # The admin sees everything.
    assert sorted(r[1] for r in statement(server, f"SHOW TABLES IN {hidden_name}.s")) == ["a", "b"]
    for name in (seen_name, hidden_name):
        w.catalogs.delete(name, force=True)


def test_volumes_and_files(server, uc_python):
    w = admin(server)
    name = "vol_" + uuid.uuid4().hex[:6]
    w.catalogs.create(name=name)
    w.schemas.create(name="s", catalog_name=name)
    out = subprocess.run([uc_python, os.path.join(HERE, "clients", "uc_client_volumes.py"), server.url, TOKEN, name],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["created"]["volume_type"] == "MANAGED" and seen["created"]["full_name"] == f"{name}.s.raw" and seen["created"]["volume_id"]
    assert seen["listed"] == ["raw"] and seen["renamed"]["name"] == "landing" and seen["got"]["volume_id"] == seen["created"]["volume_id"]
    assert seen["old_name_status"] == 404
    # databricks-sdk: the same volume, and files on it through w.files.
    assert [v.name for v in w.volumes.list(catalog_name=name, schema_name="s")] == ["landing"]
    base = f"/Volumes/{name}/s/landing"
    w.files.upload(f"{base}/in/orders.csv", io.BytesIO(b"id,amount\n1,9.5\n"), overwrite=True)
    w.files.upload(f"{base}/in/more.csv", io.BytesIO(b"id,amount\n2,3.0\n"), overwrite=True)
    assert w.files.download(f"{base}/in/orders.csv").contents.read() == b"id,amount\n1,9.5\n"
    assert w.files.get_metadata(f"{base}/in/orders.csv").content_length == 16
    listed = list(w.files.list_directory_contents(f"{base}/in"))
    assert [(e.name, e.is_directory, e.file_size) for e in listed] == [("more.csv", False, 16), ("orders.csv", False, 16)]
    assert [e.name for e in w.files.list_directory_contents(base)] == ["in"]
    with pytest.raises(Exception):
        w.files.upload(f"{base}/in/orders.csv", io.BytesIO(b"x"), overwrite=False)
    # Readers need READ VOLUME, writers WRITE VOLUME (with the USE chain); paths cannot leave the volume.
    eve_name = f"eve-{uuid.uuid4().hex[:6]}@example.com"
    eve = user(server, eve_name)
    with pytest.raises(PermissionDenied):
        eve.files.download(f"{base}/in/orders.csv").contents.read()
    statement(server, f"GRANT USE CATALOG ON CATALOG {name} TO `{eve_name}`")
    statement(server, f"GRANT USE SCHEMA ON SCHEMA {name}.s TO `{eve_name}`")
    statement(server, f"GRANT READ VOLUME ON VOLUME {name}.s.landing TO `{eve_name}`")
    assert eve.files.download(f"{base}/in/more.csv").contents.read() == b"id,amount\n2,3.0\n"
    with pytest.raises(PermissionDenied):
        eve.files.upload(f"{base}/in/evil.csv", io.BytesIO(b"x"), overwrite=True)
    r = requests.get(server.url + f"/api/2.0/fs/files{base}/../../../../kiln.db", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code in (400, 404)
    # SQL sees the same volume and files, under the same grants.
    assert statement(server, f"SHOW VOLUMES IN {name}.s") == [["s", "landing"]]
    assert [r[1] for r in statement(server, f"LIST '{base}/in'")] == ["more.csv", "orders.csv"]
    assert [r[1] for r in sql_as(server, eve.config.token, f"LIST '{base}/in'").json()["result"]["data_array"]] == ["more.csv", "orders.csv"]
    statement(server, f"REVOKE READ VOLUME ON VOLUME {name}.s.landing FROM `{eve_name}`")
    assert sql_as(server, eve.config.token, f"LIST '{base}/in'").status_code == 403
    assert sql_as(server, eve.config.token, f"SHOW VOLUMES IN {name}.s").json()["result"].get("data_array", []) == []
    w.files.delete(f"{base}/in/more.csv")
    assert [e.name for e in w.files.list_directory_contents(f"{base}/in")] == ["orders.csv"]
    # A schema holding volumes is deleted only with force; the volume's files go with it.
    with pytest.raises((BadRequest, InvalidParameterValue)):
        w.schemas.delete(f"{name}.s")
    w.volumes.delete(f"{name}.s.landing")
    with pytest.raises(NotFound):
        w.files.download(f"{base}/in/orders.csv").contents.read()
    w.catalogs.delete(name, force=True)


def test_paths_are_for_admins(server, tmp_path):
    """COPY INTO from a folder, read_files, delta.`path` and CREATE SCHEMA ... LOCATION name places on disk, which no
    grant covers: only admins may."""
    name = "paths_" + uuid.uuid4().hex[:6]
    statement(server, f"CREATE CATALOG {name}")
    statement(server, f"CREATE SCHEMA {name}.s")
    statement(server, f"CREATE TABLE {name}.s.t (a STRING)")
    dan = f"dan-{uuid.uuid4().hex[:6]}@example.com"
    token = user(server, dan).config.token
    for grant in [f"GRANT USE CATALOG, CREATE SCHEMA ON CATALOG {name} TO `{dan}`", f"GRANT USE SCHEMA, MODIFY, SELECT ON SCHEMA {name}.s TO `{dan}`"]:
        statement(server, grant)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("a\nsecret\n")
    for sql in [f"COPY INTO {name}.s.t FROM '{tmp_path}/in' FILEFORMAT = CSV",
                f"SELECT * FROM read_files('{tmp_path}/in', format => 'csv')",
                f"CREATE SCHEMA {name}.elsewhere LOCATION '{tmp_path}/schema'"]:
        r = sql_as(server, token, sql)
        assert r.status_code == 403, (sql, r.text)
    assert sql_as(server, token, f"CREATE SCHEMA {name}.inside").json()["status"]["state"] == "SUCCEEDED"
    assert statement(server, f"COPY INTO {name}.s.t FROM '{tmp_path}/in' FILEFORMAT = CSV FORMAT_OPTIONS ('header' = 'true')")
    statement(server, f"DROP CATALOG {name} CASCADE")


def test_sql_functions_through_both_clients_and_sql(server, uc_python):
    from databricks.sdk.service import catalog as uc
    w = admin(server)
    name = "fn_" + uuid.uuid4().hex[:6]
    w.catalogs.create(name=name)
    w.schemas.create(name="s", catalog_name=name)
    # unitycatalog-client creates, lists and gets one; a body reading anything but its parameters is a 400.
    out = subprocess.run([uc_python, os.path.join(HERE, "clients", "uc_client_functions.py"), server.url, TOKEN, name],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["created"]["full_name"] == f"{name}.s.twice" and seen["created"]["function_id"] and seen["created"]["routine_definition"] == "x * 2"
    assert seen["listed"] == [f"{name}.s.twice"] and seen["got"]["input_params"]["parameters"][0]["name"] == "x"
    assert seen["bad_status"] == 400
    # databricks-sdk creates another; SQL creates a third; all three are in each list and callable from SQL.
    w.functions.create(function_info=uc.CreateFunction(
        name="with_tax", catalog_name=name, schema_name="s",
        input_params=uc.FunctionParameterInfos(parameters=[
            uc.FunctionParameterInfo(name="amount", type_text="decimal(10,2)", type_name=uc.ColumnTypeName.DECIMAL, position=0),
            uc.FunctionParameterInfo(name="rate", type_text="double", type_name=uc.ColumnTypeName.DOUBLE, position=1)]),
        data_type=uc.ColumnTypeName.DOUBLE, full_data_type="double", routine_body=uc.CreateFunctionRoutineBody.SQL,
        routine_definition="amount * (1 + rate)", parameter_style=uc.CreateFunctionParameterStyle.S, is_deterministic=True,
        sql_data_access=uc.CreateFunctionSqlDataAccess.CONTAINS_SQL, is_null_call=False,
        security_type=uc.CreateFunctionSecurityType.DEFINER, specific_name="with_tax", comment="gross"))
    statement(server, f"CREATE FUNCTION {name}.s.label(x DOUBLE) RETURNS STRING COMMENT 'made in SQL' "
                      f"RETURN CASE WHEN {name}.s.twice(x) > 10 THEN 'big' ELSE 'small' END")
    assert sorted(f.name for f in w.functions.list(catalog_name=name, schema_name="s")) == ["label", "twice", "with_tax"]
    got = w.functions.get(f"{name}.s.with_tax")
    assert [p.type_text for p in got.input_params.parameters] == ["decimal(10,2)", "double"] and got.full_data_type == "double"
    assert got.owner == "admin" and got.routine_body.value == "SQL"
    rows = statement(server, f"SELECT {name}.s.twice(2.5), {name}.s.with_tax(100, 0.2), {name}.s.label(id) FROM range(7) WHERE id IN (1, 6)")
    assert rows == [["5.0", "120.0", "small"], ["5.0", "120.0", "big"]], rows
    # Calling needs EXECUTE (with the USE chain); granting it on the schema reaches every function in it.
    eve_name = f"eve-{uuid.uuid4().hex[:6]}@example.com"
    eve = user(server, eve_name)
    statement(server, f"GRANT USE CATALOG ON CATALOG {name} TO `{eve_name}`")
    statement(server, f"GRANT USE SCHEMA ON SCHEMA {name}.s TO `{eve_name}`")
    with pytest.raises(PermissionDenied):
        eve.statement_execution.execute_statement(statement=f"SELECT {name}.s.twice(1)", warehouse_id="kiln", wait_timeout="30s")
    with pytest.raises(PermissionDenied):  # nor see how it is made
        eve.statement_execution.execute_statement(statement=f"DESCRIBE FUNCTION EXTENDED {name}.s.twice", warehouse_id="kiln", wait_timeout="30s")
    described = [r[0] for r in statement(server, f"DESCRIBE FUNCTION EXTENDED {name}.s.twice")]
    assert described[0] == f"Function:    {name}.s.twice" and any(line.startswith("Body:") for line in described), described
    assert f"{name}.s.twice" not in [f.full_name for f in eve.functions.list(catalog_name=name, schema_name="s")]
    w.grants.update(securable_type="function", full_name=f"{name}.s.twice",
                    changes=[uc.PermissionsChange(principal=eve_name, add=[uc.Privilege.EXECUTE])])
    r = eve.statement_execution.execute_statement(statement=f"SELECT {name}.s.twice(1)", warehouse_id="kiln", wait_timeout="30s")
    assert r.result.data_array == [["2.0"]]
    assert [f.full_name for f in eve.functions.list(catalog_name=name, schema_name="s")] == [f"{name}.s.twice"]
    assert statement(server, f"SHOW USER FUNCTIONS IN {name}.s") == [[f"{name}.s.label"], [f"{name}.s.twice"], [f"{name}.s.with_tax"]]
    shown = eve.statement_execution.execute_statement(statement=f"SHOW FUNCTIONS IN {name}.s LIKE 't*'", warehouse_id="kiln", wait_timeout="30s")
    assert shown.result.data_array == [[f"{name}.s.twice"]]
    with pytest.raises(PermissionDenied):  # label calls twice, but label itself needs EXECUTE
        eve.statement_execution.execute_statement(statement=f"SELECT {name}.s.label(1)", warehouse_id="kiln", wait_timeout="30s")
    effective = w.grants.get_effective(securable_type="function", full_name=f"{name}.s.twice", principal=eve_name)
    assert {(p.privilege.value, p.inherited_from_type.value if p.inherited_from_type else None)
            for p in effective.privilege_assignments[0].privileges} == {("EXECUTE", None), ("USE_SCHEMA", "SCHEMA"), ("USE_CATALOG", "CATALOG")}
    with pytest.raises(PermissionDenied):
        eve.functions.delete(f"{name}.s.twice")
    with pytest.raises(PermissionDenied):  # creating takes CREATE_FUNCTION
        eve.statement_execution.execute_statement(statement=f"CREATE FUNCTION {name}.s.mine(x INT) RETURNS INT RETURN x",
                                                  warehouse_id="kiln", wait_timeout="30s")
    # Owner change, then delete; a function made again with the same name has no grants.
    w.functions.update(f"{name}.s.with_tax", owner=eve_name)
    assert w.functions.get(f"{name}.s.with_tax").owner == eve_name
    eve.functions.delete(f"{name}.s.with_tax")
    w.functions.delete(f"{name}.s.twice")
    with pytest.raises(NotFound):
        w.functions.get(f"{name}.s.twice")
    statement(server, f"CREATE FUNCTION {name}.s.twice(x DOUBLE) RETURNS DOUBLE RETURN x * 3")
    with pytest.raises(PermissionDenied):
        eve.statement_execution.execute_statement(statement=f"SELECT {name}.s.twice(1)", warehouse_id="kiln", wait_timeout="30s")
    assert statement(server, f"SELECT {name}.s.twice(1)") == [["3.0"]]


def test_information_schema_shows_what_each_user_may_see(server):
    w = admin(server)
    name = "is_" + uuid.uuid4().hex[:6]
    w.catalogs.create(name=name, comment="for information_schema")
    for schema in ["open", "closed"]:
        w.schemas.create(name=schema, catalog_name=name)
        statement(server, f"CREATE TABLE {name}.{schema}.t (id BIGINT NOT NULL, amount DECIMAL(10,2))")
    statement(server, f"CREATE FUNCTION {name}.open.twice(x DOUBLE) RETURNS DOUBLE RETURN x * 2")
    rows = statement(server, f"SELECT table_schema, table_name, table_type, table_owner FROM {name}.information_schema.tables ORDER BY 1")
    assert rows == [["closed", "t", "MANAGED", "admin"], ["open", "t", "MANAGED", "admin"]]
    cols = statement(server, f"SELECT column_name, ordinal_position, is_nullable, full_data_type, comment FROM {name}.information_schema.columns "
                             f"WHERE table_schema = 'open' ORDER BY ordinal_position")
    assert cols == [["id", "0", "NO", "bigint", None], ["amount", "1", "YES", "decimal(10,2)", None]]
    assert statement(server, f"SELECT routine_name, routine_definition FROM {name}.information_schema.routines") == [["twice", "x * 2"]]
    assert statement(server, f"SELECT catalog_name, comment FROM {name}.information_schema.catalogs") == [[name, "for information_schema"]]
    # A user with USE on one schema and SELECT on its table sees that much, and their own grants.
    eve_name = f"eve-{uuid.uuid4().hex[:6]}@example.com"
    eve = user(server, eve_name)
    for sql in [f"GRANT USE CATALOG ON CATALOG {name} TO `{eve_name}`", f"GRANT USE SCHEMA ON SCHEMA {name}.open TO `{eve_name}`",
                f"GRANT SELECT ON TABLE {name}.open.t TO `{eve_name}`", f"GRANT SELECT ON TABLE {name}.closed.t TO `admins`"]:
        statement(server, sql)

    def as_eve(sql):
        r = eve.statement_execution.execute_statement(statement=sql, warehouse_id="kiln", wait_timeout="30s")
        assert r.status.state.value == "SUCCEEDED", r.status
        return r.result.data_array or []
    assert as_eve(f"SELECT table_schema, table_name FROM {name}.information_schema.tables") == [["open", "t"]]
    assert as_eve(f"SELECT schema_name FROM {name}.information_schema.schemata") == [["open"]]
    assert as_eve(f"SELECT routine_name FROM {name}.information_schema.routines") == []
    assert as_eve(f"SELECT grantee, table_name, privilege_type FROM {name}.information_schema.table_privileges") == [[eve_name, "t", "SELECT"]]
    assert sorted(statement(server, f"SELECT table_schema, grantee FROM {name}.information_schema.table_privileges")) == \
        [["closed", "admins"], ["open", eve_name]]
    # Joins and filters work over the views like over tables; a view Kiln lacks is a clear 404-style error.
    joined = as_eve(f"SELECT t.table_name, count(*) FROM {name}.information_schema.tables t JOIN {name}.information_schema.columns c "
                    f"ON t.table_schema = c.table_schema AND t.table_name = c.table_name GROUP BY t.table_name")
    assert joined == [["t", "2"]]
    r = requests.post(server.url + "/api/2.0/sql/statements", headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"statement": f"SELECT * FROM {name}.information_schema.nope", "warehouse_id": "kiln", "wait_timeout": "30s"}).json()
    assert r["error_code"] == "RESOURCE_DOES_NOT_EXIST" and "routines" in r["message"], r


def test_alter_owner_and_comment_on_in_sql(server):
    w = admin(server)
    name = "own_" + uuid.uuid4().hex[:6]
    statement(server, f"CREATE CATALOG {name}")
    statement(server, f"CREATE SCHEMA {name}.s")
    statement(server, f"CREATE TABLE {name}.s.t (id BIGINT)")
    statement(server, f"CREATE FUNCTION {name}.s.f(x INT) RETURNS INT RETURN x + 1")
    eve_name = f"eve-{uuid.uuid4().hex[:6]}@example.com"
    eve = user(server, eve_name)

    def as_eve(sql):
        return eve.statement_execution.execute_statement(statement=sql, warehouse_id="kiln", wait_timeout="30s")
    with pytest.raises(PermissionDenied):  # only an owner (or MANAGE, or an admin) hands over
        as_eve(f"ALTER TABLE {name}.s.t OWNER TO `{eve_name}`")
    for sql in [f"ALTER TABLE {name}.s.t OWNER TO `{eve_name}`", f"ALTER SCHEMA {name}.s OWNER TO `{eve_name}`",
                f"ALTER FUNCTION {name}.s.f OWNER TO `{eve_name}`", f"COMMENT ON CATALOG {name} IS 'sales data'",
                f"COMMENT ON SCHEMA {name}.s IS 'raw'"]:
        statement(server, sql)
    assert w.tables.get(f"{name}.s.t").owner == eve_name and w.schemas.get(f"{name}.s").owner == eve_name
    assert w.functions.get(f"{name}.s.f").owner == eve_name
    assert w.catalogs.get(name).comment == "sales data" and w.schemas.get(f"{name}.s").comment == "raw"
    # The schema's new owner may now do what owners do: grant, comment, and drop the table.
    statement(server, f"GRANT USE CATALOG ON CATALOG {name} TO `{eve_name}`")
    assert as_eve(f"COMMENT ON SCHEMA {name}.s IS NULL").status.state.value == "SUCCEEDED"
    assert w.schemas.get(f"{name}.s").comment in (None, "")
    assert as_eve(f"DROP TABLE {name}.s.t").status.state.value == "SUCCEEDED"
    r = requests.post(server.url + "/api/2.0/sql/statements", headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"statement": f"ALTER TABLE {name}.s.nope OWNER TO `{eve_name}`", "warehouse_id": "kiln", "wait_timeout": "30s"}).json()
    assert r.get("error_code") == "RESOURCE_DOES_NOT_EXIST" or r["status"]["state"] == "FAILED", r


def test_manage_lets_a_non_owner_change_and_drop_through_the_api_and_sql(server):
    from databricks.sdk.service import catalog as uc
    w = admin(server)
    name = "mg_" + uuid.uuid4().hex[:6]
    w.catalogs.create(name=name)
    w.schemas.create(name="s", catalog_name=name)
    for t in ["a", "b"]:
        statement(server, f"CREATE TABLE {name}.s.{t} (id BIGINT)")
    eve_name = f"eve-{uuid.uuid4().hex[:6]}@example.com"
    eve = user(server, eve_name)
    with pytest.raises(PermissionDenied):
        eve.tables.delete(f"{name}.s.a")
    for t in ["a", "b"]:
        w.grants.update(securable_type="table", full_name=f"{name}.s.{t}", changes=[uc.PermissionsChange(principal=eve_name, add=[uc.Privilege.MANAGE])])
    eve.tables.update(f"{name}.s.a", owner=eve_name)  # MANAGE hands over, as the owner may
    assert w.tables.get(f"{name}.s.a").owner == eve_name
    eve.tables.delete(f"{name}.s.a")
    r = eve.statement_execution.execute_statement(statement=f"DROP TABLE {name}.s.b", warehouse_id="kiln", wait_timeout="30s")
    assert r.status.state.value == "SUCCEEDED"
    assert [t.name for t in w.tables.list(catalog_name=name, schema_name="s")] == []
    with pytest.raises(PermissionDenied):  # MANAGE on the tables is not MANAGE on the schema
        eve.schemas.delete(f"{name}.s")


def test_temporary_credentials_vend_after_the_same_checks(server, uc_python):
    from databricks.sdk.service import catalog as uc
    from deltalake import DeltaTable
    w = admin(server)
    name = "cred_" + uuid.uuid4().hex[:6]
    w.catalogs.create(name=name)
    w.schemas.create(name="s", catalog_name=name)
    statement(server, f"CREATE TABLE {name}.s.t AS SELECT id FROM range(5)")
    w.volumes.create(catalog_name=name, schema_name="s", name="v", volume_type=uc.VolumeType.MANAGED)
    table_id = w.tables.get(f"{name}.s.t").table_id
    volume_id = w.volumes.read(f"{name}.s.v").volume_id
    eve_name = f"eve-{uuid.uuid4().hex[:6]}@example.com"
    eve = user(server, eve_name)
    with pytest.raises(PermissionDenied):
        eve.temporary_table_credentials.generate_temporary_table_credentials(operation=uc.TableOperation.READ, table_id=table_id)
    for sql in [f"GRANT USE CATALOG ON CATALOG {name} TO `{eve_name}`", f"GRANT USE SCHEMA ON SCHEMA {name}.s TO `{eve_name}`",
                f"GRANT SELECT ON TABLE {name}.s.t TO `{eve_name}`", f"GRANT READ VOLUME ON VOLUME {name}.s.v TO `{eve_name}`"]:
        statement(server, sql)
    cred = eve.temporary_table_credentials.generate_temporary_table_credentials(operation=uc.TableOperation.READ, table_id=table_id)
    assert cred.url.startswith("file://") and cred.expiration_time > 0
    assert sorted(DeltaTable(cred.url[len("file://"):]).to_pandas()["id"]) == [0, 1, 2, 3, 4]  # a reader opens what was vended
    with pytest.raises(PermissionDenied):  # writing takes MODIFY
        eve.temporary_table_credentials.generate_temporary_table_credentials(operation=uc.TableOperation.READ_WRITE, table_id=table_id)
    # unitycatalog-client asks the same of /api/2.1 (volumes here); paths are for admins.
    script = ("import asyncio, json, sys\n"
              "from unitycatalog.client import ApiClient, Configuration, TemporaryCredentialsApi, ApiException\n"
              "from unitycatalog.client.models import GenerateTemporaryVolumeCredential, GenerateTemporaryPathCredential\n"
              "async def main(url, token, vid):\n"
              "    c = ApiClient(Configuration(host=url + '/api/2.1/unity-catalog'), header_name='Authorization', header_value='Bearer ' + token)\n"
              "    async with c:\n"
              "        api = TemporaryCredentialsApi(c)\n"
              "        out = {'volume': (await api.generate_temporary_volume_credentials(GenerateTemporaryVolumeCredential(volume_id=vid, operation='READ_VOLUME'))).url}\n"
              "        try:\n"
              "            await api.generate_temporary_path_credentials(GenerateTemporaryPathCredential(url='file:///etc', operation='PATH_READ'))\n"
              "            out['path'] = 200\n"
              "        except ApiException as e:\n"
              "            out['path'] = e.status\n"
              "    print(json.dumps(out))\n"
              "asyncio.run(main(*sys.argv[1:4]))\n")
    token = requests.post(server.url + "/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": eve_name},
                          headers={"Authorization": f"Bearer {TOKEN}"}).json()["token_value"]
    out = subprocess.run([uc_python, "-c", script, server.url, token, volume_id], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["volume"].startswith("file://") and seen["volume"].endswith("/_volumes/v") and seen["path"] == 403
    r = requests.post(server.url + "/api/2.0/unity-catalog/temporary-table-credentials", headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"table_id": "no-such-id", "operation": "READ"})
    assert r.status_code == 404


def test_external_tables_and_volumes(server, tmp_path):
    """External tables and volumes keep their files at a LOCATION outside the warehouse: created in SQL and through
    databricks-sdk, read by delta-rs at that folder, adopted when a Delta table is already there, and left in place
    when dropped. They take an admin (there are no external locations to grant on yet)."""
    from deltalake import DeltaTable, write_deltalake
    import pyarrow as pa
    w = admin(server)
    name = "ext_" + uuid.uuid4().hex[:6]
    w.catalogs.create(name=name)
    w.schemas.create(name="s", catalog_name=name)
    folder = tmp_path / "events"
    statement(server, f"CREATE TABLE {name}.s.events (id BIGINT, kind STRING) LOCATION '{folder}'")
    statement(server, f"INSERT INTO {name}.s.events VALUES (1, 'a'), (2, 'b')")
    info = w.tables.get(f"{name}.s.events")
    assert info.table_type == uc.TableType.EXTERNAL and info.storage_location == f"file://{folder}"
    # The files are at the location, where any Delta reader finds them.
    assert sorted(DeltaTable(str(folder)).to_pyarrow_table().to_pydict()["id"]) == [1, 2]
    assert [r[0] for r in statement(server, f"SELECT table_type FROM {name}.information_schema.tables WHERE table_name = 'events'")] == ["EXTERNAL"]
    # Dropping forgets the name; the data stays, and naming the folder again adopts it with its rows.
    statement(server, f"DROP TABLE {name}.s.events")
    assert (folder / "_delta_log").is_dir()
    with pytest.raises(NotFound):
        w.tables.get(f"{name}.s.events")
    statement(server, f"CREATE TABLE {name}.s.events LOCATION '{folder}'")
    assert statement(server, f"SELECT count(*) FROM {name}.s.events") == [["2"]]
    # A Delta table written by delta-rs is adopted through the REST API as it is.
    written = tmp_path / "written"
    write_deltalake(str(written), pa.table({"x": [1.5, 2.5, 3.5]}))
    made = w.tables.create(name="written", catalog_name=name, schema_name="s", table_type=uc.TableType.EXTERNAL,
                           data_source_format=uc.DataSourceFormat.DELTA, storage_location=str(written))
    assert made.table_type == uc.TableType.EXTERNAL and [c.name for c in made.columns] == ["x"]
    assert statement(server, f"SELECT sum(x) FROM {name}.s.written") == [["7.5"]]
    w.tables.delete(f"{name}.s.written")
    assert DeltaTable(str(written)).version() == 0
    # Locations inside the warehouse, folders holding other files, and non-admins are refused.
    r = sql_as(server, TOKEN, f"CREATE TABLE {name}.s.bad (a INT) LOCATION '{server.home}/warehouse/{name}/elsewhere'")
    assert r.json()["status"]["state"] == "FAILED" and "warehouse" in r.json()["status"]["error"]["message"], r.text
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    r = sql_as(server, TOKEN, f"CREATE TABLE {name}.s.bad (a INT) LOCATION '{tmp_path / 'junk'}'")
    assert r.json()["status"]["state"] == "FAILED" and "no Delta table" in r.json()["status"]["error"]["message"], r.text
    ada_name = f"ext-{uuid.uuid4().hex[:6]}@example.com"
    ada = user(server, ada_name)
    w.grants.update(securable_type="catalog", full_name=name, changes=[uc.PermissionsChange(principal=ada_name, add=[
        uc.Privilege.USE_CATALOG, uc.Privilege.USE_SCHEMA, uc.Privilege.CREATE_TABLE, uc.Privilege.CREATE_VOLUME])])
    r = sql_as(server, ada.config.token, f"CREATE TABLE {name}.s.hers (a INT) LOCATION '{tmp_path / 'hers'}'")
    assert r.status_code == 403, r.text
    with pytest.raises(PermissionDenied):
        ada.volumes.create(catalog_name=name, schema_name="s", name="hers", volume_type=uc.VolumeType.EXTERNAL,
                           storage_location=str(tmp_path / "hers"))
    assert sql_as(server, ada.config.token, f"CREATE TABLE {name}.s.hers (a INT)").status_code == 200  # managed: hers to make
    # An external volume: files put in its folder are its files, and uploads land there.
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "first.csv").write_text("id\n1\n")
    statement(server, f"CREATE EXTERNAL VOLUME {name}.s.landing LOCATION '{landing}' COMMENT 'drop zone'")
    v = w.volumes.read(f"{name}.s.landing")
    assert v.volume_type == uc.VolumeType.EXTERNAL and v.storage_location == f"file://{landing}" and v.comment == "drop zone"
    assert [e.name for e in w.files.list_directory_contents(f"/Volumes/{name}/s/landing")] == ["first.csv"]
    w.files.upload(f"/Volumes/{name}/s/landing/second.csv", io.BytesIO(b"id\n2\n"), overwrite=True)
    assert (landing / "second.csv").read_bytes() == b"id\n2\n"
    assert statement(server, f"SELECT count(*) FROM read_files('/Volumes/{name}/s/landing/first.csv', format => 'csv', header => true)") == [["1"]]
    statement(server, f"DROP VOLUME {name}.s.landing")
    assert sorted(p.name for p in landing.iterdir()) == ["first.csv", "second.csv"]
    w.catalogs.delete(name, force=True)
    assert (folder / "_delta_log").is_dir()
