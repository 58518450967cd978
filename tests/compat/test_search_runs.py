"""search_runs filter and order_by: the same calls against Kiln and a real `mlflow server`, and against
sets computed here from the seeded data."""
import random

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from conftest import TOKEN

# name, start offset, metrics, params, tags
SEED = [
    ("r0", 0, {"acc": 0.91, "loss": 0.30}, {"model": "tree", "depth": "3"}, {"team": "a", "env": "prod"}),
    ("r1", 1, {"acc": 0.85, "loss": 0.45}, {"model": "tree", "depth": "5"}, {"team": "b"}),
    ("r2", 2, {"acc": 0.97, "loss": 0.10}, {"model": "linear"}, {"team": "a", "env": "dev"}),
    ("r3", 3, {"acc": 0.60}, {"model": "Linear-Big"}, {"team": "c", "note": "has space"}),
    ("r4", 4, {"loss": 0.99, "my metric": 1.0}, {"model": "forest", "depth": "10"}, {}),
    ("r5", 5, {"acc": 0.91, "loss": 0.29}, {"model": "forest", "depth": "3"}, {"team": "b", "env": "prod"}),
]

# (filter, order_by, expected names in order)
CASES = [
    ("metrics.acc > 0.9", ["attributes.run_name ASC"], ["r0", "r2", "r5"]),
    ("metrics.acc >= 0.91 and metrics.loss < 0.3", [], ["r5", "r2"]),
    ("metrics.loss <= 0.3", ["metrics.loss DESC"], ["r0", "r5", "r2"]),
    ("metrics.acc != 0.91", ["metrics.acc ASC"], ["r3", "r1", "r2"]),
    ("params.model = 'tree'", ["params.depth DESC"], ["r1", "r0"]),
    ("params.model != 'tree'", ["attributes.run_name ASC"], ["r2", "r3", "r4", "r5"]),
    ("params.model LIKE 'lin%'", [], ["r2"]),
    ("params.model ILIKE 'lin%'", ["attributes.run_name DESC"], ["r3", "r2"]),
    ("tags.team = 'a'", ["metrics.acc DESC"], ["r2", "r0"]),
    ("tags.env != 'prod'", [], ["r2"]),
    ("tags.`note` = 'has space'", [], ["r3"]),
    ("metrics.`my metric` = 1", [], ["r4"]),
    ("attributes.run_name = 'r4'", [], ["r4"]),
    ("attributes.run_name LIKE 'r%' and params.depth = '3'", ["metrics.loss ASC"], ["r5", "r0"]),
    ("attributes.status = 'FINISHED'", ["attributes.start_time ASC"], ["r0", "r1", "r2", "r3", "r4", "r5"]),
    ("", ["metrics.acc DESC", "attributes.run_name ASC"], ["r2", "r0", "r5", "r1", "r3", "r4"]),
    ("", ["metrics.loss ASC"], ["r2", "r5", "r0", "r1", "r4", "r3"]),
    ("", ["params.model ASC"], ["r3", "r5", "r4", "r2", "r1", "r0"]),
    ("", [], ["r5", "r4", "r3", "r2", "r1", "r0"]),
    ("params.depth IN ('3', '10')", ["attributes.run_name ASC"], ["r0", "r4", "r5"]),
    ("attributes.run_name IN ('r1', 'r3')", ["attributes.run_name ASC"], ["r1", "r3"]),
    ("attributes.run_name NOT IN ('r1', 'r3')", ["attributes.run_name ASC"], ["r0", "r2", "r4", "r5"]),
    ("tags.env IS NULL", ["attributes.run_name ASC"], ["r1", "r3", "r4"]),
    ("metrics.acc > 0.5 and tags.team = 'b' and params.model = 'forest'", [], ["r5"]),
    ("params.model = 'tree' and metrics.acc < 0.5", [], []),
]


def seed(client, experiment_id, base_time=1_700_000_000_000):
    ids = {}
    for name, offset, metrics, params, tags in SEED:
        run = client.create_run(experiment_id, run_name=name, start_time=base_time + offset * 1000)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, base_time, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()])
        client.set_terminated(run.info.run_id, end_time=base_time + offset * 1000 + 500)
        ids[name] = run.info.run_id
    return ids


def names(client, experiment_id, filter_string, order_by):
    runs = client.search_runs([experiment_id], filter_string, order_by=order_by)
    return [r.info.run_name for r in runs]


@pytest.fixture(scope="module")
def kiln_seeded(kiln, monkeypatch_module):
    monkeypatch_module.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    client = MlflowClient(tracking_uri=kiln.url)
    exp = client.create_experiment(f"search-{random.randrange(1 << 30)}")
    seed(client, exp)
    return client, exp


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.parametrize("filter_string,order_by,expected", CASES)
def test_search_matches_computed_answer(kiln_seeded, filter_string, order_by, expected):
    client, exp = kiln_seeded
    got = names(client, exp, filter_string, order_by)
    assert got == expected


@pytest.fixture(scope="module")
def both_seeded(kiln_seeded, mlflow_server):
    peer = MlflowClient(tracking_uri=mlflow_server)
    exp = peer.create_experiment(f"search-{random.randrange(1 << 30)}")
    seed(peer, exp)
    return kiln_seeded, (peer, exp)


# Filters Kiln accepts that mlflow server rejects (IN on params and run names): Kiln may accept more, never fewer.
KILN_EXTENSIONS = {"params.depth IN ('3', '10')", "attributes.run_name IN ('r1', 'r3')", "attributes.run_name NOT IN ('r1', 'r3')"}


@pytest.mark.parametrize("filter_string,order_by,expected", [c for c in CASES if c[0] not in KILN_EXTENSIONS])
def test_search_matches_real_mlflow_server(both_seeded, monkeypatch, filter_string, order_by, expected):
    (kiln_client, kiln_exp), (peer, peer_exp) = both_seeded
    ours = names(kiln_client, kiln_exp, filter_string, order_by)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    theirs = names(peer, peer_exp, filter_string, order_by)
    assert ours == theirs


def test_search_pages_without_gaps_or_repeats(kiln_seeded):
    client, exp = kiln_seeded
    seen, token = [], None
    while True:
        page = client.search_runs([exp], "", order_by=["metrics.acc DESC"], max_results=4, page_token=token)
        seen += [r.info.run_name for r in page]
        token = page.token
        if not token:
            break
    assert seen == ["r2", "r5", "r0", "r1", "r3", "r4"]
