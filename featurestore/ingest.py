"""Exactly-once ingestion of web-log drops into ``<store>/events`` (SPEC §1, §4, §5).

Per file, on a Dask worker (one task per file: gzip is not splittable):

1. read the bytes once; check md5/records against the manifest; decompress (igzip);
2. scan, validate, split good rows by event date (late hits go to their own date);
3. publish ``events/event_date=D/part-<file id>.parquet`` for each date touched and
   ``_quarantine/weblog/drop=<drop>/part-<file id>.parquet`` for bad rows;
4. last, publish the ledger record ``_ledger/weblog/<drop>/<file>.json``.

Names are deterministic, so a crash anywhere before step 4 just means the file is redone on the
next run and overwrites its own outputs; after step 4 it is skipped. Either way the tables equal
one clean run's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import time
from collections.abc import Iterable
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from distributed import Client, as_completed, wait

from ._exceptions import RejectedFileError
from .cluster import dask_client
from .sources._scan import warm_up
from .sources.weblog import BAD_ROW_REASONS, RawFile, discover_files, parse_file
from .storage import Store

__all__ = ["IngestReport", "ingest_weblog", "ledger_entries", "ledger_keys", "EVENTS_TABLE"]

EVENTS_TABLE = "events"
LEDGER = "_ledger/weblog"
QUARANTINE = "_quarantine/weblog"


@dataclasses.dataclass
class IngestReport:
    """What one ``ingest`` run did. ``to_dict`` is the ``--json`` output."""

    files_ingested: int = 0
    files_skipped: int = 0
    files_rejected: int = 0
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
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.files_rejected == 0

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update(out.pop("extra"))
        return out

    def add(self, result: dict[str, Any]) -> None:
        if result["status"] == "rejected":
            self.files_rejected += 1
            self.rejected.append({"file": result["file"], "reason": result["reason"]})
            return
        self.files_ingested += 1
        for key in ("rows_ingested", "rows_quarantined", "rows_excluded", "rows_anonymous",
                    "rows_late", "lines"):
            setattr(self, key, getattr(self, key) + result[key])
        for reason, n in result["bad"].items():
            self.quarantined_by_reason[reason] += n
        self.event_dates = sorted(set(self.event_dates) | set(result["event_dates"]))


def ledger_keys(store: Store) -> list[str]:
    """Keys ``<drop date>/<file name>`` of every ingested file, from one listing (no reads).

    A ledger record is written once, last, and never changed (a changed file is rejected), so
    a key seen before needs no second read: ``materialize`` reads only the new ones.
    """
    keys = []
    for rel in store.find(LEDGER):
        drop, _, name = rel.partition("/")
        if name.endswith(".json") and "/" not in name and not name.startswith("."):
            keys.append(f"{drop}/{name[:-5]}")
    return keys


def ledger_entries(store: Store, keys: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """Ledger records keyed ``<drop date>/<file name>``: of ``keys``, or of every file."""
    return {key: store.read_json(LEDGER, f"{key}.json")
            for key in (ledger_keys(store) if keys is None else keys)}


def _events_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas with the dtypes SPEC §4 fixes (fastparquet keeps what it is given)."""
    df = table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)
    df["hit_time_gmt"] = df["hit_time_gmt"].astype("int64")
    return df


def _ingest_one(store: Store, raw: RawFile, raw_options: dict[str, Any]) -> dict[str, Any]:
    """Ingest one file (runs on a worker). Never raises for a bad file: returns its status."""
    try:
        with fsspec.open(raw.url, "rb", **raw_options) as f:
            compressed = f.read()
        parsed = parse_file(raw, compressed)
    except RejectedFileError as exc:
        return {"status": "rejected", "file": exc.path, "reason": exc.reason}
    events = parsed.events
    dates = pc.unique(events.column("event_date")).to_pylist() if events.num_rows else []
    date_index = events.column("event_date").to_numpy()
    frame = _events_frame(events.drop_columns(["event_date"]))
    for day in sorted(dates):
        rows = np.flatnonzero(date_index == np.datetime64(day, "D"))
        # Statistics on the time column only: readers prune on time; customer ids span every
        # file's whole range, so their min/max would prune nothing.
        store.write_parquet(frame.iloc[rows].reset_index(drop=True), EVENTS_TABLE,
                            f"event_date={day.isoformat()}", f"part-{raw.file_id}.parquet",
                            stats=["hit_time_gmt"])
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
    # The ledger record goes last: once it exists, everything above is published.
    store.write_json(result, LEDGER, raw.drop_date.isoformat(), f"{raw.name}.json")
    return result


def ingest_weblog(
    raw_root: str,
    store: Store,
    *,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    raw_storage_options: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> IngestReport:
    """Ingest every not-yet-ingested file under ``raw_root`` into ``store``.

    Holds the store's writer lock. Rejected files are reported (``report.rejected``) and left
    out of the ledger, so a later run retries them once they are fixed.
    """
    started = time.perf_counter()
    report = IngestReport()
    raw_options = raw_storage_options if raw_storage_options is not None else (
        store.storage_options if fsspec.utils.get_protocol(raw_root) == store.protocol else {})
    with store.lock("ingest weblog"):
        files, rejected = discover_files(raw_root, raw_options)
        for exc in rejected:
            report.add({"status": "rejected", "file": exc.path, "reason": exc.reason})
        done = set(ledger_keys(store))
        todo = []
        for raw in files:
            if raw.ledger_key not in done:
                todo.append(raw)
                continue
            entry = store.read_json(LEDGER, f"{raw.ledger_key}.json")
            if entry["size"] != raw.size:
                report.add({"status": "rejected", "file": raw.url, "reason": (
                    f"was ingested before with {entry['size']} bytes and now has {raw.size}; "
                    "the store keeps the first version. Deliver changed data as a new file")})
            else:
                report.files_skipped += 1
        if todo:
            with dask_client(scheduler, workers, client) as c:
                c.run(warm_up)  # every worker loads the scanner kernels at once, in parallel
                futures = c.map(_ingest_one, [store] * len(todo), todo,
                                [raw_options] * len(todo), pure=False)
                show = progress if progress is not None else sys.stderr.isatty()
                bar = _progress_bar(len(futures)) if show else None
                for future in as_completed(futures):
                    if future.status == "error":  # the store kept failing: let the other
                        wait(futures)  # tasks end, so none writes after the lock is released
                    report.add(future.result())
                    if bar is not None:
                        bar.update(1)
                if bar is not None:
                    bar.close()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _progress_bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="file", desc="ingest", file=sys.stderr)
