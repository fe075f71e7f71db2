"""The numba string kernels of materialization (featurestore/features/strings.py) against the
Arrow functions they replace, on random strings that stress byte order: empty strings, NUL
bytes, multi-byte UTF-8, prefixes of each other, longer than 8 bytes, sliced and chunked
arrays (issue #27)."""

from __future__ import annotations

import bisect
import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from featurestore.features import strings
from featurestore.features.pairs import DistinctCounts, PairWindow, aggregate, sorted_codes
from featurestore.features.state import _bisect

PIECES = ["", "a", "b", "ab", "a\x00", "\x00", "é", "zz", "Z", "aa", "ä", "C0001", "C001",
          "xyzxyzxyz"]


def _values(rng: random.Random, n: int, short: bool = False) -> list[str]:
    pieces = [p for p in PIECES if "\x00" not in p and len(p.encode()) <= 4] if short else PIECES
    return [rng.choice(pieces) + rng.choice(pieces) for _ in range(n)]


def _arrow(rng: random.Random, values: list[str]) -> pa.Array | pa.ChunkedArray:
    arr = pa.array(values, rng.choice([pa.string(), pa.large_string()]))
    if len(values) > 4 and rng.random() < 0.3:
        return arr.slice(2)
    if len(values) > 4 and rng.random() < 0.3:
        return pa.chunked_array([arr.slice(0, 2), arr.slice(2)])
    return arr


def _by_bytes(values: list[str]) -> list[str]:
    return sorted(values, key=lambda s: s.encode())


@pytest.mark.parametrize("seed", range(4))
def test_sorted_codes_equal_arrow_dictionary_encode_and_sort(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        n = rng.randint(0, 3000 if rng.random() < 0.1 else 60)
        values = _values(rng, n, short=rng.random() < 0.5)
        if rng.random() < 0.3:  # sorted input takes the one-pass path
            values = _by_bytes(values)
        arr = _arrow(rng, values)
        values = arr.to_pylist()  # after any slicing
        distinct, codes = sorted_codes(arr)
        want = sorted(set(values), key=lambda s: s.encode())
        assert distinct.to_pylist() == want
        assert distinct.type == arr.type
        distinct.validate(full=True)
        assert [want[c] for c in codes] == values


@pytest.mark.parametrize("seed", range(3))
def test_bisect_equals_python_bisect_for_sorted_and_shuffled_needles(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        hay = _by_bytes(list(set(_values(rng, rng.randint(0, 80)))))
        perm = list(range(len(hay)))
        rng.shuffle(perm)
        ids = pa.array([hay[p] for p in perm], pa.large_string())
        order = np.argsort(np.array(perm, dtype=np.int64), kind="stable")
        needles = _values(rng, rng.randint(0, 200))
        kind = rng.random()
        if kind < 0.4:
            needles = _by_bytes(needles)
        elif kind < 0.6:  # two sorted runs, as a prior's customers then a day's
            half = len(needles) // 2
            needles = _by_bytes(needles[:half]) + _by_bytes(needles[half:])
        keys = [h.encode() for h in hay]
        want = [bisect.bisect_left(keys, x.encode()) for x in needles]
        got = _bisect(ids, order, pa.array(needles, pa.large_string()))
        assert list(got) == want


@pytest.mark.parametrize("seed", range(3))
def test_sorted_members_equal_is_in(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        keys = _by_bytes(_values(rng, rng.randint(0, 100)))
        values = _by_bytes(list(set(_values(rng, rng.randint(0, 40)))))
        got = strings.sorted_members(pa.array(keys, pa.string()), pa.array(values, pa.string()))
        assert got is not None
        assert list(got[0]) == [k in set(values) for k in keys]
        assert list(got[1]) == [v in set(keys) for v in values]
    assert strings.sorted_members(pa.array(["b", "a"]), pa.array(["a"])) is None  # not sorted


def test_descents_count_sorted_runs() -> None:
    assert strings.descents(pa.array([], pa.string())) == 0
    assert strings.descents(pa.array(["a", "a", "b", "c"])) == 0
    assert strings.descents(pa.array(["b", "a", "c", "a\x00", "a"])) == 3  # a\0 > a
    assert strings.descents(pa.array(["é", "z"])) == 1  # bytes: 0xC3 > "z"


def test_distinct_counts_add_up_to_the_window_counts_per_customer() -> None:
    """The customer tables' share of a window (DistinctCounts) gives, per customer, the sum
    of PairWindow.distinct's counts: the same distinct-product numbers."""
    rng = np.random.default_rng(5)
    spec = ("pairs_x", 30)

    def rows(day: int, n: int) -> pa.Table:
        return pa.table({
            "customer_id": pa.array([f"C{c:03d}" for c in rng.integers(0, 40, n)],
                                    pa.large_string()),
            "product_id": pa.array([f"P{p:02d}" for p in rng.integers(0, 15, n)],
                                   pa.large_string()),
            "pairs_x": rng.integers(0, 3, n), "day": np.full(n, day)})

    prior_rows = pa.concat_tables([rows(738000 + d, 200) for d in range(3)])
    prior = aggregate(prior_rows, 738003, [spec])
    day = aggregate(rows(738003, 150), 738003, [spec])
    # the day's rows as the daily table has them: one per pair, sorted
    day_rows = pa.table({
        "customer_id": day.customers.take(pa.array(day.cust)),
        "product_id": day.products.take(pa.array(day.prod)),
        "pairs_x": day.sums[spec], "day": np.full(len(day), 738003)})
    window = PairWindow(prior, day_rows, 738003, [spec])
    ids, counts = window.distinct(spec)
    want: dict[str, int] = {}
    for i, n in zip(ids.to_pylist(), counts, strict=True):
        want[i] = want.get(i, 0) + int(n)
    got_ids, got_counts = DistinctCounts.of(window, [spec]).distinct(spec)
    assert got_ids.to_pylist() == sorted(want)
    assert [int(n) for n in got_counts] == [want[i] for i in sorted(want)]
    assert pc.all(pc.greater_equal(pa.array(got_counts), 0)).as_py()


def test_radix_order_is_the_stable_sort_of_uint64_keys():
    """packed_codes sorts its distinct packed ids by an LSD radix over the bytes, skipping a
    byte every key shares: the same permutation as numpy's stable argsort, repeats and all
    (keys shifted so that low, high or no bytes vary)."""
    rng = np.random.default_rng(5)
    for shift in range(0, 64, 8):
        for n in (0, 1, 2, 300, 5000):
            keys = rng.integers(0, 2 ** 20, n).astype(np.uint64) << np.uint64(shift)
            keys |= np.uint64(0x43) << np.uint64(56)  # a leading "C": a byte all share
            assert (strings._radix_order(keys) == np.argsort(keys, kind="stable")).all()
    same = np.full(10, 7, np.uint64)
    assert strings._radix_order(same).tolist() == list(range(10))


def test_packed_codes_of_kept_strings_equal_those_of_the_filtered_strings():
    """packed_codes(values, keep) codes only the kept strings (nulls outside them allowed),
    as packed_codes of the filtered strings does; without ``keep`` a null gives None, and a
    string it cannot pack (longer than 8 bytes) gives None even outside ``keep``."""
    rng = np.random.default_rng(5)
    for _ in range(50):
        n = int(rng.integers(0, 300))
        values = [None if rng.random() < 0.1 else f"C{int(rng.integers(0, 80)):05d}"
                  for _ in range(n)]
        arr = pa.array(values, pa.large_string())
        keep = np.array([v is not None for v in values], bool)
        got = strings.packed_codes(arr, keep=keep)
        want = strings.packed_codes(arr.filter(pa.array(keep)))
        assert got[0].equals(want[0]) and got[1].tolist() == want[1].tolist()
    arr = pa.array(["a", None, "b"], pa.large_string())
    assert strings.packed_codes(arr) is None
    assert strings.packed_codes(pa.array(["a", "123456789"]), keep=np.array([True, False])) \
        is None


def test_packed_codes_of_mostly_distinct_strings_sort_every_key_to_the_same_codes():
    """``mostly_distinct`` (a file's customers) radix-sorts every packed key, several byte
    positions to a digit, instead of hashing: the same distinct values and codes, whatever
    bytes vary (one, a few, all eight; many values per byte or two), repeats, empty and
    one-value inputs, string and large_string, with ``keep``."""
    rng = np.random.default_rng(7)
    alphabets = ["0123456789", "ab", "".join(map(chr, range(1, 128))), "xyz\u00e9"]
    for trial in range(400):
        n = int(rng.integers(0, 400))
        alphabet = alphabets[trial % len(alphabets)]
        width = int(rng.integers(0, 9))
        prefix = "C" if trial % 3 == 0 else ""
        values = []
        for _ in range(n):
            text = prefix + "".join(rng.choice(list(alphabet), int(rng.integers(0, width + 1))))
            while len(text.encode()) > 8:
                text = text[:-1]
            values.append(None if rng.random() < 0.05 else text)
        if values and trial % 5 == 0:
            values = values[:3] * 50  # repeats
        arr = pa.array(values, pa.large_string() if trial % 2 else pa.string())
        keep = np.array([v is not None for v in values], bool)
        got = strings.packed_codes(arr, keep=keep, mostly_distinct=True)
        want = strings.packed_codes(arr, keep=keep)
        assert got[0].equals(want[0]) and got[1].tolist() == want[1].tolist()
        kept = [v for v in values if v is not None]
        distinct = sorted(set(kept), key=str.encode)
        assert got[0].to_pylist() == distinct
        assert got[1].tolist() == [distinct.index(v) for v in kept]
    keys = rng.integers(0, 2 ** 63, 5000).astype(np.uint64)  # every byte varies
    keys = np.r_[keys, keys[:100]]
    codes, uniques = strings._sorted_key_codes(keys)
    assert uniques.tolist() == sorted(set(keys.tolist()))
    assert codes.tolist() == np.searchsorted(uniques, keys).tolist()


def test_sorted_run_codes_join_runs_with_duplicates_empty_and_unsorted_chunks() -> None:
    """The k-way merge of sorted runs (a day's partials' customers, issue #26): the sorted
    distinct values and each value's code, as one sort gives; a run with repeats, empty
    runs, one run, one value; an unsorted chunk falls back to the sort; long values: None."""
    rng = np.random.default_rng(11)
    for trial in range(300):
        chunks = []
        for j in range(int(rng.integers(0, 7))):
            size = int(rng.integers(0, 25))
            values = sorted("".join(rng.choice(list("abz"), int(rng.integers(0, 5))))
                            for _ in range(size))
            if trial % 4 == 0 and len(values) > 1:
                values = values[::-1]  # out of order
            chunks.append(pa.array(values, pa.large_string() if j % 2 else pa.string()))
        found = strings.sorted_run_codes(chunks)
        flat = [v for c in chunks for v in c.to_pylist()]
        distinct = sorted(set(flat), key=str.encode)
        assert found[0].to_pylist() == distinct
        assert found[0].type == pa.large_string()
        assert found[1].tolist() == [distinct.index(v) for v in flat]
    assert strings.sorted_run_codes([pa.array(["123456789"])]) is None
    one = strings.sorted_run_codes([pa.array(["c1"]), pa.array(["c1"]), pa.array(["c1"])])
    assert one[0].to_pylist() == ["c1"] and one[1].tolist() == [0, 0, 0]
