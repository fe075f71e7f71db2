"""Where a local write stages its file, and which leftovers the next writing run removes
(``Store.publishing`` / ``Store.sweep_tmp``)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from featurestore import storage
from featurestore.storage import TMP_DIR, TMP_GRACE_SECONDS, Store


def _leftover(store: Path, name: str, age: float = 0.0) -> Path:
    path = store / TMP_DIR / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half")
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def test_a_write_stages_in_the_store_tmp_folder_named_by_its_run(tmp_path):
    store = Store(str(tmp_path))
    with store.lock("test"):
        run = storage._leases[store.url].run_id
        with store.publishing("t", "a.bin") as tmp:
            staged = Path(tmp)
            assert staged.parent == tmp_path / TMP_DIR
            assert staged.name.startswith(f"{run}-") and staged.name.endswith("-a.bin")
            Path(tmp).write_bytes(b"x")
    assert (tmp_path / "t" / "a.bin").read_bytes() == b"x"
    assert not staged.exists()
    # a write without a lease is named "free"
    with store.publishing("t", "b.bin") as tmp:
        assert Path(tmp).name.startswith("free-")
        Path(tmp).write_bytes(b"y")
    assert list((tmp_path / TMP_DIR).iterdir()) == []


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    store = Store(str(tmp_path))
    with pytest.raises(RuntimeError), store.publishing("t", "a.bin") as tmp:
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert list((tmp_path / TMP_DIR).iterdir()) == []
    assert not (tmp_path / "t" / "a.bin").exists()


def test_sweep_removes_other_runs_and_old_free_files_only(tmp_path):
    store = Store(str(tmp_path))
    mine = _leftover(tmp_path, "run1-u1-part.parquet")
    dead = _leftover(tmp_path, "run0-u2-part.parquet")
    young = _leftover(tmp_path, "free-u3-x.json", age=TMP_GRACE_SECONDS - 60)
    old = _leftover(tmp_path, "free-u4-x.json", age=TMP_GRACE_SECONDS + 60)
    removed = store.sweep_tmp("run1")
    assert sorted(removed) == sorted([dead.name, old.name])
    assert mine.exists() and young.exists() and not dead.exists() and not old.exists()
    # an hour later the young one goes too
    assert store.sweep_tmp("run1", now=time.time() + 120) == [young.name]


def test_taking_the_lease_sweeps_a_dead_runs_leftovers(tmp_path):
    store = Store(str(tmp_path))
    dead = _leftover(tmp_path, "abc123-u-part.parquet")
    with store.lock("test"):
        assert not dead.exists()


def test_a_folder_on_another_filesystem_stages_beside_its_target(tmp_path):
    """A rename cannot cross filesystems: a table folder mounted elsewhere (here a link into
    /dev/shm) stages its file beside the target instead of in the store's folder."""
    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a filesystem other than the test's folder")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as elsewhere:
        (tmp_path / "t").symlink_to(elsewhere)
        store = Store(str(tmp_path))
        store.write_bytes(b"z", "t", "a.bin")
        assert (Path(elsewhere) / "a.bin").read_bytes() == b"z"
        assert os.listdir(elsewhere) == ["a.bin"]
