"""Issue #13 items 9-12: the API must not be a way in.

Real uvicorn servers (in a thread, or a subprocess where its memory is measured), real sockets
for bodies that a well-behaved client would not send, a real loopback HTTP server standing for
an internal address. No mocks.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import random
import socket
import string
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

from api.main import create_app
from featurestore.retrain import jobs, registry, wait_for
from featurestore.settings import Settings
from featurestore.storage import Store
from tests.serving_helpers import serve, serve_subprocess

TOKEN = "limits-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = 64 * 1024


# -- helpers ------------------------------------------------------------------------------------

@contextlib.contextmanager
def _server(tmp_path: Path, **settings) -> Iterator[tuple[str, Store]]:
    store = Store(str(tmp_path / "store"))
    store.fs.makedirs(store.root, exist_ok=True)
    app = create_app(Settings(store=store.url, snapshot_poll_seconds=3600, **settings))
    with serve(app, ready_path="/health") as base:
        yield base, store


@contextlib.contextmanager
def _uvicorn(env: dict[str, str]) -> Iterator[tuple[str, psutil.Process]]:
    """``uvicorn api.main:app`` in a subprocess (its memory is what the body test measures)."""
    with serve_subprocess(env) as base:
        port = base.rsplit(":", 1)[1]
        [server] = [p for p in psutil.Process().children()
                    if "uvicorn" in p.cmdline() and port in p.cmdline()]
        yield base, server


def _raw_post(base: str, path: str, headers: dict[str, str], body: Iterator[bytes],
              max_send: int) -> tuple[int, dict, int]:
    """POST over a raw socket, sending ``body`` until the server answers or closes; returns
    (status, JSON body, bytes sent). A client that keeps sending must not make the server
    read it all."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        return _exchange(sock, host, path, headers, body, max_send)


def _exchange(sock: socket.socket, host: str, path: str, headers: dict[str, str],
              body: Iterator[bytes], max_send: int) -> tuple[int, dict, int]:
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode())
    sent = 0
    sock.setblocking(False)
    received = b""
    try:
        for chunk in body:
            try:
                received += sock.recv(65536)
            except BlockingIOError:
                pass
            if b"\r\n\r\n" in received or sent >= max_send:
                break
            try:
                sock.sendall(chunk)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.setblocking(True)
    sock.settimeout(10)
    with contextlib.suppress(ConnectionResetError, socket.timeout):
        while True:
            data = sock.recv(65536)
            if not data:
                break
            received += data
            head_end = received.find(b"\r\n\r\n")
            if head_end >= 0:
                length = [int(line.split(b":")[1]) for line in received[:head_end].split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if length and len(received) >= head_end + 4 + length[0]:
                    break
    head, _, payload = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, json.loads(payload), sent


def _chunks(size: int, n: int) -> Iterator[bytes]:
    return (b"x" * size for _ in range(n))


def _chunked(size: int, n: int) -> Iterator[bytes]:
    return (f"{size:x}\r\n".encode() + b"x" * size + b"\r\n" for _ in range(n))


# -- 9. unbounded requests ----------------------------------------------------------------------

def test_oversized_bodies_get_413_and_memory_stays_bounded(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    with _uvicorn({"FEATURESTORE_STORE": str(store), "FEATURESTORE_API_TOKEN": TOKEN,
                   "FEATURESTORE_API_MAX_BODY_BYTES": str(LIMIT)}) as (base, proc):
        before = proc.memory_info().rss
        # declared 300 MB: refused at once, from the header (we send 16 MB of it at most)
        status, body, sent = _raw_post(
            base, "/features/batch", {"Content-Type": "application/json",
                                      "Content-Length": str(300 * 2**20)},
            _chunks(1 << 20, 300), max_send=16 << 20)
        assert status == 413 and "FEATURESTORE_API_MAX_BODY_BYTES" in body["detail"]
        # no Content-Length (chunked): refused once past the limit, the rest never read
        status, body, sent = _raw_post(
            base, "/retrain", {"Content-Type": "application/json",
                               "Transfer-Encoding": "chunked", **AUTH},
            _chunked(1 << 20, 300), max_send=64 << 20)
        assert status == 413 and "over the limit" in body["detail"], body
        grown = proc.memory_info().rss - before
        assert grown < 40 * 2**20, f"server RSS grew {grown / 2**20:.0f} MB"
        # a body within the limit still works (JSON error from the route, not the guard)
        r = httpx.post(f"{base}/features/batch", json={"customer_ids": ["a"] * 10})
        assert r.status_code in (404, 503) and r.status_code != 413


def test_anonymous_bodies_get_401_before_parsing(tmp_path):
    with _server(tmp_path, api_token=TOKEN, api_require_token_for_reads=True,
                 api_max_body_bytes=LIMIT) as (base, _):
        for path in ("/features/batch", "/retrain", "/training-sets"):
            r = httpx.post(f"{base}{path}", content=b"{not json",
                           headers={"Content-Type": "application/json"})
            assert r.status_code == 401, (path, r.text)
            assert "token" in r.json()["detail"]
            status, body, _ = _raw_post(base, path, {"Content-Length": str(LIMIT * 10)},
                                        _chunks(LIMIT, 1), max_send=LIMIT)
            assert status == 401 and "token" in body["detail"], (path, body)
        # with the token the same oversized body is 413, the malformed one 422
        status, body, _ = _raw_post(base, "/features/batch",
                                    {"Content-Length": str(LIMIT * 10), **AUTH},
                                    _chunks(LIMIT, 1), max_send=LIMIT)
        assert status == 413
        r = httpx.post(f"{base}/features/batch", content=b"{not json",
                       headers={"Content-Type": "application/json", **AUTH})
        assert r.status_code == 422
        assert httpx.get(f"{base}/health").status_code == 200  # probes stay open


def test_anonymous_write_bodies_get_401_with_open_reads(tmp_path):
    with _server(tmp_path, api_token=TOKEN) as (base, _):
        r = httpx.post(f"{base}/retrain", content=b"[[[", headers={"Content-Type":
                                                                   "application/json"})
        assert r.status_code == 401 and "token" in r.json()["detail"]


def test_metrics_labels_stay_bounded(tmp_path):
    rng = random.Random(5)
    with _server(tmp_path) as (base, _):
        with httpx.Client(base_url=base) as http:
            http.get("/health")
            lines = len(http.get("/metrics").text.splitlines())
            for i in range(1000):
                path = "/" + "".join(rng.choices(string.ascii_letters + "/%", k=rng.randint(1, 40)))
                # X<i>: a new method per request (h11 passes it on; httptools answers 400
                # itself); the WebDAV names reach the app under either parser.
                method = rng.choice(["GET", "POST", f"X{i}", "DELETE",
                                     rng.choice(["PROPFIND", "MKCOL", "PURGE", "REPORT"])])
                http.request(method, path)
            text = http.get("/metrics").text
        grown = len(text.splitlines()) - lines
        # a few new (method, route, status) series at most, never one per path or method
        assert grown < 150, f"/metrics grew by {grown} lines for 1,000 random requests"
        assert 'route="other"' in text and 'method="OTHER"' in text
        assert "X17" not in text and "PROPFIND" not in text


def test_retrain_queue_is_capped(tmp_path):
    gate = threading.Event()
    blocker = jobs._executor_instance().submit(gate.wait, 60)  # the pool's one worker is busy
    try:
        with _server(tmp_path, api_token=TOKEN, retrain_queue_limit=2) as (base, store):
            body = {"model": "purchase-xgboost", "export_url": store.uri("_exports", "none")}
            ids = []
            for _ in range(2):
                r = httpx.post(f"{base}/retrain", json=body, headers=AUTH)
                assert r.status_code == 202, r.text
                ids.append(r.json()["job_id"])
            r = httpx.post(f"{base}/retrain", json=body, headers=AUTH)
            assert r.status_code == 429, r.text
            assert "FEATURESTORE_RETRAIN_QUEUE_LIMIT" in r.json()["detail"]
            assert len([f for f in store.listdir("_jobs") if f.endswith(".json")]) == 2
            gate.set()
            for job_id in ids:
                assert wait_for(store, job_id, timeout=30, poll=0.1)["status"] == "failed"
            time.sleep(0.2)  # the done callbacks run right after the record is final
            r = httpx.post(f"{base}/retrain", json=body, headers=AUTH)
            assert r.status_code == 202, r.text  # room again once jobs finish
            wait_for(store, r.json()["job_id"], timeout=30, poll=0.1)
    finally:
        gate.set()
        blocker.result(timeout=60)


# -- 10. path parameters ------------------------------------------------------------------------

def test_bad_path_parameters_are_4xx_json(tmp_path):
    long_id = "a" * 5000
    with _server(tmp_path, api_token=TOKEN) as (base, _):
        for path in ("/retrain/%00", "/models/%00", "/tables/%00", "/training-sets/%00",
                     f"/retrain/{long_id}", f"/models/{long_id}", f"/tables/{long_id}",
                     f"/training-sets/{long_id}", "/retrain/..", "/models/.hidden",
                     "/customers/%00/products", f"/customers/{long_id}/features"):
            r = httpx.get(base + path, headers=AUTH)
            assert r.status_code in (404, 422), (path, r.status_code, r.text[:200])
            assert isinstance(r.json()["detail"], str)


# -- 11. where a token holder may write and read ------------------------------------------------

class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        _Recorder.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_training_set_out_only_under_export_roots(tmp_path):
    with _server(tmp_path, api_token=TOKEN) as (base, store):
        store.write_json({"keep": True}, "_ledger", "probe.json")
        refused = ["/etc/featurestore-out", str(tmp_path / "elsewhere"),
                   store.uri("_exports", "..", "_ledger"),
                   store.uri("_exports", "x", "..", "..", "customer_features"),
                   store.uri("customer_features", "as_of=2026-01-01"), store.uri("_ledger"),
                   store.uri("_exports", "_jobs"), store.uri("_exports"),
                   "http://127.0.0.1:9/out", "s3://other-bucket/x"]
        (tmp_path / "store" / "_exports").mkdir()
        os.symlink(store.path("_ledger"), store.path("_exports", "link"))
        refused.append(store.uri("_exports", "link"))
        for out in refused:
            r = httpx.post(f"{base}/training-sets", json={"out": out, "format": "parquet"},
                           headers=AUTH, timeout=30)
            assert r.status_code == 400, (out, r.text)
            assert "outside the store's exports" in r.json()["detail"] or \
                "not accepted" in r.json()["detail"], r.text
        assert sorted(os.listdir(store.path("_ledger"))) == ["probe.json"]
        assert not Path("/etc/featurestore-out").exists()
        assert not (tmp_path / "elsewhere").exists()
        # an export folder of its own under <store>/_exports passes the check (the empty store
        # then has nothing to export: a 4xx about the data, not about the place)
        r = httpx.post(f"{base}/training-sets", json={"out": store.uri("_exports", "mine"),
                                                      "format": "parquet"},
                       headers=AUTH, timeout=60)
        assert "outside" not in r.json()["detail"] and r.status_code < 500, r.text


def test_export_url_only_from_the_store_or_configured_prefixes(tmp_path):
    recorder = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    allowed = tmp_path / "shared-exports"
    try:
        with _server(tmp_path, api_token=TOKEN,
                     export_input_prefixes=[str(allowed)]) as (base, store):
            internal = f"http://127.0.0.1:{recorder.server_port}/export"
            for url in ("/etc", "/etc/passwd", internal, "https://127.0.0.1:1/x",
                        store.uri("_exports", "..", "customer_features"),
                        str(allowed / ".." / "secret"), store.uri("customer_features"),
                        "file:///etc"):
                r = httpx.post(f"{base}/retrain", headers=AUTH,
                               json={"model": "purchase-xgboost", "export_url": url})
                assert r.status_code == 400, (url, r.text)
            assert not store.exists("_jobs") or not [
                f for f in store.listdir("_jobs") if f.endswith(".json")]
            for url in (store.uri("_exports", "e1"), str(allowed / "e2")):
                r = httpx.post(f"{base}/retrain", headers=AUTH,
                               json={"model": "purchase-xgboost", "export_url": url})
                assert r.status_code == 202, (url, r.text)
                wait_for(store, r.json()["job_id"], timeout=30, poll=0.1)
            time.sleep(0.2)
            assert _Recorder.hits == []
    finally:
        recorder.shutdown()
        recorder.server_close()


# -- 12. what anonymous readers see -------------------------------------------------------------

def test_anonymous_readers_get_logical_names(tmp_path):
    with _server(tmp_path, api_token=TOKEN) as (base, store):
        registry.register_version(
            store, "purchase-xgboost", metrics={"pr_auc": 0.5}, model_bytes=b"{}",
            model_filename="model.json", training_set={"url": store.uri("_exports", "t1")},
            features=["a"], info={"job_id": "j1", "backend": "local",
                                  "artifact": store.uri("_models", "m")})
        r = httpx.post(f"{base}/retrain", headers=AUTH,
                       json={"model": "purchase-xgboost",
                             "export_url": store.uri("_exports", "absent")})
        job_id = r.json()["job_id"]
        wait_for(store, job_id, timeout=30, poll=0.1)
        secrets = (store.url, str(tmp_path), "file://")
        anonymous = [httpx.get(f"{base}/models"), httpx.get(f"{base}/models/purchase-xgboost"),
                     httpx.get(f"{base}/retrain/{job_id}"), httpx.get(f"{base}/retrain/nope-1"),
                     httpx.get(f"{base}/models/nope"), httpx.get(f"{base}/tables/nope"),
                     httpx.get(f"{base}/customers/c1/features"), httpx.get(f"{base}/ready")]
        for r in anonymous:
            assert r.status_code != 500  # /ready and features answer 503 without a snapshot
            assert not any(s in r.text for s in secrets), (str(r.url), r.text)
        version = anonymous[1].json()["versions"][0]
        assert version["version"] == "v0001" and version["job_id"] == "j1"
        job = anonymous[2].json()
        assert job["status"] == "failed" and job["export_url"] is None
        assert "metadata.json" in job["error"]  # the file name still says what is wrong
        # the operator (write token) gets the locations
        full = httpx.get(f"{base}/models/purchase-xgboost", headers=AUTH).json()["versions"][0]
        assert full["model_file"].startswith(store.url) and full["training_set"]
        job = httpx.get(f"{base}/retrain/{job_id}", headers=AUTH).json()
        assert job["export_url"] == store.uri("_exports", "absent")
