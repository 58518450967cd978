"""Fixtures that start real servers: a `kiln server` on a free loopback port with a fresh home, and (for
side-by-side checks) a real `mlflow server` on SQLite."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILN = os.environ.get("KILN_BIN", os.path.join(ROOT, ".build", "debug", "kiln"))
TOKEN = "kiln-test-admin-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not become healthy")


class KilnServer:
    """A `kiln server` process on a home folder; restartable on the same home."""

    def __init__(self, home, args=(), admin_token=TOKEN):
        self.home = home
        self.args = list(args)
        self.admin_token = admin_token
        self.proc = None
        self.port = None
        self.log = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.port = free_port()
        env = dict(os.environ, KILN_ADMIN_TOKEN=self.admin_token)
        if self.admin_token is None:
            env.pop("KILN_ADMIN_TOKEN")
        self.log = open(os.path.join(self.home, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [KILN, "server", "--host", "127.0.0.1", "--port", str(self.port), "--home", self.home, *self.args],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_healthy(self.url, self.proc)
        return self

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.log:
            self.log.close()


def audited_calls(server):
    """How many API calls the server answered (its request counter, less what the audit log leaves out: health,
    metrics and the web UI's page views) and how many audit events it holds. Checked when a server of the suite stops:
    every call of the compatibility suites has its row."""
    import re
    answered = 0
    auth = {"Authorization": f"Bearer {server.admin_token}"}
    for line in requests.get(server.url + "/metrics", headers=auth, timeout=10).text.splitlines():
        m = re.match(r'kiln_http_requests_total\{(.*)\} (\d+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        route, method = labels.get("route", ""), labels.get("method", "")
        if route in ("/health", "/metrics"):
            continue
        if method in ("GET", "HEAD") and (route in ("/", "/ui", "/favicon.ico") or route.startswith("/ui/")):
            continue
        answered += int(m.group(2))
    r = requests.post(server.url + "/api/2.0/sql/statements", headers={"Authorization": f"Bearer {server.admin_token}"},
                      json={"statement": "SELECT count(*) FROM system.access.audit", "warehouse_id": "kiln", "wait_timeout": "50s"}, timeout=60)
    return answered, int(r.json()["result"]["data_array"][0][0])


def check_audit_complete(server):
    if server.admin_token is None or server.proc is None or server.proc.poll() is not None:
        return
    answered, events = audited_calls(server)
    assert events == answered, f"{answered} API calls answered but {events} audit events (see {server.home}/server.log)"


@pytest.fixture(scope="session")
def kiln_home():
    home = tempfile.mkdtemp(prefix="kiln-compat-")
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def kiln(kiln_home):
    server = KilnServer(kiln_home).start()
    yield server
    try:
        check_audit_complete(server)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def own_kiln():
    """A server of the test module's own, on a fresh home: for tests that change what other modules would see
    (grants, the audit log's chain, the catalog list)."""
    home = tempfile.mkdtemp(prefix="kiln-own-")
    server = KilnServer(home).start()
    yield server
    try:
        check_audit_complete(server)
    finally:
        server.stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture()
def client_env(kiln, monkeypatch):
    """Points the stock mlflow client at Kiln with the admin token."""
    import mlflow
    monkeypatch.setenv("MLFLOW_TRACKING_URI", kiln.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(kiln.url)
    yield kiln
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture(scope="session")
def mlflow_server():
    """A real `mlflow server` on SQLite, for side-by-side answers. Skipped when it cannot start."""
    home = tempfile.mkdtemp(prefix="mlflow-peer-")
    port = free_port()
    log = open(os.path.join(home, "mlflow.log"), "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{home}/mlflow.db", "--artifacts-destination", f"{home}/artifacts"],
        stdout=log, stderr=subprocess.STDOUT, cwd=home)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout=120)
    except RuntimeError as error:
        proc.kill()
        pytest.skip(f"mlflow server did not start: {error}")
    yield url
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture()
def model_run(client_env, tmp_path):
    """A run holding a minimal model folder (`model/MLmodel`) and a fresh registered model name to register it under.
    Returns (run_id, name); the registered model is already created."""
    import random
    import mlflow
    from mlflow import MlflowClient
    mlflow.set_experiment(f"registry-{random.randrange(1 << 30)}")
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "MLmodel"), artifact_path="model")
    name = f"model-{random.randrange(1 << 30)}"
    MlflowClient().create_registered_model(name)
    return run.info.run_id, name
