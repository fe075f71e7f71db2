"""The Arrow aggregation of hits into daily frames (issue #18: it runs in every ingest task)
against the pandas implementation it replaced (kept here as the reference), on hand-made hits
with every edge the filters and product lists have."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

from featurestore.features.daily import (_EVENT_COLUMNS, _URL_HOST, DailyPlan, aggregate_events,
                                         daily_plan)
from featurestore.features.definitions import DEFAULT_REPO, Filter, parse_feature_repo


# -- the reference: the pandas implementation before issue #18 --------------------------------
def _pd_mask(events: pd.DataFrame, f: Filter) -> np.ndarray:
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


def _pd_products(events: pd.DataFrame, needed: np.ndarray) -> pd.DataFrame:
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


def pandas_aggregate(ev: pd.DataFrame, plan: DailyPlan) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    masks = {f.key: _pd_mask(ev, f) for f in plan.filters}
    masks["all"] = np.ones(len(ev), dtype=bool)
    cols: dict[str, np.ndarray] = {}
    for f in plan.hit_filters:
        cols[f"hits_{f.key}"] = masks[f.key].astype("int64")
    need_products = np.zeros(len(ev), dtype=bool)
    for f in (*plan.pair_filters, *plan.cp_pair_filters, *(f for _, f in plan.sums),
              *(f for _, f in plan.cp_sums)):
        need_products |= masks[f.key]
    prod = _pd_products(ev, need_products)
    cust_id = ev["customer_id"]
    hit_frame = pd.DataFrame(cols)
    hit_frame["customer_id"] = cust_id
    customer = hit_frame.groupby("customer_id", sort=True).sum()
    # Per-customer sums over products, and per customer x product pairs/sums.
    pcols = _pd_product_columns(masks, prod, plan.pair_filters, plan.sums)
    if pcols:
        pframe = pd.DataFrame(pcols)
        pframe["customer_id"] = cust_id.to_numpy()[prod["row"]]
        psum = pframe.groupby("customer_id", sort=True).sum()
        customer = customer.join(psum, how="left")
        for c in pcols:
            customer[c] = customer[c].fillna(0).astype(pcols[c].dtype)
    cp_cols = _pd_product_columns(masks, prod, plan.cp_pair_filters, plan.cp_sums)
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


def _pd_product_columns(masks: dict[str, np.ndarray], prod: dict[str, np.ndarray],
                     pair_filters, sums) -> dict[str, np.ndarray]:
    """Per (hit, product) pair: a 0/1 column per pair filter and a masked value per sum."""
    cols: dict[str, np.ndarray] = {}
    for f in pair_filters:
        cols[f"pairs_{f.key}"] = masks[f.key][prod["row"]].astype("int64")
    for fld, f in sums:
        cols[f"sum_{fld}_{f.key}"] = np.where(masks[f.key][prod["row"]], prod[fld], 0).astype(
            prod[fld].dtype)
    return cols


# -- the tests ----------------------------------------------------------------------------------
HITS = [  # customer, page_url, post_page_event, post_event_list, post_product_list
    ("c2", "https://shop.example/sale/a?x=1", "0", "1,2", "cat;P1;2;10.50,cat;P2;;3.25"),
    ("c1", "http://h/sale", "0", "12", "cat;P1;1;"),
    ("c1", "/sale/direct", "1", "21,120", None),
    ("c3", None, None, None, "cat;P3;-1;.5,,cat;P1;4;7."),
    (None, "https://x/sale/", "0", "1", "cat;P9;1;1.0"),  # anonymous: left out
    ("c10", "https://x/other#sale/", "0", "2,12,1", "cat;P2;3;1e2"),
    ("c2", "ftp://y/sale/b", "0", "", "cat;P1;1;2.0;extra"),
    ("c4", "https://x/sale/q", "0", "2", ""),
]


def _frame(hits) -> pd.DataFrame:
    return pd.DataFrame(hits, columns=_EVENT_COLUMNS).astype("string")


def _plan():
    repo = yaml.safe_load(DEFAULT_REPO.read_text())
    feats = repo["tables"]["customer_features"]["features"]
    feats["sale_page_views_7d"] = {"aggregation": "count", "window_days": 7,
                                   "filter": {"page_event": "0", "url_path_prefix": "/sale/"}}
    feats["units_7d"] = {"aggregation": "sum", "field": "quantity", "window_days": 7,
                         "filter": {"event_id": "1"}}
    cp = repo["tables"]["customer_product_features"]["features"]
    cp["product_revenue_7d"] = {"aggregation": "sum", "field": "price", "window_days": 7,
                                "filter": {"event_id": "1"}}
    return daily_plan(parse_feature_repo(yaml.safe_dump(repo), "test"))


def _assert_equal(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert list(ours.columns) == list(theirs.columns)
    assert len(ours) == len(theirs)
    for c in ours.columns:
        if ours[c].dtype == "float64":
            np.testing.assert_allclose(ours[c].to_numpy(), theirs[c].to_numpy(), rtol=1e-12)
        else:
            assert ours[c].astype(str).tolist() == theirs[c].astype(str).tolist(), c
            assert str(ours[c].dtype) == str(theirs[c].dtype), c


def test_arrow_aggregation_equals_the_pandas_reference():
    plan = _plan()
    frame = _frame(HITS)
    want = pandas_aggregate(frame, plan)
    assert len(want[0]) == 5 and len(want[1]) >= 3  # the data is not trivial
    assert any(c.startswith("sum_price") for c in want[1].columns)
    for given in (frame, pa.Table.from_pandas(frame, preserve_index=False)):
        for ours, theirs in zip(aggregate_events(given, plan), want, strict=True):
            _assert_equal(ours, theirs)


def test_random_hits_equal_the_pandas_reference():
    rng = np.random.default_rng(3)
    n = 2000
    lists = ["", "1", "2", "12", "1,2", "2,12", "21", "1,12,2"]
    products = [None, "", "c;P1;1;2.5", "c;P2;;1.25,c;P3;2;", "c;P1;3;4.75,c;P1;1;0.1"]
    hits = [(None if rng.random() < 0.05 else f"c{rng.integers(50)}",
             rng.choice(["https://s/sale/x", "https://s/home", "/sale/", None]),
             rng.choice(["0", "1"]), rng.choice(lists), products[rng.integers(len(products))])
            for _ in range(n)]
    plan = _plan()
    frame = _frame(hits)
    for ours, theirs in zip(aggregate_events(frame, plan), pandas_aggregate(frame, plan),
                            strict=True):
        _assert_equal(ours, theirs)


def test_no_hits_give_empty_frames_with_every_column():
    plan = _plan()
    cust, cp = aggregate_events(_frame([]), plan)
    ref_cust, ref_cp = pandas_aggregate(_frame([]), plan)
    assert len(cust) == len(cp) == 0
    assert set(cust.columns) == set(ref_cust.columns) | {"customer_id"}
    assert list(cp.columns)[:2] == ["customer_id", "product_id"]


def _arrow_sum_by(table: pa.Table, keys: list[str]) -> pa.Table:
    """Arrow's own hash aggregation, sorted: what ``sum_by``'s fast path must equal."""
    values = [c for c in table.column_names if c not in keys]
    out = table.group_by(keys, use_threads=False).aggregate([(c, "sum") for c in values])
    out = out.rename_columns([n.removesuffix("_sum") for n in out.column_names])
    return out.select(table.column_names).sort_by([(k, "ascending") for k in keys])


def test_sum_by_codes_equals_arrow_and_pandas():
    """The dictionary-code path of ``sum_by`` (one and two string keys) gives Arrow's and
    pandas' sums, in pandas' key order (code points: accents, CJK and case included)."""
    from featurestore.features.daily import _sum_by_codes, sum_by

    rng = np.random.default_rng(3)
    words = np.array(["b", "B", "a", "é", "ä", "z", "Z", "日本", "a b", "aa", "", "0"],
                     dtype=object)
    n = 5000
    table = pa.table({
        "customer_id": pa.array(words[rng.integers(0, len(words), n)], pa.large_string()),
        "product_id": pa.array(words[rng.integers(0, 6, n)], pa.string()),
        "hits": pa.array(rng.integers(0, 5, n), pa.int64()),
        "price": pa.array(rng.random(n) * 100, pa.float64()),
    })
    # several chunks, as the day's partials arrive (one per file): one dictionary across them
    table = pa.concat_tables([table.slice(0, 1200), table.slice(1200, 3000),
                              table.slice(4200)])
    assert table.column("customer_id").num_chunks == 3
    for keys in (["customer_id"], ["customer_id", "product_id"]):
        sub = table if len(keys) == 2 else table.drop_columns(["product_id"])
        fast = _sum_by_codes(sub, keys, [c for c in sub.column_names if c not in keys])
        assert fast is not None and sum_by(sub, keys).equals(fast)
        ref = _arrow_sum_by(sub, keys)
        assert fast.schema == ref.schema
        for c in keys + ["hits"]:
            assert fast.column(c).to_pylist() == ref.column(c).to_pylist(), c
        np.testing.assert_allclose(fast.column("price").to_numpy(),
                                   ref.column("price").to_numpy(), rtol=1e-12)
        want = sub.to_pandas().groupby(keys, sort=True).sum().reset_index()
        assert fast.select(keys).to_pandas().values.tolist() == want[keys].values.tolist()
        assert fast.column("hits").to_pylist() == want["hits"].tolist()


def test_sum_by_falls_back_where_codes_do_not_apply():
    """Nulls, three keys, non-string keys and integer sums float64 could round go to Arrow's
    aggregation and still give exact sums."""
    from featurestore.features.daily import _sum_by_codes, sum_by

    big = 2 ** 62
    cases = [
        (pa.table({"k": pa.array(["a", None, "a"]), "v": pa.array([1, 2, 3], pa.int64())}),
         ["k"]),
        (pa.table({"k": pa.array(["a", "b", "a"]), "v": pa.array([1, None, 3], pa.int64())}),
         ["k"]),
        (pa.table({"k": pa.array([1, 2, 1], pa.int64()), "v": pa.array([1, 2, 3], pa.int64())}),
         ["k"]),
        (pa.table({"k": pa.array(["a", "b", "a"]), "v": pa.array([big, 1, 1], pa.int64())}),
         ["k"]),
        (pa.table({"a": ["x", "x"], "b": ["y", "y"], "c": ["z", "z"],
                   "v": pa.array([1, 2], pa.int64())}), ["a", "b", "c"]),
        (pa.table({"k": pa.array([], pa.string()), "v": pa.array([], pa.int64())}), ["k"]),
    ]
    for table, keys in cases:
        assert _sum_by_codes(table, keys, [c for c in table.column_names if c not in keys]) \
            is None
        assert sum_by(table, keys).equals(_arrow_sum_by(table, keys))
    exact = sum_by(cases[3][0], ["k"])
    assert exact.column("v").to_pylist() == [big + 1, 1]  # not rounded through float64


def _random_frame(seed: int, n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lists = ["", "1", "2", "12", "1,2", "2,12", "21", "1,12,2", None]
    products = [None, "", "c;P1;1;2.5", "c;P2;;1.25,c;P3;2;", "c;P1;3;4.75,c;P1;1;0.1"]
    return _frame([(None if rng.random() < 0.05 else f"c{rng.integers(50)}",
                    rng.choice(["https://s/sale/x", "https://s/home", None]),
                    rng.choice(["0", "1"]), lists[rng.integers(len(lists))],
                    products[rng.integers(len(products))]) for _ in range(n)])


def test_partials_in_first_seen_order_hold_the_same_rows_and_bits():
    """An ingest task's partials skip sorting the ids (combine_partials sorts): the same rows,
    the same float bits, only in the order the keys first occur."""
    from featurestore.features.daily import aggregate_tables

    plan = _plan()
    table = pa.Table.from_pandas(_random_frame(5), preserve_index=False)
    for seen, ordered in zip(aggregate_tables(table, plan, sort=False),
                             aggregate_tables(table, plan), strict=True):
        keys = [k for k in ("customer_id", "product_id") if k in seen.column_names]
        assert seen.num_rows == ordered.num_rows > 0
        assert seen.sort_by([(k, "ascending") for k in keys]).equals(ordered)
    first = table.column("customer_id").drop_null().unique()
    assert seen.column("customer_id").unique().to_pylist() == [
        c for c in first.to_pylist() if c in set(seen.column("customer_id").to_pylist())]
    empty = aggregate_tables(pa.Table.from_pandas(_frame([]), preserve_index=False), plan,
                             sort=False)
    assert [t.num_rows for t in empty] == [0, 0]


def test_sum_by_with_shared_codes_gives_every_key_of_the_superset_a_row():
    from featurestore.features.daily import sum_by
    from featurestore.features.pairs import sorted_codes

    ids = pa.array(["b", "a", "c", "a"])
    everyone = sorted_codes(ids)
    rows = np.array([0, 3])  # only "b" and "a" here
    out = sum_by(pa.table({"customer_id": ids.take(pa.array(rows)), "n": pa.array([2, 5])}),
                 ["customer_id"], {"customer_id": (everyone[0], everyone[1][rows])})
    assert out.to_pydict() == {"customer_id": ["a", "b", "c"], "n": [5, 2, 0]}
