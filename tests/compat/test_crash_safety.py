"""SIGKILL the server in the middle of a stream of log_batch calls, restart it on the same home, and find every
acknowledged write and a clean database."""
import os
import sqlite3
import tempfile
import threading
import time

import requests

from conftest import TOKEN, KilnServer

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_sigkill_during_log_batch_loses_no_acknowledged_write():
    home = tempfile.mkdtemp(prefix="kiln-crash-")
    server = KilnServer(home).start()
    base = f"{server.url}/api/2.0/mlflow"
    exp = requests.post(f"{base}/experiments/create", json={"name": "crash"}, headers=AUTH).json()["experiment_id"]
    run_id = requests.post(f"{base}/runs/create", json={"experiment_id": exp}, headers=AUTH).json()["run"]["info"]["run_id"]

    acknowledged = []
    stop = threading.Event()

    def writer(worker):
        session = requests.Session()
        batch = 0
        while not stop.is_set():
            metrics = [{"key": f"w{worker}", "value": float(batch * 100 + i), "timestamp": batch, "step": batch * 100 + i}
                       for i in range(100)]
            params = [{"key": f"w{worker}_b{batch}", "value": str(batch)}]
            try:
                r = session.post(f"{base}/runs/log-batch", json={"run_id": run_id, "metrics": metrics, "params": params},
                                 headers=AUTH, timeout=5)
            except requests.RequestException:
                return
            if r.status_code == 200:
                acknowledged.append((worker, batch))
            batch += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while len(acknowledged) < 60 and time.time() < deadline:
        time.sleep(0.02)
    server.kill()  # SIGKILL, mid-stream
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) >= 60

    server = KilnServer(home).start()
    try:
        base = f"{server.url}/api/2.0/mlflow"
        run = requests.get(f"{base}/runs/get", params={"run_id": run_id}, headers=AUTH).json()["run"]
        params = {p["key"] for p in run["data"].get("params", [])}
        for worker, batch in acknowledged:
            assert f"w{worker}_b{batch}" in params
        for worker in range(3):
            mine = [b for w, b in acknowledged if w == worker]
            if not mine:
                continue
            history = requests.get(f"{base}/metrics/get-history", params={"run_id": run_id, "metric_key": f"w{worker}"},
                                   headers=AUTH).json()["metrics"]
            steps = {m["step"] for m in history}
            for batch in mine:
                assert all(batch * 100 + i in steps for i in range(100))
            # A batch is all or nothing: no torn batch survives.
            assert len(steps) % 100 == 0
        server.stop()
        db = sqlite3.connect(os.path.join(home, "kiln.db"))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        db.close()
    finally:
        server.stop()
