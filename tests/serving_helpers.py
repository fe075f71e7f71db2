"""Helpers for the API tests: SPEC-layout feature tables from events, and a real uvicorn server.

``write_feature_tables`` computes ``customer_features`` / ``customer_product_features`` with plain
pandas from the events table: the API tests need SPEC-layout partitions whose values come from an
independent computation, to compare the served answers with.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import uvicorn

from featurestore.storage import Store

INT_FEATURES = ["page_views_1d", "page_views_7d", "page_views_30d", "product_views_7d",
                "product_views_30d", "distinct_products_viewed_30d", "cart_adds_7d",
                "purchases_7d", "purchases_30d"]


def _has(events: pd.Series, code: str) -> pd.Series:
    return events.fillna("").map(lambda s: code in s.split(","))


def compute_features(events: pd.DataFrame, as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SPEC §3 features at ``as_of`` in plain pandas (replace with materialize once merged)."""
    ev = events[events["customer_id"].notna()].copy()
    ev["date"] = pd.to_datetime(ev["hit_time_gmt"], unit="s").dt.date
    ev = ev[ev["date"] <= as_of]
    age = ev["date"].map(lambda d: (as_of - d).days)
    view = _has(ev["post_event_list"], "2")
    purchase = _has(ev["post_event_list"], "1")
    cart = _has(ev["post_event_list"], "12")
    page = ev["post_page_event"].astype(str) == "0"
    prods = ev["post_product_list"].fillna("").map(
        lambda s: [p.split(";") for p in s.split(",") if len(p.split(";")) >= 4])
    pairs = pd.DataFrame({"customer_id": ev["customer_id"], "age": age, "prods": prods,
                          "view": view, "purchase": purchase}).explode("prods").dropna()
    pairs["product_id"] = pairs["prods"].map(lambda p: p[1])
    pairs["price"] = pairs["prods"].map(lambda p: float(p[3] or 0))
    vp = pairs[pairs["view"] & (pairs["age"] < 30)]
    g = pd.DataFrame({"customer_id": ev["customer_id"], "age": age, "page": page, "view": view,
                      "purchase": purchase, "cart": cart, "date": ev["date"]})
    out = pd.DataFrame(index=pd.Index(sorted(g["customer_id"].unique()), name="customer_id"))
    by = g.groupby("customer_id")
    for n in (1, 7, 30):
        out[f"page_views_{n}d"] = g[g["page"] & (g["age"] < n)].groupby("customer_id").size()
    for n in (7, 30):
        out[f"product_views_{n}d"] = vp[vp["age"] < n].groupby("customer_id").size()
        out[f"purchases_{n}d"] = g[g["purchase"] & (g["age"] < n)].groupby("customer_id").size()
    out["distinct_products_viewed_30d"] = vp.groupby("customer_id")["product_id"].nunique()
    out["cart_adds_7d"] = g[g["cart"] & (g["age"] < 7)].groupby("customer_id").size()
    out = out.fillna(0).astype("int64")
    bought = pairs[pairs["purchase"] & (pairs["age"] < 30)]
    out["revenue_30d"] = bought.groupby("customer_id")["price"].sum().reindex(out.index) \
        .fillna(0.0).astype("float64")
    out["active_days_30d"] = g[g["age"] < 30].groupby("customer_id")["date"].nunique() \
        .reindex(out.index).fillna(0).astype("int64")
    out["days_since_last_visit"] = by["age"].min().astype("int64")
    out["days_since_last_purchase"] = g[g["purchase"]].groupby("customer_id")["age"].min() \
        .reindex(out.index).astype("Int64")
    cf = out[[*INT_FEATURES, "revenue_30d", "active_days_30d", "days_since_last_visit",
              "days_since_last_purchase"]].reset_index()
    cf["customer_id"] = cf["customer_id"].astype(object)
    cp = vp.assign(v7=vp["age"] < 7).groupby(["customer_id", "product_id"]).agg(
        product_views_7d=("v7", "sum"), product_views_30d=("age", "size")).reset_index()
    cp[["product_views_7d", "product_views_30d"]] = cp[
        ["product_views_7d", "product_views_30d"]].astype("int64")
    cp[["customer_id", "product_id"]] = cp[["customer_id", "product_id"]].astype(object)
    return cf, cp


def write_feature_tables(store: Store, cf: pd.DataFrame, cp: pd.DataFrame, as_of: str) -> None:
    store.write_parquet(cf, "customer_features", f"as_of={as_of}", "part-0.parquet")
    store.write_parquet(cp, "customer_product_features", f"as_of={as_of}", "part-0.parquet")


def expected_row(cf: pd.DataFrame, customer_id: str) -> dict:
    """The JSON the API should return for one customer: int, float, None."""
    return _row_json(cf.set_index("customer_id").loc[customer_id])


def expected_rows(cf: pd.DataFrame) -> dict[str, dict]:
    """:func:`expected_row` of every customer of ``cf`` (the frame indexed once, not once per
    customer: that was quadratic in the customers)."""
    indexed = cf.set_index("customer_id")
    return {c: _row_json(indexed.loc[c]) for c in indexed.index}


def _row_json(row: pd.Series) -> dict:
    return {k: (None if pd.isna(v) else (float(v) if isinstance(v, (float, np.floating))
                                          else int(v))) for k, v in row.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ok(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 200 (a server starting).

    One httpx client for every poll: a bare ``httpx.get`` builds an SSL context each time
    (~50 ms of CPU).

    Args:
        url: what to poll.
        timeout: seconds before giving up.
        proc: the server's process, when it is one: its exit ends the wait at once, with the
            tail of its output when that is piped.

    Raises:
        RuntimeError: ``proc`` exited, or ``timeout`` passed, before a 200.
    """
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5) as http:
        while True:
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if proc is not None and proc.poll() is not None:
                out = proc.communicate()[0] if proc.stdout is not None else b""
                raise RuntimeError(f"the server for {url} exited ({proc.returncode}) before "
                                   f"answering: {(out or b'').decode(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer 200 within {timeout} s")
            time.sleep(0.05)


@contextlib.contextmanager
def serve(app, ready_path: str | None = "/ready", timeout: float = 30) -> Iterator[str]:
    """Run ``app`` on a real uvicorn server in a thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ok(base + (ready_path or "/health"), timeout)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def serve_subprocess(env: dict[str, str], timeout: float = 30,
                     command: list[str] | None = None, ready_path: str = "/health",
                     drop_env: tuple[str, ...] = ()) -> Iterator[str]:
    """Run the API in a subprocess configured by ``env`` (``FEATURESTORE_*`` on top of this
    environment, less ``drop_env``), as an operator would; yield its base URL.

    ``command``: the server command without its port (default ``uvicorn api.main:app``; e.g.
    ``featurestore serve --store S``); ``--port`` is appended. ``ready_path`` answers 200
    once it serves.
    """
    import os
    import sys
    from pathlib import Path


    root = Path(__file__).resolve().parents[1]
    port = free_port()
    command = command or [sys.executable, "-m", "uvicorn", "api.main:app", "--host",
                          "127.0.0.1", "--log-level", "warning"]
    base_env = {k: v for k, v in os.environ.items() if k not in drop_env}
    proc = subprocess.Popen([*command, "--port", str(port)], cwd=root,
                            env={**base_env, "PYTHONPATH": str(root), **env})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ok(f"{base}{ready_path}", timeout, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
