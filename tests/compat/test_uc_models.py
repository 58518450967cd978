"""Models in Unity Catalog through the stock mlflow client (`mlflow.set_registry_uri("databricks-uc")`, DATABRICKS_HOST
and DATABRICKS_TOKEN pointing at Kiln): register with files moved through URLs Kiln signs, alias, search, load by
alias; who may create and read them. The mlflow flow runs as a script (the registry URI is process-global)."""
import json
import os
import subprocess
import sys
import uuid

import pytest
import requests
from databricks.sdk import WorkspaceClient

from conftest import TOKEN
from test_identities import issue

HERE = os.path.dirname(os.path.abspath(__file__))


def flow(server, name, token):
    env = dict(os.environ, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=token, MLFLOW_TRACKING_URI=server.url,
               MLFLOW_TRACKING_TOKEN=token, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    env.pop("DATABRICKS_CONFIG_PROFILE", None)
    return subprocess.run([sys.executable, os.path.join(HERE, "clients", "mlflow_uc_flow.py"), name, "uc-" + uuid.uuid4().hex[:8]],
                          capture_output=True, text=True,
                          env=env, timeout=300)


def test_register_alias_search_and_load_by_alias(own_kiln):
    w = WorkspaceClient(host=own_kiln.url, token=TOKEN, auth_type="pat")
    catalog = "ml_" + uuid.uuid4().hex[:6]
    w.catalogs.create(name=catalog)
    w.schemas.create(name="models", catalog_name=catalog)
    out = flow(own_kiln, f"{catalog}.models.adder", TOKEN)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["aliases"] == {"champion": "1"} and seen["aliases_after"] == {}
    assert seen["versions"] == [["1", "READY", True]]
    assert seen["predictions"] == [2.0, 6.0] and seen["by_version"] == [1.5]
    # The files are Kiln's: a signed URL works once issued, for its method only, and not after tampering.
    auth = {"Authorization": f"Bearer {TOKEN}"}
    listed = requests.get(own_kiln.url + f"/api/2.0/fs/directories/Models/{catalog}/models/adder/1", headers=auth).json()
    names = {e["name"] for e in listed["contents"]}
    assert "MLmodel" in names, names
    url = requests.post(own_kiln.url + "/api/2.0/fs/create-download-url", headers=auth,
                        json={"path": f"/Models/{catalog}/models/adder/1/MLmodel"}).json()["url"]
    assert b"python_function" in requests.get(url).content
    assert requests.put(url, data=b"x").status_code == 403
    assert requests.get(url[:-4] + ("0000" if not url.endswith("0000") else "1111")).status_code == 403
    # A finalized version's files cannot change.
    r = requests.post(own_kiln.url + "/api/2.0/fs/create-upload-url", headers=auth, json={"path": f"/Models/{catalog}/models/adder/1/MLmodel"})
    assert r.status_code == 400 and r.json()["error_code"] == "BAD_REQUEST" and "READY" in r.json()["message"]


def test_who_may_create_and_read_uc_models(own_kiln):
    w = WorkspaceClient(host=own_kiln.url, token=TOKEN, auth_type="pat")
    catalog = "mlp_" + uuid.uuid4().hex[:6]
    w.catalogs.create(name=catalog)
    w.schemas.create(name="models", catalog_name=catalog)
    name = f"uc-{uuid.uuid4().hex[:6]}@example.com"
    w.users.create(user_name=name)
    token = issue(own_kiln, name)
    refused = flow(own_kiln, f"{catalog}.models.mine", token)
    assert refused.returncode != 0 and "CREATE_MODEL" in refused.stderr, refused.stderr[-2000:]
    for sql in [f"GRANT USE CATALOG ON CATALOG {catalog} TO `{name}`", f"GRANT USE SCHEMA, CREATE_MODEL ON SCHEMA {catalog}.models TO `{name}`"]:
        r = requests.post(own_kiln.url + "/api/2.0/sql/statements", headers={"Authorization": f"Bearer {TOKEN}"},
                          json={"statement": sql, "warehouse_id": "k", "wait_timeout": "30s"}).json()
        assert r["status"]["state"] == "SUCCEEDED", r
    made = flow(own_kiln, f"{catalog}.models.mine", token)
    assert made.returncode == 0, made.stderr[-3000:]
    # Its creator owns it; another user can neither see it nor fetch its files.
    other = f"uc-{uuid.uuid4().hex[:6]}@example.com"
    w.users.create(user_name=other)
    other_auth = {"Authorization": f"Bearer {issue(own_kiln, other)}"}
    r = requests.get(own_kiln.url + "/api/2.0/mlflow/unity-catalog/registered-models/get", headers=other_auth, params={"name": f"{catalog}.models.mine"})
    assert r.status_code == 403
    r = requests.post(own_kiln.url + "/api/2.0/fs/create-download-url", headers=other_auth, json={"path": f"/Models/{catalog}/models/mine/1/MLmodel"})
    assert r.status_code == 403
    r = requests.get(own_kiln.url + "/api/2.0/mlflow/unity-catalog/registered-models/search", headers=other_auth)
    assert f"{catalog}.models.mine" not in [m["name"] for m in r.json().get("registered_models", [])]
