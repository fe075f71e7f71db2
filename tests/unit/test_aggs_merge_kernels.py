"""The SPEC §3a merge of many state tables (a day's file partials, issue #26): its numba
kernels (aggs/runs.py) against plain numpy / Python, and ``merge`` of many inputs against
folding two-input merges and a Python computation of the states (ties, nulls, empty inputs,
int64 wraps)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from featurestore._exceptions import AggregationOverflowError
from featurestore.features.aggs import runs
from featurestore.features.aggs.kernels import (
    StateKey,
    _merged_customers,
    _string_buffers,
    finalize,
    merge,
    positions,
)
from featurestore.features.definitions import Filter

NO_FILTER = json.dumps(Filter().model_dump(), sort_keys=True)


def buffers(values: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    return _string_buffers(pa.array(values, pa.large_string()))


def test_distinct_grouped_equals_sorting_the_pairs():
    """Pairs in any order (many inputs' rows, big groups sorted, small ones in place): the
    distinct (customer, value) pairs ascending, counts summed, zero sums dropped."""
    rng = np.random.default_rng(3)
    for trial in range(300):
        m = int(rng.integers(1, 40))
        size = int(rng.integers(0, 400)) if trial else 0
        nv = int(rng.integers(1, 60))
        c = rng.integers(0, m, size).astype(np.int64)
        v = rng.integers(0, nv, size).astype(np.int64)
        counts = rng.integers(-2, 3, size).astype(np.int64)
        pair = c * nv + v
        uniq = np.unique(pair)
        got = runs.distinct_grouped(c, v, None, m)
        assert got["c"].tolist() == (uniq // nv).tolist()
        assert got["v"].tolist() == (uniq % nv).tolist()
        sums: dict[int, int] = {}
        for p, n in zip(pair.tolist(), counts.tolist(), strict=True):
            sums[p] = sums.get(p, 0) + n
        kept = [p for p in uniq.tolist() if sums[p] != 0]
        got = runs.distinct_grouped(c, v, counts, m)
        assert got["c"].tolist() == [p // nv for p in kept]
        assert got["v"].tolist() == [p % nv for p in kept]
        assert got["n"].tolist() == [sums[p] for p in kept]


def _orders(times, ranks, cut):
    """extreme_orders' chunks of (time, rank) rows (None: null), split at ``cut``: Arrow
    arrays, some sliced (buffer offsets); each chunk codes its files 0..k-1 and maps them to
    the ranks (reversed: a code is not a rank)."""
    chunks = []
    for lo, hi in zip([0, *cut], [*cut, len(times)]):
        t, r = times[lo:hi], ranks[lo:hi]
        distinct = sorted({x for x in r if x is not None}, reverse=True)
        fmap = np.array(distinct or [-1], np.int64)
        code = {x: i for i, x in enumerate(distinct)}
        o = pa.array([5, None, *t], pa.int64()).slice(2)  # (a slice: offsets in the buffers)
        f = pa.array([0, None, *[None if x is None else code[x] for x in r]], pa.int32()).slice(2)
        chunks.append((o, f, fmap))
    return chunks


def test_extreme_orders_first_row_on_ties_single_rows_kept_nulls_skipped():
    """first/last's merge kernel: per code the row of the smallest (largest) valid (time,
    file rank), the first row on a tie, none without a valid time; chunks read in order from
    their buffers, with their own file codes."""
    times = [5, 3, 5, None, 7, None, 2, 2, 2, 9]
    ranks = [1, 0, 1, None, 4, None, 0, 3, 0, 2]
    codes = np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 4], np.int64)
    chunks = _orders(times, ranks, [4, 7])
    last = runs.extreme_orders(codes, chunks, 6, True)
    first = runs.extreme_orders(codes, chunks, 6, False)
    # code 0: (5, 1) twice: the first; code 1: the valid row; code 2: its one row has no
    # time: none; code 3: time ties, rank 3 the largest, rank 0 twice: the first; code 4:
    # one row; code 5: none
    assert last[0].tolist() == [0, 4, -1, 7, 9, -1]
    assert last[3].tolist() == [1, 4, -1, 3, 2, -1]
    assert first[0].tolist() == [1, 4, -1, 6, 9, -1]
    assert first[3].tolist() == [0, 4, -1, 0, 2, -1]
    assert first[2].tolist() == [True, True, False, True, True, False]
    assert [t if ok else None for t, ok in zip(first[1].tolist(), first[2].tolist())] == \
        [3, 7, None, 2, 9, None]
    rng = np.random.default_rng(4)
    for _ in range(300):
        size = int(rng.integers(0, 60))
        m = int(rng.integers(1, 10))
        ts = [None if rng.random() < 0.2 else int(rng.integers(0, 4)) for _ in range(size)]
        rs = [None if t is None else int(rng.integers(0, 3)) for t in ts]
        cs = rng.integers(0, m, size).astype(np.int64)
        cut = sorted(rng.integers(0, size + 1, int(rng.integers(0, 4))).tolist())
        chunks = _orders(ts, rs, cut)
        for largest in (True, False):
            got, got_time, got_ok, got_rank = runs.extreme_orders(cs, chunks, m, largest)
            for code in range(m):
                rows = np.flatnonzero(cs == code).tolist()
                cands = [r for r in rows if ts[r] is not None]
                if not cands:
                    assert (got[code], got_rank[code], got_ok[code]) == (-1, -1, False)
                    continue
                keyed = [((ts[r], rs[r]), r) for r in cands]
                best = (max(keyed, key=lambda p: (p[0], -p[1])) if largest
                        else min(keyed, key=lambda p: (p[0], p[1])))
                assert (got[code], got_rank[code]) == (best[1], best[0][1])
                assert got_ok[code] and got_time[code] == best[0][0]


def test_first_last_merge_orders_files_as_their_ids_then_a_bar_whatever_the_input_order():
    """A time tie between files goes by file id followed by "|" bytewise (SPEC: drop date,
    then file name; the order the earlier string key gave): "hit_1" sorts before "hit"
    there. The merged ``f`` holds exactly the winners' files, in that order, null where no
    value; merging partials in any order or in a chain gives the same table."""
    from featurestore.features.aggs.kernels import build_partial
    from featurestore.features.daily import _mask, _products

    first, last = _key("first", "s", "string"), _key("last", "s", "string")
    pairs = [(first, first.name), (last, last.name)]
    t0 = 1767571200

    def part(fid, rows):
        table = pa.table({
            "customer_id": pa.array([c for c, _, _ in rows], pa.large_string()),
            "hit_time_gmt": pa.array([t for _, t, _ in rows], pa.int64()),
            "page_url": pa.array(["https://x/p"] * len(rows), pa.large_string()),
            "post_page_event": pa.array(["0"] * len(rows), pa.large_string()),
            "post_event_list": pa.nulls(len(rows), pa.large_string()),
            "post_product_list": pa.nulls(len(rows), pa.large_string()),
            "s": pa.array([v for _, _, v in rows], pa.large_string()),
            "event_date": pa.array([20458] * len(rows), pa.int32()).cast(pa.date32())})
        return build_partial([first, last], table, fid, None, _mask, _products,
                             {"s": "string"})

    a = part("2026-01-05-hit", [("a", t0, "A0"), ("b", t0 + 9, "B0"), ("c", t0, None)])
    b = part("2026-01-05-hit_1", [("a", t0, "A1"), ("b", t0 + 1, "B1")])
    c = part("2026-01-04-zz", [("a", t0, "A2"), ("d", t0 + 3, None)])
    fa = a.column(f"{first.name}.f").combine_chunks()
    assert fa.dictionary.to_pylist() == ["2026-01-05-hit"]
    assert fa.indices.to_pylist() == [0, 0, None]
    assert a.column(f"{first.name}.o").to_pylist() == [t0, t0 + 9, None]
    merged = [merge(list(p), pairs) for p in ([a, b, c], [c, b, a], [b, a, c])]
    chained = merge([merge([a, c], pairs), b], pairs)
    for t in [*merged[1:], chained]:
        assert t.equals(merged[0])
    t = merged[0]
    ids = t.column("customer_id").to_pylist()
    assert ids == ["a", "b", "c", "d"]
    # a: three files at t0: 2026-01-04-zz < 2026-01-05-hit_1| < 2026-01-05-hit|
    assert t.column(f"{first.name}.v").to_pylist() == ["A2", "B1", None, None]
    assert t.column(f"{last.name}.v").to_pylist() == ["A0", "B0", None, None]
    f = t.column(f"{first.name}.f").combine_chunks()
    assert f.dictionary.to_pylist() == ["2026-01-04-zz", "2026-01-05-hit_1"]
    assert f.to_pylist() == ["2026-01-04-zz", "2026-01-05-hit_1", None, None]
    assert t.column(f"{last.name}.f").to_pylist() == ["2026-01-05-hit", "2026-01-05-hit",
                                                      None, None]
    assert t.column(f"{last.name}.o").to_pylist() == [t0, t0 + 9, None, None]
    # inputs without any value (no file in any dictionary): every winner null
    empty = merge([part("2026-01-05-x", [("a", t0, None)]), part("2026-01-05-y",
                                                                  [("a", t0, None)])], pairs)
    assert empty.column(f"{first.name}.v").to_pylist() == [None]
    assert empty.column(f"{first.name}.f").to_pylist() == [None]
    assert empty.column(f"{last.name}.o").to_pylist() == [None]
    assert empty.column(f"{last.name}.f").combine_chunks().dictionary.to_pylist() == []
    again = merge([empty, empty], pairs)  # states whose dictionaries are empty
    assert again.column(f"{first.name}.v").to_pylist() == [None]
    assert again.column(f"{last.name}.f").to_pylist() == [None]


def test_add_sums_float_bits_equal_bincount_and_int_wraps_are_counted():
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 7, 1000).astype(np.int64)
    x = rng.normal(size=1000) * 10.0 ** rng.integers(-5, 12, 1000)
    total = np.zeros(7)
    for a, b in ((0, 300), (300, 301), (301, 1000)):  # chunk by chunk, in order
        runs.add_sums(total, None, codes[a:b], x[a:b])
    assert total.tobytes() == np.bincount(codes, weights=x, minlength=7).tobytes()
    big = 2 ** 62
    ints = np.array([big, big, big, -big, -big, -big, -big, -big, 5], np.int64)
    cs = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2], np.int64)
    total, wraps = np.zeros(3, np.int64), np.zeros(3, np.int64)
    runs.add_sums(total, wraps, cs, ints)
    # code 0: wraps up then comes back (2^63 exact, out of range: one wrap left); code 1:
    # -2^64 exact: one wrap down; code 2: none
    assert wraps.tolist() == [1, -1, 0]
    assert [int(t) + int(w) * 2 ** 64 for t, w in zip(total, wraps, strict=True)] == [
        2 * big, -4 * big, 5]


def test_sorted_positions_equal_index_in_and_refuse_unsorted_input():
    rng = np.random.default_rng(6)
    universe = sorted({"", "a", "ab", "abc", "b", "ba", "c", "\u00e9", "a\u00e9", "zz", "z"},
                      key=lambda s: s.encode())
    for _ in range(300):
        a = sorted({universe[i] for i in rng.integers(0, len(universe), 6)},
                   key=lambda s: s.encode())
        b = sorted({universe[i] for i in rng.integers(0, len(universe), 6)},
                   key=lambda s: s.encode())
        got = runs.sorted_positions(*buffers(a), *buffers(b))
        want = pc.index_in(pa.array(a, pa.large_string()),
                           value_set=pa.array(b, pa.large_string())).to_pylist()
        assert [None if g < 0 else g for g in got.tolist()] == want
    assert runs.sorted_positions(*buffers(["b", "a"]), *buffers(["a"])) is None
    assert runs.sorted_positions(*buffers(["a"]), *buffers(["a", "a"])) is None


def test_positions_on_the_same_sorted_or_unsorted_ids():
    ids = pa.array(["a", "b", "c"], pa.large_string())
    table = pa.table({"customer_id": ids})
    assert positions(ids, table).to_pylist() == [0, 1, 2]
    table = pa.table({"customer_id": pa.array(["b", "d"], pa.large_string())})
    assert positions(ids, table).to_pylist() == [None, 0, None]
    unsorted = pa.table({"customer_id": pa.array(["c", "a"], pa.large_string())})
    assert positions(ids, unsorted).to_pylist() == [1, None, 0]
    assert positions(ids, unsorted.slice(0, 0)).to_pylist() == [None] * 3


def test_merged_customers_equal_unique_then_lookup():
    """Short ids (packed into integers, sorted runs joined), long ones and ones with NUL
    (one hash), one array or sorted chunks: the sorted distinct ids and each row's code."""
    rng = np.random.default_rng(7)
    for trial in range(60):
        width = (3, 12)[trial % 2]  # 4 bytes, then 13 (> 8: the hash path)
        ids = [f"C{int(i):0{width}d}" for i in rng.integers(0, 40, 120)]
        if trial % 5 == 0:
            ids[0] = "a\x00"
        cust = pa.array(ids, pa.large_string())
        chunks = [pa.array(sorted(set(ids[a:a + 30]), key=lambda s: s.encode()),
                           pa.large_string()) for a in range(0, 120, 30)]
        for given in (cust, chunks):
            flat = pa.chunked_array(given).combine_chunks() if isinstance(given, list) \
                else given
            customers, codes = _merged_customers(given)
            assert customers.equals(pc.unique(flat).sort())
            assert codes.tolist() == pc.index_in(flat, value_set=customers).to_pylist()
    customers, codes = _merged_customers(pa.array([], pa.large_string()))
    assert len(customers) == 0 and len(codes) == 0


def _key(kind: str, field: str, ftype: str) -> StateKey:
    return StateKey(kind, field, ftype, False, NO_FILTER)


KEYS = [_key("count", None, None), _key("moments", "x", "float"), _key("moments", "i", "int"),
        _key("min", "x", "float"), _key("max", "s", "string"), _key("first", "s", "string"),
        _key("last", "s", "string"), _key("set", "s", "string"), _key("counts", "s", "string"),
        _key("sketch", "s", "string")]


def _random_inputs(rng, n_inputs: int) -> tuple[list[pa.Table], list[list[dict]]]:
    """State tables as a day's file partials are (sorted customers, one row each), built
    from random rows: also returned as Python rows (customer, x, i, s, order) per input."""
    from featurestore.features.aggs.kernels import build_partial
    from featurestore.features.daily import _mask, _products

    tables, raw = [], []
    for f in range(n_inputs):
        size = int(rng.integers(0, 30))
        rows = [{"customer_id": f"c{int(rng.integers(0, 12)):02d}",
                 "hit_time_gmt": 1767571200 + int(rng.integers(0, 5)),
                 "x": None if rng.random() < 0.2 else float(rng.normal()),
                 "i": None if rng.random() < 0.2 else int(rng.integers(-5, 5)),
                 "s": None if rng.random() < 0.2 else f"v{int(rng.integers(0, 6))}"}
                for _ in range(size)]
        table = pa.table({
            "customer_id": pa.array([r["customer_id"] for r in rows], pa.large_string()),
            "hit_time_gmt": pa.array([r["hit_time_gmt"] for r in rows], pa.int64()),
            "page_url": pa.array(["https://x/p"] * size, pa.large_string()),
            "post_page_event": pa.array(["0"] * size, pa.large_string()),
            "post_event_list": pa.nulls(size, pa.large_string()),
            "post_product_list": pa.nulls(size, pa.large_string()),
            "x": pa.array([r["x"] for r in rows], pa.float64()),
            "i": pa.array([r["i"] for r in rows], pa.int64()),
            "s": pa.array([r["s"] for r in rows], pa.large_string()),
            "event_date": pa.array([20458] * size, pa.int32()).cast(pa.date32())})
        tables.append(build_partial(KEYS, table, f"2026-01-05-hit_data-{f:04d}", None, _mask,
                                    _products, {"x": "float", "i": "int", "s": "string"}))
        raw.append(rows)
    return tables, raw


def test_merge_of_many_inputs_equals_folding_and_a_python_computation():
    """merge() of many inputs (a counting sort, no hash of all rows twice) equals folding
    two-input merges (the chain's path) exactly, and its features equal a Python
    computation over every input's rows; empty inputs are ignored."""
    rng = np.random.default_rng(8)
    pairs = [(k, k.name) for k in KEYS]
    for _ in range(40):
        tables, raw = _random_inputs(rng, int(rng.integers(1, 9)))
        many = merge(tables, pairs)
        folded = tables[0] if tables else None
        for t in tables[1:]:
            folded = merge([folded, t], pairs)
        assert many.equals(merge([folded], pairs) if folded is not None else many)
        rows = [(f, j, r) for f, rs in enumerate(raw) for j, r in enumerate(rs)]
        ids = sorted({r["customer_id"] for _, _, r in rows})
        arr = pa.array(ids, pa.large_string())

        def feature(k, agg, kk=None):
            return finalize(k, k.name, many, arr, agg, kk, 0).to_pylist()

        mine = {c: [(f, j, r) for f, j, r in rows if r["customer_id"] == c] for c in ids}
        assert feature(KEYS[0], "count") == [len(mine[c]) for c in ids]
        assert feature(KEYS[2], "sum") == [sum(r["i"] for _, _, r in mine[c]
                                               if r["i"] is not None) for c in ids]
        assert feature(KEYS[1], "sum") == pytest.approx(
            [sum(r["x"] for _, _, r in mine[c] if r["x"] is not None) for c in ids])
        xs = [[r["x"] for _, _, r in mine[c] if r["x"] is not None] for c in ids]
        assert feature(KEYS[3], "min") == [min(x) if x else None for x in xs]
        ss = [[r["s"] for _, _, r in mine[c] if r["s"] is not None] for c in ids]
        assert feature(KEYS[4], "max") == [max(s) if s else None for s in ss]
        assert feature(KEYS[7], "distinct") == [len(set(s)) for s in ss]
        assert feature(KEYS[9], "approx_distinct") == [len(set(s)) for s in ss]
        # last: the latest hit time, then the later file, then the later line
        order = [[((r["hit_time_gmt"], f, j), r["s"]) for f, j, r in mine[c]
                  if r["s"] is not None] for c in ids]
        assert feature(KEYS[6], "last") == [max(o)[1] if o else None for o in order]
        assert feature(KEYS[5], "first") == [min(o)[1] if o else None for o in order]
        top = [sorted({v: s.count(v) for v in s}.items(), key=lambda p: (-p[1], p[0]))[:2]
               for s in ss]
        assert [g or [] for g in feature(KEYS[8], "top_k", 2)] == [[v for v, _ in t]
                                                                  for t in top]
    assert merge([], pairs).num_rows == 0


def test_merge_of_many_inputs_raises_only_when_the_int_sum_leaves_int64():
    k = _key("moments", "i", "int")
    pairs = [(k, k.name)]
    big = 2 ** 62

    def state(value: int) -> pa.Table:
        return pa.table({"customer_id": pa.array(["a"], pa.large_string()),
                         f"{k.name}.n": pa.array([1], pa.int64()),
                         f"{k.name}.s": pa.array([value], pa.int64()),
                         f"{k.name}.ss": pa.array([float(value) ** 2])})

    # up past 2^63 and back: the exact sum fits
    back = merge([state(big), state(big), state(-big), state(5)], pairs)
    assert back.column(f"{k.name}.s").to_pylist() == [big + 5]
    with pytest.raises(AggregationOverflowError, match="overflows int64"):
        merge([state(big), state(big), state(big), state(-1)], pairs)


def test_numeric_extremes_keep_single_rows_and_refuse_nan_and_negative_zero():
    rng = np.random.default_rng(9)
    for _ in range(200):
        m = int(rng.integers(1, 12))
        sizes = rng.integers(0, 15, int(rng.integers(1, 5)))
        codes = rng.integers(0, m, int(sizes.sum())).astype(np.int64)
        x = rng.integers(-50, 50, len(codes)).astype(np.float64)
        ok = rng.random(len(codes)) < 0.8
        chunks, at = [], 0
        for n in sizes.tolist():
            chunks.append((x[at:at + n], ok[at:at + n]))
            at += n
        for largest in (True, False):
            values, valid = runs.numeric_extremes(codes, chunks, m, largest)
            for c in range(m):
                rows = np.flatnonzero(codes == c)
                if len(rows) == 1:
                    assert valid[c] == ok[rows[0]]
                    assert not valid[c] or values[c] == x[rows[0]]
                    continue
                good = x[rows][ok[rows]]
                assert valid[c] == bool(len(good))
                if len(good):
                    assert values[c] == (good.max() if largest else good.min())
    one = np.zeros(2, np.int64)
    for odd in (np.nan, -0.0):
        assert runs.numeric_extremes(one, [(np.array([1.0, odd]), np.ones(2, bool))], 1,
                                     False) is None


def test_min_max_merge_of_nan_and_negative_zero_follow_arrow():
    """Floats holding a NaN or a -0.0 keep Arrow's group-by rules in a merge of many."""
    k = _key("min", "x", "float")
    big = _key("max", "x", "float")
    pairs = [(k, k.name), (big, big.name)]

    def state(ids, xs):
        return pa.table({"customer_id": pa.array(ids, pa.large_string()),
                         f"{k.name}.v": pa.array(xs, pa.float64()),
                         f"{big.name}.v": pa.array(xs, pa.float64())})

    inputs = [state(["a", "b", "c"], [1.0, float("nan"), 0.0]),
              state(["a", "b", "c"], [-0.0, 2.0, None]), state(["a", "d"], [0.5, -0.0])]
    merged = merge(inputs, pairs)
    rows = pa.concat_tables(inputs)
    for key, agg in ((k, "min"), (big, "max")):
        want = rows.group_by("customer_id").aggregate([(f"{key.name}.v", agg)]).sort_by(
            "customer_id")
        got = merged.column(f"{key.name}.v").to_pylist()
        expect = want.column(f"{key.name}.v_{agg}").to_pylist()
        assert [str(g) for g in got] == [str(e) for e in expect]
        assert [np.signbit(g) for g in got if g == 0] == [np.signbit(e) for e in expect
                                                          if e == 0]


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_merge_of_all_keys_equals_each_key_merged_alone_byte_for_byte():
    """The keys of one merge share what they can (customer codes, the list keys' dictionary
    unification, a set's and a sketch's lists over the same pairs, issue #26): each key's
    columns are those of the key merged alone, byte for byte, for many inputs, one
    customer, empty inputs and several prefixes of a key (a chained state's windows)."""
    rng = np.random.default_rng(21)
    prefixed = [(k, k.name) for k in KEYS] + [(k, f"{k.name}@7") for k in KEYS[::3]]
    for trial in range(30):
        tables, _ = _random_inputs(rng, int(rng.integers(2, 9)))
        if trial % 5 == 0:  # one customer in every input
            tables = [t.filter(pc.equal(t.column("customer_id"), t.column("customer_id")[0]))
                      for t in tables if t.num_rows]
        if trial % 7 == 0:  # empty inputs among them
            tables = [t.slice(0, 0) if i % 2 else t for i, t in enumerate(tables)]
        for pairs in ([(k, k.name) for k in KEYS], prefixed):
            if pairs is prefixed:  # the key's columns under a second prefix too
                tables = [_with_prefixes(t, pairs) for t in tables]
            whole = merge(tables, pairs)
            for key, prefix in pairs:
                alone = merge(tables, [(key, prefix)])
                assert _ipc_bytes(whole.select(alone.column_names)) == _ipc_bytes(alone), \
                    (key, prefix)


def _with_prefixes(table: pa.Table, pairs) -> pa.Table:
    """``table`` (columns ``<key>.<c>``) with every column a prefix of ``pairs`` names, the
    key's own columns copied under its other prefixes."""
    from featurestore.features.aggs.kernels import state_columns

    cols = {"customer_id": table.column("customer_id")}
    for key, prefix in pairs:
        for f in state_columns(key, prefix):
            cols[f.name] = table.column(f"{key.name}.{f.name.rsplit('.', 1)[1]}")
    return pa.table(cols)


def test_min_max_merge_ignores_what_a_null_slot_holds():
    """A null's value slot may hold any bytes (Arrow leaves it undefined): the merged state
    is the one of a clean array, byte for byte (a single null row stays null, its slot 0)."""
    k = _key("min", "x", "float")
    pairs = [(k, k.name)]

    def state(ids, data, valid):
        validity = pa.py_buffer(np.packbits(np.array(valid, bool), bitorder="little"))
        values = pa.Array.from_buffers(pa.float64(), len(data),
                                       [validity, pa.py_buffer(np.array(data, np.float64))],
                                       null_count=len(valid) - sum(valid))
        return pa.table({"customer_id": pa.array(ids, pa.large_string()),
                         f"{k.name}.v": values})

    dirty = [state(["a", "b", "c"], [3.0, 99.0, -7.0], [True, False, False]),
             state(["a", "c"], [-98.0, 5.0], [False, True])]
    clean = [state(["a", "b", "c"], [3.0, 0.0, 0.0], [True, False, False]),
             state(["a", "c"], [0.0, 5.0], [False, True])]
    merged = merge(dirty, pairs)
    assert merged.column(f"{k.name}.v").to_pylist() == [3.0, None, 5.0]
    assert _ipc_bytes(merged) == _ipc_bytes(merge(clean, pairs))


def test_merge_completes_inputs_missing_columns_as_zero_or_null():
    """An input without some keys' columns (a partial without its empty columns, a slide's
    leaving day) merges as if it held zero counts / sums and null values: the same table as
    merging that input with those columns written out, and the columns in the keys' order
    whatever order an input holds them in."""
    count = StateKey("count", None, None, False, NO_FILTER)
    moments = StateKey("moments", "price", "float", False, NO_FILTER)
    low = StateKey("min", "price", "float", False, NO_FILTER)
    names = StateKey("set", "product_id", "string", False, NO_FILTER)
    keys = [(count, "a"), (moments, "b"), (low, "c"), (names, "d")]
    ids = pa.array(["c1", "c2", "c3"], pa.large_string())
    full = pa.table({
        "customer_id": ids, "a.n": pa.array([1, 2, 3], pa.int64()),
        "b.n": pa.array([1, 1, 2], pa.int64()), "b.s": pa.array([1.5, 2.0, 3.25]),
        "b.ss": pa.array([2.25, 4.0, 5.0]), "c.v": pa.array([1.5, None, 0.5]),
        "d.v": pa.array([["x"], None, ["x", "y"]], pa.list_(pa.large_string()))})
    # the second input holds only the count, its columns in another order than the keys'
    partial = pa.table({"a.n": pa.array([5, 7], pa.int64()),
                        "customer_id": pa.array(["c2", "c4"], pa.large_string())})
    written = pa.table({
        "customer_id": partial["customer_id"], "a.n": partial["a.n"],
        "b.n": pa.array([0, 0], pa.int64()), "b.s": pa.array([0.0, 0.0]),
        "b.ss": pa.array([0.0, 0.0]), "c.v": pa.nulls(2, pa.float64()),
        "d.v": pa.nulls(2, pa.list_(pa.large_string()))})
    got = merge([full, partial], keys)
    assert got.equals(merge([full, written], keys))
    assert got.column_names == full.column_names
    assert got["customer_id"].to_pylist() == ["c1", "c2", "c3", "c4"]
    assert got["a.n"].to_pylist() == [1, 7, 3, 7]
    assert got["b.n"].to_pylist() == [1, 1, 2, 0]
    assert got["b.s"].to_pylist() == [1.5, 2.0, 3.25, 0.0]
    assert got["c.v"].to_pylist() == [1.5, None, 0.5, None]
    # a lone input is completed too (the merge returns it as it is otherwise)
    alone = merge([partial], keys)
    assert alone.column_names == full.column_names
    assert alone["b.s"].to_pylist() == [0.0, 0.0] and alone["c.v"].null_count == 2
