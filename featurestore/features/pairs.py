"""Customer x product window sums: the data behind ``customer_product_features`` and the
distinct-product counts of ``customer_features``.

A :class:`PairSums` holds, per (customer, product) pair with a row in the daily customer x
product aggregates of a window, one sum per *spec* ``(daily column, window days)`` the tables
ask for, pairs sorted by (customer_id, product_id). Ids are codes into sorted dictionaries, so
the heavy work is integer work, and two sorted pair lists merge in linear time.

Per as-of date D the window is built in two steps so most of the work can run before the
day's own aggregates exist: the *prior* (every day of the window but D), then :func:`merge`
the pairs of D itself. The prior is, by preference, :func:`roll`ed: the whole window of D-1
(stored as ``_state/pairs/as_of=D-1/part-0.arrow``) minus, per spec, the one day that leaves
its window (D-w): three small reads instead of W-1 daily partitions.
Integer sums subtract exactly; float sums (a ``sum`` of price per product) would not, so a
repository with one always :func:`aggregate`s the stored days, summed in day order so the bits
are the same however a run was split.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import layout
from ..storage import Store
from ._io import large_strings, read_ipc, write_ipc
from .definitions import FeatureRepo, is_extended
from .strings import packed_codes, run_codes

__all__ = ["PAIR_STATE", "PAIRS_FORMAT", "DistinctCounts", "PairSums", "PairWindow", "Spec", "aggregate",
           "column_of", "empty", "load_pairs", "merge", "pair_specs", "pairs_exist", "roll",
           "rolls", "sorted_codes", "write_pairs"]

PAIR_STATE = layout.PAIR_STATE
#: Part of the fingerprint of a stored window, bumped when what is stored changes, so an older
#: one is rebuilt rather than misread (2: the whole window of D; 1 was D's prior).
PAIRS_FORMAT = 2

#: (daily customer x product column, window in days)
Spec = tuple[str, int]


def column_of(feature) -> str:
    """The daily customer x product column a pair feature sums."""
    if feature.aggregation == "sum":
        return f"sum_{feature.field}_{feature.filter.key}"
    return f"pairs_{feature.filter.key}"


def pair_specs(repo: FeatureRepo) -> list[Spec]:
    """Every (column, window) the weblog tables need per pair, sorted."""
    specs = set()
    for name, table in repo.tables_for("weblog").items():
        for f in table.features.values():
            if is_extended(f):  # the SPEC §3a engine's (features/aggs)
                continue
            if len(repo.keys(name)) == 2 or (f.aggregation == "distinct"
                                              and f.field == "product_id"):
                specs.add((column_of(f), f.window_days))
    return sorted(specs)


@dataclasses.dataclass
class PairSums:
    customers: pa.Array  # sorted distinct customer ids (large_string)
    products: pa.Array  # sorted distinct product ids
    cust: np.ndarray  # per pair: position in ``customers`` (pairs sorted by cust, prod)
    prod: np.ndarray  # per pair: position in ``products``
    last: np.ndarray  # per pair: the latest day (ordinal) with a daily row
    sums: dict[Spec, np.ndarray]  # per spec: the sum over the window, per pair

    def __len__(self) -> int:
        return len(self.cust)

    def __getstate__(self) -> dict:
        """Pickled (sent between workers) with int32 where values fit: half the bytes."""
        return {k: _narrow(v) if isinstance(v, np.ndarray) else
                {spec: _narrow(a) for spec, a in v.items()} if k == "sums" else v
                for k, v in self.__dict__.items()}

    def __setstate__(self, state: dict) -> None:
        widen = {k: v.astype("int64") if isinstance(v, np.ndarray) and v.dtype == "int32" else v
                 for k, v in state.items()}
        widen["sums"] = {spec: a.astype("int64") if a.dtype == "int32" else a
                         for spec, a in state["sums"].items()}
        self.__dict__.update(widen)

    def values(self, spec: Spec, dtype) -> np.ndarray:
        """The sums of ``spec`` (zeros when no day of the window had the column)."""
        out = self.sums.get(spec)
        return np.zeros(len(self), dtype=dtype) if out is None else out


def _narrow(values: np.ndarray) -> np.ndarray:
    if values.dtype != "int64" or not len(values):
        return values
    info = np.iinfo("int32")
    return values.astype("int32") if info.min <= values.min() and values.max() <= info.max \
        else values


def _sort_ranks(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(the order that sorts ``values``, each value's position in that order)."""
    order = pc.sort_indices(values).to_numpy()
    rank = np.empty(len(order), dtype="int64")
    rank[order] = np.arange(len(order))
    return order, rank


def sorted_codes(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """(sorted distinct values, each value's position among them). A chunked input is encoded
    with one dictionary across its chunks. Values already sorted (a day's customer x product
    rows, by customer) take one pass over their bytes instead of a hash and a sort; short
    ones (ids of up to 8 bytes) are coded as integers (:func:`.strings.packed_codes`)."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        ran = run_codes(values)
        if ran is None:
            ran = packed_codes(values)
        if ran is not None:
            return ran
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.chunk(0) if encoded.num_chunks == 1 else encoded.combine_chunks()
    order, rank = _sort_ranks(encoded.dictionary)
    return encoded.dictionary.take(pa.array(order)), rank[encoded.indices.to_numpy()]


def _lookup(sums: PairSums, customers: pa.Array,
            products: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """For (customer, product) id pairs: where each is in ``sums``'s sorted pairs, and whether
    it is there at all."""
    c = pc.index_in(customers, value_set=sums.customers).fill_null(-1).to_numpy()
    q = pc.index_in(products, value_set=sums.products).fill_null(-1).to_numpy()
    if not len(sums):
        return np.zeros(len(c), dtype="int64"), np.zeros(len(c), dtype=bool)
    width = max(len(sums.products), 1)
    keys = sums.cust * width + sums.prod  # sorted: pairs are in (cust, prod) order
    wanted = c.astype("int64") * width + q
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    # c or q -1 (an id sums lacks) can still hit a real key: rule those out first
    return at, (c >= 0) & (q >= 0) & (keys[at] == wanted)


def _dedupe(keys: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Given ``order`` sorting ``keys``: (index of each distinct key's first row in sorted
    order, each row's distinct-key number)."""
    ordered = keys[order]
    first = np.empty(len(keys), dtype=bool)
    if len(keys):
        first[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    inverse = np.empty(len(keys), dtype="int64")
    inverse[order] = np.cumsum(first) - 1
    return order[first], inverse


def _sum(inverse: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Per group sums, rows added in their order (bincount); integers stay exact below 2**53."""
    out = np.bincount(inverse, weights=values.astype("float64"), minlength=size)
    return out if values.dtype.kind == "f" else out.astype("int64")


def empty() -> PairSums:
    none, codes = pa.array([], pa.large_string()), np.zeros(0, "int64")
    return PairSums(none, none, codes, codes, codes, {})


def aggregate(rows: pa.Table, as_of: int, specs: list[Spec]) -> PairSums:
    """Window sums at ``as_of`` (proleptic ordinal) of daily customer x product ``rows`` (with
    ``day``; given in day order) over the days they cover, each spec its own window."""
    if not rows.num_rows:
        return empty()
    customers, cust = sorted_codes(large_strings(rows["customer_id"]))
    products, prod = sorted_codes(large_strings(rows["product_id"]))
    keys = cust * max(len(products), 1) + prod
    firsts, inverse = _dedupe(keys, np.argsort(keys, kind="stable"))
    day = rows["day"].to_numpy()
    last = np.zeros(len(firsts), dtype="int64")
    np.maximum.at(last, inverse, day)
    sums = {}
    for column, window in specs:
        if column not in rows.column_names:
            continue
        inside = day > as_of - window
        values = np.where(inside, rows[column].to_numpy(), 0)
        sums[(column, window)] = _sum(inverse, values, len(firsts))
    return PairSums(customers, products, cust[firsts], prod[firsts], last, sums)


def rolls(specs: list[Spec]) -> bool:
    """Whether the window sums can roll day to day: integer sums only (see module doc)."""
    return not any(column.startswith("sum_price") for column, _ in specs)


def _compact(pairs: PairSums, keep: np.ndarray) -> PairSums:
    """The ``keep`` pairs, without the dictionary entries no kept pair uses; linear: customer
    codes are sorted, product codes are counted."""
    cust, prod = pairs.cust[keep], pairs.prod[keep]
    starts = np.ones(len(cust), dtype=bool)
    np.not_equal(cust[1:], cust[:-1], out=starts[1:])
    used_c = cust[starts]
    used_p = np.flatnonzero(np.bincount(prod, minlength=len(pairs.products)))
    new_code = np.zeros(len(pairs.products), dtype="int64")
    new_code[used_p] = np.arange(len(used_p))
    return PairSums(pairs.customers.take(pa.array(used_c)),
                    pairs.products.take(pa.array(used_p)),
                    np.cumsum(starts) - 1, new_code[prod], pairs.last[keep],
                    {spec: values[keep] for spec, values in pairs.sums.items()})


def roll(sums: PairSums, as_of: int, leaving: dict[int, pa.Table],
         longest: int) -> PairSums:
    """The prior at ``as_of`` from the sums at ``as_of - 1``: each spec's window loses the day
    ``as_of - w``, whose daily customer x product rows are ``leaving[w]`` (absent or empty:
    nothing leaves). A pair leaves once its latest row is older than the ``longest`` window
    (not when its sums reach 0: a sum of quantities can be 0 with rows still inside)."""
    out = {spec: values.copy() for spec, values in sums.sums.items()}
    for (column, window), values in out.items():
        rows = leaving.get(window)
        if rows is None or not rows.num_rows or column not in rows.column_names:
            continue
        at, found = _lookup(sums, large_strings(rows["customer_id"]),
                            large_strings(rows["product_id"]))
        if not found.all():
            raise RuntimeError(  # a day inside yesterday's window must be in its sums
                "the stored customer x product state disagrees with the daily aggregates; "
                "rebuild with `featurestore backfill`")
        values[at] -= rows[column].to_numpy().astype(values.dtype, copy=False)
    return _compact(dataclasses.replace(sums, sums=out), sums.last > as_of - longest)


def _pairs_path(day: dt.date) -> tuple[str, str, str]:
    return PAIR_STATE, f"as_of={day.isoformat()}", "part-0.arrow"


def pairs_exist(store: Store, day: dt.date) -> bool:
    return store.exists(*_pairs_path(day))


def write_pairs(store: Store, pairs: PairSums, day: dt.date) -> None:
    """Persist the sums at ``day`` (Arrow IPC: dictionaries and codes kept as they are)."""
    table = pa.table({
        "customer_id": pa.DictionaryArray.from_arrays(pa.array(pairs.cust, pa.int32()),
                                                      pairs.customers),
        "product_id": pa.DictionaryArray.from_arrays(pa.array(pairs.prod, pa.int32()),
                                                     pairs.products),
        "last": pa.array(pairs.last, pa.int32()),
        **{f"{column}@{window}": _narrow(values)  # half the bytes when counts fit
           for (column, window), values in pairs.sums.items()},
    })
    write_ipc(store, table, *_pairs_path(day))


def load_pairs(store: Store, day: dt.date) -> PairSums:
    table = read_ipc(store, *_pairs_path(day)).combine_chunks()
    if not table.num_rows:
        return empty()
    cust, prod = table.column("customer_id").chunk(0), table.column("product_id").chunk(0)
    sums = {}
    for name in table.column_names[3:]:
        column, _, window = name.rpartition("@")
        values = table.column(name).to_numpy()
        sums[(column, int(window))] = values.astype("int64", copy=False)  # roll copies
    return PairSums(cust.dictionary, prod.dictionary, cust.indices.to_numpy().astype("int64"),
                    prod.indices.to_numpy().astype("int64"),
                    table.column("last").to_numpy().astype("int64"), sums)


def _union(x: pa.Array, y: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(sorted union of two sorted distinct arrays, new position of each of x, of each of y);
    one hash lookup, and a sort only when y brings new values."""
    found = pc.index_in(y, value_set=x)
    extra = found.is_null().to_numpy(zero_copy_only=False)
    y_codes = found.fill_null(0).to_numpy(zero_copy_only=False).astype("int64")
    if not extra.any():
        return x, np.arange(len(x)), y_codes
    joined = pa.concat_arrays([x, y.filter(pa.array(extra))])
    order, rank = _sort_ranks(joined)
    x_codes = rank[:len(x)]
    y_codes = x_codes[y_codes]
    y_codes[extra] = rank[len(x):]
    return joined.take(pa.array(order)), x_codes, y_codes


def merge(a: PairSums, b: PairSums) -> PairSums:
    """The pairs of both, sums added (``a``'s first): ``b``'s sorted pairs are looked up in
    ``a``'s and the new ones inserted, in time linear in ``len(a) + len(b)``."""
    if not len(b):
        return a
    if not len(a):
        return b
    customers, ca, cb = _union(a.customers, b.customers)
    products, qa, qb = _union(a.products, b.products)
    width = max(len(products), 1)
    a_cust, a_prod = ca[a.cust], qa[a.prod]  # ranks keep order: both stay sorted
    b_cust, b_prod = cb[b.cust], qb[b.prod]
    a_keys, b_keys = a_cust * width + a_prod, b_cust * width + b_prod
    at = np.searchsorted(a_keys, b_keys)
    hit = at < len(a_keys)
    hit[hit] = a_keys[at[hit]] == b_keys[hit]
    new = ~hit
    inserted = at[new]  # each new b pair goes before a's pair at that index (sorted)
    pos_new = inserted + np.arange(len(inserted))
    at_hit = at[hit]  # a's pair at_hit moves up by the new pairs inserted at or before it
    pos_hit = at_hit + np.searchsorted(inserted, at_hit, side="right")
    size = len(a_keys) + len(inserted)
    from_a = np.ones(size, dtype=bool)
    from_a[pos_new] = False

    def combine(a_values: np.ndarray, b_values: np.ndarray, add) -> np.ndarray:
        out = np.empty(size, dtype=a_values.dtype)
        out[from_a] = a_values  # a mask, not positions: a third of the time
        out[pos_new] = b_values[new]
        out[pos_hit] = add(out[pos_hit], b_values[hit])
        return out

    sums = {}
    for spec in a.sums.keys() | b.sums.keys():
        dtype = (a.sums.get(spec) if spec in a.sums else b.sums[spec]).dtype
        sums[spec] = combine(a.values(spec, dtype), b.values(spec, dtype), np.add)
    return PairSums(customers, products, combine(a_cust, b_cust, lambda x, _: x),
                    combine(a_prod, b_prod, lambda x, _: x), combine(a.last, b.last, np.maximum),
                    sums)


@dataclasses.dataclass
class DistinctCounts:
    """What the customer tables read of a :class:`PairWindow`: per spec, (customer ids, the
    count of their pairs with a non-zero sum), one row per customer (sorted). Built on the
    window's worker, so the customer tables' worker receives ~a customer's worth of bytes
    instead of the day's customer x product rows (issue #27: 1.3 M rows on a first day)."""

    counts: dict[Spec, tuple[pa.Array, np.ndarray]]

    @classmethod
    def of(cls, window: PairWindow, specs: list[Spec]) -> DistinctCounts:
        """The counts of ``specs`` in ``window`` (:meth:`PairWindow.distinct`), added up per
        customer (integer counts: the same sums however they are grouped)."""
        counts = {}
        for spec in specs:
            ids, n = window.distinct(spec)
            if len(ids):
                ids, codes = sorted_codes(large_strings(ids))
                n = np.bincount(codes, weights=n, minlength=len(ids)).astype(n.dtype)
            counts[spec] = (ids, n)
        return cls(counts)

    def distinct(self, spec: Spec) -> tuple[pa.Array, np.ndarray]:
        """(customer ids, count), as :meth:`PairWindow.distinct` (one row per id)."""
        return self.counts[spec]


@dataclasses.dataclass
class PairWindow:
    """The pairs of a window ending on D in its two parts: the sums of every day but D
    (``prior``) and D's daily customer x product rows (``rows``, one per pair, with ``day``;
    None when there are none), kept as rows: the customer tables only look them up.

    ``prior_counts[spec]``: per prior customer, its pairs with a non-zero ``spec`` sum (see
    :meth:`count_prior`)."""

    prior: PairSums
    rows: pa.Table | None
    as_of: int  # D (proleptic ordinal)
    specs: list[Spec]
    prior_counts: dict[Spec, np.ndarray] = dataclasses.field(default_factory=dict)

    def day(self) -> PairSums:
        return empty() if self.rows is None else aggregate(self.rows, self.as_of, self.specs)

    def merged(self) -> PairSums:
        return merge(self.prior, self.day())

    def count_prior(self, specs: list[Spec]) -> PairWindow:
        """Count the prior's pairs per customer for :meth:`distinct` now, ahead of the day."""
        for spec in specs:
            seen = self.prior.values(spec, "int64") > 0
            self.prior_counts[spec] = np.bincount(self.prior.cust[seen],
                                                  minlength=len(self.prior.customers))
        return self

    def distinct(self, spec: Spec) -> tuple[pa.Array, np.ndarray]:
        """(customer ids, count) of pairs with a non-zero ``spec`` sum (counts, so >= 0), one
        id possibly many times: the prior's count, plus one per row of D for a pair the prior
        lacks. Cheaper than :meth:`merged` (the customer tables only need these counts)."""
        prior, rows = self.prior, self.rows
        counts = self.prior_counts.get(spec)
        if counts is None:
            counts = self.count_prior([spec]).prior_counts[spec]
        ids = [prior.customers]
        column = spec[0]
        if rows is not None and column in rows.column_names:
            rows = rows.filter(pc.greater(rows[column], 0))
            customers = large_strings(rows["customer_id"])
            if len(prior) and len(rows):
                at, found = _lookup(prior, customers, large_strings(rows["product_id"]))
                found &= prior.values(spec, "int64")[at] > 0
                customers = customers.filter(pa.array(~found))
            ids.append(customers)
            counts = np.concatenate([counts, np.ones(len(customers), dtype=counts.dtype)])
        return pa.concat_arrays(ids), counts
