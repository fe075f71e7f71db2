"""A run killed at any moment, then re-run, leaves exactly the tables of one clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from featurestore import Store
from featurestore.generate import generate_weblog
from featurestore.sources.weblog import discover_files
from featurestore.sources.weblog.ingest import LEDGER, _ingest_one, ingest_weblog
from tests.reference import store_tables

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def many_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash") / "raw"
    generate_weblog(str(root), days=6, customers=400, products=40, rows_per_day=3000, parts=4,
                    seed=5, bad_rows=0.01, late_fraction=0.05)
    return root


@pytest.fixture(scope="module")
def clean_tables(many_files, tmp_path_factory, client) -> dict[str, pd.DataFrame]:
    """The tables of one clean ingest of ``many_files``, the reference of every test here
    (built once, not once per test)."""
    clean = Store(str(tmp_path_factory.mktemp("clean") / "store"))
    ingest_weblog(str(many_files), clean, client=client)
    return store_tables(clean)


def _records(ledger: Path) -> list[Path]:
    """Per-file ledger records (not the events compaction's marker and records, nor the
    temporary file of a record being written: a kill can land mid-write)."""
    return [p for p in ledger.rglob("*.json")
            if "_compaction" not in p.parts and not p.name.startswith(".")]


@pytest.mark.parametrize("kill_after_files", [1, 12])
def test_killed_ingest_then_rerun_equals_clean_run(many_files, clean_tables, tmp_path, client,
                                                  kill_after_files):
    store_dir = tmp_path / "store"
    cmd = [sys.executable, "-m", "featurestore", "ingest", str(many_files), "--store",
           str(store_dir), "--workers", "1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ledger = store_dir / LEDGER
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(_records(ledger)) >= kill_after_files:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: CLI, scheduler and workers
    proc.wait()
    done = len(_records(ledger))
    assert 1 <= done < 24, f"kill landed after {done} of 24 files; the test needs a mid-run kill"
    # The killed run's lease is still there; the next run takes it over (its PID is gone).
    assert (store_dir / "_lock.json").exists()

    rerun = ingest_weblog(str(many_files), Store(str(store_dir)), client=client)
    assert rerun.files_skipped == done and rerun.files_ingested == 24 - done
    got = store_tables(Store(str(store_dir)))
    assert got.keys() == clean_tables.keys()
    for name, df in clean_tables.items():
        pd.testing.assert_frame_equal(got[name], df)


def test_crash_between_publish_and_ledger_is_redone_without_duplicates(many_files, clean_tables,
                                                                      tmp_path, client):
    """The narrowest window: outputs published, ledger record not yet written."""
    store = Store(str(tmp_path / "store"))
    files, _ = discover_files(str(many_files))
    _ingest_one(store, files[0], {})
    store.remove(LEDGER, files[0].drop_date.isoformat(), f"{files[0].name}.json")
    ingest_weblog(str(many_files), store, client=client)
    got = store_tables(store)
    assert got.keys() == clean_tables.keys()
    for name, df in clean_tables.items():
        pd.testing.assert_frame_equal(got[name], df)


def test_live_lock_names_its_owner_and_expired_one_is_taken_over(tmp_path, many_files):
    from featurestore import StoreLockedError

    store = Store(str(tmp_path / "store"))
    store.write_json({"owner": "host:1:dead", "purpose": "ingest weblog", "since": "now",
                      "expires": "2999-01-01T00:00:00+00:00"}, "_lock.json")
    with pytest.raises(StoreLockedError, match="locked by host:1:dead .*expires at 2999"):
        ingest_weblog(str(many_files), store)
    store.write_json({"owner": "host:1:dead", "purpose": "ingest weblog", "since": "then",
                      "expires": "2000-01-01T00:00:00+00:00"}, "_lock.json")
    with store.lock("expired locks are taken over"):
        assert store.read_json("_lock.json")["purpose"] == "expired locks are taken over"
