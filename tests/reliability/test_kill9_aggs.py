"""kill -9 during ingest (with its materialization) and backfill of a repository with SPEC §3a
features (every aggregation, lifetime and tiled windows, where filters, an expression): the
next run proceeds alone and every table equals a clean run's (partial states, day states,
chained state and tiles are all rebuilt or reused consistently)."""

from __future__ import annotations

import random

import pytest
import yaml

from benchmarks.reliability import Harness
from featurestore.features.definitions import DEFAULT_REPO
from tests.reliability._clean_ingest import rerun_in_process

STEPS = ("ingest", "backfill")
EXTRA = {
    "hits_life": {"aggregation": "count", "filter": {"where": [
        {"column": "post_page_event", "op": "eq", "value": "0"}]}},
    "price_mean_7d": {"aggregation": "mean", "field": "price", "window_days": 7},
    "price_sd_30d": {"aggregation": "stddev", "field": "price", "window_days": 30},
    "qty_sum_life": {"aggregation": "sum", "field": "quantity"},
    "price_min_20d": {"aggregation": "min", "field": "price", "window_days": 20},
    "price_max_life": {"aggregation": "max", "field": "price"},
    "first_product": {"aggregation": "first", "field": "product_id"},
    "last_product_9d": {"aggregation": "last", "field": "product_id", "window_days": 9},
    "products_life": {"aggregation": "distinct", "field": "product_id"},
    "approx_products_30d": {"aggregation": "approx_distinct", "field": "product_id",
                            "window_days": 30},
    "top_products_30d": {"aggregation": "top_k", "field": "product_id", "k": 3,
                         "window_days": 30},
    "days_since_cart_view": {"aggregation": "recency", "filter": {"event_id": "12", "where": [
        {"column": "post_page_event", "op": "in", "value": ["0", "100"]}]}},
    "revenue_per_purchase": {"expression": "revenue_30d / purchases_30d"},
}


def aggs_repo(path) -> None:
    """The default repository plus one SPEC §3a feature of every kind, written to ``path``."""
    repo = yaml.safe_load(DEFAULT_REPO.read_text())
    repo["tables"]["customer_features"]["features"].update(EXTRA)
    path.write_text(yaml.safe_dump(repo, sort_keys=False))


@pytest.fixture(scope="module")
def harness(tmp_path_factory, client):
    work = tmp_path_factory.mktemp("kill9aggs")
    aggs_repo(work / "repo.yaml")
    # the run after each kill: in process on the session cluster (as in test_kill9)
    return Harness(work, repo=work / "repo.yaml", steps=STEPS,
                   rerun=rerun_in_process(client.scheduler.address))


@pytest.mark.parametrize("step", STEPS)
def test_kill9_with_aggregations_then_next_run_equals_clean_run(harness, step):
    fraction = random.Random(f"kill9-aggs-{step}").uniform(0.3, 0.8)
    result = harness.trial(step, fraction, f"trial-{step}")
    # a failure prints the whole trial: kill moment, per-table differences, both runs' stderr
    assert result["next_rc"] == 0, result
    assert result["rows_lost"] == 0 and result["rows_duplicated"] == 0, result
    if not result["killed"]:
        pytest.skip(f"the machine was fast: {step} ended before {result['kill_after']} s")
