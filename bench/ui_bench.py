"""Web UI page times with many runs: Kiln's server-rendered pages against the stock MLflow UI, same data.

Seeds one experiment with N runs (10 params, 50 metrics each, one run with a 1,000-step history) through the REST
API, then times, best of 5:
  - Kiln: the server time of each main page (signed-in GET, the whole HTML), and first paint in headless Chromium
    (`performance` paint timing) for the runs page;
  - MLflow (`mlflow server`, `--workers 1`): the search the MLflow UI sends to draw its runs table
    (`runs/search`, 100 runs, all data), and first paint of its runs page;
  - both: first content in headless Chromium, from navigation until the page shows what it is for (the
    experiment's name in the list, a run's name, a text artifact's contents, a model's third version, a version's
    description), on the experiments list, a run, an artifact preview, a model and a model version.

    make release && python3 bench/ui_bench.py --kiln .build/release/kiln --runs 1000 10000
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import requests

from run_tracking_bench import free_port

TOKEN = "ui-bench-token"


def wait(url):
    for _ in range(600):
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


def seed(url, headers, runs):
    s = requests.Session()
    s.headers.update(headers)
    exp = s.post(url + "/api/2.0/mlflow/experiments/create", json={"name": f"ui-bench-{runs}"}).json()["experiment_id"]

    def one(i):
        c = requests.Session()
        c.headers.update(headers)
        run = c.post(url + "/api/2.0/mlflow/runs/create", json={"experiment_id": exp, "start_time": 1_700_000_000_000 + i}).json()["run"]["info"]["run_id"]
        c.post(url + "/api/2.0/mlflow/runs/log-batch", json={"run_id": run,
               "params": [{"key": f"p{k}", "value": str((i * (k + 3)) % 17)} for k in range(10)],
               "metrics": [{"key": f"m{k}", "value": ((i * 31 + k * 7) % 1000) / 1000, "timestamp": 1_700_000_000_000, "step": 0} for k in range(50)]})
        return run

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(one, range(runs)))
    s.post(url + "/api/2.0/mlflow/runs/log-batch", json={"run_id": ids[0], "metrics": [
        {"key": "loss", "value": 1 / (k + 1), "timestamp": 1_700_000_000_000 + k, "step": k} for k in range(1000)]})
    return exp, ids


ARTIFACT_TEXT = "kiln-ui-bench-artifact-line"
VERSION_TEXT = "ui bench version two description"


def seed_registry(url, headers, run_id):
    """A text artifact and a model directory in `run_id`, a model with three versions from it, an alias and a
    described version 2 (the same requests against either server)."""
    s = requests.Session()
    s.headers.update(headers)
    run = s.get(url + "/api/2.0/mlflow/runs/get", params={"run_id": run_id}).json()["run"]["info"]
    base = f"{run['experiment_id']}/{run_id}/artifacts"
    for path, data in [("notes.txt", (ARTIFACT_TEXT + "\n") * 20), ("model/MLmodel", "artifact_path: model\nflavors: {}\n")]:
        r = s.put(url + f"/api/2.0/mlflow-artifacts/artifacts/{base}/{path}", data=data.encode())
        assert r.status_code == 200, r.text
    name = "ui-bench-model"
    s.post(url + "/api/2.0/mlflow/registered-models/create", json={"name": name}).raise_for_status()
    for _ in range(3):
        s.post(url + "/api/2.0/mlflow/model-versions/create", json={"name": name, "source": f"mlflow-artifacts:/{base}/model",
                                                                   "run_id": run_id}).raise_for_status()
    s.post(url + "/api/2.0/mlflow/registered-models/alias", json={"name": name, "alias": "champion", "version": "2"}).raise_for_status()
    s.patch(url + "/api/2.0/mlflow/model-versions/update", json={"name": name, "version": "2", "description": VERSION_TEXT}).raise_for_status()
    return name, run["run_name"]


def best(f, n=5):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def first_paint(driver, url, selector):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait
    times = []
    for _ in range(3):
        driver.get("about:blank")  # a full load each time: a hash-only change would not reload a single-page app
        t = time.perf_counter()
        driver.get(url)
        WebDriverWait(driver, 60).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector)))
        times.append(time.perf_counter() - t)
    return min(times)


def first_content(driver, url, text):
    """Best of 3: navigation until the page's text contains `text`."""
    from selenium.webdriver.support.ui import WebDriverWait
    times = []
    for _ in range(3):
        driver.get("about:blank")
        t = time.perf_counter()
        driver.get(url)
        WebDriverWait(driver, 60, poll_frequency=0.01).until(
            lambda d: d.execute_script("return !!document.body && document.body.innerText.includes(arguments[0])", text))
        times.append(time.perf_counter() - t)
    return min(times)


def content_pages(driver, root, exp, run_id, run_name, model, hash_routes):
    """First content of the pages beside the runs table; `hash_routes` for MLflow's `#/...` routes."""
    if hash_routes:
        paths = {"experiments": ("/#/experiments", f"ui-bench-"),
                 "run": (f"/#/experiments/{exp}/runs/{run_id}", run_name),
                 "text artifact": (f"/#/experiments/{exp}/runs/{run_id}/artifacts/notes.txt", ARTIFACT_TEXT),
                 "model": (f"/#/models/{model}", "Version 3"),
                 "model version": (f"/#/models/{model}/versions/2", VERSION_TEXT)}
    else:
        paths = {"experiments": ("/ui/experiments", f"ui-bench-"),
                 "run": (f"/ui/experiments/{exp}/runs/{run_id}", run_name),
                 "text artifact": (f"/ui/experiments/{exp}/runs/{run_id}/artifacts?path=notes.txt", ARTIFACT_TEXT),
                 "model": (f"/ui/models/{model}", "Version 3"),
                 "model version": (f"/ui/models/{model}/versions/2", VERSION_TEXT)}
    out = {}
    for name, (path, text) in paths.items():
        try:
            out[name] = round(first_content(driver, root + path, text), 3)
        except Exception as error:  # a page that never shows its content is reported, not fatal
            out[name] = f"not shown ({type(error).__name__})"
    return out


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"]:
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=".build/release/kiln")
    parser.add_argument("--runs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--skip-mlflow", action="store_true")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="ui-bench-")
    driver = browser()
    out = {}
    try:
        for n in args.runs:
            port = free_port()
            kiln = subprocess.Popen([os.path.abspath(args.kiln), "server", "--port", str(port), "--home", os.path.join(work, f"kiln-{n}")],
                                    env=dict(os.environ, KILN_ADMIN_TOKEN=TOKEN, KILN_LOG_LEVEL="warning"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            wait(url)
            t = time.perf_counter()
            exp, ids = seed(url, {"Authorization": f"Bearer {TOKEN}"}, n)
            seeded = time.perf_counter() - t
            model, run_name = seed_registry(url, {"Authorization": f"Bearer {TOKEN}"}, ids[0])
            s = requests.Session()
            page = s.get(url + "/ui/login").text
            csrf = page.split('name="csrf" value="')[1].split('"')[0]
            s.post(url + "/ui/login", data={"csrf": csrf, "token": TOKEN})
            pages = {"experiments": "/ui/experiments", "runs (100 of N, 60 columns)": f"/ui/experiments/{exp}",
                     "runs filtered + sorted by a metric": f"/ui/experiments/{exp}?filter=metrics.m3+%3E+0.5&order=metrics.m7+DESC",
                     "runs sorted by a metric's min": f"/ui/experiments/{exp}?order=min%28metrics.m7%29+DESC",
                     "runs grouped by a param (all N)": f"/ui/experiments/{exp}?group=params.p3",
                     "run (1,000-step chart)": f"/ui/experiments/{exp}/runs/{ids[0]}",
                     "compare 20 runs": f"/ui/experiments/{exp}/compare?" + "&".join(f"runs={i}" for i in ids[:20]),
                     "text artifact": f"/ui/experiments/{exp}/runs/{ids[0]}/artifacts?path=notes.txt",
                     "model (3 versions)": f"/ui/models/{model}", "model version": f"/ui/models/{model}/versions/2"}
            kiln_times = {}
            for name, path in pages.items():
                assert s.get(url + path).status_code == 200, path
                kiln_times[name] = best(lambda: s.get(url + path))
            driver.get(url + "/ui/login")
            driver.find_element("css selector", '[data-testid="token"]').send_keys(TOKEN)
            driver.find_element("css selector", '[data-testid="sign-in"]').click()
            time.sleep(0.5)
            kiln_paint = first_paint(driver, url + f"/ui/experiments/{exp}", '[data-testid="run-row"]')
            kiln_content = content_pages(driver, url, exp, ids[0], run_name, model, hash_routes=False)
            kiln.terminate()
            kiln.wait()
            result = {"seed_s": round(seeded, 1), "kiln_page_ms": {k: round(v * 1000, 1) for k, v in kiln_times.items()},
                      "kiln_runs_page_first_rows_s": round(kiln_paint, 3), "kiln_first_content_s": kiln_content}
            if not args.skip_mlflow:
                port = free_port()
                mlflow = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                                           "--backend-store-uri", f"sqlite:///{work}/mlflow-{n}.db", "--artifacts-destination", f"{work}/mlflow-art-{n}"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                murl = f"http://127.0.0.1:{port}"
                wait(murl)
                mexp, mids = seed(murl, {}, n)
                mmodel, mrun_name = seed_registry(murl, {}, mids[0])
                search = lambda: requests.post(murl + "/ajax-api/2.0/mlflow/runs/search", json={"experiment_ids": [mexp], "max_results": 100,
                                                                                              "order_by": ["attributes.start_time DESC"]})
                result["mlflow_runs_search_ms"] = round(best(search) * 1000, 1)
                result["mlflow_runs_page_first_rows_s"] = round(first_paint(driver, murl + f"/#/experiments/{mexp}/runs", '.ag-center-cols-container [role="row"]'), 3)
                result["first_rows_ratio"] = round(result["mlflow_runs_page_first_rows_s"] / kiln_paint, 2)
                mlflow_content = content_pages(driver, murl, mexp, mids[0], mrun_name, mmodel, hash_routes=True)
                result["mlflow_first_content_s"] = mlflow_content
                result["first_content_ratio"] = {k: round(v / kiln_content[k], 2) for k, v in mlflow_content.items()
                                                 if isinstance(v, float) and isinstance(kiln_content.get(k), float)}
                mlflow.terminate()
                mlflow.wait()
            out[n] = result
            print(json.dumps({n: result}, indent=2), flush=True)
    finally:
        driver.quit()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
