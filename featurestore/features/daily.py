"""Per-event-date aggregates of the web-log events: the unit of incremental work.

For each event date D one task reads ``events/event_date=D/*.parquet`` and writes

* ``_daily/customer/event_date=D/part-0.parquet``: one row per customer with a counted hit on
  D; columns ``hits_<filter>`` (hits matching a filter), ``pairs_<filter>`` ((hit, product)
  pairs of matching hits) and ``sum_<field>_<filter>`` (price / quantity over those pairs);
* ``_daily/customer_product/event_date=D/part-0.parquet``: one row per (customer, product)
  with a pair on D; ``pairs_<filter>`` and ``sum_<field>_<filter>`` columns.

Which columns exist is a :class:`DailyPlan`, derived from the feature repository: every
windowed feature is a sum (or a count of non-zero rows) of these columns over D-w+1 .. D, so a
snapshot never reads raw events. ``<filter>`` is :attr:`Filter.key`, a short hash.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json

import numpy as np
import pandas as pd

from .. import layout
from ..layout import EVENTS as EVENTS_TABLE
from ..layout import is_published
from ..storage import Store
from .definitions import FeatureRepo, Filter

__all__ = [
    "DAILY_CUSTOMER",
    "DAILY_CUSTOMER_PRODUCT",
    "DailyPlan",
    "aggregate_events",
    "compute_daily",
    "daily_plan",
    "read_daily",
    "read_daily_table",
]

DAILY_CUSTOMER = layout.DAILY_CUSTOMER
DAILY_CUSTOMER_PRODUCT = layout.DAILY_CUSTOMER_PRODUCT
ALL = Filter()
_EVENT_COLUMNS = ["customer_id", "page_url", "post_page_event", "post_event_list",
                  "post_product_list"]
#: scheme://host at the start of a URL; what follows up to ? or # is the path.
_URL_HOST = r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*"
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


@dataclasses.dataclass(frozen=True)
class DailyPlan:
    """The daily columns the weblog tables need (sorted, so the plan is deterministic)."""

    hit_filters: tuple[Filter, ...]
    pair_filters: tuple[Filter, ...]
    sums: tuple[tuple[str, Filter], ...]
    cp_pair_filters: tuple[Filter, ...]
    cp_sums: tuple[tuple[str, Filter], ...]
    recency_filters: tuple[Filter, ...]

    @property
    def filters(self) -> list[Filter]:
        seen: dict[str, Filter] = {}
        for f in (*self.hit_filters, *self.pair_filters, *self.cp_pair_filters,
                  *(f for _, f in self.sums), *(f for _, f in self.cp_sums)):
            seen[f.key] = f
        return [seen[k] for k in sorted(seen)]

    @functools.cached_property  # asked for per date; cached in the (frozen) instance's dict
    def fingerprint(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str).encode()
        return hashlib.sha1(blob).hexdigest()[:16]


def _uniq(filters) -> tuple[Filter, ...]:
    return tuple(sorted({f.key: f for f in filters}.values(), key=lambda f: f.key))


def _uniq_sums(pairs) -> tuple[tuple[str, Filter], ...]:
    return tuple(sorted({(fld, f.key): (fld, f) for fld, f in pairs}.values(),
                        key=lambda p: (p[0], p[1].key)))


def daily_plan(repo: FeatureRepo) -> DailyPlan:
    hits, pairs, sums, cp_pairs, cp_sums, recency = [ALL], [], [], [], [], [ALL]
    for name, table in repo.tables_for("weblog").items():
        product_table = len(repo.keys(name)) == 2
        for f in table.features.values():
            if product_table:
                (cp_pairs.append(f.filter) if f.aggregation == "count"
                 else cp_sums.append((f.field, f.filter)))
            elif f.aggregation == "count":
                (pairs if f.unit == "product" else hits).append(f.filter)
            elif f.aggregation == "sum":
                sums.append((f.field, f.filter))
            elif f.aggregation == "distinct" and f.field == "product_id":
                cp_pairs.append(f.filter)
            elif f.aggregation == "distinct":  # event_date: days with a matching hit
                hits.append(f.filter)
            elif f.aggregation == "recency":
                hits.append(f.filter)
                recency.append(f.filter)
    return DailyPlan(_uniq(hits), _uniq(pairs), _uniq_sums(sums), _uniq(cp_pairs),
                     _uniq_sums(cp_sums), _uniq(recency))


def _mask(events: pd.DataFrame, f: Filter) -> np.ndarray:
    """Which hits match ``f`` (all given conditions)."""
    mask = np.ones(len(events), dtype=bool)
    if f.event_id is not None:
        padded = "," + events["post_event_list"].fillna("") + ","
        mask &= padded.str.contains(f",{f.event_id},", regex=False).to_numpy(dtype=bool)
    if f.page_event is not None:
        mask &= (events["post_page_event"] == f.page_event).fillna(False).to_numpy(dtype=bool)
    if f.url_path_prefix is not None:
        path = (events["page_url"].fillna("").str.replace(_URL_HOST, "", regex=True)
                .str.replace(r"[?#].*$", "", regex=True))
        mask &= path.str.startswith(f.url_path_prefix).to_numpy(dtype=bool)
    return mask


def _products(events: pd.DataFrame, needed: np.ndarray) -> pd.DataFrame:
    """(hit row, product_id, quantity, price) for the products of the ``needed`` hits."""
    lists = events["post_product_list"][needed & events["post_product_list"].notna().to_numpy()]
    entries = lists.astype(object).str.split(",").explode()
    entries = entries[entries.notna() & (entries != "")]
    parts = entries.str.split(";")
    out = pd.DataFrame({
        "row": entries.index.to_numpy(dtype=np.int64),
        "product_id": parts.str[1].astype("string"),
        "quantity": pd.to_numeric(parts.str[2].replace("", None), errors="coerce")
        .fillna(0).astype("int64"),
        "price": pd.to_numeric(parts.str[3].replace("", None), errors="coerce")
        .fillna(0.0).astype("float64"),
    })
    return out.reset_index(drop=True)


def _events(store: Store, day: dt.date) -> pd.DataFrame:
    import pyarrow.dataset as ds

    folder = store.path(EVENTS_TABLE, f"event_date={day.isoformat()}")
    files = [f"{folder}/{n}" for n in store.listdir(EVENTS_TABLE, f"event_date={day.isoformat()}")
             if is_published(n)]
    if not files:
        return pd.DataFrame({c: pd.Series([], dtype="string") for c in _EVENT_COLUMNS})
    table = ds.dataset(sorted(files), format="parquet", filesystem=store.fs).to_table(
        columns=_EVENT_COLUMNS)
    df = _to_pandas(table)
    return df[df["customer_id"].notna()].reset_index(drop=True)


def compute_daily(store: Store, plan: DailyPlan, day: dt.date) -> tuple[pd.DataFrame,
                                                                           pd.DataFrame]:
    """The two daily frames of ``day`` (sorted by key, exact dtypes), from its stored events.

    Args:
        store: the store.
        plan: the daily columns to compute.
        day: the event date.

    Returns:
        (customer frame, customer x product frame).
    """
    return aggregate_events(_events(store, day), plan)


def aggregate_events(ev: pd.DataFrame, plan: DailyPlan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two daily frames of a set of hits of one event date (sorted by key, exact dtypes).

    Args:
        ev: hits with the event columns (strings as ``string``); rows without a customer id
            are left out here, so an ingest task can pass its frame as it is.
        plan: the daily columns to compute.

    Returns:
        (customer frame, customer x product frame), as :func:`compute_daily` describes.
    """
    if ev["customer_id"].hasnans:
        ev = ev[ev["customer_id"].notna()]
    ev = ev[_EVENT_COLUMNS].reset_index(drop=True)
    masks = {f.key: _mask(ev, f) for f in plan.filters}
    masks["all"] = np.ones(len(ev), dtype=bool)
    cols: dict[str, np.ndarray] = {}
    for f in plan.hit_filters:
        cols[f"hits_{f.key}"] = masks[f.key].astype("int64")
    need_products = np.zeros(len(ev), dtype=bool)
    for f in (*plan.pair_filters, *plan.cp_pair_filters, *(f for _, f in plan.sums),
              *(f for _, f in plan.cp_sums)):
        need_products |= masks[f.key]
    prod = _products(ev, need_products)
    cust_id = ev["customer_id"]
    hit_frame = pd.DataFrame(cols)
    hit_frame["customer_id"] = cust_id
    customer = hit_frame.groupby("customer_id", sort=True).sum()
    # Per-customer sums over products, and per customer x product pairs/sums.
    pcols = _product_columns(masks, prod, plan.pair_filters, plan.sums)
    if pcols:
        pframe = pd.DataFrame(pcols)
        pframe["customer_id"] = cust_id.to_numpy()[prod["row"]]
        psum = pframe.groupby("customer_id", sort=True).sum()
        customer = customer.join(psum, how="left")
        for c in pcols:
            customer[c] = customer[c].fillna(0).astype(pcols[c].dtype)
    cp_cols = _product_columns(masks, prod, plan.cp_pair_filters, plan.cp_sums)
    cp_frame = pd.DataFrame(cp_cols)
    cp_frame["customer_id"] = pd.array(cust_id.to_numpy()[prod["row"]], dtype="string")
    cp_frame["product_id"] = prod["product_id"].to_numpy()
    if cp_cols:
        match = np.zeros(len(prod), dtype=bool)
        for f in (*plan.cp_pair_filters, *(f for _, f in plan.cp_sums)):
            match |= masks[f.key][prod["row"]]
        cp_frame = cp_frame[match]
        cp = cp_frame.groupby(["customer_id", "product_id"], sort=True).sum().reset_index()
    else:
        cp = cp_frame.iloc[:0][["customer_id", "product_id"]]
    customer = customer.reset_index()
    customer["customer_id"] = customer["customer_id"].astype("string")
    cp["customer_id"] = cp["customer_id"].astype("string")
    cp["product_id"] = cp["product_id"].astype("string")
    return customer, cp.reset_index(drop=True)


def _to_pandas(table) -> pd.DataFrame:
    """Arrow to pandas with strings as ``string`` (pd.NA for nulls)."""
    import pyarrow as pa

    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype(),
                                         pa.large_string(): pd.StringDtype()}.get)


def read_daily(store: Store, kind: str, days: list[dt.date]) -> pd.DataFrame:
    """:func:`read_daily_table` as pandas."""
    return _to_pandas(read_daily_table(store, kind, days))


def read_daily_table(store: Store, kind: str, days: list[dt.date]):
    """Concatenate daily partitions of ``kind`` (a DAILY_* folder) for ``days`` as one Arrow
    table, with ``day`` (proleptic ordinal) added; missing dates (no events) contribute nothing.

    One day: one read of its known file. More: one listing and one dataset read, so a 30-day
    window costs few calls.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    empty = pa.table({"customer_id": pa.array([], pa.large_string()),
                      "day": pa.array([], pa.int64())})
    if len(days) == 1:
        path = store.path(kind, f"event_date={days[0].isoformat()}", "part-0.parquet")
        try:
            table = pq.read_table(path, filesystem=store.fs)
        except FileNotFoundError:
            return empty
        return table.append_column("day", pa.array(np.full(table.num_rows,
                                                           days[0].toordinal())))
    wanted = {f"event_date={d.isoformat()}" for d in days}
    present = [name for name in store.listdir(kind) if name in wanted]
    if not present:
        return empty
    partitioning = ds.partitioning(pa.schema([("event_date", pa.date32())]), flavor="hive")
    table = ds.dataset([store.path(kind, name, "part-0.parquet") for name in present],
                       format="parquet", filesystem=store.fs, partitioning=partitioning,
                       partition_base_dir=store.path(kind)).to_table()
    days_since_epoch = table.column("event_date").cast(pa.int32()).cast(pa.int64())
    return table.drop_columns(["event_date"]).append_column(
        "day", pc.add(days_since_epoch, _EPOCH_ORDINAL))


def _product_columns(masks: dict[str, np.ndarray], prod: dict[str, np.ndarray],
                     pair_filters, sums) -> dict[str, np.ndarray]:
    """Per (hit, product) pair: a 0/1 column per pair filter and a masked value per sum."""
    cols: dict[str, np.ndarray] = {}
    for f in pair_filters:
        cols[f"pairs_{f.key}"] = masks[f.key][prod["row"]].astype("int64")
    for fld, f in sums:
        cols[f"sum_{fld}_{f.key}"] = np.where(masks[f.key][prod["row"]], prod[fld], 0).astype(
            prod[fld].dtype)
    return cols
