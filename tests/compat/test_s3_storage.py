"""Kiln's object storage on S3: the storage conformance suite (`kiln storage check`, the same checks the local store
passes) against an S3 emulator (moto's server, 127.0.0.1 only), through Kiln's own SigV4 client; and the emulator's
signature checking accepting Kiln's signatures and refusing a wrong secret with an error that says what to check
(issue P15, first slice)."""
import json
import os
import shutil
import subprocess
import sys
import time

import boto3
import pytest
import requests

from conftest import KILN, free_port

MOTO = shutil.which("moto_server") or os.path.join(os.path.dirname(sys.executable), "moto_server")


def start_moto(env=None, log=subprocess.DEVNULL):
    port = free_port()
    proc = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(port)], env=dict(os.environ, **(env or {})), stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            requests.get(url + "/moto-api/", timeout=1)
            return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto_server did not start")


def check(url, bucket_prefix, key, secret, *extra):
    # Parts of S3's minimum size, so the 12 MiB object of the large-object check goes up as a multipart upload.
    env = dict(os.environ, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_REGION="us-east-1",
               KILN_S3_PART_SIZE=str(5 << 20))
    out = subprocess.run([KILN, "storage", "check", bucket_prefix, "--json", "--processes", "4", "--attempts", "10", *extra],
                         capture_output=True, text=True, timeout=600, env=env)
    return out


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    log = tmp_path_factory.mktemp("moto") / "requests.log"
    with open(log, "wb") as out:
        proc, url = start_moto(log=out)
        yield url, log
        proc.kill()
        proc.wait()


def test_the_storage_contract_holds_on_s3(moto):
    moto, log = moto
    boto3.client("s3", endpoint_url=moto, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s").create_bucket(Bucket="kiln-store")
    for location in ("s3://kiln-store/some/prefix", "s3://kiln-store"):
        out = check(moto, location, "k", "s")
        report = json.loads(out.stdout)
        assert out.returncode == 0 and report["passed"], out.stdout + out.stderr
        assert len(report["checks"]) == 10 and all(c["passed"] for c in report["checks"])
    requests_seen = log.read_text()
    assert "?uploads" in requests_seen and "partNumber=2" in requests_seen, "the large object was not uploaded in parts"
    # The checks clean up after themselves: nothing is left in the bucket.
    left = boto3.client("s3", endpoint_url=moto, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s").list_objects_v2(Bucket="kiln-store")
    assert left.get("KeyCount", 0) == 0, left


def test_missing_configuration_and_a_missing_bucket_are_clear_errors(moto):
    moto, _ = moto
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    out = subprocess.run([KILN, "storage", "check", "s3://kiln-store/x"], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode != 0 and "AWS_ACCESS_KEY_ID" in out.stderr, out.stderr
    out = check(moto, "s3://no-such-bucket/x", "k", "s")
    assert out.returncode != 0 and "NoSuchBucket" in out.stdout + out.stderr, out.stdout + out.stderr
    out = check(moto, "s3://kiln-store/x", "k", "s")
    bad = subprocess.run([KILN, "storage", "check", "s3://kiln-store/x"], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, AWS_ENDPOINT_URL=moto, AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s", KILN_S3_PART_SIZE="1000"))
    assert bad.returncode != 0 and "KILN_S3_PART_SIZE" in bad.stderr, bad.stderr


def test_signatures_are_checked_and_kilns_are_accepted():
    # moto checks SigV4 signatures once its first actions (creating the user, its key, its policy, the bucket) are done.
    proc, url = start_moto({"INITIAL_NO_AUTH_ACTION_COUNT": "4"})
    try:
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
        iam.create_user(UserName="kiln")
        key = iam.create_access_key(UserName="kiln")["AccessKey"]
        iam.put_user_policy(UserName="kiln", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key["AccessKeyId"],
                     aws_secret_access_key=key["SecretAccessKey"]).create_bucket(Bucket="signed")
        out = check(url, "s3://signed/p", key["AccessKeyId"], "not-the-secret")
        assert out.returncode != 0 and "SignatureDoesNotMatch" in out.stdout and "AWS_SECRET_ACCESS_KEY" in out.stdout, out.stdout
        report = json.loads(check(url, "s3://signed/p", key["AccessKeyId"], key["SecretAccessKey"]).stdout)
        results = {c["name"]: c for c in report["checks"]}
        # Writes, conditional writes, ranged reads, heads, deletes and copies are signed as moto expects.
        for name in ("ranged reads at the edges", "atomic visibility under a concurrent reader", "put-if-absent under concurrent threads"):
            assert results[name]["passed"], results[name]
        # moto 5.2's server refuses any signed request whose query holds a '/' (a ListObjectsV2 prefix or delimiter),
        # boto3's own included; the checks that list fail only on that (see docs/NOTES.md).
        for c in report["checks"]:
            assert c["passed"] or ("SignatureDoesNotMatch" in c["error"] and "Listing" in c["error"]), c
    finally:
        proc.kill()
        proc.wait()


def test_delta_tables_on_s3_are_shared_with_delta_rs(moto, tmp_path):
    """Kiln writes a Delta table to s3://, delta-rs and Polars read it; delta-rs appends, Kiln's SQL reads both commits."""
    import deltalake
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq
    url, _ = moto
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s").create_bucket(Bucket="lake")
    env = dict(os.environ, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s", AWS_REGION="us-east-1")
    pq.write_table(pa.table({"id": list(range(10)), "x": [i / 4 for i in range(10)], "tags": [[i, i + 1] for i in range(10)]}), tmp_path / "in.parquet")
    out = subprocess.run([KILN, "table", "write", "s3://lake/tables/t", "--from", str(tmp_path / "in.parquet")], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    options = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
               "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}
    table = deltalake.DeltaTable("s3://lake/tables/t", storage_options=options)
    assert table.version() == 0 and sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["id"])[3] == {"id": 3, "x": 0.75, "tags": [3, 4]}
    assert pl.read_delta("s3://lake/tables/t", storage_options=options)["x"].sum() == sum(i / 4 for i in range(10))
    deltalake.write_deltalake("s3://lake/tables/t", pa.table({"id": [100], "x": [1.5], "tags": [[7]]}), mode="append", storage_options=options)
    out = subprocess.run([KILN, "sql", "--format", "json", "SELECT count(*) AS n, sum(x) AS s, max(id) AS m FROM delta.`s3://lake/tables/t`"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"n": 11, "s": 12.75, "m": 100}], out.stdout
