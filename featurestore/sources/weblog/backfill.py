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
* execute (one Dask task per events file, :func:`_fill_file`): per input file id that lacks
  a column, read its raw file, check its md5 against the ledger, parse it with the columns,
  take its rows of the file's event date and check they are the stored rows (same count, same
  ``hit_time_gmt``); a raw file gone, changed or disagreeing leaves the column null for its
  rows; inputs that have the column keep their values. Then, in this order, all under
  deterministic names: the inputs' partial daily aggregates
  (:func:`featurestore.features.partials.write_partials`, the ingest's own function), the
  events file itself, rewritten in place (atomic publish: the old file or the new one, never
  half), and last its note ``_state/column_backfill/<date>/<events file>.json``: which inputs
  now have which columns, which could not be filled;
* commit: ``_state/columns.json`` names, per declared column, the first event date from which
  it is complete, written last.

An input (a raw file's rows) has a column when its ledger record says it was ingested with it
(``columns``) or a note says a backfill filled it: not merely when its events file has the
column, since a later ingest may merge a part written before the column was declared (its
rows null) with newer ones.

Exactly once: rows are never added, only a column's values to rows that are there; an input
a note says is filled is not read again, and one whose note a crash lost is filled again with
the same values, so a crash anywhere and a re-run give the tables of one clean run.
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

from ... import layout
from ...events_compaction import live_events, write_events_file
from ...features.daily import DailyPlan
from ...ledger import ledger_entries
from ...schema import conform
from ...storage import Store, options_for
from .drops import RawFile
from .parse import COLUMN_ARROW_TYPES, DEFAULT_MAX_LATE_DAYS, parse_file

__all__ = ["COLUMNS_RECORD", "NOTES", "ColumnBackfillPlan", "ColumnBackfillReport",
           "EventsFile", "backfill_columns", "column_completeness", "plan_column_backfill"]

#: The commit record: per declared column, from which event date it is complete.
COLUMNS_RECORD = layout.COLUMNS_RECORD
#: Per rewritten events file, which inputs got which columns (written after the file).
NOTES = layout.COLUMN_NOTES
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
    #: the declared columns it was ingested with (its ledger record's ``columns``)
    columns: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class FillTask:
    """One events file to rewrite with ``columns`` (name -> type)."""

    file: EventsFile
    columns: tuple[tuple[str, str], ...]
    #: file id -> its raw file (absent: the ledger has no record of it)
    sources: tuple[tuple[str, RawSource], ...]
    #: every declared column, in declared order (the rewritten file's column order)
    order: tuple[str, ...] = ()
    #: per input file id, the columns of ``columns`` its rows need (others keep theirs)
    needs: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclasses.dataclass(frozen=True)
class ColumnBackfillPlan:
    """What a column backfill does (pure: see :func:`plan_column_backfill`)."""

    declared: tuple[tuple[str, str], ...]
    tasks: tuple[FillTask, ...]
    #: raw files an earlier backfill could not use from where they would be read now, whose
    #: rows are not tried again: ``(file, reason)``, sorted
    not_retried: tuple[tuple[str, str], ...] = ()

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
    #: raw files an earlier backfill found unusable at the same place, not tried again (their
    #: rows stay null; ``--raw`` naming where the drops are now tries them again):
    #: ``{"file", "reason"}``
    raw_not_retried: list[dict[str, str]] = dataclasses.field(default_factory=list)
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
                         sources: Mapping[str, RawSource],
                         filled: Mapping[str, Iterable[str]] | None = None,
                         given_up: Mapping[str, Mapping[str, Any]] | None = None
                         ) -> ColumnBackfillPlan:
    """Which events files get which declared columns, for which inputs, from which raw files.

    Args:
        declared: the weblog source's declared columns (name -> type), in order.
        files: every live events file.
        sources: file id -> the raw file the ledger recorded for it (with the columns it was
            ingested with).
        filled: file id -> columns an earlier backfill filled for it (the notes).
        given_up: file id -> ``{"file", "reason", "columns"}``: an earlier backfill could not
            use its raw file read from ``file`` (the notes). Its rows are not tried again for
            those columns while the raw file would be read from the same place and its events
            file has the column (null there); a new place (``--raw``) tries them again.

    Returns:
        The plan: one task per events file with an input lacking a declared column (the
        file lacks it, or the input was neither ingested with it nor filled by a backfill,
        and was not given up); columns in declared order, files in date and name order.
    """
    filled = filled or {}
    given_up = given_up or {}
    tasks = []
    skipped: set[tuple[str, str]] = set()
    for f in sorted(files, key=lambda f: (f.day, f.name)):
        needs = []
        for fid, _, _ in f.inputs:
            have = set(sources[fid].columns if fid in sources else ()) | set(
                filled.get(fid, ()))
            gone = given_up.get(fid)
            if gone is not None and gone["file"] == (sources[fid].url if fid in sources
                                                     else fid):
                kept = {c for c in gone["columns"] if c in f.columns and c not in have}
                if kept:
                    skipped.add((gone["file"], gone["reason"]))
                    have |= kept  # null for good, until the raw file is found elsewhere
            needs.append((fid, tuple(c for c in declared
                                     if c not in f.columns or c not in have)))
        wanted = {c for _, cs in needs for c in cs}
        if not wanted:
            continue
        ids = [fid for fid, _, _ in f.inputs]
        tasks.append(FillTask(f, tuple((c, t) for c, t in declared.items() if c in wanted),
                              tuple((i, sources[i]) for i in ids if i in sources),
                              tuple(declared), tuple(needs)))
    return ColumnBackfillPlan(tuple(declared.items()), tuple(tasks), tuple(sorted(skipped)))


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
        out[record["file_id"]] = RawSource(url, drop, name, record.get("md5", ""),
                                           tuple(record.get("columns", ())))
    return out


def _notes(store: Store) -> list[dict[str, Any]]:
    """Every backfill note (one per events file a backfill rewrote)."""
    out = []
    for day in store.listdir(NOTES):
        if day.startswith((".", "_")):
            continue
        out += [store.read_json(NOTES, day, n) for n in store.listdir(NOTES, day)
                if n.endswith(".json") and not n.startswith(".")]
    return out


def _given_up(notes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """File id -> ``{"file", "reason", "columns"}`` of the inputs a backfill could not fill
    from their raw file (``file``: where it was read from), from every note; an input a later
    note says was filled for a column is not given up for it."""
    filled = _filled(notes)
    out: dict[str, dict[str, Any]] = {}
    for note in notes:
        for fid, item in note.get("given_up", {}).items():
            columns = set(note.get("unfilled", {}).get(fid, ())) - filled.get(fid, set())
            if columns:
                entry = out.setdefault(fid, {"file": item["file"], "reason": item["reason"],
                                             "columns": set()})
                entry["columns"] |= columns
    return out


def _filled(notes: list[dict[str, Any]]) -> dict[str, set[str]]:
    """File id -> the columns a backfill filled for it, from every note."""
    out: dict[str, set[str]] = {}
    for note in notes:
        for fid, columns in note.get("filled", {}).items():
            out.setdefault(fid, set()).update(columns)
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
               daily: DailyPlan | None, ext: Any = None) -> dict[str, Any]:
    """Rewrite one events file with ``task.columns`` (runs on a worker; see module doc).

    Returns:
        Its note: ``filled`` / ``unfilled`` (file id -> columns), ``unavailable``
        (``{"file", "reason"}``), ``rows_filled``, ``rows_unfilled``, ``bad_values_by_file``.
    """
    from ...features.partials import write_partials

    f = task.file
    folder = (layout.EVENTS, f"event_date={f.day}")
    stored = pq.read_table(store.path(*folder, f.name), filesystem=store.fs)
    declared = dict(task.columns)
    sources = dict(task.sources)
    needs = dict(task.needs)
    pieces: dict[str, list[pa.Array]] = {c: [] for c in declared}
    gone: list[dict[str, str]] = []
    bad: dict[str, dict[str, int]] = {}  # file id -> column -> bad values (whole file)
    filled: dict[str, list[str]] = {}
    unfilled: dict[str, list[str]] = {}
    given_up: dict[str, dict[str, str]] = {}  # file id -> where its raw file failed, why
    rows_filled = rows_unfilled = 0
    positions: dict[str, np.ndarray] = {}  # file id -> its rows' places in the parsed file
    day = dt.date.fromisoformat(f.day)
    for fid, start, stop in f.inputs:
        n = stop - start
        need = [c for c in needs.get(fid, tuple(declared)) if c in declared]
        rows = None
        if need:
            got = _read_raw(sources[fid], raw_options) if fid in sources else \
                "no ledger record names this file"
            if not isinstance(got, str):
                raw, data = got
                try:
                    parsed = parse_file(raw, data, max_late_days, {c: declared[c] for c in need})
                except Exception as exc:  # noqa: BLE001 - reported, the rows stay null
                    got = f"raw file no longer parses ({exc})"
                else:
                    mask = pc.equal(parsed.events.column("event_date"),
                                    pa.scalar(day, pa.date32()))
                    rows = parsed.events.filter(mask)
                    positions[fid] = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
                    times = stored.column("hit_time_gmt").slice(start, n)
                    if rows.num_rows != n or not rows.column("hit_time_gmt").equals(times):
                        got = "raw file's rows differ from the stored ones (other settings?)"
                        rows = None
            if rows is None:
                where = sources[fid].url if fid in sources else fid
                gone.append({"file": where, "reason": got})
                given_up[fid] = {"file": where, "reason": got}
                unfilled[fid] = need
                rows_unfilled += n
            else:
                filled[fid] = need
                rows_filled += n
                bad[fid] = parsed.column_bad
        for c, t in declared.items():
            if c in need:
                pieces[c].append(rows.column(c).combine_chunks() if rows is not None
                                 else pa.nulls(n, COLUMN_ARROW_TYPES[t]))
            elif c in stored.column_names:  # this input has it: kept as it is
                pieces[c].append(stored.column(c).slice(start, n).combine_chunks().cast(
                    COLUMN_ARROW_TYPES[t]))
            else:
                pieces[c].append(pa.nulls(n, COLUMN_ARROW_TYPES[t]))
    table = stored
    for c, t in declared.items():
        column = pa.concat_arrays(pieces[c]) if pieces[c] else pa.nulls(0,
                                                                         COLUMN_ARROW_TYPES[t])
        field = pa.field(c, COLUMN_ARROW_TYPES[t])
        if c in table.column_names:
            table = table.set_column(table.column_names.index(c), field, column)
        else:
            table = table.append_column(field, column)
    # the order a fresh ingest writes: the event columns, then the declared ones
    first = [n for n in table.column_names if n not in task.order]
    table = table.select(first + [n for n in task.order if n in table.column_names])
    if daily is not None:  # the inputs' partials, from the rows as they now are
        with_date = table.append_column(
            "event_date", pa.array(np.full(table.num_rows, np.datetime64(day, "D"))).cast(
                pa.date32()))
        for fid, start, stop in f.inputs:
            write_partials(store, daily, day, fid, with_date.slice(start, stop - start))
            if ext is not None and fid in filled:  # SPEC §3a states: they need the rows'
                from ...features.aggs.engine import write_ext_partials  # places in the file

                write_ext_partials(store, ext, day, fid, with_date.slice(start, stop - start),
                                   positions[fid])
    _crash_point("task-before-events")
    body = conform(table, nullable=[n for n in table.column_names
                                    if n in task.order or n in _nullable(stored)])
    write_events_file(store, body, *folder, f.name)
    _crash_point("task-after-events")
    # the note last: an input counts as filled only once its rows are published
    try:
        previous = store.read_json(NOTES, f.day, f"{f.name}.json")
    except FileNotFoundError:
        previous = {}
    for fid, columns in previous.get("filled", {}).items():
        filled[fid] = sorted(set(filled.get(fid, [])) | set(columns))
    for fid, columns in previous.get("unfilled", {}).items():
        unfilled[fid] = sorted(set(unfilled.get(fid, [])) | set(columns))
    unfilled = {fid: cs for fid, cs in ((k, [c for c in v if c not in filled.get(k, [])])
                                        for k, v in unfilled.items()) if cs}
    # where each still-unfilled input's raw file failed: the next backfill does not try it
    # there again (kept from the previous note unless this run tried it)
    given_up = {fid: given_up.get(fid) or previous.get("given_up", {}).get(fid)
                for fid in unfilled if given_up.get(fid) or
                previous.get("given_up", {}).get(fid)}
    note = {"events_file": f.name, "event_date": f.day, "filled": filled,
            "unfilled": unfilled, "unavailable": gone, "given_up": given_up,
            "rows_filled": rows_filled, "rows_unfilled": rows_unfilled,
            "bad_values_by_file": bad}
    store.write_json(note, NOTES, f.day, f"{f.name}.json")
    return note


def _nullable(table: pa.Table) -> set[str]:
    from ...schema import nullable_columns

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


def _complete_from(notes: list[dict[str, Any]], declared: Mapping[str, str]
                   ) -> dict[str, str | None]:
    """From every note: per column, the day after the latest date with rows left null (an
    input unfilled there and filled by no later backfill)."""
    filled = _filled(notes)
    latest: dict[str, str] = {}
    for note in notes:
        day = note["event_date"]
        for fid, columns in note.get("unfilled", {}).items():
            for c in columns:
                if c not in filled.get(fid, set()):
                    latest[c] = max(latest.get(c, day), day)
    return {c: ((dt.date.fromisoformat(latest[c]) + dt.timedelta(days=1)).isoformat()
                if c in latest else None) for c in declared}


def backfill_columns(store: Store, declared: Mapping[str, str], *, client: Any,
                     raw_root: str | None = None,
                     raw_storage_options: dict[str, Any] | None = None,
                     max_late_days: int = DEFAULT_MAX_LATE_DAYS,
                     daily: DailyPlan | None = None, ext: Any = None) -> ColumnBackfillReport:
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
        ext: the repository's SPEC §3a plan (``features.aggs.engine.ext_plan``): the partial
            states of each input filled are written again too (None: none are; an input not
            re-read keeps its own, and materialization reads events where they do not cover).

    Returns:
        The report (``completeness`` for every declared column).
    """
    started = time.perf_counter()
    report = ColumnBackfillReport()
    declared = dict(declared)
    with store.lock("backfill columns"):
        if declared and store.exists(layout.EVENTS):
            notes = _notes(store)
            plan = plan_column_backfill(declared, _events_files(store),
                                        _raw_sources(store, raw_root), _filled(notes),
                                        _given_up(notes))
        else:
            plan = ColumnBackfillPlan(tuple(declared.items()), ())
        report.columns = plan.columns
        report.raw_not_retried = [{"file": f, "reason": r} for f, r in plan.not_retried]
        if plan.tasks:
            urls = [s.url for t in plan.tasks for _, s in t.sources]
            probe = raw_root or (urls[0] if urls else None)
            options = (options_for(probe, store, raw_storage_options) or {}) if probe else {}
            bad_by_file: dict[str, dict[str, int]] = {}
            futures = [client.submit(_fill_file, store, t, options, max_late_days, daily,
                                     ext, pure=False) for t in plan.tasks]
            from distributed import as_completed

            for i, done in enumerate(as_completed(futures)):
                note = done.result()
                report.files_rewritten += 1
                report.rows_filled += note["rows_filled"]
                report.rows_unfilled += note["rows_unfilled"]
                for item in note["unavailable"]:
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
        starts = _complete_from(_notes(store), declared)
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
