"""The audit log: a row per API call (allowed and denied) in `system.access.audit`, readable by admins through SQL
and by any Delta reader, never holding a token's value, and hash-chained so that `kiln audit verify` finds a
changed record."""
import json
import os
import sqlite3
import subprocess
import uuid

import duckdb
import mlflow
import pytest
import requests
from databricks.sdk import WorkspaceClient
from mlflow.tracking import MlflowClient

from conftest import KILN, TOKEN


@pytest.fixture(scope="module")
def server(own_kiln):
    return own_kiln


def headers(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def sql(server, statement, token=TOKEN):
    r = requests.post(server.url + "/api/2.0/sql/statements", headers=headers(token),
                      json={"statement": statement, "warehouse_id": "kiln", "wait_timeout": "30s"})
    return r


def rows(server, statement):
    r = sql(server, statement)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"]["state"] == "SUCCEEDED", body
    names = [c["name"] for c in body["manifest"]["schema"]["columns"]]
    return [dict(zip(names, row)) for row in body.get("result", {}).get("data_array", [])]


def test_every_call_has_its_row_allowed_or_denied(server):
    w = WorkspaceClient(host=server.url, token=TOKEN, auth_type="pat")
    seen = {}
    # An allowed call, a refused token, a call without credentials, a denied action, a missing resource.
    r = requests.get(server.url + "/api/2.0/preview/scim/v2/Me", headers=headers())
    seen["me"] = (r.headers["X-Request-Id"], 200)
    r = requests.get(server.url + "/api/2.0/preview/scim/v2/Me", headers=headers("dapi" + "1" * 64))
    seen["bad_token"] = (r.headers["X-Request-Id"], 401)
    r = requests.post(server.url + "/api/2.0/mlflow/experiments/create", json={"name": "x"})
    seen["no_token"] = (r.headers["X-Request-Id"], 401)
    name = f"ann-{uuid.uuid4().hex[:6]}@example.com"
    w.users.create(user_name=name)
    token = requests.post(server.url + "/api/2.0/token-management/on-behalf-of/tokens", headers=headers(),
                          json={"user_name": name, "comment": "audit test"}).json()["token_value"]
    r = requests.post(server.url + "/api/2.0/preview/scim/v2/Users", headers=headers(token), json={"userName": "eve@example.com"})
    seen["denied"] = (r.headers["X-Request-Id"], 403)
    r = requests.get(server.url + "/api/2.0/mlflow/experiments/get", headers=headers(), params={"experiment_id": "424242"})
    seen["missing"] = (r.headers["X-Request-Id"], 404)
    # The stock mlflow client's calls are recorded too.
    os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN
    client = MlflowClient(server.url)
    experiment = client.create_experiment(f"audited-{uuid.uuid4().hex[:6]}")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "loss", 0.5)

    found = {row["request_id"]: row for row in rows(server, """
        SELECT request_id, service_name, action_name, get_json_object(user_identity, '$.email') AS who,
               get_json_object(response, '$.status_code') AS status, get_json_object(response, '$.error_message') AS error,
               request_params, source_ip_address, user_agent, sequence
        FROM system.access.audit""")}
    for what, (request_id, status) in seen.items():
        assert request_id in found, what
        assert int(found[request_id]["status"]) == status, (what, found[request_id])
    assert found[seen["me"][0]]["who"] == "admin" and found[seen["me"][0]]["service_name"] == "accounts"
    assert found[seen["bad_token"][0]]["who"] is None and "Invalid access token" in found[seen["bad_token"][0]]["error"]
    assert found[seen["denied"][0]]["who"] == name and "not a workspace admin" in found[seen["denied"][0]]["error"]
    assert found[seen["denied"][0]]["source_ip_address"] == "127.0.0.1"
    metrics = [r for r in found.values() if r["action_name"] == "postRunsLogMetric"]
    assert len(metrics) == 1 and json.loads(metrics[0]["request_params"])["run_id"] == run.info.run_id
    assert metrics[0]["service_name"] == "mlflowExperiment" and "mlflow" in metrics[0]["user_agent"]
    sequences = sorted(int(r["sequence"]) for r in found.values())
    assert sequences == list(range(1, len(sequences) + 1))


def test_no_token_value_is_ever_logged(server):
    made = requests.post(server.url + "/api/2.0/token/create", headers=headers(), json={"comment": "secret holder", "lifetime_seconds": 600}).json()
    value = made["token_value"]
    requests.get(server.url + "/api/2.0/token/list", headers=headers(value))
    requests.post(server.url + "/api/2.0/token/create", headers=headers(), json={"comment": "c", "token": value, "password": "hunter2"})
    everything = json.dumps(rows(server, "SELECT * FROM system.access.audit"))
    assert value not in everything and TOKEN not in everything and "hunter2" not in everything
    assert "[REDACTED]" in everything
    with open(os.path.join(server.home, "kiln.db"), "rb") as f:
        store = f.read()
    assert value.encode() not in store and TOKEN.encode() not in store


def test_the_system_catalog_is_for_admins_and_read_only(server):
    w = WorkspaceClient(host=server.url, token=TOKEN, auth_type="pat")
    name = f"bob-{uuid.uuid4().hex[:6]}@example.com"
    w.users.create(user_name=name)
    bob = requests.post(server.url + "/api/2.0/token-management/on-behalf-of/tokens", headers=headers(),
                        json={"user_name": name}).json()["token_value"]
    for statement in ["SELECT COUNT(*) FROM system.access.audit",
                      "SELECT * FROM (SELECT action_name FROM system.access.audit) t",
                      "WITH a AS (SELECT * FROM system.access.audit) SELECT COUNT(*) FROM a",
                      "SELECT 1 WHERE EXISTS (SELECT 1 FROM system.access.audit)"]:
        r = sql(server, statement, token=bob)
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", (statement, r.text)
    for statement in ["DELETE FROM system.access.audit", "DROP TABLE system.access.audit",
                      "INSERT INTO system.access.audit SELECT * FROM system.access.audit", "CREATE TABLE system.access.fake (a INT)"]:
        r = sql(server, statement)
        assert r.status_code == 403 and "read-only" in r.json()["message"], (statement, r.text)
    # Bob's own tables are his to query.
    assert sql(server, "SELECT 1 AS one", token=bob).json()["status"]["state"] == "SUCCEEDED"


def test_outside_readers_see_the_delta_table(server):
    rows(server, "SELECT COUNT(*) FROM system.access.audit")  # brings the export up to date
    path = os.path.join(server.home, "warehouse", "system", "access", "audit")
    from deltalake import DeltaTable
    table = DeltaTable(path)
    names = [f.name for f in table.schema().fields]
    for column in ["account_id", "workspace_id", "version", "event_time", "event_date", "source_ip_address", "user_agent", "session_id",
                   "user_identity", "service_name", "action_name", "request_id", "request_params", "response", "audit_level", "event_id",
                   "identity_metadata"]:
        assert column in names
    arrow = table.to_pyarrow_table()
    assert arrow.num_rows >= 10
    assert sorted(arrow.column("sequence").to_pylist()) == list(range(1, arrow.num_rows + 1))
    # Plain Parquet readers see the same rows (DuckDB over the data files).
    files = [u.replace("file://", "") for u in table.file_uris()]
    assert duckdb.sql(f"SELECT COUNT(*) FROM read_parquet({files!r})").fetchall()[0][0] == arrow.num_rows


def test_verify_finds_the_changed_record(server):
    requests.get(server.url + "/api/2.0/preview/scim/v2/Me", headers=headers())
    ok = subprocess.run([KILN, "audit", "verify", "--home", server.home, "--json"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    result = json.loads(ok.stdout)
    assert result["intact"] and result["checked"] >= 10
    db = sqlite3.connect(os.path.join(server.home, "kiln.db"))
    db.execute("UPDATE audit_events SET user_name = 'mallory' WHERE seq = 5")
    db.commit()
    db.close()
    bad = subprocess.run([KILN, "audit", "verify", "--home", server.home], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "record 5" in bad.stderr and "content does not match" in bad.stderr


def test_changes_made_in_the_web_ui_are_audited(server):
    """Signing in and out and the UI's form posts have their rows, with the signed-in user; page views do not."""
    import re
    web = requests.Session()
    page = web.get(server.url + "/ui/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = web.post(server.url + "/ui/login", data={"csrf": csrf, "token": TOKEN, "next": "/ui/experiments"}, allow_redirects=False)
    assert r.status_code == 303
    login_id = r.headers["X-Request-Id"]
    web.get(server.url + "/ui/experiments")
    session_csrf = re.search(r'name="csrf" value="([^"]+)"', web.get(server.url + "/ui/experiments").text).group(1)
    r = web.post(server.url + "/ui/logout", data={"csrf": session_csrf}, allow_redirects=False)
    logout_id = r.headers["X-Request-Id"]
    found = {row["request_id"]: row for row in rows(server, """
        SELECT request_id, service_name, action_name, get_json_object(user_identity, '$.email') AS who,
               get_json_object(response, '$.status_code') AS status, request_params
        FROM system.access.audit WHERE service_name = 'webUI'""")}
    assert found[login_id]["action_name"] == "postUiLogin" and found[login_id]["status"] == "303"
    assert TOKEN not in json.dumps(found)
    assert found[logout_id]["who"] == "admin" and found[logout_id]["action_name"] == "postUiLogout"
    assert not [row for row in found.values() if row["action_name"].startswith("get")]
