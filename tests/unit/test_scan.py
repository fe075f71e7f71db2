"""The numba byte scanner against Python's own decoding, on arbitrary bytes (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from featurestore.sources.weblog.scan import (
    gather_strings,
    parse_int_fields,
    scan_lines,
    scan_lines_and_int,
    valid_utf8_rows,
)


def _scan(text: bytes, ncols: int, wanted: list[int]):
    buf = np.frombuffer(text, dtype=np.uint8)
    slots = np.full(ncols, -1, dtype=np.int64)
    for slot, col in enumerate(wanted):
        slots[col] = slot
    return buf, scan_lines(buf, slots)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_utf8_validation_matches_python(field):
    field = field.replace(b"\t", b"").replace(b"\n", b"")
    buf, (starts, ends, nfields, nonascii, _) = _scan(field + b"\n", 1, [0])
    ok = valid_utf8_rows(buf, starts, ends, np.array([0]))[0]
    try:
        field.decode("utf-8")
        expected = True
    except UnicodeDecodeError:
        expected = False
    assert ok == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text(alphabet="ab\\N01", max_size=4), min_size=1, max_size=5),
                min_size=1, max_size=8), st.booleans())
def test_fields_and_counts_match_str_split(rows, trailing_newline):
    text = "\n".join("\t".join(r) for r in rows) + ("\n" if trailing_newline else "")
    buf, (starts, ends, nfields, _, line_starts) = _scan(text.encode(), 3, [0, 2])
    lines = text.split("\n")
    if lines[-1] == "":  # a final newline ends the last line; it does not start a new one
        lines.pop()
    assert list(nfields) == [len(line.split("\t")) for line in lines]
    for i, line in enumerate(lines):
        assert bytes(buf[line_starts[i]:line_starts[i + 1] - 1]) == line.encode()
    full = [i for i, line in enumerate(lines) if len(line.split("\t")) >= 3]
    col2 = gather_strings(buf, starts, ends, np.array(full, dtype=np.int64), 1).to_pylist()
    want = [lines[i].split("\t")[2] for i in full]
    assert col2 == [None if v in ("", "\\N") else v for v in want]


@settings(deadline=None)  # the first example may pay for loading the compiled kernels
@given(st.lists(st.one_of(st.integers(-10**17, 10**17).map(str),
                          st.text(alphabet="0123456789x-", max_size=20)), min_size=1,
                max_size=20))
def test_int_parsing_matches_python(values):
    text = "".join(v + "\n" for v in values).encode()
    buf, (starts, ends, *_rest) = _scan(text, 1, [0])
    parsed, ok = parse_int_fields(buf, starts, ends, 0)
    for v, p, good in zip(values, parsed, ok):
        try:
            expected = int(v) if v.lstrip("-").isdigit() and len(v.lstrip("-")) <= 18 \
                and v.count("-") <= 1 and not v.startswith("--") else None
        except ValueError:
            expected = None
        assert (expected is not None) == bool(good), v
        if good:
            assert p == expected


def _reference_scan(text: bytes, ncols: int, slots: list[int]):
    """The scanner's contract in plain Python: per line, field count, byte bounds of the wanted
    fields (the last one without the ``\r`` of a CRLF line end) and whether one of them holds a
    byte >= 0x80."""
    lines, pos = [], 0
    while pos < len(text):
        end = text.find(b"\n", pos)
        end = len(text) if end < 0 else end
        lines.append((pos, end))
        pos = end + 1
    out = []
    for start, end in lines:
        fields, bounds, fpos = text[start:end].split(b"\t"), {}, start
        for col, field in enumerate(fields):
            if col < ncols and slots[col] >= 0:
                crlf = col == len(fields) - 1 and field.endswith(b"\r")
                bounds[slots[col]] = (fpos, fpos + len(field) - crlf,
                                      any(b >= 128 for b in field))
            fpos += len(field) + 1
        out.append((start, len(fields), bounds))
    return out


_WIDE_FIELD = st.binary(max_size=24).map(lambda b: b.replace(b"\t", b"").replace(b"\n", b""))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_WIDE_FIELD, min_size=1, max_size=40), min_size=1, max_size=6),
       st.integers(1, 40), st.data(), st.booleans())
def test_word_at_a_time_scan_matches_python(rows, ncols, data, trailing_newline):
    """Long fields, many columns and non-ASCII bytes exercise the 8-bytes-at-a-time paths
    (skipping unwanted fields, and running through a wanted one) as well as the byte loop."""
    wanted = sorted(data.draw(st.sets(st.integers(0, ncols - 1), max_size=min(ncols, 6))))
    text = b"\n".join(b"\t".join(r) for r in rows) + (b"\n" if trailing_newline else b"")
    buf, (starts, ends, nfields, nonascii, line_starts) = _scan(text, ncols, wanted)
    slots = [-1] * ncols
    for slot, col in enumerate(wanted):
        slots[col] = slot
    expected = _reference_scan(text, ncols, slots)
    assert len(nfields) == len(expected)
    for line, (start, count, bounds) in enumerate(expected):
        assert line_starts[line] == start
        assert nfields[line] == count
        for slot, (s, e, high) in bounds.items():
            assert (starts[line, slot], ends[line, slot]) == (s, e)
        assert nonascii[line] == any(high for _, _, high in bounds.values())


_INT_OR_NOT = st.one_of(st.integers(-10**19, 10**19).map(lambda v: str(v).encode()),
                        st.binary(max_size=12).map(
                            lambda b: b.replace(b"\t", b"").replace(b"\n", b"")))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_WIDE_FIELD, min_size=1, max_size=30), min_size=1, max_size=6),
       st.integers(1, 30), st.data(), st.booleans(), st.booleans())
def test_the_int_parsed_during_the_scan_equals_the_separate_parse(rows, ncols, data,
                                                                  trailing_newline, crlf):
    """The hit time is parsed by the scan as its field ends (any column, last one included,
    LF or CRLF): the bounds are those of :func:`scan_lines` and the values those of
    :func:`parse_int_fields` on them."""
    wanted = sorted(data.draw(st.sets(st.integers(0, ncols - 1), min_size=1,
                                      max_size=min(ncols, 6))))
    int_slot = data.draw(st.integers(0, len(wanted) - 1))
    rows = [[data.draw(_INT_OR_NOT) if c == wanted[int_slot] else f for c, f in enumerate(r)]
            for r in rows]
    end = b"\r\n" if crlf else b"\n"
    text = end.join(b"\t".join(r) for r in rows) + (end if trailing_newline else b"")
    buf = np.frombuffer(text, dtype=np.uint8)
    slots = np.full(ncols, -1, dtype=np.int64)
    for slot, col in enumerate(wanted):
        slots[col] = slot
    fused = scan_lines_and_int(buf, slots, int_slot)
    plain = scan_lines(buf, slots)
    for a, b in zip(fused[:5], plain, strict=True):
        np.testing.assert_array_equal(a, b)
    values, ok = parse_int_fields(buf, plain[0], plain[1], int_slot)
    np.testing.assert_array_equal(fused[6], ok)
    np.testing.assert_array_equal(fused[5][ok], values[ok])
