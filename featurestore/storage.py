"""The offline store: one fsspec URL (local path or ``s3://bucket/prefix``) holding every table.

All writes go through :class:`Store` so the commit protocol lives in one place:

* output names are deterministic, so a retry overwrites instead of duplicating;
* a file is published atomically: on local disk written under a temporary name readers skip
  (leading ``.``) and renamed; on object stores written with one PUT of the final key, which S3
  makes visible all at once;
* one writer per store, enforced by :meth:`Store.lock`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa

from ._exceptions import StoreLockedError, StoreUnavailableError

__all__ = ["Store", "parse_storage_options", "store_errors", "S3_CLIENT_CONFIG"]

LOCK_NAME = "_lock.json"
DEFAULT_LOCK_TTL = dt.timedelta(hours=2)


def parse_storage_options(pairs: list[str] | None) -> dict[str, Any]:
    """Turn ``["key=value", ...]`` (the ``--storage-option`` flag) into fsspec storage options.

    ``client_kwargs.endpoint_url=http://...`` sets nested keys; ``true``/``false`` and numbers
    are converted, as dask's ``storage_options`` users expect.
    """
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            from ._exceptions import ConfigError

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


class Store:
    """A feature store root. Cheap to create and picklable, so Dask tasks receive it whole."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        url = str(url)
        protocol = fsspec.utils.get_protocol(url)
        if protocol == "file":
            url = os.path.abspath(os.path.expanduser(url.removeprefix("file://")))
        self.url = url.rstrip("/")
        self.protocol = protocol
        self.storage_options = _merged(_default_storage_options(protocol),
                                       storage_options or {})
        self._fs: fsspec.AbstractFileSystem | None = None

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fs": None}

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
    def _publish(self, final: str) -> Iterator[str]:
        """Yield a path to write; on success the content appears at ``final`` all at once."""
        parent = final.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        if not self.is_local:
            # One PUT of the final key is atomic on S3: readers see the old object or the new one.
            yield final
            return
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}-{final.rsplit('/', 1)[-1]}"
        try:
            yield tmp
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def write_bytes(self, data: bytes | memoryview, *parts: str) -> None:
        with self._publish(self.path(*parts)) as target, self.fs.open(target, "wb") as f:
            f.write(data)

    def create_new(self, data: bytes, *parts: str) -> bool:
        """Create ``parts`` with ``data`` only if it does not exist; False if it does.

        Local: ``O_CREAT | O_EXCL``, exact. Object stores have no portable create-if-absent, so
        it is check, write, read back: two writers within the same instant could both win.
        """
        path = self.path(*parts)
        if self.is_local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return True
        if self.fs.exists(path):
            return False
        self.write_bytes(data, *parts)
        return self.fs.cat_file(path) == data

    def write_json(self, obj: Any, *parts: str) -> None:
        self.write_bytes(json.dumps(obj, indent=1, sort_keys=True, default=str).encode(), *parts)

    def write_parquet(self, df: pd.DataFrame, *parts: str,
                      stats: bool | list[str] = True) -> None:
        """Publish ``df`` as one parquet file with fastparquet, keeping the frame's dtypes.

        Callers pass frames already typed as SPEC §4 says (int64 counts, float64 money, string
        ids); fastparquet keeps int64 when the column is int64, and nullable Int64 for nulls.
        ``stats`` names the columns that get min/max statistics (all by default); string
        statistics cost a third of a small file's write time.
        """
        import fastparquet

        with self._publish(self.path(*parts)) as target:
            fastparquet.write(
                target,
                df,
                file_scheme="simple",
                write_index=False,
                compression="SNAPPY",
                open_with=self.fs.open,
                stats=stats,
            )

    def write_arrow(self, table: pa.Table, *parts: str, stats: bool | list[str] = True,
                    dictionary: bool | list[str] = True) -> None:
        """Publish an Arrow table as one parquet file with pyarrow (same commit protocol).

        For tables born in Arrow (quarantine, feature tables): no pandas round trip, and
        fastparquet's fixed cost per file (~10 ms) is paid only where its writer is wanted.
        ``stats``: the columns to write min/max statistics for (all by default);
        ``dictionary``: the columns to dictionary-encode (all by default). Encoded in memory,
        then written in one call (pyarrow writes a Python file object in many small pieces).
        Dictionary-typed columns are written as they are (see :func:`_parquet_bytes`).
        """
        self.write_bytes(_parquet_bytes(table, stats, dictionary), *parts)

    def remove(self, *parts: str, recursive: bool = False) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path(*parts), recursive=recursive)

    # -- one writer at a time -----------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, purpose: str, ttl: dt.timedelta = DEFAULT_LOCK_TTL) -> Iterator[None]:
        """Hold the store's writer lock for the duration of the block.

        A lock older than its expiry is taken over (its owner died). Otherwise another writer
        gets :class:`StoreLockedError` naming the owner and how to clear a stale lock.

        Re-entrant within one thread: ``featurestore ingest`` holds the lock across ingesting
        and materializing, and the inner ``lock()`` calls of both just nest, so no other
        writer can slip in between the two steps.
        """
        key = (self.url, threading.get_ident())
        if _held.get(key):
            _held[key] += 1
            try:
                yield
            finally:
                _held[key] -= 1
            return
        with self._lock_file(purpose, ttl):
            _held[key] = 1
            try:
                yield
            finally:
                del _held[key]

    @contextlib.contextmanager
    def _lock_file(self, purpose: str, ttl: dt.timedelta) -> Iterator[None]:
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        now = dt.datetime.now(dt.UTC)
        record = {"owner": owner, "purpose": purpose, "since": now.isoformat(),
                  "expires": (now + ttl).isoformat()}
        self.fs.makedirs(self.root, exist_ok=True)
        current = self._read_lock()
        if current and dt.datetime.fromisoformat(current["expires"]) > now:
            raise StoreLockedError(
                f"store {self.url} is locked by {current['owner']} ({current['purpose']}, since "
                f"{current['since']}). Wait for that run to finish; if it died, delete "
                f"{self.uri(LOCK_NAME)} or wait until {current['expires']}."
            )
        if current:  # expired: take it over
            self.remove(LOCK_NAME)
        if not self.create_new(json.dumps(record).encode(), LOCK_NAME):
            raise StoreLockedError(
                f"store {self.url} was locked by another run a moment ago; retry later")
        try:
            yield
        finally:
            if (self._read_lock() or {}).get("owner") == owner:
                self.remove(LOCK_NAME)

    def _read_lock(self) -> dict[str, Any] | None:
        try:
            return self.read_json(LOCK_NAME)
        except (FileNotFoundError, json.JSONDecodeError):
            return None


def _parquet_bytes(table: pa.Table, stats: bool | list[str],
                   dictionary: bool | list[str]) -> memoryview:
    """``table`` as parquet bytes (snappy). A dictionary-typed column (codes into distinct
    values) goes to the file's dictionary page as it is, without hashing every value again,
    yet reads back as its value type: the stored Arrow schema (``ARROW:schema``, which pyarrow
    readers follow; other readers see the plain parquet type) is the table's with the value
    types, so readers cannot tell it from a write of the decoded column."""
    import base64

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
