"""Backfill of newly declared columns from the raw drops (SPEC §3a, issue 26 item 4).

A repository that declares a column (``sources.weblog.columns``) after drops were ingested
leaves the older ``events`` files without it. ``featurestore backfill`` first runs this: it
re-reads, for every live events file lacking a declared column, the raw files the ledger
recorded for its rows, parses only the missing columns again (the same parser as ingest, so
the same rows in the same order) and rewrites the file with them; then the feature tables
are rebuilt as before.

Plan / execute / commit:

* plan (pure, :func:`plan_column_backfill`): which live events files lack which declared
  columns, and which raw file (URL, md5) holds the rows of each of their inputs;
* execute (one Dask task per events file, :func:`_fill_file`): per input file id, read its
  raw file, check its md5 against the ledger, parse it with the missing columns, take its rows
  of the file's event date and check they are the stored rows (same count, same
  ``hit_time_gmt``); a raw file gone, changed or disagreeing leaves the column null for its
  rows. Then, in this order, all under deterministic names: the file's note
  (``_state/column_backfill/<date>/<events file>.json``: which inputs could not be filled),
  the inputs' partial daily aggregates (:func:`featurestore.features.partials.write_partials`,
  the ingest's own function), and last the events file itself, rewritten in place (atomic
  publish: the old file or the new one, never half);
* commit: ``_state/columns.json`` names, per declared column, the first event date from which
  it is complete, written last.

Exactly once: rows are never added, only a column to rows that are there; a file that already
has a column is not touched again, so a crash anywhere and a re-run give the tables of one
clean run (its note, written before the file, keeps what a crashed run found unfillable).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import time
from collections.abc import Iterable, Mapping
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import layout
from .events_compaction import live_events, write_events_file
from .features.daily import DailyPlan
from .ledger import ledger_entries
from .schema import conform
from .sources.weblog import (
    COLUMN_ARROW_TYPES,
    DEFAULT_MAX_LATE_DAYS,
    RawFile,
    parse_file,
)
from .storage import Store, options_for

__all__ = ["COLUMNS_RECORD", "NOTES", "ColumnBackfillPlan", "ColumnBackfillReport",
           "EventsFile", "backfill_columns", "column_completeness", "plan_column_backfill"]

#: The commit record: per declared column, from which event date it is complete.
COLUMNS_RECORD = f"{layout.STATE_ROOT}/columns.json"
#: Per rewritten events file, what could not be filled (written before the file).
NOTES = f"{layout.STATE_ROOT}/column_backfill"
#: Test hook (reliability tests): ``backfill:<step>`` kills the process group at that step.
CRASH_ENV = "FEATURESTORE_TEST_CRASH_AT"


@dataclasses.dataclass(frozen=True)
class EventsFile:
    """One live events file: its date, name, schema columns and inputs' row ranges."""

    day: str
    name: str
    columns: tuple[str, ...]
    #: ``(file id, start, stop)`` per input, in row order (a loose part: one, to ``rows``)
    inputs: tuple[tuple[str, int, int], ...]


@dataclasses.dataclass(frozen=True)
class RawSource:
    """Where an ingested raw file was read from, and what it was."""

    url: str
    drop: str
    name: str
    md5: str


@dataclasses.dataclass(frozen=True)
class FillTask:
    """One events file to rewrite with ``columns`` (name -> type)."""

    file: EventsFile
    columns: tuple[tuple[str, str], ...]
    #: file id -> its raw file (absent: the ledger has no record of it)
    sources: tuple[tuple[str, RawSource], ...]
    #: every declared column, in declared order (the rewritten file's column order)
    order: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ColumnBackfillPlan:
    """What a column backfill does (pure: see :func:`plan_column_backfill`)."""

    declared: tuple[tuple[str, str], ...]
    tasks: tuple[FillTask, ...]

    @property
    def columns(self) -> list[str]:
        """The declared columns some events file lacks."""
        return sorted({c for t in self.tasks for c, _ in t.columns})


@dataclasses.dataclass
class ColumnBackfillReport:
    """What ``featurestore backfill`` did to the declared columns (``--json``: ``columns``)."""

    #: columns filled this run
    columns: list[str] = dataclasses.field(default_factory=list)
    files_rewritten: int = 0
    rows_filled: int = 0
    #: rows left null because their raw file is gone, changed or disagrees
    rows_unfilled: int = 0
    #: raw files that could not be read again: ``{"file", "reason"}``
    raw_unavailable: list[dict[str, str]] = dataclasses.field(default_factory=list)
    #: column -> values that did not parse as its type (stored as null)
    column_bad_values: dict[str, int] = dataclasses.field(default_factory=dict)
    #: every declared column -> ``{"type", "complete_from"}`` (``complete_from`` None: every
    #: event date is complete; a date: the column is null for some rows before it)
    completeness: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _crash_point(step: str) -> None:
    """SIGKILL the CLI's process group (CLI, scheduler, workers: as ``kill -9`` of the group)
    when ``FEATURESTORE_TEST_CRASH_AT`` names ``step``; on a worker too, when the group is
    the one the tests start the CLI in (a session of its own)."""
    if os.environ.get(CRASH_ENV) != f"backfill:{step}":
        return
    if os.getpgrp() == os.getsid(0):  # the CLI's own session (the tests start it so)
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


# -- plan (pure) -----------------------------------------------------------------------------
def plan_column_backfill(declared: Mapping[str, str], files: Iterable[EventsFile],
                         sources: Mapping[str, RawSource]) -> ColumnBackfillPlan:
    """Which events files get which declared columns, from which raw files.

    Args:
        declared: the weblog source's declared columns (name -> type), in order.
        files: every live events file.
        sources: file id -> the raw file the ledger recorded for it.

    Returns:
        The plan: one task per events file lacking a declared column (columns in declared
        order), files in date and name order.
    """
    tasks = []
    for f in sorted(files, key=lambda f: (f.day, f.name)):
        missing = tuple((c, t) for c, t in declared.items() if c not in f.columns)
        if not missing:
            continue
        ids = [fid for fid, _, _ in f.inputs]
        tasks.append(FillTask(f, missing, tuple((i, sources[i]) for i in ids if i in sources),
                              tuple(declared)))
    return ColumnBackfillPlan(tuple(declared.items()), tuple(tasks))


# -- reads for the plan ----------------------------------------------------------------------
def _events_files(store: Store) -> list[EventsFile]:
    """Every live events file with its columns (footer reads) and inputs' row ranges."""
    out = []
    for day in store.partitions(layout.EVENTS, "event_date"):
        view = live_events(store, day)
        for name in view.files:
            meta = pq.read_metadata(store.path(layout.EVENTS, f"event_date={day}", name),
                                    filesystem=store.fs)
            columns = tuple(meta.schema.to_arrow_schema().names)
            record = view.records.get(name)
            if record is not None:
                inputs = tuple((i["file_id"], *i["rows"]) for i in record["inputs"])
            else:
                inputs = ((view.file_ids[name][0], 0, meta.num_rows),)
            out.append(EventsFile(day, name, columns, inputs))
    return out


def _raw_sources(store: Store, raw_root: str | None) -> dict[str, RawSource]:
    """File id -> raw file, from the ledger's records (``raw_root``: where the drops are now,
    instead of the URL each record names)."""
    out = {}
    for key, record in ledger_entries(store).items():
        if record.get("status") != "ingested" or "file_id" not in record:
            continue
        drop, name = key.split("/", 1)
        url = record["file"] if raw_root is None else f"{raw_root.rstrip('/')}/{drop}/{name}"
        out[record["file_id"]] = RawSource(url, drop, name, record.get("md5", ""))
    return out


# -- execute ---------------------------------------------------------------------------------
def _read_raw(source: RawSource, options: dict[str, Any]) -> tuple[RawFile, bytes] | str:
    """The raw file and its bytes, or why it cannot be used."""
    folder = source.url.rsplit("/", 1)[0]
    try:
        with fsspec.open(source.url, "rb", **options) as f:
            data = f.read()
        with fsspec.open(f"{folder}/column_headers.tsv", "rb", **options) as f:
            header = tuple(f.read().decode("utf-8", "replace").rstrip("\r\n").split("\t"))
    except (FileNotFoundError, OSError) as exc:
        return f"raw file gone ({type(exc).__name__})"
    import hashlib

    if source.md5 and hashlib.md5(data).hexdigest() != source.md5:
        return "raw file changed since it was ingested (md5 differs)"
    raw = RawFile(source.url, dt.date.fromisoformat(source.drop), source.name, len(data),
                  header, None)
    return raw, data


def _fill_file(store: Store, task: FillTask, raw_options: dict[str, Any], max_late_days: int,
               daily: DailyPlan | None) -> dict[str, Any]:
    """Rewrite one events file with ``task.columns`` (runs on a worker; see module doc)."""
    from .features.partials import write_partials

    f = task.file
    folder = (layout.EVENTS, f"event_date={f.day}")
    stored = pq.read_table(store.path(*folder, f.name), filesystem=store.fs)
    declared = dict(task.columns)
    sources = dict(task.sources)
    pieces: dict[str, list[pa.Array]] = {c: [] for c in declared}
    gone: list[dict[str, str]] = []
    bad: dict[str, dict[str, int]] = {}  # file id -> column -> bad values (whole file)
    filled = unfilled = 0
    day = dt.date.fromisoformat(f.day)
    for fid, start, stop in f.inputs:
        n = stop - start
        got = _read_raw(sources[fid], raw_options) if fid in sources else \
            "no ledger record names this file"
        rows = None
        if not isinstance(got, str):
            raw, data = got
            try:
                parsed = parse_file(raw, data, max_late_days, declared)
            except Exception as exc:  # noqa: BLE001 - reported, the rows stay null
                got = f"raw file no longer parses ({exc})"
            else:
                events = parsed.events
                mask = pc.equal(events.column("event_date"), pa.scalar(day, pa.date32()))
                rows = events.filter(mask)
                times = stored.column("hit_time_gmt").slice(start, n)
                if rows.num_rows != n or not rows.column("hit_time_gmt").equals(times):
                    got = "raw file's rows differ from the stored ones (other settings?)"
                    rows = None
        if rows is None:
            gone.append({"file": sources[fid].url if fid in sources else fid, "reason": got})
            unfilled += n
            for c, t in declared.items():
                pieces[c].append(pa.nulls(n, COLUMN_ARROW_TYPES[t]))
            continue
        filled += n
        for c in declared:
            pieces[c].append(rows.column(c).combine_chunks())
        bad[fid] = parsed.column_bad
    table = stored
    for c, t in declared.items():
        column = pa.concat_arrays(pieces[c]) if pieces[c] else pa.nulls(0,
                                                                         COLUMN_ARROW_TYPES[t])
        table = table.append_column(pa.field(c, COLUMN_ARROW_TYPES[t]), column)
    # the order a fresh ingest writes: the event columns, then the declared ones
    first = [n for n in table.column_names if n not in task.order]
    table = table.select(first + [n for n in task.order if n in table.column_names])
    note = {"events_file": f.name, "event_date": f.day, "columns": list(declared),
            "unfilled": gone, "rows_filled": filled, "rows_unfilled": unfilled,
            "bad_values_by_file": bad}
    store.write_json(note, NOTES, f.day, f"{f.name}.json")
    _crash_point("task-after-note")
    if daily is not None:  # the inputs' partials, from the rows as they now are
        with_date = table.append_column(
            "event_date", pa.array(np.full(table.num_rows, np.datetime64(day, "D"))).cast(
                pa.date32()))
        for fid, start, stop in f.inputs:
            write_partials(store, daily, day, fid, with_date.slice(start, stop - start))
    _crash_point("task-before-events")
    body = conform(table, nullable=[n for n in table.column_names
                                    if n in declared or n in _nullable(stored)])
    write_events_file(store, body, *folder, f.name)
    return note


def _nullable(table: pa.Table) -> set[str]:
    from .schema import nullable_columns

    return set(nullable_columns(table.schema))


# -- commit ----------------------------------------------------------------------------------
def column_completeness(store: Store, declared: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Per declared column, its type and the first event date from which it is complete.

    Args:
        store: the store.
        declared: the declared columns (name -> type).

    Returns:
        Column -> ``{"type", "complete_from", "pending"}``: ``complete_from`` is None when
        every event date has the column from the raw drops, else the day after the latest
        date holding rows a backfill could not fill (their raw file gone or changed);
        ``pending`` is True when events ingested before the column was declared still lack
        it (``featurestore backfill`` fills them).
    """
    try:
        record = store.read_json(COLUMNS_RECORD)
    except FileNotFoundError:
        record = {"columns": {}}
    first = _first_events_columns(store) if any(
        c not in record.get("columns", {}) for c in declared) else None
    out = {}
    for c, t in declared.items():
        known = record.get("columns", {}).get(c)
        pending = known is None and first is not None and c not in first
        out[c] = {"type": t, "complete_from": (known or {}).get("complete_from"),
                  "pending": pending}
    return out


def _first_events_columns(store: Store) -> set[str] | None:
    """The columns of the earliest date's first live events file (None: no events)."""
    days = store.partitions(layout.EVENTS, "event_date") if store.exists(layout.EVENTS) else []
    if not days:
        return None
    view = live_events(store, days[0])
    if not view.files:
        return None
    meta = pq.read_schema(store.path(layout.EVENTS, f"event_date={days[0]}", view.files[0]),
                          filesystem=store.fs)
    return set(meta.names)


def _complete_from(store: Store, declared: Mapping[str, str]) -> dict[str, str | None]:
    """From every note: per column, the day after the latest date with unfilled rows."""
    latest: dict[str, str] = {}
    for day in store.listdir(NOTES):
        if day.startswith((".", "_")):
            continue
        for name in store.listdir(NOTES, day):
            if not name.endswith(".json") or name.startswith("."):
                continue
            note = store.read_json(NOTES, day, name)
            if not note.get("rows_unfilled"):
                continue
            for c in note.get("columns", []):
                latest[c] = max(latest.get(c, day), day)
    return {c: ((dt.date.fromisoformat(latest[c]) + dt.timedelta(days=1)).isoformat()
                if c in latest else None) for c in declared}


def backfill_columns(store: Store, declared: Mapping[str, str], *, client: Any,
                     raw_root: str | None = None,
                     raw_storage_options: dict[str, Any] | None = None,
                     max_late_days: int = DEFAULT_MAX_LATE_DAYS,
                     daily: DailyPlan | None = None) -> ColumnBackfillReport:
    """Fill every declared column the live events files lack from the raw drops, once.

    Holds the store's writer lease.

    Args:
        store: the store.
        declared: the weblog source's declared columns (name -> type).
        client: the Dask client.
        raw_root: where the drops are now (default: each raw file's URL as the ledger
            recorded it).
        raw_storage_options: fsspec options for the raw files (default: the store's when the
            protocol is the same).
        max_late_days: the ``max_late_days`` the drops were ingested with (the parse must
            select the rows ingest kept).
        daily: the store repository's daily plan: each filled file's partials are written
            again for it (None: none are).

    Returns:
        The report (``completeness`` for every declared column).
    """
    started = time.perf_counter()
    report = ColumnBackfillReport()
    declared = dict(declared)
    with store.lock("backfill columns"):
        if declared and store.exists(layout.EVENTS):
            plan = plan_column_backfill(declared, _events_files(store),
                                        _raw_sources(store, raw_root))
        else:
            plan = ColumnBackfillPlan(tuple(declared.items()), ())
        report.columns = plan.columns
        if plan.tasks:
            urls = [s.url for t in plan.tasks for _, s in t.sources]
            probe = raw_root or (urls[0] if urls else None)
            options = (options_for(probe, store, raw_storage_options) or {}) if probe else {}
            bad_by_file: dict[str, dict[str, int]] = {}
            futures = [client.submit(_fill_file, store, t, options, max_late_days, daily,
                                     pure=False) for t in plan.tasks]
            from distributed import as_completed

            for i, done in enumerate(as_completed(futures)):
                note = done.result()
                report.files_rewritten += 1
                report.rows_filled += note["rows_filled"]
                report.rows_unfilled += note["rows_unfilled"]
                for item in note["unfilled"]:
                    if item not in report.raw_unavailable:
                        report.raw_unavailable.append(item)
                bad_by_file.update(note["bad_values_by_file"])  # a file of 2 dates: once
                if i == 0:
                    _crash_point("after-first-file")
            for counts in bad_by_file.values():
                for c, n in counts.items():
                    report.column_bad_values[c] = report.column_bad_values.get(c, 0) + n
            _crash_point("before-record")
        # commit: completeness of every declared column, from every note (a crashed run's too)
        starts = _complete_from(store, declared)
        columns = {c: {"type": t, "complete_from": starts[c]} for c, t in declared.items()}
        previous = {c: {k: v for k, v in info.items() if k != "pending"}
                    for c, info in column_completeness(store, declared).items()}
        if declared and previous != columns:
            store.write_json({"columns": columns,
                              "written_at": dt.datetime.now(dt.UTC).isoformat()},
                             COLUMNS_RECORD)
        report.completeness = {c: {**info, "pending": False} for c, info in columns.items()}
    report.raw_unavailable.sort(key=lambda item: item["file"])
    report.seconds = round(time.perf_counter() - started, 3)
    return report
