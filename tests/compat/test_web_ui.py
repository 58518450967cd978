"""The web UI in a real browser (Debian's chromium + chromedriver, PyPI selenium), on a Kiln server seeded only
through the stock mlflow client: sign-in, the experiment list, an experiment's runs (paging, filter DSL, nested
runs), a run page (metric last/min/max over the whole history), the links the mlflow client prints, CSRF and
sign-out, escaping, and no console error or failed request on any page. Screenshots go to $KILN_TEST_ARTIFACTS
(default: the test's temporary folder)."""
import os
import shutil
import time
import uuid

import pytest
import requests

from conftest import TOKEN

PAGE_SIZE = 100


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("chromium and chromium-driver are needed: run scripts/install-deps.sh test")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


@pytest.fixture(scope="module")
def seeded(kiln):
    """An experiment with 130 runs (acc = i / 130), one of them with a 200-step history and 50 children (a tuning parent), and a run
    whose name is markup."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param
    os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN
    client = MlflowClient(tracking_uri=kiln.url)
    name = f"ui-{uuid.uuid4().hex[:8]}"
    exp = client.create_experiment(name)
    runs = []
    for i in range(130):
        run = client.create_run(exp, run_name=f"run-{i:03d}", start_time=1_700_000_000_000 + i * 1000)
        client.log_batch(run.info.run_id, metrics=[Metric("acc", i / 130, 1_700_000_000_000, 0)],
                         params=[Param("model", "tree" if i % 2 else "linear"), Param("depth", str(i % 7))])
        client.set_terminated(run.info.run_id, end_time=1_700_000_000_000 + i * 1000 + 1500)
        runs.append(run.info.run_id)
    parent = client.create_run(exp, run_name="tuning", start_time=1_800_000_000_000).info.run_id
    history = [((k * 37) % 101) / 10.0 for k in range(200)]  # min 0.0, max 10.0, last history[-1]
    client.log_batch(parent, metrics=[Metric("loss", v, 1_800_000_000_000 + k, k) for k, v in enumerate(history)])
    children = [client.create_run(exp, run_name=f"trial-{k}", tags={"mlflow.parentRunId": parent},
                                  start_time=1_800_000_000_000 + k).info.run_id for k in range(50)]
    markup = client.create_run(exp, run_name="<script>window.__xss = 1</script>", start_time=1_600_000_000_000).info.run_id
    # Artifacts of the tuning run: text, JSON, CSV, HTML, an image, a 20 MB file in a folder.
    import base64
    import tempfile
    client.log_text(parent, "hello artifacts\n", "notes/readme.txt")
    client.log_dict(parent, {"alpha": 0.5, "layers": [64, 32]}, "config.json")
    client.log_text(parent, 'city,count\n"Paris, FR",3\nOslo,7\n', "data/table.csv")
    client.log_text(parent, "<html><body><h2>report</h2></body></html>", "report.html")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "pixel.png"), "wb") as f:
            f.write(base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="))
        with open(os.path.join(tmp, "big.bin"), "wb") as f:
            f.write(os.urandom(20 * 1024 * 1024))
        client.log_artifact(parent, os.path.join(tmp, "pixel.png"))
        client.log_artifact(parent, os.path.join(tmp, "big.bin"), "blobs")
    # A job (through databricks-sdk): prep → train; the first run's train fails, then a repair fixes it.
    import datetime
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import SparkPythonTask, Task, TaskDependency
    w = WorkspaceClient(host=kiln.url, token=TOKEN, auth_type="pat")
    work = tempfile.mkdtemp(prefix="ui-job-")
    marker = os.path.join(work, "fixed")
    with open(os.path.join(work, "prep.py"), "w") as f:
        f.write("print('prepared 42 rows')\n")
    with open(os.path.join(work, "train.py"), "w") as f:
        f.write(f"import os\nif not os.path.exists({marker!r}):\n    raise SystemExit('no features yet')\nprint('trained')\n")
    job = w.jobs.create(name=f"ui-job-{name}", tasks=[
        Task(task_key="prep", spark_python_task=SparkPythonTask(python_file=os.path.join(work, "prep.py"))),
        Task(task_key="train", depends_on=[TaskDependency(task_key="prep")], spark_python_task=SparkPythonTask(python_file=os.path.join(work, "train.py")))])
    wait = datetime.timedelta(minutes=3)
    run_id = w.jobs.run_now(job.job_id).response.run_id
    w.jobs.wait_get_run_job_terminated_or_skipped(run_id, timeout=wait)
    open(marker, "w").close()
    w.jobs.repair_run(run_id, rerun_all_failed_tasks=True)
    w.jobs.wait_get_run_job_terminated_or_skipped(run_id, timeout=wait)
    # A Delta table with two versions (through the SQL statements API).
    schema = f"ui_{name.replace('-', '_')}"
    for sql in [f"CREATE SCHEMA main.{schema}", f"CREATE TABLE main.{schema}.sales AS SELECT * FROM VALUES (1, 'north'), (2, 'south'), (3, NULL) AS v(id, region)",
                f"INSERT INTO main.{schema}.sales VALUES (4, 'east'), (5, 'west')"]:
        r = w.statement_execution.execute_statement(statement=sql, warehouse_id="kiln", wait_timeout="30s")
        assert r.status.state.value == "SUCCEEDED", (sql, r.status)
    # A model trained by Kiln on a small table, served with an inference table, queried three times.
    from databricks.sdk.service.serving import AutoCaptureConfigInput, EndpointCoreConfigInput, ServedEntityInput
    from test_learn import kiln_cli
    rows = ", ".join(f"({k / 20}, {(k * 7 % 20) / 20}, {int(k >= 10)})" for k in range(20))
    r = w.statement_execution.execute_statement(
        statement=f"CREATE TABLE main.{schema}.train AS SELECT * FROM VALUES {rows} AS v(a, b, label)", warehouse_id="kiln", wait_timeout="30s")
    assert r.status.state.value == "SUCCEEDED", r.status
    served_model = f"ui_clf_{schema}"
    kiln_cli("train", "--url", kiln.url, "--table", f"main.{schema}.train", "--target", "label", "--algorithm", "logistic",
             "--features", "a,b", "--register", served_model, "--json")
    endpoint = f"ui-ep-{name}"
    w.serving_endpoints.create_and_wait(name=endpoint, config=EndpointCoreConfigInput(
        name=endpoint, served_entities=[ServedEntityInput(entity_name=served_model, entity_version="1", workload_size="Small", scale_to_zero_enabled=False)],
        auto_capture_config=AutoCaptureConfigInput(catalog_name="main", schema_name=schema, table_name_prefix="ui_ep", enabled=True)))
    for k in range(3):
        w.serving_endpoints.query(endpoint, dataframe_records=[{"a": k / 3, "b": 0.5}])
    model = f"ui model {name}"
    client.create_registered_model(model, description="churn model")
    for source_run in runs[:2]:
        client.create_model_version(model, f"s3://bucket/{source_run}/model", run_id=source_run)
    client.set_registered_model_alias(model, "champion", "2")
    client.transition_model_version_stage(model, "1", "Staging")
    w.model_registry.create_transition_request(name=model, version="2", stage="Production", comment="ship it")
    # A second job whose only run fails until a file exists: repaired from the page.
    fix = os.path.join(work, "fix")
    with open(os.path.join(work, "flaky.py"), "w") as f:
        f.write(f"import os\nif not os.path.exists({fix!r}):\n    raise SystemExit('not yet')\n")
    flaky_job = w.jobs.create(name=f"ui-flaky-{name}", tasks=[Task(task_key="only", spark_python_task=SparkPythonTask(python_file=os.path.join(work, "flaky.py")))])
    flaky_run = w.jobs.run_now(flaky_job.job_id).response.run_id
    w.jobs.wait_get_run_job_terminated_or_skipped(flaky_run, timeout=wait)
    return {"name": name, "exp": exp, "runs": runs, "parent": parent, "history": history, "children": children, "markup": markup,
            "model": model, "job": job.job_id, "job_run": run_id, "schema": schema, "endpoint": endpoint, "served_model": served_model,
            "flaky_job": flaky_job.job_id, "flaky_run": flaky_run, "fix": fix}


@pytest.fixture(scope="module")
def browser(kiln, tmp_path_factory):
    driver = _driver()
    shots = os.environ.get("KILN_TEST_ARTIFACTS") or str(tmp_path_factory.mktemp("screenshots"))
    os.makedirs(shots, exist_ok=True)
    driver.shots = shots
    yield driver
    driver.quit()


def shot(driver, name):
    driver.save_screenshot(os.path.join(driver.shots, f"ui-{name}.png"))


def console_errors(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def by(driver, testid):
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def navigate(driver, element):
    """Clicks (or submits) `element` and waits until the next page has replaced this one."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait
    html = driver.find_element("tag name", "html")
    element.click()

    def replaced(_):
        # Chromedriver reports a node of an unloaded page as stale, or (racing the unload) as "not in the document".
        try:
            html.is_enabled()
            return False
        except WebDriverException:
            return True

    WebDriverWait(driver, 10).until(replaced)
    settle(driver)


def settle(driver, url=None):
    """Waits until the page (after any script redirect, like `/`'s) has loaded: at `url` when given."""
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.readyState") == "complete"
                                    and (url is None or d.current_url == url))


def open_link(driver, url, lands_on):
    """Opens a link that `/` forwards with a script (the mlflow client's `#/...` links) and waits for the page."""
    driver.get(url)
    settle(driver, lands_on)


def sign_in(driver, base, token):
    by(driver, "token")[0].send_keys(token)
    navigate(driver, by(driver, "sign-in")[0])


def open_signed_in(driver, base, url):
    """Opens `url`, signing in first when the browser has no session (the tests share one browser)."""
    driver.get(url)
    if "/ui/login" in driver.current_url:
        sign_in(driver, base, TOKEN)
        driver.get(url)


def test_pages_are_refused_without_a_session(kiln, seeded):
    for path in ["/ui/experiments", f"/ui/experiments/{seeded['exp']}", f"/ui/experiments/{seeded['exp']}/runs/{seeded['parent']}",
                 "/ui/models", f"/ui/runs/{seeded['parent']}"]:
        r = requests.get(kiln.url + path, allow_redirects=False)
        assert r.status_code == 303 and r.headers["Location"].startswith("/ui/login?next="), (path, r.status_code)
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    # A bearer token is not a session, and the API is not opened by the UI's paths.
    assert requests.get(kiln.url + "/ui/experiments", headers={"Authorization": f"Bearer {TOKEN}"}, allow_redirects=False).status_code == 303
    assert requests.get(kiln.url + "/api/2.0/mlflow/experiments/search").status_code == 401
    # A sign-in without the form's CSRF value is refused; so is a wrong token; an off-site `next` is ignored.
    assert requests.post(kiln.url + "/ui/login", data={"token": TOKEN}, allow_redirects=False).status_code == 403
    s = requests.Session()
    page = s.get(kiln.url + "/ui/login?next=//evil.example/x").text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    assert s.post(kiln.url + "/ui/login", data={"csrf": csrf, "token": "wrong", "next": "/ui/experiments"}, allow_redirects=False).status_code == 401
    page = s.get(kiln.url + "/ui/login").text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    r = s.post(kiln.url + "/ui/login", data={"csrf": csrf, "token": TOKEN, "next": "//evil.example/x"}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == "/ui/experiments"
    cookie = r.headers["Set-Cookie"]
    assert "kiln_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert TOKEN not in s.get(kiln.url + "/ui/experiments").text  # never rendered into a page
    # Sign-out needs the session's CSRF token.
    assert s.post(kiln.url + "/ui/logout", data={}, allow_redirects=False).status_code == 403
    assert s.post(kiln.url + f"/ui/jobs/{seeded['job']}/run-now", data={"csrf": "forged"}, allow_redirects=False).status_code == 403
    assert s.post(kiln.url + "/ui/sql", data={"statement": f"DROP TABLE main.{seeded['schema']}.sales"}, allow_redirects=False).status_code == 403
    from urllib.parse import quote
    for path, form in [(f"/ui/models/{quote(seeded['model'])}/versions/2/actions", {"action": "approve", "stage": "Production"}),
                       (f"/ui/jobs/{seeded['flaky_job']}/runs/{seeded['flaky_run']}/repair", {})]:
        assert s.post(kiln.url + path, data=form, allow_redirects=False).status_code == 403, path
    assert s.get(kiln.url + "/ui/experiments", allow_redirects=False).status_code == 200
    assert requests.get(kiln.url + "/favicon.ico").status_code == 200


def test_sign_in_browse_and_sign_out_in_a_browser(kiln, seeded, browser):
    from urllib.parse import quote

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    base = kiln.url
    d = browser
    d.get(base + "/ui/experiments")
    assert "/ui/login" in d.current_url
    shot(d, "login")
    sign_in(d, base, "not-the-token")
    assert by(d, "login-error") and "not valid" in by(d, "login-error")[0].text
    # The refused sign-in answers 401, which the console reports; nothing else may be there.
    assert all("401" in e["message"] for e in console_errors(d))
    sign_in(d, base, TOKEN)
    assert d.current_url == base + "/ui/experiments", d.current_url
    assert len(d.find_elements(By.TAG_NAME, "h1")) == 1
    box = by(d, "experiment-search")[0]
    box.send_keys(seeded["name"])
    navigate(d, d.find_element(By.CSS_SELECTOR, "form.search button"))
    rows = by(d, "experiment-row")
    assert len(rows) == 1 and seeded["name"] in rows[0].text
    shot(d, "experiments")

    # The runs table: 100 a page, newest first, nested runs under their parent, one column per param and metric.
    navigate(d, rows[0].find_element(By.TAG_NAME, "a"))
    assert d.current_url.startswith(f"{base}/ui/experiments/{seeded['exp']}")
    rows = by(d, "run-row")
    assert len(rows) == PAGE_SIZE
    ids = [r.get_attribute("data-run-id") for r in rows]
    assert ids[:51] == [seeded["parent"], *reversed(seeded["children"])], ids[:51]  # children follow their parent, newest first
    headers = [th.text for th in d.find_elements(By.CSS_SELECTOR, '[data-testid="runs"] thead th')]
    assert "model" in headers and "acc" in headers and "loss" in headers
    # The tuning parent's 50 children start collapsed under it; its button shows and hides them.
    toggle = by(d, "toggle-children")[0]
    assert toggle.get_attribute("data-run") == seeded["parent"] and toggle.get_attribute("aria-expanded") == "false"
    child_rows = [r for r in by(d, "run-row") if r.get_attribute("data-parent") == seeded["parent"]]
    assert len(child_rows) == 50 and not any(r.is_displayed() for r in child_rows)
    toggle.click()
    assert all(r.is_displayed() for r in child_rows) and toggle.get_attribute("aria-expanded") == "true"
    shot(d, "runs-expanded")
    toggle.click()
    assert not any(r.is_displayed() for r in child_rows)
    shot(d, "runs")
    navigate(d, by(d, "next-page")[0])
    later = [r.get_attribute("data-run-id") for r in by(d, "run-row")]
    assert len(later) == 130 + 1 + 50 + 1 - PAGE_SIZE and not set(later) & set(ids)
    assert seeded["markup"] in later
    assert d.execute_script("return window.__xss === undefined")  # a run name is text, never markup
    assert any("<script>window.__xss = 1</script>" in r.text for r in by(d, "run-row"))

    # Compare: tick runs, see only what differs, one line per run in the parallel chart, one point per run.
    d.get(f"{base}/ui/experiments/{seeded['exp']}?filter=" + quote("attributes.run_name LIKE 'run-12%'"))
    boxes = by(d, "select-run")
    assert len(boxes) == 10
    for box in boxes[:4]:
        box.click()
    navigate(d, by(d, "compare-selected")[0])
    assert "/compare?" in d.current_url
    assert [r.get_attribute("data-key") for r in by(d, "compare-params-row")] == ["depth", "model"]
    assert [r.get_attribute("data-key") for r in by(d, "compare-metrics-row")] == ["acc"]
    assert len(by(d, "parallel-path")) == 4 and len(by(d, "scatter-point")) == 4
    shot(d, "compare")
    navigate(d, by(d, "toggle-all")[0])
    assert len(by(d, "compare-params-row")) == 2  # nothing identical to add among params
    d.get(f"{base}/ui/experiments/{seeded['exp']}/compare?runs={seeded['runs'][0]}")
    assert by(d, "error")
    console_errors(d)  # the 400 above is deliberate

    # The filter box takes MLflow's search syntax; a bad filter says what is wrong.
    d.get(f"{base}/ui/experiments/{seeded['exp']}")
    f = by(d, "run-filter")[0]
    f.send_keys("metrics.acc > 0.9 and params.model = 'tree'")
    navigate(d, by(d, "apply-filter")[0])
    expected = {seeded["runs"][i] for i in range(130) if i / 130 > 0.9 and i % 2}
    assert {r.get_attribute("data-run-id") for r in by(d, "run-row")} == expected
    f = by(d, "run-filter")[0]
    f.clear()
    f.send_keys("metrics.acc >> 1")
    navigate(d, by(d, "apply-filter")[0])
    assert by(d, "error") and not by(d, "run-row")
    shot(d, "filter-error")

    # The link the mlflow client prints opens the run page; metrics show last, min and max over the history.
    open_link(d, f"{base}/#/experiments/{seeded['exp']}/runs/{seeded['parent']}", f"{base}/ui/experiments/{seeded['exp']}/runs/{seeded['parent']}")
    assert by(d, "run-id")[0].text == seeded["parent"]
    row = d.find_element(By.CSS_SELECTOR, '[data-testid="metric-row"][data-key="loss"]')
    history = seeded["history"]
    cells = {t: row.find_element(By.CSS_SELECTOR, f'[data-testid="metric-{t}"]').text for t in ["last", "min", "max"]}
    assert cells == {"last": f"{history[-1]:g}", "min": f"{min(history):g}", "max": f"{max(history):g}"}, cells
    assert len(by(d, "child-run")) == 50
    # One chart per metric: axes and one path through every (step, value) of the 200-point history.
    charts = by(d, "metric-chart")
    assert [c.get_attribute("data-key") for c in charts] == ["loss"]
    paths = charts[0].find_elements(By.CSS_SELECTOR, '[data-testid="series"]')
    assert len(paths) == 1 and len(charts[0].find_elements(By.CSS_SELECTOR, '[data-testid="axes"]')) == 1
    assert paths[0].get_attribute("d").count("L") == len(history) - 1
    raw_path = paths[0].get_attribute("d")
    shot(d, "run")
    # Chart options redraw on the server: relative time, smoothing; log scale refused for values ≤ 0 (it says so).
    d.get(f"{base}/ui/experiments/{seeded['exp']}/runs/{seeded['parent']}?x=relative&scale=log&smooth=0.9")
    chart = by(d, "metric-chart")[0]
    assert chart.get_attribute("data-axis") == "relative" and chart.get_attribute("data-smooth") == "0.9"
    assert chart.get_attribute("data-scale") == "linear" and "values ≤ 0" in chart.text
    assert by(d, "x-label")[0].text.startswith("since start")
    assert by(d, "series")[0].get_attribute("d") != raw_path
    d.get(f"{base}/ui/experiments/{seeded['exp']}/runs/{seeded['parent']}")
    navigate(d, by(d, "child-run")[0].find_element(By.TAG_NAME, "a"))
    assert by(d, "parent-run")[0].text == seeded["parent"]
    open_link(d, f"{base}/#/experiments/{seeded['exp']}", f"{base}/ui/experiments/{seeded['exp']}")
    # Artifacts: a listing, previews by kind, and the 20 MB file never fetched by a page.
    d.get(f"{base}/ui/experiments/{seeded['exp']}/runs/{seeded['parent']}")
    navigate(d, by(d, "artifacts-link")[0])
    listed = [r.get_attribute("data-path") for r in by(d, "artifact-row")]
    assert listed == ["blobs", "data", "notes", "config.json", "pixel.png", "report.html"], listed
    art = f"{base}/ui/experiments/{seeded['exp']}/runs/{seeded['parent']}/artifacts"
    d.get(art + "?path=config.json")
    assert '"alpha"' in by(d, "text-preview")[0].text and "64" in by(d, "text-preview")[0].text
    d.get(art + "?path=data/table.csv")
    cells = [td.text for td in d.find_elements(By.CSS_SELECTOR, '[data-testid="csv-preview"] td')]
    assert cells == ["Paris, FR", "3", "Oslo", "7"], cells
    d.get(art + "?path=notes/readme.txt")
    assert by(d, "text-preview")[0].text == "hello artifacts"
    assert [a.text for a in by(d, "breadcrumbs")[0].find_elements(By.TAG_NAME, "a")][-3:] == ["artifacts", "notes", "readme.txt"]
    d.get(art + "?path=pixel.png")
    assert d.execute_script("var i = document.querySelector('[data-testid=image-preview]'); return i.complete && i.naturalWidth") == 1
    d.get(art + "?path=report.html")
    frame = by(d, "html-preview")[0]
    assert frame.get_attribute("sandbox") == ""
    d.get(art + "?path=blobs/big.bin")
    assert by(d, "too-large") and by(d, "download")
    fetched = d.execute_script("return performance.getEntriesByType('resource').map(function (e) { return e.name; })")
    assert not [u for u in fetched if "big.bin" in u], fetched
    shot(d, "artifact-too-large")
    cookies = {c["name"]: c["value"] for c in d.get_cookies()}
    raw = requests.get(art + "/raw?path=report.html", cookies=cookies)
    assert raw.status_code == 200 and "sandbox" in raw.headers["Content-Security-Policy"] and raw.headers["X-Content-Type-Options"] == "nosniff"
    assert requests.get(art + "?path=../../../etc/passwd", cookies=cookies, allow_redirects=False).status_code in (400, 404)
    assert requests.get(art + "/raw?path=report.html", allow_redirects=False).status_code == 303  # no session, no file

    # Jobs: the list, the run matrix, a run's DAG, timeline and output; run now from the page.
    d.get(base + "/ui/jobs")
    assert any(f"ui-job-{seeded['name']}" in r.text for r in by(d, "job-row"))
    job, job_run = seeded["job"], seeded["job_run"]
    d.get(f"{base}/ui/jobs/{job}")
    assert [r.get_attribute("data-task") for r in by(d, "matrix-row")] == ["prep", "train"]
    assert [c.get_attribute("data-state") for c in by(d, "matrix-cell")] == ["SUCCESS", "SUCCESS"]  # train's newest attempt: the repair
    d.get(f"{base}/ui/jobs/{job}/runs/{job_run}")
    nodes = {n.get_attribute("data-task"): n.get_attribute("data-state") for n in by(d, "dag-node")}
    assert nodes == {"prep": "SUCCESS", "train": "SUCCESS"} and len(by(d, "dag-edge")) == 1
    assert len(by(d, "timeline-bar")) == 3  # prep, train's failed attempt, train's repair
    assert by(d, "repairs")[0].text == "1"
    logs = {o.get_attribute("data-task"): o for o in by(d, "task-output")}
    assert "prepared 42 rows" in logs["prep"].get_attribute("textContent")
    shot(d, "job-run")
    d.get(f"{base}/ui/jobs/{job}")
    navigate(d, by(d, "run-now")[0])
    assert f"/ui/jobs/{job}/runs/" in d.current_url and not d.current_url.endswith(f"/{job_run}")
    for _ in range(120):
        if "SUCCESS" in by(d, "run-state")[0].text:
            break
        time.sleep(0.5)
        d.refresh()
    assert "SUCCESS" in by(d, "run-state")[0].text
    d.get(f"{base}/ui/jobs/{job}")
    assert len(by(d, "matrix-cell")) == 4

    # Data: catalog → schema → table (columns, sample rows, history, time travel) and the SQL editor.
    schema = seeded["schema"]
    d.get(base + "/ui/data")
    navigate(d, [c for c in by(d, "catalog") if c.text == "main"][0].find_element(By.TAG_NAME, "a"))
    navigate(d, [c for c in by(d, "schema") if c.text == schema][0].find_element(By.TAG_NAME, "a"))
    navigate(d, [t for t in by(d, "table") if t.text == "sales"][0].find_element(By.TAG_NAME, "a"))
    cols = [td.text for td in d.find_elements(By.CSS_SELECTOR, '[data-testid="columns"] tbody td')]
    assert cols[:2] == ["id", "bigint"] and cols[3:5] == ["region", "string"], cols
    assert len(d.find_elements(By.CSS_SELECTOR, '[data-testid="sample"] tbody tr')) == 5
    assert "NULL" in [td.text for td in d.find_elements(By.CSS_SELECTOR, '[data-testid="sample"] td.null')]
    assert len(by(d, "history-row")) == 2
    shot(d, "table")
    navigate(d, [r for r in by(d, "history-row") if r.text.startswith("0")][0].find_element(By.TAG_NAME, "a"))
    assert len(d.find_elements(By.CSS_SELECTOR, '[data-testid="sample"] tbody tr')) == 3 and by(d, "latest")
    d.get(base + "/ui/sql")
    by(d, "sql-text")[0].send_keys(f"SELECT region, count(*) AS n FROM main.{schema}.sales WHERE id > 1 GROUP BY region ORDER BY region")
    navigate(d, by(d, "sql-run")[0])
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in d.find_elements(By.CSS_SELECTOR, '[data-testid="sql-result"] tbody tr')]
    assert rows == [["NULL", "1"], ["east", "1"], ["south", "1"], ["west", "1"]], rows
    assert "4 rows" in by(d, "sql-summary")[0].text and len(by(d, "sql-history")) == 1
    shot(d, "sql")
    text = by(d, "sql-text")[0]
    text.clear()
    text.send_keys("SELECT nope FROM nowhere")
    navigate(d, by(d, "sql-run")[0])
    assert by(d, "error") and len(by(d, "sql-history")) == 2

    # Serving: the list, an endpoint's entities with traffic and counts, its inference table, the query box.
    d.get(base + "/ui/endpoints")
    assert any(seeded["endpoint"] in r.text for r in by(d, "endpoint-row"))
    d.get(f"{base}/ui/endpoints/{seeded['endpoint']}")
    row = by(d, "entity-row")[0]
    assert row.find_element(By.CSS_SELECTOR, '[data-testid="requests"]').text == "3"
    assert row.find_element(By.CSS_SELECTOR, '[data-testid="traffic-share"]').text == "100%"
    assert by(d, "inference-table")[0].text == f"main.{schema}.ui_ep_payload"
    box = by(d, "query-body")[0]
    box.clear()
    box.send_keys('{"dataframe_records": [{"a": 0.9, "b": 0.1}, {"a": 0.0, "b": 0.2}]}')
    navigate(d, by(d, "query-send")[0])
    import json as _json
    answer = _json.loads(by(d, "query-answer")[0].text)
    assert len(answer["predictions"]) == 2 and by(d, "query-meta")[0].text.startswith("200")
    assert by(d, "entity-row")[0].find_element(By.CSS_SELECTOR, '[data-testid="requests"]').text == "4"
    box = by(d, "query-body")[0]
    box.clear()
    box.send_keys('{"dataframe_records": [{"nope": 1}]}')
    navigate(d, by(d, "query-send")[0])
    assert by(d, "error")
    # Traffic over time: requests and errors per minute, p50/p99 per minute; the same total as the counts.
    charts = by(d, "traffic-charts")[0].find_elements(By.CSS_SELECTOR, '[data-testid="metric-chart"]')
    assert [c.get_attribute("data-key") for c in charts] == ["requests / min", "latency ms"]
    assert [p.get_attribute("data-name") for p in charts[0].find_elements(By.CSS_SELECTOR, '[data-testid="series"]')] == ["requests", "errors"]
    assert [p.get_attribute("data-name") for p in charts[1].find_elements(By.CSS_SELECTOR, '[data-testid="series"]')] == ["p50", "p99"]
    counted = sum(int(r.find_element(By.CSS_SELECTOR, '[data-testid="requests"]').text) for r in by(d, "entity-row"))
    assert by(d, "traffic-summary")[0].text.startswith(f"{counted} requests"), (counted, by(d, "traffic-summary")[0].text)
    shot(d, "endpoint")

    # The header's search finds every kind of thing by name.
    box = by(d, "global-search")[0]
    box.send_keys(seeded["name"] + "\n")
    WebDriverWait(d, 10).until(lambda drv: "/ui/search" in drv.current_url)
    kinds = {h.get_attribute("data-kind") for h in by(d, "search-hit")}
    assert kinds == {"Experiments", "Models", "Jobs", "Serving endpoints"}, kinds
    d.get(base + "/ui/search?q=sale")
    assert f"main.{schema}.sales" in [h.text for h in by(d, "search-hit") if h.get_attribute("data-kind") == "Tables"]
    d.get(base + "/ui/search?q=zzz-nothing-zzz")
    assert by(d, "no-hits")

    # Models: the list, a model with its versions, a version (from the link form mlflow users bookmark).
    d.get(base + "/ui/models")
    assert any(seeded["model"] in r.text for r in by(d, "model-row"))
    open_link(d, f"{base}/#/models/{quote(seeded['model'])}", f"{base}/ui/models/{quote(seeded['model'])}")
    assert d.find_element(By.TAG_NAME, "h1").text == seeded["model"]
    assert [r.get_attribute("data-version") for r in by(d, "version-row")] == ["2", "1"]
    assert by(d, "description")[0].text == "churn model" and "@champion" in by(d, "alias")[0].text
    open_link(d, f"{base}/#/models/{quote(seeded['model'])}/versions/2", f"{base}/ui/models/{quote(seeded['model'])}/versions/2")
    assert by(d, "aliases")[0].text == "@champion" and by(d, "stage")[0].text == "None"
    shot(d, "model-version")
    navigate(d, by(d, "source-run")[0].find_element(By.TAG_NAME, "a"))
    assert d.current_url == f"{base}/ui/experiments/{seeded['exp']}/runs/{seeded['runs'][1]}"
    d.get(f"{base}/ui/models/{quote(seeded['model'])}/versions/1")
    assert by(d, "stage")[0].text == "Staging"
    # An open request to move version 2 to Production, approved from the page.
    d.get(f"{base}/ui/models/{quote(seeded['model'])}/versions/2")
    assert len(by(d, "transition-request")) == 1 and "ship it" in by(d, "transition-request")[0].text
    navigate(d, by(d, "approve-request")[0])
    assert by(d, "stage")[0].text == "Production" and not by(d, "transition-request")

    # A failed job run, repaired from its page.
    open(seeded["fix"], "w").close()
    d.get(f"{base}/ui/jobs/{seeded['flaky_job']}/runs/{seeded['flaky_run']}")
    assert "FAILED" in by(d, "run-state")[0].text
    navigate(d, by(d, "repair")[0])
    for _ in range(120):
        if "SUCCESS" in by(d, "run-state")[0].text:
            break
        time.sleep(0.5)
        d.refresh()
    assert "SUCCESS" in by(d, "run-state")[0].text and by(d, "repairs")[0].text == "1" and not by(d, "repair")

    errors = console_errors(d)
    assert not errors, "\n".join(e["message"] for e in errors)
    # An unknown run is a 404 page (the only console entry it leaves).
    d.get(f"{base}/ui/experiments/{seeded['exp']}/runs/{'0' * 32}")
    assert d.title.startswith("Not found") and by(d, "error")
    assert all("404" in e["message"] for e in console_errors(d))

    # Sign out: back to the sign-in page, and pages are refused again.
    d.get(base + "/ui/experiments")
    navigate(d, by(d, "sign-out")[0])
    assert "/ui/login" in d.current_url
    d.get(base + "/ui/experiments")
    assert "/ui/login" in d.current_url
    shot(d, "signed-out")
    assert not [e for e in console_errors(d) if "favicon" in e["message"] or "Failed to load" in e["message"]]


def test_runs_table_columns_min_max_sort_and_group_by(kiln, browser):
    """The column picker (kept for the person across sessions), sorting by a metric's min/max over its history,
    and grouping by a param, on runs whose last, min and max values order them differently."""
    from urllib.parse import quote

    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag
    from selenium.webdriver.common.by import By
    os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN
    client = MlflowClient(tracking_uri=kiln.url)
    exp = client.create_experiment(f"ui-cols-{uuid.uuid4().hex[:8]}")
    # Last values order a < b < c; mins c < a < b; maxes b < c < a.
    ids = {}
    for name, values, model in [("a", [0, 100, 2], "tree"), ("b", [5, 6, 3], "tree"), ("c", [-1, 50, 4], "linear")]:
        run_id = client.create_run(exp, run_name=name).info.run_id
        client.log_batch(run_id, metrics=[Metric("acc", v, 1_700_000_000_000 + k, k) for k, v in enumerate(values)],
                         params=[Param("model", model)], tags=[RunTag("team", "x")])
        ids[run_id] = name
    d = browser
    page = f"{kiln.url}/ui/experiments/{exp}"
    open_signed_in(d, kiln.url, page)

    def names():
        return [ids[r.get_attribute("data-run-id")] for r in by(d, "run-row")]

    def headers():
        return [th.get_attribute("data-column") for th in d.find_elements(By.CSS_SELECTOR, '[data-testid="runs"] thead th[data-column]')]

    assert headers() == ["params.model", "metrics.acc"]  # by default: every param and metric's latest value
    # Pick: drop the param, add acc's min and max, add the tag.
    by(d, "column-picker")[0].find_element(By.TAG_NAME, "summary").click()
    for column in ["params.model", "metrics.acc:min", "metrics.acc:max", "tags.team"]:
        d.find_element(By.CSS_SELECTOR, f'[data-testid="column-option"][data-column="{column}"]').click()
    navigate(d, by(d, "save-columns")[0])
    assert headers() == ["metrics.acc", "metrics.acc:min", "metrics.acc:max", "tags.team"]
    row = {ids[r.get_attribute("data-run-id")]: [td.text for td in r.find_elements(By.TAG_NAME, "td")][5:] for r in by(d, "run-row")}
    assert row["a"] == ["2", "0", "100", "x"] and row["c"] == ["4", "-1", "50", "x"], row
    shot(d, "runs-columns")

    # Sorting by a column's heading: the min and max follow the whole history, not the last value.
    def sort_by(column):
        th = d.find_element(By.CSS_SELECTOR, f'[data-testid="runs"] thead th[data-column="{column}"] a')
        navigate(d, th)
    sort_by("metrics.acc:min")
    assert names() == ["b", "a", "c"]  # min, descending
    sort_by("metrics.acc:min")
    assert names() == ["c", "a", "b"]  # min, ascending
    sort_by("metrics.acc:max")
    assert names() == ["a", "c", "b"]
    sort_by("metrics.acc")
    assert names() == ["c", "b", "a"]

    # The layout belongs to the person, not the browser session: signed out and in again, it is still there.
    d.delete_all_cookies()
    d.get(page)
    sign_in(d, kiln.url, TOKEN)
    assert headers() == ["metrics.acc", "metrics.acc:min", "metrics.acc:max", "tags.team"]

    # Group by a param: runs per value and each metric column's mean (min – max); a value links to its runs.
    d.get(page + "?group=" + quote("params.model"))
    groups = by(d, "group-row")
    assert [g.find_element(By.TAG_NAME, "td").text for g in groups] == ["tree", "linear"]
    assert [g.find_element(By.CSS_SELECTOR, '[data-testid="group-count"]').text for g in groups] == ["2", "1"]
    tree = [td.text for td in groups[0].find_elements(By.TAG_NAME, "td")]
    assert tree[2].startswith("2.5") and "(2 – 3)" in tree[2], tree  # latest values 2 and 3
    assert tree[3].startswith("1.5") and "(0 – 3)" in tree[3], tree  # mins 0 and 3
    shot(d, "runs-grouped")
    navigate(d, groups[1].find_element(By.TAG_NAME, "a"))
    assert names() == ["c"]

    # Several runs on one chart: compare draws each metric's history with a path per run on shared axes.
    by_name = {v: k for k, v in ids.items()}
    d.get(f"{page}/compare?" + "&".join(f"runs={by_name[n]}" for n in "abc"))
    charts = by(d, "history-charts")[0].find_elements(By.CSS_SELECTOR, '[data-testid="metric-chart"]')
    assert [c.get_attribute("data-key") for c in charts] == ["acc"]
    paths = charts[0].find_elements(By.CSS_SELECTOR, '[data-testid="series"]')
    assert [p.get_attribute("data-name") for p in paths] == ["a", "b", "c"]
    assert all(p.get_attribute("d").count("L") == 2 for p in paths)  # three steps each
    assert len({p.value_of_css_property("stroke") for p in paths}) == 3  # a colour per run
    assert len(charts[0].find_elements(By.CSS_SELECTOR, '[data-testid="legend-item"]')) == 3
    shot(d, "compare-history")
    d.get(f"{page}/compare?" + "&".join(f"runs={by_name[n]}" for n in "abc") + "&hx=relative&hsmooth=0.6")
    chart = by(d, "history-charts")[0].find_element(By.CSS_SELECTOR, '[data-testid="metric-chart"]')
    assert chart.get_attribute("data-axis") == "relative" and chart.get_attribute("data-smooth") == "0.6"

    # A bad group or order says what is wrong; reset brings every column back.
    d.get(page + "?group=" + quote("metrics.acc") + "&order=" + quote("min(params.model) DESC"))
    assert len(by(d, "error")) == 2
    d.get(page)
    by(d, "column-picker")[0].find_element(By.TAG_NAME, "summary").click()
    navigate(d, by(d, "reset-columns")[0])
    assert headers() == ["params.model", "metrics.acc"]
    errors = console_errors(d)
    assert not errors, "\n".join(e["message"] for e in errors)


def test_sql_editor_pages_results_and_table_details(kiln, browser):
    """The SQL editor pages a long result 100 rows at a time (a result belongs to the session that ran it); a
    table page shows partitioning, file count, size and properties (DESCRIBE DETAIL)."""
    from selenium.webdriver.common.by import By
    d = browser
    table = f"ui_events_{uuid.uuid4().hex[:8]}"
    open_signed_in(d, kiln.url, kiln.url + "/ui/sql")

    def run(sql):
        text = by(d, "sql-text")[0]
        text.clear()
        text.send_keys(sql)
        navigate(d, by(d, "sql-run")[0])
        assert not by(d, "error"), by(d, "error")[0].text

    def ids():
        return [int(tr.find_element(By.TAG_NAME, "td").text) for tr in d.find_elements(By.CSS_SELECTOR, '[data-testid="sql-result"] tbody tr')]
    run(f"CREATE TABLE main.default.{table} (id BIGINT, day STRING) PARTITIONED BY (day) TBLPROPERTIES ('team' = 'ml')")
    run(f"INSERT INTO main.default.{table} SELECT id, CAST(id % 3 AS STRING) AS day FROM range(250)")
    run(f"SELECT id, day FROM main.default.{table} ORDER BY id")
    assert ids() == list(range(100))
    assert "250 rows" in by(d, "sql-summary")[0].text and "rows 1–100" in by(d, "sql-summary")[0].text
    assert not by(d, "sql-prev")
    navigate(d, by(d, "sql-next")[0])
    assert ids() == list(range(100, 200)) and "rows 101–200" in by(d, "sql-summary")[0].text
    assert by(d, "sql-text")[0].get_attribute("value") == f"SELECT id, day FROM main.default.{table} ORDER BY id"
    navigate(d, by(d, "sql-next")[0])
    assert ids() == list(range(200, 250)) and not by(d, "sql-next")
    result_url = d.current_url
    navigate(d, by(d, "sql-prev")[0])
    assert ids() == list(range(100, 200))
    shot(d, "sql-paged")
    # Another session cannot page this session's result.
    cookies = d.get_cookies()
    d.delete_all_cookies()
    d.get(kiln.url + "/ui/sql")
    sign_in(d, kiln.url, TOKEN)
    d.get(result_url)
    assert by(d, "error") and not by(d, "sql-result")
    assert all("404" in e["message"] for e in console_errors(d))

    # The table page: partitioning, files (one per day), size, properties.
    d.get(f"{kiln.url}/ui/data/main/default/{table}")
    assert by(d, "detail-partitioning")[0].text == "day"
    assert by(d, "detail-num-files")[0].text == "3"
    size = by(d, "detail-size")[0].text
    assert size.endswith("bytes)") and int(size.split("(")[1].split()[0]) > 0, size
    props = {r.find_element(By.TAG_NAME, "th").text: r.find_element(By.TAG_NAME, "td").text for r in by(d, "property-row")}
    assert props.get("team") == "ml", props
    shot(d, "table-details")
    errors = console_errors(d)
    assert not errors, "\n".join(e["message"] for e in errors)



def test_model_version_stage_changes_requests_and_comments(kiln, browser):
    """From a version page: move it to a stage now (archiving the others), request a move, comment; each lands in
    the activity list and is what the stock mlflow client then reads."""
    from urllib.parse import quote

    from mlflow import MlflowClient
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN
    client = MlflowClient(tracking_uri=kiln.url)
    model = f"ui-stages-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(model)
    for k in range(2):
        client.create_model_version(model, f"s3://bucket/{model}/{k}")
    d = browser
    page = f"{kiln.url}/ui/models/{quote(model)}/versions/"
    open_signed_in(d, kiln.url, page + "1")

    def activities():
        return [(r.get_attribute("data-type"), r.text) for r in by(d, "activity")]
    Select(by(d, "stage-select")[0]).select_by_visible_text("Staging")
    by(d, "stage-comment")[0].send_keys("looks good")
    navigate(d, by(d, "transition")[0])
    assert by(d, "stage")[0].text == "Staging"
    assert activities()[0][0] == "APPLIED_TRANSITION" and "looks good" in activities()[0][1], activities()
    # Version 2 to Staging, archiving version 1.
    d.get(page + "2")
    Select(by(d, "stage-select")[0]).select_by_visible_text("Staging")
    by(d, "archive-existing")[0].click()
    navigate(d, by(d, "transition")[0])
    assert by(d, "stage")[0].text == "Staging"
    assert client.get_model_version(model, "1").current_stage == "Archived"
    # A request to move it to Production, with a comment; then a plain comment.
    Select(by(d, "stage-select")[0]).select_by_visible_text("Production")
    by(d, "stage-comment")[0].send_keys("ship it")
    navigate(d, by(d, "request-transition")[0])
    assert len(by(d, "transition-request")) == 1 and "ship it" in by(d, "transition-request")[0].text
    assert by(d, "stage")[0].text == "Staging"
    by(d, "comment-text")[0].send_keys("nice work")
    navigate(d, by(d, "add-comment")[0])
    kinds = [k for k, _ in activities()]
    assert kinds[:2] == ["NEW_COMMENT", "REQUESTED_TRANSITION"], activities()
    assert "nice work" in activities()[0][1]
    shot(d, "model-activity")
    # A blank comment is refused with the reason, on the same page.
    navigate(d, by(d, "add-comment")[0])
    assert by(d, "error") and "comment" in by(d, "error")[0].text.lower()
    assert all("400" in e["message"] for e in console_errors(d))
    # Reject the request from the page: it is gone, the stage stays.
    navigate(d, by(d, "reject-request")[0])
    assert not by(d, "transition-request") and by(d, "stage")[0].text == "Staging"
    assert activities()[0][0] == "REJECTED_REQUEST"
    assert not [e for e in console_errors(d) if "400" not in e["message"]]


def test_parquet_and_delta_artifacts_as_paged_grids(kiln, browser, tmp_path):
    """A Parquet artifact (several row groups) and a Delta table logged as an artifact folder (several files) are
    shown 100 rows a page; every row appears exactly once across the pages."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import write_deltalake
    from mlflow import MlflowClient
    from selenium.webdriver.common.by import By
    os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN
    client = MlflowClient(tracking_uri=kiln.url)
    exp = client.create_experiment(f"ui-grid-{uuid.uuid4().hex[:8]}")
    run = client.create_run(exp, run_name="grids").info.run_id
    data = pa.table({"id": list(range(250)), "name": [f"row-{i}" for i in range(250)], "score": [i / 4 for i in range(250)]})
    pq.write_table(data, tmp_path / "rows.parquet", row_group_size=60)
    client.log_artifact(run, str(tmp_path / "rows.parquet"), "data")
    table = tmp_path / "events"
    for k in range(3):  # three commits, a file each
        write_deltalake(str(table), data.slice(k * 90, 90), mode="append")
    client.log_artifacts(run, str(table), "events")
    d = browser
    base = f"{kiln.url}/ui/experiments/{exp}/runs/{run}/artifacts?path="
    open_signed_in(d, kiln.url, base + "data/rows.parquet")

    def ids():
        return [int(tr.find_element(By.TAG_NAME, "td").text) for tr in d.find_elements(By.CSS_SELECTOR, '[data-testid="grid-preview"] tbody tr')]
    assert "250 rows · rows 1–100" in by(d, "grid-summary")[0].text
    assert ids() == list(range(100)) and not by(d, "grid-prev")
    headers = [th.text for th in d.find_elements(By.CSS_SELECTOR, '[data-testid="grid-preview"] thead th')]
    assert headers == ["id", "name", "score"]
    shot(d, "parquet-grid")
    navigate(d, by(d, "grid-next")[0])
    assert ids() == list(range(100, 200))
    navigate(d, by(d, "grid-next")[0])
    assert ids() == list(range(200, 250)) and not by(d, "grid-next")

    d.get(base + "events")
    seen = ids()
    assert "250 rows" in by(d, "grid-summary")[0].text and len(seen) == 100
    assert "_delta_log" in [r.get_attribute("data-path").split("/")[-1] for r in by(d, "artifact-row")]
    shot(d, "delta-grid")
    while by(d, "grid-next"):
        navigate(d, by(d, "grid-next")[0])
        seen += ids()
    assert sorted(seen) == list(range(250))
    errors = console_errors(d)
    assert not errors, "\n".join(e["message"] for e in errors)


def test_compare_contour_of_a_metric_over_two_params(kiln, browser):
    """The compare page's contour: z interpolated over the x–y plane from the runs, in 8 bands, low where the
    runs' z is low and high where it is high, the runs drawn on top."""
    from mlflow import MlflowClient
    from selenium.webdriver.common.by import By
    os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN
    client = MlflowClient(tracking_uri=kiln.url)
    exp = client.create_experiment(f"ui-contour-{uuid.uuid4().hex[:8]}")
    ids = []
    for x, y in [(0, 0), (1, 0), (0, 1), (1, 1), (0.5, 0.5)]:
        run = client.create_run(exp).info.run_id
        client.log_param(run, "x", x)
        client.log_param(run, "y", y)
        client.log_metric(run, "z", x + y)
        ids.append(run)
    d = browser
    url = f"{kiln.url}/ui/experiments/{exp}/compare?" + "&".join(f"runs={r}" for r in ids) + "&cx=params.x&cy=params.y&cz=metrics.z"
    open_signed_in(d, kiln.url, url)
    chart = by(d, "contour-chart")[0]
    assert "metrics.z over params.x × params.y" in chart.text
    cells = chart.find_elements(By.CSS_SELECTOR, '[data-testid="contour-cell"]')
    assert len(cells) == 24 * 24
    bands = [int(c.get_attribute("data-band")) for c in cells]  # column by column, bottom row first
    assert bands[0] == 0 and bands[-1] == 7 and set(bands) == set(range(8))
    assert len(chart.find_elements(By.CSS_SELECTOR, '[data-testid="contour-point"]')) == 5
    d.execute_script("arguments[0].scrollIntoView()", chart)
    shot(d, "compare-contour")
    errors = console_errors(d)
    assert not errors, "\n".join(e["message"] for e in errors)


def test_run_datasets_models_and_version_signature_lineage_webhooks(kiln, browser):
    """A run logged the usual way (a dataset input, an sklearn model registered with a signature): its page lists
    the dataset and the logged model; the version page shows the signature, the run it came from, and the
    model's webhooks."""
    import mlflow
    import pandas as pd
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.ml import HttpUrlSpec, RegistryWebhookEvent
    from mlflow.models import infer_signature
    from selenium.webdriver.common.by import By
    from sklearn.linear_model import LogisticRegression
    os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN
    mlflow.set_tracking_uri(kiln.url)
    mlflow.set_experiment(f"ui-lineage-{uuid.uuid4().hex[:8]}")
    registered = f"ui-signed-{uuid.uuid4().hex[:8]}"
    df = pd.DataFrame({"a": [0.1, 0.5, 0.9, 0.3], "b": [1.0, 0.0, 1.0, 0.0]})
    y = [0, 1, 1, 0]
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        mlflow.log_input(mlflow.data.from_pandas(df, source="/tmp/kiln-ui/train.csv", name="train-set"), context="training")
        model = LogisticRegression().fit(df, y)
        mlflow.log_metric("accuracy", 1.0)
        mlflow.sklearn.log_model(model, name="model", signature=infer_signature(df, model.predict(df)), registered_model_name=registered)
    WorkspaceClient(host=kiln.url, token=TOKEN, auth_type="pat").model_registry.create_webhook(
        events=[RegistryWebhookEvent.MODEL_VERSION_TRANSITIONED_STAGE], model_name=registered,
        http_url_spec=HttpUrlSpec(url="http://127.0.0.1:9/hook"), description="ci hook")
    d = browser
    page = f"{kiln.url}/ui/runs/{run.info.run_id}"
    open_signed_in(d, kiln.url, page)
    datasets = [r.text for r in by(d, "dataset-row")]
    assert len(datasets) == 1 and "train-set" in datasets[0] and "training" in datasets[0], datasets
    models = [r.text for r in by(d, "model-row")]
    assert len(models) == 1 and "model" in models[0] and "output" in models[0], models
    shot(d, "run-inputs")

    d.get(f"{kiln.url}/ui/models/{registered}/versions/1")
    signature = by(d, "signature")[0].text
    assert "a: double" in signature and "b: double" in signature, signature
    lineage = by(d, "lineage")[0]
    assert "C=1.0" in by(d, "lineage-params")[0].text and "accuracy=1" in by(d, "lineage-metrics")[0].text
    assert "train-set" in lineage.text
    hooks = [r.text for r in by(d, "webhook")]
    assert len(hooks) == 1 and "http://127.0.0.1:9/hook" in hooks[0] and "MODEL_VERSION_TRANSITIONED_STAGE" in hooks[0]
    shot(d, "version-lineage")
    errors = console_errors(d)
    assert not errors, "\n".join(e["message"] for e in errors)


def test_run_now_with_job_parameters(kiln, browser, tmp_path):
    """Run now from a job's page with a parameter typed in: the run carries it and its task sees it; a blank one
    keeps its default."""
    import time as _time

    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import JobParameterDefinition, SparkPythonTask, Task
    w = WorkspaceClient(host=kiln.url, token=TOKEN, auth_type="pat")
    script = tmp_path / "greet.py"
    script.write_text("import sys\nprint('greeting:', sys.argv[1], sys.argv[2])\n")
    job = w.jobs.create(name=f"ui-params-{uuid.uuid4().hex[:8]}",
                        parameters=[JobParameterDefinition(name="greeting", default="hi"), JobParameterDefinition(name="who", default="world")],
                        tasks=[Task(task_key="greet", spark_python_task=SparkPythonTask(
                            python_file=str(script), parameters=["{{job.parameters.greeting}}", "{{job.parameters.who}}"]))])
    d = browser
    open_signed_in(d, kiln.url, f"{kiln.url}/ui/jobs/{job.job_id}")
    fields = {f.get_attribute("data-name"): f for f in by(d, "job-parameter")}
    assert set(fields) == {"greeting", "who"} and fields["greeting"].get_attribute("placeholder") == "hi"
    fields["greeting"].send_keys("hello")
    navigate(d, by(d, "run-now")[0])
    assert "/runs/" in d.current_url
    for _ in range(120):
        if "SUCCESS" in by(d, "run-state")[0].text or "FAILED" in by(d, "run-state")[0].text:
            break
        _time.sleep(0.5)
        d.refresh()
    assert "SUCCESS" in by(d, "run-state")[0].text
    assert "greeting=hello" in d.page_source and "who=world" in d.page_source
    assert "greeting: hello world" in by(d, "task-output")[0].get_attribute("textContent")
    errors = console_errors(d)
    assert not errors, "\n".join(e["message"] for e in errors)


def test_catalog_explorer_shows_volumes_and_their_files(kiln, browser):
    """A schema page lists its volumes beside its tables; a volume page lists folders to open and files with size."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service import catalog as uc
    import io
    d = browser
    w = WorkspaceClient(host=kiln.url, token=TOKEN, auth_type="pat")
    name = f"uivol_{uuid.uuid4().hex[:6]}"
    w.catalogs.create(name=name)
    w.schemas.create(name="s", catalog_name=name)
    w.volumes.create(catalog_name=name, schema_name="s", name="landing", volume_type=uc.VolumeType.MANAGED)
    w.files.upload(f"/Volumes/{name}/s/landing/2026/orders.csv", io.BytesIO(b"id\n1\n2\n"), overwrite=True)
    w.files.upload(f"/Volumes/{name}/s/landing/readme.txt", io.BytesIO(b"hello"), overwrite=True)
    r = requests.post(kiln.url + "/api/2.0/sql/statements", headers={"Authorization": f"Bearer {TOKEN}"}, json={
        "statement": f"CREATE FUNCTION {name}.s.gross(x DOUBLE) RETURNS DOUBLE COMMENT 'with tax' RETURN x * 1.2", "warehouse_id": "k"})
    assert r.json()["status"]["state"] == "SUCCEEDED", r.text
    open_signed_in(d, kiln.url, f"{kiln.url}/ui/data/{name}/s")
    functions = [f.text for f in by(d, "function")]
    assert len(functions) == 1 and functions[0].startswith("gross") and "x * 1.2" in functions[0] and "with tax" in functions[0], functions
    shot(d, "schema-page")
    volumes = by(d, "volume")
    assert [v.text for v in volumes] == ["landing"]
    navigate(d, volumes[0].find_element("tag name", "a"))
    rows = [r.text for r in by(d, "volume-entry")]
    assert rows[0].startswith("2026/") and rows[1].startswith("readme.txt") and "5 B" in rows[1], rows
    navigate(d, by(d, "volume-entry")[0].find_element("tag name", "a"))
    assert [r.text.split()[0] for r in by(d, "volume-entry")] == ["orders.csv"]
    shot(d, "volume-files")
    errors = console_errors(d)
    assert not errors, "\n".join(e["message"] for e in errors)
    w.catalogs.delete(name, force=True)


def test_a_runs_table_of_ten_thousand_runs_paints_fast_with_few_rows(kiln, browser):
    """Issue 19's scale point: 10,000 runs × 50 metrics seeded with the stock client; the runs table's first rows
    show within 1.5 s of navigation (the acceptance bound, ~6× what bench/ui_bench.py measures) with at most a few
    hundred rows in the DOM, and the next page pages on."""
    import concurrent.futures
    import time

    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param
    from selenium.webdriver.support.ui import WebDriverWait
    os.environ["MLFLOW_TRACKING_TOKEN"] = TOKEN
    client = MlflowClient(tracking_uri=kiln.url)
    exp = client.create_experiment(f"ui-10k-{uuid.uuid4().hex[:8]}")

    def one(i):
        run_id = client.create_run(exp, start_time=1_700_000_000_000 + i).info.run_id
        client.log_batch(run_id, metrics=[Metric(f"m{k}", ((i * 31 + k * 7) % 1000) / 1000, 1_700_000_000_000, 0) for k in range(50)],
                         params=[Param("p", str(i % 17))])
        return run_id

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(one, range(10_000)))
    assert len(set(ids)) == 10_000
    d = browser
    page = f"{kiln.url}/ui/experiments/{exp}"
    open_signed_in(d, kiln.url, page)
    best = None
    for _ in range(3):
        d.get("about:blank")
        start = time.perf_counter()
        d.get(page)
        WebDriverWait(d, 30, poll_frequency=0.01).until(lambda drv: len(by(drv, "run-row")) > 0)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    rows = by(d, "run-row")
    assert 0 < len(rows) <= 500, len(rows)
    assert rows[0].get_attribute("data-run-id") == ids[-1], "newest first"
    assert best < 1.5, f"first rows after {best:.2f} s"
    assert not console_errors(d)
    shot(d, "runs-10k")
