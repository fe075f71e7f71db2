"""The ingest ledger of every source: which raw units are ingested, keyed by content, and
what replaced what (SPEC §5).

One model for every source: a ledger record per ingested unit, written last (the unit's
commit point), naming the event dates it touched and the version materialization compares
(:func:`changes`, the input of the shared planner :func:`featurestore.planning.touched_dates`).
Two on-disk forms, both kept as main wrote them so an older store opens:

* by unit (``retail``): ``_ledger/<source>/<name>-<content id>.json``, the content id being
  :func:`content_id` of the name and md5; a replacement's record names the keys it
  ``replaces`` and their ``replaced_event_dates``; :func:`finish_replacements` removes what
  the replaced versions left. Read with :func:`unit_records`.
* by drop (``weblog``), described below.

The web-log form, two kinds of objects read together:

* per file, while its drop is in progress: the record ``_ledger/weblog/<drop>/<file>.json``
  (written last by the worker: the commit point of the file) and the content marker
  ``_ledger/weblog/_content/<drop>/<file>/<md5>-<size>-<stamp>`` (an empty object, so one
  listing tells md5, size and version stamp without a read);
* per drop, once the drop is complete: one day file ``_ledger/weblog/_days/<drop>/<n>.parquet``
  (version ``n``, six digits) with a row per file: ``key``, ``md5``, ``size``, ``stamp``,
  ``ingested_at``, ``since`` (the version that added or last changed the row) and ``record``
  (the per-file record, JSON). :func:`compact` writes it and then removes the drop's per-file
  objects, so a year of history lists as ~365 objects instead of ~6 million.

Reading rules, so a crash anywhere in a compaction reads the same ledger: of a drop's day
files the highest version wins; a per-file record wins over a day file's row (it is either
identical, left by a crash before its removal, or newer: a late or replaced file).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .layout import ledger as _ledger_folder
from .storage import Store

__all__ = ["unit_records", "content_id", "finish_replacements", "changes",
           "LEDGER", "CONTENT", "REPLACING", "REPLACED", "STATUS", "DAYS", "Listing",
           "Identity", "list_ledger", "ledger_keys", "ledger_drops", "ledger_entries",
           "file_records", "replaced_notes", "drop_status", "read_days", "compact"]

LEDGER = _ledger_folder("weblog")
#: Under LEDGER (names starting with ``_`` are not ledger records):
CONTENT = "_content"  # <drop>/<file>/<md5>-<size>-<stamp>: what each ingested file is
REPLACING = "_replacing"  # <drop>/<file>: an accepted replacement not finished yet
REPLACED = "_replaced"  # <drop>/<file>.json: dates a replacement touched, for materialize
STATUS = "_status.json"  # <drop>/_status.json: is the drop complete (missing, placeholders)
DAYS = "_days"  # <drop>/<version>.parquet: the compacted records of a complete drop

DAY_SCHEMA = pa.schema([("key", pa.string()), ("md5", pa.string()), ("size", pa.int64()),
                        ("stamp", pa.string()), ("ingested_at", pa.string()),
                        ("since", pa.int64()), ("record", pa.string())])
#: Day files read at once (object stores: one GET each, in parallel).
READ_THREADS = 16


@dataclasses.dataclass(frozen=True)
class Identity:
    """What an ingested file was: md5, size and version stamp (ETag or mtime, letters and
    digits only; empty when unknown)."""

    md5: str
    size: int
    stamp: str

    @property
    def marker(self) -> str:
        return f"{self.md5}-{self.size}-{self.stamp}"

    @classmethod
    def parse(cls, marker: str) -> Identity | None:
        md5, _, rest = marker.partition("-")
        size, _, stamp = rest.partition("-")
        return cls(md5, int(size), stamp) if size.isdigit() and md5 else None


def token(stamp: str) -> str:
    """A version stamp (mtime, ETag) reduced to characters safe in an object name."""
    return re.sub(r"[^0-9A-Za-z]", "", stamp)


@dataclasses.dataclass
class Listing:
    """Everything one recursive listing of the ledger says (no object read)."""

    #: ``<drop>/<file>`` of every per-file record
    keys: list[str] = dataclasses.field(default_factory=list)
    content: dict[str, list[Identity]] = dataclasses.field(default_factory=dict)
    replacing: set[str] = dataclasses.field(default_factory=set)
    statuses: set[str] = dataclasses.field(default_factory=set)
    #: drop -> every day-file version listed (the highest is the drop's ledger)
    days: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    def day_versions(self) -> dict[str, int]:
        """Drop -> the version of its day file that readers use (the highest)."""
        return {drop: max(versions) for drop, versions in self.days.items()}


def list_ledger(store: Store) -> Listing:
    """One recursive listing of the ledger, sorted into records, markers, statuses and day
    files.

    Args:
        store: the store.

    Returns:
        The :class:`Listing`.
    """
    out = Listing()
    for rel in store.find(LEDGER):
        parts = rel.split("/")
        if parts[0] == CONTENT and len(parts) == 4:
            ident = Identity.parse(parts[3])
            if ident is not None:
                out.content.setdefault(f"{parts[1]}/{parts[2]}", []).append(ident)
        elif parts[0] == DAYS and len(parts) == 3:
            version = parts[2].removesuffix(".parquet")
            if version.isdigit() and parts[2].endswith(".parquet"):
                out.days.setdefault(parts[1], []).append(int(version))
        elif parts[0] == REPLACING and len(parts) == 3:
            out.replacing.add(f"{parts[1]}/{parts[2]}")
        elif len(parts) == 2 and parts[1] == STATUS:
            out.statuses.add(parts[0])
        elif (len(parts) == 2 and not parts[0].startswith((".", "_"))
              and parts[1].endswith(".json") and not parts[1].startswith((".", "_"))):
            out.keys.append(f"{parts[0]}/{parts[1][:-5]}")
    return out


def _day_file(drop: str, version: int) -> tuple[str, ...]:
    return (LEDGER, DAYS, drop, f"{version:06d}.parquet")


def read_days(store: Store, versions: dict[str, int], columns: list[str] | None = None,
              sizes: Iterable[int] | None = None) -> pa.Table:
    """Rows of the given day files, read in parallel (one GET each on an object store).

    Args:
        store: the store.
        versions: drop -> day-file version to read.
        columns: the columns wanted (default: all of :data:`DAY_SCHEMA`).
        sizes: keep only rows of these file sizes (filtered per file, so a year of history
            never sits in memory whole).

    Returns:
        One table with those columns.
    """
    columns = columns or DAY_SCHEMA.names
    wanted = pa.array(sorted(set(sizes)), pa.int64()) if sizes is not None else None

    def read(item: tuple[str, int]) -> pa.Table:
        with store.fs.open(store.path(*_day_file(*item)), "rb") as f:
            table = pq.read_table(f, columns=columns if wanted is None
                                  else sorted({*columns, "size"}))
        if wanted is not None:
            table = table.filter(pc.is_in(table["size"], wanted)).select(columns)
        return table

    if not versions:
        return DAY_SCHEMA.empty_table().select(columns)
    with ThreadPoolExecutor(min(READ_THREADS, len(versions))) as pool:
        tables = list(pool.map(read, sorted(versions.items())))
    return pa.concat_tables(tables)


def file_records(store: Store, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Per-file records of ``keys`` (listed ones), fetched together: concurrent GETs on an
    object store.

    Args:
        store: the store.
        keys: ``<drop>/<file>`` keys of per-file records.

    Returns:
        Key -> record.
    """
    if not keys:
        return {}
    strip = store.fs._strip_protocol
    paths = {strip(store.path(LEDGER, f"{key}.json")): key for key in keys}
    return {paths[strip(p)]: json.loads(body)
            for p, body in store.fs.cat(list(paths)).items()}


def _listing_for(store: Store, listing: Listing | None) -> Listing:
    return listing if listing is not None else list_ledger(store)


def ledger_drops(store: Store, listing: Listing | None = None) -> list[str]:
    """Drop dates holding at least one ingested file, from the listing alone (no read).

    Args:
        store: the store.
        listing: a listing already made (else one is made).

    Returns:
        Sorted drop dates (``YYYY-MM-DD``; folder names as written).
    """
    listing = _listing_for(store, listing)
    return sorted({k.split("/", 1)[0] for k in listing.keys} | set(listing.days))


def ledger_keys(store: Store, listing: Listing | None = None) -> list[str]:
    """Keys ``<drop date>/<file name>`` of every ingested file.

    Per-file records come from the listing; compacted drops cost one read of their day file's
    ``key`` column each (use :func:`ledger_drops` when the drops are enough).

    Args:
        store: the store.
        listing: a listing already made (else one is made).

    Returns:
        Sorted keys.
    """
    listing = _listing_for(store, listing)
    compacted = read_days(store, listing.day_versions(), ["key"])["key"].to_pylist()
    return sorted(set(listing.keys) | set(compacted))


def ledger_entries(store: Store, keys: Iterable[str] | None = None,
                   listing: Listing | None = None) -> dict[str, dict[str, Any]]:
    """Ledger records keyed ``<drop date>/<file name>``: of ``keys``, or of every file.

    Args:
        store: the store.
        keys: the keys wanted (default: every ingested file); unknown keys are left out.
        listing: a listing already made (else one is made).

    Returns:
        Key -> record (the per-file record when there is one, else the day file's row).
    """
    listing = _listing_for(store, listing)
    wanted = None if keys is None else set(keys)
    versions = listing.day_versions()
    if wanted is not None:
        wanted_drops = {k.split("/", 1)[0] for k in wanted}
        versions = {d: v for d, v in versions.items() if d in wanted_drops}
    rows = read_days(store, versions, ["key", "record"])
    out = {k: json.loads(r) for k, r in zip(rows["key"].to_pylist(), rows["record"].to_pylist(),
                                            strict=True)
           if wanted is None or k in wanted}
    out.update(file_records(store, [k for k in listing.keys if wanted is None or k in wanted]))
    return out


def replaced_notes(store: Store) -> dict[str, dict[str, Any]]:
    """Notes of replaced files not yet materialized, keyed ``<drop>/<file>``.

    Args:
        store: the store.

    Returns:
        Per key ``{"event_dates": [...]}``: every event date the old and new versions touched.
    """
    return {rel[:-5]: store.read_json(LEDGER, REPLACED, rel)
            for rel in store.find(LEDGER, REPLACED) if rel.endswith(".json")}


def drop_status(store: Store, drop: str) -> dict[str, Any] | None:
    """The completeness record of ``drop`` (``YYYY-MM-DD``), None when it never had a problem.

    Args:
        drop: the drop date.

    Returns:
        ``{"drop", "complete", "missing", "placeholders", "changed", "rejected",
        "checked_at"}``: file names, and ``{"file", "reason"}`` per rejected file (records
        written before rejected files were recorded have no ``rejected``).
    """
    try:
        return store.read_json(LEDGER, drop, STATUS)
    except FileNotFoundError:
        return None


def compact(store: Store, drops: Iterable[str], listing: Listing | None = None) -> list[str]:
    """Fold the per-file records and markers of ``drops`` into one day file per drop.

    Order, so a crash at any point reads the same ledger (see the module docstring): the new
    day file is published first, then the per-file objects are removed, then older versions.
    Call it under the store's writer lock, for drops no run is ingesting into.

    Args:
        store: the store.
        drops: drop dates to compact; those without per-file objects or with an accepted
            replacement in progress are left as they are.
        listing: a listing already made (else one is made).

    Returns:
        The drops compacted.
    """
    listing = _listing_for(store, listing)
    busy = {k.split("/", 1)[0] for k in listing.replacing}
    per_drop: dict[str, list[str]] = {}
    for key in listing.keys:
        per_drop.setdefault(key.split("/", 1)[0], []).append(key)
    marked = {k.split("/", 1)[0] for k in listing.content}
    done = []
    for drop in sorted(set(drops) - busy):
        if drop in per_drop or drop in marked:
            _compact_drop(store, listing, drop, per_drop.get(drop, []))
            done.append(drop)
        elif len(listing.days.get(drop, [])) > 1:  # a crash left an older version behind
            for old in sorted(listing.days[drop])[:-1]:
                store.remove(*_day_file(drop, old))
    return done


def _compact_drop(store: Store, listing: Listing, drop: str, keys: list[str]) -> None:
    """Publish the next day file of ``drop`` (its rows merged with ``keys``' records), then
    remove what it replaces."""
    old_versions = sorted(listing.days.get(drop, []))
    version = (old_versions[-1] + 1) if old_versions else 1
    rows: dict[str, dict[str, Any]] = {}
    if old_versions:
        for row in read_days(store, {drop: old_versions[-1]}).to_pylist():
            rows[row["key"]] = row
    for key, record in file_records(store, keys).items():
        ident = Identity(record["md5"], int(record["size"]), "")
        row = rows.get(key)
        unchanged = row is not None and row["ingested_at"] == record["ingested_at"] and (
            row["md5"], row["size"]) == (ident.md5, ident.size)
        rows[key] = {"key": key, "md5": ident.md5, "size": ident.size,
                     "stamp": row["stamp"] if unchanged else "",
                     "ingested_at": record["ingested_at"],
                     "since": row["since"] if unchanged else version,
                     "record": json.dumps(record, sort_keys=True, default=str)}
    for key, row in rows.items():  # a marker of the same content carries the latest stamp
        stamps = [i.stamp for i in listing.content.get(key, [])
                  if (i.md5, i.size) == (row["md5"], row["size"]) and i.stamp]
        if stamps:
            row["stamp"] = stamps[-1]
    table = pa.Table.from_pylist([rows[k] for k in sorted(rows)], schema=DAY_SCHEMA)
    store.write_arrow(table, *_day_file(drop, version), stats=False, dictionary=False)
    # published: the per-file objects are now redundant (a crash from here on leaves copies
    # that readers resolve as the same files)
    if keys:
        store.fs.rm([store.path(LEDGER, f"{key}.json") for key in keys])
    store.remove(LEDGER, CONTENT, drop, recursive=True)
    for old in old_versions:
        store.remove(*_day_file(drop, old))
    if store.is_local:  # an emptied drop folder would be listed again on every run
        folder = store.path(LEDGER, drop)
        if store.exists(LEDGER, drop) and not store.listdir(LEDGER, drop):
            store.fs.rmdir(folder)


# -- by unit (retail and any source keyed by name and content) -------------------------------
def content_id(name: str, md5: str) -> str:
    """The content id of a raw unit: 12 hex digits of its name and md5 (its ledger key is
    ``<name>-<content id>``; the same name with other content is another key).

    Args:
        name: the unit's file name.
        md5: the hex md5 of its bytes.

    Returns:
        The id.
    """
    import hashlib

    return hashlib.sha1(f"{name}:{md5}".encode()).hexdigest()[:12]


def unit_records(store: Store, source: str) -> dict[str, dict[str, Any]]:
    """Every ledger record of a by-unit source, keyed ``<name>-<content id>``.

    Args:
        store: the store.
        source: the source's ledger name (``retail``).

    Returns:
        Key -> record.
    """
    folder = _ledger_folder(source)
    return {n[:-5]: store.read_json(folder, n) for n in store.listdir(folder)
            if n.endswith(".json") and not n.startswith(".")}


def finish_replacements(store: Store, source: str,
                        remove_rows: Callable[[dict[str, Any]], None]) -> None:
    """Remove what replaced versions left: their rows (``remove_rows(old record)``), then
    their ledger records. The work a run killed right after publishing a replacement did not
    finish; idempotent.

    Args:
        store: the store.
        source: the source's ledger name.
        remove_rows: removes the published rows of a replaced unit's record.
    """
    records = unit_records(store, source)
    for entry in records.values():
        for old_key in entry.get("replaces", []):
            old = records.get(old_key)
            if old is None:
                continue
            remove_rows(old)
            store.remove(_ledger_folder(source), f"{old_key}.json")


def changes(records: Mapping[str, dict[str, Any]], version: str
            ) -> dict[str, tuple[str, list[str]]]:
    """Ledger records as the planner reads them: key -> (version, event dates touched by it
    and by the version it replaced).

    Args:
        records: key -> ledger record.
        version: the record field materialization compares (``ingested_at`` for weblog,
            ``md5`` for retail).

    Returns:
        Key -> (version, event dates).
    """
    return {k: (e[version], list(e["event_dates"]) + list(e.get("replaced_event_dates", [])))
            for k, e in records.items()}
