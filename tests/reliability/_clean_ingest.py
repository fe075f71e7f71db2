"""TEST FIXTURE: the small drops and clean ``featurestore ingest`` run that the kill -9 modules
of the compaction and the column backfill compare their killed-then-rerun stores with."""

from __future__ import annotations

from pathlib import Path


def ingest_cli(raw: Path, store: Path, *more: str) -> dict:
    """``featurestore ingest`` as the kill -9 modules run it: the real CLI in its own process
    group with its own one-worker cluster (:func:`benchmarks.reliability.run_cli`)."""
    from benchmarks.reliability import run_cli

    return run_cli(["ingest", str(raw), "--store", str(store), "--workers", "1",
                    "--no-progress", *more])


def build(folder: Path) -> None:
    """``folder/raw``: 3 days x 3 files with bad rows and 15% late hits; ``folder/store``: one
    clean :func:`ingest_cli` of them."""
    from featurestore.generate import generate_weblog

    generate_weblog(str(folder / "raw"), days=3, customers=120, products=15, rows_per_day=900,
                    parts=3, seed=5, bad_rows=0.01, late_fraction=0.15)
    done = ingest_cli(folder / "raw", folder / "store")
    assert done["rc"] == 0, done["stderr"][-2000:]
