"""Issue #18 item 1: a partial belongs to its source file's commit. ``featurestore ingest``
(the real CLI, its own cluster) killed with SIGKILL mid-run, then run again with no manual
step, leaves the same tables and the same partials, byte for byte, as one clean run."""

from __future__ import annotations

from pathlib import Path

from benchmarks.reliability import compare, snapshot
from tests.reliability._clean_ingest import ingest_cli


def _count(root: Path, pattern: str) -> int:
    return sum(1 for _ in root.rglob(pattern)) if root.exists() else 0


def _partials(store: Path) -> dict[str, bytes]:
    root = store / "_partials"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.arrow"))}


def test_kill9_mid_ingest_then_rerun_equals_clean_run(clean_ingest, tmp_path):
    # the shared clean run (read-only): 9 files with bad rows and late hits, one worker
    raw, clean = clean_ingest
    files = _count(raw, "*.tsv.gz")
    theirs = _partials(clean)
    assert files == 9 and len(theirs) >= 2 * files
    # Kill points set by what the run has written: right after the first partials (its
    # events and ledger record not yet all written), and halfway through the clean run's.
    for n, kill_at in enumerate((1, len(theirs) // 2)):
        store = tmp_path / f"killed-{n}"
        killed = ingest_cli(raw, store,
                            kill_when=lambda: _count(store / "_partials", "*.arrow") >= kill_at)
        assert killed["killed"], "the ingest finished before the kill point"
        # killed mid-run: fewer partials than the clean run's
        assert _count(store / "_partials", "*.arrow") < len(theirs)
        again = ingest_cli(raw, store)
        assert again["rc"] == 0, again["stderr"][-2000:]
        figures = compare(snapshot(clean, tmp_path / "none"), snapshot(store, tmp_path / "none"))
        assert figures == {"rows_lost": 0, "rows_duplicated": 0}
        ours = _partials(store)
        assert ours.keys() == theirs.keys()
        assert all(ours[k] == theirs[k] for k in ours)
