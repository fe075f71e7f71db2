"""``featurestore serve``: the REST API (SPEC §6) on uvicorn, with the embedded online store.

The latest as-of of each feature table is loaded in the background (``/ready`` says when) and
swapped for a newer one without a restart (polled every FEATURESTORE_SNAPSHOT_POLL_SECONDS).
"""

from __future__ import annotations

import argparse
import errno
import socket
from typing import TYPE_CHECKING

from .._exceptions import FeatureStoreError

from ._common import add_store_options, settings_from

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["register", "run", "serve_api", "try_urls", "port_number", "bind"]


def port_number(value: str) -> int:
    """argparse type of ``--port``: a TCP port, 1-65535 (else a usage error: 99999 would be
    taken modulo 65536 by the socket layer and serve on another port than printed).

    Args:
        value: the flag's text.

    Returns:
        The port.
    """
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value[:100]!r} is not a port: use 1-65535")
    return int(value)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve features over HTTP (FastAPI on uvicorn)",
                       description=__doc__)
    add_store_options(p)
    p.add_argument("--host", help="interface to bind (FEATURESTORE_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=port_number, help="port (FEATURESTORE_PORT, default 8000)")
    p.add_argument("--log-level", default="info", help="uvicorn log level")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..feature_store import FeatureStore

    settings = settings_from(args)
    FeatureStore(settings).check("read")  # serving a store that does not exist: one line
    updates = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = settings.model_copy(update=updates)
    serve_api(settings, log_level=args.log_level)
    return 0


def try_urls(base: str, customer_id: str = "<customer_id>") -> list[str]:
    return [f"{base}/docs", f"{base}/ready", f"{base}/tables",
            f"{base}/customers/{customer_id}/features",
            f"{base}/customers/{customer_id}/features?features=page_views_7d,purchases_30d",
            f"{base}/customers/{customer_id}/products?top=5", f"{base}/metrics"]


def example_customer(store) -> str:
    """A customer id to put in the printed URLs: from the latest features, else from events."""
    import pyarrow.parquet as pq

    from ..events_compaction import live_events
    from ..layout import is_published

    for table, key in (("customer_features", "as_of"), ("events", "event_date")):
        values = store.partitions(table, key)
        if not values:
            continue
        folder = f"{key}={values[-1]}"
        files = ([f for f in store.listdir(table, folder) if is_published(f)]
                 if table != "events" else live_events(store, values[-1]).files)
        ids = pq.read_table(store.path(table, folder, files[0]), filesystem=store.fs,
                            columns=["customer_id"]).column(0).drop_null()
        if len(ids):
            return str(ids[0])
    return "<customer_id>"


def serve_api(settings: Settings, log_level: str = "info") -> None:
    """Run the API until interrupted (Ctrl-C). Imports the API lazily: the library never does
    at import time."""
    import uvicorn

    from api.main import create_app

    from ..storage import Store

    sock = bind(settings.host, settings.port)  # a port in use: one line, before the app starts
    base = f"http://{settings.host}:{settings.port}"
    url = Store(settings.store, settings.storage_options or None).url  # absolute, as printed
    print(f"serving {url} on {base} (Ctrl-C to stop)", flush=True)
    config = uvicorn.Config(create_app(settings), host=settings.host, port=settings.port,
                            log_level=log_level, workers=1,
                            # per-request access lines only when asked (~10% throughput)
                            access_log=log_level in ("debug", "trace", "info"))
    with sock:
        uvicorn.Server(config).run(sockets=[sock])


def bind(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound here so a port in use (or a host this machine
    does not have) is one error line and exit 1, not uvicorn's log after the app started.

    Args:
        host: the interface.
        port: the port.

    Returns:
        The bound socket (uvicorn listens on it).

    Raises:
        FeatureStoreError: the address cannot be bound.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise FeatureStoreError(f"cannot serve on {host}:{port}: {exc}; pass --host with an "
                                "address of this machine") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        what = ("is in use by another process: stop it or pass --port with a free port"
                if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})")
        raise FeatureStoreError(f"port {port} on {host} {what}") from None
    sock.set_inheritable(True)
    return sock
