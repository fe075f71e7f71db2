"""Push the latest committed as-of of every table to the Redis online store: plan, execute,
commit (the run that commits a partition calls it under the store's writer lease).

Each table has a base slot, overlay slots and a pointer (:mod:`.redis_codec`). A push never
writes what readers are served:

* **plan** (:func:`plan_push`, pure): per table, the latest partition and its generation
  against the served view. Nothing to do when it already holds it. When the served
  generation's partition is still committed unchanged (or was rewritten by late hits of its
  own day only, with a handover), a day's push writes only what changed since it (``delta``:
  the rows the materialization handed over; ``diff``: the customers whose packed value differs
  between the two partitions; recency is stored as event days, so an idle customer's value
  does not change) into the overlay slot not served. Otherwise the base slot the served view
  does not read is rewritten whole (``full``).
* **execute** (:func:`execute_push`): the slot's metadata is set to ``writing`` first (never
  served; the next push sees it) with the buckets it may use, which are cleared; then Dask
  tasks on the workers read the handover or the partition(s), compute the difference with Arrow
  and write with pipelined ``HSET``/``HDEL``; a whole rewrite runs as several tasks per table,
  each a range of customers.
* **commit** (:func:`commit_push`): per table one script marks the slot complete and flips the
  pointer, after the lease is checked; the offline record ``_state/online.json`` is written
  (what was pushed: readers tell a lost table from one never pushed by it); then an overlay is
  folded into its base (:func:`fold_overlay`, invisible to readers) and the pointer moved to
  the base alone, or after a whole rewrite the old base and its overlays are deleted
  (:func:`retire_slot`).

A push that dies while writing leaves the served view untouched (the next push clears and
writes that slot again); one that dies while folding leaves the new generation served through
its overlay (the next push finishes the fold).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..generations import read_generations
from ..layout import ONLINE_RECORD, is_published
from ..storage import Store
from .memory import plan_load, read_partition
from .redis import read_record, redact, redis_client
from .redis_codec import (
    FLIP_SCRIPT,
    FOLD_SCRIPT,
    OVERLAYS,
    SLOTS,
    UNLAY_SCRIPT,
    SlotMeta,
    TableKeys,
    bucket_count,
    bucket_of,
    buckets_of,
    other_slot,
)
from .redis_protocol import (
    DELAY_ENV,
    HSET_CHUNK,
    Dest,
    Sender,
    clear_slot,
    resp_hset,
    resp_hset_buckets,
    write,
    write_arrow,
)
from .redis_rows import changed_customers, pack_arrow, pack_rows, stored

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["TablePush", "PushPlan", "PushReport", "plan_push", "execute_push", "commit_push",
           "push_online", "online_status", "namespace_for"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TablePush:
    """What one table's push does.

    Attributes:
        table: the table.
        as_of: the latest committed as-of.
        generation: its committed generation.
        slot: the slot written (the idle one).
        mode: ``none`` (already served), ``delta`` (the rows the materialization handed over
            as possibly changed since ``base``: :mod:`featurestore.features.online_delta`),
            ``diff`` (only what changed since ``base``, found by comparing the two
            partitions) or ``full`` (the slot rewritten whole).
        base: with ``delta`` and ``diff``: the (as-of, generation) the slot holds now.
        keys: the table's entity keys.
        recency: its recency columns (stored as event days).
        buckets: the slot's bucket count (:mod:`.redis_codec`): with ``delta`` and ``diff``
            the one the idle slot has; with ``full`` 0 until :func:`execute_push` chooses it
            from the partition's row count.
        clear: the bucket keys ``0..clear-1`` the slot's earlier content may use (deleted
            before it is written).
        base_slot: with ``delta`` and ``diff``: the base slot the overlay ``slot`` (``x`` or
            ``y``) lays over (it holds ``base``).
        fold: an overlay slot (the served one) whose fold into ``base_slot`` did not finish:
            finished first (:func:`fold_overlay`).
        near: with ``delta``: only the handed-over rows flagged as changed since the day
            before are written (``base`` is that day).
        base_columns: with ``delta`` and ``diff``: the base's packed columns (other columns
            now: the push rewrites a base slot whole instead).
    """

    table: str
    as_of: str
    generation: int
    slot: str
    mode: str
    base: tuple[str, int] | None
    keys: tuple[str, ...]
    recency: tuple[str, ...]
    buckets: int = 0
    clear: int = 0
    base_slot: str = ""
    fold: str = ""
    near: bool = False
    base_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class PushPlan:
    """The push of every table (see :func:`plan_push`)."""

    namespace: str
    push_id: str
    tables: tuple[TablePush, ...]


@dataclass
class PushReport:
    """What a push wrote."""

    url: str
    namespace: str
    push_id: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows_written(self) -> int:
        return sum(t.get("written", 0) for t in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_written": self.rows_written}


def namespace_for(store: Store) -> str:
    """A new namespace for ``store``'s keys (the record keeps it; a hash of the store's URL)."""
    return hashlib.sha1(store.url.encode()).hexdigest()[:12]


def plan_push(namespace: str, push_id: str, latest: dict[str, tuple[str, int] | None],
              slots: dict[str, tuple[str | None, dict[str, SlotMeta | None]]],
              committed: dict[str, dict[str, int]], keys: dict[str, list[str]],
              recency: dict[str, list[str]],
              deltas: dict[str, dict[str, Any]] | None = None) -> PushPlan:
    """Plan a push, no I/O.

    The served view is a base slot (``a``/``b``) or an overlay slot (``x``/``y``) over a base
    (:mod:`.redis_codec`). When the served generation's partition is still committed
    unchanged and its base is bucketed, the push writes only what changed since it into the
    idle overlay (``delta``: the rows the materialization handed over; ``diff``: the rows
    found different by comparing the two partitions), flips to it and folds it into the base
    (:func:`commit_push`). Otherwise it rewrites the base slot not served (``full``).

    Args:
        namespace: the store's key namespace.
        push_id: this push's id.
        latest: table -> (latest as-of, its generation), or None without a partition.
        slots: table -> (served slot or None, slot -> its metadata or None), base and
            overlay slots.
        committed: the offline store's committed generations (``{table: {as_of: g}}``).
        keys: table -> entity keys.
        recency: table -> recency columns.
        deltas: table -> the materialization's delta record (``{"as_of", "generation",
            "bases": {as_of: generation}, "near_base"}``) whose files exist.

    Returns:
        The plan: one :class:`TablePush` per table with a partition.
    """
    out = []
    for table, target in latest.items():
        if target is None:
            continue
        as_of, generation = target
        served, metas = slots.get(table, (None, {}))
        current = metas.get(served) if served else None
        common = dict(table=table, as_of=as_of, generation=generation,
                      keys=tuple(keys.get(table, ["customer_id"])),
                      recency=tuple(recency.get(table, [])))
        base_slot, fold = None, ""
        if current is not None and current.state == "complete":
            base_slot = current.base_slot if served in OVERLAYS else served
            if served in OVERLAYS:
                held = metas.get(base_slot)
                if held is None or held.state != "complete" or \
                        (held.as_of, held.generation) != (current.as_of, current.generation):
                    fold = served  # its fold died: finish it first (readers see no change)
        if current is not None and current.state == "complete" \
                and (current.as_of, current.generation) == (as_of, generation):
            out.append(TablePush(slot=served, mode="none", base=None, fold=fold,
                                 base_slot=base_slot or "", **common))
            continue
        delta = (deltas or {}).get(table)
        if delta is not None \
                and (delta.get("as_of"), delta.get("generation")) != (as_of, generation):
            delta = None  # the handover of another generation (an older commit's)
        base, late = None, False
        if base_slot and current.buckets and list(current.keys) == list(common["keys"]) \
                and list(current.recency) == list(common["recency"]):
            if committed.get(table, {}).get(current.as_of, 0) == current.generation:
                base = (current.as_of, current.generation)
            elif delta is not None and _late_day_only(delta, current):
                base, late = (current.as_of, current.generation), True
        if base is None:  # the base slot not served, rewritten whole
            slot = other_slot(base_slot)
            idle = metas.get(slot)
            clear = max(idle.buckets, idle.stale) if idle is not None else 0
            out.append(TablePush(slot=slot, mode="full", base=None, clear=clear, **common))
            continue
        slot = "y" if served == "x" else "x"
        idle = metas.get(slot)
        mode, near = "diff", False
        if delta is not None and (late or delta.get("bases", {}).get(base[0]) == base[1]):
            mode = "delta"  # the handed-over rows: no partition is read whole
            near = not late and delta.get("near_base") == base[0]
        out.append(TablePush(slot=slot, mode=mode, base=base, buckets=current.buckets,
                             clear=max(idle.overlay, idle.stale) if idle is not None else 0,
                             base_slot=base_slot, fold=fold, near=near,
                             base_columns=tuple(current.columns), **common))
    return PushPlan(namespace, push_id, tuple(out))


def _late_day_only(delta: dict[str, Any], current: SlotMeta) -> bool:
    """Whether the served generation's as-of (the day before the handover's) was rewritten
    only by late hits of that day itself, so the whole handover (every customer active on it
    or on the pushed day) still covers what changed since the version served: the day before
    it was not rewritten since (generations are commit numbers: its generation is not newer
    than the served one), or it has no partition."""
    bases = delta.get("bases", {})
    if delta.get("near_base") != current.as_of or current.as_of not in bases:
        return False
    before = (dt.date.fromisoformat(current.as_of) - dt.timedelta(1)).isoformat()
    return before not in bases or int(bases[before]) <= int(current.generation)


# -- execute --------------------------------------------------------------------------------
def _read(store: Store, table: str, as_of: str, keys: tuple[str, ...]) -> pa.Table:
    """A partition's rows in served order (a multi-key table sorted as the memory store)."""
    plan = plan_load(table, as_of, store.path(table, f"as_of={as_of}"),
                     store.listdir(table, f"as_of={as_of}"), list(keys))
    arrow = read_partition(store, plan)
    if len(keys) > 1:
        arrow = arrow.sort_by([("customer_id", "ascending")] + [
            (c, "ascending" if asc else "descending") for c, asc in plan.order])
    return arrow


def _read_delta(store: Store, job: TablePush) -> tuple[pa.Table, list[str]] | None:
    """The delta the materialization handed over for ``job``'s as-of: its rows in served
    order and the ids without a row; None when its files are gone or its columns are not the
    partition's (the caller then rewrites the slot whole)."""
    import pyarrow.parquet as pq

    from ..layout import ONLINE_DELTA

    try:
        info = store.read_json(ONLINE_DELTA, job.table, f"as_of={job.as_of}.json")
        arrow = pq.read_table(store.path(ONLINE_DELTA, job.table, f"as_of={job.as_of}.parquet"),
                              filesystem=store.fs)
    except (FileNotFoundError, ValueError):
        return None
    from ..features.online_delta import NEAR

    deleted = list(info.get("deleted", []))
    if NEAR in arrow.column_names:
        if job.near and "deleted_near" in info:  # only what changed since the day before
            arrow = arrow.filter(pc.fill_null(arrow.column(NEAR), False))
            deleted = list(info["deleted_near"])
        arrow = arrow.drop_columns([NEAR])
    arrow = arrow.drop_columns([c for c in arrow.column_names if c == "as_of"])
    if arrow.num_rows and pa.types.is_dictionary(arrow.schema.field("customer_id").type):
        i = arrow.column_names.index("customer_id")
        arrow = arrow.set_column(i, "customer_id", arrow.column(i).cast(pa.string()))
    if len(job.keys) > 1:
        plan = plan_load(job.table, job.as_of, store.path(job.table, f"as_of={job.as_of}"),
                         store.listdir(job.table, f"as_of={job.as_of}"), list(job.keys))
        arrow = arrow.sort_by([("customer_id", "ascending")] + [
            (c, "ascending" if asc else "descending") for c, asc in plan.order])
    return arrow, deleted


def _row_groups(store: Store, job: TablePush, part: int, parts: int) -> Any:
    """Part ``part`` of ``parts`` of a single-key partition by whole parquet row groups (every
    file's groups dealt round-robin), as an iterator of one table per row group (a task holds
    one group at a time), or None when there are fewer groups than parts (the caller slices
    the whole partition instead)."""
    import pyarrow.parquet as pq

    plan = plan_load(job.table, job.as_of, store.path(job.table, f"as_of={job.as_of}"),
                     store.listdir(job.table, f"as_of={job.as_of}"), list(job.keys))
    files = [pq.ParquetFile(f, filesystem=store.fs) for f in plan.files]
    pairs = [(i, g) for i, f in enumerate(files) for g in range(f.num_row_groups)]
    if len(pairs) < parts:
        return None

    least = _send_rows(job.buckets)

    def groups() -> Any:
        held: list[pa.Table] = []
        for i, g in pairs[part::parts]:
            arrow = files[i].read_row_group(g)
            held.append(arrow.drop_columns([c for c in arrow.column_names if c == "as_of"]))
            if sum(len(t) for t in held) >= least:  # whole groups, enough rows per bucket
                yield pa.concat_tables(held)
                held = []
        if held:
            yield pa.concat_tables(held)

    return groups()



def _pack_and_write(r: Any, rows_key: Dest, arrow: pa.Table, columns: list[str],
                    multi: bool, sender: Sender | None = None) -> int:
    """Pack ``arrow``'s rows (as stored) and HSET them; the number of customers written. Arrow
    all the way to the socket when every column allows (:func:`pack_arrow`), else orjson.
    With ``sender`` the replies are read one batch later (:class:`Sender`)."""
    import os

    packed = pack_arrow(arrow, columns, multi)
    if packed is not None and not os.environ.get(DELAY_ENV):
        if sender is not None:
            if rows_key.buckets:
                sender.send_raw(*resp_hset_buckets(rows_key.key, *packed, HSET_CHUNK,
                                                   rows_key.buckets))
            else:
                sender.send(resp_hset(rows_key.key, *packed, HSET_CHUNK))
        else:
            write_arrow(r, rows_key, *packed)
        return len(packed[0])
    if sender is not None:
        sender.drain()
    ids, values = pack_rows(arrow, columns, multi)
    write(r, rows_key, ids, values, [])
    return len(ids)


#: Rows packed at a time by a whole push's task, while Redis stores the rows before them.
SEND_ROWS = 50_000
def _send_rows(buckets: int) -> int:
    """Rows packed at a time: enough that a command sets several fields of one bucket (about
    8 a bucket), within a worker's memory."""
    return int(min(SEND_ROWS_MAX, max(SEND_ROWS, 8 * buckets)))


#: The most rows packed at a time (10 M customers: 100,000 buckets).
SEND_ROWS_MAX = 800_000
#: Rows packed and written at a time by one task (bounds a worker's memory on a big table).
SLICE_ROWS = 200_000


def _push_overlay(store: Store, r: Any, namespace: str, job: TablePush,
                  multi: bool) -> dict[str, Any]:
    """The task of a ``delta`` or ``diff`` push: the rows changed since ``job.base`` (the
    handed-over ones, or the partitions' difference) written into the overlay slot."""
    names = _schema(store, job)[0]
    got = _read_delta(store, job) if job.mode == "delta" else None
    if got is not None and [c for c in got[0].column_names if c != "customer_id"] == names:
        mode, rows = "delta", stored(got[0], job.recency, job.as_of)
        kept = set(rows.column("customer_id").to_pylist()) if got[1] else set()
        deletes = sorted(set(got[1]) - kept)
        total = len(rows)
    else:  # no usable handover: compare the two partitions
        mode = "diff"
        arrow = stored(_read(store, job.table, job.as_of, job.keys), job.recency, job.as_of)
        old = stored(_read(store, job.table, job.base[0], job.keys), job.recency, job.base[0])
        affected = changed_customers(arrow, old, job.keys)
        rows = arrow.filter(pc.is_in(arrow.column("customer_id").cast(pa.string()),
                                     value_set=affected))
        present = set(pc.unique(rows.column("customer_id").cast(pa.string())).to_pylist())
        deletes = sorted(set(affected.to_pylist()) - present)
        total = len(arrow)
    packed = pack_arrow(rows, names, multi)
    if packed is None:  # a value orjson packs (a list, a string needing escapes)
        ids, values = pack_rows(rows, names, multi)
        packed = (pa.array(ids, pa.string()), pa.array(values, pa.binary()).cast(pa.string()))
    keys = TableKeys(namespace, job.table)
    count = _write_overlay(r, keys, job, packed[0], packed[1], deletes)
    out = {"mode": mode, "written": len(packed[0]), "deleted": len(deletes), "rows": total,
           "overlay": count}
    if len(packed[0]) + len(deletes) <= FOLD_SEND_ROWS:
        out["fold"] = _fold_commands(keys.rows(job.base_slot), job.buckets, packed[0],
                                     packed[1], deletes)
    return out


#: A day's overlay of at most this many rows is folded by the committing process sending the
#: same rows into the base's buckets (``_fold_commands``: about half the Lua fold's time at 5 M
#: customers, where each row lands in its own bucket); a bigger one (a push after a gap) is
#: folded in Redis (:data:`~.redis_codec.FOLD_SCRIPT`), not shipped through Dask.
FOLD_SEND_ROWS = 200_000


def _fold_commands(base_key: str, buckets: int, ids: pa.Array, values: pa.Array,
                   deletes: list[str]) -> tuple[bytes, int, int]:
    """The base's ``HSET``/``HDEL`` commands that fold an overlay of these rows and deletions
    (the Redis protocol, built in Arrow as a whole push's): (bytes, number of commands, rows
    and deletions)."""
    from hiredis import pack_command

    data, n = resp_hset_buckets(base_key, ids.cast(pa.string()), values.cast(pa.string()),
                                HSET_CHUNK, buckets) if len(ids) else (memoryview(b""), 0)
    dels = [pack_command(("HDEL", f"{base_key}:{bucket_of(c, buckets)}", c)) for c in deletes]
    return bytes(data) + b"".join(dels), n + len(dels), len(ids) + len(deletes)


def _write_overlay(r: Any, keys: TableKeys, job: TablePush, ids: pa.Array, values: pa.Array,
                   deletes: list[str]) -> int:
    """Write packed rows and deletions into the overlay slot ``job.slot``: each value as
    ``<base bucket>|<packed row>`` (``<base bucket>|`` for a deletion) in overlay bucket
    ``base bucket mod count``, ``count`` chosen from the number of values (about
    :data:`~.redis_codec.BUCKET_ROWS` a bucket: commands of many fields, small hashes).

    Returns:
        The overlay's bucket count (its metadata lists the buckets before they are written,
        so a write that dies is cleared whole by the next push).
    """
    import os

    n = len(ids) + len(deletes)
    count = bucket_count(n)
    meta_key = keys.meta(job.slot)
    meta = SlotMeta.loads(r.get(meta_key))
    if meta is not None and meta.stale < count:
        r.set(meta_key, dataclasses.replace(meta, stale=count).dumps())
    if not n:
        return count
    ids = pa.concat_arrays([ids.cast(pa.string()), pa.array(deletes, pa.string())])
    values = pa.concat_arrays([values.cast(pa.string()),
                               pa.array([""] * len(deletes), pa.string())])
    base = buckets_of(ids, job.buckets)
    order = np.argsort(base, kind="stable")  # an overlay bucket's fields in base order: the
    ids, values, base = ids.take(pa.array(order)), values.take(pa.array(order)), base[order]
    which = base % count  # fold sets a run of one base bucket's fields in one HSET
    tagged = pc.binary_join_element_wise(pc.cast(pa.array(base), pa.string()), values, "|")
    prefix = keys.rows(job.slot)
    delay = float(os.environ.get(DELAY_ENV) or 0)
    if delay:  # tests: slow, ten fields at a time, so a kill lands midway
        py_ids, py_values = ids.to_pylist(), tagged.to_pylist()
        for i in range(0, n, 10):
            pipe = r.pipeline(transaction=False)
            for j in range(i, min(n, i + 10)):
                pipe.hset(f"{prefix}:{which[j]}", py_ids[j], py_values[j])
            pipe.execute()
            time.sleep(delay)
        return count
    sender, ok = Sender(r), False
    try:
        sender.send_raw(*resp_hset_buckets(prefix, ids, tagged, HSET_CHUNK, count, which))
        ok = True
    finally:
        sender.close(ok)
    return count


def retire_slot(r: Any, keys: TableKeys, slot: str) -> None:
    """Delete a slot no view reads any more (after a whole push flipped to another base): its
    keys first (UNLINK: Redis frees them in the background), its metadata last, so a push
    that dies in between leaves the metadata listing the keys for the next one to clear."""
    meta = SlotMeta.loads(r.get(keys.meta(slot)))
    if meta is None:
        return
    clear_slot(r, Dest(keys.rows(slot), 1), max(meta.buckets if slot in SLOTS else 0,
                                                meta.overlay, meta.stale))
    r.delete(keys.meta(slot))


def fold_overlay(r: Any, keys: TableKeys, overlay: str, base_slot: str,
                 commands: tuple[bytes, int, int] | None = None) -> int:
    """Fold the overlay slot ``overlay`` into the base slot ``base_slot`` it lays over
    (:data:`~.redis_codec.FOLD_SCRIPT`, one call per overlay bucket, pipelined), then point
    readers at the base alone. Readers of the overlay see no change; the base's metadata says
    ``folding`` until it holds the overlay's generation (a fold that died is run again by the
    next push).

    Args:
        r: a Redis client.
        keys: the table's keys.
        overlay: ``x`` or ``y`` (complete).
        base_slot: the base it lays over.
        commands: the base's ``HSET``/``HDEL`` commands of the overlay's rows
            (:func:`_fold_commands`, from the task that wrote it), sent instead of the Lua
            fold; None: fold in Redis (a fold the next push finishes, a big overlay).

    Returns:
        The fields folded.
    """
    ov = SlotMeta.loads(r.get(keys.meta(overlay)))
    if ov is None or ov.state != "complete":
        return 0
    held = SlotMeta.loads(r.get(keys.meta(base_slot)))
    folding = dataclasses.replace(ov, state="folding", folding=ov.push_id, base_slot="",
                                  overlay=0, base=None,
                                  stale=max(held.stale if held else 0, ov.buckets))
    r.set(keys.meta(base_slot), folding.dumps())
    sha = r.script_load(FOLD_SCRIPT)
    prefix, base_rows = keys.rows(overlay), keys.rows(base_slot)
    folded = 0
    import os

    delay = float(os.environ.get(FOLD_DELAY_ENV) or 0)
    if commands is not None and not delay:  # the rows the task wrote, sent to the base
        sender, ok = Sender(r), False
        try:
            sender.send_raw(memoryview(commands[0]), commands[1])
            ok = True
        finally:
            sender.close(ok)
        folded = commands[2]
    step = 1 if delay else FOLD_PIPELINE
    for lo in range(0, ov.overlay if commands is None or delay else 0, step):
        pipe = r.pipeline(transaction=False)
        for b in range(lo, min(ov.overlay, lo + step)):
            pipe.evalsha(sha, 1, f"{prefix}:{b}", base_rows)
        folded += sum(int(x) for x in pipe.execute())
        if delay:
            time.sleep(delay)
    r.set(keys.meta(base_slot), dataclasses.replace(folding, state="complete",
                                                    folding="").dumps())
    # the base alone now holds the generation: readers ask it only (one HGET, not two)
    pointer = r.get(keys.ptr)
    if pointer and pointer.decode().startswith(f"{overlay}|"):
        push = pointer.decode().split("|", 1)[1]
        r.eval(UNLAY_SCRIPT, 1, keys.ptr, pointer, f"{base_slot}|{push}")
    return folded


#: A table that grew to more than this many times its base's buckets (of about
#: ``BUCKET_ROWS`` customers) is rewritten whole into a base of more buckets, not overlaid:
#: a whole rewrite each time the table quadruples (amortized: under a third of a row's write
#: per row), buckets of at most ~400 customers between (Redis's hashtable encoding past 128).
REBUCKET = 4

#: Tests only: seconds to wait after each overlay bucket folded (a test kills a push mid-fold).
FOLD_DELAY_ENV = "FEATURESTORE_TEST_FOLD_DELAY"

#: Overlay buckets folded per round trip (each a short script: readers wait for one at most).
FOLD_PIPELINE = 100


def push_part(store: Store, url: str, namespace: str, job: TablePush, part: int,
              parts: int) -> dict[str, Any]:
    """One task of a table's push, on a worker: write the base slot's rows of one range of
    customers (``full``), or what changed of the whole table into the overlay (``delta``,
    ``diff``).

    Args:
        store: the offline store.
        url: the Redis URL.
        namespace: the key namespace.
        job: the table's push.
        part: this task's range (0-based); ``diff`` runs as one part.
        parts: the number of ranges.

    Returns:
        ``{"written", "deleted", "rows", "mode"}`` (and ``"overlay"``, its bucket count).
    """
    r = redis_client(url, protocol=2)  # replies counted on the socket (Sender.drain)
    keys = TableKeys(namespace, job.table)
    rows_key = Dest(keys.rows(job.slot), job.buckets)
    multi = len(job.keys) > 1
    if job.mode == "full" and not multi and parts > 1:
        groups = _row_groups(store, job, part, parts)
        if groups is not None:  # this part's row groups only: each task reads its share
            written = rows = 0
            sender, ok = Sender(r), False
            try:
                for group in groups:
                    arrow = stored(group, job.recency, job.as_of)
                    columns = [c for c in arrow.column_names if c != "customer_id"]
                    step = _send_rows(job.buckets)
                    for lo in range(0, len(arrow), step):  # Redis works on the last
                        written += _pack_and_write(r, rows_key, arrow.slice(lo, step),
                                                   columns, False, sender)
                    rows += len(arrow)
                ok = True
            finally:
                sender.close(ok)
            return {"mode": "full", "written": written, "deleted": 0, "rows": rows}
    if job.mode in ("delta", "diff"):
        return _push_overlay(store, r, namespace, job, multi)
    arrow = stored(_read(store, job.table, job.as_of, job.keys), job.recency, job.as_of)
    columns = [c for c in arrow.column_names if c != "customer_id"]
    n = len(arrow)
    lo, hi = n * part // parts, n * (part + 1) // parts
    ids_all = arrow.column("customer_id")
    written = 0
    while lo < hi:  # slices of whole customers (a multi-key table's rows stay together)
        stop = min(hi, lo + SLICE_ROWS)
        while multi and stop < n and ids_all[stop].as_py() == ids_all[stop - 1].as_py():
            stop += 1
        written += _pack_and_write(r, rows_key, arrow.slice(lo, stop - lo), columns, multi)
        lo = stop
    return {"mode": "full", "written": written, "deleted": 0, "rows": n * (part + 1) // parts
            - n * part // parts}


def _slot_meta(job: TablePush, push_id: str, state: str, columns: list[str],
               dtypes: dict[str, str]) -> SlotMeta:
    overlay = job.mode in ("delta", "diff")
    return SlotMeta(state=state, push_id=push_id, as_of=job.as_of, generation=job.generation,
                    columns=columns, dtypes=dtypes, keys=list(job.keys),
                    recency=list(job.recency), pushed_at=time.time(), buckets=job.buckets,
                    base=list(job.base) if (state == "writing" and job.base) else None,
                    base_slot=job.base_slot if overlay else "", stale=job.clear)


def _schema(store: Store, job: TablePush) -> tuple[list[str], dict[str, str]]:
    """The served columns and their types, from the partition's footer."""
    import pyarrow.parquet as pq

    plan = plan_load(job.table, job.as_of, store.path(job.table, f"as_of={job.as_of}"),
                     store.listdir(job.table, f"as_of={job.as_of}"), list(job.keys))
    schema = pq.read_schema(plan.files[0], filesystem=store.fs)
    names = [n for n in schema.names if n not in ("customer_id", "as_of")]
    return names, {n: str(schema.field(n).type) for n in names}


def _row_count(store: Store, job: TablePush) -> int:
    """The partition's rows, from its footers (a whole push sizes its buckets by it)."""
    import pyarrow.parquet as pq

    plan = plan_load(job.table, job.as_of, store.path(job.table, f"as_of={job.as_of}"),
                     store.listdir(job.table, f"as_of={job.as_of}"), list(job.keys))
    return sum(pq.ParquetFile(f, filesystem=store.fs).metadata.num_rows for f in plan.files)


def execute_push(store: Store, url: str, plan: PushPlan, client: Client | None,
                 parts: int = 4) -> dict[str, dict[str, Any]]:
    """Write the slot of every table of the plan that is not served (see the module
    docstring): a base slot whole, or an overlay with what changed.

    Args:
        store: the offline store.
        url: the Redis URL.
        plan: the plan.
        client: a Dask client (the tasks run on its workers), or None to run here.
        parts: tasks per table for a whole rewrite.

    Returns:
        table -> what its tasks wrote, plus the slot's ``meta`` and the ``job`` as run (for
        the commit).
    """
    r = redis_client(url)
    metas, jobs_run = {}, {}
    tasks: list[tuple[str, tuple[Any, ...]]] = []
    for job in plan.tables:
        keys = TableKeys(plan.namespace, job.table)
        if job.fold:  # the served overlay's fold died: finish it (readers see no change)
            fold_overlay(r, keys, job.fold, job.base_slot)
        if job.mode == "none":
            continue
        columns, dtypes = _schema(store, job)
        if job.mode in ("delta", "diff") and (
                list(job.base_columns) != columns
                or bucket_count(_row_count(store, job)) > REBUCKET * job.buckets):
            # other columns than the base's (an overlay cannot carry them), or a table grown
            # past its base's buckets (big hashes lose the compact encoding): a base rewritten
            slot = other_slot(job.base_slot)
            idle = SlotMeta.loads(r.get(keys.meta(slot)))
            job = dataclasses.replace(job, mode="full", slot=slot, base=None, base_slot="",
                                      clear=max(idle.buckets, idle.stale) if idle else 0)
        if job.mode == "full":  # buckets of about BUCKET_ROWS customers each
            job = dataclasses.replace(job, buckets=bucket_count(_row_count(store, job)))
        jobs_run[job.table] = job
        metas[job.table] = _slot_meta(job, plan.push_id, "complete", columns, dtypes)
        # first: the slot is marked being written (never served; the next push sees it), with
        # every bucket key its earlier content may use (a write that dies is cleared whole)
        writing = _slot_meta(job, plan.push_id, "writing", columns, dtypes)
        if job.mode == "full":
            writing = dataclasses.replace(writing, stale=max(job.clear, job.buckets))
        r.set(keys.meta(job.slot), writing.dumps())
        clear_slot(r, Dest(keys.rows(job.slot), job.buckets or 1), writing.stale)
        if job.mode == "full":
            # ranges of rows per task; a multi-key table is sorted by customer in one task
            k_parts = 1 if len(job.keys) > 1 else parts
            tasks += [(job.table, (store, url, plan.namespace, job, k, k_parts))
                      for k in range(k_parts)]
        else:
            tasks.append((job.table, (store, url, plan.namespace, job, 0, 1)))
    if client is not None and tasks:
        futures = [client.submit(push_part, *args, pure=False, key=f"online-push-{t}-{i}-"
                                 f"{plan.push_id}") for i, (t, args) in enumerate(tasks)]
        results = client.gather(futures)
    else:
        results = [push_part(*args) for _, args in tasks]
    out: dict[str, dict[str, Any]] = {}
    for j in plan.tables:
        j = jobs_run.get(j.table, j)
        out[j.table] = {"mode": j.mode, "slot": j.slot, "as_of": j.as_of,
                        "generation": j.generation, "written": 0, "deleted": 0, "job": j}
    for (table, _), result in zip(tasks, results):
        out[table]["written"] += result["written"]
        out[table]["deleted"] += result["deleted"]
        out[table]["mode"] = result["mode"]
        if "overlay" in result:
            meta = metas[table]
            metas[table] = dataclasses.replace(meta, overlay=result["overlay"],
                                               stale=max(meta.stale, result["overlay"]))
        if "fold" in result:
            out[table]["fold"] = result["fold"]
    for table, meta in metas.items():
        out[table]["meta"] = meta
    return out


def commit_push(store: Store, url: str, plan: PushPlan, written: dict[str, dict[str, Any]],
                record: dict[str, Any] | None) -> None:
    """Flip every pushed table's pointer to its new slot (one script each, after the lease
    check), fold each new overlay into its base, then write the offline record of the push.

    Args:
        store: the offline store (its lease is held by the caller).
        url: the Redis URL.
        plan: the plan.
        written: :func:`execute_push`'s result.
        record: the previous offline record, or None.
    """
    r = redis_client(url, protocol=2)  # the fold's replies are counted on the socket
    flip = r.register_script(FLIP_SCRIPT)
    tables = dict((record or {}).get("tables", {})) \
        if (record or {}).get("namespace") == plan.namespace else {}
    for planned in plan.tables:
        job = written.get(planned.table, {}).get("job", planned)
        if job.mode != "none":
            store.check_lease()  # a run whose lease was taken over never flips
            keys = TableKeys(plan.namespace, job.table)
            meta = written[job.table]["meta"]
            flip(keys=[keys.ptr, keys.meta(job.slot)],
                 args=[f"{job.slot}|{plan.push_id}", meta.dumps()])
        tables[job.table] = {"as_of": job.as_of, "generation": job.generation,
                             "slot": job.slot}
    store.write_json({"namespace": plan.namespace, "url": redact(url), "push_id": plan.push_id,
                      "pushed_at": dt.datetime.now(dt.UTC).isoformat(),
                      "tables": tables}, ONLINE_RECORD)
    for planned in plan.tables:  # a new base served: the old one and its overlays are unread
        job = written.get(planned.table, {}).get("job", planned)
        if job.mode == "full":
            keys = TableKeys(plan.namespace, job.table)
            for slot in (other_slot(job.slot), *OVERLAYS):
                retire_slot(r, keys, slot)
    for planned in plan.tables:  # served already: the fold only readies the next push
        job = written.get(planned.table, {}).get("job", planned)
        if job.mode in ("delta", "diff"):
            store.check_lease()
            started = time.perf_counter()
            keys = TableKeys(plan.namespace, job.table)
            written[job.table]["folded"] = fold_overlay(r, keys, job.slot, job.base_slot,
                                                        written[job.table].pop("fold", None))
            written[job.table]["fold_seconds"] = round(time.perf_counter() - started, 4)


def _latest(store: Store, table: str, committed: dict[str, dict[str, int]]
            ) -> tuple[str, int] | None:
    names = sorted((n for n in store.listdir(table) if n.startswith("as_of=")), reverse=True)
    for name in names:
        if any(is_published(f) for f in store.listdir(table, name)):
            as_of = name.split("=", 1)[1]
            return as_of, committed.get(table, {}).get(as_of, 0)
    return None


def _deltas(store: Store, latest: dict[str, tuple[str, int] | None]
            ) -> dict[str, dict[str, Any]]:
    """The materialization's delta records of the tables whose delta is of their latest
    as-of and still on disk (:mod:`featurestore.features.online_delta`)."""
    from ..layout import ONLINE_DELTA, ONLINE_DELTA_RECORD

    try:
        record = store.read_json(ONLINE_DELTA_RECORD)
    except (FileNotFoundError, ValueError):
        return {}
    out = {}
    for table, entry in record.items():
        target = latest.get(table)
        if isinstance(entry, dict) and target and entry.get("as_of") == target[0] \
                and store.exists(ONLINE_DELTA, table, f"as_of={target[0]}.parquet"):
            out[table] = entry
    return out


def push_online(store: Store, url: str, *, tables: dict[str, list[str]],
                recency: dict[str, list[str]], client: Client | None = None,
                parts: int = 4) -> PushReport:
    """Bring the online store up to the latest committed as-of of every table (the caller
    holds the store's writer lease).

    Args:
        store: the offline store.
        url: the Redis URL.
        tables: table -> entity keys (every table of the repository).
        recency: table -> its recency columns.
        client: the Dask client whose workers write, or None to write from here.
        parts: tasks per table for a whole rewrite.

    Returns:
        What was written per table.

    Raises:
        redis.exceptions.RedisError, OSError: Redis failed (the caller reports the online
            store behind; the served slots are untouched).
    """
    started = time.perf_counter()
    record = read_record(store)
    namespace = (record or {}).get("namespace") or namespace_for(store)
    push_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + \
        "-" + secrets.token_hex(3)
    committed = read_generations(store)  # before the files, as the memory store
    latest = {t: _latest(store, t, committed) for t in tables}
    r = redis_client(url)
    slots: dict[str, tuple[str | None, dict[str, SlotMeta | None]]] = {}
    for table in tables:
        keys = TableKeys(namespace, table)
        pointer = r.get(keys.ptr)
        served = pointer.decode().split("|", 1)[0] if pointer else None
        slots[table] = (served, {s: SlotMeta.loads(r.get(keys.meta(s)))
                                 for s in SLOTS + OVERLAYS})
    plan = plan_push(namespace, push_id, latest, slots, committed, tables, recency,
                     _deltas(store, latest))
    written = execute_push(store, url, plan, client, parts)
    commit_push(store, url, plan, written, record)
    report = PushReport(redact(url), namespace, push_id, seconds=time.perf_counter() - started)
    for table, info in written.items():
        report.tables[table] = {k: v for k, v in info.items()
                                if k not in ("meta", "job", "fold")}
    log.info("online push %s: %s", push_id, report.tables)
    return report


def online_status(store: Store, url: str, tables: list[str]) -> dict[str, dict[str, Any]]:
    """Per table: the latest committed as-of and generation, what Redis serves, and whether
    the online store is behind (``featurestore online status``).

    Args:
        store: the offline store.
        url: the Redis URL.
        tables: the repository's tables.

    Returns:
        table -> ``{"committed": {as_of, generation} | None, "served": {as_of, generation,
        push_id} | None, "behind": bool}``.

    Raises:
        redis.exceptions.RedisError, OSError: Redis unreachable.
    """
    record = read_record(store)
    committed = read_generations(store)
    r = redis_client(url)
    out = {}
    for table in tables:
        latest = _latest(store, table, committed)
        served = None
        if record:
            keys = TableKeys(record["namespace"], table)
            pointer = r.get(keys.ptr)
            if pointer:
                slot, push_id = pointer.decode().split("|", 1)
                meta = SlotMeta.loads(r.get(keys.meta(slot)))
                if meta is not None:
                    served = {"as_of": meta.as_of, "generation": meta.generation,
                              "push_id": push_id}
        out[table] = {
            "committed": {"as_of": latest[0], "generation": latest[1]} if latest else None,
            "served": served,
            "behind": latest is not None and (
                served is None or (served["as_of"], served["generation"]) != latest)}
    return out
