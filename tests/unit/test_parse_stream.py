"""``parse_file`` decompresses and scans a file a piece at a time: where the pieces fall, and
how the gzip stream is laid out (one member, several, zero padding), must not change a row;
a stream that is not gzip, or cut short, or followed by other bytes, is rejected whole as
Python's ``gzip`` would reject it."""

from __future__ import annotations

import datetime as dt
import gzip
import random
import zlib

import pytest

from featurestore._exceptions import RejectedFileError
from featurestore.sources.weblog import RawFile, parse_file
from featurestore.sources.weblog import parse as parse_module

DAY = dt.date(2026, 1, 1)
T = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())
COLUMNS = ("filler_a", "hit_time_gmt", "customer_id", "filler_b", "page_url", "post_page_event",
           "post_event_list", "post_product_list", "exclude_hit", "filler_c")


def _body(lines: int, seed: int = 0) -> bytes:
    """Good hits with random-length filler (so lines cross every piece boundary), and a bad
    row of each kind scattered through them."""
    rng = random.Random(seed)
    out = []
    for i in range(lines):
        row = {
            "filler_a": "".join(rng.choices("abcdefgh", k=rng.randint(0, 300))),
            "hit_time_gmt": str(T + i % 86400),
            "customer_id": f"C{rng.randint(0, 50)}",
            "filler_b": "".join(rng.choices("0123456789", k=rng.randint(0, 90))),
            "page_url": f"https://shop.example.com/p/{rng.randint(0, 999)}",
            "post_page_event": "0",
            "post_event_list": "1" if i % 3 else "",
            "post_product_list": f"Shoes;P{i % 7};1;9.5" if i % 2 else "",
            "exclude_hit": "1" if i % 9 == 4 else "0",
            "filler_c": "z" * rng.randint(0, 40),
        }
        if i % 97 == 5:
            row["hit_time_gmt"] = "12x"  # bad_time
        elif i % 97 == 11:
            row["post_product_list"] = "Shoes;;1;2"  # bad_product
        elif i % 97 == 17:
            row["hit_time_gmt"] = str(T + 2 * 86400)  # future_time
        elif i % 97 == 23:
            row["customer_id"] = "C\xe9"  # non-ASCII, valid UTF-8: lands
        line = "\t".join(row[c] for c in COLUMNS)
        if i % 97 == 29:
            line += "\textra"  # field_count
        out.append(line.encode() + (b"\r\n" if i % 13 == 0 else b"\n"))
    return b"".join(out)


def _raw() -> RawFile:
    return RawFile("mem://2026-01-01/h.tsv.gz", DAY, "h.tsv.gz", 0, COLUMNS, None)


def _same(a, b) -> None:
    assert a.events.equals(b.events)
    assert a.quarantine.drop_columns(["source_file"]).equals(
        b.quarantine.drop_columns(["source_file"]))
    assert (a.lines, a.excluded, a.anonymous, a.late, a.bad) == \
        (b.lines, b.excluded, b.anonymous, b.late, b.bad)


@pytest.fixture(scope="module")
def body() -> bytes:
    return _body(3000)


def test_rows_do_not_depend_on_piece_size_or_members(body, monkeypatch):
    one = parse_file(_raw(), gzip.compress(body))
    assert one.lines == body.count(b"\n")
    assert sum(one.bad.values()) == one.quarantine.num_rows > 0
    # the quarantine keeps each bad line exactly as delivered (LF, without a CRLF's \r)
    lines = body.split(b"\n")
    for number, raw_line in zip(one.quarantine.column("line_number").to_pylist(),
                                one.quarantine.column("raw_line").to_pylist(), strict=True):
        assert raw_line == lines[number - 1].removesuffix(b"\r")
    assert one.events.num_rows + one.quarantine.num_rows + one.excluded == one.lines

    half = len(body) // 2
    members = gzip.compress(body[:half]) + gzip.compress(body[half:])  # cut mid-line
    _same(one, parse_file(_raw(), members))
    _same(one, parse_file(_raw(), gzip.compress(body) + b"\0" * 7))  # zero padding
    for piece in (97, 1024, 1 << 20):  # compressed bytes fed at a time
        monkeypatch.setattr(parse_module, "_PIECE", piece)
        _same(one, parse_file(_raw(), gzip.compress(body, compresslevel=1)))


@pytest.mark.parametrize("damage", ["truncated", "trailing_bytes", "not_gzip", "corrupt"])
def test_a_damaged_stream_is_rejected_whole_as_gzip_rejects_it(body, damage):
    good = gzip.compress(body)
    data = {
        "truncated": good[:len(good) // 2],
        "trailing_bytes": good + b"not gzip",
        "not_gzip": body,
        "corrupt": good[:40] + bytes(b ^ 0x55 for b in good[40:80]) + good[80:],
    }[damage]
    with pytest.raises((OSError, EOFError, ValueError, zlib.error)):
        gzip.decompress(data)  # the reference: Python's gzip refuses it too
    with pytest.raises(RejectedFileError, match="not a valid gzip file"):
        parse_file(_raw(), data)
