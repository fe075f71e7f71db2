"""Mistakes a newcomer makes are one actionable error line and the right exit code, before any
cluster starts (the real CLI, in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "featurestore", *args], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=120)


def _one_line(r: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert r.returncode == code, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr
    assert all(w in lines[-1] for w in words), lines


def test_missing_raw_path(tmp_path):
    r = _cli("ingest", str(tmp_path / "nope"), "--store", str(tmp_path / "store"))
    _one_line(r, 2, "featurestore ingest: error:", "does not exist")
    assert len(r.stderr.strip().splitlines()) == 1


def test_date_in_the_wrong_format(tmp_path):
    r = _cli("run-daily", "--store", str(tmp_path / "s"), "--raw", str(tmp_path),
             "--today", "02-03-2026")
    _one_line(r, 2, "--today", "use YYYY-MM-DD")


def test_demo_never_deletes_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    r = _cli("demo", "--workdir", str(tmp_path), "--no-serve")
    _one_line(r, 2, "not made by the demo", "--force")
    assert (tmp_path / "mine.txt").read_text() == "precious"


@pytest.mark.parametrize("command", [["tables"], ["show", "--table", "customer_features",
                                                  "--customer", "C000001"]])
def test_reading_a_store_that_does_not_exist(tmp_path, command):
    r = _cli(*command, "--store", str(tmp_path / "nope"))
    _one_line(r, 2, "error:")
    assert not (tmp_path / "nope").exists()


def test_training_set_range_backwards(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    r = _cli("training-set", "--store", str(store), "--from", "2026-03-01", "--to",
             "2026-01-01", "--out", str(tmp_path / "out"))
    _one_line(r, 2, "--from 2026-03-01 is after --to 2026-01-01")


def test_global_options_before_or_after_the_subcommand(tmp_path):
    missing = str(tmp_path / "nope")
    for argv in (["--store", missing, "tables"], ["tables", "--store", missing, "-v"],
                 ["-v", "tables", "--store", missing, "--config", str(tmp_path / "none.yaml")]):
        r = _cli(*argv)
        assert "unrecognized arguments" not in r.stderr and r.returncode in (1, 2), r.stderr
        assert "nope" in r.stderr or "none.yaml" in r.stderr, (argv, r.stderr)


def test_help_shows_defaults():
    r = _cli("ingest", "--help")
    assert r.returncode == 0 and "(default: weblog)" in r.stdout



# -- issue #30: defects a newcomer hit ----------------------------------------------------------
def test_ingest_with_the_arguments_swapped(tmp_path, drops):
    raw, _ = drops
    store = tmp_path / "store"
    assert _cli("apply", "--store", str(store)).returncode == 0  # a real (empty) store
    before = sorted(p.name for p in raw.iterdir())
    r = _cli("ingest", str(store), "--store", str(raw))  # STORE --store RAW
    _one_line(r, 2, "featurestore ingest: error:", "is a feature store", "swapped")
    assert len(r.stderr.strip().splitlines()) == 1 and "ingested" not in r.stdout
    assert sorted(p.name for p in raw.iterdir()) == before  # nothing written into the drops


def test_ingest_of_a_folder_without_drop_folders(tmp_path):
    empty = tmp_path / "raw"
    (empty / "notes").mkdir(parents=True)
    r = _cli("ingest", str(empty), "--store", str(tmp_path / "store"))
    _one_line(r, 2, "featurestore ingest: error:", "holds no YYYY-MM-DD drop folders")
    assert len(r.stderr.strip().splitlines()) == 1 and "ingested" not in r.stdout


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_serve_port_outside_1_to_65535_is_a_usage_error(tmp_path, port):
    r = _cli("serve", "--store", str(tmp_path), "--port", port)
    _one_line(r, 2, "--port", "1-65535")
    assert r.stdout == ""


def test_serve_port_in_use_is_one_line_exit_1(tmp_path):
    import socket

    store = tmp_path / "store"
    assert _cli("init", "--store", str(store)).returncode == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = _cli("serve", "--store", str(store), "--port", str(port))
    _one_line(r, 1, "featurestore serve: error:", f"port {port}", "in use")
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr  # no uvicorn log
    assert "startup" not in r.stderr.lower() and "serving" not in r.stdout


def test_serve_and_apply_print_the_store_as_an_absolute_url(tmp_path):
    import socket

    assert _cli("init", "--store", "store", cwd=tmp_path).returncode == 0
    absolute = str((tmp_path / "store").resolve())
    applied = _cli("apply", "--store", "store", cwd=tmp_path)
    assert applied.stdout.splitlines()[0] == f"store: {absolute}", applied.stdout
    assert f"in {absolute} " in applied.stdout
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with subprocess.Popen([sys.executable, "-m", "featurestore", "serve", "--store", "store",
                           "--port", str(port), "--log-level", "warning"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True) as proc:
        try:
            first = proc.stdout.readline()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    assert first.startswith(f"serving {absolute} on http://127.0.0.1:{port}"), first
