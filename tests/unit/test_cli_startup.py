"""``featurestore --help`` and usage errors answer before Dask, pandas or pydantic load
(issue #30: under 0.3 s; ``benchmarks/cli_startup.py`` times them). Each case runs the real
command in a fresh interpreter and lists the heavy modules it imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Modules none of these answers may import (each costs 0.1-1 s of start-up).
HEAVY = ("dask", "distributed", "pandas", "pyarrow", "numpy", "numba", "scipy", "pydantic",
         "pydantic_settings", "fsspec", "sklearn", "xgboost", "fastapi", "uvicorn", "duckdb")

_PROBE = """
import atexit, runpy, sys
heavy = {heavy!r}
atexit.register(lambda: sys.stderr.write(
    "\\nHEAVY=" + ",".join(m for m in heavy if m in sys.modules) + "\\n"))
sys.argv = ["featurestore", *{argv!r}]
runpy.run_module("featurestore", run_name="__main__", alter_sys=True)
"""


def _run(argv: list[str], tmp_path: Path) -> tuple[int, str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FEATURESTORE_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY, argv=argv)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    err, _, heavy = proc.stderr.rpartition("HEAVY=")
    return proc.returncode, proc.stdout + err, [m for m in heavy.strip().split(",") if m]


def test_help_imports_no_dask(tmp_path):
    code, out, heavy = _run(["--help"], tmp_path)
    assert code == 0 and "ingest" in out and "run-daily" in out, out
    assert heavy == [], f"featurestore --help imported {heavy}"


@pytest.mark.parametrize("argv", [
    ["ingest", "--help"],
    ["no-such-command"],  # argparse: invalid choice
    ["ingest"],  # a missing argument
    ["generate", "raw", "--days", "many"],  # a bad value
    ["tables"],  # no store given anywhere (checked before the settings load)
    ["show", "--store", "s", "--customer", "C1", "--as-of", "2026-13-01"],  # a bad date
])
def test_usage_errors_import_nothing_heavy(argv, tmp_path):
    code, out, heavy = _run(argv, tmp_path)
    assert code in (0, 2), out
    if code == 2:
        assert "Traceback" not in out and "error" in out, out
    assert heavy == [], f"featurestore {' '.join(argv)} imported {heavy}"


def test_the_clis_copies_of_library_constants_match():
    """The parser's defaults come from light modules or copies; the copies must not drift."""
    from featurestore import generate
    from featurestore.cli import generate as cli_generate

    assert cli_generate.DEFAULT_FILLER_DENSITY == generate.DEFAULT_FILLER_DENSITY
    assert cli_generate.SPARSE_FILLER_DENSITY == generate.SPARSE_FILLER_DENSITY
