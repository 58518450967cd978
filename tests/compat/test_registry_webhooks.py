"""Registry webhooks through databricks-sdk: signed deliveries reach a local receiver, a failed delivery is
retried, the test endpoint fires on demand, and every attempt is in the delivery log."""
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.ml import HttpUrlSpec, RegistryWebhookEvent, RegistryWebhookStatus
from mlflow import MlflowClient

from conftest import TOKEN

SECRET = "webhook-secret"


class Receiver:
    """A loopback HTTP server that records POSTs and fails the first `fail_first` of them with a 500."""

    def __init__(self, fail_first=0):
        self.received = []
        self.fail_first = fail_first
        self.calls = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.calls += 1
                if receiver.calls <= receiver.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.received.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"thanks")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count, timeout=20):
        deadline = time.time() + timeout
        while len(self.received) < count and time.time() < deadline:
            time.sleep(0.05)
        return self.received

    def close(self):
        self.server.shutdown()


def signed(headers, body):
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return headers.get("X-Databricks-Signature") == expected


@pytest.fixture()
def model(model_run):
    run_id, name = model_run
    return name, run_id


def test_signed_deliveries_with_retry(kiln, model):
    name, run_id = model
    receiver = Receiver(fail_first=1)
    try:
        registry = WorkspaceClient(host=kiln.url, token=TOKEN, auth_type="pat").model_registry
        hook = registry.create_webhook(
            events=[RegistryWebhookEvent.MODEL_VERSION_CREATED, RegistryWebhookEvent.MODEL_VERSION_TRANSITIONED_STAGE],
            model_name=name, http_url_spec=HttpUrlSpec(url=receiver.url, secret=SECRET), description="ci")
        assert hook.webhook.status == RegistryWebhookStatus.ACTIVE
        assert [h.id for h in registry.list_webhooks(model_name=name)] == [hook.webhook.id]

        client = MlflowClient()
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
        client.transition_model_version_stage(name, "1", "Staging")
        got = receiver.wait_for(2)
        assert len(got) == 2, f"received {len(got)} deliveries"
        payloads = [json.loads(body) for _, body in got]
        assert sorted(p["event"] for p in payloads) == ["MODEL_VERSION_CREATED", "MODEL_VERSION_TRANSITIONED_STAGE"]
        assert all(p["model_name"] == name and p["version"] == "1" and p["webhook_id"] == hook.webhook.id for p in payloads)
        assert all(signed(headers, body) for headers, body in got)
        assert receiver.calls == 3  # the first attempt failed with a 500 and was retried

        log = requests.get(f"{kiln.url}/api/2.0/kiln/registry/webhook-deliveries", params={"webhook_id": hook.webhook.id},
                           headers={"Authorization": f"Bearer {TOKEN}"}).json()["deliveries"]
        assert sorted(d["state"] for d in log) == ["DELIVERED", "DELIVERED"]
        assert sorted(d["attempts"] for d in log) == [1, 2]

        fired = registry.test_registry_webhook(id=hook.webhook.id, event=RegistryWebhookEvent.MODEL_VERSION_CREATED)
        assert fired.status_code == 200 and fired.body == "thanks"
        assert signed(*receiver.received[-1])

        registry.update_webhook(id=hook.webhook.id, status=RegistryWebhookStatus.DISABLED)
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
        time.sleep(1)
        assert len(receiver.received) == 3  # disabled: nothing new
        registry.delete_webhook(id=hook.webhook.id)
        assert list(registry.list_webhooks(model_name=name)) == []
    finally:
        receiver.close()


def test_bad_webhooks_are_rejected(kiln, model):
    name, _ = model
    registry = WorkspaceClient(host=kiln.url, token=TOKEN, auth_type="pat").model_registry
    headers = {"Authorization": f"Bearer {TOKEN}"}
    api = f"{kiln.url}/api/2.0/mlflow/registry-webhooks"
    r = requests.post(f"{api}/create", json={"events": ["NOT_AN_EVENT"], "http_url_spec": {"url": "http://127.0.0.1:1/x"}}, headers=headers)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    r = requests.post(f"{api}/create", json={"events": ["MODEL_VERSION_CREATED"], "http_url_spec": {"url": "ftp://example/x"}}, headers=headers)
    assert r.status_code == 400
    r = requests.post(f"{api}/create", json={"events": ["MODEL_VERSION_CREATED"], "model_name": name + "-missing",
                                             "http_url_spec": {"url": "http://127.0.0.1:1/x"}}, headers=headers)
    assert r.status_code == 404
    assert list(registry.list_webhooks(model_name=name)) == []
