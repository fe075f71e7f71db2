"""``featurestore serve``: the REST API (SPEC §6) on uvicorn, with the embedded online store.

The latest as-of of each feature table is loaded in the background (``/ready`` says when) and
swapped for a newer one without a restart (polled every FEATURESTORE_SNAPSHOT_POLL_SECONDS).
"""

from __future__ import annotations

import argparse

from typing import TYPE_CHECKING

from ._common import add_store_options, settings_from

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["register", "run", "serve_api", "try_urls"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve features over HTTP (FastAPI on uvicorn)",
                       description=__doc__)
    add_store_options(p)
    p.add_argument("--host", help="interface to bind (FEATURESTORE_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (FEATURESTORE_PORT, default 8000)")
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

    base = f"http://{settings.host}:{settings.port}"
    print(f"serving {settings.store} on {base} (Ctrl-C to stop)", flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=log_level, workers=1,
                # per-request access lines only when asked for (they cost ~10% throughput)
                access_log=log_level in ("debug", "trace", "info"))
