"""Issue #18 item 1: a partial belongs to its source file's commit. ``featurestore ingest``
(the real CLI, its own cluster) killed with SIGKILL mid-run, then run again with no manual
step, leaves the same tables and the same partials, byte for byte, as one clean run."""

from __future__ import annotations

from pathlib import Path

from benchmarks.reliability import compare, run_cli, snapshot


def _drops(raw: Path) -> None:
    from featurestore.generate import generate_weblog

    generate_weblog(str(raw), days=6, customers=200, products=20, rows_per_day=1500, parts=3,
                    seed=8, bad_rows=0.01, late_fraction=0.1)


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


def test_kill9_mid_ingest_then_rerun_equals_clean_run(tmp_path):
    raw = tmp_path / "raw"
    _drops(raw)
    clean = tmp_path / "clean"
    first = _ingest(raw, clean)
    assert first["rc"] == 0, first["stderr"][-2000:]
    # Kill points set by what the run has written (18 files, one worker): right after the
    # first partials (its events and ledger record not yet all written), and mid-run.
    for n, kill_at in enumerate((1, 7)):
        store = tmp_path / f"killed-{n}"
        killed = _ingest(raw, store,
                         kill_when=lambda: _count(store / "_partials", "*.arrow") >= kill_at)
        assert killed["killed"], "the ingest finished before the kill point"
        # killed mid-run: fewer partials than the clean run's
        assert _count(store / "_partials", "*.arrow") < _count(clean / "_partials", "*.arrow")
        again = _ingest(raw, store)
        assert again["rc"] == 0, again["stderr"][-2000:]
        figures = compare(snapshot(clean, tmp_path / "none"), snapshot(store, tmp_path / "none"))
        assert figures == {"rows_lost": 0, "rows_duplicated": 0}
        ours, theirs = _partials(store), _partials(clean)
        assert ours.keys() == theirs.keys() and len(ours) >= 2 * 6 * 3
        assert all(ours[k] == theirs[k] for k in ours)
