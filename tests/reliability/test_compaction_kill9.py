"""Issue #14 item 2: the events compaction keeps exactly-once. The real ``featurestore ingest``
CLI (its own cluster) is killed with SIGKILL at each step of the compaction (the
``FEATURESTORE_TEST_CRASH_AT`` hook kills its whole process group, as ``kill -9`` of the
group), then run again with no manual step: the store holds the same tables as one clean run,
and the same events files byte for byte. The runs that are not killed (the run after the kill,
the clean references) are the CLI's ``main`` in the test process on the session cluster
(:func:`tests.reliability._clean_ingest.run_in_process`)."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
from pathlib import Path

import pytest

from benchmarks.reliability import compare, snapshot
from featurestore.events_compaction import COMPACTION, CRASH_ENV
from tests.reliability._clean_ingest import ingest_cli, ingest_in_process


@pytest.fixture(scope="module")
def raw(clean_ingest) -> Path:
    return clean_ingest[0]


def _ingest(raw: Path, store: Path, *more: str) -> dict:
    """The killed run: the real CLI, its own process group and cluster."""
    return ingest_cli(raw, store, *more)


def _events(store: Path) -> dict[str, str]:
    """Every events file (name -> sha256) and every compaction record less its time."""
    out = {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
           for p in sorted((store / "events").rglob("*.parquet"))}
    for p in sorted((store / "_ledger" / "weblog" / COMPACTION).rglob("*.json")):
        record = json.loads(p.read_text())
        record.pop("created_at", None)
        out[str(p.relative_to(store))] = json.dumps(record, sort_keys=True)
    return out


def _assert_same_as_clean(store: Path, clean: Path, tmp_path: Path) -> None:
    none = tmp_path / "none"
    assert compare(snapshot(clean, none), snapshot(store, none)) == {
        "rows_lost": 0, "rows_duplicated": 0}
    assert _events(store) == _events(clean)
    assert not (store / "_ledger" / "weblog" / COMPACTION / "_running.json").exists()


@pytest.fixture(scope="module")
def clean(clean_ingest) -> Path:
    """One clean ``ingest`` of ``raw`` (shared with the other kill -9 modules: read-only)."""
    store = clean_ingest[1]
    assert any(p.name.startswith("part-c") for p in (store / "events").rglob("*.parquet"))
    return store


@pytest.mark.parametrize("step", ["after-output", "after-record", "mid-deletes"])
def test_kill9_at_each_compaction_step_then_rerun_equals_clean_run(step, raw, clean, tmp_path,
                                                                   monkeypatch, client):
    store = tmp_path / "store"
    monkeypatch.setenv(CRASH_ENV, f"compaction:{step}")
    killed = _ingest(raw, store)
    assert killed["rc"] == -signal.SIGKILL, killed["stderr"][-2000:]
    assert (store / "_ledger" / "weblog" / COMPACTION / "_running.json").exists()
    monkeypatch.delenv(CRASH_ENV)
    again = ingest_in_process(raw, store, client.scheduler.address)
    assert again["rc"] == 0, again["stderr"][-2000:]
    _assert_same_as_clean(store, clean, tmp_path)


def _change_one_file(raw: Path, into: Path) -> None:
    """``into``: a copy of ``raw`` whose first drop's first file is resent with other content
    (half its lines), manifest updated."""
    import gzip

    shutil.copytree(raw, into)
    day = sorted(p for p in into.iterdir() if p.is_dir())[0]
    target = day / "hit_data-0000.tsv.gz"
    lines = gzip.decompress(target.read_bytes()).splitlines(keepends=True)
    data = gzip.compress(b"".join(lines[: len(lines) // 2]))
    target.write_bytes(data)
    manifest = json.loads((day / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["name"] == target.name:
            entry["md5"] = hashlib.md5(data).hexdigest()
            entry.pop("records", None)
    (day / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def replaced(raw, clean, tmp_path_factory, client) -> tuple[Path, Path]:
    """``(changed, reference)``: the raw root with one file resent, and the clean sequence
    (the clean ingest, then ``ingest --accept-changed`` of the change). Built once for both
    kill points (each test kills and re-runs on its own copy of ``clean``); read-only."""
    work = tmp_path_factory.mktemp("replaced")
    changed, reference = work / "changed", work / "reference"
    _change_one_file(raw, changed)
    shutil.copytree(clean, reference)
    done = ingest_in_process(changed, reference, client.scheduler.address, "--accept-changed")
    assert done["rc"] == 0, done["stderr"][-2000:]
    return changed, reference


@pytest.mark.parametrize("step", ["rewrite-after-output", "rewrite-after-record"])
def test_kill9_while_a_replacement_rewrites_a_merged_file(step, clean, replaced, tmp_path,
                                                          monkeypatch, client):
    changed, reference = replaced
    store = tmp_path / "store"
    shutil.copytree(clean, store)
    monkeypatch.setenv(CRASH_ENV, f"compaction:{step}")
    killed = _ingest(changed, store, "--accept-changed")
    assert killed["rc"] == -signal.SIGKILL, killed["stderr"][-2000:]
    monkeypatch.delenv(CRASH_ENV)
    again = ingest_in_process(changed, store, client.scheduler.address, "--accept-changed")
    assert again["rc"] == 0, again["stderr"][-2000:]
    _assert_same_as_clean(store, reference, tmp_path)
    assert _events(store) != _events(clean)  # the change landed
