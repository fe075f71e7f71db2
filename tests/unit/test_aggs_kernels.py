"""SPEC §3a aggregations: each kind's partial, merge, slide (inverse) and final value, on hand
built Arrow tables with declared columns (nulls, empty windows, ties, int overflow)."""

from __future__ import annotations

import datetime as dt
import json
import statistics

import numpy as np
import pyarrow as pa
import pytest

from featurestore._exceptions import AggregationOverflowError, ConfigError
from featurestore.features.aggs import language
from featurestore.features.aggs.engine import ext_plan
from featurestore.features.aggs.kernels import (
    EXACT_LIMIT,
    StateKey,
    finalize,
    merge,
    negate,
)
from featurestore.features.definitions import Filter, parse_feature_repo

DAY = dt.date(2026, 1, 5)
T0 = 1767571200  # 2026-01-05 00:00 UTC
NO_FILTER = json.dumps(Filter().model_dump(), sort_keys=True)


def hits(rows: list[dict]) -> pa.Table:
    """Hits of DAY with the built-in columns and declared ones (visit_num int, channel
    string, evar float, flag bool)."""
    base = {"customer_id": None, "hit_time_gmt": T0, "page_url": "https://x/p",
            "post_page_event": "0", "post_event_list": None, "post_product_list": None,
            "visit_num": None, "channel": None, "evar": None, "flag": None}
    cols = {k: [{**base, **r}[k] for r in rows] for k in base}
    types = {"hit_time_gmt": pa.int64(), "visit_num": pa.int64(), "evar": pa.float64(),
             "flag": pa.bool_()}
    table = pa.table({k: pa.array(v, types.get(k, pa.large_string())) for k, v in cols.items()})
    return table.append_column("event_date", pa.array([DAY] * len(rows), pa.date32()))


def key(kind: str, field: str | None, ftype: str | None, filt: str = NO_FILTER,
        pairs: bool = False) -> StateKey:
    return StateKey(kind, field, ftype, pairs, filt)


def run(k: StateKey, tables: list[pa.Table], agg: str, ids: list[str], kk: int | None = None):
    from featurestore.features.aggs.kernels import build_partial
    from featurestore.features.daily import _mask, _products

    types = {**language.WHERE_BUILTINS, "visit_num": "int", "channel": "string",
             "evar": "float", "flag": "bool"}
    named = [t if isinstance(t, tuple) else (f"2026-01-05-hit_data-000{i}", t)
             for i, t in enumerate(tables)]
    parts = [build_partial([k], t, fid, None, _mask, _products, types) for fid, t in named]
    state = merge(parts, [(k, k.name)])
    return finalize(k, k.name, state, pa.array(ids, pa.large_string()), agg, kk,
                    DAY.toordinal()).to_pylist()


def test_moments_skip_nulls_and_stddev_needs_two_values():
    t = hits([{"customer_id": "a", "visit_num": 3}, {"customer_id": "a", "visit_num": None},
              {"customer_id": "a", "visit_num": 5}, {"customer_id": "b", "visit_num": 7},
              {"customer_id": "c"}])
    k = key("moments", "visit_num", "int")
    assert run(k, [t], "sum", ["a", "b", "c", "z"]) == [8, 7, 0, 0]
    assert run(k, [t], "mean", ["a", "b", "c", "z"]) == [4.0, 7.0, None, None]
    sd = run(k, [t], "stddev", ["a", "b", "c"])
    assert sd[0] == pytest.approx(statistics.stdev([3, 5])) and sd[1:] == [None, None]
    assert run(key("count", None, None), [t], "count", ["a", "b", "z"]) == [3, 1, 0]


def test_merge_then_slide_out_is_exact_zero_and_null():
    k = key("moments", "evar", "float")
    day1 = hits([{"customer_id": "a", "evar": 0.1}, {"customer_id": "a", "evar": 0.2}])
    day2 = hits([{"customer_id": "a", "evar": 0.7}])
    from featurestore.features.aggs.kernels import build_partial
    from featurestore.features.daily import _mask, _products

    types = {**language.WHERE_BUILTINS, "evar": "float"}
    p1 = build_partial([k], day1, "f1", None, _mask, _products, types)
    p2 = build_partial([k], day2, "f2", None, _mask, _products, types)
    pairs = [(k, k.name)]
    window = merge([p1, p2], pairs)
    slid = merge([window, negate(p1, pairs)], pairs)  # day 1 leaves the window
    ids = pa.array(["a"], pa.large_string())
    assert finalize(k, k.name, slid, ids, "mean", None, 0).to_pylist() == [pytest.approx(0.7)]
    empty = merge([slid, negate(p2, pairs)], pairs)  # and day 2: nothing left
    assert finalize(k, k.name, empty, ids, "sum", None, 0).to_pylist() == [0.0]
    assert finalize(k, k.name, empty, ids, "mean", None, 0).to_pylist() == [None]
    assert finalize(k, k.name, empty, ids, "stddev", None, 0).to_pylist() == [None]


def test_int_sum_near_2_63_raises_a_clear_error():
    big = 2 ** 62
    t = hits([{"customer_id": "a", "visit_num": big}, {"customer_id": "a", "visit_num": big}])
    with pytest.raises(AggregationOverflowError, match="overflows int64"):
        run(key("moments", "visit_num", "int"), [t], "sum", ["a"])
    # across partials (the merge of two days) too
    one = hits([{"customer_id": "a", "visit_num": big}])
    with pytest.raises(AggregationOverflowError):
        run(key("moments", "visit_num", "int"), [one, one], "sum", ["a"])
    # just below the limit is exact
    fits = hits([{"customer_id": "a", "visit_num": big - 1}, {"customer_id": "a",
                                                             "visit_num": big}])
    assert run(key("moments", "visit_num", "int"), [fits], "sum", ["a"]) == [2 ** 63 - 1]


def test_min_max_keep_the_field_type_and_null_when_empty():
    t = hits([{"customer_id": "a", "channel": "search"}, {"customer_id": "a", "channel": "ad"},
              {"customer_id": "b"}])
    assert run(key("min", "channel", "string"), [t], "min", ["a", "b"]) == ["ad", None]
    assert run(key("max", "channel", "string"), [t], "max", ["a", "b"]) == ["search", None]
    t2 = hits([{"customer_id": "a", "evar": -1.5}])
    assert run(key("min", "evar", "float"), [t, t2], "min", ["a"]) == [-1.5]


def test_first_last_ties_by_file_then_line_and_skip_nulls():
    same = T0 + 10
    f0 = hits([{"customer_id": "a", "hit_time_gmt": same, "channel": "x0"},
               {"customer_id": "a", "hit_time_gmt": same, "channel": "y0"},
               {"customer_id": "a", "hit_time_gmt": same + 5, "channel": None}])
    f1 = hits([{"customer_id": "a", "hit_time_gmt": same, "channel": "z1"},
               {"customer_id": "a", "hit_time_gmt": same - 1, "channel": None}])
    k_first, k_last = key("first", "channel", "string"), key("last", "channel", "string")
    # first: the earliest time; tie -> file 0 before file 1, line 0 before line 1
    a, b = ("2026-01-05-hit_data-0000", f0), ("2026-01-05-hit_data-0001", f1)
    assert run(k_first, [a, b], "first", ["a"]) == ["x0"]
    assert run(k_first, [b, a], "first", ["a"]) == ["x0"]  # whatever the merge order
    # last: the latest non-null value: time tie -> the later file's
    assert run(k_last, [a, b], "last", ["a"]) == ["z1"]
    assert run(k_last, [b, a], "last", ["a"]) == ["z1"]
    # a drop date orders before a file name: the later drop's hit is the last one
    later = ("2026-01-06-hit_data-0000", hits([{"customer_id": "a", "hit_time_gmt": same,
                                                "channel": "late"}]))
    assert run(k_last, [later, a, b], "last", ["a"]) == ["late"]


@pytest.mark.parametrize("lines", ["small", "huge"])
def test_first_last_of_a_file_pick_the_smallest_or_largest_time_then_line(lines):
    """A file's first/last winner per customer is its row of smallest (largest) (hit time,
    line), ties to the earlier (later) line; ``o`` holds its hit time (int64) and ``f`` the
    file id (a dictionary of the one file), both null for a customer without a value. Lines
    beyond what packs with the product position into one int64 compare part by part."""
    from featurestore.features.aggs.kernels import _LINES, build_partial
    from featurestore.features.daily import _mask, _products

    rng = np.random.default_rng(4)
    for base in (T0, 10 ** 12 - 50):  # times past the earlier key's 12 padded digits too
        times = base + rng.integers(0, 30, 300)
        rows = [{"customer_id": f"c{c}", "hit_time_gmt": int(t),
                 "channel": None if rng.random() < 0.2 else f"v{i}"}
                for i, (c, t) in enumerate(zip(rng.integers(0, 25, 300), times))]
        rows.append({"customer_id": "empty", "channel": None})
        lines_of = np.arange(len(rows), dtype=np.int64) * 7
        if lines == "huge":
            lines_of = lines_of + _LINES - 10
        table = hits(rows)
        for kind in ("first", "last"):
            k = key(kind, "channel", "string")
            got = build_partial([k], table, "f", lines_of, _mask, _products,
                                {**language.WHERE_BUILTINS, "channel": "string"})
            keyed = {}
            for line, r in zip(lines_of.tolist(), rows, strict=True):
                if r["channel"] is None:
                    continue
                o = (r["hit_time_gmt"], line)
                best = keyed.get(r["customer_id"])
                if best is None or (o < best[0] if kind == "first" else o > best[0]):
                    keyed[r["customer_id"]] = (o, r["channel"])
            want = [keyed.get(c, ((None, None), None))
                    for c in got.column("customer_id").to_pylist()]
            assert got.column(f"{k.name}.v").to_pylist() == [v for _, v in want]
            assert got.column(f"{k.name}.o").to_pylist() == [o[0] for o, _ in want]
            assert got.column(f"{k.name}.o").type == pa.int64()
            f = got.column(f"{k.name}.f").combine_chunks()
            assert f.type.value_type == pa.large_string() and f.dictionary.to_pylist() == ["f"]
            assert f.to_pylist() == [None if o[0] is None else "f" for o, _ in want]
            assert None in f.to_pylist()


def test_distinct_and_top_k_ties_by_value():
    t = hits([{"customer_id": "a", "channel": c} for c in ["b", "a", "c", "a", "b", None]])
    assert run(key("set", "channel", "string"), [t, t], "distinct", ["a", "z"]) == [3, 0]
    top = run(key("counts", "channel", "string"), [t], "top_k", ["a", "z"], 2)
    assert top == [["a", "b"], []]  # a and b tie at 2: by value; c has 1
    assert run(key("counts", "channel", "string"), [t], "top_k", ["a"], 5) == [["a", "b", "c"]]


def test_top_k_counts_slide_out():
    k = key("counts", "channel", "string")
    from featurestore.features.aggs.kernels import build_partial
    from featurestore.features.daily import _mask, _products

    types = {**language.WHERE_BUILTINS, "channel": "string"}
    d1 = build_partial([k], hits([{"customer_id": "a", "channel": "x"}] * 3), "f", None, _mask,
                       _products, types)
    d2 = build_partial([k], hits([{"customer_id": "a", "channel": "y"}]), "f", None, _mask,
                       _products, types)
    pairs = [(k, k.name)]
    ids = pa.array(["a"], pa.large_string())
    both = merge([d1, d2], pairs)
    assert finalize(k, k.name, both, ids, "top_k", None, 0).to_pylist() == [["x"]]


def test_approx_distinct_exact_up_to_100_then_sketch_within_3_percent():
    k = key("sketch", "channel", "string")
    small = hits([{"customer_id": "a", "channel": f"v{i}"} for i in range(EXACT_LIMIT)])
    assert run(k, [small, small], "approx_distinct", ["a"]) == [EXACT_LIMIT]
    errors = []
    for n in (150, 400, 1000, 3000):
        days = [hits([{"customer_id": "a", "channel": f"v{n}-{i}"}
                      for i in range(j, n, 3)]) for j in range(3)]
        est = run(k, days, "approx_distinct", ["a"])[0]
        errors.append(abs(est - n) / n)
    assert max(errors) < 0.03, errors


def test_where_conditions_null_satisfies_only_is_null():
    t = hits([{"customer_id": "a", "channel": "search", "visit_num": 1},
              {"customer_id": "a", "channel": None, "visit_num": 2},
              {"customer_id": "a", "channel": "ad", "visit_num": None}])

    def count(*conds):
        filt = json.dumps(Filter(where=list(conds)).model_dump(), sort_keys=True)
        return run(key("count", None, None, filt), [t], "count", ["a"])[0]
    assert count({"column": "channel", "op": "ne", "value": "search"}) == 1
    assert count({"column": "channel", "op": "not_in", "value": ["x"]}) == 2
    assert count({"column": "channel", "op": "is_null"}) == 1
    assert count({"column": "channel", "op": "not_null"}) == 2
    assert count({"column": "visit_num", "op": "ge", "value": 2}) == 1
    assert count({"column": "visit_num", "op": "lt", "value": 2}) == 1
    assert count({"column": "channel", "op": "prefix", "value": "se"}) == 1
    assert count({"column": "channel", "op": "in", "value": ["ad", "search"]},
                 {"column": "visit_num", "op": "eq", "value": 1}) == 1


def test_expressions_parse_safely_and_null_on_zero_divisor():
    tree = language.parse_expression("(a + 2) * b / -c")
    assert language.references(tree) == {"a", "b", "c"}
    cols = {"a": (np.array([1.0, 2, 3]), np.array([True, True, False])),
            "b": (np.array([2.0, 2, 2]), np.ones(3, bool)),
            "c": (np.array([1.0, 0, 1]), np.ones(3, bool))}
    v, ok = language.evaluate(tree, cols, 3)
    assert ok.tolist() == [True, False, False] and v[0] == -6.0
    for bad in ("a +", "__import__('os')", "a ** b", "a b", "(a", ""):
        with pytest.raises(ValueError):
            language.parse_expression(bad)


def test_two_stack_windows_equal_a_plain_merge_of_their_days(tmp_path):
    """advance_ext over 20 days (blocks of 3 and 5 days cross), every window of every day
    against the merge of its days, and the back stack / front stack files it keeps."""
    import random

    from featurestore import layout
    from featurestore.features._io import write_ipc
    from featurestore.features.aggs.engine import advance_ext, partial_of, stack_window
    from featurestore.storage import Store

    repo = parse_feature_repo(REPO + (
        "      mx: {aggregation: max, field: price, window_days: 5}\n"
        "      tk: {aggregation: top_k, field: product_id, k: 2, window_days: 3}\n"
        "      ls: {aggregation: last, field: product_id, window_days: 5}\n"
        "      dl: {aggregation: distinct, field: product_id}\n"), "r")
    plan = ext_plan(repo)
    store = Store(str(tmp_path / "s"))
    rng = random.Random(4)
    first = dt.date(2026, 3, 1)
    days = [first + dt.timedelta(i) for i in range(20)]
    dailies = {}
    for i, day in enumerate(days):
        rows = [{"customer_id": rng.choice("abc"), "hit_time_gmt": T0 + i * 86400 + j,
                 "post_product_list": f"x;P{rng.randrange(6)};1;{rng.randrange(100)}"}
                for j in range(rng.randrange(0, 5))]
        table = partial_of(plan, hits(rows).set_column(
            10, "event_date", pa.array([day] * len(rows), pa.date32())), "f")
        dailies[day] = table
        write_ipc(store, table, layout.EXT_DAILY, f"event_date={day.isoformat()}",
                  f"part-{plan.partial_fp}.arrow")
    state = None
    for day in days:
        state = advance_ext(store, plan, state, day, False)
        for w, keys in plan.stacked().items():
            pairs = [(k, k.name) for k in keys]
            got = stack_window(store, plan, day, w, state, first)
            lo = max(day - dt.timedelta(w - 1), first)
            want = merge([dailies[d] for d in days if lo <= d <= day], pairs)
            ids = pa.array(["a", "b", "c"], pa.large_string())
            for k in keys:
                for agg, kk in (("max", None), ("top_k", 2), ("last", None)):
                    if {"max": "max", "top_k": "counts", "last": "last"}[agg] != k.kind:
                        continue
                    assert (finalize(k, k.name, got, ids, agg, kk, 0).to_pylist()
                            == finalize(k, k.name, want, ids, agg, kk, 0).to_pylist()), \
                        (day, w, agg)


REPO = """
sources:
  weblog: {kind: weblog, table: events}
entities:
  customer: {keys: [customer_id]}
tables:
  t:
    source: weblog
    entity: customer
    features:
"""


@pytest.mark.parametrize("feature, message", [
    ("{aggregation: mean, field: nope}", "t.features.x.field: unknown column 'nope'"),
    ("{aggregation: mean, field: product_id}",
     "t.features.x.aggregation: 'mean' needs a numeric field; 'product_id' is string"),
    ("{expression: 'y + 1'}", "t.features.x.expression: unknown feature 'y'"),
    ("{aggregation: top_k, field: product_id}", "k: required for a top_k feature"),
    ("{aggregation: count, window_days: 400, filter: {where: [{column: page_url, op: is_null}]}}",
     "t.features.x.window_days: at most 365"),
    ("{aggregation: count, filter: {where: [{column: nope, op: is_null}]}}",
     "t.features.x.filter.where.0.column: unknown column 'nope'"),
    ("{aggregation: count, filter: {where: [{column: hit_time_gmt, op: gt, value: abc}]}}",
     "t.features.x.filter.where.0.value"),
])
def test_validation_names_the_bad_key(feature, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("+", r"\+")):
        parse_feature_repo(REPO + f"      x: {feature}\n", "repo.yaml")


def test_expression_cycle_is_named():
    text = REPO + "      a: {expression: 'b + 1'}\n      b: {expression: 'a * 2'}\n"
    with pytest.raises(ConfigError, match="a cycle"):
        parse_feature_repo(text, "repo.yaml")


def test_plan_of_the_default_repository_is_empty():
    from featurestore.features.definitions import load_feature_repo

    assert ext_plan(load_feature_repo(None)).empty


def test_value_lists_are_sorted_codes_merged_across_different_dictionaries():
    """Set / counts states keep their values as codes into a sorted dictionary of exactly the
    values present; merging states whose dictionaries differ (and a hand-built plain string
    state) gives the sorted union and the summed counts a Python oracle gives."""
    from featurestore.features.aggs.kernels import build_partial
    from featurestore.features.daily import _mask, _products

    types = {**language.WHERE_BUILTINS, "channel": "string"}
    rng = np.random.default_rng(3)
    days = [[{"customer_id": f"c{rng.integers(6)}", "channel": f"v{rng.integers(40)}"}
             for _ in range(60)] for _ in range(3)]
    for kind in ("set", "counts"):
        k = key(kind, "channel", "string")
        parts = [build_partial([k], hits(d), "f", None, _mask, _products, types) for d in days]
        v = parts[0].column(f"{k.name}.v").combine_chunks()
        assert pa.types.is_dictionary(v.type.value_type)
        used = v.values.dictionary.to_pylist()
        assert used == sorted(used) and set(used) == {
            r["channel"] for r in days[0]}  # exactly the values present, sorted
        hand = pa.table({"customer_id": pa.array(["c0"], pa.large_string()),
                         f"{k.name}.v": pa.array([["v7", "zz"]], pa.list_(pa.large_string()))})
        if kind == "counts":
            hand = hand.append_column(f"{k.name}.c", pa.array([[2, 5]], pa.list_(pa.int64())))
        state = merge([*parts, hand], [(k, k.name)])
        rows = dict(zip(state.column("customer_id").to_pylist(),
                        state.column(f"{k.name}.v").to_pylist(), strict=True))
        oracle: dict[str, dict[str, int]] = {}
        for r in (r for d in days for r in d):
            oracle.setdefault(r["customer_id"], {}).setdefault(r["channel"], 0)
            oracle[r["customer_id"]][r["channel"]] += 1
        oracle.setdefault("c0", {})
        oracle["c0"]["v7"] = oracle["c0"].get("v7", 0) + 2
        oracle["c0"]["zz"] = 5
        assert rows == {c: sorted(vs) for c, vs in oracle.items()}
        if kind == "counts":
            ids = sorted(oracle)
            top = finalize(k, k.name, state, pa.array(ids, pa.large_string()), "top_k", 3,
                           0).to_pylist()
            want = [[v for v, _ in sorted(oracle[c].items(), key=lambda p: (-p[1], p[0]))[:3]]
                    for c in ids]
            assert top == want


def test_merging_sorted_runs_equals_sorting_the_pairs():
    """The one-pass merge of one or two sorted runs of (customer, value) pairs (the list
    states' merges) gives the distinct pairs and summed counts a sort gives, zero sums
    dropped; more runs are left to the sort (None)."""
    from featurestore.features.aggs import runs

    rng = np.random.default_rng(0)
    for _ in range(300):
        nv = int(rng.integers(1, 20))
        parts = []
        for _ in range(int(rng.integers(1, 3))):
            m = int(rng.integers(0, 200))
            c, v = np.sort(rng.integers(0, 30, m)), rng.integers(0, nv, m)
            order = np.lexsort((v, c))
            parts.append((c[order], v[order]))
        c = np.concatenate([p[0] for p in parts]).astype(np.int64)
        v = np.concatenate([p[1] for p in parts]).astype(np.int64)
        counts = rng.integers(-2, 3, len(c)).astype(np.int64)
        pair = c * nv + v
        uniq = np.unique(pair)
        got = runs.distinct_runs(c, v, None)
        assert got["c"].tolist() == (uniq // nv).tolist()
        assert got["v"].tolist() == (uniq % nv).tolist()
        sums = {p: 0 for p in uniq.tolist()}
        for p, n in zip(pair.tolist(), counts.tolist(), strict=True):
            sums[p] += n
        kept = [p for p in uniq.tolist() if sums[p] != 0]
        got = runs.distinct_runs(c, v, counts)
        assert got["c"].tolist() == [p // nv for p in kept]
        assert got["v"].tolist() == [p % nv for p in kept]
        assert got["n"].tolist() == [sums[p] for p in kept]
    assert runs.distinct_runs(np.array([2, 1, 0]), np.array([0, 0, 0]), None) is None


def test_top_k_equals_sorting_each_row():
    """top_k's one-pass choice (aggs/runs.py) equals sorting each row's values by count
    down, then value up, and keeping k: random rows with ties and empty / null rows."""
    from featurestore.features.aggs.kernels import _top_k

    rng = np.random.default_rng(1)
    for _ in range(200):
        rows, vals, cnts = [], [], []
        for _ in range(int(rng.integers(1, 12))):
            if rng.random() < 0.15:
                rows.append(None)
                vals.append(None)
                cnts.append(None)
                continue
            chosen = sorted(rng.choice(12, int(rng.integers(0, 9)), replace=False).tolist())
            v = [f"v{i:02d}" for i in chosen]
            c = rng.integers(1, 4, len(v)).tolist()
            rows.append(list(zip(v, c, strict=True)))
            vals.append(v)
            cnts.append(c)
        k = int(rng.integers(1, 5))
        values = pa.array(vals, pa.list_(pa.large_string())).cast(
            pa.list_(pa.dictionary(pa.int32(), pa.large_string())))
        got = _top_k(values, pa.array(cnts, pa.list_(pa.int64())), k).to_pylist()
        want = [[] if r is None else [v for v, _ in sorted(r, key=lambda p: (-p[1], p[0]))[:k]]
                for r in rows]
        assert [g or [] for g in got] == want


@pytest.mark.parametrize("w", [1, 2, 7, 30, 365])
def test_block_end_is_the_block_end_that_holds_the_day(w):
    """Every day of a span lies in the ``w`` days ending on its ``block_end``, which
    ``block_ends`` names a block end; consecutive days share it until the block changes."""
    from featurestore.features.aggs.engine import block_end, block_ends

    start = dt.date(2025, 12, 1)
    for d in (start + dt.timedelta(i) for i in range(800)):
        end = block_end(d, w)
        assert block_ends(end, w) and end - dt.timedelta(w - 1) <= d <= end
        nxt = d + dt.timedelta(1)
        assert (block_end(nxt, w) == end) == (not block_ends(d, w))


STRING_PIECES = ["", "a", "b", "ab", "a\x00", "\x00", "é", "zz", "Z", "C0001", "C001",
                 "xyzxyzxyz", "Natural Search", "Natural Searches"]


@pytest.mark.parametrize("shape", ["short", "long", "shared prefix", "nul", "one", "empty"])
def test_rank_gives_each_string_its_code_in_the_sorted_distinct_strings(shape):
    """A partial's customers and values are coded by _rank: ids of up to 8 bytes as packed
    integers, longer ones by an 8-byte prefix sort when the prefixes differ, else Arrow's
    sort; every path equals sorting the distinct strings bytewise (Arrow's unique + sort)
    and looking each string up there (index_in)."""
    import pyarrow.compute as pc

    from featurestore.features.aggs.kernels import _rank

    rng = np.random.default_rng(len(shape))
    if shape == "short":
        values = [f"C{int(i)}" for i in rng.integers(0, 5000, 3000)]
    elif shape == "long":
        values = [f"{int(i):08d}-visitor-{int(i) % 7}" for i in rng.integers(0, 5000, 3000)]
    elif shape == "shared prefix":
        values = [f"visitor-{int(i)}" for i in rng.integers(0, 5000, 3000)]
    elif shape == "nul":
        values = [str(rng.choice(STRING_PIECES)) + str(rng.choice(STRING_PIECES))
                  for _ in range(2000)]
    else:
        values = ["only"] * 5 if shape == "one" else []
    strings = pa.array(values, pa.string())
    codes, ranked = _rank(strings)
    want = pc.unique(strings.cast(pa.large_string())).sort()
    assert ranked.type == pa.large_string() and ranked.equals(want)
    assert codes.dtype == np.int64
    assert codes.tolist() == pc.index_in(strings.cast(pa.large_string()),
                                         value_set=want).to_pylist()
    assert ranked.take(pa.array(codes, pa.int64())).to_pylist() == values


def test_list_partials_over_the_same_values_share_their_lists_and_equal_the_merge_path():
    """distinct, top_k and approx_distinct keys over the same field and filter build one
    ranking and one set of per-customer lists in a file's partial; each equals what the
    state path (_coded_state, used by merges) gives for that key alone, and the plain values
    (sorted distinct values, counts per value, an exact list up to 100 values then a sketch)."""
    from featurestore.features.aggs.kernels import _coded_state, build_partial
    from featurestore.features.daily import _mask, _products

    rng = np.random.default_rng(7)
    rows = [{"customer_id": f"c{int(c)}", "hit_time_gmt": T0 + i,
             "channel": None if rng.random() < 0.1 else f"v{int(rng.integers(0, 300))}"}
            for i, c in enumerate(rng.integers(0, 30, 3000))]
    rows += [{"customer_id": "big", "hit_time_gmt": T0, "channel": f"w{i}"} for i in range(150)]
    table = hits(rows)
    keys = [key(k, "channel", "string") for k in ("set", "counts", "sketch")]
    types = {**language.WHERE_BUILTINS, "channel": "string"}
    got = build_partial(keys, table, "f", None, _mask, _products, types)
    customers = got.column("customer_id").combine_chunks()
    named = [r for r in rows if r["channel"] is not None]
    codes = pc_index(customers, [r["customer_id"] for r in named])
    values = pa.array([r["channel"] for r in named], pa.large_string())
    for k in keys:
        alone = _coded_state(k, k.name, codes, customers, values, None)
        for name, column in alone.items():
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            assert got.column(name).combine_chunks().equals(column), (k.kind, name)
    per: dict[str, dict[str, int]] = {}
    for r in named:
        per.setdefault(r["customer_id"], {}).setdefault(r["channel"], 0)
        per[r["customer_id"]][r["channel"]] += 1
    ids = customers.to_pylist()
    set_key, counts_key, sketch_key = keys
    assert got.column(f"{set_key.name}.v").to_pylist() == [sorted(per[c]) for c in ids]
    assert got.column(f"{counts_key.name}.c").to_pylist() == [
        [per[c][v] for v in sorted(per[c])] for c in ids]
    sketches = got.column(f"{sketch_key.name}.h").to_pylist()
    assert [h is not None for h in sketches] == [len(per[c]) > EXACT_LIMIT for c in ids]


def pc_index(customers: pa.Array, ids: list[str]) -> np.ndarray:
    import pyarrow.compute as pc

    return pc.index_in(pa.array(ids, pa.large_string()), value_set=customers).to_numpy(
        zero_copy_only=False).astype(np.int64)


@pytest.mark.parametrize("largest", [True, False])
def test_extreme_rows_pick_each_customers_smallest_or_largest_row_ties_by_line(largest):
    """A file's first/last winner per customer (numba, one pass) equals sorting each
    customer's rows by (major, minor, line) and taking the first (smallest) or the last
    (largest): ties go to the earlier line for first, the later for last."""
    from featurestore.features.aggs.kernels import _extreme_rows

    rng = np.random.default_rng(11)
    codes = rng.integers(0, 40, 2000)
    codes[codes == 7] = 8  # a code without rows
    major = rng.integers(0, 5, 2000)
    minor = rng.integers(0, 3, 2000)
    got = _extreme_rows(codes, [major, minor], largest)
    want = []
    for c in sorted(set(codes.tolist())):
        rows = sorted(np.flatnonzero(codes == c).tolist(), key=lambda i: (major[i], minor[i], i))
        want.append(rows[-1] if largest else rows[0])
    assert got.tolist() == want


def test_anonymous_hits_are_in_no_key_and_rows_count_among_named_hits():
    """Hits without a customer id are in no key's rows; with no line positions given, the
    order key's row is the hit's position among the hits that have a customer (as when they
    were filtered out of the table first)."""
    from featurestore.features.aggs.kernels import build_partial
    from featurestore.features.daily import _mask, _products

    rows = [{"customer_id": None if i % 3 == 0 else f"c{i % 2}", "hit_time_gmt": T0,
             "channel": f"v{i}", "visit_num": i} for i in range(12)]
    keys = [key("last", "channel", "string"), key("count", None, None),
            key("moments", "visit_num", "int"), key("set", "channel", "string")]
    types = {**language.WHERE_BUILTINS, "channel": "string", "visit_num": "int"}
    got = build_partial(keys, hits(rows), "f", None, _mask, _products, types)
    named = hits([r for r in rows if r["customer_id"] is not None])
    want = build_partial(keys, named, "f", None, _mask, _products, types)
    assert got.equals(want)
    assert got.column("customer_id").to_pylist() == ["c0", "c1"]
    last = keys[0]
    # every hit at T0: the last is the latest line, hit 11 for c1
    assert got.column(f"{last.name}.v").to_pylist() == ["v10", "v11"]
    assert got.column(f"{last.name}.o").to_pylist() == [T0, T0]
    assert got.column(f"{last.name}.f").to_pylist() == ["f", "f"]
    assert got.column(f"{keys[1].name}.n").to_pylist() == [4, 4]


def test_a_written_partial_leaves_out_empty_columns_and_its_day_state_is_unchanged(tmp_path):
    """A file's partial is written without the columns that hold nothing (all null; a count
    or moments component all exactly zero); the day's states merged from the
    written files equal the merge of the complete partials, one file or several."""
    from featurestore.features._io import read_ipc
    from featurestore.features.aggs import engine
    from featurestore.storage import Store

    repo = parse_feature_repo(REPO.replace(
        "weblog: {kind: weblog, table: events}",
        "weblog: {kind: weblog, table: events, columns: {channel: string, visit_num: int, "
        "evar: float}}") + (
        "      n_x: {aggregation: count, filter: {where: [{column: channel, op: eq, value: x}]}}\n"
        "      ev_sum: {aggregation: sum, field: evar}\n"
        "      ch_last: {aggregation: last, field: channel}\n"
        "      ch_first: {aggregation: first, field: channel}\n"
        "      ch_top: {aggregation: top_k, field: channel, k: 2}\n"
        "      vn_min: {aggregation: min, field: visit_num}\n"), "r")
    plan = engine.ext_plan(repo)
    store = Store(str(tmp_path / "s"))
    files = {
        # no channel x, no evar, no visit_num: only the sums' zeros and nulls
        "2026-01-05-hit_data-0000": hits([{"customer_id": "a", "channel": "y"},
                                          {"customer_id": "b"}]),
        "2026-01-05-hit_data-0001": hits([{"customer_id": "a", "channel": "x", "evar": 1.5,
                                           "visit_num": 3}]),
    }
    complete = {}
    for fid, table in files.items():
        complete[fid] = engine.partial_of(plan, table, fid)
        engine.write_ext_partials(store, plan, DAY, fid, table)
    part = "event_date=" + DAY.isoformat()
    written = read_ipc(store, "_partials/ext", part,
                       f"part-2026-01-05-hit_data-0000-{plan.partial_fp}.arrow")
    full = complete["2026-01-05-hit_data-0000"]
    left = set(full.column_names) - set(written.column_names)
    kinds = {k.name: k.kind for k in plan.keys}
    assert left and all(kinds[c.split(".")[0]] in ("count", "moments", "min")
                        or c.split(".")[1] == "h" for c in left)
    assert "customer_id" in written.column_names
    for name in written.column_names:
        assert written.column(name).equals(full.column(name))
    other = read_ipc(store, "_partials/ext", part,
                     f"part-2026-01-05-hit_data-0001-{plan.partial_fp}.arrow")
    ev = next(k for k in plan.keys if k.field == "evar")
    assert {f"{ev.name}.n", f"{ev.name}.s", f"{ev.name}.ss"} <= set(other.column_names)
    pairs = [(k, k.name) for k in plan.keys]
    day = merge([written, other], pairs)  # what ext_daily merges: the files read back
    assert day.equals(merge(list(complete.values()), pairs))
    one = merge([written], pairs)
    assert one.equals(merge([full], pairs)) and one.schema == merge([full], pairs).schema


def test_approx_distinct_merge_of_inputs_with_and_without_sketches():
    """A merge whose inputs hold sketches for some customers and none in others (the rows
    holding a sketch are found chunk by chunk, issue #26): each customer's estimate is that
    of one partial of all its hits, an exact count under 100 values stays exact, and a set
    key over the same values in the same merge is unchanged."""
    k = key("sketch", "channel", "string")
    s = key("set", "channel", "string")
    a1 = [{"customer_id": "a", "channel": f"x{i}"} for i in range(150)]
    a2 = [{"customer_id": "a", "channel": f"y{i}"} for i in range(120)]
    days = [hits(a1 + [{"customer_id": "b", "channel": f"b{i}"} for i in range(3)]),
            hits([{"customer_id": "b", "channel": "b9"}, {"customer_id": "c", "channel": "c"}]),
            hits(a2 + [{"customer_id": "0", "channel": "c"}])]  # a is its second row
    whole = hits(a1 + a2)
    ids = ["0", "a", "b", "c"]
    merged = run(k, days, "approx_distinct", ids)
    assert merged[1] == run(k, [whole], "approx_distinct", ["a"])[0]
    assert abs(merged[1] - 270) / 270 < 0.03
    assert [merged[0], *merged[2:]] == [1, 4, 1]
    assert run(s, days, "distinct", ids) == [1, 270, 4, 1]


ABSENT_REPO = REPO.replace(
    "weblog: {kind: weblog, table: events}",
    "weblog: {kind: weblog, table: events, columns: {channel: string, visit_num: int, "
    "evar: float}}") + (
    "      n_all: {aggregation: count}\n"
    "      n_x: {aggregation: count, window_days: 3, "
    "filter: {where: [{column: channel, op: eq, value: x}]}}\n"
    "      ev_sd: {aggregation: stddev, field: evar, window_days: 2}\n"
    "      ev_min: {aggregation: min, field: evar, window_days: 2}\n"
    "      ev_max: {aggregation: max, field: evar}\n"
    "      ch_last: {aggregation: last, field: channel, window_days: 2}\n"
    "      ch_first: {aggregation: first, field: channel}\n"
    "      ch_top: {aggregation: top_k, field: channel, k: 2, window_days: 2}\n"
    "      ch_n: {aggregation: distinct, field: channel}\n"
    "      ch_ax: {aggregation: approx_distinct, field: channel, window_days: 2}\n"
    "      pr_last: {aggregation: last, field: product_id}\n"
    "      n_x7: {aggregation: count, window_days: 7, "
    "filter: {where: [{column: channel, op: eq, value: x}]}}\n"
    "      pr_last2: {aggregation: last, field: product_id, window_days: 2}\n"
    "      pr_last5: {aggregation: last, field: product_id, window_days: 5}\n")


def test_a_key_no_input_has_merges_to_what_merging_its_empty_columns_gives(tmp_path):
    """Keys left out of every written partial (a declared column the drop lacks, a filter
    nothing matches) are not merged but filled (zeros, nulls): the day state equals the merge
    of the complete partials, schema included, for every kind of key (issue #26)."""
    from featurestore.features._io import read_ipc
    from featurestore.features.aggs import engine
    from featurestore.storage import Store

    plan = engine.ext_plan(parse_feature_repo(ABSENT_REPO, "r"))
    store = Store(str(tmp_path / "s"))
    files = {f"2026-01-05-hit_data-000{i}": hits(
        [{"customer_id": c, "post_product_list": f"x;P{j};1;2", "hit_time_gmt": T0 + j}
         for j, c in enumerate(cs)]) for i, cs in enumerate(["ab", "bc", "d"])}
    complete = [engine.partial_of(plan, t, fid) for fid, t in files.items()]
    for fid, table in files.items():
        engine.write_ext_partials(store, plan, DAY, fid, table)
    part = "event_date=" + DAY.isoformat()
    written = [read_ipc(store, "_partials/ext", part, f"part-{fid}-{plan.partial_fp}.arrow")
               for fid in files]
    kinds = {k.kind for k in plan.keys
             if not any(c.startswith(k.name + ".") for c in written[0].column_names)}
    assert kinds >= {"count", "moments", "min", "max", "first", "last", "set", "sketch",
                     "counts"}  # every kind absent from every input
    pairs = [(k, k.name) for k in plan.keys]
    got, want = merge(written, pairs), merge(complete, pairs)
    assert got.schema == want.schema and got.equals(want)


def test_state_files_leave_out_empty_and_repeated_columns_and_read_back_equal(tmp_path):
    """Day states and chained states are written without their empty columns and with a
    column that is another's very buffers stored once (a first day's chained state is the
    day state under several prefixes); read back they equal the tables written, and the
    next day's chain from the read-back state equals the chain from the one in memory."""
    from featurestore import layout
    from featurestore.features._io import read_ipc, write_ipc
    from featurestore.features.aggs import engine
    from featurestore.storage import Store

    plan = engine.ext_plan(parse_feature_repo(ABSENT_REPO, "r"))
    store = Store(str(tmp_path / "s"))
    days = [DAY, DAY + dt.timedelta(1)]
    for i, day in enumerate(days):
        rows = [{"customer_id": c, "post_product_list": f"x;P{j + i};1;2",
                 "hit_time_gmt": T0 + 86400 * i + j, "channel": "x" if i else None,
                 "evar": 1.5 * j if i else None} for j, c in enumerate("abcd"[i:])]
        table = hits(rows).set_column(10, "event_date",
                                      pa.array([day] * len(rows), pa.date32()))
        daily = merge([engine.partial_of(plan, table, "2026-01-05-hit_data-0000")],
                      [(k, k.name) for k in plan.keys])
        engine._write_state(store, daily, layout.EXT_DAILY, "event_date=" + day.isoformat(),
                            f"part-{plan.partial_fp}.arrow")
        if not i:
            today = daily
    part = f"part-{plan.partial_fp}.arrow"
    raw = read_ipc(store, layout.EXT_DAILY, "event_date=" + DAY.isoformat(), part)
    assert raw.num_columns < today.num_columns  # its empty columns left out
    assert engine._read_daily(store, plan, DAY).equals(today)
    assert engine._read_daily(store, plan, DAY).schema == today.schema
    state = engine.advance_ext(store, plan, None, DAY, False)
    stored = read_ipc(store, layout.EXT_STATE, plan.state_fp, f"as_of={DAY.isoformat()}.arrow")
    assert stored.num_columns < (raw.num_columns - 1) * 2  # the prefixes' copies once
    assert json.loads(stored.schema.metadata[engine._SAME])
    back = engine.load_ext_state(store, plan, DAY)
    assert back.schema == state.schema and back.equals(state)
    kept = engine.advance_ext(store, plan, state, days[1], False, write=False)
    again = engine.advance_ext(store, plan, DAY, days[1], False)
    assert kept.equals(again) and engine.load_ext_state(store, plan, days[1]).equals(kept)
    # a file written whole (before this format, or nothing to leave out) reads as it is
    write_ipc(store, today, "plain.arrow")
    assert engine._read_state(store, "plain.arrow").equals(today)


@pytest.mark.parametrize("rows", [0, 1, 9, 1000])
def test_empty_columns_over_numpy_zeros_equal_arrows_nulls_and_zeros(rows):
    """A left-out state column rebuilt over numpy's zeroed buffers is a valid array equal to
    ``pa.nulls`` (any other kind) or to zeros (a count / moments component), of the same
    type, for every type a state column has."""
    from featurestore.features.aggs.kernels import empty_column

    types = [pa.int64(), pa.float64(), pa.int32(), pa.date32(), pa.large_string(),
             pa.large_binary(), pa.dictionary(pa.int32(), pa.large_string()),
             pa.list_(pa.dictionary(pa.int32(), pa.large_string())), pa.list_(pa.int64())]
    for t in types:
        col = empty_column(pa.field("k.v", t), rows)
        col.validate(full=True)
        assert col.type == t and col.null_count == rows and col.equals(pa.nulls(rows, t))
        assert pa.table({"x": col}).equals(pa.table({"x": pa.nulls(rows, t)}))
    for t in (pa.int64(), pa.float64()):
        col = empty_column(pa.field("k.s", t), rows)
        col.validate(full=True)
        assert col.type == t and not col.null_count and col.to_pylist() == [0] * rows
        if rows and t == pa.float64():  # +0.0, not -0.0
            assert not np.signbit(col.to_numpy()).any()


def test_finalize_with_the_callers_same_rows_equals_finalize_checking_itself():
    """``finalize(..., same=)`` (decided once per state by the as-of columns) gives what
    finalize gives deciding itself, for ids that are the state's rows and for ids that are
    not (a customer missing, one added)."""
    from featurestore.features.aggs.kernels import build_partial, positions, same_rows
    from featurestore.features.daily import _mask, _products

    k = key("counts", "channel", "string")
    types = {**language.WHERE_BUILTINS, "channel": "string"}
    days = [hits([{"customer_id": c, "channel": f"P{i % 3}", "hit_time_gmt": T0 + i}
                  for i, c in enumerate("abcab")])]

    state = merge([build_partial([k], t, "2026-01-05-hit_data-0000", None, _mask, _products,
                                 types) for t in days], [(k, k.name)])
    for ids in (["a", "b", "c"], ["a", "c", "d"]):
        arr = pa.array(ids, pa.large_string())
        pos = positions(arr, state)
        assert same_rows(pos, state) == (ids == ["a", "b", "c"])
        got = finalize(k, k.name, state, arr, "top_k", 2, DAY.toordinal(), pos,
                       same_rows(pos, state))
        assert got.equals(finalize(k, k.name, state, arr, "top_k", 2, DAY.toordinal()))
        assert got.to_pylist()[-1] == ([] if ids[-1] == "d" else ["P2"])
