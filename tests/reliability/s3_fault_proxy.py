"""An HTTP proxy on 127.0.0.1 in front of a (moto) S3 endpoint that injects faults.

Point a store's ``client_kwargs.endpoint_url`` at :attr:`S3FaultProxy.url`; every request is
classified as one S3 operation (``GET``, ``HEAD``, ``PUT``, ``LIST``, ``DELETE``) and the
first matching :class:`FaultRule` whose seeded coin comes up injects its fault:

* ``"500"`` (InternalError), ``"503"`` (ServiceUnavailable), ``"slowdown"`` (503 SlowDown):
  answered by the proxy, the request never reaches the server;
* ``"slow"``: forwarded, the answer held back ``delay`` seconds;
* ``"drop"``: the connection is closed without an answer, the request never reaches the
  server; ``"drop_after"``: forwarded (so it took effect), then closed without an answer.

Also the checks run after faults: :func:`store_contents`, :func:`compare_contents` (rows lost
and duplicated against a clean run) and :func:`partial_problems`. Used by
``tests/reliability/test_s3_faults.py`` and ``benchmarks/reliability_s3.py``.
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import json
import random
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FaultRule", "S3FaultProxy", "OPS", "FAULTS", "store_contents", "compare_contents",
           "partial_problems"]

OPS = ("GET", "HEAD", "PUT", "LIST", "DELETE")
FAULTS = ("500", "503", "slowdown", "slow", "drop", "drop_after")
_ERRORS = {"500": (500, "InternalError", "We encountered an internal error. Please try again."),
           "503": (503, "ServiceUnavailable", "Service is unable to handle request."),
           "slowdown": (503, "SlowDown", "Please reduce your request rate.")}
# Hop-by-hop headers are the proxy's own business, never forwarded.
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
        "upgrade", "expect", "content-length"}


@dataclasses.dataclass
class FaultRule:
    """Inject ``fault`` into requests of ``ops`` with probability ``rate``.

    ``path``: a regex the decoded request path (``/bucket/key?query``) must contain;
    ``times``: at most that many injections by this rule (None: no limit); ``delay``: seconds,
    for ``"slow"``.
    """

    ops: Iterable[str]
    fault: str
    rate: float = 1.0
    path: str | None = None
    times: int | None = None
    delay: float = 0.0

    def __post_init__(self) -> None:
        self.ops = frozenset(self.ops)
        if not self.ops <= set(OPS) or self.fault not in FAULTS:
            raise ValueError(f"unknown op or fault in {self!r}")


def classify(method: str, target: str) -> str:
    """The S3 operation of a path-style request: ``LIST`` for GETs of a bucket (no key)."""
    parsed = urllib.parse.urlsplit(target)
    key = parsed.path.lstrip("/").partition("/")[2]
    query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    if method == "GET":
        return "GET" if key else "LIST"
    if method == "DELETE" or (method == "POST" and "delete" in query):
        return "DELETE"
    if method in ("PUT", "POST"):  # PutObject, CopyObject, multipart uploads
        return "PUT"
    return "HEAD"


class S3FaultProxy:
    """A threaded forwarding proxy with seeded fault injection; a context manager.

    Args:
        upstream: ``http://127.0.0.1:PORT`` of the real (moto) server; loopback only.
        rules: the fault rules, first match wins (replace them any time with :meth:`set_rules`).
        seed: seeds the coin flips, so a run's fault pattern is reproducible (up to the order
            in which concurrent requests arrive).
    """

    def __init__(self, upstream: str, rules: Iterable[FaultRule] = (), seed: int = 0) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"upstream {upstream} is not a loopback address")
        self.upstream = (parsed.hostname, parsed.port or 80)
        self._rng = random.Random(seed)
        self._mutex = threading.Lock()
        self.rules: list[FaultRule] = []
        self._left: list[int | None] = []
        #: requests seen per op, and faults injected per (op, fault)
        self.requests: collections.Counter[str] = collections.Counter()
        self.injected: collections.Counter[tuple[str, str]] = collections.Counter()
        self.set_rules(rules)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def faults_injected(self) -> int:
        return sum(self.injected.values())

    def set_rules(self, rules: Iterable[FaultRule]) -> None:
        """Replace the rules (``[]``: a transparent proxy) and their injection budgets."""
        with self._mutex:
            self.rules = list(rules)
            self._left = [r.times for r in self.rules]

    def start(self) -> S3FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="s3-fault-proxy")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> S3FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _choose(self, op: str, target: str) -> FaultRule | None:
        """The rule that fires for this request, if any (counts it)."""
        with self._mutex:
            self.requests[op] += 1
            for i, rule in enumerate(self.rules):
                if op not in rule.ops or (rule.path and not re.search(
                        rule.path, urllib.parse.unquote(target))):
                    continue
                if self._left[i] == 0 or self._rng.random() >= rule.rate:
                    continue
                if self._left[i] is not None:
                    self._left[i] -= 1
                self.injected[(op, rule.fault)] += 1
                return rule
            return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, and 100-continue for PUT bodies
            upstream_conn: http.client.HTTPConnection | None = None

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _drop(self) -> None:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                if self.command in ("PUT", "POST") or body:
                    headers["Content-Length"] = str(len(body))
                for attempt in (1, 2):  # a kept-alive upstream connection may have gone stale
                    if self.upstream_conn is None:
                        self.upstream_conn = http.client.HTTPConnection(*proxy.upstream,
                                                                        timeout=60)
                    try:
                        self.upstream_conn.request(self.command, self.path, body=body,
                                                   headers=headers)
                        resp = self.upstream_conn.getresponse()
                        data = resp.read()
                        return resp.status, resp.reason, resp.getheaders(), data
                    except (http.client.HTTPException, OSError):
                        self.upstream_conn.close()
                        self.upstream_conn = None
                        if attempt == 2:
                            raise
                raise AssertionError("unreachable")

            def _handle(self) -> None:
                op = classify(self.command, self.path)
                body = self._body()
                rule = proxy._choose(op, self.path)
                fault = rule.fault if rule else None
                if fault == "drop":
                    return self._drop()
                if fault in _ERRORS:
                    status, code, message = _ERRORS[fault]
                    payload = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}'
                               f"</Code><Message>{message}</Message><RequestId>fault-proxy"
                               "</RequestId></Error>").encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                status, reason, headers, data = self._forward(body)
                if fault == "drop_after":
                    return self._drop()
                if fault == "slow":
                    time.sleep(rule.delay)
                self.send_response(status, reason)
                for k, v in headers:
                    if k.lower() not in _HOP | {"server", "date"}:  # send_response sets them
                        self.send_header(k, v)
                length = dict((k.lower(), v) for k, v in headers).get("content-length")
                # HEAD answers carry the object's length but no body
                self.send_header("Content-Length",
                                 length if self.command == "HEAD" and length else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

        return Handler


# -- checking a store after faults -----------------------------------------------------------
def store_contents(store: Any) -> dict[str, Any]:
    """Every file of a store by relative path: parquet/arrow as sorted frames, JSON as objects.

    Run-dependent fields (``ingested_at``) and the writer lock are left out, so two runs over
    the same drops compare equal.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from featurestore.sources.weblog.ingest import ledger_entries

    out: dict[str, Any] = {}
    # The ledger through its own reader, one row per file record: its physical form (per-file
    # records or compacted day files, and their versions) depends on when compaction ran.
    for key, record in ledger_entries(store).items():
        out[f"_ledger/weblog/{key}"] = _scrub({k: v for k, v in record.items() if k != "stamp"})
    for rel in store.find():
        if rel == "_lock.json" or rel.startswith("_ledger/"):
            continue
        if rel.endswith(".parquet"):
            table = pq.read_table(store.path(rel), filesystem=store.fs)
        elif rel.endswith(".arrow"):
            data = store.fs.cat_file(store.path(rel))
            table = pa.ipc.open_file(pa.BufferReader(data)).read_all()
        elif rel.endswith(".json"):
            out[rel] = _scrub(json.loads(store.fs.cat_file(store.path(rel))))
            continue
        else:
            out[rel] = store.fs.cat_file(store.path(rel))
            continue
        df = table.to_pandas()
        out[rel] = df.sort_values(list(df.columns)).reset_index(drop=True) if len(df) else df
    return out


def _scrub(value: Any) -> Any:
    """``value`` with every timestamp (``ingested_at`` and its copies) replaced by ``"T"``."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\dT\d\d:", value):
        return "T"
    return value


def _table_of(rel: str) -> str:
    """``events/event_date=D/part-x.parquet`` -> ``events``; a ledger record is its own table."""
    parts = rel.split("/")
    for i, part in enumerate(parts):
        if "=" in part:
            return "/".join(parts[:i])
    return rel.rsplit("/", 2)[0] if rel.startswith("_ledger/") else rel


def _rows(value: Any) -> collections.Counter[str]:
    if hasattr(value, "itertuples"):
        return collections.Counter(repr(tuple(row)) for row in value.itertuples(index=False))
    return collections.Counter([json.dumps(value, sort_keys=True, default=str)])


def compare_contents(expected: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    """Rows lost and duplicated per table of ``actual`` against ``expected`` (a clean run).

    Returns ``{"rows_lost": n, "rows_duplicated": n, "tables": {table: (lost, dup)}}`` with
    only the tables that differ listed; a ledger or state record counts as one row.
    """
    tables: dict[str, tuple[collections.Counter[str], collections.Counter[str]]] = {}
    for side, contents in enumerate((expected, actual)):
        for rel, value in contents.items():
            pair = tables.setdefault(_table_of(rel), (collections.Counter(), collections.Counter()))
            pair[side].update(_rows(value))
    lost = dup = 0
    differing = {}
    for table, (want, got) in sorted(tables.items()):
        t_lost, t_dup = sum((want - got).values()), sum((got - want).values())
        lost, dup = lost + t_lost, dup + t_dup
        if t_lost or t_dup:
            differing[table] = (t_lost, t_dup)
    return {"rows_lost": lost, "rows_duplicated": dup, "tables": differing}


def partial_problems(store: Any) -> list[str]:
    """What a reader could see half-done: an unreadable published file, or a ledger record
    naming outputs that are missing. Empty when every published thing is whole."""
    import pyarrow.parquet as pq

    problems = []
    files = set(store.find())
    for rel in sorted(files):
        if rel.endswith(".parquet") and not rel.rsplit("/", 1)[-1].startswith((".", "_")):
            try:
                pq.read_table(store.path(rel), filesystem=store.fs)
            except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
                problems.append(f"{rel}: unreadable ({exc})")
    from featurestore.events_compaction import live_events
    from featurestore.sources.weblog.ingest import ledger_entries

    held: dict[str, set[str]] = {}  # date -> file ids its live events files hold

    def holds(day: str) -> set[str]:
        if day not in held:  # merged files resolved through their compaction records
            held[day] = {f for ids in live_events(store, day).file_ids.values() for f in ids}
        return held[day]

    for key, record in sorted(ledger_entries(store).items()):  # the ledger's own reader
        drop = key.split("/", 1)[0]
        problems += [f"ledger {key} names missing events of {record['file_id']} on {d}"
                     for d in record.get("event_dates", []) if record["file_id"] not in holds(d)]
        wanted = []
        if record.get("rows_quarantined"):
            wanted.append(f"_quarantine/weblog/drop={drop}/part-{record['file_id']}.parquet")
        problems += [f"ledger {key} names missing {w}" for w in wanted if w not in files]
    store.fs.invalidate_cache()  # the date listings above must not answer later info() calls
    return problems


def ingest_cli(raw_url: str, store_url: str, endpoint: str, *, scheduler: str | None = None,
               options: Iterable[str] = (), timeout: float = 300) -> Any:
    """Run the real ``featurestore ingest`` CLI (a subprocess) against S3 at ``endpoint``.

    Args:
        raw_url, store_url: ``s3://`` URLs of the drops and the store (both via ``endpoint``).
        endpoint: the proxy's (or moto's) URL.
        scheduler: a running Dask scheduler to use (default: the CLI starts one worker).
        options: more ``--storage-option KEY=VALUE`` pairs (retry and timeout settings).
        timeout: seconds before the run counts as hung (``subprocess.TimeoutExpired``).

    Returns:
        The ``subprocess.CompletedProcess`` with text ``stdout``/``stderr`` and ``seconds``.
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "featurestore", "ingest", raw_url, "--store", store_url,
           "--no-progress", *(["--scheduler", scheduler] if scheduler else ["--workers", "1"])]
    for pair in ("key=testing", "secret=testing", "client_kwargs.region_name=us-east-1",
                 f"client_kwargs.endpoint_url={endpoint}", *options):
        cmd += ["--storage-option", pair]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                          capture_output=True, text=True, timeout=timeout)
    proc.seconds = time.perf_counter() - started
    return proc
