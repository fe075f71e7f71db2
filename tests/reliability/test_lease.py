"""Issue #13 items 6 and 7: the store's writer lease and store path problems.

A killed run must not block the next one; a live run must; a corrupt lock file is named; a
store that cannot work is one clear error before any cluster starts. Real processes, real
files, real moto S3; the only thing faked is a lock record "from another host" (no second
host here), written by hand as that host's run would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from featurestore import Store, StoreError, StoreLockedError
from featurestore.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    """The environment now (moto_server sets the AWS variables after import)."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


HOLDER = """
import sys, time
from featurestore import Store
store = Store(sys.argv[1], lease_seconds=float(sys.argv[2]))
with store.lock("holder"):
    print("held", flush=True)
    time.sleep(600)
"""


def _hold(url: str, lease_seconds: float = 60.0) -> subprocess.Popen:
    """A real process holding the store's lease (it never releases it: kill it)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url, str(lease_seconds)], env=_env(),
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _kill9(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


def test_killed_owner_is_taken_over_at_once_by_the_next_cli_run(tmp_path, drops):
    raw, _ = drops
    store_dir = tmp_path / "store"
    holder = _hold(str(store_dir))
    try:
        record = json.loads((store_dir / "_lock.json").read_text())
        assert record["pid"] == holder.pid and record["host"] == socket.gethostname()
        # while the owner lives, the next run is refused, naming the owner
        with pytest.raises(StoreLockedError, match=f"{holder.pid}.*holder"):
            with Store(str(store_dir)).lock("second"):
                pass
    finally:
        _kill9(holder)
    # kill -9: no cleanup ran, the lock file is still there ...
    assert (store_dir / "_lock.json").exists()
    started = time.monotonic()
    rc = main(["ingest", str(raw), "--store", str(store_dir), "--workers", "1",
               "--no-progress", "--json"])
    # ... and the next run proceeds at once (no expiry to wait for, no manual step)
    assert rc == 0 and time.monotonic() - started < 60
    assert not (store_dir / "_lock.json").exists()


def test_kill9_while_the_lock_file_is_created_does_not_block_the_next_run(tmp_path):
    """kill -9 of a writing CLI run at the instant it creates its lock file (the
    ``FEATURESTORE_TEST_CRASH_AT=store:create-new`` hook SIGKILLs its process group between
    making the file exclusive and filling it): the very next run proceeds, with no expiry
    to wait for and no manual step. (It used to find an empty ``_lock.json``, which it must
    take for a run creating its lock right now, and refused for ``lease_seconds``.)"""
    from featurestore.storage import CRASH_ENV

    store_dir = tmp_path / "store"
    args = [sys.executable, "-m", "featurestore", "backfill", "--store", str(store_dir),
            "--workers", "1"]
    killed = subprocess.run(args, env={**_env(), CRASH_ENV: "store:create-new"},
                            capture_output=True, start_new_session=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    started = time.monotonic()
    again = subprocess.run(args, env=_env(), capture_output=True, timeout=120)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert time.monotonic() - started < 60
    assert not (store_dir / "_lock.json").exists()
    # the killed run's staged lock record was swept by the next run, not kept for an hour
    assert list((store_dir / ".tmp").iterdir()) == []


def test_lease_is_renewed_while_the_owner_lives(tmp_path):
    store = Store(str(tmp_path / "store"), lease_seconds=1.5)
    with store.lock("long run"):
        first = store.read_json("_lock.json")
        time.sleep(2.5)  # longer than the lease: only the heartbeat keeps it
        later = store.read_json("_lock.json")
        assert later["run_id"] == first["run_id"] and later["expires"] > first["expires"]
        # a second writer in this (live) process is refused even after the first expiry
        errors = []
        t = threading.Thread(target=_try_lock, args=(store, errors))
        t.start()
        t.join()
        assert errors and isinstance(errors[0], StoreLockedError)
    assert not store.exists("_lock.json")


def _try_lock(store: Store, errors: list) -> None:
    try:
        with Store(store.url).lock("intruder"):
            pass
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        errors.append(exc)


def test_reentrant_within_one_thread(tmp_path):
    store = Store(str(tmp_path / "store"))
    with store.lock("outer"), store.lock("inner"):
        assert store.read_json("_lock.json")["purpose"] == "outer"
    assert not store.exists("_lock.json")


def _other_host(expires: str) -> dict:
    return {"owner": "elsewhere:4242:abc", "host": "elsewhere", "pid": 4242,
            "run_id": "abc", "purpose": "ingest weblog", "since": "2026-01-01T00:00:00+00:00",
            "expires": expires}


def test_other_host_lease_waits_for_expiry(tmp_path):
    store = Store(str(tmp_path / "store"))
    store.write_json(_other_host("2999-01-01T00:00:00+00:00"), "_lock.json")
    with pytest.raises(StoreLockedError, match="elsewhere:4242.*ingest weblog"):
        with store.lock("mine"):
            pass
    store.write_json(_other_host("2000-01-01T00:00:00+00:00"), "_lock.json")
    with store.lock("mine"):
        assert store.read_json("_lock.json")["purpose"] == "mine"


def test_lock_from_todays_code_of_a_dead_local_run_is_taken_over(tmp_path):
    """The record the code before the lease wrote (owner "host:pid:hex", 2 h expiry)."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store = Store(str(tmp_path / "store"))
    store.write_json({"owner": f"{socket.gethostname()}:{dead.pid}:0123abcd",
                      "purpose": "ingest weblog", "since": "2026-01-01T00:00:00+00:00",
                      "expires": "2999-01-01T00:00:00+00:00"}, "_lock.json")
    with store.lock("next"):
        assert store.read_json("_lock.json")["purpose"] == "next"


def test_pid_reused_by_another_process_is_taken_over(tmp_path):
    """Same host, the PID alive but started at another time: not the owner any more."""
    store = Store(str(tmp_path / "store"))
    record = {**_other_host("2999-01-01T00:00:00+00:00"), "host": socket.gethostname(),
              "pid": os.getppid(), "pid_started": 1.0}
    record.pop("owner")
    store.write_json(record, "_lock.json")
    with store.lock("next"):
        assert store.read_json("_lock.json")["purpose"] == "next"


@pytest.mark.parametrize("content", [b"", b'{"owner": "x", "expi'])
def test_fresh_empty_or_corrupt_lock_is_named_then_old_one_taken_over(tmp_path, content):
    store = Store(str(tmp_path / "store"), lease_seconds=5)
    lock = tmp_path / "store" / "_lock.json"
    lock.parent.mkdir()
    lock.write_bytes(content)
    what = "empty" if not content else "corrupt"
    with pytest.raises(StoreLockedError,
                       match=f"lock file {lock} is {what}; if no featurestore run is active, "
                             "delete it"):
        with store.lock("next"):
            pass
    old = time.time() - 10
    os.utime(lock, (old, old))
    with store.lock("next"):
        assert store.read_json("_lock.json")["purpose"] == "next"


def test_owner_whose_lease_was_taken_over_fails_before_its_next_commit(tmp_path):
    store = Store(str(tmp_path / "store"), lease_seconds=1.0)
    with pytest.raises(StoreLockedError, match="taken over"):
        with store.lock("slow run"):
            # another run took the lease (e.g. this one stalled past its expiry)
            store.fs.pipe_file(store.path("_lock.json"),
                               json.dumps(_other_host("2999-01-01T00:00:00+00:00")).encode())
            time.sleep(1.0)  # the heartbeat (every third of the lease) notices
            with pytest.raises(StoreLockedError, match="taken over by elsewhere:4242"):
                store.write_json({"rows": 1}, "_ledger", "commit.json")
            assert not store.exists("_ledger", "commit.json")
    # the new owner's lock is left alone
    assert store.read_json("_lock.json")["run_id"] == "abc"


def test_worker_process_checks_the_lease_before_a_commit_record(tmp_path):
    """A Store pickled to a worker by the owner checks the lock file before write_json."""
    import pickle

    store = Store(str(tmp_path / "store"))
    with store.lock("owner"):
        shipped = pickle.dumps(store)
    # the owner's run is over and another run holds the store now
    store.write_json(_other_host("2999-01-01T00:00:00+00:00"), "_lock.json")
    code = ("import pickle, sys\nfrom featurestore import StoreLockedError\n"
            "s = pickle.loads(sys.stdin.buffer.read())\n"
            "try:\n    s.write_json({}, '_ledger', 'x.json')\n"
            "except StoreLockedError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], input=shipped, env=_env(),
                         capture_output=True, check=True).stdout.decode()
    assert out.startswith("refused:") and not store.exists("_ledger", "x.json")


def test_s3_killed_owner_taken_over_and_corrupt_lock_named(moto_server, s3_bucket):
    url = f"s3://{s3_bucket}/store"
    holder = _hold(url)
    _kill9(holder)
    store = Store(url)
    with store.lock("next"):
        assert store.read_json("_lock.json")["pid"] == os.getpid()
    assert not store.exists("_lock.json")
    store.fs.pipe_file(store.path("_lock.json"), b"")
    with pytest.raises(StoreLockedError, match=f"lock file {url}/_lock.json is empty"):
        with store.lock("next"):
            pass


# -- item 7: store path problems are one error before any work --------------------------------

def _cli(capsys, *args: str) -> tuple[int, str]:
    """The real CLI entry point in this process (a subprocess costs seconds of imports):
    its exit code and stderr. A traceback would escape main() and fail the test."""
    capsys.readouterr()
    rc = main(list(args))
    return rc, capsys.readouterr().err


def _one_error_line(res: tuple[int, str], command: str, pattern: str) -> None:
    rc, err = res
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"featurestore {command}: error: ")
    assert re.search(pattern, lines[0]), lines[0]


def test_file_where_the_store_should_be(tmp_path, drops, capsys):
    raw, _ = drops
    in_the_way = tmp_path / "store"
    in_the_way.write_text("not a store")
    started = time.monotonic()
    res = _cli(capsys, "ingest", str(raw), "--store", str(in_the_way), "--workers", "1")
    _one_error_line(res, "ingest", f"store {in_the_way} is a file, not a folder")
    assert time.monotonic() - started < 15  # no cluster was started
    res = _cli(capsys, "backfill", "--store", str(in_the_way / "sub"), "--workers", "1")
    _one_error_line(res, "backfill", f"{in_the_way} is a file")
    res = _cli(capsys, "tables", "--store", str(in_the_way))
    _one_error_line(res, "tables", "is a file, not a folder")


@pytest.fixture()
def read_only_dir(tmp_path):
    """A folder on a read-only bind mount: tests run as root, where chmod stops nothing."""
    path = tmp_path / "ro"
    path.mkdir()
    (path / "store").mkdir()
    if subprocess.run(["mount", "--bind", "-o", "ro", str(path), str(path)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot make a read-only bind mount here")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_read_only_store_is_one_error(read_only_dir, drops, capsys):
    raw, _ = drops
    store = read_only_dir / "store"
    res = _cli(capsys, "ingest", str(raw), "--store", str(store), "--workers", "1")
    _one_error_line(res, "ingest", f"store {store} is not writable")
    res = _cli(capsys, "backfill", "--store", str(read_only_dir / "new"), "--workers", "1")
    _one_error_line(res, "backfill", "cannot be created")
    # reading a read-only store is fine
    assert _cli(capsys, "tables", "--store", str(store))[0] == 0


def test_missing_store_for_reading_commands(tmp_path, capsys):
    missing = tmp_path / "nothing-here"
    for args in (["tables"], ["show", "--customer", "C1"], ["models"]):
        res = _cli(capsys, *args, "--store", str(missing))
        _one_error_line(res, args[0], f"no store at {missing}")
    assert not missing.exists()


def test_s3_missing_bucket_is_one_error_and_not_created(moto_server, drops, capsys):
    import boto3

    raw, _ = drops
    env = {"--storage-option": f"client_kwargs.endpoint_url={moto_server}"}
    for args in (["ingest", str(raw), "--workers", "1"], ["tables"]):
        res = _cli(capsys, *args, "--store", "s3://no-such-bucket-13/store",
                   *[x for kv in env.items() for x in kv])
        _one_error_line(res, args[0], "bucket no-such-bucket-13 .*does not exist")
    buckets = boto3.client("s3", endpoint_url=moto_server).list_buckets()["Buckets"]
    assert "no-such-bucket-13" not in {b["Name"] for b in buckets}


def test_preflight_api(tmp_path):
    Store(str(tmp_path / "new")).preflight(write=True)
    assert (tmp_path / "new").is_dir() and not list((tmp_path / "new").iterdir())
    with pytest.raises(StoreError, match="no store at"):
        Store(str(tmp_path / "absent")).preflight(write=False)
