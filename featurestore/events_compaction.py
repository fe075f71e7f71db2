"""Small-file compaction of ``events`` (issue #14 item 2), exactly-once kept.

Rule: **one events file per event date per ingest run**. Ingest tasks still write one
``events/event_date=D/part-<file id>.parquet`` per raw file per date (a task is one gzip file);
at the end of ``ingest_weblog``, after every file's ledger record, the loose parts of each date
the run wrote are merged into ``part-c<digest of their file ids>.parquet`` (several outputs
only above ``events_target_mb``), rows in file id order, so a resumed run writes the bytes a
clean run writes. A date with one loose part keeps it as it is (nothing to merge).

Plan / execute / commit:

* plan (pure, :func:`resolve_day`, :func:`plan_merges`, :func:`plan_rewrites`): which parts
  are live, which are leftovers of a crash, which merge into which output;
* execute: one Dask task per date reads the inputs and publishes the outputs under their final
  names (:func:`_merge_task`, :func:`_rewrite_task`); inputs of 1 MiB and more are joined
  without decoding (their row groups copied as bytes, :mod:`featurestore.parquet_concat`),
  smaller ones are decoded and written as one row group;
* commit: per output, the record ``_ledger/weblog/_compaction/<date>/<output stem>.json``
  naming its inputs and each input's row range in the output; then the inputs are deleted.

A crash leaves one of: an output without a record (an orphan: deleted), a record whose inputs
still exist (finished: inputs deleted), a rewrite's record whose superseded output still exists
(finished: old output and record deleted). Our readers never double count: they take the live
view of a date (:func:`live_events`), which follows the same rules without deleting anything.
Recovery runs at the start of the next ingest (the ``_running.json`` marker says a run did not
finish) and again at its end, before merging.

Replacing a raw file whose rows sit in an output rewrites that output without the file's row
range (new name, record naming the output it ``replaces``, then the old output and record are
deleted) before the new version's task runs (:func:`rewrite_without`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import signal
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import layout
from .parquet_concat import concat_parquet
from .schema import conform
from .storage import Store

__all__ = ["COMPACTION", "COPY_MIN_BYTES", "CRASH_ENV", "DEFAULT_TARGET_MB", "DayView", "Merge",
           "Rewrite", "compact_events", "finish_run", "live_events", "live_files", "loose_id",
           "output_name", "plan_merges", "plan_rewrites", "recover", "resolve_day",
           "rewrite_without", "start_run", "write_events_file"]

EVENTS = layout.EVENTS
LEDGER = layout.ledger("weblog")
#: Records live under the web-log ledger: ``_compaction/<event date>/<output stem>.json``.
COMPACTION = "_compaction"
#: Present from the start of a run that writes events until its compaction finished.
RUNNING = "_running.json"
#: Test hook: ``compaction:<step>`` kills this process group at that step (reliability tests).
CRASH_ENV = "FEATURESTORE_TEST_CRASH_AT"
DEFAULT_TARGET_MB = 128.0
#: Merge inputs averaging at least this many bytes are joined without decoding (row groups
#: copied); below it they are decoded and written as one row group.
COPY_MIN_BYTES = 1 << 20
_OUT = "part-c"
_SUFFIX = ".parquet"


def _crash_point(step: str) -> None:
    """SIGKILL the CLI's process group (CLI, scheduler, workers: as ``kill -9`` of the group)
    when ``FEATURESTORE_TEST_CRASH_AT`` names ``step``; read only here."""
    if os.environ.get(CRASH_ENV) != f"compaction:{step}":
        return
    if os.getsid(0) == os.getpid():  # a session leader (the tests start the CLI so)
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def loose_id(name: str) -> str | None:
    """The file id of a loose ingest part ``part-<file id>.parquet`` (None for anything else:
    an output, a temporary file). File ids start with their drop's date, never with ``c``."""
    if not name.startswith("part-") or name.startswith(_OUT) or not name.endswith(_SUFFIX):
        return None
    return name[len("part-"):-len(_SUFFIX)] or None


def _is_output(name: str) -> bool:
    return name.startswith(_OUT) and name.endswith(_SUFFIX)


def output_name(file_ids: Iterable[str]) -> str:
    """The output holding ``file_ids``' rows: ``part-c<first 20 hex of sha256>.parquet`` of the
    sorted ids (deterministic: a resumed run names it as a clean run does).

    Args:
        file_ids: the input file ids.

    Returns:
        The output's base name.
    """
    digest = hashlib.sha256("\n".join(sorted(file_ids)).encode()).hexdigest()[:20]
    return f"{_OUT}{digest}{_SUFFIX}"


def _record_name(output: str) -> str:
    return output[:-len(_SUFFIX)] + ".json"


# -- plan (pure) ------------------------------------------------------------------------------
@dataclasses.dataclass
class DayView:
    """What one date's events folder holds once its compaction records are applied."""

    day: str
    #: published names readers take (loose parts and live outputs), sorted
    files: list[str] = dataclasses.field(default_factory=list)
    #: live name -> the file ids whose rows it holds (an output: in its row order)
    file_ids: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: live output -> its record
    records: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    #: recovery: outputs without a record (a crash before the record)
    orphans: list[str] = dataclasses.field(default_factory=list)
    #: recovery: outputs a live rewrite replaces (a crash before their deletion)
    superseded: list[str] = dataclasses.field(default_factory=list)
    #: recovery: records whose output is gone (a crash between deleting both)
    stale_records: list[str] = dataclasses.field(default_factory=list)
    #: recovery: loose parts whose rows a live output already holds (a crash mid deletes)
    leftovers: list[str] = dataclasses.field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Nothing for recovery to delete."""
        return not (self.orphans or self.superseded or self.stale_records or self.leftovers)

    def holder(self, file_id: str) -> str | None:
        """The live output holding ``file_id``'s rows (None: none does)."""
        return next((o for o, r in self.records.items()
                     if file_id in {i["file_id"] for i in r["inputs"]}), None)


def resolve_day(day: str, names: Iterable[str], records: Iterable[dict[str, Any]]) -> DayView:
    """The live view of one date from its listing and its compaction records (no I/O).

    Args:
        day: the event date (ISO).
        names: base names in ``events/event_date=<day>/``.
        records: every compaction record of the date.

    Returns:
        The :class:`DayView`.
    """
    published = {n for n in names if layout.is_published(n)}
    by_output = {r["output"]: r for r in records}
    # a rewrite supersedes the output it names once its own output exists
    superseded = {r["replaces"] for o, r in by_output.items()
                  if r.get("replaces") and o in published}
    view = DayView(day)
    view.stale_records = sorted(o for o in by_output if o not in published)
    view.superseded = sorted(o for o in superseded if o in published)
    for name in sorted(published):
        if _is_output(name):
            if name not in by_output:
                view.orphans.append(name)
            elif name not in superseded:
                view.records[name] = by_output[name]
                view.file_ids[name] = [i["file_id"] for i in by_output[name]["inputs"]]
    held = {fid for ids in view.file_ids.values() for fid in ids}
    for name in sorted(published):
        fid = loose_id(name)
        if fid is None:
            continue
        if fid in held:
            view.leftovers.append(name)
        else:
            view.file_ids[name] = [fid]
    view.files = sorted(view.file_ids)
    return view


@dataclasses.dataclass(frozen=True)
class Merge:
    """One output of a date's merge: its inputs (loose parts, in file id order)."""

    day: str
    output: str
    file_ids: tuple[str, ...]
    #: join the parts as bytes, row groups copied (else decode them into one row group)
    copy: bool = False

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(f"part-{fid}{_SUFFIX}" for fid in self.file_ids)


def plan_merges(day: str, loose: dict[str, int], committed: set[str],
                target_bytes: int, copy_min_bytes: int = COPY_MIN_BYTES) -> list[Merge]:
    """Which committed loose parts of ``day`` merge into which outputs.

    File ids in sorted order are cut into groups of at most ``target_bytes`` of parquet (a
    part alone above it is its own group); a group of one part is left as it is.

    Args:
        day: the event date.
        loose: file id -> size in bytes of each live loose part of the date.
        committed: file ids whose ledger record exists (others are never merged: their file
            may be redone and would write its part again).
        target_bytes: the largest output wanted.
        copy_min_bytes: a group whose parts average at least this many bytes is joined
            without decoding (``Merge.copy``).

    Returns:
        The merges (empty when nothing is to merge).
    """
    groups: list[list[str]] = []
    size = 0
    for fid in sorted(f for f in loose if f in committed):
        if not groups or (size + loose[fid] > target_bytes and groups[-1]):
            groups.append([])
            size = 0
        groups[-1].append(fid)
        size += loose[fid]
    return [Merge(day, output_name(g), tuple(g),
                  copy=sum(loose[f] for f in g) >= copy_min_bytes * len(g))
            for g in groups if len(g) > 1]


@dataclasses.dataclass(frozen=True)
class Rewrite:
    """One live output rewritten without some file ids' rows."""

    day: str
    source: str
    #: the kept inputs: ``(file id, start, stop)`` row ranges in ``source``
    keep: tuple[tuple[str, int, int], ...]
    removed: tuple[str, ...]

    @property
    def output(self) -> str | None:
        """The new output's name (None: nothing is kept, the output is only deleted)."""
        return output_name(f for f, _, _ in self.keep) if self.keep else None


def plan_rewrites(view: DayView, remove: set[str]) -> list[Rewrite]:
    """The outputs of ``view`` holding any of ``remove``, each without those file ids' rows.

    Args:
        view: the date's live view.
        remove: file ids whose rows must leave the outputs (replaced raw files).

    Returns:
        One :class:`Rewrite` per output concerned.
    """
    out = []
    for name, record in sorted(view.records.items()):
        gone = tuple(i["file_id"] for i in record["inputs"] if i["file_id"] in remove)
        if gone:
            keep = tuple((i["file_id"], *i["rows"]) for i in record["inputs"]
                         if i["file_id"] not in remove)
            out.append(Rewrite(view.day, name, keep, gone))
    return out


# -- reading ----------------------------------------------------------------------------------
def _folder(day: str) -> str:
    return f"event_date={day}"


def _records(store: Store, day: str) -> list[dict[str, Any]]:
    folder = (LEDGER, COMPACTION, day)
    return [store.read_json(*folder, n) for n in store.listdir(*folder)
            if n.endswith(".json") and not n.startswith(".")]


def live_events(store: Store, day: dt.date | str, names: list[str] | None = None) -> DayView:
    """The live view of one date: what every reader of ours takes as the date's events.

    Records are read only when the folder holds an output (a date never compacted costs its
    one listing, as before).

    Args:
        store: the store.
        day: the event date.
        names: the folder's listing when the caller has it.

    Returns:
        The :class:`DayView`.
    """
    day = day if isinstance(day, str) else day.isoformat()
    names = store.listdir(EVENTS, _folder(day)) if names is None else names
    records = _records(store, day) if any(_is_output(n) for n in names) else []
    return resolve_day(day, names, records)


def live_files(store: Store, day: dt.date | str) -> list[str]:
    """Paths (for ``store.fs``) of the live events files of ``day``, sorted.

    Args:
        store: the store.
        day: the event date.

    Returns:
        Full paths, empty when the date has no events.
    """
    view = live_events(store, day)
    return [store.path(EVENTS, _folder(view.day), n) for n in view.files]


def live_file_ids(store: Store, day: dt.date | str) -> set[str]:
    """The raw file ids whose rows the live events of ``day`` hold (a merged file stands for
    its inputs): what the ingest's partials of the date must cover.

    Args:
        store: the store.
        day: the event date.

    Returns:
        The file ids, empty when the date has no events.
    """
    return {fid for ids in live_events(store, day).file_ids.values() for fid in ids}


# -- execute (Dask tasks) ------------------------------------------------------------------------
def write_events_file(store: Store, body: pa.Table, *parts: str) -> None:
    """Publish one events file: every writer of ``events`` (ingest, compaction, the column
    backfill) goes through here, so all its files are written alike.

    pyarrow, from Arrow: 3.8x faster than the fastparquet write through pandas it replaced
    (issue #27: per-row Python strings were most of an ingest task's write), and read back
    with the same types by every reader (``conform``'s pandas metadata and Arrow schema).
    Statistics on the time column only: readers prune on time; customer ids span every
    file's whole range, so their min/max would prune nothing. No dictionary pages (ids and
    URLs are nearly unique per file; fastparquet wrote none either).

    Args:
        store: the store.
        body: the rows, conformed (:func:`featurestore.schema.conform`).
        parts: the path below the store root (``events``, ``event_date=D``, file name).
    """
    store.write_arrow(body, *parts, stats=["hit_time_gmt"], dictionary=False)


def _write_events(store: Store, table: pa.Table, day: str, name: str) -> None:
    """Publish a merged ``table`` as ingest publishes a part (:func:`write_events_file`)."""
    write_events_file(store, conform(table), EVENTS, _folder(day), name)


def _read(store: Store, day: str, name: str) -> pa.Table:
    return pq.read_table(store.path(EVENTS, _folder(day), name), filesystem=store.fs)


def _merge_task(store: Store, merges: list[Merge]) -> list[tuple[list[int], bool]]:
    """Merge one date's groups (runs on a worker): read each group's parts, publish the output
    under its final name. Returns, per merge, the row count of every input and whether the
    parts were joined as bytes.

    A merge planned with ``copy`` (parts of at least ``events_copy_min_mb`` on average) is
    joined as bytes, its parts' row groups copied (:mod:`featurestore.parquet_concat`: ~40x
    faster than decoding and encoding again); other merges, and parts whose schemas differ,
    are decoded and written as one row group, so a merge of many tiny files does not leave a
    file of many tiny row groups."""
    counts = []
    for merge in merges:
        folder = (EVENTS, _folder(merge.day))
        blobs = [store.fs.cat_file(store.path(*folder, p)) for p in merge.parts]
        joined = concat_parquet(blobs) if merge.copy else None
        if joined is not None:
            store.write_bytes(joined[0], *folder, merge.output)
            counts.append((joined[1], True))
            continue
        tables = [pq.read_table(pa.BufferReader(b)) for b in blobs]
        _write_events(store, pa.concat_tables(tables, promote_options="permissive"),
                      merge.day, merge.output)
        counts.append(([t.num_rows for t in tables], False))
    return counts


def _rewrite_task(store: Store, rewrite: Rewrite) -> None:
    """Publish ``rewrite.output``: the source's rows less the removed ranges (on a worker)."""
    source = _read(store, rewrite.day, rewrite.source)
    kept = [source.slice(start, stop - start) for _, start, stop in rewrite.keep]
    _write_events(store, pa.concat_tables(kept), rewrite.day, rewrite.output)


# -- commit ------------------------------------------------------------------------------------
def _ranges(file_ids: Iterable[str], counts: Iterable[int]) -> list[dict[str, Any]]:
    inputs, start = [], 0
    for fid, n in zip(file_ids, counts, strict=True):
        inputs.append({"file_id": fid, "part": f"part-{fid}{_SUFFIX}", "rows": [start, start + n]})
        start += n
    return inputs


def _write_record(store: Store, day: str, output: str, inputs: list[dict[str, Any]],
                  replaces: str | None = None, removed: Iterable[str] = ()) -> None:
    record = {"output": output, "event_date": day, "inputs": inputs,
              "rows": inputs[-1]["rows"][1] if inputs else 0, "replaces": replaces,
              "removed": sorted(removed), "created_at": dt.datetime.now(dt.UTC).isoformat()}
    store.write_json(record, LEDGER, COMPACTION, day, _record_name(output))


def _apply_recovery(store: Store, view: DayView) -> int:
    """Delete what a crash left (the order keeps every intermediate state readable)."""
    folder = (EVENTS, _folder(view.day))
    for name in view.orphans + view.leftovers:
        store.remove(*folder, name)
    for name in view.superseded:  # output first: its record still explains it until then
        store.remove(*folder, name)
        store.remove(LEDGER, COMPACTION, view.day, _record_name(name))
    for name in view.stale_records:
        store.remove(LEDGER, COMPACTION, view.day, _record_name(name))
    return len(view.orphans) + len(view.leftovers) + len(view.superseded) + len(
        view.stale_records)


def _dates_on_disk(store: Store) -> list[str]:
    return sorted(n.split("=", 1)[1] for n in store.listdir(EVENTS) if n.startswith(
        "event_date="))


def start_run(store: Store) -> list[str]:
    """Before a run writes events: finish what a crashed run left (when its marker is there),
    then set the marker.

    Args:
        store: the store (its writer lease held).

    Returns:
        The dates the crashed run may have left loose parts on (every date; empty when the
        last run finished).
    """
    crashed = store.exists(LEDGER, COMPACTION, RUNNING)
    dates = recover(store, _dates_on_disk(store)) if crashed else []
    store.write_json({"started_at": dt.datetime.now(dt.UTC).isoformat()},
                     LEDGER, COMPACTION, RUNNING)
    return dates


def finish_run(store: Store) -> None:
    """After a run's compaction committed: remove the marker (the next run skips recovery)."""
    store.remove(LEDGER, COMPACTION, RUNNING)


def crashed_dates(store: Store) -> list[str]:
    """Every events date when the last run did not finish (its marker is there), else none."""
    return _dates_on_disk(store) if store.exists(LEDGER, COMPACTION, RUNNING) else []


def recover(store: Store, dates: Iterable[str]) -> list[str]:
    """Finish or undo what a crashed compaction left on ``dates`` (no merge).

    Args:
        store: the store.
        dates: event dates to check.

    Returns:
        The dates checked.
    """
    dates = sorted(set(dates))
    for day in dates:
        view = resolve_day(day, store.listdir(EVENTS, _folder(day)), _records(store, day))
        if not view.clean:
            _apply_recovery(store, view)
    return dates


def rewrite_without(store: Store, client: Any, removals: dict[str, set[str]]) -> int:
    """Rewrite every live output holding a file id to remove, without its rows.

    Per output: publish the new output (a Dask task), write its record naming the output it
    replaces, delete the old output, then the old record. Runs before a replaced file's new
    version is ingested, so the new rows never meet the old ones.

    Args:
        store: the store.
        client: the Dask client.
        removals: event date -> file ids whose rows leave the outputs of that date.

    Returns:
        The number of outputs rewritten.
    """
    rewrites = []
    for day, ids in sorted(removals.items()):
        view = live_events(store, day)
        _apply_recovery(store, view)
        rewrites += plan_rewrites(view, ids)
    if not rewrites:
        return 0
    futures = [client.submit(_rewrite_task, store, r, pure=False) for r in rewrites
               if r.output is not None]
    client.gather(futures)
    _crash_point("rewrite-after-output")
    for r in rewrites:
        if r.output is not None:
            inputs = _ranges([f for f, _, _ in r.keep], [b - a for _, a, b in r.keep])
            _write_record(store, r.day, r.output, inputs, replaces=r.source, removed=r.removed)
            _crash_point("rewrite-after-record")
        store.remove(EVENTS, _folder(r.day), r.source)
        store.remove(LEDGER, COMPACTION, r.day, _record_name(r.source))
    return len(rewrites)


@dataclasses.dataclass
class CompactionReport:
    """What one compaction step did (``report.extra["compaction"]``)."""

    dates: int = 0
    outputs: int = 0
    inputs: int = 0
    bytes_in: int = 0
    #: outputs whose parts were joined as bytes (row groups copied), the others decoded
    joined: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _loose_sizes(store: Store, day: str) -> tuple[DayView, dict[str, int]]:
    entries = store.fs.ls(store.path(EVENTS, _folder(day)), detail=True, refresh=True) \
        if store.exists(EVENTS, _folder(day)) else []
    sizes = {e["name"].rstrip("/").rsplit("/", 1)[-1]: int(e.get("size") or 0) for e in entries}
    view = live_events(store, day, sorted(sizes))
    loose = {fids[0]: sizes[name] for name, fids in view.file_ids.items() if loose_id(name)}
    return view, loose


def compact_events(store: Store, client: Any, dates: Iterable[str], committed: set[str],
                   target_bytes: int, committed_more: Any = None,
                   copy_min_bytes: int = COPY_MIN_BYTES) -> CompactionReport:
    """Merge the committed loose parts of ``dates`` (one Dask task per date), commit a record
    per output, then delete the inputs.

    Args:
        store: the store (its writer lease held).
        client: the Dask client.
        dates: the event dates to compact (the run's, and a crashed run's).
        committed: file ids whose ledger record exists (this run's files).
        target_bytes: the largest output wanted (``events_target_mb``).
        copy_min_bytes: parts averaging at least this are joined without decoding
            (``events_copy_min_mb``).
        committed_more: a callable giving every ingested file id, called only when a date
            holds a loose part of a file outside ``committed`` (older runs' files).

    Returns:
        The :class:`CompactionReport`.
    """
    import time

    started = time.perf_counter()
    report = CompactionReport()
    plans: dict[str, list[Merge]] = {}
    for day in sorted(set(dates)):
        view, loose = _loose_sizes(store, day)
        if not view.clean:
            _apply_recovery(store, view)
        if len(loose) < 2:
            continue
        if committed_more is not None and set(loose) - committed:
            committed = committed | committed_more()
            committed_more = None
        merges = plan_merges(day, loose, committed, target_bytes, copy_min_bytes)
        if merges:
            plans[day] = merges
            report.inputs += sum(len(m.file_ids) for m in merges)
            report.bytes_in += sum(loose[f] for m in merges for f in m.file_ids)
    if not plans:
        report.seconds = round(time.perf_counter() - started, 3)
        return report
    futures = {day: client.submit(_merge_task, store, merges, pure=False)
               for day, merges in plans.items()}
    counts = dict(zip(futures, client.gather(list(futures.values())), strict=True))
    _crash_point("after-output")
    for day, merges in sorted(plans.items()):
        for merge, (rows, joined) in zip(merges, counts[day], strict=True):
            report.joined += joined
            _write_record(store, day, merge.output, _ranges(merge.file_ids, rows))
            _crash_point("after-record")
    for day, merges in sorted(plans.items()):
        for merge in merges:
            for i, part in enumerate(merge.parts):
                store.remove(EVENTS, _folder(day), part)
                if i == 0:
                    _crash_point("mid-deletes")
    report.dates = len(plans)
    report.outputs = sum(len(m) for m in plans.values())
    report.seconds = round(time.perf_counter() - started, 3)
    return report
