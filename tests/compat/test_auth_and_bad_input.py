"""Authentication and bad input over raw HTTP: every bad request is a 4xx with an error_code, nothing is
written, and the server keeps serving."""
import os
import random

import pytest
import requests

from conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def api(kiln, path):
    return f"{kiln.url}/api/2.0/mlflow/{path}"


def test_no_token_is_401_unauthenticated(kiln):
    r = requests.post(api(kiln, "experiments/search"), json={})
    assert r.status_code == 401
    assert r.json()["error_code"] == "UNAUTHENTICATED"


def test_wrong_token_is_401(kiln):
    r = requests.post(api(kiln, "experiments/search"), json={}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert r.json()["error_code"] == "UNAUTHENTICATED"
    r = requests.get(f"{kiln.url}/api/2.0/mlflow-artifacts/artifacts/0/x", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401


def test_admin_token_works_and_health_is_public(kiln):
    assert requests.post(api(kiln, "experiments/search"), json={}, headers=AUTH).status_code == 200
    r = requests.get(f"{kiln.url}/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    info = requests.get(f"{kiln.url}/api/3.0/mlflow/server-info")
    assert info.status_code == 200 and info.json()["multipart_uploads_enabled"] is False


def test_metrics_endpoint_reports_requests_per_route(kiln):
    requests.post(api(kiln, "experiments/search"), json={}, headers=AUTH)
    body = requests.get(f"{kiln.url}/metrics", headers=AUTH).text
    assert 'kiln_http_requests_total{' in body
    assert 'route="/api/2.0/mlflow/experiments/search"' in body
    assert "kiln_http_request_duration_seconds_bucket" in body


@pytest.fixture()
def run_id(kiln):
    exp = requests.post(api(kiln, "experiments/create"), json={"name": f"bad-{random.randrange(1 << 30)}"}, headers=AUTH).json()["experiment_id"]
    run = requests.post(api(kiln, "runs/create"), json={"experiment_id": exp, "start_time": 1}, headers=AUTH).json()["run"]
    rid = run["info"]["run_id"]
    r = requests.post(api(kiln, "runs/log-batch"), headers=AUTH, json={
        "run_id": rid, "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}], "params": [{"key": "p", "value": "v"}]})
    assert r.status_code == 200
    return rid


def snapshot(kiln, rid):
    return requests.get(api(kiln, "runs/get"), params={"run_id": rid}, headers=AUTH).json()["run"]["data"]


BAD_BATCHES = [
    ("malformed json", b'{"run_id": "x", "metrics": [', "INVALID_PARAMETER_VALUE"),
    ("not an object", b'[1, 2, 3]', "INVALID_PARAMETER_VALUE"),
    ("metric value is a string", {"metrics": [{"key": "a", "value": "high", "timestamp": 1}]}, "INVALID_PARAMETER_VALUE"),
    ("metric value missing", {"metrics": [{"key": "a", "timestamp": 1}]}, "INVALID_PARAMETER_VALUE"),
    ("timestamp is an object", {"metrics": [{"key": "a", "value": 1, "timestamp": {}}]}, "INVALID_PARAMETER_VALUE"),
    ("metrics is not a list", {"metrics": {"key": "a"}}, "INVALID_PARAMETER_VALUE"),
    ("too many metrics", {"metrics": [{"key": f"k{i}", "value": 1, "timestamp": 1} for i in range(1001)]}, "INVALID_PARAMETER_VALUE"),
    ("too many params", {"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}, "INVALID_PARAMETER_VALUE"),
    ("param value too long", {"params": [{"key": "long", "value": "x" * 6001}]}, "INVALID_PARAMETER_VALUE"),
    ("key escapes as a path", {"metrics": [{"key": "../etc", "value": 1, "timestamp": 1}]}, "INVALID_PARAMETER_VALUE"),
    ("changed param in batch", {"params": [{"key": "p", "value": "other"}], "metrics": [{"key": "z", "value": 1, "timestamp": 1}]}, "INVALID_PARAMETER_VALUE"),
]


@pytest.mark.parametrize("label,body,code", BAD_BATCHES, ids=[b[0] for b in BAD_BATCHES])
def test_bad_log_batch_is_rejected_and_writes_nothing(kiln, run_id, label, body, code):
    before = snapshot(kiln, run_id)
    if isinstance(body, bytes):
        r = requests.post(api(kiln, "runs/log-batch"), data=body, headers=dict(AUTH, **{"Content-Type": "application/json"}))
    else:
        r = requests.post(api(kiln, "runs/log-batch"), json=dict(body, run_id=run_id), headers=AUTH)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error_code"] == code
    assert snapshot(kiln, run_id) == before
    assert requests.get(f"{kiln.url}/health").status_code == 200


def test_oversized_request_body_is_rejected(kiln, run_id):
    big = {"run_id": run_id, "tags": [{"key": "t", "value": "x" * 1_100_000}]}
    r = requests.post(api(kiln, "runs/log-batch"), json=big, headers=AUTH)
    assert 400 <= r.status_code < 500
    assert "error_code" in r.json()


def test_unknown_ids_are_404(kiln):
    r = requests.get(api(kiln, "runs/get"), params={"run_id": "f" * 32}, headers=AUTH)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = requests.post(api(kiln, "runs/log-metric"), json={"run_id": "f" * 32, "key": "a", "value": 1, "timestamp": 1}, headers=AUTH)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = requests.post(api(kiln, "runs/create"), json={"experiment_id": "424242"}, headers=AUTH)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = requests.get(api(kiln, "experiments/get"), params={"experiment_id": "not-a-number"}, headers=AUTH)
    assert r.status_code == 404


def test_missing_required_field_and_unknown_route(kiln):
    r = requests.post(api(kiln, "experiments/create"), json={}, headers=AUTH)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = requests.post(api(kiln, "experiments/create"), json={"name": 12}, headers=AUTH)
    assert r.status_code in (200, 400)  # a number is taken as its text, as MLflow's proto parser does for strings
    r = requests.get(f"{kiln.url}/api/2.0/mlflow/no-such-thing", headers=AUTH)
    assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"


@pytest.mark.parametrize("path", ["../escape.txt", "0/../../escape.txt", "%2Fetc%2Fpasswd", "0/%2E%2E/%2E%2E/escape.txt", "a/./b", "a//b"])
def test_artifact_paths_that_escape_are_rejected(kiln, path):
    # http.client sends the path as written; requests would normalize the dot segments away first.
    import http.client
    import os
    for method, body in (("PUT", b"evil"), ("GET", None), ("DELETE", None)):
        conn = http.client.HTTPConnection("127.0.0.1", kiln.port, timeout=10)
        conn.request(method, f"/api/2.0/mlflow-artifacts/artifacts/{path}", body=body, headers=AUTH)
        r = conn.getresponse()
        payload = r.read()
        conn.close()
        assert 400 <= r.status < 500, (method, r.status, payload)
        assert b"error_code" in payload
    assert not os.path.exists(os.path.join(kiln.home, "escape.txt"))
    assert not os.path.exists(os.path.join(os.path.dirname(kiln.home), "escape.txt"))
    assert requests.get(f"{kiln.url}/health").status_code == 200


def test_artifact_list_with_escaping_path_is_rejected(kiln):
    r = requests.get(f"{kiln.url}/api/2.0/mlflow-artifacts/artifacts", params={"path": "../.."}, headers=AUTH)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = requests.get(f"{kiln.url}/api/2.0/mlflow-artifacts/artifacts", params={"path": "/etc"}, headers=AUTH)
    assert r.status_code == 400


def test_bad_filters_report_position(kiln):
    r = requests.post(api(kiln, "runs/search"), json={"experiment_ids": ["0"], "filter": "metrics.acc >> 1"}, headers=AUTH)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "position" in r.json()["message"]
    r = requests.post(api(kiln, "runs/search"), json={"experiment_ids": ["0"], "max_results": 50001}, headers=AUTH)
    assert r.status_code == 400
    r = requests.post(api(kiln, "runs/search"), json={"experiment_ids": ["0"], "page_token": "garbage!!"}, headers=AUTH)
    assert r.status_code == 400


def test_web_sessions_survive_a_restart_and_end_on_sign_out(tmp_path):
    """A browser session is kept in the store (by its id's hash): the same cookie works after the server restarts,
    its user is looked up again (a user disabled meanwhile loses it), and signing out ends it for good."""
    import re
    from conftest import KilnServer, TOKEN
    server = KilnServer(str(tmp_path)).start()
    try:
        def sign_in(token):
            s = requests.Session()
            page = s.get(server.url + "/ui/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            r = s.post(server.url + "/ui/login", data={"csrf": csrf, "token": token, "next": "/ui/experiments"}, allow_redirects=False)
            assert r.status_code in (302, 303), r.text
            return s.cookies.get("kiln_session")

        def page(cookie):
            return requests.get(server.url + "/ui/experiments", cookies={"kiln_session": cookie}, allow_redirects=False)

        admin_cookie = sign_in(TOKEN)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        requests.post(server.url + "/api/2.0/preview/scim/v2/Users", headers=auth, json={"userName": "web-ada@example.com"}).raise_for_status()
        made = requests.post(server.url + "/api/2.0/token-management/on-behalf-of/tokens", headers=auth,
                             json={"user_name": "web-ada@example.com"}).json()
        ada_cookie = sign_in(made["token_value"])
        assert page(admin_cookie).status_code == 200 and page(ada_cookie).status_code == 200
        stored = [os.path.join(str(tmp_path), f) for f in os.listdir(str(tmp_path)) if f.startswith("kiln.db")]
        assert stored and all(admin_cookie.encode() not in open(f, "rb").read() for f in stored)  # only the id's hash is kept
        server.stop()
        server.start()
        assert page(admin_cookie).status_code == 200, "the session did not survive the restart"
        assert "web-ada@example.com" in page(ada_cookie).text
        # Disabled meanwhile: the restored session looks the user up and ends.
        ada_id = requests.get(server.url + "/api/2.0/preview/scim/v2/Users", headers=auth,
                              params={"filter": 'userName eq "web-ada@example.com"'}).json()["Resources"][0]["id"]
        requests.patch(server.url + f"/api/2.0/preview/scim/v2/Users/{ada_id}", headers=auth, json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}]}).raise_for_status()
        server.stop()
        server.start()
        r = page(ada_cookie)
        assert r.status_code in (302, 303) and "/ui/login" in r.headers["location"]
        # A new user under a deleted user's name does not inherit the old user's session.
        requests.post(server.url + "/api/2.0/preview/scim/v2/Users", headers=auth, json={"userName": "web-bob@example.com"}).raise_for_status()
        bob_token = requests.post(server.url + "/api/2.0/token-management/on-behalf-of/tokens", headers=auth,
                                  json={"user_name": "web-bob@example.com"}).json()["token_value"]
        bob_cookie = sign_in(bob_token)
        bob_id = requests.get(server.url + "/api/2.0/preview/scim/v2/Users", headers=auth,
                              params={"filter": 'userName eq "web-bob@example.com"'}).json()["Resources"][0]["id"]
        requests.delete(server.url + f"/api/2.0/preview/scim/v2/Users/{bob_id}", headers=auth).raise_for_status()
        requests.post(server.url + "/api/2.0/preview/scim/v2/Users", headers=auth, json={"userName": "web-bob@example.com"}).raise_for_status()
        server.stop()
        server.start()
        assert page(bob_cookie).status_code in (302, 303)
        # Signing out ends the session, also for the next server.
        home = requests.get(server.url + "/ui/experiments", cookies={"kiln_session": admin_cookie})
        csrf = re.search(r'name="csrf" value="([^"]+)"', home.text).group(1)
        requests.post(server.url + "/ui/logout", cookies={"kiln_session": admin_cookie}, data={"csrf": csrf}, allow_redirects=False)
        server.stop()
        server.start()
        assert page(admin_cookie).status_code in (302, 303)
    finally:
        server.stop()
