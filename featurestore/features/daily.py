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
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import layout
from ..storage import Store
from . import hit_lists
from .definitions import FeatureRepo, Filter, is_extended
from .pairs import sorted_codes

__all__ = [
    "DAILY_CUSTOMER",
    "DAILY_CUSTOMER_PRODUCT",
    "DailyPlan",
    "HitShare",
    "aggregate_events",
    "aggregate_tables",
    "first_seen_codes",
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
            if is_extended(f):  # the SPEC §3a engine's (features/aggs): not a daily column
                continue
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


class _EventIds:
    """The hits' comma-separated event lists: every ``event_id`` filter of a day compares
    whole items (read on the lists' buffers, :func:`.hit_lists.lists_holding`; Arrow's split,
    done once, for other array types)."""

    def __init__(self, events: pa.Table) -> None:
        lists = events.column("post_event_list")
        if isinstance(lists, pa.ChunkedArray):
            lists = lists.combine_chunks()
        self.lists = lists
        self.size = events.num_rows
        self._split: tuple[pa.Array, np.ndarray] | None = None

    def having(self, event_id: str) -> np.ndarray:
        """Which hits' lists hold ``event_id`` as a whole item."""
        fast = hit_lists.lists_holding(self.lists, event_id)
        if fast is not None:
            return fast
        if self._split is None:
            split = pc.split_pattern(self.lists, ",")
            self._split = (pc.list_flatten(split),
                           pc.list_parent_indices(split).to_numpy(zero_copy_only=False))
        items, rows = self._split
        mask = np.zeros(self.size, dtype=bool)
        mask[rows[_bools(pc.equal(items, event_id))]] = True
        return mask


def _mask(events: pa.Table, f: Filter, event_ids: _EventIds | None = None) -> np.ndarray:
    """Which hits match ``f`` (all given conditions), with Arrow's string kernels.

    Args:
        events: the hits.
        f: the filter.
        event_ids: the hits' event lists split once (built here when None).

    Returns:
        A boolean per hit.
    """
    mask = np.ones(events.num_rows, dtype=bool)
    if f.event_id is not None:  # the id as a whole item of the comma-separated list
        mask &= (event_ids or _EventIds(events)).having(f.event_id)
    if f.page_event is not None:
        mask &= _bools(pc.equal(events.column("post_page_event"), f.page_event))
    if f.url_path_prefix is not None:
        path = pc.replace_substring_regex(pc.fill_null(events.column("page_url"), ""),
                                          _URL_HOST, "")
        path = pc.replace_substring_regex(path, r"[?#].*$", "")
        mask &= _bools(pc.starts_with(path, f.url_path_prefix))
    return mask


def _bools(values) -> np.ndarray:
    """An Arrow boolean result as numpy, null as False."""
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _numbers(values: pa.Array, dtype: str, zero) -> np.ndarray:
    """Product quantities or prices: empty as 0; as pandas ``to_numeric`` reads them, unparseable
    ones (never ingested: the product list is validated) as 0 too."""
    blank = pc.equal(values, "")
    try:
        out = pc.cast(pc.if_else(blank, None, values), pa.int64() if dtype == "int64"
                      else pa.float64())
        return pc.fill_null(out, zero).to_numpy(zero_copy_only=False).astype(dtype)
    except pa.ArrowInvalid:
        text = pd.Series(values.to_numpy(zero_copy_only=False), dtype=object).replace("", None)
        return pd.to_numeric(text, errors="coerce").fillna(zero).to_numpy().astype(dtype)


def _products(events: pa.Table, needed: np.ndarray) -> dict[str, object]:
    """(hit row, product_id, quantity, price) for the products of the ``needed`` hits: one entry
    per non-empty item of the comma-separated list, ``category;product_id;quantity;price``."""
    lists = events.column("post_product_list")
    rows = np.flatnonzero(needed & _bools(pc.is_valid(lists)))
    # the lists' buffers read once (hit_lists); Arrow's chain when a number is not plain
    fast = hit_lists.product_entries(lists, rows)
    return fast if fast is not None else _products_arrow(lists, rows)


def _products_arrow(lists: pa.Array | pa.ChunkedArray, rows: np.ndarray) -> dict[str, object]:
    """:func:`_products` of the lists ``lists[rows]`` (non-null) with Arrow's string kernels
    and casts (pandas' parser for a column Arrow cannot cast)."""
    split = pc.split_pattern(lists.take(pa.array(rows)), ",")
    if isinstance(split, pa.ChunkedArray):
        split = split.combine_chunks()
    entries = pc.list_flatten(split)
    parent = rows[pc.list_parent_indices(split).to_numpy(zero_copy_only=False)]
    keep = _bools(pc.not_equal(entries, ""))
    entries = entries.filter(pa.array(keep))
    # padded, so every entry has the four fields (a shorter one reads as empty fields)
    pad, sep = pa.scalar(";;;", entries.type), pa.scalar("", entries.type)
    parts = pc.split_pattern(pc.binary_join_element_wise(entries, pad, sep), ";")
    return {
        "row": parent[keep].astype(np.int64),
        "product_id": pc.list_element(parts, 1),
        "quantity": _numbers(pc.list_element(parts, 2), "int64", 0),
        "price": _numbers(pc.list_element(parts, 3), "float64", 0.0),
    }


class HitShare:
    """What an ingest task's two kinds of partials of one event date compute alike from its
    hits, computed once: the default daily partials (:func:`aggregate_tables`) and the SPEC
    §3a partials (:func:`.aggs.kernels.build_partial`) each asked for the same filters'
    masks, parsed the product lists and coded the customer ids (~8 ms of a file of 100 k
    hits). Every answer is what the caller computed alone, bit for bit; what a caller gets
    is shared, so it must not modify it.

    Args:
        events: the hits of one event date (the table both partials are built from).
    """

    def __init__(self, events: pa.Table) -> None:
        self.events = events
        self._event_ids: _EventIds | None = None
        self._masks: dict[tuple, np.ndarray] = {}
        self._valid_lists: np.ndarray | None = None
        # (rows whose entries are held, the entries) of the widest product-list parse
        self._products: tuple[np.ndarray, dict[str, object]] | None = None
        #: the §3a partial's customer coding: (hits with a customer or None, each such
        #: hit's code, the distinct ids' count), set by build_partial
        self.customer_codes: tuple[np.ndarray | None, np.ndarray, int] | None = None

    def mask(self, table: pa.Table, f: Filter) -> np.ndarray:
        """:func:`_mask` of ``f`` over the hits (``table``: the same rows; not read)."""
        key = (f.event_id, f.page_event, f.url_path_prefix)
        mask = self._masks.get(key)
        if mask is None:
            if f.event_id is not None and self._event_ids is None:
                self._event_ids = _EventIds(self.events)
            mask = self._masks[key] = _mask(self.events, f, self._event_ids)
        return mask

    def products(self, table: pa.Table, needed: np.ndarray) -> dict[str, object]:
        """:func:`_products` of the ``needed`` hits (``table``: the same rows; not read): the
        entries of an earlier, wider parse picked out when it holds every needed hit."""
        lists = self.events.column("post_product_list")
        if self._valid_lists is None:
            self._valid_lists = _bools(pc.is_valid(lists))
        wanted = needed & self._valid_lists
        rows = np.flatnonzero(wanted)
        if self._products is not None:
            held, prod = self._products
            if held[rows].all():  # (entries follow their rows: a subset is a filter)
                keep = wanted[prod["row"]]
                if keep.all():
                    return dict(prod)
                return {"row": prod["row"][keep],
                        "product_id": prod["product_id"].filter(pa.array(keep)),
                        "quantity": prod["quantity"][keep], "price": prod["price"][keep]}
        fast = hit_lists.product_entries(lists, rows)
        if fast is None:  # Arrow's chain (not kept: only the fast path's subsets are known
            return _products_arrow(lists, rows)  # to equal a fast parse of fewer rows)
        if self._products is None or wanted[self._products[0]].all():
            self._products = (wanted, fast)
        return dict(fast)

    def first_seen_customers(self, cust_id: pa.Array) -> tuple[pa.Array, np.ndarray] | None:
        """:func:`first_seen_codes` of the hits' customer ids (``cust_id``: those of the hits
        with one, in row order), from the §3a partial's coding when it was built; else None.
        """
        if self.customer_codes is None or not len(cust_id):
            return None
        _, codes, m = self.customer_codes
        if len(codes) != len(cust_id):
            return None
        return hit_lists.first_seen_of_codes(cust_id, codes, m)


def sum_by(table: pa.Table, keys: list[str],
           codes: dict[str, tuple[pa.Array, np.ndarray]] | None = None) -> pa.Table:
    """Per-key sums of every other column, sorted by the keys (strings by code point, as
    pandas sorts them), columns in ``table``'s order. Rows are added in input order, so a
    float sum has the same bits on every run.

    One or two string keys and non-null int64/float64 values (every daily column) take
    :func:`_sum_by_codes`, 4x faster than Arrow's single-threaded hash aggregation on string
    keys (issue #18: the day's combine of partials); anything else takes Arrow's.

    Args:
        table: the keys and the columns to sum.
        keys: the key columns.
        codes: per key, its :func:`~.pairs.sorted_codes` when the caller has them (one
            encoding shared by several sums of the same ids). With one key, the distinct
            values may be a superset: every one of them gets a row (zero sums), so sums over
            a subset of rows come out aligned with the whole set.

    Returns:
        One row per distinct key, sorted.
    """
    values = [c for c in table.column_names if c not in keys]
    fast = _sum_by_codes(table, keys, values, codes or {})
    if fast is not None:
        return fast
    if not values:
        out = table.group_by(keys, use_threads=False).aggregate([])
    else:
        out = table.group_by(keys, use_threads=False).aggregate([(c, "sum") for c in values])
        out = out.rename_columns([n[:-len("_sum")] if n.endswith("_sum")
                                  and n[:-len("_sum")] in values else n
                                  for n in out.column_names])
    return out.select(table.column_names).sort_by([(k, "ascending") for k in keys])


_EXACT = 2 ** 53  # float64 adds integers exactly below this


def _sum_by_codes(table: pa.Table, keys: list[str], values: list[str],
                  codes: dict[str, tuple[pa.Array, np.ndarray]] | None = None
                  ) -> pa.Table | None:
    """:func:`sum_by` by sorted dictionary codes and ``numpy.bincount``, or None when the
    table is outside what it handles (empty, nulls, other types, more than two keys, integer
    sums that float64 could round)."""
    if not table.num_rows or len(keys) > 2:
        return None
    for k in keys:
        column = table.column(k)
        if column.null_count or not (pa.types.is_string(column.type)
                                     or pa.types.is_large_string(column.type)):
            return None
    arrays = {}
    for c in values:
        column = table.column(c)
        if column.null_count or column.type not in (pa.int64(), pa.float64()):
            return None
        arrays[c] = column.to_numpy()
        if column.type == pa.int64() and not _exact(arrays[c]):
            return None
    given = codes or {}
    distinct, codes = zip(*(given.get(k) or sorted_codes(table.column(k)) for k in keys),
                          strict=True)
    if len(keys) == 1:
        group, groups, out_keys = codes[0], len(distinct[0]), [distinct[0]]
    else:
        width = len(distinct[1])
        uniq, group = np.unique(codes[0] * width + codes[1], return_inverse=True)
        groups = len(uniq)
        out_keys = [distinct[0].take(pa.array(uniq // width)),
                    distinct[1].take(pa.array(uniq % width))]
    columns = dict(zip(keys, out_keys, strict=True))
    for c, v in arrays.items():
        sums = np.bincount(group, weights=v, minlength=groups)
        columns[c] = pa.array(sums.astype(np.int64) if v.dtype == np.int64 else sums)
    return pa.table({c: columns[c] for c in table.column_names})


def _exact(values: np.ndarray) -> bool:
    """Whether float64 adds these integers (in any grouping) exactly: the sum of their
    magnitudes is below 2**53. Bounded by count x largest magnitude first (a min and a max,
    no temporary array), which settles it for counts; the sum only when that bound is not."""
    if not len(values):
        return True
    top = max(abs(int(values.min())), abs(int(values.max())))
    if top * len(values) < _EXACT:
        return True
    return bool(np.abs(values).sum(dtype=np.float64) < _EXACT)


def _events(store: Store, day: dt.date) -> pa.Table:
    """The event columns of every live events file of ``day`` (Arrow)."""
    import pyarrow.dataset as ds

    from ..events_compaction import live_files

    files = live_files(store, day)  # merged files resolved: no row twice after a crash
    if not files:
        return pa.table({c: pa.array([], pa.string()) for c in _EVENT_COLUMNS})
    return ds.dataset(sorted(files), format="parquet", filesystem=store.fs).to_table(
        columns=_EVENT_COLUMNS)


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


def aggregate_events(ev: pd.DataFrame | pa.Table, plan: DailyPlan
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two daily frames of a set of hits of one event date (sorted by key, exact dtypes).

    Args:
        ev: hits with the event columns (pandas with strings as ``string``, or Arrow); rows
            without a customer id are left out here, so an ingest task can pass its hits as
            they are.
        plan: the daily columns to compute.

    Returns:
        (customer frame, customer x product frame), as :func:`compute_daily` describes.
    """
    customer, cp = aggregate_tables(ev, plan)
    return _to_pandas(customer), _to_pandas(cp)


def aggregate_tables(ev: pd.DataFrame | pa.Table, plan: DailyPlan, *, sort: bool = True,
                     share: HitShare | None = None) -> tuple[pa.Table, pa.Table]:
    """:func:`aggregate_events` as Arrow tables, optionally in first-seen key order.

    Args:
        ev: the hits, as for :func:`aggregate_events`.
        plan: the daily columns to compute.
        sort: rows sorted by key; False: in the order the keys first occur in ``ev``, which
            saves sorting the ids when the rows are summed again anyway (an ingest task's
            partials: :func:`.partials.combine_partials` sorts). The sums are the same bits
            either way: each key's rows are added in input order.
        share: what the §3a partials of the same hits compute too (:class:`HitShare` of
            ``ev``, an Arrow table), or None.

    Returns:
        (customer table, customer x product table).
    """
    table = ev if isinstance(ev, pa.Table) else pa.Table.from_pandas(
        ev[_EVENT_COLUMNS], preserve_index=False)
    # only the columns the plan reads: anonymous hits are filtered out of them below
    used = {"customer_id", "post_product_list"}
    for f in plan.filters:
        used |= {c for c, given in (("post_event_list", f.event_id),
                                    ("post_page_event", f.page_event),
                                    ("page_url", f.url_path_prefix)) if given is not None}
    table = table.select([c for c in _EVENT_COLUMNS if c in used]).combine_chunks()
    # Anonymous hits are left out, but only the ids are filtered (a copy of each string
    # column cost ~3 ms of a file's ~17): the masks and product lists are computed per row
    # on every hit, then the rows with an id picked out of them.
    cust_id = table.column("customer_id").combine_chunks()
    kept = None
    if cust_id.null_count:
        has_id = _bools(pc.is_valid(cust_id))
        kept = np.flatnonzero(has_id)
        cust_id = cust_id.filter(pa.array(has_id))
    hits = len(cust_id)
    masker = share if share is not None else HitShare(table)  # event ids parsed once, if any
    masks = {f.key: masker.mask(table, f) for f in plan.filters}
    if kept is not None:
        masks = {k: m[kept] for k, m in masks.items()}
    masks["all"] = np.ones(hits, dtype=bool)
    need_products = np.zeros(hits, dtype=bool)
    for f in (*plan.pair_filters, *plan.cp_pair_filters, *(f for _, f in plan.sums),
              *(f for _, f in plan.cp_sums)):
        need_products |= masks[f.key]
    products = _products if share is None else share.products
    if kept is None:
        prod = products(table, need_products)
    else:  # every hit's lists, the rows then renumbered among the hits with an id
        needed = np.zeros(table.num_rows, dtype=bool)
        needed[kept] = need_products
        prod = products(table, needed)
        prod["row"] = (np.cumsum(has_id) - 1)[prod["row"]]
    pair_cust = cust_id.take(pa.array(prod["row"]))
    # the customer ids encoded once, for the hit, pair and customer x product sums
    encode = sorted_codes if sort else first_seen_codes
    shared_codes = share.first_seen_customers(cust_id) if share is not None and not sort \
        else None
    customers, cust_codes = shared_codes if shared_codes is not None else \
        encode(cust_id) if len(cust_id) else (None, None)
    shared = {"customer_id": (customers, cust_codes)} if customers is not None else {}
    customer = sum_by(pa.table({"customer_id": cust_id, **{
        f"hits_{f.key}": masks[f.key].astype("int64") for f in plan.hit_filters}}),
        ["customer_id"], shared)
    pair_codes = ({"customer_id": (customers, cust_codes[prod["row"]])} if shared else {})
    # Per-customer sums over products (every customer with a pair has a hit: with the shared
    # encoding the pair sums come out one row per customer, in the customer table's order)
    pcols = _product_columns(masks, prod, plan.pair_filters, plan.sums)
    if pcols:
        psum = sum_by(pa.table({"customer_id": pair_cust, **pcols}), ["customer_id"],
                      pair_codes)
        if psum.num_rows == customer.num_rows:
            where = np.arange(customer.num_rows)
        else:  # Arrow's path (no shared encoding): only the customers with pairs
            where = pc.index_in(psum.column("customer_id"),
                                value_set=customer.column("customer_id")).to_numpy()
        for c, values in pcols.items():
            column = np.zeros(customer.num_rows, dtype=values.dtype)
            column[where] = psum.column(c).to_numpy()
            customer = customer.append_column(c, pa.array(column))
    # ... and per customer x product pairs/sums, over pairs matching one of their filters
    cp_cols = _product_columns(masks, prod, plan.cp_pair_filters, plan.cp_sums)
    match = np.zeros(len(prod["row"]), dtype=bool)
    for f in (*plan.cp_pair_filters, *(f for _, f in plan.cp_sums)):
        match |= masks[f.key][prod["row"]]
    keep = pa.array(match)
    cp_shared = ({"customer_id": (customers, cust_codes[prod["row"][match]])} if shared
                 else {})
    cp_products = prod["product_id"].filter(keep)
    if shared and not sort and len(cp_products) and not cp_products.null_count:
        cp_shared["product_id"] = first_seen_codes(cp_products)
    cp = sum_by(pa.table({"customer_id": pair_cust.filter(keep),
                           "product_id": cp_products,
                           **{c: v[match] for c, v in cp_cols.items()}}),
                 ["customer_id", "product_id"], cp_shared)
    return customer, cp


def first_seen_codes(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """As :func:`~.pairs.sorted_codes`, with the distinct values in first-seen order (a hash
    encoding, no sort)."""
    fast = hit_lists.first_seen_codes(values)  # Arrow's dictionary_encode, on the buffers
    if fast is not None:
        return fast
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return encoded.dictionary, encoded.indices.to_numpy().astype(np.int64)


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


def _product_columns(masks: dict[str, np.ndarray], prod: dict[str, object],
                     pair_filters, sums) -> dict[str, np.ndarray]:
    """Per (hit, product) pair: a 0/1 column per pair filter and a masked value per sum."""
    cols: dict[str, np.ndarray] = {}
    for f in pair_filters:
        cols[f"pairs_{f.key}"] = masks[f.key][prod["row"]].astype("int64")
    for fld, f in sums:
        cols[f"sum_{fld}_{f.key}"] = np.where(masks[f.key][prod["row"]], prod[fld], 0).astype(
            prod[fld].dtype)
    return cols
