"""Generated events + SPEC-layout feature partitions for the training-set tests.

REPLACE the plain-pandas ``customer_features`` writer below with
``featurestore.features.materialize(store)`` once the `features` branch is merged; the events
table is written directly in the ingest layout (``events/event_date=D/part-*.parquet``).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from featurestore.storage import Store

EVENT_LISTS = [None, "2", "12", "1", "1,2", "10", "21", "2,12", "100"]
WEIGHTS = [0.3, 0.3, 0.1, 0.006, 0.006, 0.07, 0.07, 0.1, 0.048]


def make_events(days: int = 45, customers: int = 300, hits_per_day: int = 120,
                start: dt.date = dt.date(2026, 1, 1), seed: int = 5) -> pd.DataFrame:
    """Random hits; "10" and "21" look like purchase id "1" to a substring match but are not."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(days):
        day = start + dt.timedelta(days=k)
        base = int(pd.Timestamp(day, tz="UTC").timestamp())
        n = hits_per_day
        cust = rng.integers(0, customers, n)
        ids = pd.array([f"C{c}" for c in cust], dtype="string")
        ids[rng.random(n) < 0.05] = pd.NA                          # anonymous hits
        lists = [EVENT_LISTS[i] for i in rng.choice(len(EVENT_LISTS), n, p=WEIGHTS)]
        products = [f"cat;P{rng.integers(0, 20)};1;{rng.integers(1, 50)}.5" if ev else None
                    for ev in lists]
        frames.append(pd.DataFrame({
            "hit_time_gmt": (base + rng.integers(0, 86_400, n)).astype("int64"),
            "customer_id": ids,
            "page_url": pd.array([f"https://shop.example/p/{i}" for i in range(n)],
                                 dtype="string"),
            "post_page_event": pd.array(rng.choice(["0", "100"], n, p=[0.8, 0.2]),
                                        dtype="string"),
            "post_event_list": pd.array(lists, dtype="string"),
            "post_product_list": pd.array(products, dtype="string"),
            "event_date": day,
        }))
    return pd.concat(frames, ignore_index=True)


def write_events(store: Store, events: pd.DataFrame, part: str = "part-0") -> None:
    for day, g in events.groupby("event_date"):
        store.write_parquet(g.drop(columns="event_date").reset_index(drop=True), "events",
                            f"event_date={day.isoformat()}", f"{part}.parquet")


def _has(lists: pd.Series, ev: str) -> pd.Series:
    return lists.fillna("").map(lambda s: ev in s.split(","))


def _flagged(events: pd.DataFrame) -> pd.DataFrame:
    """The customers' events with the per-event columns :func:`features_on` reads (kinds of
    event, first product and its price), which do not depend on the as-of date."""
    e = events[events["customer_id"].notna()].copy()
    e["pv"] = e["post_page_event"] == "0"
    e["view"] = _has(e["post_event_list"], "2")
    e["cart"] = _has(e["post_event_list"], "12")
    e["buy"] = _has(e["post_event_list"], "1")
    e["product"] = e["post_product_list"].fillna("").str.split(";").str[1]
    e["price"] = pd.to_numeric(e["post_product_list"].fillna("").str.split(";").str[3],
                               errors="coerce").fillna(0.0)
    e["day_number"] = [d.toordinal() for d in e["event_date"]]
    return e


def features_on(events: pd.DataFrame, day: dt.date,
                flagged: pd.DataFrame | None = None) -> pd.DataFrame:
    """SPEC §3 customer_features for as-of ``day`` in plain pandas (products: first entry).
    ``flagged``: :func:`_flagged` of ``events``, when the caller computes it once for many
    days."""
    e = _flagged(events) if flagged is None else flagged
    e = e[e["event_date"] <= day].copy()
    e["age"] = day.toordinal() - e["day_number"]  # whole days before the as-of date
    g = e.groupby("customer_id")
    out = pd.DataFrame(index=pd.Index(sorted(e["customer_id"].unique()), name="customer_id"))

    def win(mask_col: str, days: int) -> pd.Series:
        m = e[mask_col] & (e["age"] < days)
        return m.groupby(e["customer_id"]).sum().reindex(out.index, fill_value=0)

    out["page_views_1d"] = win("pv", 1)
    out["page_views_7d"] = win("pv", 7)
    out["page_views_30d"] = win("pv", 30)
    out["product_views_7d"] = win("view", 7)
    out["product_views_30d"] = win("view", 30)
    v30 = e[e["view"] & (e["age"] < 30)]
    out["distinct_products_viewed_30d"] = (v30.groupby("customer_id")["product"].nunique()
                                           .reindex(out.index, fill_value=0))
    out["cart_adds_7d"] = win("cart", 7)
    out["purchases_7d"] = win("buy", 7)
    out["purchases_30d"] = win("buy", 30)
    b30 = e[e["buy"] & (e["age"] < 30)]
    out["revenue_30d"] = (b30.groupby("customer_id")["price"].sum()
                          .reindex(out.index, fill_value=0.0)).astype("float64")
    w30 = e[e["age"] < 30]
    out["active_days_30d"] = (w30.groupby("customer_id")["event_date"].nunique()
                              .reindex(out.index, fill_value=0))
    out["days_since_last_visit"] = g["age"].min()
    out["days_since_last_purchase"] = (e[e["buy"]].groupby("customer_id")["age"].min()
                                       .reindex(out.index).astype("Int64"))
    out = out.reset_index()
    out["customer_id"] = out["customer_id"].astype("string")
    for c in out.columns[1:]:
        if c not in ("revenue_30d", "days_since_last_purchase"):
            out[c] = out[c].astype("int64")
    return out


def write_features(store: Store, events: pd.DataFrame) -> list[dt.date]:
    """One ``customer_features/as_of=D/part-0.parquet`` per event date (first .. latest)."""
    days = sorted(events["event_date"].unique())
    flagged = _flagged(events)  # once, not once per as-of date
    for day in days:
        store.write_parquet(features_on(events, day, flagged), "customer_features",
                            f"as_of={day.isoformat()}", "part-0.parquet")
    return days


def expected_training_set(store: Store, events: pd.DataFrame, days: list[dt.date],
                          horizon: int = 30) -> tuple[pd.DataFrame, int]:
    """Plain pandas: read each feature partition, label from the in-memory events."""
    latest = max(events["event_date"])
    buys = events[events["customer_id"].notna() & _has(events["post_event_list"], "1")]
    rows, excluded = [], 0
    for day in days:
        feats = pd.read_parquet(store.uri("customer_features", f"as_of={day.isoformat()}"))
        if day + dt.timedelta(days=horizon) > latest:
            excluded += len(feats)
            continue
        window = buys[(buys["event_date"] > day)
                      & (buys["event_date"] <= day + dt.timedelta(days=horizon))]
        feats.insert(1, "as_of", day)
        feats["purchased_next_30d"] = feats["customer_id"].isin(set(window["customer_id"]))
        rows.append(feats)
    frame = pd.concat(rows, ignore_index=True)
    frame["purchased_next_30d"] = frame["purchased_next_30d"].astype("int64")
    return frame, excluded
