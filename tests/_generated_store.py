"""TEST FIXTURE: one generated store built through the real CLI, shared by the CLI and the
executed-docs tests. ``featurestore-data/raw`` holds generated web-log drops (ids ``C000000``...,
``P00000``...: what :mod:`featurestore.generate` really makes), ``featurestore-data/store`` the
ingested and materialized store, with the Online Retail sample ingested too (``--source
retail``), so every command of the docs has data to work on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ONLINE_RETAIL = ROOT.parent / "shared" / "data" / "online_retail.csv.gz"

#: Long enough for complete 30-day label windows and a train/validation/test split.
DAYS = 45
START = "2026-01-01"


def cli_env(**extra: str) -> dict[str, str]:
    """The environment a CLI subprocess gets: this checkout's code first on the path, the
    venv's ``featurestore`` script on PATH, no settings leaking in from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra)
    return env


def cli(*args: str, cwd: Path | None = None, check: bool = True, timeout: float = 600,
        **env: str) -> subprocess.CompletedProcess:
    """``featurestore ARGS`` in a subprocess (``python -m featurestore``)."""
    r = subprocess.run([sys.executable, "-m", "featurestore", *args], cwd=cwd or ROOT,
                       env=cli_env(**env), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"featurestore {' '.join(args)} exited {r.returncode}:\n"
                             f"{r.stdout}\n{r.stderr}")
    return r


def cli_in_process(*args: str, cwd: Path | None = None, check: bool = True,
                   **env: str) -> subprocess.CompletedProcess:
    """``featurestore ARGS`` through :func:`featurestore.cli.main` in this process, as
    :func:`cli` runs it (same working directory, no ``FEATURESTORE_*`` settings but ``env``),
    for tests that check what a command prints and returns rather than process-level
    behaviour (signals, terminals, a fresh interpreter): no interpreter start per call.

    Returns:
        A CompletedProcess with the exit code and the captured stdout and stderr.
    """
    import contextlib
    import io
    import logging

    from featurestore.cli import main

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    # the command's logging.basicConfig adds a root handler on this call's stderr when the host
    # has none (pytest -p no:logging): removed after the call, so a later call's warning is not
    # written to a closed buffer. A handler left so by a direct call of main() (on a capture
    # buffer closed since) can never write again: dropped, or a warning of this command would
    # print "--- Logging error ---" and a traceback into its stderr
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(getattr(handler, "stream", None), "closed", False):
            root.removeHandler(handler)
    saved_handlers, saved_level = list(root.handlers), root.level
    out, err = io.StringIO(), io.StringIO()
    try:
        for key in [k for k in os.environ if k.upper().startswith("FEATURESTORE_")]:
            del os.environ[key]
        os.environ.update(env)
        os.chdir(cwd or ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors and --help
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        for handler in [h for h in root.handlers if h not in saved_handlers]:
            root.removeHandler(handler)
        root.setLevel(saved_level)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    r = subprocess.CompletedProcess(["featurestore", *args], code, out.getvalue(),
                                    err.getvalue())
    if check and r.returncode != 0:
        raise AssertionError(f"featurestore {' '.join(args)} exited {r.returncode}:\n"
                             f"{r.stdout}\n{r.stderr}")
    return r


def build(work: Path, scheduler: str | None = None, retail: bool = True) -> Path:
    """Generate drops and build the store under ``work/featurestore-data``.

    Args:
        work: the folder to build in (becomes the docs' working directory).
        scheduler: a running Dask scheduler to use (faster than a cluster per command).
        retail: also ingest the Online Retail sample.

    Returns:
        ``work/featurestore-data``.
    """
    data = work / "featurestore-data"
    sched = ["--scheduler", scheduler] if scheduler else []
    # on a running cluster the commands run in process (what they leave behind is what the
    # tests read; no interpreter start per command), else each starts its own as a user's does
    run = cli_in_process if scheduler else cli
    run("generate", str(data / "raw"), "--days", str(DAYS), "--customers", "400",
        "--products", "40", "--rows-per-day", "600", "--parts", "1", "--start", START,
        "--seed", "3", "--bad-rows", "0.002", "--late-fraction", "0.02")
    run("ingest", str(data / "raw"), "--store", str(data / "store"), *sched, "--no-progress")
    if retail:
        run("ingest", str(ONLINE_RETAIL), "--source", "retail", "--store", str(data / "store"),
            *sched, "--no-progress")
    return data
