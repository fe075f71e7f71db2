"""TEST FIXTURE: the small drops and clean ``featurestore ingest`` run that the kill -9 modules
of the compaction, the partials and the column backfill compare their killed-then-rerun stores
with, and
:func:`run_in_process`, how those modules run the commands they do not kill."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def ingest_cli(raw: Path, store: Path, *more: str) -> dict:
    """``featurestore ingest`` as the kill -9 modules run it: the real CLI in its own process
    group with its own one-worker cluster (:func:`benchmarks.reliability.run_cli`)."""
    from benchmarks.reliability import run_cli

    return run_cli(["ingest", str(raw), "--store", str(store), "--workers", "1",
                    "--no-progress", *more])


def run_in_process(args: list[str], scheduler: str | None = None) -> dict:
    """``featurestore ARGS`` through the CLI's ``main`` in this process, on the running
    cluster at ``scheduler`` when given (:func:`tests._generated_store.cli_in_process`).

    For the runs a kill -9 test does not kill: the clean reference and the run after the
    kill. What they write and their exit code are what the tests check, not how the process
    ends, so they need no interpreter and no cluster of their own (each took ~4 s more as a
    subprocess starting its own). The killed runs stay real subprocesses with their own
    cluster (:func:`ingest_cli`, :func:`benchmarks.reliability.run_cli`): the kill takes the
    CLI, the scheduler and the workers together.

    Args:
        args: the command line after ``featurestore``.
        scheduler: a running Dask scheduler's address, passed as ``--scheduler``.

    Returns:
        ``{"rc", "stdout", "stderr"}``, as :func:`benchmarks.reliability.run_cli` names them.
    """
    from tests._generated_store import cli_in_process

    more = ["--scheduler", scheduler] if scheduler else []
    done = cli_in_process(*args, *more, check=False)
    return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def rerun_in_process(scheduler: str) -> Callable[[list[str]], dict]:
    """A ``rerun`` for :class:`benchmarks.reliability.Harness`: the step's command after the
    kill, in this process on the running cluster at ``scheduler`` (its ``--workers`` dropped)
    through :func:`run_in_process`."""
    def rerun(args: list[str]) -> dict:
        i = args.index("--workers") if "--workers" in args else None
        return run_in_process(args if i is None else args[:i] + args[i + 2:], scheduler)

    return rerun


def ingest_in_process(raw: Path, store: Path, scheduler: str, *more: str) -> dict:
    """``featurestore ingest`` as :func:`ingest_cli` runs it, in this process on the running
    cluster at ``scheduler`` (:func:`run_in_process`)."""
    return run_in_process(["ingest", str(raw), "--store", str(store), "--no-progress", *more],
                          scheduler)


def build(folder: Path, scheduler: str) -> None:
    """``folder/raw``: 3 days x 3 files with bad rows and 15% late hits; ``folder/store``: one
    clean ``featurestore ingest`` of them on the running cluster at ``scheduler``."""
    from featurestore.generate import generate_weblog

    generate_weblog(str(folder / "raw"), days=3, customers=120, products=15, rows_per_day=900,
                    parts=3, seed=5, bad_rows=0.01, late_fraction=0.15)
    done = ingest_in_process(folder / "raw", folder / "store", scheduler)
    assert done["rc"] == 0, done["stderr"][-2000:]
