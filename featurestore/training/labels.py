"""The training label's inputs: who purchased on each event date, and an as-of lookup over them.

``purchased_next_30d`` (SPEC §3) needs, per event date, the distinct customers with a purchase
hit (event id ``1`` as a whole item of ``post_event_list``). Two readers give the same set:

* the ingest's partial daily aggregates (``_partials/customer/event_date=D``, see
  :mod:`featurestore.features.partials`) hold, per file and customer, the count of hits of the
  filter ``{event_id: "1"}`` when the repository counts purchases by hit (the built-in one
  does): a customer purchased on D when a partial of D has a count > 0. A few thousand rows
  per day instead of every hit. Used only when every published events part of D has a partial
  built for the given fingerprint (as materialization uses them);
* otherwise the events themselves, with the event list read dictionary-encoded so the pattern
  is matched once per distinct list rather than once per hit.

:class:`PurchaseIndex` holds every (customer, purchase date) pair as one sorted int64 key per
pair, so the label of a batch of (customer, as_of) rows is one hash lookup and one
``numpy.searchsorted``: the customer's first purchase after as_of, compared with as_of + 30.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..layout import PARTIAL_CUSTOMER
from ..storage import Store

__all__ = ["PURCHASE_PATTERN", "PurchaseIndex", "build_index", "parquet_filesystem",
           "partials_token", "purchase_column", "purchasers_from_events",
           "purchasers_from_partials"]

#: event id 1 as a whole item of the comma-separated list ("10" or "21" are other events)
PURCHASE_PATTERN = r"(^|,)1(,|$)"
#: a key is code * 2**_DAY_BITS + the date's proleptic ordinal (>= 1, below 2**20 through
#: the year 2870): 2**43 customers fit an int64
_DAY_BITS = 20


def purchase_column() -> str:
    """The partials' column counting a customer's purchase hits (``hits_<filter key>``).

    Returns:
        The column name.
    """
    from ..features.definitions import Filter

    return f"hits_{Filter(event_id='1').key}"


def partials_token(repo: Any) -> str | None:
    """The partials fingerprint whose files answer for purchases, or None when the
    repository's daily plan counts no hits of ``{event_id: "1"}`` alone (then the partials
    hold no purchase column and labels read the events).

    Args:
        repo: the store's feature repository (:class:`FeatureRepo`), or None.

    Returns:
        The fingerprint that ends the partials' file names, or None.
    """
    if repo is None:
        return None
    from ..features.daily import daily_plan
    from ..features.partials import partials_fingerprint

    plan = daily_plan(repo)
    if not any(f"hits_{f.key}" == purchase_column() for f in plan.hit_filters):
        return None
    return partials_fingerprint(plan)


def parquet_filesystem(store: Store) -> Any:
    """The filesystem to give pyarrow for the store's files: None (pyarrow's own, a third of
    the time of going through fsspec's local one) for a local store, else the store's.

    Args:
        store: the store.

    Returns:
        A filesystem, or None.
    """
    return None if store.is_local else store.fs


def _folder(day: dt.date) -> str:
    return f"event_date={day.isoformat()}"


def purchasers_from_partials(store: Store, day: dt.date, token: str) -> pa.Array | None:
    """Distinct customers with a purchase hit on ``day`` from its partials, or None when the
    partials built for ``token`` do not cover every published events part of ``day``.

    Args:
        store: the store.
        day: the event date.
        token: :func:`partials_token`.

    Returns:
        The customer ids (string, unsorted), or None.
    """
    from ..features._io import read_ipc

    from ..events_compaction import live_file_ids

    ids = live_file_ids(store, day)  # a merged file stands for its inputs
    if not ids:
        return None
    have = set(store.listdir(PARTIAL_CUSTOMER, _folder(day)))
    names = [f"part-{fid}-{token}.arrow" for fid in sorted(ids)]
    if not all(n in have for n in names):
        return None
    column = purchase_column()
    found = []
    for name in names:
        table = read_ipc(store, PARTIAL_CUSTOMER, _folder(day), name)
        if column not in table.column_names:   # not built for this plan after all
            return None
        counts = table[column]
        found.append(pc.filter(table["customer_id"], pc.greater(counts, 0))
                     .cast(pa.string()))
    return pc.unique(pa.chunked_array(found, pa.string()).combine_chunks())


def _hits(events: pa.ChunkedArray) -> pa.Array:
    """Which event lists hold a purchase (null: False); a dictionary-encoded list is matched
    once per distinct value."""
    events = events.combine_chunks()
    if pa.types.is_dictionary(events.type):
        matched = pc.fill_null(pc.match_substring_regex(
            events.dictionary.cast(pa.string()), PURCHASE_PATTERN), False)
        return pc.fill_null(pc.take(matched, events.indices), False)
    if pa.types.is_null(events.type):       # an all-null file may store `null`
        return pa.array(np.zeros(len(events), dtype=bool))
    return pc.fill_null(pc.match_substring_regex(events.cast(pa.string()),
                                                 PURCHASE_PATTERN), False)


def purchasers_from_events(store: Store, day: dt.date) -> pa.Array:
    """Distinct customers with a purchase hit on ``day``, read from its events parts (empty
    when the date has no events partition).

    Args:
        store: the store.
        day: the event date.

    Returns:
        The customer ids (string, unsorted).
    """
    from ..events_compaction import live_files

    found = []
    for path in live_files(store, day):  # merged files resolved: no row twice after a crash
        # file by file: half the cost of pyarrow's dataset discovery on a directory
        table = pq.read_table(path,
                              filesystem=parquet_filesystem(store),
                              columns=["customer_id", "post_event_list"],
                              read_dictionary=["post_event_list"])
        customers = table["customer_id"].cast(pa.string())
        mask = pc.and_(_hits(table["post_event_list"]), pc.is_valid(customers))
        found.append(pc.filter(customers, mask))
    if not found:
        return pa.array([], pa.string())
    return pc.unique(pa.chunked_array([c for f in found for c in f.chunks], pa.string())
                     .combine_chunks())


@dataclass(frozen=True)
class PurchaseIndex:
    """Every (customer, purchase date) pair of some event dates, as sorted int64 keys.

    Attributes:
        customers: the distinct purchasers (string); a key's customer is its position here.
        keys: ``position * 2**20 + date.toordinal()`` of each pair, sorted, unique.
    """

    customers: pa.Array
    keys: np.ndarray

    def purchased(self, customer_ids: pa.Array | pa.ChunkedArray, day: dt.date,
                  horizon: int) -> np.ndarray:
        """Whether each customer has a purchase date in ``day + 1 .. day + horizon``.

        Args:
            customer_ids: the rows' customer ids (string).
            day: the rows' as-of date.
            horizon: the label window in days.

        Returns:
            An int64 0/1 array, one per row.
        """
        out = np.zeros(len(customer_ids), dtype=np.int64)
        if not len(self.keys) or not len(customer_ids):
            return out
        codes = pc.index_in(customer_ids, value_set=self.customers)
        codes = codes.combine_chunks() if isinstance(codes, pa.ChunkedArray) else codes
        rows = np.flatnonzero(codes.is_valid().to_numpy(zero_copy_only=False))
        if not len(rows):
            return out
        base = codes.filter(codes.is_valid()).to_numpy().astype(np.int64) << _DAY_BITS
        d = day.toordinal()
        at = np.searchsorted(self.keys, base + d, side="right")  # first purchase after day
        nxt = self.keys[np.minimum(at, len(self.keys) - 1)]
        out[rows] = ((at < len(self.keys)) & (nxt <= base + d + horizon)).astype(np.int64)
        return out


def build_index(purchasers: dict[dt.date, pa.Array]) -> PurchaseIndex:
    """The :class:`PurchaseIndex` of per-date purchaser sets.

    Args:
        purchasers: event date -> distinct customer ids who purchased that day.

    Returns:
        The index.
    """
    days = [d for d, ids in purchasers.items() if len(ids)]
    if not days:
        return PurchaseIndex(pa.array([], pa.string()), np.zeros(0, dtype=np.int64))
    ids = pa.chunked_array([purchasers[d] for d in days], pa.string()).combine_chunks()
    ordinals = np.repeat(np.array([d.toordinal() for d in days], dtype=np.int64),
                         [len(purchasers[d]) for d in days])
    encoded = pc.dictionary_encode(ids)
    keys = (encoded.indices.to_numpy().astype(np.int64) << _DAY_BITS) + ordinals
    return PurchaseIndex(encoded.dictionary, np.unique(keys))
