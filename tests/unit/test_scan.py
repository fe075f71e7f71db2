"""The numba byte scanner against Python's own decoding, on arbitrary bytes (hypothesis).

The scanner sees a file as pieces cut anywhere (as a gzip stream decompresses), so every
property is checked with random cuts: the result must not depend on where they fall.
"""

from __future__ import annotations

import random
import re

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from featurestore.sources.weblog.parse import _PRODUCT_RE
from featurestore.sources.weblog.scan import (
    gather_columns,
    gather_strings,
    line_flags,
    products_ok,
    scan_buffer,
    scan_pieces,
    valid_utf8_rows,
)


def _slots(ncols: int, wanted: list[int]) -> np.ndarray:
    slots = np.full(ncols, -1, dtype=np.int64)
    for slot, col in enumerate(wanted):
        slots[col] = slot
    return slots


def _cut(text: bytes, cuts: list[int]) -> list[bytes]:
    """``text`` in pieces at the given offsets (empty pieces included)."""
    bounds = [0, *sorted(min(c, len(text)) for c in cuts), len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


_CUTS = st.lists(st.integers(0, 400), max_size=6)


def _scan(text: bytes, ncols: int, wanted: list[int], cuts: list[int] = (), **kwargs):
    """Scanned pieces, with outputs that start tiny so that their growth is exercised."""
    return scan_pieces(_cut(text, list(cuts)), _slots(ncols, wanted), min_lines=1, **kwargs)


def _field(scanned, line: int, slot: int) -> bytes:
    return scanned.buf[scanned.starts[line, slot]:scanned.ends[line, slot]].tobytes()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_utf8_validation_matches_python(field):
    field = field.replace(b"\t", b"").replace(b"\n", b"")
    scanned = _scan(field + b"\n", 1, [0])
    ok = valid_utf8_rows(scanned.buf, scanned.starts, scanned.ends, np.array([0]))[0]
    try:
        field.decode("utf-8")
        expected = True
    except UnicodeDecodeError:
        expected = False
    assert ok == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text(alphabet="ab\\N01", max_size=4), min_size=1, max_size=5),
                min_size=1, max_size=8), st.booleans(), _CUTS)
def test_fields_and_counts_match_str_split(rows, trailing_newline, cuts):
    text = "\n".join("\t".join(r) for r in rows) + ("\n" if trailing_newline else "")
    scanned = _scan(text.encode(), 3, [0, 2], cuts)
    lines = text.split("\n")
    if lines[-1] == "":  # a final newline ends the last line; it does not start a new one
        lines.pop()
    assert list(scanned.nfields) == [len(line.split("\t")) for line in lines]
    for i, line in enumerate(lines):  # a line with the wrong field count keeps its bytes
        if len(line.split("\t")) != 3:
            assert scanned.raw_line(i) == line.encode()
    full = [i for i, line in enumerate(lines) if len(line.split("\t")) >= 3]
    col2 = gather_strings(scanned.buf, scanned.starts, scanned.ends,
                          np.array(full, dtype=np.int64), 1).to_pylist()
    want = [lines[i].split("\t")[2] for i in full]
    assert col2 == [None if v in ("", "\\N") else v for v in want]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.binary(max_size=40).map(
    lambda b: bytes(c for c in b if c not in b"\t\n\r\\")), min_size=4, max_size=4),
    min_size=1, max_size=30), st.data())
def test_gathered_columns_match_python(rows, data):
    """Several fields gathered at once (each column's bytes follow the previous column's in
    one buffer, short fields moved 16 bytes at a time): every column as Python splits it."""
    text = b"".join(b"\t".join(r) + b"\n" for r in rows)
    scanned = scan_buffer(text, _slots(4, [0, 1, 2, 3]))
    lines = np.array(sorted(data.draw(st.sets(st.integers(0, len(rows) - 1)))), np.int64)
    slots = data.draw(st.permutations([0, 1, 2, 3]))[:data.draw(st.integers(1, 4))]
    got = gather_columns(scanned.buf, scanned.starts, scanned.ends, lines, slots)
    for slot, column in zip(slots, got, strict=True):
        want = [rows[i][slot] for i in lines]
        assert column.cast(pa.binary()).to_pylist() == [v or None for v in want]


def _python_int(v: bytes) -> int | None:
    digits = v[1:] if v.startswith(b"-") else v
    return int(v) if digits.isdigit() and digits.isascii() and len(digits) <= 18 else None


@settings(deadline=None)  # the first example may pay for loading the compiled kernels
@given(st.lists(st.one_of(st.integers(-10**17, 10**17).map(str),
                          st.text(alphabet="0123456789x-", max_size=20)), min_size=1,
                max_size=20), _CUTS)
def test_int_parsing_matches_python(values, cuts):
    text = "".join(v + "\n" for v in values).encode()
    scanned = _scan(text, 1, [0], cuts, int_slot=0)
    for v, p, good in zip(values, scanned.ints, scanned.ints_ok, strict=True):
        expected = _python_int(v.encode())
        assert (expected is not None) == bool(good), v
        if good:
            assert p == expected


def _reference_scan(text: bytes, ncols: int, slots: list[int]):
    """The scanner's contract in plain Python: per line, its bytes, field count, the wanted
    fields (the last one without the ``\r`` of a CRLF line end) and whether one of them holds
    a byte >= 0x80."""
    lines, pos = [], 0
    while pos < len(text):
        end = text.find(b"\n", pos)
        end = len(text) if end < 0 else end
        lines.append(text[pos:end])
        pos = end + 1
    out = []
    for line in lines:
        fields, wanted = line.split(b"\t"), {}
        for col, field in enumerate(fields):
            if col < ncols and slots[col] >= 0:
                crlf = col == len(fields) - 1 and field.endswith(b"\r")
                wanted[slots[col]] = field[:len(field) - crlf]
        high = any(b >= 128 for f in wanted.values() for b in f)
        out.append((line, len(fields), wanted, high))
    return out


_WIDE_FIELD = st.binary(max_size=24).map(lambda b: b.replace(b"\t", b"").replace(b"\n", b""))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_WIDE_FIELD, min_size=1, max_size=40), min_size=1, max_size=6),
       st.integers(1, 40), st.data(), st.booleans(), _CUTS)
def test_word_at_a_time_scan_matches_python(rows, ncols, data, trailing_newline, cuts):
    """Long fields, many columns and non-ASCII bytes exercise the block-at-a-time paths
    (skipping unwanted fields, and running through a wanted one) as well as the byte loop;
    pieces cut anywhere (mid-line, mid-field, between \r and \n) give the same result."""
    wanted = sorted(data.draw(st.sets(st.integers(0, ncols - 1), max_size=min(ncols, 6))))
    text = b"\n".join(b"\t".join(r) for r in rows) + (b"\n" if trailing_newline else b"")
    _assert_scan_matches_python(text, ncols, wanted, cuts)


def _assert_scan_matches_python(text: bytes, ncols: int, wanted: list[int],
                                cuts: list[int]) -> None:
    """The scan of ``text`` cut at ``cuts`` gives, line by line, what Python's split gives:
    field counts, the wanted fields, non-ASCII flags and the raw copies of the lines that may
    be quarantined."""
    scanned = _scan(text, ncols, wanted, cuts)
    slots = [-1] * ncols
    for slot, col in enumerate(wanted):
        slots[col] = slot
    expected = _reference_scan(text, ncols, slots)
    assert scanned.lines == len(expected)
    for line, (raw, count, fields, high) in enumerate(expected):
        assert scanned.nfields[line] == count
        for slot, field in fields.items():
            assert _field(scanned, line, slot) == field
        assert scanned.nonascii[line] == high
        if count != ncols or high:  # may be quarantined: its bytes are kept as delivered
            assert scanned.raw_line(line) == (raw[:-1] if raw.endswith(b"\r") else raw)
    kept = {line for line, (_, count, _, high) in enumerate(expected)
            if count != ncols or high}
    assert set(scanned.raw_lines.tolist()) == kept


_ASCII = [b for b in range(128) if b not in b"\t\n"]


def _wide_field(rnd: random.Random, high_share: float) -> bytes:
    """A field of :data:`_WIDE_FIELD`'s kind (up to 24 bytes) or one long enough to span a
    64-byte block (60-150): any bytes but tab and newline for ``high_share`` of the fields
    (non-ASCII ones among them), ASCII only for the others."""
    size = rnd.randint(0, 24) if rnd.random() < 0.5 else rnd.randint(60, 150)
    if rnd.random() < high_share:
        return rnd.randbytes(size).replace(b"\t", b"").replace(b"\n", b"")
    return bytes(rnd.choices(_ASCII, k=size))


# 150: each example is up to 5 lines of 300 fields, ~10x the others' (18 s of the suite at 300).
# Hypothesis draws the shape (columns, lines, density, wanted fields, line ends, cuts); the
# fields' presence and bytes come from one seeded Random per example (``st.randoms``): drawn
# one by one through ``data.draw`` (up to 3,000 draws an example) they took 12 s of the suite,
# nearly all in Hypothesis's bookkeeping.
@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300), st.integers(1, 5), st.floats(0.0, 1.0), st.data(), st.booleans(),
       st.booleans(), st.randoms(use_true_random=True))
def test_block_scan_of_wide_sparse_lines_matches_python(ncols, nlines, density, data,
                                                        trailing_newline, crlf, rnd):
    """Lines of up to 300 mostly empty fields (runs of tabs longer than a 64-byte block, as in
    a real clickstream feed), the wanted ones anywhere, some fields long enough to span blocks,
    fields with more or fewer columns than the header, pieces cut anywhere in the text: the
    block-at-a-time scan gives what Python's split gives."""
    high_share = data.draw(st.sampled_from([0.0, 0.02, 0.5]))  # lines with and without
    rows = []                                                   # non-ASCII wanted fields
    for _ in range(nlines):
        count = data.draw(st.sampled_from([ncols, ncols, ncols, max(ncols - 1, 1), ncols + 2]))
        rows.append([_wide_field(rnd, high_share) if rnd.random() < density else b""
                     for _ in range(count)])
    wanted = sorted(data.draw(st.sets(st.integers(0, ncols - 1), max_size=min(ncols, 8))))
    end = b"\r\n" if crlf else b"\n"
    text = end.join(b"\t".join(r) for r in rows) + (end if trailing_newline else b"")
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=8))
    _assert_scan_matches_python(text, ncols, wanted, cuts)


def test_fields_ending_at_every_offset_of_a_block():
    """A wanted field ending at each offset of a 64-byte block, after runs of empty fields of
    every length up to 130 tabs, with a non-ASCII byte at the block edge or not."""
    for run in range(0, 131, 7):
        for length in range(70):
            for high in (b"", b"\xc3\xa9"):
                value = b"x" * length + high
                line = b"\t" * run + value + b"\t" * (130 - run) + b"tail"
                text = line + b"\n" + line + b"\n"
                scanned = scan_buffer(text, _slots(131, [run, 130]), piece_bytes=len(text))
                assert scanned.lines == 2 and list(scanned.nfields) == [131, 131]
                assert _field(scanned, 1, 0) == value and _field(scanned, 1, 1) == b"tail"
                assert bool(scanned.nonascii[1]) == bool(high)


def test_a_blocks_masks_count_only_the_bytes_from_the_scan_position_on():
    """The scan compares each 64-byte block once and finds the next fields in the masks it
    holds, with the bits before its position cleared: a non-ASCII byte or a tab already passed
    in that block (in an unwanted field before a wanted one, or at the end of the line before)
    does not count for the fields after it. Every field boundary at every offset of a block,
    the text whole and cut in pieces."""
    for lead in range(0, 140, 3):
        for gap in range(0, 70, 5):
            for value in (b"v", b"v\xc3\xa9", b""):
                # columns: 0 wanted, 1 unwanted non-ASCII, 2 wanted, 3 unwanted (non-ASCII,
                # gap bytes), 4 empty, 5 wanted, 6 unwanted non-ASCII at the line's end
                line = b"\t".join([b"x" * lead, b"\xc3\xa9", value, b"\xff" * gap, b"",
                                   b"z" * (gap % 7), b"\xfeq"])
                short = b"\t".join([b"y" * gap, b"\xe2\x82\xac", value])
                text = line + b"\n" + short + b"\n" + line + b"\r\n" + line
                for cuts in ([], [lead + 2, len(line) + gap], [len(text) // 2]):
                    _assert_scan_matches_python(text, 7, [0, 2, 5], cuts)


_INT_OR_NOT = st.one_of(st.integers(-10**19, 10**19).map(lambda v: str(v).encode()),
                        st.binary(max_size=12).map(
                            lambda b: b.replace(b"\t", b"").replace(b"\n", b"")))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_WIDE_FIELD, min_size=1, max_size=30), min_size=1, max_size=6),
       st.integers(1, 30), st.data(), st.booleans(), st.booleans(), _CUTS)
def test_the_int_parsed_during_the_scan_and_the_lines_kept_for_it(rows, ncols, data,
                                                                  trailing_newline, crlf,
                                                                  cuts):
    """The hit time is parsed by the scan as its field ends (any column, last one included,
    LF or CRLF), and a line whose value is not an integer in the time range keeps its bytes
    for the quarantine."""
    wanted = sorted(data.draw(st.sets(st.integers(0, ncols - 1), min_size=1,
                                      max_size=min(ncols, 6))))
    int_slot = data.draw(st.integers(0, len(wanted) - 1))
    rows = [[data.draw(_INT_OR_NOT) if c == wanted[int_slot] else f for c, f in enumerate(r)]
            for r in rows]
    end = b"\r\n" if crlf else b"\n"
    text = end.join(b"\t".join(r) for r in rows) + (end if trailing_newline else b"")
    lo, hi = -(10**6), 10**6
    scanned = _scan(text, ncols, wanted, cuts, int_slot=int_slot, time_range=(lo, hi))
    slots = [-1] * ncols
    for slot, col in enumerate(wanted):
        slots[col] = slot
    for line, (_, count, fields, high) in enumerate(_reference_scan(text, ncols, slots)):
        value = _python_int(fields.get(int_slot, b""))
        assert bool(scanned.ints_ok[line]) == (value is not None)
        if value is not None:
            assert scanned.ints[line] == value
        kept = count != ncols or high or value is None or not lo <= value < hi
        assert (line in scanned.raw_lines) == kept


_PRODUCT_CHARS = st.sampled_from(list(";;;;,,-.0123456789ab\\N é"))


@settings(max_examples=1000, deadline=None)
@given(st.lists(_PRODUCT_CHARS, max_size=24).map("".join))
def test_product_check_matches_the_documented_pattern(field):
    """The scan's byte-level product check decides exactly as the regular expression
    ``parse._PRODUCT_RE`` on every non-empty comma-separated entry (null ``\\N`` is fine)."""
    pattern = re.compile(_PRODUCT_RE)
    expected = field == "\\N" or all(
        pattern.fullmatch(entry) for entry in field.split(",") if entry)
    assert products_ok(field.encode()) == expected, field


def test_pieces_of_any_size_scan_alike():
    """Whole buffer, one byte at a time, and a mid-CRLF cut: identical outputs."""
    text = b"1\ta\tx\r\n22\tb\n\n333\tc\ty\tz\n4\t\xc3\xa9\r\n5"
    slots = _slots(3, [0, 1])
    whole = scan_buffer(text, slots, 0, piece_bytes=len(text))
    for piece_bytes in (1, 2, 3, 7):
        cut = scan_buffer(text, slots, 0, piece_bytes=piece_bytes, min_lines=1)
        for name in ("buf", "starts", "ends", "nfields", "nonascii", "ints", "ints_ok", "raw",
                     "raw_offsets", "raw_lines"):
            np.testing.assert_array_equal(getattr(cut, name), getattr(whole, name), name)
    assert whole.lines == 6
    # the first line is whole and its integer in range: the only one not kept
    assert [whole.raw_line(i) for i in whole.raw_lines] == [
        b"22\tb", b"", b"333\tc\ty\tz", b"4\t\xc3\xa9", b"5"]


def test_both_ways_to_find_a_blocks_nth_tab_agree():
    """The scan finds the tab that starts a wanted field as set bit n of the block's tab mask:
    with ``pdep`` on CPUs where it is fast, else with a loop. Both agree with Python on
    random masks (the pdep one only where this CPU has it)."""
    from numba import njit

    from featurestore.sources.weblog import scan

    def python_nth(x: int, n: int) -> int:
        return [b for b in range(64) if x >> b & 1][n]

    ways = [scan._loop_nth] + ([scan._pdep_nth] if scan._fast_pdep() else [])
    rng = np.random.default_rng(7)
    masks = [int(m) for m in rng.integers(1, 2**63, 200, dtype=np.uint64)] + [2**64 - 1, 1, 2**63]
    for way in ways:
        nth = njit(lambda x, n, way=way: way(x, n))
        for m in masks:
            for n in range(m.bit_count()):
                assert nth(np.uint64(m), n) == python_nth(m, n)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"", b"0", b"1", b"\\N", b"\\", b"00", b"N", b"\\N0"]),
                min_size=1, max_size=30), st.data())
def test_excluded_and_null_fields_as_python_reads_them(values, data):
    """The flags that tell excluded (``exclude_hit`` not ``0``) and anonymous (no customer id)
    hits from the fields' bytes: a field that is exactly ``0``, a field that is empty or
    ``\\N``."""
    text = b"".join(b"x\t" + v + b"\n" for v in values)
    scanned = scan_buffer(text, _slots(2, [0, 1]))
    rows = np.array(sorted(data.draw(st.sets(st.integers(0, len(values) - 1)))), np.int64)
    is_byte, null, _ = line_flags(scanned.buf, scanned.starts, scanned.ends, rows, 1, ord("0"),
                                  1)
    assert is_byte.tolist() == [values[r] == b"0" for r in rows]
    assert null.tolist() == [values[r] in (b"", b"\\N") for r in rows]


def test_empty_wanted_fields_at_every_offset_of_a_block():
    """An empty wanted field is recorded where the held tab mask shows its start followed by a
    tab (no pass through the wanted-field branch): at every offset of a 64-byte block, the
    block's last byte included (the tab after it then lies in the next block), several in a
    row, one before a non-empty wanted field, and the last field of a line (empty before LF,
    CRLF or the end of the file: the byte branch's)."""
    for lead in range(140):
        # columns: 0 lead bytes, 1 wanted empty, 2 wanted empty, 3 unwanted, 4 wanted value,
        # 5 unwanted, 6 wanted empty, 7 wanted (empty on odd lines), last column
        line = b"\t".join([b"a" * lead, b"", b"", b"u", b"val", b"", b"", b""])
        other = b"\t".join([b"b" * (lead // 2), b"", b"x", b"", b"", b"w" * lead, b"", b"z"])
        for end in (b"\n", b"\r\n"):
            text = line + end + other + end + line
            for cuts in ([], [lead + 1, lead + 2], [len(line) + 1]):
                _assert_scan_matches_python(text, 8, [1, 2, 4, 6, 7], cuts)


def test_field_bounds_turn_int64_before_they_could_pass_int32(monkeypatch):
    """Field bounds are int32 while the wanted fields' buffer stays below 2 GiB; the piece
    that could pass it turns them int64 first (here at a few bytes), with the same fields."""
    from featurestore.sources.weblog import scan

    rows = [[b"%d" % i, b"v" * (i % 50), b"", b"\xc3\xa9" * (i % 3)] for i in range(200)]
    text = b"".join(b"\t".join(r) + b"\n" for r in rows)
    small = _scan(text, 4, [0, 1, 3], [len(text) // 3, len(text) // 2])
    assert small.starts.dtype == np.int32 and small.ends.dtype == np.int32
    monkeypatch.setattr(scan, "_INT32_BOUNDS", 300)
    wide = _scan(text, 4, [0, 1, 3], [len(text) // 3, len(text) // 2])
    assert wide.starts.dtype == np.int64 and wide.ends.dtype == np.int64
    np.testing.assert_array_equal(wide.starts, small.starts)
    np.testing.assert_array_equal(wide.ends, small.ends)
    _assert_scan_matches_python(text, 4, [0, 1, 3], [len(text) // 3])
    lines = np.arange(len(rows), dtype=np.int64)
    got = gather_columns(wide.buf, wide.starts, wide.ends, lines, [1, 2])
    assert got[0].to_pylist() == [r[1].decode() or None for r in rows]


_DECLARED_FIELD = st.sampled_from([b"", b"", b"", b"\\N", b"US", b"d\xc3\xa9j\xc3\xa0",
                                   b"\xff\xfe", b"\xc3", b"12", b"x" * 40])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_DECLARED_FIELD, min_size=4, max_size=4), min_size=1, max_size=40),
       st.data(), st.booleans(), st.booleans())
def test_gathered_builtin_and_declared_fields_match_python(rows, data, wide, counted):
    """gather_fields: the built-in slots' strings, and the declared ones' with a field that is
    not valid UTF-8 null and counted per slot; empty and ``\\N`` null and not counted; a slot
    empty on every gathered line an all-null string array. ``wide``: int64 offsets for every
    column (as past 2 GiB), cast back to string where a column's kept bytes fit. ``counted``:
    the fields' bytes given, as parse counts them with line_flags over every valid line (a
    superset of the gathered ones), instead of counted by the gather: the same arrays."""
    from featurestore.sources.weblog import scan

    text = b"".join(b"\t".join(r) + b"\n" for r in rows)
    scanned = scan_buffer(text, _slots(4, [0, 1, 2, 3]))
    lines = np.array(sorted(data.draw(st.sets(st.integers(0, len(rows) - 1)))), np.int64)
    declared = data.draw(st.lists(st.sampled_from([1, 2, 3]), unique=True, max_size=3))
    builtin = [s for s in data.draw(st.permutations([0, 1, 2, 3])) if s not in declared][:2]
    totals = None
    if counted:
        every = np.arange(len(rows), dtype=np.int64)
        totals = line_flags(scanned.buf, scanned.starts, scanned.ends, every, 0, 48, 0,
                            [*builtin, *declared])[2]
        assert totals.tolist() == [sum(len(r[s]) for r in rows) for s in [*builtin, *declared]]
    old = scan._NARROW
    try:
        if wide:
            scan._NARROW = 1  # every column "past" int32 offsets: the int64 path
        fields, strings, bad = scan.gather_fields(scanned.buf, scanned.starts, scanned.ends,
                                                  lines, builtin, declared, totals)
    finally:
        scan._NARROW = old

    def text_of(value: bytes) -> str | None:
        if value in (b"", b"\\N"):
            return None
        try:
            return value.decode()
        except UnicodeDecodeError:
            return None

    def arrow_type(kept: list) -> pa.DataType:  # int64 offsets stay where bytes were kept
        return pa.large_string() if wide and any(v for v in kept) else pa.string()

    for slot, column in zip(builtin, fields, strict=True):  # gathered unchecked: as bytes
        want = [None if v in (b"", b"\\N") else v for v in (rows[i][slot] for i in lines)]
        assert column.type == arrow_type(want) and len(column) == len(lines)
        assert column.cast(pa.large_binary()).to_pylist() == want
    for slot, column, count in zip(declared, strings, bad, strict=True):
        values = [rows[i][slot] for i in lines]
        want = [text_of(v) for v in values]
        assert column.type == arrow_type(want) and len(column) == len(lines)
        assert column.to_pylist() == want
        assert count == sum(v in (b"\xff\xfe", b"\xc3") for v in values)
