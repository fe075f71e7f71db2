"""Issue #16, the real CLI: no silent default store, every command names its
store first, ``init`` is the only thing that creates a bucket, ``| head`` ends like a Unix tool,
``jobs --follow``, progress bars fed by Dask task completion on a terminal only, and a human
summary by default with ``--json`` for scripts.

What a command prints and returns runs in process (``featurestore.cli.main``, issue #30: no
interpreter start per call); what is about the process itself runs in a subprocess: a closed
pipe (SIGPIPE), a terminal (progress bars), a detached retrain worker's job."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios

import boto3
import pytest

from featurestore import layout
from featurestore.cli._common import NO_STORE
from featurestore.storage import Store
from tests import _retrain_fixtures as fx
from tests._generated_store import ROOT, cli, cli_env
from tests._generated_store import cli_in_process as run

LAST = "2026-02-14"  # the last generated drop (_generated_store: 45 days from 2026-01-01)


@pytest.fixture()
def store(generated_data, tmp_path):
    """A writable copy of the generated store."""
    dest = tmp_path / "store"
    shutil.copytree(generated_data / "store", dest)
    return dest


def _error(r: subprocess.CompletedProcess, code: int, line: str) -> None:
    """Exactly one stderr line, this one, and this exit code; never a traceback."""
    assert r.returncode == code, (r.stdout, r.stderr)
    assert r.stderr.splitlines() == [line], r.stderr


@pytest.mark.parametrize("argv", [["tables"], ["ingest", "raw"], ["jobs"], ["serve"],
                                  ["retrain", "--model", "purchase-xgboost"],
                                  ["training-set", "--out", "ts"], ["apply"]])
def test_no_store_given_is_refused_not_defaulted(tmp_path, argv):
    (tmp_path / "raw").mkdir()
    r = run(*argv, cwd=tmp_path, check=False)
    _error(r, 2, f"featurestore {argv[0]}: error: {NO_STORE}")
    assert not (tmp_path / "featurestore-data").exists()  # the old silent default


def test_the_store_may_come_from_the_environment(store, tmp_path):
    r = run("tables", cwd=tmp_path, FEATURESTORE_STORE=str(store))
    assert r.stdout.splitlines()[0] == f"store: {store}"


@pytest.mark.parametrize("argv", [
    ["tables"], ["show", "--customer", "C000001"], ["models"], ["jobs"],
    ["predict"], ["recommend", "--customer", "C000001"], ["export-fm", "--out", "OUT"],
    ["training-set", "--out", "OUT"], ["serve"]])
def test_reading_commands_refuse_a_store_that_does_not_exist(tmp_path, argv):
    missing = tmp_path / "nope"
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    r = run(*argv, "--store", str(missing), check=False)
    _error(r, 2, f"featurestore {argv[0]}: error: no store at {missing}: the folder does not "
                 f"exist; check --store (FEATURESTORE_STORE) or create it with featurestore "
                 f"init --store {missing}")
    assert not missing.exists() and r.stdout == ""


@pytest.mark.parametrize(("argv", "code"), [
    (["tables"], 0), (["show", "--customer", "C000001", "--as-of", LAST], 0), (["models"], 0),
    (["jobs"], 0), (["backfill", "--from", LAST, "--to", LAST, "SCHED"], 0),
    (["training-set", "--format", "parquet", "--from", "2026-01-10", "--to", "2026-01-12",
      "--out", "OUT", "SCHED"], 0),
    (["predict", "SCHED"], 1),  # no production model yet: first line still names the store
    (["export-fm", "--out", "OUT"], 2),  # no retail data in this store
    (["apply"], 0), (["init"], 0), (["ingest", "RAW", "SCHED"], 0),
    (["run-daily", "--raw", "RAW", "--today", "2026-02-17", "SCHED"], 0)])
def test_first_line_names_the_store(store, generated_data, client, tmp_path, argv, code):
    subs = {"OUT": str(tmp_path / "out"), "RAW": str(generated_data / "raw")}
    argv = [subs.get(a, a) for a in argv]
    if "SCHED" in argv:
        argv[argv.index("SCHED"):argv.index("SCHED") + 1] = [
            "--scheduler", client.scheduler.address]
    r = run(*argv, "--store", str(store), check=False)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert r.stdout.splitlines()[0] == f"store: {store}", r.stdout
    assert "Traceback" not in r.stderr
    if code:
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(
            f"featurestore {argv[0]}: error: ")


def test_summary_by_default_json_on_request(store, client, tmp_path):
    sched = ["--scheduler", client.scheduler.address]
    args = ["training-set", "--store", str(store), "--format", "parquet", "--from",
            "2026-01-10", "--to", "2026-01-12", *sched]
    human = run(*args, "--out", str(tmp_path / "a")).stdout.splitlines()
    machine = json.loads(run(*args, "--out", str(tmp_path / "b"), "--json").stdout)
    assert machine["format"] == "parquet" and machine["rows"] > 0
    assert human[1].startswith(f"wrote {machine['rows']:,} rows to "), human
    # run-daily: one line per step for people, the whole report for scripts
    daily = ["run-daily", "--store", str(store), "--raw", str(tmp_path), "--today",
             "2026-02-17", *sched]
    (tmp_path / "empty").mkdir()
    daily[daily.index(str(tmp_path))] = str(tmp_path / "empty")
    report = json.loads(run(*daily, "--json").stdout)
    assert report["ok"] is True and report["retrain_due"] is False
    lines = run(*daily).stdout.splitlines()
    assert lines[1].startswith("run-daily for 2026-02-17: ok")
    assert "  retrain: not due today (--retrain forces it)" in lines


def test_init_creates_a_bucket_and_nothing_else_does(moto_server, tmp_path):
    s3 = boto3.client("s3", endpoint_url=moto_server)
    option = ["--storage-option", f"client_kwargs.endpoint_url={moto_server}"]
    raw = tmp_path / "raw"
    raw.mkdir()
    # ingest into a bucket that does not exist: refused before a cluster, bucket not made
    r = run("ingest", str(raw), "--store", "s3://fs-missing-bucket/store", *option,
            check=False)
    _error(r, 2, "featurestore ingest: error: bucket fs-missing-bucket of store "
                 "s3://fs-missing-bucket/store does not exist (or these credentials cannot "
                 "see it); create it with featurestore init --store s3://fs-missing-bucket/store"
                 " (buckets are never created implicitly)")
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert "fs-missing-bucket" not in names
    # init makes it; a second init changes nothing
    first = run("init", "--store", "s3://fs-missing-bucket/store", *option)
    assert first.stdout.splitlines() == [
        "store: s3://fs-missing-bucket/store",
        "created bucket fs-missing-bucket; next: featurestore ingest RAW_ROOT --store "
        "s3://fs-missing-bucket/store"]
    assert "fs-missing-bucket" in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    again = run("init", "--store", "s3://fs-missing-bucket/store", *option, "--json")
    assert json.loads(again.stdout)["created_bucket"] is None
    # an invalid bucket name is one line too
    bad = run("init", "--store", "s3://fs/store", *option, check=False)
    _error(bad, 2, "featurestore init: error: 'fs' is not a valid S3 bucket name: use 3-63 "
                   "lowercase letters, digits, dots or hyphens, starting and ending with a "
                   "letter or digit (e.g. s3://my-features/store)")


def test_init_local_folder(tmp_path):
    target = tmp_path / "a" / "store"
    r = run("init", "--store", str(target))
    assert r.stdout.splitlines()[1] == ("created folder; next: featurestore ingest RAW_ROOT "
                                        f"--store {target}")
    assert target.is_dir()


def _many_jobs(store: Store, n: int) -> None:
    for i in range(n):
        store.write_json({"job_id": f"purchase-xgboost-20260101T000000-{i:06d}",
                          "model": "purchase-xgboost", "backend": "local", "status": "completed",
                          "submitted_at": f"2026-01-01T00:00:{i % 60:02d}+00:00",
                          "model_version": f"v{i:04d}", "error": None},
                         layout.JOBS, f"purchase-xgboost-20260101T000000-{i:06d}.json")


def test_output_into_head_ends_quietly_like_a_unix_tool(tmp_path):
    store = Store(str(tmp_path / "store"))
    _many_jobs(store, 1500)  # ~150 kB of listing: more than a pipe buffer holds
    command = (f"set -o pipefail; {sys.executable} -m featurestore jobs --store {store.url} "
               "| head -1")
    r = subprocess.run(["bash", "-c", command], env=cli_env(), capture_output=True,
                       text=True, timeout=300, cwd=ROOT)
    assert r.stdout == f"store: {store.url}\n"
    assert r.stderr == ""  # no BrokenPipeError, no "Exception ignored"
    assert r.returncode == 141  # 128 + SIGPIPE, as `yes | head -1`
    # the same listing in full, for comparison: every job, exit 0
    full = run("jobs", "--store", store.url)
    assert len(full.stdout.splitlines()) == 1 + 1500


def test_jobs_lists_and_follows(tmp_path):
    export = fx.make_xgb_export(tmp_path / "export", seed=5)
    store = tmp_path / "store"
    # retrain without --wait detaches a worker process: run as a subprocess (its Popen is
    # never waited for, by design); the jobs commands run in process
    queued = cli("retrain", "--store", str(store), "--model", "purchase-xgboost",
                 "--export-url", str(export), "--json")
    job_id = json.loads(queued.stdout)["job_id"]
    r = run("jobs", job_id, "--store", str(store), "--follow", "--poll", "0.2")
    lines = r.stdout.splitlines()
    assert lines[0] == f"store: {store}"
    statuses = [line.split()[2] for line in lines[1:]]
    assert statuses[-1] == "completed" and statuses == list(dict.fromkeys(statuses))
    assert set(statuses) <= {"queued", "running", "completed"}
    assert lines[-1].endswith("purchase-xgboost on local -> version v0001")
    # a job that fails: follow exits 1 and prints the error
    bad = cli("retrain", "--store", str(store), "--model", "purchase-xgboost",
              "--export-url", str(tmp_path / "no-such-export"), "--json")
    bad_id = json.loads(bad.stdout)["job_id"]
    failed = run("jobs", bad_id, "--store", str(store), "--follow", "--poll", "0.2",
                 check=False)
    assert failed.returncode == 1 and failed.stdout.splitlines()[-1].split()[2] == "failed"
    listed = json.loads(run("jobs", "--store", str(store), "--json").stdout)["jobs"]
    assert [(j["job_id"], j["kind"], j["status"]) for j in listed] == [
        (job_id, "retrain", "completed"), (bad_id, "retrain", "failed")]
    # an unknown id: one line, exit 2
    _error(run("jobs", "nope", "--store", str(store), check=False), 2,
           f"featurestore jobs: error: no job 'nope' in {store}: featurestore jobs --store "
           f"{store} lists the recorded ones")


def _on_a_terminal(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal; returns (exit code, stdout, terminal)."""
    master, slave = pty.openpty()
    # a real terminal has a size; a fresh pty is 0x0, where tqdm draws 0 columns
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "featurestore", *argv], env=cli_env(),
                            stdout=subprocess.PIPE, stderr=slave, cwd=ROOT)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out = proc.stdout.read().decode()
    proc.stdout.close()
    code = proc.wait(timeout=300)
    os.close(master)
    return code, out, seen.decode(errors="replace")


@pytest.mark.parametrize("argv", [
    ["backfill", "--from", LAST, "--to", LAST],
    ["training-set", "--format", "parquet", "--from", "2026-01-10", "--to", "2026-01-11",
     "--out", "OUT"],
    ["run-daily", "--raw", "RAW", "--today", "2026-02-17"]])
def test_progress_from_dask_tasks_on_a_terminal_only(store, generated_data, client, tmp_path,
                                                      argv):
    raw = tmp_path / "raw"
    if argv[0] == "run-daily":  # two new drops into an empty store: work for the cluster
        shutil.rmtree(store)
        for day in ("2026-01-01", "2026-01-02"):
            shutil.copytree(generated_data / "raw" / day, raw / day)
    subs = {"OUT": str(tmp_path / "out"), "RAW": str(raw)}
    argv = [subs.get(a, a) for a in argv] + ["--store", str(store), "--scheduler",
                                             client.scheduler.address]
    code, out, terminal = _on_a_terminal(argv)
    assert code == 0 and out.splitlines()[0] == f"store: {store}"
    final = [part for part in terminal.replace("\r", "\n").splitlines()
             if part.startswith(f"featurestore {argv[0]}")][-1]
    done, total = final.split("|")[2].split()[0].split("/")
    assert int(done) == int(total) > 0, final  # tasks counted on the scheduler, all done
    if argv[0] == "backfill":
        quiet = cli(*argv)  # stderr is a pipe here: no bar
        assert quiet.stderr == ""


def test_retrain_wait_shows_the_job_on_a_terminal(tmp_path):
    export = fx.make_xgb_export(tmp_path / "export", seed=5)
    code, out, terminal = _on_a_terminal(["retrain", "--store", str(tmp_path / "store"),
                                          "--model", "purchase-xgboost", "--export-url",
                                          str(export), "--wait"])
    assert code == 0 and out.splitlines()[-1].endswith("; promoted to production")
    shown = [p for p in terminal.replace("\r", "\n").splitlines()
             if p.startswith("retrain purchase-xgboost-")]
    assert shown and any("running" in p for p in shown), terminal[-500:]


def test_a_retail_csv_without_source_retail_says_add_it(tmp_path):
    csv = tmp_path / "online_retail.csv.gz"
    csv.write_bytes(b"")
    r = run("ingest", str(csv), "--store", str(tmp_path / "store"), check=False)
    _error(r, 2, f"featurestore ingest: error: {csv} is a CSV file, not web-log drops: for the "
                 "Online Retail data add --source retail")


def test_one_drop_folder_is_refused_not_ingested_as_nothing(generated_data, tmp_path):
    day = generated_data / "raw" / "2026-01-05"
    r = run("ingest", str(day), "--store", str(tmp_path / "store"), check=False)
    _error(r, 2, f"featurestore ingest: error: {day} is one drop folder: pass the folder that "
                 f"holds the YYYY-MM-DD drop folders (its parent, {generated_data / 'raw'})")


def test_nothing_new_reads_as_nothing_new(store, generated_data, client):
    r = run("ingest", str(generated_data / "raw"), "--store", str(store), "--scheduler",
            client.scheduler.address)
    lines = r.stdout.splitlines()
    assert lines[1].startswith(f"ingested 0 file(s), skipped {45} already ingested")
    assert "0 quarantined, 0 excluded" in lines[1] and "()" not in lines[1]
    assert lines[2].startswith("materialized: tables already up to date")
