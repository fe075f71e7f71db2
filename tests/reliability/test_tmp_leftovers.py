"""A write killed between writing its temporary file and renaming it into place leaves that
file behind. The next writing run, with no manual step, removes it: the store then holds
exactly what one clean run leaves, byte for byte, with no stray temporary files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from benchmarks.reliability import ROOT, compare, snapshot
from tests._generated_store import cli_in_process

#: A writer that takes the store's lease, starts publishing one file as every writer does
#: (``Store.publishing``), writes half of it and is killed with SIGKILL before the rename.
_KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from featurestore.storage import Store

    store = Store(sys.argv[1])
    with store.lock("ingest"):
        with store.publishing("events", "date=2020-01-01", "part.parquet") as tmp:
            with open(tmp, "wb") as f:
                f.write(b"PAR1 half a file")
            os.kill(os.getpid(), signal.SIGKILL)
""")


def _drops(raw: Path) -> None:
    from featurestore.generate import generate_weblog

    generate_weblog(str(raw), days=2, customers=60, products=10, rows_per_day=300, parts=2,
                    seed=3, bad_rows=0.0, late_fraction=0.0)


def _ingest(raw: Path, store: Path, scheduler: str) -> subprocess.CompletedProcess:
    # in process on the session's cluster: what is checked is the store, not the process
    return cli_in_process("ingest", str(raw), "--store", str(store), "--scheduler", scheduler,
                          "--no-progress", check=False)


def _stray(store: Path) -> list[str]:
    """Every temporary file anywhere in the store (the ``.tmp-*`` and ``.tmp/*`` names)."""
    return sorted(str(p.relative_to(store)) for p in store.rglob("*")
                  if p.is_file() and any(part.startswith(".tmp") for part in
                                         p.relative_to(store).parts))


def _kill_a_writer(store: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(store)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]


def test_next_run_removes_what_a_killed_write_left(tmp_path, client):
    raw = tmp_path / "raw"
    _drops(raw)
    clean, store = tmp_path / "clean", tmp_path / "store"
    scheduler = client.scheduler.address
    assert _ingest(raw, clean, scheduler).returncode == 0

    # killed before any run: the stray file is there, half written, and no table shows it
    _kill_a_writer(store)
    assert len(_stray(store)) == 1
    first = _ingest(raw, store, scheduler)
    assert first.returncode == 0, first.stderr[-2000:]
    assert _stray(store) == []

    # killed after a run, then a run with nothing new to do: it still cleans up
    _kill_a_writer(store)
    assert len(_stray(store)) == 1
    again = _ingest(raw, store, scheduler)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _stray(store) == []
    figures = compare(snapshot(clean, tmp_path / "none"), snapshot(store, tmp_path / "none"))
    assert figures == {"rows_lost": 0, "rows_duplicated": 0}
    # and the store holds the same files as the clean run's, nothing more
    ours = {str(p.relative_to(store)) for p in store.rglob("*") if p.is_file()}
    theirs = {str(p.relative_to(clean)) for p in clean.rglob("*") if p.is_file()}
    assert ours - theirs <= {"_lock.json"}
