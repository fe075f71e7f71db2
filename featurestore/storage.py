"""The offline store: one fsspec URL (local path or ``s3://bucket/prefix``) holding every table.

All writes go through :class:`Store` so the commit protocol lives in one place:

* output names are deterministic, so a retry overwrites instead of duplicating;
* a file is published atomically: on local disk written under a temporary name readers skip
  (leading ``.``) and renamed; on object stores written with one PUT of the final key, which S3
  makes visible all at once;
* one writer per store, enforced by :meth:`Store.lock` (the lease: :mod:`featurestore.lease`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import fsspec

from ._exceptions import (
    ConfigError,
    StoreError,
    StoreLockedError,
    StoreUnavailableError,
)
from .lease import Lease, env_lease_seconds, lost_message, read_lock

if TYPE_CHECKING:  # loaded where used: serving from Redis never needs pandas
    import pandas as pd
    import pyarrow as pa

__all__ = ["Store", "absolute_url", "parquet_bytes", "parse_storage_options", "store_errors",
           "S3_CLIENT_CONFIG"]

log = logging.getLogger(__name__)

#: Where a local write puts its file before renaming it into place: one folder per store, so
#: the next writing run finds what a killed write left with one listing (readers skip dot
#: folders). Names are ``<run id>-<uuid>-<file name>``; ``free`` for a write without a lease.
TMP_DIR = ".tmp"
#: Test hook: ``store:<step>`` SIGKILLs this process group at that step (reliability tests).
CRASH_ENV = "FEATURESTORE_TEST_CRASH_AT"
#: A leftover of a write that held no lease is removed only after this long: no lease says
#: whether its writer still lives (as Delta's VACUUM keeps files younger than its retention).
TMP_GRACE_SECONDS = 3600.0


def _crash_point(step: str) -> None:
    """SIGKILL the CLI's process group (as ``kill -9`` of the group) when
    ``FEATURESTORE_TEST_CRASH_AT`` names ``store:<step>``; read only here."""
    if os.environ.get(CRASH_ENV) != f"store:{step}":
        return
    import signal

    if os.getsid(0) == os.getpid():  # a session leader (the tests start the CLI so)
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def parse_storage_options(pairs: list[str] | None) -> dict[str, Any]:
    """Turn ``["key=value", ...]`` (the ``--storage-option`` flag) into fsspec storage options.

    ``client_kwargs.endpoint_url=http://...`` sets nested keys; ``true``/``false`` and numbers
    are converted, as dask's ``storage_options`` users expect.
    """
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"--storage-option {pair!r} is not KEY=VALUE; "
                "for example --storage-option anon=false"
            )
        value: Any = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            with contextlib.suppress(ValueError):
                value = int(raw)
        target = options
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return options


#: botocore settings of S3 stores (``config_kwargs``; each key can be overridden with
#: ``--storage-option config_kwargs.KEY=VALUE``). Standard-mode retries back off with jitter
#: on 500/503/SlowDown, timeouts and dropped connections: 8 attempts ride out ~30 s of
#: trouble. A stalled answer is given up after 30 s (botocore's 60 s, times 8 attempts, would
#: look like a hang) and retried.
S3_CLIENT_CONFIG: dict[str, Any] = {
    "retries": {"max_attempts": 8, "mode": "standard"},
    "connect_timeout": 10,
    "read_timeout": 30,
}


def options_for(url: str, store: Store, given: dict[str, Any] | None = None
                ) -> dict[str, Any] | None:
    """fsspec options for a location outside the store (raw data, an export folder): the
    given ones, else the store's when the protocol is the same (the same endpoint and
    credentials, as users expect of one ``--storage-option``), else None.

    Args:
        url: the location (path or fsspec URL).
        store: the store.
        given: options given for ``url`` explicitly (win when not None).

    Returns:
        The options, or None for fsspec's defaults.
    """
    if given is not None:
        return given
    return store.storage_options if fsspec.utils.get_protocol(url) == store.protocol else None


def _default_storage_options(protocol: str) -> dict[str, Any]:
    """Endpoint from the standard AWS variable, so moto/MinIO work without extra flags, and
    :data:`S3_CLIENT_CONFIG` (its retries only when ``AWS_MAX_ATTEMPTS``/``AWS_RETRY_MODE``,
    which botocore reads itself, are unset)."""
    if protocol not in ("s3", "s3a"):
        return {}
    config = dict(S3_CLIENT_CONFIG)
    if os.environ.get("AWS_MAX_ATTEMPTS") or os.environ.get("AWS_RETRY_MODE"):
        del config["retries"]
    options: dict[str, Any] = {"config_kwargs": config}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["client_kwargs"] = {"endpoint_url": endpoint}
    return options


def _merged(defaults: dict[str, Any], given: dict[str, Any],
            nested: bool = False) -> dict[str, Any]:
    """``given`` over ``defaults``; ``config_kwargs`` merged key by key (and its ``retries``),
    so one ``--storage-option config_kwargs.retries.max_attempts=3`` keeps the other defaults.
    """
    out = {**defaults, **given}
    for key, value in given.items():
        if (nested or key == "config_kwargs") and isinstance(value, dict) \
                and isinstance(defaults.get(key), dict):
            out[key] = _merged(defaults[key], value, nested=True)
    return out


def _transport_errors() -> tuple[type[BaseException], ...]:
    """What a failing object store raises through s3fs/aiobotocore once retries are spent."""
    errors: list[type[BaseException]] = [OSError]
    with contextlib.suppress(ImportError):
        import botocore.exceptions

        errors += [botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError]
    with contextlib.suppress(ImportError):
        import aiohttp

        errors.append(aiohttp.ClientError)
    return tuple(errors)


@contextlib.contextmanager
def store_errors(store: Store) -> Iterator[None]:
    """Turn an object-store failure escaping the block (after the client's retries) into one
    :class:`StoreUnavailableError` line naming the store and what to do, not a traceback.

    Args:
        store: the store the block reads and writes.
    """
    if store.is_local:  # local disks raise their own clear OSErrors; only remote stores here
        yield
        return
    try:
        yield
    except _transport_errors() as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise StoreUnavailableError(
            f"a request to store {store.url} failed after retries ({type(exc).__name__}: "
            f"{detail}). "
            "Everything published so far is whole; re-run the same command once the store "
            "answers again, and it finishes the rest without redoing or duplicating any of it"
        ) from None


#: Store locks this process holds: (store url, thread id) -> nesting depth.
_held: dict[tuple[str, int], int] = {}


def absolute_url(url: str) -> str:
    """``url`` as every record and message names it: a local path made absolute (records
    must not depend on the working directory of the command that wrote them); other URLs
    unchanged.

    Args:
        url: a local path, ``file://`` URL or fsspec URL.

    Returns:
        The absolute path, or the URL as given.
    """
    url = str(url)
    if fsspec.utils.get_protocol(url) == "file":
        return os.path.abspath(os.path.expanduser(url.removeprefix("file://")))
    return url


class Store:
    """A feature store root. Cheap to create and picklable, so Dask tasks receive it whole."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None,
                 lease_seconds: float | None = None) -> None:
        """Args:
            url: a local path or ``s3://bucket/prefix``.
            storage_options: fsspec options (endpoint, credentials).
            lease_seconds: expiry of the writer lease :meth:`lock` takes (default
                FEATURESTORE_LEASE_SECONDS, else 60 s).
        """
        url = str(url)
        protocol = fsspec.utils.get_protocol(url)
        self.url = absolute_url(url).rstrip("/")
        self.protocol = protocol
        self.storage_options = _merged(_default_storage_options(protocol),
                                       storage_options or {})
        self._fs: fsspec.AbstractFileSystem | None = None
        self.lease_seconds = lease_seconds or env_lease_seconds()
        #: Run id of the lease held by the process that pickled this Store (for workers).
        self._lease_run_id: str | None = None

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __getstate__(self) -> dict[str, Any]:
        # A worker given this Store checks the sender's lease before commit records.
        lease = _leases.get(self.url)
        return {**self.__dict__, "_fs": None,
                "_lease_run_id": lease.run_id if lease else self._lease_run_id}

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        if self._fs is None:
            self._fs = fsspec.filesystem(self.protocol, **self.storage_options)
        return self._fs

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    @property
    def root(self) -> str:
        """The root as a filesystem path (no protocol), for ``self.fs`` calls."""
        return self.fs._strip_protocol(self.url)

    def path(self, *parts: str) -> str:
        """Filesystem path of ``parts`` under the root."""
        return "/".join([self.root, *[p.strip("/") for p in parts if p]])

    def uri(self, *parts: str) -> str:
        """Full URL of ``parts`` under the root, as readers (pandas, dask, DuckDB) want it."""
        return "/".join([self.url, *[p.strip("/") for p in parts if p]])

    # -- reading ------------------------------------------------------------------------
    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self.path(*parts))

    def listdir(self, *parts: str) -> list[str]:
        """Base names directly under ``parts`` (empty when it does not exist)."""
        path = self.path(*parts)
        try:
            entries = self.fs.ls(path, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries)

    def find(self, *parts: str) -> list[str]:
        """Paths of every file below ``parts``, relative to it, sorted: one recursive listing
        (a paginated LIST on object stores) instead of one call per folder."""
        path = self.path(*parts)
        if self.is_local:  # os.walk: fsspec's local find stats every entry (10x slower)
            found = []
            for folder, _, names in os.walk(path):
                prefix = folder[len(path):].strip(os.sep).replace(os.sep, "/")
                found += [f"{prefix}/{name}" if prefix else name for name in names]
            return sorted(found)
        try:
            found = self.fs.find(path, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(f[len(path):].lstrip("/") for f in found)

    def partitions(self, table: str, key: str) -> list[str]:
        """Values of hive partition ``key`` that hold at least one published parquet file."""
        values = []
        for name in self.listdir(table):
            if name.startswith(f"{key}=") and any(
                f.endswith(".parquet") and not f.startswith((".", "_"))
                for f in self.listdir(table, name)
            ):
                values.append(name.split("=", 1)[1])
        return sorted(values)

    def read_json(self, *parts: str) -> Any:
        with self.fs.open(self.path(*parts), "rb") as f:
            return json.load(f)

    def read_parquet(self, *parts: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Read one parquet file or hive directory with pyarrow."""
        import pyarrow.parquet as pq

        return pq.read_table(self.path(*parts), filesystem=self.fs, columns=columns).to_pandas()

    # -- atomic writes --------------------------------------------------------------------
    @contextlib.contextmanager
    def publishing(self, *parts: str) -> Iterator[str]:
        """Publish one file of the store through a writer that takes a path (pyarrow,
        fastparquet) instead of bytes.

        Args:
            parts: the file's path inside the store.

        Yields:
            Where to write: a temporary local file, or on S3 the final key (one PUT is
            atomic; open it with ``self.fs``). On success the file appears at ``parts`` whole;
            on an exception nothing does.
        """
        with self._publish(self.path(*parts)) as target:
            yield target

    @contextlib.contextmanager
    def _publish(self, final: str) -> Iterator[str]:
        """Yield a path to write; on success the content appears at ``final`` all at once."""
        lease = _leases.get(self.url)
        if lease is not None and lease.lost:  # this process's lease was taken over
            raise StoreLockedError(lease.lost)
        parent = final.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        if not self.is_local:
            # One PUT of the final key is atomic on S3: readers see the old object or the new one.
            yield final
            return
        tmp = self._tmp_path(parent, final.rsplit("/", 1)[-1], lease)
        try:
            yield tmp
            try:
                os.replace(tmp, final)
            except FileNotFoundError:
                self.check_lease()  # the run that took the lease over swept our file
                raise
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def _tmp_path(self, parent: str, name: str, lease: Lease | None,
                  run_id: str | None = None) -> str:
        """A fresh temporary path for a write into ``parent``: in the store's :data:`TMP_DIR`,
        named by the writing run (``run_id`` when given), or beside the target when that
        folder is on another filesystem (a rename cannot cross filesystems)."""
        run = run_id or (lease.run_id if lease is not None else (self._lease_run_id or "free"))
        folder = f"{self.root}/{TMP_DIR}"
        os.makedirs(folder, exist_ok=True)
        if os.stat(folder).st_dev != os.stat(parent).st_dev:
            folder = parent
        return f"{folder}/{run}-{uuid.uuid4().hex}-{name}"

    def sweep_tmp(self, run_id: str | None, now: float | None = None) -> list[str]:
        """Remove what killed writes left in :data:`TMP_DIR`: every file of a run other than
        ``run_id`` (the run holding the lease; a run that lost it stops before its next
        commit), and a lease-less write's file once :data:`TMP_GRACE_SECONDS` old.

        Args:
            run_id: the run id of the lease this process holds.
            now: the clock to age files by (tests); ``time.time()`` by default.

        Returns:
            The names removed.
        """
        if not self.is_local:  # object stores publish with one PUT: nothing is left behind
            return []
        folder = os.path.join(self.root, TMP_DIR)
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return []
        now = time.time() if now is None else now
        removed = []
        for entry in entries:
            run = entry.name.split("-", 1)[0]
            if run == run_id:
                continue
            try:
                if run == "free" and now - entry.stat().st_mtime < TMP_GRACE_SECONDS:
                    continue
                os.remove(entry.path)
            except FileNotFoundError:  # its writer finished or removed it meanwhile
                continue
            removed.append(entry.name)
        if removed:
            log.info("removed %d temporary file(s) left by killed writes in %s",
                     len(removed), folder)
        return removed

    def write_bytes(self, data: bytes | memoryview, *parts: str) -> None:
        with self._publish(self.path(*parts)) as target, self.fs.open(target, "wb") as f:
            f.write(data)

    def create_new(self, data: bytes, *parts: str, run_id: str | None = None) -> bool:
        """Create ``parts`` with ``data`` only if it does not exist; False if it does.

        Local: the data is written to a temporary file first, then hard-linked to the name
        (``link`` fails when the name exists): exact, and the file appears with its whole
        content, so a writer killed meanwhile leaves no empty or partial file behind (a lock
        file left empty by a ``kill -9`` between ``O_CREAT | O_EXCL`` and the write used to
        block the next run for the lease's lifetime). A file system without hard links gets
        ``O_CREAT | O_EXCL``. Object stores have no portable create-if-absent, so it is check,
        write, read back: two writers within the same instant could both win.

        Args:
            data: the file's content.
            parts: its path in the store.
            run_id: the run the temporary file is named after (default: the lease this
                process holds): a lease being taken names its own, so the next run sweeps
                what a kill left at once (a lease-less name is kept for an hour).

        Returns:
            True when this call created the file.
        """
        path = self.path(*parts)
        if self.is_local:
            parent = os.path.dirname(path)
            os.makedirs(parent, exist_ok=True)
            tmp = self._tmp_path(parent, os.path.basename(path), _leases.get(self.url),
                                 run_id)
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                _crash_point("create-new")
                try:
                    os.link(tmp, path)
                    return True
                except FileExistsError:
                    return False
                except OSError:  # no hard links here (e.g. some network file systems)
                    return self._create_exclusive(data, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(tmp)
        if self.fs.exists(path):
            return False
        self.write_bytes(data, *parts)
        return self.fs.cat_file(path) == data

    @staticmethod
    def _create_exclusive(data: bytes, path: str) -> bool:
        """:meth:`create_new` where hard links are not supported: ``O_CREAT | O_EXCL``, then
        the write (a kill in between leaves the file empty: the lease names it)."""
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return True

    def write_json(self, obj: Any, *parts: str) -> None:
        """Publish ``obj`` as JSON. Commit records (ledger, state records) are JSON written
        last, so this is where a run whose lease was taken over stops (:meth:`check_lease`)."""
        self.check_lease()
        self.write_bytes(json.dumps(obj, indent=1, sort_keys=True, default=str).encode(), *parts)

    def write_parquet(self, df: pd.DataFrame, *parts: str,
                      stats: bool | list[str] = True,
                      metadata: dict[bytes, bytes] | None = None) -> None:
        """Publish ``df`` as one parquet file with fastparquet, keeping the frame's dtypes.

        Callers pass frames already typed as SPEC §4 says (int64 counts, float64 money, string
        ids); fastparquet keeps int64 when the column is int64, and nullable Int64 for nulls.
        ``stats`` names the columns that get min/max statistics (all by default); string
        statistics cost a third of a small file's write time. ``metadata``: footer keys that
        replace fastparquet's own (``pandas``, ``ARROW:schema`` from
        :func:`featurestore.schema.conform`: fastparquet records a ``string`` column as numpy
        ``object``, which pandas reads back as ``str`` with NaN, unlike every other table).
        """
        import fastparquet

        with self._publish(self.path(*parts)) as target:
            if metadata is None:
                fastparquet.write(target, df, file_scheme="simple", write_index=False,
                                  compression="SNAPPY", open_with=self.fs.open, stats=stats)
                return
            # fastparquet.write's "simple" path, with our keys replacing its (its
            # custom_metadata would append a second "pandas" key instead)
            from fastparquet.util import update_custom_metadata
            from fastparquet.writer import make_metadata, write_simple

            fmd = make_metadata(df, has_nulls=True, object_encoding="infer", times="int64",
                                index_cols=[], partition_cols=[], cols_dtype=df.columns.dtype)
            update_custom_metadata(fmd, metadata)
            write_simple(target, df, fmd, compression="SNAPPY", open_with=self.fs.open,
                         stats=stats)

    def write_arrow(self, table: pa.Table, *parts: str, stats: bool | list[str] = True,
                    dictionary: bool | list[str] = True) -> None:
        """Publish an Arrow table as one parquet file with pyarrow (same commit protocol).

        For tables born in Arrow (quarantine, feature tables): no pandas round trip, and
        fastparquet's fixed cost per file (~10 ms) is paid only where its writer is wanted.
        ``stats``: the columns to write min/max statistics for (all by default);
        ``dictionary``: the columns to dictionary-encode (all by default). Encoded in memory,
        then written in one call (pyarrow writes a Python file object in many small pieces).
        Dictionary-typed columns are written as they are (see :func:`parquet_bytes`).
        """
        self.write_bytes(parquet_bytes(table, stats, dictionary), *parts)

    def remove(self, *parts: str, recursive: bool = False) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path(*parts), recursive=recursive)

    # -- store path checks ------------------------------------------------------------------
    def preflight(self, write: bool) -> None:
        """Check, before any work starts, that the store can be used as asked.

        Args:
            write: the caller will write: the root must be a folder (created when absent)
                that accepts a file. Otherwise the store must exist and be a folder.

        Raises:
            StoreError: one line naming the path and what to do (a file in the way, a
                read-only or missing folder, a missing bucket). Buckets are never created.
        """
        if self.is_local:
            _preflight_local(self.root, write)
            return
        bucket = self.root.split("/", 1)[0]
        try:
            found = self.fs.exists(bucket)
            in_the_way = found and bucket != self.root and self.fs.isfile(self.root)
        except Exception as exc:  # noqa: BLE001 - endpoint down, no credentials: one line
            raise StoreError(f"cannot reach store {self.url}: {exc}") from None
        if not found:
            raise StoreError(f"bucket {bucket} of store {self.url} does not exist (or these "
                             "credentials cannot see it); create it with featurestore init "
                             f"--store {self.url} (buckets are never created implicitly)")
        if in_the_way:
            raise StoreError(f"store {self.url} is an object, not a folder; point --store "
                             "(FEATURESTORE_STORE) at a prefix")
        if write:
            probe = self.path(f".preflight-{uuid.uuid4().hex}")
            try:
                self.fs.pipe_file(probe, b"")
                self.fs.rm(probe)
            except Exception as exc:  # noqa: BLE001 - access denied comes in several types
                raise StoreError(f"store {self.url} is not writable with these credentials "
                                 f"({exc})") from None

    # -- one writer at a time: the lease --------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, purpose: str, ttl: dt.timedelta | None = None) -> Iterator[None]:
        """Hold the store's writer lease for the duration of the block.

        The lease (``_lock.json``) names its owner (host, PID and its start time, run id) and
        expires after ``ttl`` (default: the store's ``lease_seconds``); a daemon thread renews
        it every third of that while this process lives. It is taken over at once when its
        owner is provably dead (same host, PID gone or reused), after its expiry otherwise.
        An owner whose lease was taken over fails before its next commit record
        (:meth:`check_lease`) and when the block ends.

        Re-entrant within one thread: ``featurestore ingest`` holds the lock across ingesting
        and materializing, and the inner ``lock()`` calls of both just nest, so no other
        writer can slip in between the two steps.

        Args:
            purpose: what the run does, shown to a run that finds the store locked.
            ttl: the lease's expiry, overriding the store's ``lease_seconds``.

        Raises:
            StoreLockedError: another live run holds the lease, a fresh lock file is empty or
                corrupt, or this run's lease was taken over.
        """
        key = (self.url, threading.get_ident())
        if _held.get(key):
            _held[key] += 1
            try:
                yield
            finally:
                _held[key] -= 1
            return
        seconds = ttl.total_seconds() if ttl is not None else self.lease_seconds
        lease = Lease(self, purpose, seconds)
        lease.acquire()
        _held[key] = 1
        _leases[self.url] = lease
        failed = True
        try:
            self.sweep_tmp(lease.run_id)
            yield
            failed = False
        finally:
            del _held[key]
            _leases.pop(self.url, None)
            lease.release()
            if lease.lost and not failed:
                raise StoreLockedError(lease.lost)

    def check_lease(self) -> None:
        """Raise if the writer lease this run holds on the store was taken over.

        Called before every commit record (:meth:`write_json`). In the process holding the
        lease it reads the heartbeat's finding; in a worker given a Store by that process it
        reads the lock file (one small read per commit record). Without a lease: nothing.

        Raises:
            StoreLockedError: another run owns the store now.
        """
        lease = _leases.get(self.url)
        if lease is not None:
            if lease.lost:
                raise StoreLockedError(lease.lost)
            return
        if self._lease_run_id:
            current, _ = read_lock(self)
            if (current or {}).get("run_id") != self._lease_run_id:
                raise StoreLockedError(lost_message(self, current))


def _preflight_local(root: str, write: bool) -> None:
    """:meth:`Store.preflight` on local disk: a real write probe, since tests and many
    containers run as root, where ``os.access`` says yes to a read-only mount."""
    if os.path.exists(root) and not os.path.isdir(root):
        raise StoreError(f"store {root} is a file, not a folder; point --store "
                         "(FEATURESTORE_STORE) at a folder")
    existing = root
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise StoreError(f"store {root} cannot be created: {existing} is a file, not a folder")
    if not write:
        if existing != root:
            raise StoreError(f"no store at {root}: the folder does not exist; check --store "
                             f"(FEATURESTORE_STORE) or create it with featurestore init --store "
                             f"{root}")
        return
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"store {root} cannot be created ({exc.strerror}: {existing}); "
                         "choose a writable folder") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".preflight-", dir=root)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise StoreError(f"store {root} is not writable ({exc.strerror}); make it writable "
                         "or choose another folder") from None


#: The lease each store URL is held under by this process (any thread).
_leases: dict[str, Lease] = {}


def parquet_bytes(table: pa.Table, stats: bool | list[str],
                   dictionary: bool | list[str]) -> memoryview:
    """``table`` as parquet bytes (snappy). A dictionary-typed column (codes into distinct
    values) goes to the file's dictionary page as it is, without hashing every value again,
    yet reads back as its value type: the stored Arrow schema (``ARROW:schema``, which pyarrow
    readers follow; other readers see the plain parquet type) is the table's with the value
    types, so readers cannot tell it from a write of the decoded column."""
    import base64

    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    options = {"compression": "snappy", "write_statistics": stats}
    coded = [i for i, f in enumerate(table.schema) if pa.types.is_dictionary(f.type)]
    if not coded:
        pq.write_table(table, sink, use_dictionary=dictionary, **options)
        return memoryview(sink.getvalue())
    plain = table.schema
    for i in coded:
        plain = plain.set(i, plain.field(i).with_type(plain.field(i).type.value_type))
    if dictionary is not True:  # a coded column is always written with its dictionary
        dictionary = sorted({*(dictionary or []), *(table.schema.names[i] for i in coded)})
    with pq.ParquetWriter(sink, table.schema, store_schema=False, use_dictionary=dictionary,
                          **options) as writer:
        writer.write_table(table)
        metadata = {k.decode(): v.decode() for k, v in (plain.metadata or {}).items()}
        metadata["ARROW:schema"] = base64.b64encode(plain.serialize().to_pybytes()).decode()
        writer.add_key_value_metadata(metadata)
    return memoryview(sink.getvalue())
