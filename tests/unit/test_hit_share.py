"""An ingest task's two kinds of partials share their masks, product entries and customer
coding (features/daily.py ``HitShare``): each must come out exactly as built alone, in either
order, on arbitrary hits (hypothesis): anonymous hits, empty and odd product lists (numbers
Arrow's chain decides), several filters and ``where`` conditions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from featurestore.features import daily, hit_lists
from featurestore.features.aggs import engine
from featurestore.features.definitions import parse_feature_repo

REPO = """
sources:
  weblog:
    kind: weblog
    table: events
    columns: {channel: string, visit_num: int}
entities:
  customer: {keys: [customer_id]}
  customer_product: {keys: [customer_id, product_id]}
tables:
  customer_features:
    source: weblog
    entity: customer
    features:
      views_7d: {aggregation: count, filter: {page_event: '0'}, window_days: 7}
      product_views_7d: {aggregation: count, unit: product, filter: {event_id: '2'},
                         window_days: 7}
      revenue_7d: {aggregation: sum, field: price, filter: {event_id: '1'}, window_days: 7}
      products_7d: {aggregation: distinct, field: product_id, window_days: 7,
                    filter: {event_id: '2'}}
      search_7: {aggregation: count, window_days: 7,
                 filter: {where: [{column: channel, op: in, value: [s, t]}]}}
      visits_7: {aggregation: sum, field: visit_num, window_days: 7}
      last_channel_7: {aggregation: last, field: channel, window_days: 7}
      price_max_life: {aggregation: max, field: price, filter: {event_id: '2'}}
      qty_mean_life: {aggregation: mean, field: quantity, filter: {event_id: '2'}}
      last_product_life: {aggregation: last, field: product_id}
      top_products_life: {aggregation: top_k, field: product_id, k: 2}
      approx_products_life: {aggregation: approx_distinct, field: product_id}
      carts_7: {aggregation: count, filter: {event_id: '12'}, window_days: 7}
  customer_product_features:
    source: weblog
    entity: customer_product
    features:
      product_views_7d: {aggregation: count, unit: product, filter: {event_id: '2'},
                         window_days: 7}
"""
# the §3a keys over fewer hits' products than the default partials' (event 1 or 2)
REPO_NARROW = REPO.replace(
    "top_products_life: {aggregation: top_k, field: product_id, k: 2}", "").replace(
    "approx_products_life: {aggregation: approx_distinct, field: product_id}", "").replace(
    "last_product_life: {aggregation: last, field: product_id}",
    "last_product_life: {aggregation: last, field: product_id, filter: {event_id: '2'}}")

_ENTRY = st.one_of(
    st.tuples(st.sampled_from(["c", ""]), st.sampled_from(["P1", "P2", "P10", "Q", ""]),
              st.sampled_from(["1", "2", "", "10"]),
              st.sampled_from(["1.5", "2", "", "0.1", "-0"])).map(";".join),
    st.sampled_from(["", "c;P1"]))
#: a number Arrow's chain decides (the lists then take it, in each partial alone too)
_ODD = st.sampled_from([None, None, "c;P3;1e2;1", "c;P2;3;+4"])
_HIT = st.fixed_dictionaries({
    "customer_id": st.one_of(st.none(), st.sampled_from(["C1", "C2", "C3", "C10", "D",
                                                         "C100000001"])),
    "hit_time_gmt": st.integers(1_767_571_200, 1_767_571_260),
    "post_page_event": st.sampled_from(["0", "1"]),
    "post_event_list": st.one_of(st.none(), st.sampled_from(["1", "2", "12", "1,2", "2,12"])),
    "post_product_list": st.one_of(st.none(), st.lists(_ENTRY, max_size=3).map(",".join)),
    "channel": st.one_of(st.none(), st.sampled_from(["s", "t", "u"])),
    "visit_num": st.one_of(st.none(), st.integers(0, 9)),
})


def _table(rows: list[dict]) -> pa.Table:
    types = {"hit_time_gmt": pa.int64(), "visit_num": pa.int64()}
    cols = {k: pa.array([r[k] for r in rows], types.get(k, pa.string())) for k in rows[0]}
    cols["page_url"] = pa.array(["https://x/p"] * len(rows))
    cols["event_date"] = pa.array([dt.date(2026, 1, 5)] * len(rows), pa.date32())
    return pa.table(cols)


def _alone_and_shared(table: pa.Table, repo_text: str, ext_first: bool):
    repo = parse_feature_repo(repo_text, "test")
    plan, ext = daily.daily_plan(repo), engine.ext_plan(repo)
    rows = np.arange(table.num_rows) * 3  # the hits' lines in their file
    alone = (daily.aggregate_tables(table, plan, sort=False),
             engine.partial_of(ext, table, "2026-01-05-f", rows))
    share = daily.HitShare(table)
    if ext_first:
        ext_part = engine.partial_of(ext, table, "2026-01-05-f", rows, share)
        default = daily.aggregate_tables(table, plan, sort=False, share=share)
    else:
        default = daily.aggregate_tables(table, plan, sort=False, share=share)
        ext_part = engine.partial_of(ext, table, "2026-01-05-f", rows, share)
    return alone, (default, ext_part)


@settings(max_examples=150, deadline=None)
@given(st.lists(_HIT, min_size=1, max_size=40), st.booleans(), st.booleans(), _ODD)
def test_shared_partials_equal_the_partials_built_alone(hits, ext_first, narrow, odd):
    if odd is not None:
        hits[-1] = {**hits[-1], "post_product_list": odd}
    table = _table(hits)
    (want_default, want_ext), (got_default, got_ext) = _alone_and_shared(
        table, REPO_NARROW if narrow else REPO, ext_first)
    for want, got in zip(want_default, got_default, strict=True):
        assert got.schema == want.schema
        assert got.equals(want), (got.to_pydict(), want.to_pydict())
    assert got_ext.schema == want_ext.schema
    assert got_ext.equals(want_ext)


def test_products_of_fewer_hits_are_picked_out_of_a_wider_parse():
    lists = ["c;P1;1;2,c;P2;;", None, "c;P3;2;0.5", "", "c;P4;1;1,c;P5;3;3"]
    table = _table([{"customer_id": "C1", "hit_time_gmt": 0, "post_page_event": "0",
                     "post_event_list": None, "post_product_list": v, "channel": None,
                     "visit_num": None} for v in lists])
    share = daily.HitShare(table)
    wide, narrow = np.ones(5, bool), np.array([True, True, False, False, True])
    for needed in (wide, narrow, wide):
        got, want = share.products(table, needed), daily._products(table, needed)
        np.testing.assert_array_equal(got["row"], want["row"])
        assert got["product_id"].equals(want["product_id"])
        np.testing.assert_array_equal(got["quantity"], want["quantity"])
        np.testing.assert_array_equal(got["price"], want["price"])
    assert share._products[0].sum() == 4  # the wide parse is the one kept (lists 0, 2-4)
    got = share.products(table, narrow)
    got["row"] = got["row"] + 1  # a caller's change of its dict is not the share's
    assert share.products(table, narrow)["row"].tolist() == [0, 0, 4, 4]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["C1", "C2", "", "é", "C10", "x" * 12]), max_size=60),
       st.sampled_from([pa.string(), pa.large_string()]), st.integers(0, 3))
def test_first_seen_of_codes_match_dictionary_encode(values, kind, skip):
    array = pa.array(values, kind)[skip:]
    distinct = sorted(set(array.to_pylist()))
    codes = np.array([distinct.index(v) for v in array.to_pylist()], np.int64)
    got, got_codes = hit_lists.first_seen_of_codes(array, codes, len(distinct))
    encoded = pc.dictionary_encode(array)
    assert got.type == encoded.dictionary.type
    assert got.to_pylist() == encoded.dictionary.to_pylist()
    np.testing.assert_array_equal(got_codes, encoded.indices.to_numpy().astype(np.int64))
