"""Single-pass byte scanner for wide, unquoted, tab-separated lines (numba-compiled).

pyarrow's CSV reader tokenizes all 1,000+ fields of every line even when asked for seven; this
scanner walks the decompressed bytes once, keeps only the wanted fields, counts fields per
line, parses the hit time and checks the product list as their fields end, and flags lines
holding non-ASCII bytes in a wanted field so only those few are UTF-8 validated. Everything
else (typing, validation) is vectorised numpy/Arrow.

It works on the file as it is decompressed, one piece of about a megabyte at a time
(:func:`scan_pieces`): each piece is scanned while it is still in the CPU cache, and only the
wanted fields are copied out (into one compact buffer), with a copy of every line that may be
quarantined. A whole decompressed file (~120 MB on a 1,000-column drop) written to memory and
read back cost two workers more memory bandwidth than the machine has (docs/ingest.md, issue
#27).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = [
    "Scanned",
    "gather_columns",
    "gather_fields",
    "gather_strings",
    "line_flags",
    "number_fields",
    "products_ok",
    "scan_buffer",
    "scan_pieces",
    "valid_utf8_rows",
    "warm_up",
]


_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_BLOCK = 64  # bytes the scan compares at a time (one bit each in a uint64 mask)
_SLACK = 16  # room past a field's copy in ``compact`` (it is moved 16 bytes at a time)
_NARROW = 2**31  # a gathered column of fewer bytes has int32 offsets (Arrow's string type)
_INT32_BOUNDS = 2**31 - 1  # field bounds in ``compact`` up to this are int32, past it int64

# positions in the kernel's ``state`` array (kept between pieces)
_LINES, _CPOS, _NRAW, _RPOS, _FULL = 0, 1, 2, 3, 4


def _block_mask(byte: int):
    """A compiled function ``(buf, at) -> uint64`` whose bit k is set when ``buf[at + k]``
    (k < 64) is ``byte``, or, for ``byte`` 128, when it is >= 0x80.

    Written in LLVM's own terms (64 bytes loaded as ``<64 x i8>``, compared to ``<64 x i1>``,
    bitcast to ``i64``), which LLVM lowers to the machine's vector compare and mask move:
    AVX-512 ``vpcmpeqb`` into a mask register, or ``vpcmpeqb`` and ``vpmovmskb`` on AVX2 and
    SSE2 (numba's own loops did not vectorise this way: 4x slower, measured). ``buf[at:at +
    64]`` must be in bounds.
    """

    @intrinsic
    def mask(typingctx, buf, at):  # pragma: no cover - compiled
        if not (isinstance(buf, types.Array) and buf.layout == "C" and buf.ndim == 1
                and buf.dtype == types.uint8):
            return None  # contiguous bytes only: the 64 are loaded as one vector

        def codegen(context, builder, signature, args):
            array = context.make_array(signature.args[0])(context, builder, args[0])
            vector = ir.VectorType(ir.IntType(8), _BLOCK)
            where = builder.bitcast(builder.gep(array.data, [args[1]]), vector.as_pointer())
            block = builder.load(where, align=1)
            if byte == 128:
                hits = builder.icmp_signed("<", block, ir.Constant(vector, [0] * _BLOCK))
            else:
                hits = builder.icmp_unsigned("==", block, ir.Constant(vector, [byte] * _BLOCK))
            return builder.bitcast(hits, ir.IntType(64))

        return types.uint64(buf, types.intp), codegen

    return mask


_tab_mask = _block_mask(9)
_newline_mask = _block_mask(10)
_high_mask = _block_mask(128)


@intrinsic
def _copy16(typingctx, dst, d, src, s):  # pragma: no cover - compiled
    """Copy the 16 bytes ``src[s:s + 16]`` to ``dst[d:d + 16]`` (one unaligned vector load and
    store; both ranges must be in bounds)."""

    def codegen(context, builder, signature, args):
        out = context.make_array(signature.args[0])(context, builder, args[0])
        into = context.make_array(signature.args[2])(context, builder, args[2])
        vector = ir.VectorType(ir.IntType(8), 16)
        source = builder.bitcast(builder.gep(into.data, [args[3]]), vector.as_pointer())
        target = builder.bitcast(builder.gep(out.data, [args[1]]), vector.as_pointer())
        builder.store(builder.load(source, align=1), target, align=1)
        return context.get_dummy_value()

    return types.none(dst, types.intp, src, types.intp), codegen


@njit(inline="always")
def _copy_field(dst, d, src, s, n, src_end, dst_end):  # pragma: no cover - compiled
    """Copy ``src[s:s + n]`` to ``dst[d:d + n]``, 16 bytes at a time when ``src`` has the
    bytes before ``src_end`` and ``dst`` the room before ``dst_end`` (a field is short: one
    vector move instead of a memmove call, ~20% of the scan). It may write up to 15 bytes
    past ``d + n`` (never past ``dst_end``): only where later copies go."""
    rounded = (n + 15) & ~15
    if s + rounded <= src_end and d + rounded <= dst_end:
        k = 0
        while k < n:
            _copy16(dst, d + k, src, s + k)
            k += 16
    else:
        dst[d:d + n] = src[s:s + n]


def _fast_pdep() -> bool:
    """Whether numba compiles for this machine's CPU and it has a fast ``pdep`` (BMI2; AMD
    before Zen 3 runs it in microcode, ~250 cycles: slower than the loop it replaces)."""
    import llvmlite.binding as llvm
    from numba.core import config

    if config.CPU_NAME is not None:  # a cache built for other machines: no CPU-specific code
        return False
    return bool(llvm.get_host_cpu_features().get("bmi2")) and \
        llvm.get_host_cpu_name() not in ("znver1", "znver2", "bdver4", "generic")


@intrinsic
def _pdep_nth(typingctx, x, n):  # pragma: no cover - compiled
    """The index of set bit ``n`` (from 0, lowest first) of ``x``: ``pdep`` deposits the bit
    ``1 << n`` at the place of ``x``'s n-th set bit, ``cttz`` reads where."""

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        pdep = builder.module.declare_intrinsic("llvm.x86.bmi.pdep.64",
                                                fnty=ir.FunctionType(i64, [i64, i64]))
        deposited = builder.call(pdep, [builder.shl(ir.Constant(i64, 1), args[1]), args[0]])
        return builder.cttz(deposited, ir.Constant(ir.IntType(1), 0))

    return types.int64(types.uint64, types.int64), codegen


@njit(inline="always")
def _loop_nth(x, n):  # pragma: no cover - compiled
    """As :func:`_pdep_nth`, by clearing the ``n`` lowest set bits first."""
    for _ in range(n):
        x &= x - _ONE
    return _lowest_bit(x)


@intrinsic
def _popcount(typingctx, x):  # pragma: no cover - compiled
    """The set bits of a uint64, as int64 (LLVM's ctpop: one popcnt instruction)."""

    def codegen(context, builder, signature, args):
        ctpop = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(ctpop, [args[0]])

    return types.int64(types.uint64), codegen


@intrinsic
def _lowest_bit(typingctx, x):  # pragma: no cover - compiled
    """The index of the lowest set bit of a uint64 (64 for 0), as int64 (LLVM's cttz)."""

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return types.int64(types.uint64), codegen


#: the tab that starts a wanted field, found in a block's tab mask: ``pdep`` where it is fast
#: (one file's scan: ~10% less CPU), else a loop (the choice is per machine, as numba's cache)
_nth_bit = _pdep_nth if _fast_pdep() else _loop_nth


@njit(nogil=True, cache=True)
def _parse_int(buf, s, e):  # pragma: no cover - compiled
    """(value, ok): a decimal integer of at most 18 digits, optional leading minus."""
    if s >= e:
        return 0, False
    neg = buf[s] == 45
    i = s + 1 if neg else s
    if i >= e or e - i > 18:
        return 0, False
    v = 0
    while i < e:
        c = buf[i]
        if c < 48 or c > 57:
            return 0, False
        v = v * 10 + (c - 48)
        i += 1
    return (-v if neg else v), True


@njit(inline="always")
def _digits(buf, i, e):  # pragma: no cover - compiled
    """The first index at or after ``i`` (before ``e``) that is not an ASCII digit."""
    while i < e and 48 <= buf[i] <= 57:
        i += 1
    return i


@njit(nogil=True, cache=True)
def _entry_ok(buf, i, e):  # pragma: no cover - compiled
    """Whether ``buf[i:e]`` (non-empty, no comma) matches parse.py's product entry pattern
    ``[^;]*;[^;]+;(-?[0-9]+)?;(-?[0-9]+(\\.[0-9]*)?|-?\\.[0-9]+)?(;.*)?`` (each part is
    decided by its first byte, so one forward pass decides the whole match)."""
    while i < e and buf[i] != 59:  # category: anything up to the first ';'
        i += 1
    if i >= e:
        return False
    i += 1
    j = i
    while i < e and buf[i] != 59:  # product id: at least one byte
        i += 1
    if i == j or i >= e:
        return False
    i += 1
    j = i  # quantity: empty or -?[0-9]+
    if i < e and buf[i] == 45:
        i += 1
    d = _digits(buf, i, e)
    if d == i and i != j:  # a lone '-'
        return False
    i = d
    if i >= e or buf[i] != 59:
        return False
    i += 1
    neg = i < e and buf[i] == 45  # price: empty, -?[0-9]+(\.[0-9]*)? or -?\.[0-9]+
    if neg:
        i += 1
    d = _digits(buf, i, e)
    whole = d - i
    i = d
    if i < e and buf[i] == 46:
        d = _digits(buf, i + 1, e)
        if whole == 0 and d == i + 1:  # "." or "-." alone
            return False
        i = d
    elif whole == 0 and neg:
        return False
    return i == e or buf[i] == 59  # the rest, if any, starts with ';' and is ignored


@njit(nogil=True, cache=True)
def _products_ok(buf, s, e):  # pragma: no cover - compiled
    """Whether every non-empty comma-separated entry of the field ``buf[s:e]`` is a product
    entry; an empty field and ``\\N`` (null) are fine."""
    if e - s == 2 and buf[s] == 92 and buf[s + 1] == 78:
        return True
    i = s
    while i < e:
        j = i
        while j < e and buf[j] != 44:
            j += 1
        if j > i and not _entry_ok(buf, i, j):
            return False
        i = j + 1
    return True


def products_ok(field: bytes) -> bool:
    """Whether a ``post_product_list`` field is well formed (the scan's check, for tests)."""
    buf = np.frombuffer(field, dtype=np.uint8)
    return bool(_products_ok(buf, 0, buf.size))


@njit(nogil=True, cache=True)
def _end_line(buf, lstart, lend, line, col, line_hi, compact, ncols, int_slot, prod_slot, t_lo,
              t_hi, starts, ends, nfields, nonascii, ints, ints_ok, prod_bad, raw, raw_offsets,
              raw_lines, nraw, rpos):  # pragma: no cover - compiled
    """Record line ``line`` (``buf[lstart:lend]``, ``col`` fields) once it has ended; returns
    the new ``nraw, rpos`` (its raw bytes are kept when it may be quarantined)."""
    nfields[line] = col
    nonascii[line] = line_hi
    keep_raw = col != ncols or line_hi
    if int_slot >= 0:
        v, ok = _parse_int(compact, starts[line, int_slot], ends[line, int_slot])
        ints[line] = v
        ints_ok[line] = ok
        if not ok or v < t_lo or v >= t_hi:
            keep_raw = True
    if prod_slot >= 0 and col == ncols:
        bad = not _products_ok(compact, starts[line, prod_slot], ends[line, prod_slot])
        prod_bad[line] = bad
        keep_raw = keep_raw or bad
    if keep_raw:
        raw[rpos:rpos + lend - lstart] = buf[lstart:lend]
        rpos += lend - lstart
        raw_lines[nraw] = line
        nraw += 1
        raw_offsets[nraw] = rpos
    return nraw, rpos


@njit(nogil=True, cache=True)
def _scan_piece(buf, begin, size, final, slot_of_col, next_wanted, int_slot, prod_slot,
                t_lo, t_hi, starts, ends, nfields, nonascii, ints, ints_ok, prod_bad,
                compact, raw, raw_offsets, raw_lines, state):  # pragma: no cover - compiled
    """Scan the complete lines of ``buf[begin:size]`` (``final``: the last one may lack its
    newline).

    Per line it records the field count; copies each wanted field into ``compact`` (its
    bounds there in ``starts``/``ends``); parses field ``int_slot`` (-1: none) as an integer
    while its bytes are in cache; checks field ``prod_slot`` (-1: none) as a product list;
    and copies the whole line into ``raw`` when it may be quarantined (wrong field count, an
    integer that is not one or outside ``[t_lo, t_hi)``, a non-ASCII byte in a wanted field,
    a bad product list), so the quarantine can keep it after the piece is gone.

    Wide lines are mostly fields nobody asked for, so the scan moves 64 bytes at a time: one
    vector compare gives the block's tabs and newlines as bit masks (:func:`_tab_mask`,
    :func:`_newline_mask`), a block with no newline whose tabs do not reach the next wanted
    column costs one popcount, and the bit of the tab that starts a wanted field (or of the
    tab or newline that ends one) is found in the mask without reading its bytes. Each block
    is compared once: the masks are held while the fields in the block are walked, the bits
    already passed cleared.

    Returns the offset of the first line not scanned: the incomplete last line of a piece, or
    the line that found an output full (then ``state[_FULL]`` is 1 and the caller grows it).
    ``compact`` must have room for ``size - begin + _SLACK`` more bytes, ``raw`` for
    ``size - begin``.
    """
    ncols = slot_of_col.size
    line = state[_LINES]
    cpos = state[_CPOS]
    nraw = state[_NRAW]
    rpos = state[_RPOS]
    if line >= nfields.size or nraw >= raw_lines.size:
        state[_FULL] = 1
        return begin
    lstart = begin  # the current line's first byte
    lcpos = cpos  # where its next wanted field goes in ``compact``
    col = 0
    fstart = begin
    hi = False
    line_hi = False
    i = begin
    blocks_end = size - _BLOCK  # a block read at i needs i <= blocks_end
    # The block held: its tab and newline masks (``tm``, ``nm``) of ``buf[b:b + 64]``, and its
    # high-byte mask ``hm`` once a wanted field needs it (``hb == b``). Each block is compared
    # once: the fields that start and end in it are found in the held masks, the bits before
    # ``i`` cleared (``sel``), and the next block is read where this one ends. (Comparing
    # again from each wanted field's start and end compared the bytes around every wanted
    # field two or three times: ~10% of the scan, issue #27's sixth round.)
    b = begin - _BLOCK  # no block held yet (i - b >= _BLOCK)
    hb = b
    tm = np.uint64(0)
    nm = np.uint64(0)
    hm = np.uint64(0)
    # One loop: the masks find the tab that starts the next wanted field, or the tab or
    # newline that ends this one, and the loop jumps straight to it; a tab that ends a wanted
    # field is handled there, and only a line's end (and a piece's last few bytes) takes the
    # byte branch below. (A loop per line instead of one loop ran ~40% slower: measured with
    # 8-byte words.)
    while i < size:
        if i - b >= _BLOCK and i <= blocks_end:  # past the block held: read the next one
            b = i
            tm = _tab_mask(buf, b)
            nm = _newline_mask(buf, b)
        if i - b < _BLOCK:
            sel = _ALL << np.uint64(i - b)  # the block's bits from i on
            if col < ncols and slot_of_col[col] >= 0:  # in a wanted field: find its end
                stop = (tm | nm) & sel
                while stop == 0:  # the rest of the block is inside the field
                    if hb != b:
                        hm = _high_mask(buf, b)
                        hb = b
                    if hm & sel != 0:
                        hi = True
                    i = b + _BLOCK
                    if i > blocks_end:
                        break
                    b = i
                    sel = _ALL
                    tm = _tab_mask(buf, b)
                    nm = _newline_mask(buf, b)
                    stop = tm | nm
                if stop == 0:  # too near the end for a block: byte by byte
                    if i >= size:
                        break
                else:
                    at = _lowest_bit(stop)
                    if hb != b:
                        hm = _high_mask(buf, b)
                        hb = b
                    if (hm & sel & ((_ONE << np.uint64(at)) - _ONE)) != 0:
                        hi = True
                    i = b + at
                    if (tm >> np.uint64(at)) & _ONE:  # a tab ends the field: no byte branch
                        slot = slot_of_col[col]
                        starts[line, slot] = lcpos
                        _copy_field(compact, lcpos, buf, fstart, i - fstart, size, compact.size)
                        lcpos += i - fstart
                        ends[line, slot] = lcpos
                        if hi:
                            line_hi = True
                        hi = False
                        col += 1
                        i += 1
                        fstart = i
                        continue
                    # a newline: the byte branch ends the field and the line
            else:  # in an unwanted field: count tabs up to the next wanted field
                limit = next_wanted[min(col + 1, ncols)]
                tabs = tm & sel
                newlines = nm & sel
                while newlines == 0:  # the rest of the block is unwanted fields
                    count = _popcount(tabs)
                    if col + count >= limit:
                        break
                    col += count
                    i = b + _BLOCK
                    if i > blocks_end:
                        break
                    b = i
                    tm = _tab_mask(buf, b)
                    nm = _newline_mask(buf, b)
                    tabs = tm
                    newlines = nm
                if i - b >= _BLOCK:  # too near the end for a block: byte by byte
                    if i >= size:
                        break
                else:
                    if newlines != 0:  # only the tabs before the line's end count
                        tabs &= (newlines & (~newlines + _ONE)) - _ONE
                    count = _popcount(tabs)
                    if col + count >= limit:  # the wanted field starts after a tab here
                        fstart = b + _nth_bit(tabs, limit - col - 1) + 1
                        col = limit
                        hi = False
                        i = fstart
                        at = fstart - b
                        if at < _BLOCK and (tm >> np.uint64(at)) & _ONE:
                            # an empty wanted field (a tab next, seen in the held mask):
                            # recorded here, with no pass through the wanted-field branch
                            # (sparse feeds' declared columns are mostly empty: ~6 ms a file
                            # of 100 k lines with ten of them, measured)
                            slot = slot_of_col[col]
                            starts[line, slot] = lcpos
                            ends[line, slot] = lcpos
                            col += 1
                            i += 1
                            fstart = i
                        continue
                    col += count
                    i = b + _lowest_bit(newlines)  # the byte branch ends the line
        # the byte branch: a field's tab or newline, or any byte of a piece's last block
        c = buf[i]
        if c == 9 or c == 10:
            if col < ncols:
                slot = slot_of_col[col]
                if slot >= 0:
                    # CRLF: the \r before a newline ends the line, it is not data
                    end = i - 1 if c == 10 and i > fstart and buf[i - 1] == 13 else i
                    starts[line, slot] = lcpos
                    _copy_field(compact, lcpos, buf, fstart, end - fstart, size, compact.size)
                    lcpos += end - fstart
                    ends[line, slot] = lcpos
                    if hi:
                        line_hi = True
            hi = False
            col += 1
            fstart = i + 1
            if c == 10:
                nraw, rpos = _end_line(buf, lstart, i, line, col, line_hi, compact, ncols,
                                       int_slot, prod_slot, t_lo, t_hi, starts, ends,
                                       nfields, nonascii, ints, ints_ok, prod_bad, raw,
                                       raw_offsets, raw_lines, nraw, rpos)
                line += 1
                cpos = lcpos
                lstart = i + 1
                col = 0
                line_hi = False
                if line >= nfields.size or nraw >= raw_lines.size:  # an output is full
                    state[_FULL] = 1
                    break
        elif c >= 128:
            hi = True
        i += 1
    if final and lstart < size and not state[_FULL]:
        # The last line of the file has no newline: its last field ends here, as above. Spelled
        # out again, not shared through a helper: an inlined helper for the field's copy made
        # the scan 87 ms instead of 78 ms per file (measured, as in every version before).
        if col < ncols:
            slot = slot_of_col[col]
            if slot >= 0:
                end = size - 1 if size > fstart and buf[size - 1] == 13 else size
                starts[line, slot] = lcpos
                compact[lcpos:lcpos + end - fstart] = buf[fstart:end]
                lcpos += end - fstart
                ends[line, slot] = lcpos
                if hi:
                    line_hi = True
        nraw, rpos = _end_line(buf, lstart, size, line, col + 1, line_hi, compact, ncols,
                               int_slot, prod_slot, t_lo, t_hi, starts, ends, nfields,
                               nonascii, ints, ints_ok, prod_bad, raw, raw_offsets, raw_lines,
                               nraw, rpos)
        line += 1
        cpos = lcpos
        lstart = size
    state[_LINES] = line
    state[_CPOS] = cpos
    state[_NRAW] = nraw
    state[_RPOS] = rpos
    return lstart


@dataclasses.dataclass
class Scanned:
    """What :func:`scan_pieces` found in a file.

    ``buf`` holds only the wanted fields; ``starts``/``ends`` (lines x wanted fields) are
    their bounds in it, so the gather functions below take ``buf, starts, ends`` as they are.
    Lines that may be quarantined keep their raw bytes: :meth:`raw_line`.
    """

    buf: np.ndarray  # uint8: the wanted fields of every line, back to back
    starts: np.ndarray  # int32 (int64 past 2 GiB of wanted fields): lines x wanted fields
    ends: np.ndarray
    nfields: np.ndarray  # int64 per line: fields found
    nonascii: np.ndarray  # bool per line: a byte >= 0x80 in a wanted field
    ints: np.ndarray  # int64 per line: field ``int_slot`` parsed (0 where not ``ints_ok``)
    ints_ok: np.ndarray  # bool per line
    prod_bad: np.ndarray  # bool per line: field ``prod_slot`` is not a product list
    raw: np.ndarray  # uint8: the kept raw lines, back to back (no newline)
    raw_offsets: np.ndarray  # int64, one more than ``raw_lines``
    raw_lines: np.ndarray  # int64: which lines ``raw`` holds, ascending

    @property
    def lines(self) -> int:
        """How many lines the file has."""
        return int(self.nfields.size)

    def raw_line(self, line: int) -> bytes:
        """The bytes of ``line`` as delivered (no newline, no ``\\r`` of a CRLF ending).

        Args:
            line: a line the scan kept (it may be quarantined); others raise KeyError.

        Returns:
            The line's bytes.
        """
        at = int(np.searchsorted(self.raw_lines, line))
        if at >= self.raw_lines.size or self.raw_lines[at] != line:
            raise KeyError(f"line {line} was not kept by the scan")
        text = self.raw[self.raw_offsets[at]:self.raw_offsets[at + 1]].tobytes()
        return text[:-1] if text.endswith(b"\r") else text


@njit(nogil=True, cache=True)
def _first_newline(buf):  # pragma: no cover - compiled
    """The index of the first ``\n`` in ``buf``, -1 if there is none."""
    for i in range(buf.size):
        if buf[i] == 10:
            return i
    return -1


def _grown(array: np.ndarray, rows: int, zeros: bool = True) -> np.ndarray:
    """``array`` with room for ``rows`` rows (zeros after the old ones, or garbage)."""
    out = (np.zeros if zeros else np.empty)((rows,) + array.shape[1:], dtype=array.dtype)
    out[:array.shape[0]] = array
    return out


def scan_pieces(pieces: Iterable[bytes | np.ndarray], slot_of_col: np.ndarray,
                int_slot: int = -1, prod_slot: int = -1,
                time_range: tuple[int, int] = (np.iinfo(np.int64).min, np.iinfo(np.int64).max),
                size_hint: int = 0, min_lines: int = 4096) -> Scanned:
    """Scan a file given as consecutive pieces of its bytes (cut anywhere, even mid-line).

    Lines end with LF or CRLF (both in one file too): the ``\\r`` of a CRLF is not part of the
    last field; a last line without a newline is a line.

    Args:
        pieces: the file's bytes in order, e.g. as a gzip stream decompresses.
        slot_of_col: output slot of each file column, or -1 (the field is skipped).
        int_slot: the wanted field parsed as an integer (the hit time), -1 for none.
        prod_slot: the wanted field checked as a product list, -1 for none.
        time_range: a line whose ``int_slot`` value is outside ``[lo, hi)`` (or not an
            integer) keeps its raw bytes.
        size_hint: the file's expected size in bytes (e.g. from the gzip trailer), to size
            the outputs once; 0 if unknown.
        min_lines: the first output size in lines (tests use a tiny one to exercise growth).

    Returns:
        The :class:`Scanned` file.
    """
    slot_of_col = np.ascontiguousarray(slot_of_col, dtype=np.int64)
    k = int(np.count_nonzero(slot_of_col >= 0))
    # next_wanted[c]: the first wanted column >= c, c = 0 .. ncols (huge when there is none)
    none_left = np.iinfo(np.int64).max // 2
    positions = np.append(np.where(slot_of_col >= 0, np.arange(slot_of_col.size), none_left),
                          none_left)
    next_wanted = np.minimum.accumulate(positions[::-1])[::-1].astype(np.int64)
    t_lo, t_hi = (int(t) for t in time_range)

    lines_cap = max(min_lines, 1)
    # int32 field bounds while ``compact`` is below 2 GiB (every file we have seen: half the
    # memory traffic of int64 for the scan and every sweep after it, ~4 ms a file of 100 k
    # lines with sixteen wanted fields), int64 from the piece that could pass it
    starts = np.zeros((lines_cap, k), np.int32)
    ends = np.zeros((lines_cap, k), np.int32)
    nfields = np.zeros(lines_cap, np.int64)
    nonascii = np.zeros(lines_cap, np.bool_)
    ints = np.zeros(lines_cap, np.int64)
    ints_ok = np.zeros(lines_cap, np.bool_)
    prod_bad = np.zeros(lines_cap, np.bool_)
    raw_lines = np.zeros(64, np.int64)
    raw_offsets = np.zeros(65, np.int64)
    compact = np.empty(1 << 20, np.uint8)
    raw = np.empty(1 << 16, np.uint8)
    state = np.zeros(5, np.int64)
    seen = 0  # bytes scanned so far (to extrapolate the line count)

    def scan(buf: np.ndarray, begin: int, final: bool) -> int:
        nonlocal starts, ends, nfields, nonascii, ints, ints_ok, prod_bad, raw_lines
        nonlocal raw_offsets, compact, raw, seen
        size = buf.size
        # compact and raw copies of these lines fit in what is left of each
        if starts.dtype == np.int32 and state[_CPOS] + size - begin + _SLACK > _INT32_BOUNDS:
            starts, ends = starts.astype(np.int64), ends.astype(np.int64)
        if compact.size - state[_CPOS] < size - begin + _SLACK:
            compact = _grown(compact[:state[_CPOS]],
                             max(2 * compact.size, int(state[_CPOS]) + size + _SLACK),
                             zeros=False)
        if raw.size - state[_RPOS] < size - begin:
            raw = _grown(raw[:state[_RPOS]], max(2 * raw.size, int(state[_RPOS]) + size),
                         zeros=False)
        first = begin
        while True:
            state[_FULL] = 0
            begin = _scan_piece(buf, begin, size, final, slot_of_col, next_wanted,
                                int_slot, prod_slot, t_lo, t_hi, starts, ends, nfields,
                                nonascii, ints, ints_ok, prod_bad, compact, raw, raw_offsets,
                                raw_lines, state)
            if not state[_FULL]:
                seen += begin - first
                return begin
            if state[_LINES] >= nfields.size:  # more lines than guessed: extrapolate
                done = max(seen + begin - first, 1)
                guess = int(state[_LINES] * max(size_hint, 1) / done * 1.05) + 1024
                rows = max(2 * nfields.size, guess)
                starts, ends = _grown(starts, rows), _grown(ends, rows)
                nfields, nonascii = _grown(nfields, rows), _grown(nonascii, rows)
                ints, ints_ok, prod_bad = _grown(ints, rows), _grown(ints_ok, rows), \
                    _grown(prod_bad, rows)
            if state[_NRAW] >= raw_lines.size:
                more = 2 * raw_lines.size
                raw_lines, raw_offsets = _grown(raw_lines, more), _grown(raw_offsets, more + 1)

    # Each piece is scanned where it lies; only a line cut by a piece boundary is copied (its
    # head, held from the pieces before, plus the piece's bytes up to its first newline).
    held = np.empty(0, np.uint8)
    for piece in pieces:
        piece = np.frombuffer(piece, np.uint8) if not isinstance(piece, np.ndarray) else piece
        at = 0
        if held.size:
            newline = _first_newline(piece)
            if newline < 0:
                held = np.concatenate([held, piece])
                continue
            line = np.concatenate([held, piece[:newline + 1]])
            scan(line, 0, False)
            at = newline + 1
        held = piece[scan(piece, at, False):].copy()
    scan(held, 0, True)
    n = int(state[_LINES])
    nraw = int(state[_NRAW])
    return Scanned(buf=compact[:state[_CPOS]], starts=starts[:n], ends=ends[:n],
                   nfields=nfields[:n], nonascii=nonascii[:n], ints=ints[:n],
                   ints_ok=ints_ok[:n], prod_bad=prod_bad[:n], raw=raw[:state[_RPOS]],
                   raw_offsets=raw_offsets[:nraw + 1], raw_lines=raw_lines[:nraw])


def scan_buffer(buf: bytes | np.ndarray, slot_of_col: np.ndarray, int_slot: int = -1,
                prod_slot: int = -1, piece_bytes: int = 1 << 20, **kwargs) -> Scanned:
    """:func:`scan_pieces` over a whole buffer, cut into pieces of ``piece_bytes``.

    Args:
        buf: the file's bytes.
        slot_of_col, int_slot, prod_slot: as :func:`scan_pieces`.
        piece_bytes: the piece size (tests cut small ones).
        kwargs: more :func:`scan_pieces` arguments.

    Returns:
        The :class:`Scanned` file.
    """
    view = np.frombuffer(buf, np.uint8) if not isinstance(buf, np.ndarray) else buf
    pieces = (view[i:i + piece_bytes] for i in range(0, view.size, max(piece_bytes, 1)))
    return scan_pieces(pieces, slot_of_col, int_slot, prod_slot, size_hint=view.size, **kwargs)


@njit(nogil=True, cache=True)
def _utf8_ok(buf, s, e):  # pragma: no cover - compiled
    i = s
    while i < e:
        c = buf[i]
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            n = 1
        elif 0xE0 <= c <= 0xEF:
            n = 2
        elif 0xF0 <= c <= 0xF4:
            n = 3
        else:
            return False
        if i + n >= e:  # truncated sequence
            return False
        c1 = buf[i + 1]
        # overlong / surrogate / out-of-range checks on the second byte
        if c == 0xE0 and c1 < 0xA0:
            return False
        if c == 0xED and c1 > 0x9F:
            return False
        if c == 0xF0 and c1 < 0x90:
            return False
        if c == 0xF4 and c1 > 0x8F:
            return False
        for j in range(1, n + 1):
            if (buf[i + j] & 0xC0) != 0x80:
                return False
        i += n + 1
    return True


@njit(nogil=True, cache=True)
def _valid_utf8_rows(buf, starts, ends, rows, nslots):  # pragma: no cover - compiled
    out = np.ones(rows.size, np.bool_)
    for r in range(rows.size):
        line = rows[r]
        for f in range(nslots):
            if not _utf8_ok(buf, starts[line, f], ends[line, f]):
                out[r] = False
                break
    return out


def valid_utf8_rows(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                    rows: np.ndarray, nslots: int | None = None) -> np.ndarray:
    """For each line in ``rows``, whether its first ``nslots`` wanted fields (default all)
    are valid UTF-8 (declared columns, in the slots after, are checked per value instead:
    a bad one is null, the row stays)."""
    n = starts.shape[1] if nslots is None else nslots
    return _valid_utf8_rows(buf, starts, ends, rows.astype(np.int64), n)


@njit(nogil=True, cache=True)
def _gather_totals(starts, ends, rows, slots):  # pragma: no cover - compiled
    """The bytes of fields ``slots`` over lines ``rows`` (nulls included: an upper bound)."""
    k = slots.size
    totals = np.zeros(k, np.int64)
    for r in range(rows.size):
        line = rows[r]
        for j in range(k):
            totals[j] += ends[line, slots[j]] - starts[line, slots[j]]
    return totals


@njit(nogil=True, cache=True)
def _gather_many(buf, starts, ends, rows, slots, check_utf8, bases, offsets,
                 bits):  # pragma: no cover - compiled
    """Copy fields ``slots`` of lines ``rows`` out of ``buf`` in one forward sweep over the
    lines (row-major): each line of the cold 30 MB buffer comes from memory once, not once per
    field. Field j goes to the returned data array from ``bases[j]`` (room from
    :func:`_gather_totals`), its Arrow offsets to ``offsets[j]`` (int32 where every column
    fits, else int64: the caller's choice) and its validity to the bits ``bits[j]`` (zeroed:
    a present field's bit is set), so the Arrow arrays are these buffers as they are. For the
    slots ``check_utf8`` marks (declared columns), a field that is not valid UTF-8 is left
    out (null) so its row still lands. Returns the data, and per slot the nulls and how many
    of them were not valid UTF-8."""
    n = rows.size
    k = slots.size
    data = np.empty(max(bases[k], 1) + _SLACK, np.uint8)
    nulls = np.zeros(k, np.int64)
    bad = np.zeros(k, np.int64)
    pos = bases[:k].copy()
    for r in range(n):
        line = rows[r]
        byte = r >> 3
        bit = np.uint8(1 << (r & 7))
        for j in range(k):
            s = starts[line, slots[j]]
            e = ends[line, slots[j]]
            length = e - s
            if length == 0 or (length == 2 and buf[s] == 92 and buf[s + 1] == 78):  # "", \N
                nulls[j] += 1
            elif check_utf8[j] and not _utf8_ok(buf, s, e):
                nulls[j] += 1
                bad[j] += 1
            else:
                # (never into the next field's column, written before: rows go first)
                _copy_field(data, pos[j], buf, s, length, buf.size, bases[j + 1])
                pos[j] += length
                bits[j, byte] |= bit
            offsets[j, r + 1] = pos[j] - bases[j]
    return data, nulls, bad


def _gather(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray,
            slots: list[int], check_utf8: bool | list[bool],
            totals: np.ndarray | None = None) -> tuple[list[pa.Array], np.ndarray]:
    """:func:`_gather_many` as Arrow string arrays (large ones past 2 GiB), and per slot how
    many fields were not valid UTF-8 (``check_utf8``: for every slot, or per slot).
    ``totals``: per slot, the bytes of its fields over ``rows`` or more lines (each once), as
    :func:`line_flags` counts them; None: counted here."""
    rows = np.asarray(rows, dtype=np.int64)
    n = rows.size
    check = np.zeros(len(slots), np.bool_)
    check[:] = check_utf8
    if totals is None:
        totals = _gather_totals(starts, ends, rows, np.asarray(slots, dtype=np.int64))
    # A slot whose fields are all empty is all null, with no sweep: the usual declared
    # column of a sparse feed, which fills a few of its 1,000 columns on a few hits.
    filled = np.flatnonzero(totals)
    bases = np.zeros(filled.size + 1, np.int64)
    np.cumsum(totals[filled], out=bases[1:])
    # int32 offsets, as the Arrow string type wants, when every column fits (no cast to
    # narrow them afterwards); else int64 for all, and the columns that fit are cast
    narrow = bool(totals.max(initial=0) < _NARROW)
    offsets = np.zeros((filled.size, n + 1), np.int32 if narrow else np.int64)
    bits = np.zeros((filled.size, (n + 7) // 8), np.uint8)
    data, nulls, bad_filled = _gather_many(
        buf, starts, ends, rows, np.asarray(slots, dtype=np.int64)[filled], check[filled],
        bases, offsets, bits)
    kind = pa.StringArray if narrow else pa.LargeStringArray
    out = [pa.nulls(n, pa.string())] * len(slots)
    for j, slot in enumerate(filled):
        validity = pa.py_buffer(bits[j]) if nulls[j] else None
        chunk = pa.py_buffer(data[bases[j]:max(bases[j + 1], bases[j] + 1)])
        array = kind.from_buffers(n, pa.py_buffer(offsets[j]), chunk, validity,
                                  int(nulls[j]))
        fits = not narrow and offsets[j, n] < _NARROW  # (totals may be an upper bound)
        out[slot] = array.cast(pa.string()) if fits else array
    bad = np.zeros(len(slots), np.int64)
    bad[filled] = bad_filled
    return out, bad


def gather_columns(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray,
                   slots: list[int]) -> list[pa.Array]:
    """Arrow string arrays of fields ``slots`` for lines ``rows`` (as :func:`gather_strings`),
    gathered in one pass."""
    return _gather(buf, starts, ends, rows, slots, False)[0]


def gather_fields(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray,
                  slots: list[int], declared: list[int], totals: np.ndarray | None = None
                  ) -> tuple[list[pa.Array], list[pa.Array], list[int]]:
    """:func:`gather_columns` of ``slots`` and, in the same sweep over the lines (each line's
    field positions read once: ~5 ms a file of 100 k lines with ten declared columns), the
    declared columns' fields ``declared``, where a field that is not valid UTF-8 is null too.

    Args:
        buf, starts, ends, rows: as :func:`gather_columns`.
        slots: the built-in fields' slots.
        declared: the declared columns' slots.
        totals: per slot of ``[*slots, *declared]``, the bytes of its fields over ``rows`` or
            over more lines (each once): :func:`line_flags`'s, which saves a sweep; None:
            counted here.

    Returns:
        The arrays of ``slots``, those of ``declared``, and per declared slot how many fields
        were not valid UTF-8.
    """
    out, bad = _gather(buf, starts, ends, rows, [*slots, *declared],
                       [False] * len(slots) + [True] * len(declared), totals)
    k = len(slots)
    return out[:k], out[k:], [int(b) for b in bad[k:]]  # (no declared slot: [])


def gather_strings(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                   rows: np.ndarray, slot: int) -> pa.Array:
    """Arrow string array of field ``slot`` for lines ``rows``; empty and ``\\N`` are null."""
    return gather_columns(buf, starts, ends, rows, [slot])[0]


@njit(nogil=True, cache=True)
def _line_flags(buf, starts, ends, rows, byte_slot, byte, null_slot,
                slots):  # pragma: no cover - compiled
    """Per row, whether field ``byte_slot`` is the one byte ``byte`` and whether field
    ``null_slot`` is null (empty or ``\\N``); and per slot of ``slots``, its fields' bytes over
    the rows (what :func:`_gather_totals` counts), in the same sweep."""
    n = rows.size
    is_byte = np.zeros(n, np.bool_)
    null = np.zeros(n, np.bool_)
    totals = np.zeros(slots.size, np.int64)
    for r in range(n):
        line = rows[r]
        s = starts[line, byte_slot]
        is_byte[r] = ends[line, byte_slot] - s == 1 and buf[s] == byte
        s = starts[line, null_slot]
        length = ends[line, null_slot] - s
        null[r] = length == 0 or (length == 2 and buf[s] == 92 and buf[s + 1] == 78)
        for j in range(slots.size):
            totals[j] += ends[line, slots[j]] - starts[line, slots[j]]
    return is_byte, null, totals


def line_flags(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray,
               byte_slot: int, byte: int, null_slot: int, slots: list[int] = ()
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sweep over lines ``rows`` for what parsing asks of every valid line.

    Args:
        buf, starts, ends: as :class:`Scanned` holds them.
        rows: the lines.
        byte_slot, byte: the field told by one byte (``exclude_hit`` is ``0``).
        null_slot: the field told null (``customer_id``: empty or ``\\N``).
        slots: fields whose bytes over ``rows`` are counted, e.g. for :func:`gather_fields`'
            ``totals`` when it gathers a subset of ``rows``.

    Returns:
        Per row whether field ``byte_slot`` is exactly ``byte``, per row whether field
        ``null_slot`` is null, and per slot of ``slots`` its fields' bytes.
    """
    return _line_flags(buf, starts, ends, np.asarray(rows, dtype=np.int64), byte_slot, byte,
                       null_slot, np.asarray(slots, dtype=np.int64))


_INT64_MIN = -(2**63)


@njit(inline="always")
def _int_field(data, s, e):  # pragma: no cover - compiled
    """(value, ok): ``data[s:e]`` as parse's ``_INT_RE`` (``[+-]?[0-9]+``, any number of
    digits) within int64. Accumulated negative, so int64's minimum needs no wider type."""
    i = s
    neg = False
    if i < e and (data[i] == 43 or data[i] == 45):
        neg = data[i] == 45
        i += 1
    if i >= e:
        return 0, False
    v = 0
    while i < e:
        c = data[i]
        if c < 48 or c > 57:
            return 0, False
        d = np.int64(c) - 48
        if v < -922337203685477580:  # v * 10 would pass int64's minimum
            return 0, False
        v = v * 10
        if v < _INT64_MIN + d:
            return 0, False
        v -= d
        i += 1
    if neg:
        return v, True
    if v == _INT64_MIN:
        return 0, False
    return -v, True


@njit(inline="always")
def _float_field(data, s, e):  # pragma: no cover - compiled
    """Whether ``data[s:e]`` matches parse's ``_FLOAT_RE``
    (``[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?``)."""
    i = s
    if i < e and (data[i] == 43 or data[i] == 45):
        i += 1
    d = _digits(data, i, e)
    whole = d - i
    i = d
    if i < e and data[i] == 46:
        d = _digits(data, i + 1, e)
        if whole == 0 and d == i + 1:  # "." alone
            return False
        i = d
    elif whole == 0:
        return False
    if i < e and (data[i] == 101 or data[i] == 69):
        i += 1
        if i < e and (data[i] == 43 or data[i] == 45):
            i += 1
        d = _digits(data, i, e)
        if d == i:
            return False
        i = d
    return i == e


@njit(nogil=True, cache=True)
def _number_fields(offsets, data, bitmap, start, n, as_int):  # pragma: no cover - compiled
    """Per field ``start .. start + n - 1`` of an Arrow string array (``bitmap``: its
    validity, empty when none): whether it is present and well formed (``as_int``: an int
    within int64, its value in ``ints``; else a float's form), and how many well-formed ones
    start with ``+``."""
    ok = np.zeros(n, np.bool_)
    ints = np.zeros(n if as_int else 0, np.int64)
    plus = 0
    for r in range(n):
        k = start + r
        if bitmap.size and not (bitmap[k >> 3] >> (k & 7)) & 1:
            continue
        s = offsets[k]
        e = offsets[k + 1]
        if as_int:
            v, good = _int_field(data, s, e)
            ints[r] = v
        else:
            good = _float_field(data, s, e)
        if good:
            ok[r] = True
            if data[s] == 43:
                plus += 1
    return ok, ints, plus


def number_fields(values: pa.Array, as_int: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Check (and for ints, read) the fields of a string array as a declared ``int`` or
    ``float`` column's, in one sweep over its bytes (Arrow's regular expressions, and its cast
    tried first, took ~5 ms a column of 100 k fields).

    Args:
        values: an Arrow string or large string array.
        as_int: ``int`` fields (else ``float``).

    Returns:
        Per field whether it is present and well formed (parse's ``_INT_RE`` within int64, or
        ``_FLOAT_RE``), the ints' values (0 where not; empty for floats), and how many
        well-formed fields start with ``+``.
    """
    validity, offsets, data = values.buffers()[:3]
    wide = pa.types.is_large_string(values.type)
    start, n = values.offset, len(values)
    offsets = np.frombuffer(offsets, np.int64 if wide else np.int32)
    data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    bitmap = (np.frombuffer(validity, np.uint8) if validity is not None and values.null_count
              else np.zeros(0, np.uint8))
    return _number_fields(offsets, data, bitmap, start, n, as_int)


def warm_up() -> None:
    """Load (or compile) every kernel now, e.g. on each worker via ``client.run(warm_up)``,
    so the first real file does not pay for it."""
    # pieces cut mid-line: both the read-only pieces and the copied lines get their overloads
    scanned = scan_buffer(b"1\tx;p;1;2\n2\ty;q;1;2\n", np.array([0, 1], dtype=np.int64), 0, 1,
                          piece_bytes=7)
    buf, starts, ends = scanned.buf, scanned.starts, scanned.ends
    rows = np.array([0], dtype=np.int64)
    valid_utf8_rows(buf, starts, ends, rows)
    gather_columns(buf, starts, ends, rows, [1])
    gather_fields(buf, starts, ends, rows, [1], [1])
    line_flags(buf, starts, ends, rows, 1, 48, 1, [1])
    for as_int in (True, False):  # the declared int / float columns' typing
        number_fields(pa.array(["1", None]), as_int)
