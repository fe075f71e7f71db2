"""Parsing of ``weblog`` hit files: one file's gzip bytes to typed hit rows (SPEC §1, §3a).

Decompresses (ISA-L), scans with the numba scanner (:mod:`.scan`), classifies bad rows for the
quarantine and types the declared columns. It does no I/O to the store; :mod:`.ingest` does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from isal import igzip, isal_zlib

from ..._exceptions import RejectedFileError
from .drops import WEBLOG_COLUMNS, RawFile

if TYPE_CHECKING:  # the numba scanner loads only when a file is parsed
    from .scan import Scanned

__all__ = [
    "WEBLOG_COLUMNS",
    "BAD_ROW_REASONS",
    "DEFAULT_MAX_LATE_DAYS",
    "EVENT_SCHEMA",
    "COLUMN_ARROW_TYPES",
    "event_schema",
    "typed_column",
    "QUARANTINE_SCHEMA",
    "ParsedFile",
    "parse_file",
]

#: Bad-row classes; a row is quarantined for the first that fits. They are checked in this
#: order, except ``too_old`` (added later, so listed last): it is checked with the other times,
#: right after ``future_time``.
BAD_ROW_REASONS = ("field_count", "bad_utf8", "bad_time", "future_time", "bad_product", "too_old")

#: How many days before its drop's date a hit may be (``max_late_days``); older hits are
#: quarantined as ``too_old``: one stray old hit must not make materialization rebuild years.
DEFAULT_MAX_LATE_DAYS = 30

#: Hits before this are out of range (a zeroed or garbled clock), not late data.
MIN_HIT_TIME = int(dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp())

#: One product entry: ``category;product_id;quantity;price[;ignored...]``; quantity and price
#: may be empty (Adobe leaves them empty on product views), product_id may not. The scan checks
#: it in bytes (``scan._entry_ok``); tests hold the two to each other.
_PRODUCT_RE = r"^[^;]*;[^;]+;(-?[0-9]+)?;(-?[0-9]+(\.[0-9]*)?|-?\.[0-9]+)?(;.*)?$"

EVENT_SCHEMA = pa.schema(
    [
        ("hit_time_gmt", pa.int64()),
        ("customer_id", pa.string()),
        ("page_url", pa.string()),
        ("post_page_event", pa.string()),
        ("post_event_list", pa.string()),
        ("post_product_list", pa.string()),
    ]
)

#: The Arrow type of each declared column type (SPEC §3a); strings are the store's string
#: type once conformed (``featurestore.schema.ID_TYPE``).
COLUMN_ARROW_TYPES = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(),
                      "bool": pa.bool_()}
#: What an ``int`` or ``float`` field must look like (no spaces, no thousands separators, no
#: ``inf``/``nan``); a field that does not match is a bad value (null, counted).
_INT_RE = r"^[+-]?[0-9]+$"
_FLOAT_RE = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_TRUE = ("1", "true")
_FALSE = ("0", "false")


def event_schema(declared: Mapping[str, str] | None = None) -> pa.Schema:
    """The schema of a parsed file's hits: :data:`EVENT_SCHEMA`, then each declared column
    under its own name and type (``event_date`` follows in :class:`ParsedFile`).

    Args:
        declared: column name -> type (``string``, ``int``, ``float``, ``bool``), in order.

    Returns:
        The Arrow schema.
    """
    return pa.schema(list(EVENT_SCHEMA) + [pa.field(n, COLUMN_ARROW_TYPES[t])
                                           for n, t in (declared or {}).items()])


def typed_column(values: pa.Array, kind: str) -> tuple[pa.Array, int]:
    """A declared column's raw fields (strings, null for empty and ``\\N``) as its type.

    Args:
        values: the fields as an Arrow string array.
        kind: ``string``, ``int`` (int64), ``float`` (float64) or ``bool`` (``1``/``0``/
            ``true``/``false``, any case).

    Returns:
        The typed array, and how many non-null fields did not parse (now null): an ``int``
        field that is not :data:`_INT_RE` within int64, a ``float`` field that is not
        :data:`_FLOAT_RE` or is not finite (``1e999``), a ``bool`` field not in the four words.
    """
    if kind == "string":
        return values, 0
    if values.null_count == len(values):  # an empty column (sparse feeds): nothing to parse
        return pa.nulls(len(values), COLUMN_ARROW_TYPES[kind]), 0
    if kind == "bool":
        present = pc.is_valid(values)
        lower = pc.utf8_lower(values)
        is_true = pc.is_in(lower, value_set=pa.array(_TRUE))
        is_false = pc.is_in(lower, value_set=pa.array(_FALSE))
        ok = pc.or_(is_true, is_false)
        out = pc.if_else(ok, is_true, pa.scalar(None, pa.bool_()))
        bad = pc.sum(pc.and_(present, pc.invert(ok))).as_py() or 0
        return out, int(bad)
    from .scan import number_fields  # (numba loads when a file is parsed)

    ok, ints, plus = number_fields(values, kind == "int")
    good = int(np.count_nonzero(ok))
    bits = pa.py_buffer(np.packbits(ok, bitorder="little")) if good < len(values) else None
    bad = len(values) - values.null_count - good
    if kind == "int":  # read by the sweep: exact, any number of digits
        return pa.Array.from_buffers(pa.int64(), len(values), [bits, pa.py_buffer(ints)],
                                     len(values) - good), bad
    # Floats are read by Arrow's cast (correctly rounded), of the well-formed fields only
    # (the others null first); it takes no leading "+"
    if values.offset:  # (the validity bits start where the array's first field does)
        values = pa.concat_arrays([values])
    clean = pa.Array.from_buffers(values.type, len(values), [bits, *values.buffers()[1:3]],
                                  len(values) - good)
    if plus:
        clean = pc.replace_substring_regex(clean, r"^\+", "")
    out = pc.cast(clean, pa.float64())
    finite = pc.is_finite(out)  # 1e999 parses as inf: not a usable value (null, counted)
    infinite = good - (pc.sum(finite).as_py() or 0)
    if infinite:
        out = pc.if_else(pc.fill_null(finite, True), out, pa.scalar(None, pa.float64()))
    return out, int(bad + infinite)


QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("line_number", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw_line", pa.binary()),
    ]
)

@dataclasses.dataclass
class ParsedFile:
    """What one file yields: hit rows to keep, rows to quarantine, and counts."""

    events: pa.Table  # EVENT_SCHEMA plus ``event_date`` (date32)
    quarantine: pa.Table  # QUARANTINE_SCHEMA
    lines: int
    excluded: int
    anonymous: int  # valid rows (excluded ones too) with no customer_id
    late: int  # valid rows (excluded ones too) dated before the drop's day
    md5: str
    bad: dict[str, int]
    #: declared column -> values that did not parse as its type (now null), in landed rows
    column_bad: dict[str, int] = dataclasses.field(default_factory=dict)
    #: declared columns absent from the drop's column_headers.tsv (null in every row)
    columns_missing: list[str] = dataclasses.field(default_factory=list)


#: Compressed bytes fed to the decompressor at a time: at the 10-15:1 of a sparse clickstream
#: feed about a megabyte comes out, which the scan reads while it is still in the CPU cache.
_PIECE = 1 << 16


class _NotOneMember(Exception):
    """The stream was not one whole gzip member (several, trailing bytes, or corrupt)."""


def _one_member_pieces(compressed: bytes) -> Iterator[bytes]:
    """The decompressed bytes of a one-member gzip file, a piece at a time (ISA-L).

    Raises :class:`_NotOneMember` at the end (after yielding what it could) when the file is
    not exactly one complete member: the caller then falls back to ``igzip.decompress``, which
    handles several members (or rejects the file) as ``gzip`` does.
    """
    stream = isal_zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
    view = memoryview(compressed)
    fed = 0
    try:
        while fed < len(view) and not stream.eof:
            yield stream.decompress(view[fed:fed + _PIECE])
            fed += _PIECE
    except isal_zlib.error:
        raise _NotOneMember from None
    if not stream.eof or stream.unused_data or fed < len(view):
        raise _NotOneMember


def parse_file(raw: RawFile, compressed: bytes,
               max_late_days: int = DEFAULT_MAX_LATE_DAYS,
               declared: Mapping[str, str] | None = None) -> ParsedFile:
    """Validate and parse one file's bytes.

    Args:
        raw: the file, as :func:`discover_files` found it.
        compressed: its bytes (gzip).
        max_late_days: hits dated more than this many days before the drop's date are
            quarantined as ``too_old``.
        declared: the source's declared columns (name -> type, SPEC §3a), kept typed after
            the seven; a bad value is null and counted (``column_bad``), never quarantined;
            a column the drop's header lacks is null and listed (``columns_missing``).

    Returns:
        The kept rows, the quarantined ones and the counts. Raises
        :class:`RejectedFileError` for whole-file problems (not gzip, truncated, manifest
        mismatch); bad rows go to ``quarantine``.
    """
    # the numba scanner loads here (workers preload it): discovering drops needs none of it
    from .scan import (
        gather_fields,
        line_flags,
        scan_buffer,
        scan_pieces,
        valid_utf8_rows,
    )

    md5 = hashlib.md5(compressed).hexdigest()
    if raw.manifest is not None and raw.manifest.get("md5") not in (None, md5):
        raise RejectedFileError(
            raw.url, f"md5 {md5} does not match manifest.json ({raw.manifest['md5']}); the file "
            "is incomplete or altered: re-deliver it, then re-run ingest",
        )

    slot_of_col = np.full(len(raw.columns), -1, dtype=np.int64)
    for slot, name in enumerate(WEBLOG_COLUMNS):
        slot_of_col[raw.columns.index(name)] = slot
    declared = dict(declared or {})
    # declared columns take the slots after the seven (a header naming one twice: the first)
    present = {name: raw.columns.index(name) for name in declared if name in raw.columns}
    declared_slots = {}
    for name, col in present.items():
        declared_slots[name] = len(WEBLOG_COLUMNS) + len(declared_slots)
        slot_of_col[col] = declared_slots[name]
    drop_start = int(dt.datetime.combine(raw.drop_date, dt.time(), dt.UTC).timestamp())
    drop_end = drop_start + 86400
    oldest = drop_start - max_late_days * 86400
    # The scan parses the hit time (slot 0) and checks the product list as their fields end,
    # and keeps the raw bytes of every line outside these bounds for the quarantine.
    checks = {"int_slot": 0, "prod_slot": WEBLOG_COLUMNS.index("post_product_list"),
              "time_range": (max(MIN_HIT_TIME, oldest), drop_end)}
    try:
        size_hint = int.from_bytes(compressed[-4:], "little") if len(compressed) >= 18 else 0
        scanned = scan_pieces(_one_member_pieces(compressed), slot_of_col, size_hint=size_hint,
                              **checks)
    except _NotOneMember:
        try:
            data = igzip.decompress(compressed)
        # gzip's errors for a bad header or a truncated stream; ISA-L's own for a bad block
        except (OSError, EOFError, ValueError, isal_zlib.error) as exc:
            raise RejectedFileError(
                raw.url, f"not a valid gzip file ({exc}); re-deliver it, then re-run ingest"
            ) from None
        scanned = scan_buffer(data, slot_of_col, **checks)
    buf, starts, ends, nfields, times = (scanned.buf, scanned.starts, scanned.ends,
                                         scanned.nfields, scanned.ints)
    n = scanned.lines
    if raw.manifest is not None and raw.manifest.get("records") not in (None, n):
        raise RejectedFileError(
            raw.url, f"has {n} lines but manifest.json says {raw.manifest['records']}; the file "
            "is incomplete or altered: re-deliver it, then re-run ingest",
        )

    # status 0 = good; i+1 = BAD_ROW_REASONS[i]. Each check only looks at still-good rows.
    status = np.where(nfields != len(raw.columns), 1, 0).astype(np.int8)
    suspect = np.flatnonzero((status == 0) & scanned.nonascii)
    if suspect.size:
        status[suspect[~valid_utf8_rows(buf, starts, ends, suspect, len(WEBLOG_COLUMNS))]] = 2
    status[(status == 0) & (~scanned.ints_ok | (times < MIN_HIT_TIME))] = 3
    status[(status == 0) & (times >= drop_end)] = 4
    status[(status == 0) & (times < oldest)] = BAD_ROW_REASONS.index("too_old") + 1
    status[(status == 0) & scanned.prod_bad] = 5
    good = np.flatnonzero(status == 0)

    names = [name for name in EVENT_SCHEMA.names if name != "hit_time_gmt"]
    builtin = [WEBLOG_COLUMNS.index(n) for n in names]
    present = [n for n in declared if n in declared_slots]
    gathered = [*builtin, *(declared_slots[n] for n in present)]
    # Excluded and anonymous rows are told from the fields' bytes, so only the landing rows'
    # fields are copied (filtering gathered columns cost ~3% of a file); the same sweep counts
    # the bytes the gather will need (over the valid rows: room for the landing ones).
    kept, anonymous_rows, totals = line_flags(
        buf, starts, ends, good, WEBLOG_COLUMNS.index("exclude_hit"), ord("0"),
        WEBLOG_COLUMNS.index("customer_id"), gathered)
    excluded = ~kept
    anonymous = int(np.count_nonzero(anonymous_rows))
    rows = good[~excluded]
    hit_times = times[rows]
    # the declared columns' fields in the same sweep over the lines
    fields, strings, bad_utf8 = gather_fields(buf, starts, ends, rows, builtin,
                                              gathered[len(builtin):], totals)
    table = pa.table({
        "hit_time_gmt": pa.array(hit_times, pa.int64()),
        **dict(zip(names, fields)),
    })
    column_bad: dict[str, int] = {}
    if declared:
        typed = _declared_columns(rows.size, declared, dict(zip(present, strings)),
                                  dict(zip(present, bad_utf8)), column_bad)
        for name, array in typed.items():
            table = table.append_column(pa.field(name, array.type), array)
    table = table.append_column(
        "event_date", pa.array(hit_times // 86400, pa.int32()).cast(pa.date32())
    )

    bad_rows = np.flatnonzero(status > 0)
    bad_counts = {reason: int(np.count_nonzero(status == i + 1))
                  for i, reason in enumerate(BAD_ROW_REASONS)}
    quarantine = _quarantine_table(raw, scanned, bad_rows, status, max_late_days)
    return ParsedFile(
        events=table,
        quarantine=quarantine,
        lines=n,
        excluded=int(excluded.sum()),
        anonymous=anonymous,
        late=int(np.count_nonzero(times[good] < drop_start)),
        md5=md5,
        bad=bad_counts,
        column_bad=column_bad,
        columns_missing=[name for name in declared if name not in declared_slots],
    )


def _declared_columns(n: int, declared: dict[str, str], raw_of: dict[str, pa.Array],
                      bad_utf8: dict[str, int], column_bad: dict[str, int]
                      ) -> dict[str, pa.Array]:
    """The declared columns of the ``n`` landed rows, typed from their gathered fields
    (``raw_of``; a column the header lacks is all null); bad values counted in
    ``column_bad`` (``bad_utf8``: fields that were not valid UTF-8, included)."""
    out = {}
    for name, kind in declared.items():
        if name not in raw_of:
            out[name] = pa.nulls(n, COLUMN_ARROW_TYPES[kind])
            column_bad[name] = 0
            continue
        out[name], bad = typed_column(raw_of[name], kind)
        column_bad[name] = bad + bad_utf8[name]
    return out


def _quarantine_table(raw: RawFile, scanned: Scanned, rows: np.ndarray, status: np.ndarray,
                      max_late_days: int) -> pa.Table:
    nfields, times = scanned.nfields, scanned.ints
    details = []
    raw_lines = []
    for line in rows:
        reason = BAD_ROW_REASONS[status[line] - 1]
        if reason == "field_count":
            detail = f"expected {len(raw.columns)} tab-separated fields, found {nfields[line]}"
        elif reason == "bad_utf8":
            detail = "a field the store reads is not valid UTF-8"
        elif reason == "bad_time":
            detail = "hit_time_gmt is not an integer Unix time on or after 2000-01-01"
        elif reason == "future_time":
            detail = (f"hit_time_gmt {times[line]} is after the end of the drop's day "
                      f"{raw.drop_date} (UTC)")
        elif reason == "too_old":
            day = dt.datetime.fromtimestamp(int(times[line]), dt.UTC).date()
            detail = (f"hit_time_gmt {times[line]} ({day}) is more than {max_late_days} days "
                      f"before the drop's day {raw.drop_date} (max_late_days)")
        else:
            detail = "post_product_list has an entry that is not category;product_id;quantity;price"
        details.append(detail)
        raw_lines.append(scanned.raw_line(line))  # CRLF: the line as LF
    return pa.table(
        {
            "source_file": pa.array([raw.url] * len(rows), pa.string()),
            "line_number": pa.array(rows + 1, pa.int64()),
            "reason": pa.array([BAD_ROW_REASONS[status[r] - 1] for r in rows], pa.string()),
            "detail": pa.array(details, pa.string()),
            "raw_line": pa.array(raw_lines, pa.binary()),
        },
        schema=QUARANTINE_SCHEMA,
    )
