"""The `kiln` CLI against a running server, and the server process's own contract: --no-auth only on loopback,
graceful shutdown on SIGTERM, and a 2 GiB artifact that streams through without being held in memory."""
import hashlib
import json
import os
import signal
import subprocess
import tempfile
import time

import requests

from conftest import KILN, TOKEN, KilnServer, free_port


def kiln_cli(server, *args):
    env = dict(os.environ, KILN_URL=server.url, KILN_TOKEN=TOKEN)
    return subprocess.run([KILN, *args], env=env, capture_output=True, text=True, timeout=60)


def test_version():
    out = subprocess.run([KILN, "version", "--json"], capture_output=True, text=True)
    assert out.returncode == 0 and "version" in json.loads(out.stdout)


def test_experiments_and_runs_commands(kiln):
    name = f"cli-{time.time_ns()}"
    out = kiln_cli(kiln, "experiments", "create", name, "--json")
    assert out.returncode == 0, out.stderr
    exp_id = json.loads(out.stdout)["experiment_id"]
    listed = json.loads(kiln_cli(kiln, "experiments", "list", "--json").stdout)
    assert name in [e["name"] for e in listed]
    table = kiln_cli(kiln, "experiments", "list").stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "NAME", "STAGE"]
    assert any(name in line for line in table[1:])

    headers = {"Authorization": f"Bearer {TOKEN}"}
    api = f"{kiln.url}/api/2.0/mlflow"
    ids = []
    for i, acc in enumerate([0.2, 0.9, 0.5]):
        run = requests.post(f"{api}/runs/create", json={"experiment_id": exp_id, "run_name": f"r{i}", "start_time": i}, headers=headers).json()
        rid = run["run"]["info"]["run_id"]
        ids.append(rid)
        requests.post(f"{api}/runs/log-metric", json={"run_id": rid, "key": "acc", "value": acc, "timestamp": 1}, headers=headers)
    found = json.loads(kiln_cli(kiln, "runs", "search", "--experiment-id", exp_id, "--filter", "metrics.acc > 0.3",
                                "--order-by", "metrics.acc DESC", "--json").stdout)
    assert [r["info"]["run_name"] for r in found] == ["r1", "r2"]
    listed = json.loads(kiln_cli(kiln, "runs", "list", "--experiment-id", exp_id, "--json").stdout)
    assert [r["info"]["run_name"] for r in listed] == ["r2", "r1", "r0"]
    table = kiln_cli(kiln, "runs", "list", "--experiment-id", exp_id).stdout.splitlines()
    assert table[0].split()[:2] == ["RUN", "ID"] and len(table) == 4
    got = json.loads(kiln_cli(kiln, "runs", "get", ids[1], "--json").stdout)
    assert got["info"]["run_id"] == ids[1]
    shown = kiln_cli(kiln, "runs", "get", ids[1]).stdout
    assert "acc" in shown and "0.9" in shown


def test_cli_errors_say_what_to_do(kiln):
    out = kiln_cli(kiln, "runs", "get", "f" * 32)
    assert out.returncode != 0 and "RESOURCE_DOES_NOT_EXIST" in out.stderr
    env = dict(os.environ, KILN_URL=kiln.url, KILN_TOKEN="wrong")
    out = subprocess.run([KILN, "experiments", "list"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "UNAUTHENTICATED" in out.stderr and "--token" in out.stderr
    env = dict(os.environ, KILN_URL=f"http://127.0.0.1:{free_port()}", KILN_TOKEN=TOKEN)
    out = subprocess.run([KILN, "experiments", "list"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "kiln server" in out.stderr


def test_no_auth_is_refused_off_loopback():
    home = tempfile.mkdtemp(prefix="kiln-noauth-")
    out = subprocess.run([KILN, "server", "--host", "0.0.0.0", "--port", str(free_port()), "--home", home, "--no-auth"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "loopback" in out.stderr


def test_no_auth_on_loopback_serves_without_token():
    home = tempfile.mkdtemp(prefix="kiln-noauth-")
    port = free_port()
    proc = subprocess.Popen([KILN, "server", "--port", str(port), "--home", home, "--no-auth"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from conftest import wait_healthy
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        assert requests.post(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search", json={}).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_generated_admin_token_file_is_private():
    home = tempfile.mkdtemp(prefix="kiln-token-")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KILN_ADMIN_TOKEN"}
    proc = subprocess.Popen([KILN, "server", "--port", str(port), "--home", home], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from conftest import wait_healthy
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        path = os.path.join(home, "admin.token")
        assert os.stat(path).st_mode & 0o777 == 0o600
        token = open(path).read().strip()
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search"
        assert requests.post(url, json={}, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert requests.post(url, json={}).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sigterm_shuts_down_gracefully():
    server = KilnServer(tempfile.mkdtemp(prefix="kiln-term-")).start()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=15) == 0
    server.log.close()


def test_two_gib_artifact_streams_through_without_being_held_in_memory():
    size = 2 * 1024 ** 3
    chunk = hashlib.sha256(b"kiln").digest() * (1024 * 1024 // 32)  # 1 MiB, deterministic
    server = KilnServer(tempfile.mkdtemp(prefix="kiln-big-")).start()
    try:
        url = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/0/big/artifacts/blob.bin"
        headers = {"Authorization": f"Bearer {TOKEN}"}

        def body():
            for _ in range(size // len(chunk)):
                yield chunk

        r = requests.put(url, data=body(), headers=headers, timeout=600)
        assert r.status_code == 200, r.text
        expected = hashlib.sha256()
        for _ in range(size // len(chunk)):
            expected.update(chunk)
        got, received = hashlib.sha256(), 0
        with requests.get(url, headers=headers, stream=True, timeout=600) as response:
            assert response.status_code == 200
            for part in response.iter_content(1024 * 1024):
                got.update(part)
                received += len(part)
        assert received == size
        assert got.hexdigest() == expected.hexdigest()
        with open(f"/proc/{server.proc.pid}/status") as f:
            peak_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        assert peak_kib < 512 * 1024, f"server peak RSS {peak_kib} KiB while streaming 2 GiB"
    finally:
        server.stop()
        import shutil
        shutil.rmtree(server.home, ignore_errors=True)


def test_models_commands(kiln):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    api = f"{kiln.url}/api/2.0/mlflow"
    exp = requests.post(f"{api}/experiments/create", json={"name": f"cli-models-{time.time_ns()}"}, headers=headers).json()["experiment_id"]
    run = requests.post(f"{api}/runs/create", json={"experiment_id": exp}, headers=headers).json()["run"]["info"]
    path = run["artifact_uri"].split("mlflow-artifacts:", 1)[1].lstrip("/")
    r = requests.put(f"{kiln.url}/api/2.0/mlflow-artifacts/artifacts/{path}/model/MLmodel", data=b"flavors: {}\n", headers=headers)
    assert r.status_code == 200
    name = f"cli-model-{time.time_ns()}"
    source = f"runs:/{run['run_id']}/model"
    for expected in ("1", "2"):
        out = kiln_cli(kiln, "models", "register", name, source, "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["version"] == expected
    assert kiln_cli(kiln, "models", "transition", name, "2", "Production", "--archive-existing").returncode == 0
    assert kiln_cli(kiln, "models", "alias", name, "champion", "2").returncode == 0
    versions = json.loads(kiln_cli(kiln, "models", "versions", name, "--json").stdout)
    assert [(v["version"], v["current_stage"]) for v in versions] == [("2", "Production"), ("1", "None")]
    assert versions[0]["aliases"] == ["champion"]
    table = kiln_cli(kiln, "models", "list", "--filter", f"name = '{name}'").stdout.splitlines()
    assert table[0].split()[:2] == ["NAME", "LATEST"] and name in table[1] and "champion=2" in table[1]
    assert json.loads(kiln_cli(kiln, "models", "get", name, "--json").stdout)["name"] == name
    assert kiln_cli(kiln, "models", "delete", name, "1").returncode == 0
    assert [v["version"] for v in json.loads(kiln_cli(kiln, "models", "versions", name, "--json").stdout)] == ["2"]
    assert kiln_cli(kiln, "models", "delete", name).returncode == 0
    out = kiln_cli(kiln, "models", "get", name)
    assert out.returncode != 0 and "RESOURCE_DOES_NOT_EXIST" in out.stderr


def test_a_server_that_cannot_start_says_why_and_exits_cleanly(kiln, tmp_path):
    """Port taken, or the demo cannot be seeded: exit status 1 and a message, not a crash (the store is closed first)."""
    out = subprocess.run([KILN, "server", "--host", "127.0.0.1", "--port", str(kiln.port), "--home", str(tmp_path / "a")],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ, KILN_ADMIN_TOKEN=TOKEN))
    assert out.returncode == 1 and "Address already in use" in out.stderr, (out.returncode, out.stderr[-500:])
    home = tmp_path / "b"
    (home / "warehouse" / "main").mkdir(parents=True)
    (home / "warehouse" / "main" / "demo").write_text("not a folder")
    out = subprocess.run([KILN, "server", "--host", "127.0.0.1", "--port", "0", "--home", str(home), "--demo"],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ, KILN_ADMIN_TOKEN=TOKEN))
    assert out.returncode == 1 and "could not start" in out.stderr, (out.returncode, out.stderr[-500:])
