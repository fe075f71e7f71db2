"""Issue 26 item 4: the backfill of a newly declared column is exactly once and crash-safe.
The real ``featurestore backfill`` CLI (its own cluster) is killed with SIGKILL at each step
(the ``FEATURESTORE_TEST_CRASH_AT`` hook kills its whole process group, as ``kill -9`` of the
group, from the client or from a worker mid-task), then run again with no manual step: every
table, the events with the new columns and the completeness record equal one clean run's."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

from benchmarks.reliability import compare, run_cli, snapshot
from featurestore.features.definitions import DEFAULT_REPO
from featurestore.sources.weblog.backfill import COLUMNS_RECORD, CRASH_ENV
from tests.reliability._clean_ingest import run_in_process

COLUMNS = "{visit_num: int, evar12: float, post_channel: string}"


def _repo(path: Path) -> Path:
    anchor = "    kind: weblog\n    table: events\n"
    path.write_text(DEFAULT_REPO.read_text().replace(anchor,
                                                     anchor + f"    columns: {COLUMNS}\n"))
    return path


@pytest.fixture(scope="module")
def ingested(clean_ingest, tmp_path_factory) -> Path:
    """A store ingested without the columns (a copy of the shared clean ingest of small
    drops), then given a repository declaring them (``featurestore apply``)."""
    store = tmp_path_factory.mktemp("ingested") / "store"
    shutil.copytree(clean_ingest[1], store)
    repo = _repo(tmp_path_factory.mktemp("repo") / "repo.yaml")
    done = run_in_process(["apply", "--repo", str(repo), "--store", str(store)])
    assert done["rc"] == 0, done["stderr"][-2000:]
    return store


def _backfill(store: Path) -> dict:
    """The killed run: the real CLI, its own process group and one-worker cluster."""
    return run_cli(["backfill", "--store", str(store), "--workers", "1"])


def _backfill_in_process(store: Path, client) -> dict:
    """A run that is not killed: in this process on the session cluster."""
    return run_in_process(["backfill", "--store", str(store)], client.scheduler.address)


@pytest.fixture(scope="module")
def clean(ingested, tmp_path_factory, client) -> Path:
    store = tmp_path_factory.mktemp("clean") / "store"
    shutil.copytree(ingested, store)
    done = _backfill_in_process(store, client)
    assert done["rc"] == 0, done["stderr"][-2000:]
    return store


def _events(store: Path) -> pd.DataFrame:
    df = ds.dataset(str(store / "events"), format="parquet", partitioning="hive").to_table(
    ).to_pandas()
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def _record(store: Path) -> dict:
    record = json.loads((store / COLUMNS_RECORD).read_text()) if (
        store / COLUMNS_RECORD).exists() else {}
    record.pop("written_at", None)
    return record


@pytest.mark.parametrize("step", ["task-before-events", "task-after-events", "after-first-file",
                                  "before-record"])
def test_kill9_during_backfill_then_rerun_equals_clean_run(step, ingested, clean, tmp_path,
                                                           monkeypatch, client):
    store = tmp_path / "store"
    shutil.copytree(ingested, store)
    monkeypatch.setenv(CRASH_ENV, f"backfill:{step}")
    killed = _backfill(store)
    assert killed["rc"] == -signal.SIGKILL, killed["stderr"][-2000:]
    monkeypatch.delenv(CRASH_ENV)
    again = _backfill_in_process(store, client)
    assert again["rc"] == 0, again["stderr"][-2000:]
    none = tmp_path / "none"
    assert compare(snapshot(clean, none), snapshot(store, none)) == {
        "rows_lost": 0, "rows_duplicated": 0}
    got, want = _events(store), _events(clean)
    assert {"visit_num", "evar12", "post_channel"} <= set(got.columns)
    pd.testing.assert_frame_equal(got, want)
    assert got["visit_num"].notna().all()
    assert _record(store) == _record(clean)
