"""The Redis wire of a push: where a slot's rows go (:class:`Dest`) and the ``HSET``/``HDEL``
commands that put them there, pipelined on one connection.

Two ways to build the commands: from Python lists, packed by hiredis (:func:`write`, also the
path of deletes and of the tests' slow push), or whole in Arrow, the Redis protocol (RESP)
joined element-wise with no Python object per field (:func:`resp_hset`,
:func:`resp_hset_buckets`), sent by a :class:`Sender` that reads replies one batch behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .redis_codec import bucket_of, buckets_of

__all__ = ["DELAY_ENV", "HSET_CHUNK", "PIPELINE_COMMANDS", "Dest", "Sender", "clear_slot",
           "resp_hset", "resp_hset_buckets", "write", "write_arrow"]

#: Fields per HSET command and commands per pipeline round trip.
HSET_CHUNK = 1000
PIPELINE_COMMANDS = 20

#: Tests only: seconds to wait after each chunk of 10 customers written, so a test can kill a
#: push midway (read here and by :mod:`.redis_push`).
DELAY_ENV = "FEATURESTORE_TEST_PUSH_DELAY"


@dataclass(frozen=True)
class Dest:
    """Where a slot's rows go: its bucket hashes ``<key>:<b>`` (``buckets`` 0: the one hash
    ``key``, a slot written before buckets)."""

    key: str
    buckets: int

    def of(self, customer_id: str) -> str:
        return f"{self.key}:{bucket_of(customer_id, self.buckets)}" if self.buckets \
            else self.key

    def all_keys(self, upto: int) -> list[str]:
        """Every bucket key below ``upto``, and the one-hash key."""
        return [self.key] + [f"{self.key}:{b}" for b in range(upto)]


def _commands(dest: Dest, ids: list[str], values: list[bytes], deletes: list[str],
              chunk: int) -> list[tuple[Any, ...]]:
    """HSET and HDEL commands, the fields grouped by bucket (``chunk`` fields at most each)."""
    sets: dict[str, list[Any]] = {}
    for f, v in zip(ids, values):
        sets.setdefault(dest.of(f), []).extend((f, v))
    dels: dict[str, list[str]] = {}
    for f in deletes:
        dels.setdefault(dest.of(f), []).append(f)
    out: list[tuple[Any, ...]] = []
    for key, pairs in sets.items():
        for i in range(0, len(pairs), 2 * chunk):
            out.append(("HSET", key, *pairs[i:i + 2 * chunk]))
    for key, fields in dels.items():
        for i in range(0, len(fields), chunk):
            out.append(("HDEL", key, *fields[i:i + chunk]))
    return out


def clear_slot(r: Any, dest: Dest, upto: int) -> None:
    """Delete a slot's bucket keys below ``upto`` and its one-hash key (UNLINK, pipelined)."""
    keys = dest.all_keys(upto)
    for i in range(0, len(keys), 10 * HSET_CHUNK):
        pipe = r.pipeline(transaction=False)
        for j in range(i, min(len(keys), i + 10 * HSET_CHUNK), HSET_CHUNK):
            pipe.unlink(*keys[j:j + HSET_CHUNK])
        pipe.execute()



def write(r: Any, rows_key: Dest, ids: list[str], values: list[bytes],
          deletes: list[str]) -> None:
    """HSET the packed values and HDEL ``deletes``, pipelined: commands of
    :data:`HSET_CHUNK` fields, packed by hiredis (C) and sent :data:`PIPELINE_COMMANDS` at a
    time on one connection, then their replies read (an error reply raises)."""
    import os

    delay = float(os.environ.get(DELAY_ENV) or 0)
    commands = _commands(rows_key, ids, values, deletes, 10 if delay else HSET_CHUNK)
    try:
        from hiredis import pack_command
    except ImportError:  # redis-py without hiredis: its own (slower) pipeline
        pack_command = None
    if pack_command is None or delay:
        for i in range(0, len(commands), 1 if delay else PIPELINE_COMMANDS):
            pipe = r.pipeline(transaction=False)
            for command in commands[i:i + (1 if delay else PIPELINE_COMMANDS)]:
                pipe.execute_command(*command)
            pipe.execute()
            if delay:
                time.sleep(delay)
        return
    conn = r.connection_pool.get_connection()
    try:
        for i in range(0, len(commands), PIPELINE_COMMANDS):
            batch = commands[i:i + PIPELINE_COMMANDS]
            conn.send_packed_command([pack_command(c) for c in batch])
            for _ in batch:
                conn.read_response()  # raises on an error reply (OOM, wrong type...)
    except BaseException:
        conn.disconnect()  # replies may be pending: never hand this connection back as is
        raise
    finally:
        r.connection_pool.release(conn)


def resp_hset(rows_key: str, ids: pa.Array, values: pa.Array,
              chunk: int) -> list[tuple[bytes, memoryview]]:
    """``HSET rows_key id value ...`` commands of ``chunk`` fields each, in the Redis protocol
    (RESP), built in Arrow: every field's ``$len\r\nid\r\n$len\r\nvalue\r\n`` in one
    element-wise join, then each command a header and a zero-copy slice of the joined bytes.

    Args:
        rows_key: the hash.
        ids: the fields (Arrow strings).
        values: the values (Arrow strings), one per field.
        chunk: fields per command.

    Returns:
        Per command: (header, body) to send one after the other.
    """
    ids, values = ids.cast(pa.string()), values.cast(pa.string())
    body = _resp_fields(ids, values)
    n = len(body)
    offsets = np.frombuffer(body.buffers()[1], dtype=np.int32)[body.offset:body.offset + n + 1]
    data = memoryview(body.buffers()[2]) if n else memoryview(b"")
    key = rows_key.encode()
    out = []
    for i in range(0, n, chunk):
        j = min(n, i + chunk)
        head = b"*%d\r\n$4\r\nHSET\r\n$%d\r\n%s\r\n" % (2 + 2 * (j - i), len(key), key)
        out.append((head, data[int(offsets[i]):int(offsets[j])]))
    return out


def _resp_fields(ids: pa.Array, values: pa.Array) -> pa.Array:
    """Every field's RESP ``$len\r\nid\r\n$len\r\nvalue\r\n``, one Arrow string each."""
    def length(a: pa.Array) -> pa.Array:
        return pc.cast(pc.binary_length(a), pa.string())

    body = pc.binary_join_element_wise("$", length(ids), "\r\n", ids, "\r\n$", length(values),
                                       "\r\n", values, "\r\n", "")
    return body.combine_chunks() if isinstance(body, pa.ChunkedArray) else body


def resp_hset_buckets(prefix: str, ids: pa.Array, values: pa.Array, chunk: int,
                      buckets: int, which: np.ndarray | None = None
                      ) -> tuple[memoryview, int]:
    """``HSET <prefix>:<bucket> id value ...`` for every field in its bucket
    (:func:`~.redis_codec.buckets_of`), sorted by bucket so each command sets the fields of one
    bucket (``chunk`` at most), built whole in Arrow: no Python object per field or command.

    Args:
        prefix: the slot's rows key (bucket ``b`` is ``prefix:b``).
        ids: the fields (Arrow strings).
        values: the values (Arrow strings), one per field.
        chunk: fields per command at most.
        buckets: the slot's bucket count.
        which: each field's bucket (default: :func:`~.redis_codec.buckets_of` the id).

    Returns:
        (the commands' bytes, back to back; the number of commands).
    """
    ids, values = ids.cast(pa.string()), values.cast(pa.string())
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    n = len(ids)
    if n == 0:
        return memoryview(b""), 0
    which = buckets_of(ids, buckets) if which is None else np.asarray(which, dtype=np.int64)
    order = np.argsort(which, kind="stable")
    which = which[order]
    pos = np.arange(n)
    new_run = np.empty(n, dtype=bool)
    new_run[0] = True
    new_run[1:] = which[1:] != which[:-1]
    run_start = np.maximum.accumulate(np.where(new_run, pos, 0))
    first = new_run | ((pos - run_start) % chunk == 0)  # a command starts at this field
    starts = np.flatnonzero(first)
    m = len(starts)
    counts = np.diff(np.append(starts, n))
    keys = pc.binary_join_element_wise(prefix + ":", pc.cast(pa.array(which[starts]), pa.string()),
                                       "")
    head = pc.binary_join_element_wise(
        "*", pc.cast(pa.array(2 + 2 * counts), pa.string()), "\r\n$4\r\nHSET\r\n$",
        pc.cast(pc.binary_length(keys), pa.string()), "\r\n", keys, "\r\n", "")
    # headers and fields (unsorted) in one array, then one take puts each command's header
    # before its fields, in bucket order: the bytes of every command, back to back
    perm = np.empty(n + m, dtype=np.int64)
    perm[starts + np.arange(m)] = np.arange(m)
    perm[pos + np.cumsum(first)] = m + order
    pieces = pa.concat_arrays([head.cast(pa.string()), _resp_fields(ids, values)])
    commands = pieces.take(pa.array(perm))
    offsets = np.frombuffer(commands.buffers()[1], dtype=np.int32)[
        commands.offset:commands.offset + len(commands) + 1]
    data = memoryview(commands.buffers()[2])[int(offsets[0]):int(offsets[-1])]
    return data, len(starts)


class Sender:
    """One connection that sends packed commands and reads their replies one batch behind:
    Redis executes a batch while this process packs the next one (the push's rate is then the
    slower of the two, not their sum). :meth:`close` reads what is pending; an error reply
    raises."""

    def __init__(self, r: Any) -> None:
        self.r = r
        self.conn = r.connection_pool.get_connection()
        self.pending = 0

    def send(self, commands: list[tuple[bytes, memoryview]]) -> None:
        self.drain()
        for i in range(0, len(commands), PIPELINE_COMMANDS):
            batch = commands[i:i + PIPELINE_COMMANDS]
            self.conn.send_packed_command([part for command in batch for part in command])
        self.pending += len(commands)

    def send_raw(self, data: memoryview, commands: int) -> None:
        """Send ``commands`` HSET/HDEL commands already in the Redis protocol."""
        self.drain()
        if commands:
            self.conn.send_packed_command([data])
            self.pending += commands

    def drain(self) -> None:
        """Read the pending replies. HSET and HDEL answer one line each (``:n``, never
        negative, or an ``-ERR`` line), so they are counted on the raw socket rather than
        parsed one by one in Python (~3 us each: most of a day's push at 5 M customers)."""
        sock = getattr(self.conn, "_sock", None)
        if sock is None or str(getattr(self.conn, "protocol", 2)) == "3":
            # RESP3 may interleave push messages: parse every reply (the slow path)
            while self.pending:
                self.conn.read_response()  # raises on an error reply (OOM, wrong type...)
                self.pending -= 1
            return
        error = b""
        while self.pending:
            data = sock.recv(1 << 20)
            if not data:
                raise ConnectionError("Redis closed the connection during a push")
            self.pending -= data.count(b"\n")
            if error or b"-" in data:
                error += data
        if error:
            import redis

            line = error[error.index(b"-") + 1:].split(b"\r\n", 1)[0]
            raise redis.exceptions.ResponseError(line.decode(errors="replace"))

    def close(self, ok: bool = True) -> None:
        try:
            if ok:
                self.drain()
        finally:
            if self.pending or not ok:
                self.conn.disconnect()  # replies may be pending: never reuse it as is
            self.r.connection_pool.release(self.conn)


def write_arrow(r: Any, rows_key: Dest, ids: pa.Array, values: pa.Array) -> None:
    """HSET Arrow ids and values (see :func:`resp_hset`) on one connection, pipelined,
    their replies read before returning."""
    sender = Sender(r)
    ok = False
    try:
        if rows_key.buckets:
            sender.send_raw(*resp_hset_buckets(rows_key.key, ids, values, HSET_CHUNK,
                                               rows_key.buckets))
        else:
            sender.send(resp_hset(rows_key.key, ids, values, HSET_CHUNK))
        ok = True
    finally:
        sender.close(ok)
