"""A real ``redis-server`` for the tests: Debian's, installed with apt when missing (as the
browser tests install Chromium), started on a free port with its own temp directory and no
persistence. Tests may stop and restart it (:meth:`RedisServer.stop`, :meth:`RedisServer.start`).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

__all__ = ["RedisServer", "redis_binary"]


def redis_binary() -> str:
    """The ``redis-server`` binary, installed with apt when missing; skips only when it cannot
    be installed."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=True,
                       capture_output=True, timeout=900,
                       env={"DEBIAN_FRONTEND": "noninteractive",
                            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"redis-server is not installed and `apt-get install redis-server` "
                    f"failed ({exc})")
    found = shutil.which("redis-server")
    if not found:
        pytest.skip("`apt-get install redis-server` ran but no redis-server binary is on PATH")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """One redis-server process on 127.0.0.1 (``url``); the same port across restarts."""

    def __init__(self, folder: Path, password: str | None = None,
                 persist: bool = False) -> None:
        self.binary = redis_binary()
        self.folder = folder
        self.port = _free_port()
        self.password = password
        self.persist = persist  # append-only file, fsync'd per write: a restart keeps the data
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                str(self.folder), "--save", "", "--daemonize", "no"]
        args += (["--appendonly", "yes", "--appendfsync", "always"] if self.persist
                 else ["--appendonly", "no"])
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not listen on {self.port}")

    def stop(self) -> None:
        """Stop the server (kill -9; its data is gone unless ``persist``)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()
