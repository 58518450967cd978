"""databricks-sdk's Statement Execution API (`w.statement_execution`) against a live kiln server (issue P5)."""
import os
import subprocess
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, InvalidParameterValue, BadRequest
from databricks.sdk.service.sql import StatementParameterListItem, StatementState

from conftest import KILN, TOKEN


@pytest.fixture(scope="module")
def workspace(kiln, tmp_path_factory):
    data = tmp_path_factory.mktemp("statements")
    table = pa.table({"id": pa.array(range(1, 101), pa.int64()), "region": [["us", "eu", "ap"][i % 3] for i in range(100)],
                      "amount": pa.array([float(i) * 1.5 for i in range(100)]),
                      "day": pa.array([f"2024-01-{1 + i % 28:02d}" for i in range(100)]).cast(pa.date32())})
    path = str(data / "sales.parquet")
    pq.write_table(table, path)
    out = subprocess.run([KILN, "table", "write", "main.shop.sales", "--home", kiln.home, "--from", path], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return WorkspaceClient(host=kiln.url, token=TOKEN, auth_type="pat")


def test_execute_synchronously(workspace):
    r = workspace.statement_execution.execute_statement(
        statement="SELECT region, count(*) AS n, sum(amount) AS total, min(day) AS first_day FROM shop.sales GROUP BY region ORDER BY region",
        warehouse_id="kiln", wait_timeout="30s")
    assert r.status.state == StatementState.SUCCEEDED
    columns = r.manifest.schema.columns
    assert [c.name for c in columns] == ["region", "n", "total", "first_day"]
    assert [c.type_name.value for c in columns] == ["STRING", "LONG", "DOUBLE", "DATE"]
    assert r.manifest.total_row_count == 3 and not r.manifest.truncated
    expected = []
    for region in ["ap", "eu", "us"]:
        ids = [i for i in range(100) if ["us", "eu", "ap"][i % 3] == region]
        expected.append([region, str(len(ids)), str(sum(i * 1.5 for i in ids)), f"2024-01-{1 + min(i % 28 for i in ids):02d}"])
    assert r.result.data_array == expected


def test_named_parameters_and_defaults(workspace):
    r = workspace.statement_execution.execute_statement(
        statement="SELECT id FROM sales WHERE region = :region AND amount > :low AND day >= :since ORDER BY id LIMIT 3",
        warehouse_id="kiln", catalog="main", schema="shop", wait_timeout="30s",
        parameters=[StatementParameterListItem(name="region", value="eu"), StatementParameterListItem(name="low", value="30", type="DOUBLE"),
                    StatementParameterListItem(name="since", value="2024-01-10", type="DATE")])
    assert r.status.state == StatementState.SUCCEEDED, r.status
    ids = [i + 1 for i in range(100) if i % 3 == 1 and i * 1.5 > 30 and 1 + i % 28 >= 10][:3]
    assert r.result.data_array == [[str(i)] for i in ids]


def test_row_limit_truncates(workspace):
    r = workspace.statement_execution.execute_statement(statement="SELECT id FROM main.shop.sales ORDER BY id", warehouse_id="kiln",
                                                        row_limit=5, wait_timeout="30s")
    assert r.manifest.truncated and r.manifest.total_row_count == 5 and r.result.data_array[-1] == ["5"]


def test_asynchronous_polling_and_chunks(workspace):
    sql = "SELECT count(*) AS n FROM range(2500) a CROSS JOIN range(2500) b WHERE a.id % 7 = b.id % 5"
    r = workspace.statement_execution.execute_statement(statement=sql, warehouse_id="kiln", wait_timeout="0s")
    assert r.status.state in (StatementState.PENDING, StatementState.RUNNING, StatementState.SUCCEEDED)
    deadline = time.time() + 120
    while r.status.state in (StatementState.PENDING, StatementState.RUNNING):
        assert time.time() < deadline
        time.sleep(0.1)
        r = workspace.statement_execution.get_statement(r.statement_id)
    assert r.status.state == StatementState.SUCCEEDED, r.status
    chunk = workspace.statement_execution.get_statement_result_chunk_n(r.statement_id, 0)
    expected = sum(1 for a in range(2500) for b in range(2500) if a % 7 == b % 5)
    assert chunk.data_array == [[str(expected)]]


def test_failures_are_reported(workspace):
    r = workspace.statement_execution.execute_statement(statement="SELECT nope FROM main.shop.sales", warehouse_id="kiln", wait_timeout="10s")
    assert r.status.state == StatementState.FAILED
    assert r.status.error.error_code.value == "BAD_REQUEST" and "nope" in r.status.error.message
    r = workspace.statement_execution.execute_statement(statement="SELECT * FROM main.shop.missing", warehouse_id="kiln", wait_timeout="10s")
    assert r.status.state == StatementState.FAILED and "does not exist" in r.status.error.message
    assert r.status.error.error_code.value == "NOT_FOUND"
    with pytest.raises(NotFound):
        workspace.statement_execution.get_statement("no-such-statement")
    with pytest.raises((InvalidParameterValue, BadRequest)):
        workspace.statement_execution.execute_statement(statement="SELECT 1", warehouse_id="kiln", wait_timeout="3s")
    with pytest.raises((InvalidParameterValue, BadRequest)):
        workspace.statement_execution.execute_statement(statement="SELECT :x", warehouse_id="kiln",
                                                        parameters=[StatementParameterListItem(name="x", value="abc", type="INT")])


def test_cancel(workspace):
    sql = "SELECT count(*) FROM range(3000) a CROSS JOIN range(3000) b"
    r = workspace.statement_execution.execute_statement(statement=sql, warehouse_id="kiln", wait_timeout="0s")
    workspace.statement_execution.cancel_execution(r.statement_id)
    state = workspace.statement_execution.get_statement(r.statement_id).status.state
    assert state in (StatementState.CANCELED, StatementState.SUCCEEDED)


def test_requires_a_token(kiln, workspace):
    import requests
    out = requests.post(kiln.url + "/api/2.0/sql/statements", json={"statement": "SELECT 1", "warehouse_id": "kiln"})
    assert out.status_code == 401


def test_ddl_and_dml_through_the_api(workspace):
    run = lambda sql: workspace.statement_execution.execute_statement(statement=sql, warehouse_id="kiln", wait_timeout="30s")
    assert run("CREATE TABLE main.shop.events (id BIGINT, kind STRING)").status.state == StatementState.SUCCEEDED
    r = run("INSERT INTO main.shop.events SELECT id, region FROM main.shop.sales WHERE id <= 10")
    assert r.status.state == StatementState.SUCCEEDED and r.result.data_array == [["10", "10"]]
    assert run("DELETE FROM main.shop.events WHERE kind = 'eu'").result.data_array == [[str(sum(1 for i in range(10) if i % 3 == 1))]]
    assert run("SELECT count(*) FROM main.shop.events").result.data_array == [[str(sum(1 for i in range(10) if i % 3 != 1))]]
    r = run("CREATE TABLE main.shop.events (id BIGINT)")
    assert r.status.state == StatementState.FAILED and r.status.error.error_code.value == "ALREADY_EXISTS"


def test_explain_and_explain_analyze_through_the_api(workspace):
    """EXPLAIN lists the planned scan with its pushed filter and files (no data read); EXPLAIN ANALYZE adds rows and
    times, and its Total line counts the query's rows (issue P13)."""
    run = lambda sql: workspace.statement_execution.execute_statement(statement=sql, warehouse_id="kiln", wait_timeout="30s")
    r = run("EXPLAIN SELECT region, sum(amount) FROM main.shop.sales WHERE day >= DATE '2024-01-20' GROUP BY region")
    assert r.status.state == StatementState.SUCCEEDED, r.status
    assert [c.name for c in r.manifest.schema.columns] == ["step", "detail"]
    scan = [row for row in r.result.data_array if row[0].strip() == "Scan main.shop.sales"]
    assert scan and "filter: (day >= DATE '2024-01-20')" in scan[0][1] and "files: 1 of 1" in scan[0][1], r.result.data_array
    r = run("EXPLAIN ANALYZE SELECT region, count(*) AS n FROM main.shop.sales WHERE amount > 30 GROUP BY region ORDER BY n DESC LIMIT 2")
    assert [c.name for c in r.manifest.schema.columns] == ["step", "detail", "rows", "time_ms"]
    total = [row for row in r.result.data_array if row[0] == "Total"]
    assert total and total[0][2] == "2" and float(total[0][3]) > 0, r.result.data_array
    assert any(row[0].strip() == "Top-N" and int(row[2]) >= 2 for row in r.result.data_array), r.result.data_array
    r = run("EXPLAIN DELETE FROM main.shop.sales")
    assert r.status.state == StatementState.FAILED and "EXPLAIN explains queries" in r.status.error.message
    assert run("SELECT count(*) FROM main.shop.sales").result.data_array == [["100"]]


def kiln_sql(*args, env=None):
    return subprocess.run([KILN, "sql", *args], capture_output=True, text=True, timeout=120, env=env)


def test_long_results_come_in_chunks_that_the_sdk_follows(workspace):
    sql = "SELECT id, id * 2 AS twice FROM range(25000) ORDER BY id"
    r = workspace.statement_execution.execute_statement(statement=sql, warehouse_id="kiln", wait_timeout="30s")
    assert r.manifest.total_chunk_count == 3 and [c.row_count for c in r.manifest.chunks] == [10000, 10000, 5000]
    assert r.result.next_chunk_index == 1
    rows = list(r.result.data_array)
    index = r.result.next_chunk_index
    while index is not None:
        chunk = workspace.statement_execution.get_statement_result_chunk_n(r.statement_id, index)
        rows += chunk.data_array
        index = chunk.next_chunk_index
    assert rows == [[str(i), str(2 * i)] for i in range(25000)]


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv"])
def test_kiln_sql_url_prints_what_local_mode_prints(kiln, workspace, fmt):
    """`kiln sql --url` runs on the server's warehouse and prints the same bytes as local mode on the same home."""
    sql = "SELECT region, count(*) AS n, sum(amount) AS total, min(day) AS first_day, max(id) > 90 AS late FROM main.shop.sales GROUP BY region ORDER BY region"
    local = kiln_sql("--home", kiln.home, "--format", fmt, sql)
    remote = kiln_sql("--url", kiln.url, "--token", TOKEN, "--home", "/nonexistent", "--format", fmt, sql)
    assert local.returncode == 0 and remote.returncode == 0, (local.stderr, remote.stderr)
    assert remote.stdout == local.stdout and "ap" in remote.stdout


def test_kiln_sql_url_pages_long_results_and_reports_server_errors(kiln, workspace):
    env = dict(os.environ, KILN_URL=kiln.url, KILN_TOKEN=TOKEN)
    out = kiln_sql("--format", "jsonl", "SELECT id FROM range(23456) ORDER BY id", env=env)
    assert out.returncode == 0, out.stderr
    assert [line for line in out.stdout.splitlines()] == [f'{{"id":{i}}}' for i in range(23456)]
    # A statement the server has to run for a while: polled until it ends.
    out = kiln_sql("--format", "csv", "SELECT count(*) AS n FROM range(2000) a CROSS JOIN range(2000) b WHERE a.id % 3 = b.id % 4", env=env)
    assert out.returncode == 0 and out.stdout.splitlines()[1] == str(sum(1 for a in range(2000) for b in range(2000) if a % 3 == b % 4))
    # Tables live where the server's warehouse is: created remotely, read remotely.
    assert kiln_sql("CREATE TABLE main.shop.remote_made (x BIGINT)", env=env).returncode == 0
    assert kiln_sql("INSERT INTO main.shop.remote_made VALUES (1), (2)", env=env).returncode == 0
    assert kiln_sql("--format", "csv", "SELECT sum(x) AS s FROM main.shop.remote_made", env=env).stdout == "s\n3\n"
    assert os.path.isdir(os.path.join(kiln.home, "warehouse", "main", "shop", "remote_made"))
    out = kiln_sql("SELECT nope FROM main.shop.sales", env=env)
    assert out.returncode != 0 and "BAD_REQUEST" in out.stderr and "nope" in out.stderr
    out = kiln_sql("SELECT 1", env=dict(env, KILN_TOKEN="wrong"))
    assert out.returncode != 0 and ("401" in out.stderr or "UNAUTHENTICATED" in out.stderr), out.stderr
    out = kiln_sql("--format", "csv", "--param", "n=3", "SELECT id FROM range(10) WHERE id < :n", env=env)
    assert out.stdout == "id\n0\n1\n2\n"


def test_table_commands_say_they_are_local_only(kiln):
    out = subprocess.run([KILN, "table", "describe", "main.shop.sales", "--url", kiln.url], capture_output=True, text=True)
    assert out.returncode != 0 and "local" in out.stderr and "kiln sql --url" in out.stderr
    helptext = subprocess.run([KILN, "--help"], capture_output=True, text=True).stdout
    assert "Local commands" in helptext and "Remote commands" in helptext
