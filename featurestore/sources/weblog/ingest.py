"""Exactly-once ingestion of web-log drops into ``<store>/events`` (SPEC §1, §4, §5).

Per file, on a Dask worker (one task per file: gzip is not splittable):

1. read the bytes once; check md5/records against the manifest; decompress (igzip);
2. scan, validate, split good rows by event date (late hits go to their own date);
3. publish ``events/event_date=D/part-<file id>.parquet`` for each date touched, the file's
   partial daily aggregates of D beside it (:mod:`featurestore.features.partials`: the
   materialization sums them instead of re-reading the day's events) and
   ``_quarantine/weblog/drop=<drop>/part-<file id>.parquet`` for bad rows;
4. last, publish the ledger record ``_ledger/weblog/<drop>/<file>.json``.

Then, on the client, once every file's record is written: the run's parts of each event date
are merged into one file (:mod:`featurestore.events_compaction`: a Dask task per date, a
record per merged file, then the parts deleted). A replaced file's rows leave any merged file
before its new version's task runs.

Names are deterministic, so a crash anywhere before step 4 just means the file is redone on the
next run and overwrites its own outputs; after step 4 it is skipped. Either way the tables equal
one clean run's.

Which files are done is decided by what they are, not only their name (docs/reliability.md,
"Delivery rules"): the ledger also holds a content marker per file,
``_ledger/weblog/_content/<drop>/<file>/<md5>-<size>-<stamp>``, so one listing tells every
ingested file's md5, size and version stamp without reading a record. A zero-byte file is a
placeholder (never ingested), a file already ingested under another name is a duplicate, and a
file whose content changed under its old name is refused until the operator accepts it
(``accept_changed``), which replaces its old rows.

When a run leaves a drop complete, its records and markers are compacted into one day file
(:mod:`featurestore.ledger`), so planning reads O(days) objects however many files a year holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import sys
import time
from typing import TYPE_CHECKING, Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..._exceptions import RejectedFileError
from ...cluster import dask_client
from ...events_compaction import (
    COPY_MIN_BYTES,
    DEFAULT_TARGET_MB,
    compact_events,
    finish_run,
    rewrite_without,
    start_run,
    write_events_file,
)
from ...features.aggs.engine import ext_plan, write_ext_partials
from ...features.daily import DailyPlan, HitShare, daily_plan
from ...features.definitions import FeatureRepo
from ...features.partials import (
    partials_fingerprint,
    remove_partials,
    repo_for_ingest,
    write_partials,
)
from ...ledger import (
    CONTENT,
    LEDGER,
    REPLACED,
    REPLACING,
    STATUS,
    Identity,
    Listing,
    compact,
    drop_status,
    file_records,
    ledger_entries,
    ledger_keys,
    list_ledger,
    read_days,
    replaced_notes,
    token,
)
from ...schema import conform
from ...storage import Store, options_for
from .drops import RawFile, discover_drops
from .parse import BAD_ROW_REASONS, DEFAULT_MAX_LATE_DAYS, parse_file

if TYPE_CHECKING:  # Dask and the numba scanner load only when there are files to ingest
    from distributed import Client

__all__ = ["IngestReport", "ingest_weblog", "ledger_entries", "ledger_keys", "replaced_notes",
           "drop_status", "EVENTS_TABLE"]

EVENTS_TABLE = "events"
QUARANTINE = "_quarantine/weblog"
# The ledger's names stay importable from here (LEDGER, CONTENT, ...: featurestore.ledger).
__all__ += ["LEDGER", "CONTENT", "REPLACING", "REPLACED", "STATUS"]


@dataclasses.dataclass
class IngestReport:
    """What one ``ingest`` run did. ``to_dict`` is the ``--json`` output."""

    files_ingested: int = 0
    files_skipped: int = 0
    files_rejected: int = 0
    files_replaced: int = 0
    rows_ingested: int = 0
    rows_quarantined: int = 0
    rows_excluded: int = 0
    rows_anonymous: int = 0
    rows_late: int = 0
    lines: int = 0
    seconds: float = 0.0
    quarantined_by_reason: dict[str, int] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(BAD_ROW_REASONS, 0))
    rejected: list[dict[str, str]] = dataclasses.field(default_factory=list)
    event_dates: list[str] = dataclasses.field(default_factory=list)
    #: same name, other content, refused: ``{"file", "old_md5", "new_md5", "action"}``
    changed: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: same name, other content, applied (``--accept-changed``): ``{"file", "old_md5", "new_md5"}``
    replaced: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: same content as an ingested file under another name, not ingested: ``{"file", "same_as"}``
    duplicates: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: zero-byte files, not ingested: ``{"file"}``
    placeholders: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: files a manifest names that are absent: ``{"drop", "file", "md5"}``
    missing: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: folders that look like drops but are not a valid date: ``{"folder", "reason", "files"}``
    bad_folders: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: drops with missing files or placeholders (their ``_status.json`` says so)
    incomplete_drops: list[str] = dataclasses.field(default_factory=list)
    #: declared column (SPEC §3a) -> values of landed hits that did not parse as its type
    #: (stored as null); every declared column is listed, 0 when none was bad
    column_bad_values: dict[str, int] = dataclasses.field(default_factory=dict)
    #: declared columns a drop's column_headers.tsv lacks (null for that drop):
    #: ``{"drop", "column", "files"}``
    columns_missing: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: drop -> declared column -> bad values of the drop's files this run (only non-zero)
    column_bad_by_drop: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True only when every delivered file is accounted for: nothing rejected, refused,
        missing, held as a placeholder or in a bad folder."""
        return not (self.files_rejected or self.changed or self.missing or self.placeholders
                    or self.bad_folders)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update(out.pop("extra"))
        out["ok"] = self.ok
        return out

    def problems(self) -> list[str]:
        """One actionable line per problem, for stderr and alerts."""
        lines = [f"rejected {r['file']}: {r['reason']}" for r in self.rejected]
        lines += [f"bad folder {b['folder']} ({b['files']} file(s) rejected): {b['reason']}"
                  for b in self.bad_folders]
        lines += [f"changed {c['file']}: {c['action']}" for c in self.changed]
        lines += [f"placeholder {p['file']}: zero bytes, not ingested; the day stays "
                  "incomplete until the real file is delivered" for p in self.placeholders]
        lines += [f"missing {m['file']}: named in manifest.json but not delivered; the day "
                  "stays incomplete until it arrives" for m in self.missing]
        return lines

    def add(self, result: dict[str, Any]) -> None:
        if result["status"] == "rejected":
            self.files_rejected += 1
            self.rejected.append({"file": result["file"], "reason": result["reason"]})
            return
        if result["status"] == "duplicate":
            self.duplicates.append({"file": result["file"], "same_as": result["duplicate_of"]})
            return
        if "replaced" in result:
            self.files_replaced += 1
            self.replaced.append({"file": result["file"], "old_md5": result["replaced"]["md5"],
                                  "new_md5": result["md5"]})
        else:
            self.files_ingested += 1
        for key in ("rows_ingested", "rows_quarantined", "rows_excluded", "rows_anonymous",
                    "rows_late", "lines"):
            setattr(self, key, getattr(self, key) + result[key])
        for reason, n in result["bad"].items():
            self.quarantined_by_reason[reason] += n
        self.event_dates = sorted(set(self.event_dates) | set(result["event_dates"]))
        drop = result["file"].rsplit("/", 2)[-2]
        for column, n in result.get("columns_bad", {}).items():
            self.column_bad_values[column] = self.column_bad_values.get(column, 0) + n
            if n:
                by = self.column_bad_by_drop.setdefault(drop, {})
                by[column] = by.get(column, 0) + n
        for column in result.get("columns_missing", []):
            entry = next((m for m in self.columns_missing
                          if (m["drop"], m["column"]) == (drop, column)), None)
            if entry is None:
                entry = {"drop": drop, "column": column, "files": 0}
                self.columns_missing.append(entry)
                self.columns_missing.sort(key=lambda m: (m["drop"], m["column"]))
            entry["files"] += 1


def _md5_of(url: str, raw_options: dict[str, Any]) -> str:
    """md5 of a raw file, streamed (only for files whose listing no longer matches)."""
    digest = hashlib.md5()
    with fsspec.open(url, "rb", **raw_options) as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _write_marker(store: Store, raw: RawFile, md5: str) -> None:
    """Publish the content marker of ``raw`` and drop the key's older markers (after)."""
    marker = Identity(md5, raw.size, token(raw.stamp)).marker
    folder = (CONTENT, raw.drop_date.isoformat(), raw.name)
    store.write_bytes(b"", LEDGER, *folder, marker)
    for old in store.listdir(LEDGER, *folder):
        if old != marker and not old.startswith("."):
            store.remove(LEDGER, *folder, old)


def _duplicate_record(raw: RawFile, md5: str, same_as: str) -> dict[str, Any]:
    """Ledger record of a resend: nothing of it lands, so later runs skip it by name."""
    return {"status": "duplicate", "file": raw.url, "size": raw.size, "md5": md5,
            "duplicate_of": same_as, "lines": 0, "event_dates": [], "file_id": raw.file_id,
            "ingested_at": dt.datetime.now(dt.UTC).isoformat()}


def _remove_old_outputs(store: Store, raw: RawFile, old: dict[str, Any],
                        result: dict[str, Any]) -> None:
    """After a replacement is published: delete what only the old version wrote."""
    old_id = old.get("file_id", raw.file_id)
    new_id = result["file_id"]
    for day in old.get("event_dates", []):
        if old_id != new_id or day not in result["event_dates"]:
            store.remove(EVENTS_TABLE, f"event_date={day}", f"part-{old_id}.parquet")
            remove_partials(store, day, old_id)
    if old.get("rows_quarantined") and (old_id != new_id or not result["rows_quarantined"]):
        store.remove(QUARANTINE, f"drop={raw.drop_date.isoformat()}", f"part-{old_id}.parquet")


def _ingest_one(store: Store, raw: RawFile, raw_options: dict[str, Any],
                same_size: dict[str, str] | None = None,
                replaces: dict[str, Any] | None = None,
                max_late_days: int = DEFAULT_MAX_LATE_DAYS,
                daily: DailyPlan | None = None,
                declared: dict[str, str] | None = None,
                ext: Any = None) -> dict[str, Any]:
    """Ingest one file (runs on a worker). Never raises for a bad file: returns its status.

    Args:
        store: the store.
        raw: the file.
        raw_options: fsspec options to read it.
        same_size: md5 -> ledger key of ingested files of the same size: a match is a resend,
            recorded as a duplicate and not ingested.
        replaces: the ledger record of the version this one replaces (an accepted change).
        max_late_days: hits dated more than this many days before their drop's date are
            quarantined as ``too_old``.
        daily: the daily columns of the store's repository: the file's partial daily
            aggregates of each date are written beside its events (None: none are).
        declared: the weblog source's declared columns (name -> type, SPEC §3a): kept in
            the events and in the table the partials are built from, typed.
        ext: the SPEC §3a plan (:class:`featurestore.features.aggs.engine.ExtPlan`) whose
            partial states are written likewise (None: the repository has no such feature).

    Returns:
        The ledger record written, or ``{"status": "rejected", "file", "reason"}``.
    """
    try:
        with fsspec.open(raw.url, "rb", **raw_options) as f:
            compressed = f.read()
        if same_size:
            md5 = hashlib.md5(compressed).hexdigest()
            if md5 in same_size:
                record = _duplicate_record(raw, md5, same_size[md5])
                store.write_json(record, LEDGER, raw.drop_date.isoformat(), f"{raw.name}.json")
                _write_marker(store, raw, md5)
                return record
        parsed = parse_file(raw, compressed, max_late_days, declared)
    except RejectedFileError as exc:
        return {"status": "rejected", "file": exc.path, "reason": exc.reason}
    events = parsed.events
    dates = pc.unique(events.column("event_date")).to_pylist() if events.num_rows else []
    date_index = events.column("event_date").to_numpy()
    # The store's one set of column types (string ids, int64 time), so every BI reader sees
    # what the other tables have; conformed once, sliced per event date.
    body = conform(events.drop_columns(["event_date"]), nullable=declared or ())
    for day in sorted(dates):
        rows = pa.array(np.flatnonzero(date_index == np.datetime64(day, "D")))
        whole = len(dates) == 1  # one date (no late hits): every row, no copy to take
        # the partials while the hits are in memory (before the ledger record)
        day_events = (events if whole else events.take(rows)) \
            if daily is not None or ext is not None else None
        # both kinds share their masks, product entries and customer coding; the §3a
        # partials first: they parse every product list they need and code the customers
        # sorted, which the default partials' first-seen coding is derived from
        share = HitShare(day_events) if daily is not None and ext is not None else None
        if ext is not None:
            write_ext_partials(store, ext, day, raw.file_id, day_events, rows, share)
        if daily is not None:
            write_partials(store, daily, day, raw.file_id, day_events, share)
        write_events_file(store, body if whole else body.take(rows), EVENTS_TABLE,
                          f"event_date={day.isoformat()}",
                          f"part-{raw.file_id}.parquet")
    if parsed.quarantine.num_rows:
        store.write_arrow(parsed.quarantine, QUARANTINE, f"drop={raw.drop_date.isoformat()}",
                          f"part-{raw.file_id}.parquet")
    result = {
        "status": "ingested",
        "file": raw.url,
        "size": raw.size,
        "md5": parsed.md5,
        "lines": parsed.lines,
        "rows_ingested": events.num_rows,
        "rows_quarantined": int(parsed.quarantine.num_rows),
        "rows_excluded": parsed.excluded,
        "rows_anonymous": parsed.anonymous,
        "rows_late": parsed.late,
        "bad": parsed.bad,
        "event_dates": [d.isoformat() for d in sorted(dates)],
        "file_id": raw.file_id,
        "ingested_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    if daily is not None:  # what its partials were built for (they commit with this record)
        result["partials"] = partials_fingerprint(daily)
    if declared:  # only then: records of stores without declared columns stay as they were
        result["columns"] = list(declared)
        result["columns_bad"] = parsed.column_bad
        result["columns_missing"] = parsed.columns_missing
    drop, key = raw.drop_date.isoformat(), raw.ledger_key
    if replaces is not None:
        _remove_old_outputs(store, raw, replaces, result)
        result["replaced"] = {k: replaces.get(k) for k in ("md5", "size", "event_dates",
                                                           "ingested_at")}
        # The note (merged with an unconsumed one: a resumed replacement keeps the first
        # version's dates) tells materialize to rebuild every date either version touched.
        note = _replaced_note(store, key)
        note["event_dates"] = sorted(set(note.get("event_dates", []))
                                     | set(replaces.get("event_dates", []))
                                     | set(result["event_dates"]))
        store.write_json(note, LEDGER, REPLACED, f"{key}.json")
    # The ledger record goes last: once it exists, everything above is published.
    store.write_json(result, LEDGER, drop, f"{raw.name}.json")
    _write_marker(store, raw, parsed.md5)
    if replaces is not None:
        store.remove(LEDGER, REPLACING, drop, raw.name)
    return result


def _replaced_note(store: Store, key: str) -> dict[str, Any]:
    """The unconsumed replacement note of ``key`` (empty when there is none)."""
    try:
        return store.read_json(LEDGER, REPLACED, f"{key}.json")
    except FileNotFoundError:
        return {}


def _identity(store: Store, ledger: Listing, key: str) -> Identity | None:
    """What the ingested file ``key`` is. Records older than content markers are read once and
    given a marker with no stamp (so the next comparison computes the md5 once)."""
    found = ledger.content.get(key, [])
    if len(found) == 1:
        return found[0]
    try:
        record = store.read_json(LEDGER, f"{key}.json")
    except FileNotFoundError:
        return None
    # no marker yet, or a crash left two: the record says which is right
    stamp = next((i.stamp for i in found if i.md5 == record["md5"]
                  and i.size == record["size"]), "")
    ident = Identity(record["md5"], int(record["size"]), stamp)
    drop, _, name = key.partition("/")
    store.write_bytes(b"", LEDGER, CONTENT, drop, name, ident.marker)
    for other in found:
        if other != ident:
            store.remove(LEDGER, CONTENT, drop, name, other.marker)
    ledger.content[key] = [ident]
    return ident


@dataclasses.dataclass
class _Plan:
    """What a run does with each discovered file (decided from the listing, few reads)."""

    new: list[RawFile] = dataclasses.field(default_factory=list)
    replace: list[tuple[RawFile, dict[str, Any]]] = dataclasses.field(default_factory=list)
    same_size: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _Compacted:
    """The day files' side of the ledger, as far as one plan needs it."""

    #: ``<drop>/<file>`` -> identity, for the drops this run delivers
    ids: dict[str, Identity] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, store: Store, ledger: Listing, drops: set[str]) -> _Compacted:
        """Rows of the day files of ``drops`` (one read per drop, none for other drops)."""
        versions = {d: v for d, v in ledger.day_versions().items() if d in drops}
        rows = read_days(store, versions, ["key", "md5", "size", "stamp"]).to_pydict()
        ids = {k: Identity(m, n, t) for k, m, n, t in zip(
            rows["key"], rows["md5"], rows["size"], rows["stamp"], strict=True)}
        for key, marked in ledger.content.items():  # a touched file's marker has its new stamp
            row = ids.get(key)
            stamps = [i.stamp for i in marked if row is not None and i.stamp
                      and (i.md5, i.size) == (row.md5, row.size)]
            if stamps:
                ids[key] = Identity(row.md5, row.size, stamps[-1])
        return cls(ids)


def _old_record(store: Store, ledger: Listing, key: str) -> dict[str, Any]:
    """The ledger record of an ingested file: its own, else its day file's row."""
    if key in ledger.keys:
        return file_records(store, [key])[key]
    return ledger_entries(store, [key], listing=ledger)[key]


def _plan(store: Store, files: list[RawFile], raw_options: dict[str, Any],
          accept_changed: bool, report: IngestReport) -> _Plan:
    """Sort discovered files into skipped, placeholders, duplicates, changed and to-do (the
    rules of docs/reliability.md, "Delivery rules"); problems go straight into ``report``.

    Reads the day files of the delivered drops, and of older drops only the rows whose size
    is that of a new file (a resend has its original's size)."""
    ledger = list_ledger(store)
    per_file = set(ledger.keys)
    for key in per_file - set(ledger.content):  # records older than markers: once per store
        _identity(store, ledger, key)
    compacted = _Compacted.of(store, ledger, {raw.drop_date.isoformat() for raw in files})
    done = per_file | set(compacted.ids)

    def identity(key: str) -> Identity | None:  # a per-file record wins over a day file's row
        return _identity(store, ledger, key) if key in per_file else compacted.ids.get(key)

    by_md5: dict[str, str] = {}
    by_size: dict[int, dict[str, str]] = {}
    wanted_sizes = {raw.size for raw in files if raw.ledger_key not in done and raw.size}
    history = read_days(store, ledger.day_versions(), ["key", "md5", "size"],
                        sizes=wanted_sizes).to_pydict()
    for key, md5, size in zip(history["key"], history["md5"], history["size"], strict=True):
        if size:
            by_md5[md5] = key
            by_size.setdefault(size, {})[md5] = key
    for key, ids in ledger.content.items():
        for i in ids:
            # a marker without its record (deleted by hand) stands for nothing; a zero-byte
            # record of older code is nothing to be a copy of
            if i.size and key in per_file:
                by_md5[i.md5] = key
                by_size.setdefault(i.size, {})[i.md5] = key
    plan = _Plan()
    new_sizes: dict[int, int] = {}  # sizes of new files: two alike may be one content twice
    for raw in files:
        if raw.ledger_key not in done:
            new_sizes[raw.size] = new_sizes.get(raw.size, 0) + 1
    for raw in files:
        key = raw.ledger_key
        manifest_md5 = (raw.manifest or {}).get("md5")
        if raw.size == 0:  # a placeholder: never ingested, never recorded
            report.placeholders.append({"file": raw.url})
            continue
        old = identity(key) if key in done else None
        if key in ledger.replacing and old is not None:  # accepted before, not finished
            plan.replace.append((raw, _old_record(store, ledger, key)))
            continue
        if old is None or old.size == 0:  # new (a zero-byte record of older code is no file)
            # resend: the manifest md5 (free), or the md5 of a file sharing its size with
            # another new one; else the worker checks against same-size ingested files
            md5 = manifest_md5 or (_md5_of(raw.url, raw_options)
                                   if new_sizes.get(raw.size, 0) > 1 else None)
            if md5 is not None and by_md5.get(md5, key) != key:
                record = _duplicate_record(raw, md5, by_md5[md5])
                store.write_json(record, LEDGER, raw.drop_date.isoformat(), f"{raw.name}.json")
                _write_marker(store, raw, md5)
                report.add(record)
                continue
            if md5 is not None:
                by_md5[md5] = key
            else:
                plan.same_size[key] = by_size.get(raw.size, {})
            plan.new.append(raw)
            continue
        if manifest_md5:
            md5 = manifest_md5
        elif raw.size == old.size and token(raw.stamp) == old.stamp:
            md5 = old.md5  # untouched since: no read
        else:
            md5 = _md5_of(raw.url, raw_options)
            if md5 == old.md5:  # touched, same content: remember the new stamp
                _write_marker(store, raw, md5)
        if md5 == old.md5:
            report.files_skipped += 1
        elif accept_changed:
            store.write_bytes(b"", LEDGER, REPLACING, raw.drop_date.isoformat(), raw.name)
            plan.replace.append((raw, _old_record(store, ledger, key)))
        else:
            report.changed.append({"file": raw.url, "old_md5": old.md5, "new_md5": md5,
                                   "action": (
                f"changed since it was ingested (md5 {old.md5} -> {md5}); the store keeps the "
                "old version. Re-run with --accept-changed to replace its rows, or restore the "
                "original file")})
    return plan


def _write_statuses(store: Store, report: IngestReport, found_drops: set[str]) -> None:
    """Per drop, ``_status.json`` when it has a problem or had one (so it is marked complete
    again); drops that never had one get none. Written only when it changes.

    Rejected files (corrupt, wrong header...) are listed with their reason: they have no
    ledger record (a later run retries them), so this is where the dashboard finds them. They
    do not make a drop incomplete (its files are all there); the run's exit code says it."""
    listed = list_ledger(store).statuses
    per_drop: dict[str, dict[str, list]] = {}

    def empty() -> dict[str, list]:
        return {"missing": [], "placeholders": [], "changed": [], "rejected": []}

    # declared columns (SPEC §3a) a drop lacks: the drop is complete, the column null there
    columns_missing: dict[str, list[str]] = {}
    for item in report.columns_missing:
        columns_missing.setdefault(item["drop"], []).append(item["column"])

    def note(kind: str, url: str, reason: str | None = None) -> None:
        drop, name = url.rsplit("/", 2)[-2:]
        per_drop.setdefault(drop, empty())[kind].append(
            name if reason is None else {"file": name, "reason": reason})

    for kind, items in (("missing", report.missing), ("placeholders", report.placeholders),
                        ("changed", report.changed)):
        for item in items:
            note(kind, item["file"])
    for item in report.rejected:
        note("rejected", item["file"], item["reason"])
    with_columns = set(columns_missing) | set(report.column_bad_by_drop)
    for drop in sorted((set(per_drop) | listed | with_columns) & found_drops):
        lists = per_drop.get(drop, empty())
        status = {"drop": drop, "complete": not (lists["missing"] or lists["placeholders"]),
                  **{k: sorted(v, key=lambda item: item["file"] if k == "rejected" else item)
                     for k, v in lists.items()}}
        if not status["complete"]:
            report.incomplete_drops.append(drop)
        previous = drop_status(store, drop) if drop in listed else None
        # kept from the run that ingested the drop's files (a later run reads no header)
        missing_columns = sorted(set(columns_missing.get(drop, []))
                                 | set((previous or {}).get("columns_missing", [])))
        if missing_columns:
            status["columns_missing"] = missing_columns
        bad_values = dict((previous or {}).get("column_bad_values", {}))
        for column, n in report.column_bad_by_drop.get(drop, {}).items():
            bad_values[column] = bad_values.get(column, 0) + n
        if bad_values:
            status["column_bad_values"] = dict(sorted(bad_values.items()))
        if previous is None or {k: v for k, v in previous.items() if k != "checked_at"} != status:
            store.write_json({**status, "checked_at": dt.datetime.now(dt.UTC).isoformat()},
                             LEDGER, drop, STATUS)


def _compact_settled(store: Store, report: IngestReport, found_drops: set[str]) -> None:
    """Compact every drop this run left complete, and drops of older runs still in per-file
    form that are complete too (stores written before compaction: migrated lazily, as their
    drops come up or leave the raw root)."""
    ledger = list_ledger(store)
    unsettled = set(report.incomplete_drops) | {
        c["file"].rsplit("/", 2)[-2] for c in report.changed}
    older = {k.split("/", 1)[0] for k in ledger.keys} - found_drops
    older = {d for d in older if d not in ledger.statuses
             or (drop_status(store, d) or {}).get("complete", True)}
    compact(store, (found_drops | older) - unsettled, listing=ledger)


def ingest_weblog(
    raw_root: str,
    store: Store,
    *,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    raw_storage_options: dict[str, Any] | None = None,
    progress: bool | None = None,
    max_late_days: int = DEFAULT_MAX_LATE_DAYS,
    accept_changed: bool = False,
    repo: FeatureRepo | None = None,
    compaction: bool = True,
    target_mb: float = DEFAULT_TARGET_MB,
    copy_min_mb: float = COPY_MIN_BYTES / 2 ** 20,
) -> IngestReport:
    """Ingest every not-yet-ingested file under ``raw_root`` into ``store``.

    Holds the store's writer lock. Rejected files are reported (``report.rejected``) and left
    out of the ledger, so a later run retries them once they are fixed. Placeholders, missing
    files, resends and changed files follow docs/reliability.md ("Delivery rules"). Drops left
    complete are compacted into one ledger day file each (:func:`featurestore.ledger.compact`).

    Args:
        raw_root: folder or URL holding the drop folders.
        store: the store.
        client, scheduler, workers: the Dask cluster (see :func:`dask_client`).
        raw_storage_options: fsspec options for ``raw_root`` (default: the store's when the
            protocol is the same).
        progress: show a progress bar (default: when stderr is a terminal).
        max_late_days: hits dated more than this many days before their drop's date are
            quarantined as ``too_old`` (setting ``max_late_days``).
        accept_changed: replace the rows of files whose content changed under the same name
            (else they are refused and reported in ``report.changed``).
        repo: the feature repository whose daily aggregates each file's partials hold
            (default: the store's, as every command resolves it; see
            :func:`featurestore.features.partials.repo_for_ingest`).
        compaction: merge each date's parts of the run into one file (setting
            ``events_compaction``; :mod:`featurestore.events_compaction`).
        target_mb: a date's merged parts are split into files of at most this many MB of
            parquet (setting ``events_target_mb``).
        copy_min_mb: parts averaging at least this many MB are merged without decoding,
            their row groups copied (setting ``events_copy_min_mb``).

    Returns:
        The report; ``report.ok`` is False while anything is not accounted for.
    """
    started = time.perf_counter()
    report = IngestReport()
    raw_options = options_for(raw_root, store, raw_storage_options) or {}
    with store.lock("ingest weblog"):
        found = discover_drops(raw_root, raw_options)
        for exc in found.rejected:
            report.add({"status": "rejected", "file": exc.path, "reason": exc.reason})
        report.missing = found.missing
        report.bad_folders = found.bad_folders
        plan = _plan(store, found.files, raw_options, accept_changed, report)
        tasks = [(raw, plan.same_size.get(raw.ledger_key), None) for raw in plan.new]
        tasks += [(raw, None, old) for raw, old in plan.replace]
        # a run that writes events (or follows one that crashed) goes through compaction
        crashed = start_run(store) if tasks or _crashed(store) else None
        if crashed is not None:
            with dask_client(scheduler, workers, client) as c:
                # a replaced file's old rows leave any merged output before its new version
                # is written (the new rows never meet the old ones)
                rewritten = rewrite_without(store, c, _removals(plan.replace))
                results = _run_tasks(c, store, tasks, raw_options, max_late_days, repo,
                                     progress, report) if tasks else []
                if compaction:
                    committed = {r["file_id"] for r in results if r["status"] == "ingested"}
                    done = compact_events(store, c, set(report.event_dates) | set(crashed),
                                          committed, int(target_mb * 2 ** 20),
                                          committed_more=lambda: _ingested_ids(store),
                                          copy_min_bytes=int(copy_min_mb * 2 ** 20))
                    report.extra["compaction"] = {**done.to_dict(), "rewritten": rewritten}
            finish_run(store)
        drops = {f.drop_date.isoformat() for f in found.files} | {
            m["drop"] for m in found.missing}
        _write_statuses(store, report, drops)
        _compact_settled(store, report, drops)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _crashed(store: Store) -> bool:
    from ...events_compaction import COMPACTION, RUNNING

    return store.exists(LEDGER, COMPACTION, RUNNING)


def _removals(replace: list[tuple[RawFile, dict[str, Any]]]) -> dict[str, set[str]]:
    """Event date -> file ids whose old rows a replacement removes from merged outputs."""
    out: dict[str, set[str]] = {}
    for raw, old in replace:
        for day in old.get("event_dates", []):
            out.setdefault(day, set()).add(old.get("file_id", raw.file_id))
    return out


def _ingested_ids(store: Store) -> set[str]:
    """File ids of every file in the ledger (read only when a date holds loose parts of
    earlier runs: a crash before their compaction, or parts written before it existed)."""
    ids = set()
    for key in ledger_keys(store):
        drop, _, name = key.partition("/")
        try:
            day = dt.date.fromisoformat(drop)
        except ValueError:
            continue
        ids.add(RawFile("", day, name, 0, (), None).file_id)
    return ids


def _run_tasks(c: Client, store: Store, tasks: list, raw_options: dict[str, Any],
               max_late_days: int, repo: FeatureRepo | None, progress: bool | None,
               report: IngestReport) -> list[dict[str, Any]]:
    """One Dask task per file; every result goes into ``report``. Returns the results."""
    repo = repo if repo is not None else repo_for_ingest(store, None)
    from distributed import as_completed, wait

    from .preload import start_warm_up

    daily = daily_plan(repo) if repo is not None and repo.tables_for("weblog") else None
    declared = repo.declared_columns() if repo is not None else {}
    report.column_bad_values = {c: report.column_bad_values.get(c, 0) for c in declared}
    ext = ext_plan(repo) if daily is not None else None
    ext = ext if ext is not None and ext.specs else None  # SPEC §3a features' partials
    # no barrier: workers without our preload (a cluster started elsewhere) start loading the
    # kernels now, in the background, while the tasks are submitted
    c.run(start_warm_up)
    futures = [c.submit(_ingest_one, store, raw, raw_options, same, old, max_late_days, daily,
                        declared or None, ext, pure=False)
               for raw, same, old in tasks]
    show = progress if progress is not None else sys.stderr.isatty()
    bar = _progress_bar(len(futures)) if show else None
    results = []
    for future in as_completed(futures):
        if future.status == "error":  # the store kept failing: let the other tasks end, so
            wait(futures)  # none writes after the lock is released
        results.append(future.result())
        report.add(results[-1])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return results


def _progress_bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="file", desc="ingest", file=sys.stderr)
