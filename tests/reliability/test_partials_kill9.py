"""Issue #18 item 1: a partial belongs to its source file's commit. ``featurestore ingest``
(the real CLI, its own cluster) killed with SIGKILL mid-run, then run again with no manual
step, leaves the same tables and the same partials, byte for byte, as one clean run.

The clean run is the shared one of the reliability modules (``clean_ingest``: 3 days x 3
files with bad rows and late hits, one ``featurestore ingest``, read-only here), so
this module starts no clean ingest of its own. The run after each kill is the CLI's ``main`` in
the test process on the session cluster (:func:`tests.reliability._clean_ingest.run_in_process`:
no interpreter and cluster start); the killed runs are real subprocesses."""

from __future__ import annotations

from pathlib import Path

from benchmarks.reliability import compare, run_cli, snapshot
from tests.reliability._clean_ingest import ingest_in_process


def _ingest(raw: Path, store: Path, kill_when=None) -> dict:
    return run_cli(["ingest", str(raw), "--store", str(store), "--workers", "1",
                    "--no-progress"], kill_when=kill_when)


def _published(root: Path, pattern: str) -> list[Path]:
    """Files matching ``pattern``, without the ``.tmp-*`` a killed write leaves (a write
    publishes by renaming; readers never list dot files)."""
    return sorted(p for p in root.rglob(pattern) if not p.name.startswith(".")) \
        if root.exists() else []


def _count(root: Path, pattern: str) -> int:
    return len(_published(root, pattern))


def _partials(store: Path) -> dict[str, bytes]:
    root = store / "_partials"
    return {str(p.relative_to(root)): p.read_bytes() for p in _published(root, "*.arrow")}


def test_kill9_mid_ingest_then_rerun_equals_clean_run(clean_ingest, tmp_path, client):
    raw, clean = clean_ingest
    files = len(list(raw.rglob("*.tsv.gz")))
    assert files == 9
    # Kill points set by what the run has written (9 files, one worker): right after the
    # first partials (its events and ledger record not yet all written), and mid-run.
    for n, kill_at in enumerate((1, 7)):
        store = tmp_path / f"killed-{n}"
        killed = _ingest(raw, store,
                         kill_when=lambda: _count(store / "_partials", "*.arrow") >= kill_at)
        assert killed["killed"], ("the ingest finished before the kill point: "
                                  f"rc {killed['rc']}, stderr {killed['stderr'][-2000:]}")
        # killed mid-run: fewer partials than the clean run's
        assert _count(store / "_partials", "*.arrow") < _count(clean / "_partials", "*.arrow")
        again = ingest_in_process(raw, store, client.scheduler.address)
        assert again["rc"] == 0, again["stderr"][-2000:]
        figures = compare(snapshot(clean, tmp_path / "none"), snapshot(store, tmp_path / "none"))
        assert figures == {"rows_lost": 0, "rows_duplicated": 0}
        ours, theirs = _partials(store), _partials(clean)
        assert ours.keys() == theirs.keys() and len(ours) >= 2 * files
        assert all(ours[k] == theirs[k] for k in ours)
