"""The pure parts of the Redis online store: the push plan, the changed-customer difference
(checked against a pandas computation), the packed rows and the read view."""

from __future__ import annotations

import datetime as dt

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from featurestore.online.redis_codec import RowsView, SlotMeta, epoch_day
from featurestore.online.redis_push import plan_push
from featurestore.online.redis_rows import changed_customers, pack_rows, stored


def _meta(state="complete", as_of="2026-03-05", generation=1, base=None, keys=("customer_id",),
          recency=(), buckets=3, stale=0, base_slot="", overlay=0):
    return SlotMeta(state=state, push_id="p", as_of=as_of, generation=generation,
                    columns=["x"], dtypes={"x": "int64"}, keys=list(keys),
                    recency=list(recency), base=base, buckets=buckets, stale=stale,
                    base_slot=base_slot, overlay=overlay)


def _plan(slots, latest=("2026-03-06", 2), committed=None, deltas=None):
    committed = committed if committed is not None else {"t": {"2026-03-05": 1,
                                                               "2026-03-04": 3}}
    plan = plan_push("ns", "push", {"t": latest}, {"t": slots}, committed,
                     {"t": ["customer_id"]}, {"t": []}, deltas)
    return plan.tables[0] if plan.tables else None


def test_plan_first_push_is_a_whole_rewrite_of_slot_a():
    job = _plan((None, {"a": None, "b": None}))
    assert (job.slot, job.mode, job.base) == ("a", "full", None)


def test_plan_nothing_when_the_served_slot_holds_the_latest():
    job = _plan(("b", {"a": _meta(), "b": _meta(as_of="2026-03-06", generation=2)}))
    assert (job.slot, job.mode, job.fold) == ("b", "none", "")
    # an overlay served whose fold into its base died: nothing to write, the fold finished
    over = _meta(as_of="2026-03-06", generation=2, base_slot="a", overlay=2)
    folding = _meta(state="folding", as_of="2026-03-06", generation=2)
    job = _plan(("x", {"a": folding, "b": None, "x": over, "y": None}))
    assert (job.mode, job.fold, job.base_slot) == ("none", "x", "a")


def test_plan_overlay_of_what_changed_since_the_served_generation():
    """The day's push writes only the changes since the generation served (not the day before
    yesterday's, as a two-slot scheme would): into the overlay not served, over the served
    view's base."""
    base = ("b", {"a": _meta(as_of="2026-03-04", generation=3), "b": _meta(buckets=7)})
    job = _plan(base)
    assert (job.slot, job.mode, job.base, job.base_slot, job.buckets) == \
        ("x", "diff", ("2026-03-05", 1), "b", 7)
    assert job.base_columns == ("x",)
    # served: overlay x over base a, folded (a holds x's generation): next overlay is y
    over = _meta(base_slot="a", overlay=5)
    folded = {"a": _meta(), "b": None, "x": over,
              "y": _meta(as_of="2026-03-04", base_slot="a", overlay=9, stale=12)}
    job = _plan(("x", folded))
    assert (job.slot, job.base, job.base_slot, job.fold, job.clear) == \
        ("y", ("2026-03-05", 1), "a", "", 12)
    # the same, but x's fold into a died: finished first, then y
    dying = {**folded, "a": _meta(state="folding")}
    job = _plan(("x", dying))
    assert (job.slot, job.mode, job.fold) == ("y", "diff", "x")
    # the served partition was rewritten since it was pushed (late data): a base rewritten
    # whole, the one the served view does not read
    job = _plan(("x", folded), committed={"t": {"2026-03-05": 4}})
    assert (job.slot, job.mode) == ("b", "full")


def test_plan_rewrites_a_base_whole_for_an_unbucketed_or_changed_layout():
    # a slot of one big hash (written before buckets): a base rewritten into buckets
    legacy = ("a", {"a": _meta(buckets=0), "b": None})
    assert (_plan(legacy).slot, _plan(legacy).mode) == ("b", "full")
    # other keys than the served slot's: whole
    keyed = ("a", {"a": _meta(keys=("customer_id", "product_id")), "b": None})
    assert _plan(keyed).mode == "full"
    # a rewrite clears the buckets of the slot's content and of a rewrite that died
    stale = ("b", {"a": _meta(as_of="2026-03-01", generation=9, buckets=4, stale=11),
                   "b": _meta(buckets=0)})
    job = _plan(stale)
    assert (job.slot, job.mode, job.clear, job.buckets) == ("a", "full", 11, 0)


def test_plan_half_written_slot_is_never_served_and_written_again():
    # a dead overlay write (y writing): x still served, y cleared and written again
    over = _meta(base_slot="a", overlay=5)
    dead = _meta(state="writing", as_of="2026-03-06", generation=2, base_slot="a", stale=6)
    job = _plan(("x", {"a": _meta(), "b": None, "x": over, "y": dead}))
    assert (job.slot, job.mode, job.clear, job.base) == ("y", "diff", 6, ("2026-03-05", 1))
    # a dead whole rewrite of b: rewritten whole again when the served one cannot be a base
    dead_b = _meta(state="writing", as_of="2026-03-06", generation=2, stale=8)
    job = _plan(("a", {"a": _meta(buckets=0), "b": dead_b}))
    assert (job.slot, job.mode, job.clear) == ("b", "full", 8)
    # no pointer (Redis emptied): whole into a
    assert _plan((None, {"a": _meta(), "b": None})).slot == "a"


def test_plan_delta_when_the_handover_was_taken_against_the_served_generation():
    delta = {"t": {"as_of": "2026-03-06", "generation": 2,
                   "bases": {"2026-03-05": 1, "2026-03-04": 3}, "near_base": "2026-03-05"}}
    served = ("a", {"a": _meta(), "b": None})
    job = _plan(served, deltas=delta)
    assert (job.slot, job.mode, job.base, job.near) == ("x", "delta", ("2026-03-05", 1), True)
    # served the day before yesterday (yesterday's push failed): every handed-over row
    older = ("a", {"a": _meta(as_of="2026-03-04", generation=3), "b": None})
    job = _plan(older, deltas=delta)
    assert (job.mode, job.base, job.near) == ("delta", ("2026-03-04", 3), False)
    # a late day rewrote the base (new generation): the handover is not against it
    late = {"t": {**delta["t"], "bases": {"2026-03-05": 7, "2026-03-04": 7}}}
    assert _plan(served, deltas=late).mode == "diff"
    # the handover of another generation of the pushed as-of (an older commit's)
    old = {"t": {**delta["t"], "generation": 1}}
    assert _plan(served, deltas=old).mode == "diff"
    # the served slot holds a day the handover does not reach back to
    far = ("a", {"a": _meta(as_of="2026-03-01", generation=3), "b": None})
    assert _plan(far, committed={"t": {"2026-03-01": 3}}, deltas=delta).mode == "diff"


def test_plan_whole_handover_after_late_hits_of_the_served_day_only():
    """Late hits of the served day rewrote its partition (a newer generation): the handover
    still covers the change since the version served when the day before was not rewritten
    since (its generation is not newer than the served one); else a base is rewritten."""
    served = ("x", {"a": _meta(generation=4), "b": None,
                    "x": _meta(generation=4, base_slot="a", overlay=2)})
    late = {"t": {"as_of": "2026-03-06", "generation": 9, "near_base": "2026-03-05",
                  "bases": {"2026-03-05": 9, "2026-03-04": 3}}}
    committed = {"t": {"2026-03-05": 9, "2026-03-04": 3}}
    job = _plan(served, latest=("2026-03-06", 9), committed=committed, deltas=late)
    assert (job.slot, job.mode, job.base, job.near) == ("y", "delta", ("2026-03-05", 4), False)
    # the late hits reached back to the day before too (rewritten after the served version)
    deeper = {"t": {**late["t"], "bases": {"2026-03-05": 9, "2026-03-04": 9}}}
    job = _plan(served, latest=("2026-03-06", 9), committed={"t": {"2026-03-05": 9,
                                                                   "2026-03-04": 9}},
                deltas=deeper)
    assert (job.slot, job.mode) == ("b", "full")
    # no handover: nothing tells what the late hits changed
    job = _plan(served, latest=("2026-03-06", 9), committed=committed)
    assert (job.slot, job.mode) == ("b", "full")


def test_plan_skips_a_table_without_partition():
    assert _plan((None, {}), latest=None) is None


def _frame(rng, n, day_offset=0):
    ids = [f"C{i:04d}" for i in range(n)]  # fixed width, sorted
    return pd.DataFrame({
        "customer_id": ids,
        "views": rng.integers(0, 3, n),
        "revenue": np.where(rng.random(n) < 0.2, np.nan, rng.random(n).round(2)),
        "days_since_last_visit": pd.array(
            np.where(rng.random(n) < 0.1, None, rng.integers(0, 5, n)), dtype="Int64"),
    })


@pytest.mark.parametrize("new_ids", ["N1", "C9998"])  # another width (hash lookup) or sorted
def test_changed_customers_match_a_pandas_difference_with_recency_as_dates(new_ids):
    rng = np.random.default_rng(3)
    old = _frame(rng, 300)
    new = old.copy()
    # one day later: recency of everyone grows by one (no change once stored as dates) ...
    new["days_since_last_visit"] = new["days_since_last_visit"] + 1
    # ... except customers active on the new day (recency 0) and some counts that change
    active = rng.choice(len(new), 25, replace=False)
    new.loc[active, "days_since_last_visit"] = 0
    moved = rng.choice(len(new), 30, replace=False)
    new.loc[moved, "views"] += 1
    new = new.drop(index=[3, 4]).reset_index(drop=True)  # gone
    added = ["N1", "N2"] if new_ids == "N1" else ["C9998", "C9999"]  # fixed width, sorted
    new = pd.concat([new, pd.DataFrame({"customer_id": added, "views": [1, 2],
                                        "revenue": [np.nan, 1.5],
                                        "days_since_last_visit": pd.array([0, None],
                                                                          dtype="Int64")})])
    rec = ("days_since_last_visit",)
    got = set(changed_customers(stored(pa.Table.from_pandas(new, preserve_index=False), rec,
                                       "2026-03-06"),
                                stored(pa.Table.from_pandas(old, preserve_index=False), rec,
                                       "2026-03-05"), ("customer_id",)).to_pylist())
    # the oracle: pandas, recency turned into event dates, an outer merge on the id
    def as_dates(frame, as_of):
        out = frame.copy()
        day = dt.date.fromisoformat(as_of)
        out["last"] = [None if pd.isna(v) else day - dt.timedelta(days=int(v))
                       for v in out.pop("days_since_last_visit")]
        return out
    merged = as_dates(new, "2026-03-06").merge(as_dates(old, "2026-03-05"), on="customer_id",
                                               how="outer", suffixes=("_n", "_o"),
                                               indicator=True)
    want = set()
    for row in merged.itertuples():
        if row._8 != "both":
            want.add(row.customer_id)
            continue
        for a, b in ((row.views_n, row.views_o), (row.revenue_n, row.revenue_o),
                     (row.last_n, row.last_o)):
            if not ((pd.isna(a) and pd.isna(b)) or a == b):
                want.add(row.customer_id)
    assert got == want
    assert len(got) < len(old) / 2  # idle customers (recency grew by a day) are not rewritten


@pytest.mark.parametrize("list_type", [pa.list_(pa.large_string()), pa.list_(pa.string())])
def test_changed_customers_compare_top_k_lists_element_by_element(list_type):
    """``top_k`` lists (SPEC §3a) differ by length, by any element (order counts), by a null
    element or a null list; equal lists are not rewritten. Checked against Python equality."""
    rng = np.random.default_rng(5)
    words = ["a", "b", "c", "d", None]
    n = 400
    old = [None if rng.random() < 0.05 else
           [words[j] for j in rng.integers(0, 5, rng.integers(0, 4))] for _ in range(n)]
    new = []
    for v in old:
        r = rng.random()
        if v is None:
            new.append([] if r < 0.5 else None)  # null -> [] changes; null -> null does not
        elif r < 0.1:
            new.append(v + ["e"])
        elif r < 0.2 and len(v) >= 2:
            new.append(list(reversed(v)) if v[0] != v[-1] else v[:-1])
        elif r < 0.3 and v:
            new.append([None if v[0] is not None else "z"] + v[1:])
        else:
            new.append(list(v))
    ids = [f"C{i:04d}" for i in range(n)]

    def mk(vals):
        return pa.table({"customer_id": ids, "top": pa.array(vals, list_type),
                         "n": pa.array(np.zeros(n, dtype=np.int64))})

    got = set(changed_customers(mk(new), mk(old), ("customer_id",)).to_pylist())
    want = {c for c, a, b in zip(ids, new, old) if a != b}
    assert got == want and 0 < len(want) < n / 2


def test_packed_rows_read_back_as_the_memory_store_serves_them():
    arrow = pa.table({"customer_id": ["a", "b"], "n": pa.array([1, None], pa.int64()),
                      "f": [0.1, float("nan")], "days_since_x": pa.array([2, None], pa.int32())})
    as_stored = stored(arrow, ("days_since_x",), "2026-03-05")
    ids, values = pack_rows(as_stored, ["n", "f", "days_since_x"], multi=False)
    assert ids == ["a", "b"]
    assert orjson.loads(values[0]) == [1, 0.1, epoch_day("2026-03-05") - 2]
    meta = SlotMeta(state="complete", push_id="p", as_of="2026-03-05", generation=4,
                    columns=["n", "f", "days_since_x"],
                    dtypes={"n": "int64", "f": "double", "days_since_x": "int32"},
                    keys=["customer_id"], recency=["days_since_x"])
    view = RowsView.build(meta, "t", ["b", "zz", "a"], [values[1], None, values[0]])
    assert view.get("a") == {"n": 1, "f": 0.1, "days_since_x": 2}
    assert view.get("b") == {"n": None, "f": None, "days_since_x": None}  # NaN served as null
    assert "zz" not in view.index and view.generation == 4
    with pytest.raises(Exception, match="unknown feature"):
        view.check_features(["nope"])


def test_multi_key_rows_pack_per_customer_in_order():
    arrow = pa.table({"customer_id": ["a", "a", "b"], "product_id": ["p2", "p1", "p1"],
                      "v": [5, 3, 1]})
    ids, values = pack_rows(arrow, ["product_id", "v"], multi=True)
    assert ids == ["a", "b"]
    assert orjson.loads(values[0]) == [["p2", 5], ["p1", 3]]
    meta = SlotMeta(state="complete", push_id="p", as_of="2026-03-05", generation=1,
                    columns=["product_id", "v"], dtypes={"product_id": "string", "v": "int64"},
                    keys=["customer_id", "product_id"])
    view = RowsView.build(meta, "cp", ["a"], [values[0]])
    assert view.rows_of("a", top=1) == [{"product_id": "p2", "v": 5}]
    assert view.lookup({"customer_id": "a", "product_id": "p1"}, ["v"]) == {"v": 3}


def test_arrow_packing_reads_back_as_the_orjson_packing():
    """The C++ packing (Arrow casts and joins) and the orjson packing give the same values once
    read: floats stay floats (3.0, -0.0, 1e22, 1e-5), NaN and infinities are null, strings with
    quotes fall back to orjson."""
    from featurestore.online import redis_rows

    rng = np.random.default_rng(5)
    n = 400
    floats = rng.gamma(1.0, 30.0, n)
    floats[:8] = [3.0, -0.0, 1e22, 1e-5, float("nan"), float("inf"), 0.1, 1 / 3]
    arrow = pa.table({
        "customer_id": [f"C{i // 3:04d}" for i in range(n)],  # 3 rows per customer
        "product_id": [f"P{i}" if i != 5 else 'P"5\\' for i in range(n)],
        "n": pa.array([None if i % 7 == 0 else int(i) - 200 for i in range(n)], pa.int64()),
        "f": pa.array([None if i == 9 else v for i, v in enumerate(floats)], pa.float64()),
        "b": [bool(i % 2) for i in range(n)],
        "small": pa.array(rng.integers(0, 9, n), pa.int16()),
    })
    columns = ["product_id", "n", "f", "b", "small"]
    for multi in (False, True):
        for table in (arrow, arrow.slice(0, 5), arrow.slice(6)):  # with and without the quote
            fast = pack_rows(table, columns, multi)
            ids = table.column("customer_id").to_pylist()
            values = [table.column(c).to_pylist() for c in columns]
            rows = [list(r) for r in zip(*values)]
            if multi:
                want_ids = list(dict.fromkeys(ids))
                want = [[r for cid, r in zip(ids, rows) if cid == w] for w in want_ids]
            else:
                want_ids, want = ids, rows

            def served(value):
                return orjson.loads(orjson.dumps(value))  # NaN and inf serve as null

            assert fast[0] == want_ids
            got = [orjson.loads(v) for v in fast[1]]
            assert got == [served(w) for w in want]
            # floats stay floats: the JSON the API writes is the same text
            assert [orjson.dumps(g) for g in got] == [orjson.dumps(served(w)) for w in want]
    assert redis_rows._json_rows(arrow.slice(6), columns) is not None  # the C++ path ran
    assert redis_rows._json_rows(arrow, columns) is None  # a quote: orjson


def test_positions_by_binary_search_equal_the_hash_lookup():
    from featurestore.online.redis_rows import _positions

    rng = np.random.default_rng(8)
    old = sorted({f"K{i:06d}" for i in rng.integers(0, 10**6, 5000)})
    new = sorted(set(old[::2]) | {f"K{i:06d}" for i in rng.integers(0, 10**6, 3000)})
    got = _positions(pa.array(new), pa.array(old)).to_pylist()
    assert got == pc.index_in(pa.array(new), value_set=pa.array(old)).to_pylist()
    assert _positions(pa.array(old), pa.array(old)).to_pylist() == list(range(len(old)))
    mixed = ["a", "bb"]  # widths differ: the hash lookup
    assert _positions(pa.array(mixed), pa.array(["bb"])).to_pylist() == [None, 0]


def test_resp_commands_built_in_arrow_equal_hiredis_packing():
    """The whole-push writer's commands, built from Arrow buffers, are byte for byte what
    hiredis packs for the same HSET (ids and values with multi-byte text included)."""
    hiredis = pytest.importorskip("hiredis")
    from featurestore.online.redis_protocol import resp_hset

    ids = pa.array([f"C{i:03d}" for i in range(7)] + ["Ünï"], pa.string())
    values = pa.array([f"[{i},\"é\",null]" for i in range(8)], pa.string())
    for chunk in (1, 3, 8, 100):
        commands = resp_hset("{fs:ns:t}:a:rows", ids.slice(1), values.slice(1), chunk)
        want = [hiredis.pack_command(("HSET", "{fs:ns:t}:a:rows",
                                      *[x for k in range(i, min(7, i + chunk))
                                        for x in (ids[k + 1].as_py(), values[k + 1].as_py())]))
                for i in range(0, 7, chunk)]
        assert [head + bytes(body) for head, body in commands] == want


def test_bucket_of_every_id_vectorized_equals_crc32_of_the_id():
    import zlib

    from featurestore.online.redis_codec import bucket_count, buckets_of

    rng = np.random.default_rng(3)
    fixed = [f"C{i:08d}" for i in rng.integers(0, 10**8, 500)]
    mixed = fixed[:50] + ["", "x", "Ünïcødé", "a" * 40]
    for ids in (fixed, mixed):
        for n in (1, 2, 97, 100_000):
            got = buckets_of(pa.array(ids), n).tolist()
            assert got == [zlib.crc32(i.encode()) % n for i in ids]
    assert (bucket_count(0), bucket_count(100), bucket_count(101), bucket_count(10**7)) == \
        (1, 1, 2, 100_000)


def test_resp_commands_into_buckets_group_each_buckets_fields_and_equal_hiredis_packing():
    """With buckets, every field goes to the hash ``<key>:<crc32(id) mod n>``, each command
    sets fields of one bucket only (at most ``chunk``), every field is sent once, and each
    command is byte for byte what hiredis packs."""
    import zlib

    hiredis = pytest.importorskip("hiredis")
    from featurestore.online.redis_protocol import resp_hset_buckets

    ids = [f"C{i:03d}" for i in range(40)] + ["Ünï"]
    values = [f"[{i},\"é\"]" for i in range(41)]
    for n, chunk in ((1, 100), (1, 7), (5, 3), (16, 1000)):
        data, count = resp_hset_buckets("{fs:ns:t}:a:rows", pa.array(ids), pa.array(values),
                                        chunk, n)
        reader = hiredis.Reader()
        reader.feed(bytes(data))
        commands = []
        while (got := reader.gets()) is not False:
            commands.append(got)
        assert len(commands) == count
        seen = {}
        for command in commands:
            verb, key, *rest = [x.decode() for x in command]
            assert verb == "HSET" and 0 < len(rest) // 2 <= chunk
            for f, v in zip(rest[::2], rest[1::2]):
                assert key == f"{{fs:ns:t}}:a:rows:{zlib.crc32(f.encode()) % n}"
                assert f not in seen
                seen[f] = v
            assert hiredis.pack_command(tuple(x.decode() for x in command)) == \
                b"".join([b"*%d\r\n" % len(command)] + [b"$%d\r\n%s\r\n" % (len(x), x)
                                                         for x in command])
        assert seen == dict(zip(ids, values))
    assert resp_hset_buckets("k", pa.array([], pa.string()), pa.array([], pa.string()), 5, 3) \
        == (memoryview(b""), 0)


def test_slot_metadata_with_keys_a_newer_push_added_still_loads():
    """A reader one release behind the pusher ignores metadata keys it does not know, and a
    value that is not a metadata object reads as an empty slot."""
    meta = _meta(base_slot="a", overlay=4)
    raw = orjson.loads(meta.dumps())
    raw["added_later"] = {"x": 1}
    assert SlotMeta.loads(orjson.dumps(raw)) == meta
    assert SlotMeta.loads(b"[1, 2]") is None and SlotMeta.loads(b"not json") is None
