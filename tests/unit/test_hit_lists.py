"""The daily aggregates' buffer kernels (features/hit_lists.py) against the Arrow chains they
replace, on arbitrary strings (hypothesis): the same entries, numbers to the bit, codes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featurestore.features import daily, hit_lists

_LIST_CHARS = st.sampled_from(list(";;;;;,,,-.0123456789012345678901234567890pq+eé"))
_NUMBER = st.one_of(st.integers(-10**20, 10**20).map(str),
                    st.floats(allow_nan=False, allow_infinity=False).map(repr),
                    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
                    st.from_regex(r"-?[0-9]{0,9}\.?[0-9]{0,9}", fullmatch=True))
_ENTRY = st.one_of(
    st.lists(_LIST_CHARS, max_size=20).map("".join),
    st.tuples(st.text(alphabet="ab;", max_size=3), st.text(alphabet="pqé", max_size=4),
              _NUMBER, _NUMBER).map(lambda t: ";".join(t)),
    st.tuples(st.text(alphabet="ab", max_size=3), st.text(alphabet="pq", min_size=1,
                                                          max_size=4),
              st.integers(0, 99).map(str), _NUMBER).map(lambda t: ";".join(t)))
_LISTS = st.lists(st.one_of(st.none(), st.lists(_ENTRY, max_size=4).map(",".join)),
                  min_size=1, max_size=12)


def _same(fast: dict, slow: dict) -> None:
    np.testing.assert_array_equal(fast["row"], slow["row"])
    assert fast["product_id"].type == slow["product_id"].type
    assert fast["product_id"].to_pylist() == slow["product_id"].to_pylist()
    np.testing.assert_array_equal(fast["quantity"], slow["quantity"])
    assert fast["quantity"].dtype == slow["quantity"].dtype == np.int64
    # the same bits (-0.0 and 0.0 told apart)
    np.testing.assert_array_equal(np.asarray(fast["price"], np.float64).view(np.int64),
                                  np.asarray(slow["price"], np.float64).view(np.int64))


@settings(max_examples=500, deadline=None)
@given(_LISTS, st.sampled_from([pa.string(), pa.large_string()]), st.data())
def test_product_entries_match_arrows_split_and_casts(values, kind, data):
    lists = pa.array(values, kind)
    needed = np.array(data.draw(st.lists(st.booleans(), min_size=len(values),
                                         max_size=len(values))))
    rows = np.flatnonzero(needed & np.array([v is not None for v in values]))
    fast = hit_lists.product_entries(lists, rows)
    with np.errstate(invalid="ignore"):  # pandas' fallback casting an int64 overflow
        slow = daily._products_arrow(lists, rows)
    if fast is not None:  # None: a number outside the plain forms, Arrow's chain decides
        _same(fast, slow)


@pytest.mark.parametrize("number", ["5.", ".5", "-.5", "-0", "-0.0", "007", "0.1", "114.44",
                                    "123456789012345", "0.00000000000001", "9.99"])
def test_plain_numbers_take_the_kernel_and_match(number):
    """Every plain form the kernel accepts is one Arrow's cast accepts too, to the bit."""
    lists = pa.array([f"c;p;{number if '.' not in number else 1};{number}", "c;q;;", "a;b"])
    rows = np.arange(3)
    fast = hit_lists.product_entries(lists, rows)
    assert fast is not None
    _same(fast, daily._products_arrow(lists, rows))


@pytest.mark.parametrize("number", ["+5", "1e5", "1234567890123456", "-", ".", "5x"])
def test_other_numbers_leave_it_to_arrow(number):
    lists = pa.array([f"c;p;1;{number}"])
    assert hit_lists.product_entries(lists, np.arange(1)) is None


def test_product_entries_count_their_outputs_from_the_rows_commas():
    """The outputs are sized by the commas of the bytes the rows span (numpy, outside the
    kernel): every entry of a comma-heavy row among comma-free ones is found, and a count
    below the entries makes the kernel give up (Arrow decides) instead of writing past
    them."""
    lists = pa.array(["a;p;1;2", "c;q;1;1,c;r;2;2,,c;s;3;3,", "b;t;;", None, "d;u;4;4"])
    rows = np.array([0, 1, 2, 4])
    fast = hit_lists.product_entries(lists, rows)
    assert fast["product_id"].to_pylist() == ["p", "q", "r", "s", "t", "u"]
    _same(fast, daily._products_arrow(lists, rows))
    offsets, data = hit_lists._buffers(lists)
    *_, ok = hit_lists._entries(offsets, data, rows, hit_lists._POW10, 5)
    assert not ok


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=4), st.sampled_from(["C1", "C2", "", "é"])),
                max_size=60), st.sampled_from([pa.string(), pa.large_string()]),
       st.integers(0, 3))
def test_first_seen_codes_match_dictionary_encode(values, kind, skip):
    array = pa.array(values, kind)[skip:]  # a sliced array: its offset is applied
    got = hit_lists.first_seen_codes(array)
    encoded = pc.dictionary_encode(array)
    assert got is not None
    distinct, codes = got
    assert distinct.type == encoded.dictionary.type
    assert distinct.to_pylist() == encoded.dictionary.to_pylist()
    np.testing.assert_array_equal(codes, encoded.indices.to_numpy().astype(np.int64))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab\u00e9", max_size=24), min_size=1, max_size=8),
       st.lists(st.integers(0, 7), max_size=80), st.sampled_from([pa.string(), pa.large_string()]),
       st.integers(0, 3))
def test_first_seen_codes_of_long_repeated_strings(words, picks, kind, skip):
    """Strings of 0 to 48 bytes (a word loaded at once, the last one shifted: a string
    equal to another must hash alike wherever it lies and whatever bytes precede it), each
    repeated at several places, against Arrow's dictionary_encode."""
    values = [words[i % len(words)] for i in picks]
    array = pa.array(values, kind)[skip:]
    distinct, codes = hit_lists.first_seen_codes(array)
    encoded = pc.dictionary_encode(array)
    assert distinct.to_pylist() == encoded.dictionary.to_pylist()
    np.testing.assert_array_equal(codes, encoded.indices.to_numpy().astype(np.int64))


def test_first_seen_codes_leave_nulls_to_arrow():
    assert hit_lists.first_seen_codes(pa.array(["a", None])) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet="12,é0", max_size=8)), min_size=1,
                max_size=20), st.sampled_from(["1", "12", "", "é", "2,1"]),
       st.sampled_from([pa.string(), pa.large_string()]))
def test_lists_holding_matches_split_and_compare(values, item, kind):
    """An event id filter: the kernel against splitting each list and comparing its items."""
    lists = pa.array(values, kind)
    expected = [v is not None and item in v.split(",") for v in values]
    assert hit_lists.lists_holding(lists, item).tolist() == expected
    split = pc.split_pattern(lists, ",")
    rows = pc.list_parent_indices(split).to_numpy()
    arrow = np.zeros(len(values), bool)
    arrow[rows[pc.fill_null(pc.equal(pc.list_flatten(split), item), False).to_numpy(
        zero_copy_only=False)]] = True
    assert arrow.tolist() == expected
