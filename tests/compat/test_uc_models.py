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
from test_catalog import uc_venv_python
from test_identities import issue

HERE = os.path.dirname(os.path.abspath(__file__))


def flow(server, name, token, *load):
    env = dict(os.environ, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=token, MLFLOW_TRACKING_URI=server.url,
               MLFLOW_TRACKING_TOKEN=token, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    env.pop("DATABRICKS_CONFIG_PROFILE", None)
    args = list(load) if load else ["uc-" + uuid.uuid4().hex[:8]]
    return subprocess.run([sys.executable, os.path.join(HERE, "clients", "mlflow_uc_flow.py"), name, *args],
                          capture_output=True, text=True,
                          env=env, timeout=300)


def web_session(server, token):
    """GET as a browser signed in with `token` (the sign-in form, its CSRF cookie, the session cookie)."""
    import re
    s = requests.Session()
    form = s.get(server.url + "/ui/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    s.post(server.url + "/ui/login", data={"csrf": csrf, "token": token, "next": "/ui/models"}, allow_redirects=False)
    return lambda path: s.get(server.url + path, allow_redirects=False)


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


def test_uc_models_api_through_both_clients(own_kiln):
    from databricks.sdk.errors import NotFound, PermissionDenied
    w = WorkspaceClient(host=own_kiln.url, token=TOKEN, auth_type="pat")
    catalog = "mla_" + uuid.uuid4().hex[:6]
    w.catalogs.create(name=catalog)
    w.schemas.create(name="s", catalog_name=catalog)
    python = uc_venv_python()
    out = subprocess.run([python, os.path.join(HERE, "clients", "uc_client_models.py"), own_kiln.url, TOKEN, catalog],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout)
    assert seen["created"]["full_name"] == f"{catalog}.s.scorer" and seen["created"]["owner"] == "admin"
    assert seen["listed"] == [f"{catalog}.s.scorer"]
    assert seen["updated"]["full_name"] == f"{catalog}.s.scorer2" and seen["updated"]["comment"] == "scores customers"
    assert seen["version_created"]["status"] == "PENDING_REGISTRATION" and seen["finalized"]["status"] == "READY"
    assert seen["version_updated"]["comment"] == "first, checked" and seen["versions"] == [1] and seen["got"]["source"] == "runs:/abc/model"
    assert seen["deleted_status"] == 404 and seen["after_delete"] == []
    # databricks-sdk: models made by SQL-less REST, aliases, versions by alias; the same store as mlflow's databricks-uc.
    from databricks.sdk.service import catalog as uc
    model = w.registered_models.create(catalog_name=catalog, schema_name="s", name="ranker", comment="ranks")
    assert model.full_name == f"{catalog}.s.ranker"
    r = requests.post(own_kiln.url + "/api/2.1/unity-catalog/models/versions", headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"model_name": "ranker", "catalog_name": catalog, "schema_name": "s", "source": "runs:/r/model"})
    assert r.status_code == 200 and r.json()["version"] == 1, r.text
    w.registered_models.set_alias(f"{catalog}.s.ranker", "champion", 1)
    assert w.model_versions.get_by_alias(f"{catalog}.s.ranker", "champion").version == 1
    assert [a.alias_name for a in w.registered_models.get(f"{catalog}.s.ranker").aliases] == ["champion"]
    assert [v.version for v in w.model_versions.list(f"{catalog}.s.ranker")] == [1]
    assert [m.full_name for m in w.registered_models.list(catalog_name=catalog, schema_name="s")] == [f"{catalog}.s.ranker"]
    w.model_versions.update(f"{catalog}.s.ranker", 1, comment="checked")
    assert w.model_versions.get(f"{catalog}.s.ranker", 1).comment == "checked"
    w.registered_models.delete_alias(f"{catalog}.s.ranker", "champion")
    # A user without grants sees none of it and may not create one; with CREATE_MODEL they may, and own it.
    name = f"uca-{uuid.uuid4().hex[:6]}@example.com"
    w.users.create(user_name=name)
    user = WorkspaceClient(host=own_kiln.url, token=issue(own_kiln, name), auth_type="pat")
    assert list(user.registered_models.list(catalog_name=catalog, schema_name="s")) == []
    with pytest.raises(PermissionDenied):
        user.registered_models.get(f"{catalog}.s.ranker")
    with pytest.raises(PermissionDenied):
        user.registered_models.create(catalog_name=catalog, schema_name="s", name="theirs")
    w.grants.update(securable_type="schema", full_name=f"{catalog}.s",
                    changes=[uc.PermissionsChange(principal=name, add=[uc.Privilege.USE_SCHEMA, uc.Privilege.CREATE_MODEL])])
    w.grants.update(securable_type="catalog", full_name=catalog, changes=[uc.PermissionsChange(principal=name, add=[uc.Privilege.USE_CATALOG])])
    user.registered_models.create(catalog_name=catalog, schema_name="s", name="theirs")
    assert [m.name for m in user.registered_models.list(catalog_name=catalog, schema_name="s")] == ["theirs"]
    w.registered_models.delete(f"{catalog}.s.ranker")
    with pytest.raises(NotFound):
        w.registered_models.get(f"{catalog}.s.ranker")


def test_grants_on_uc_models_decide_who_loads_and_changes_them(own_kiln):
    """UC grants on a model, as Databricks names them (securable type `function`, or `model`/`registered_model`):
    EXECUTE lets a user load it with the stock mlflow client; changing it takes ownership; grants survive nothing
    they should not (revocation is immediate, a dropped and recreated model starts with none)."""
    from databricks.sdk.errors import PermissionDenied
    from databricks.sdk.service import catalog as uc
    w = WorkspaceClient(host=own_kiln.url, token=TOKEN, auth_type="pat")
    catalog = "mlg_" + uuid.uuid4().hex[:6]
    w.catalogs.create(name=catalog)
    w.schemas.create(name="models", catalog_name=catalog)
    model = f"{catalog}.models.adder"
    made = flow(own_kiln, model, TOKEN)
    assert made.returncode == 0, made.stderr[-3000:]
    name = f"ucg-{uuid.uuid4().hex[:6]}@example.com"
    w.users.create(user_name=name)
    token = issue(own_kiln, name)
    user = WorkspaceClient(host=own_kiln.url, token=token, auth_type="pat")

    def sql(statement):
        r = requests.post(own_kiln.url + "/api/2.0/sql/statements", headers={"Authorization": f"Bearer {TOKEN}"},
                          json={"statement": statement, "warehouse_id": "k", "wait_timeout": "30s"}).json()
        assert r["status"]["state"] == "SUCCEEDED", r
        return r.get("result", {}).get("data_array", [])

    # Nothing granted: the mlflow client cannot load it.
    refused = flow(own_kiln, model, token, "--load", "1")
    assert refused.returncode != 0 and "EXECUTE" in refused.stderr, refused.stderr[-2000:]
    # USE CATALOG and USE SCHEMA in SQL, EXECUTE through databricks-sdk with the securable type Databricks uses.
    sql(f"GRANT USE CATALOG ON CATALOG {catalog} TO `{name}`")
    sql(f"GRANT USE SCHEMA ON SCHEMA {catalog}.models TO `{name}`")
    w.grants.update(securable_type="function", full_name=model, changes=[uc.PermissionsChange(principal=name, add=[uc.Privilege.EXECUTE])])
    loaded = flow(own_kiln, model, token, "--load", "1")
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert json.loads(loaded.stdout.strip().splitlines()[-1])["predictions"] == [2.0, 6.0]
    assert [m.full_name for m in user.registered_models.list(catalog_name=catalog, schema_name="models")] == [model]
    # The web UI decides the same way: the model page and the registry list, signed in as the user.
    page = web_session(own_kiln, token)
    assert page(f"/ui/models/{model}").status_code == 200
    assert model in page("/ui/models").text
    # And the workspace registry API (what a default-registry mlflow client calls) too.
    user_auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(own_kiln.url + "/api/2.0/mlflow/registered-models/get", headers=user_auth, params={"name": model}).status_code == 200
    listed = requests.get(own_kiln.url + "/api/2.0/mlflow/registered-models/search", headers=user_auth).json()
    assert model in [m["name"] for m in listed.get("registered_models", [])]
    r = requests.patch(own_kiln.url + "/api/2.0/mlflow/registered-models/update", headers=user_auth, json={"name": model, "description": "x"})
    assert r.status_code == 403 and "ownership or MANAGE" in r.json()["message"], r.text
    # The grant reads back under every spelling of the type, and in SQL.
    for securable_type in ["function", "FUNCTION", "model", "registered_model"]:
        got = w.grants.get(securable_type=securable_type, full_name=model)
        assert [(a.principal, [p.value for p in a.privileges]) for a in got.privilege_assignments] == [(name, ["EXECUTE"])]
    assert [name, "EXECUTE", "MODEL", model] in sql(f"SHOW GRANTS ON MODEL {model}")
    # EXECUTE is not ownership: no aliases, no new versions, no grants.
    with pytest.raises(PermissionDenied):
        user.registered_models.set_alias(model, "champion", 1)
    with pytest.raises(PermissionDenied):
        user.grants.update(securable_type="function", full_name=model, changes=[uc.PermissionsChange(principal=name, add=[uc.Privilege.MANAGE])])
    # Revoking in SQL takes effect on the next call.
    sql(f"REVOKE EXECUTE ON MODEL {model} FROM `{name}`")
    with pytest.raises(PermissionDenied):
        user.registered_models.get(model)
    assert page(f"/ui/models/{model}").status_code == 403 and model not in page("/ui/models").text
    assert requests.get(own_kiln.url + "/api/2.0/mlflow/registered-models/get", headers=user_auth, params={"name": model}).status_code == 403
    listed = requests.get(own_kiln.url + "/api/2.0/mlflow/registered-models/search", headers=user_auth).json()
    assert model not in [m["name"] for m in listed.get("registered_models", [])]
    # Handed over, it is theirs to change.
    w.registered_models.update(model, owner=name)
    assert w.registered_models.get(model).owner == name
    user.registered_models.set_alias(model, "champion", 1)
    assert user.model_versions.get_by_alias(model, "champion").version == 1
    # Dropped and made again, the name keeps no owner or grants of the old model.
    w.grants.update(securable_type="model", full_name=model, changes=[uc.PermissionsChange(principal=name, add=[uc.Privilege.EXECUTE])])
    w.registered_models.delete(model)
    w.registered_models.create(catalog_name=catalog, schema_name="models", name="adder")
    assert w.registered_models.get(model).owner == "admin"
    assert not w.grants.get(securable_type="function", full_name=model).privilege_assignments
    with pytest.raises(PermissionDenied):
        user.registered_models.get(model)
