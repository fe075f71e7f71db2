"""Bring every feature table up to date, incrementally, on the Dask cluster.

What is dirty comes from comparing the ingest ledger with our own record,
``_state/materialize.json`` (files seen with their ``ingested_at``, and per daily date / as-of
date the definition fingerprint it was built with):

* an event date touched by a new (or re-ingested) file, or whose daily aggregates were built
  for another set of definitions, gets its daily aggregates recomputed (one task per date);
* every as-of date from the earliest touched event date to the latest is rebuilt (windows and
  the state chain both reach forward), plus as-of dates never built or built with an older
  definition of the table (a new feature: ``backfill``);
* the customer state (running totals and last dates per customer, :mod:`.state`) chains day to
  day on the client from the per-day customer frames, starting from the stored state of the
  day before the first rebuilt date, so nothing rescans history: a customer window is the
  state of D minus the state of D - w;
* per as-of date, one task writes the customer tables due that day and the state
  ``_state/customer/as_of=D/part-0.parquet``, and another, which needs no state and runs
  alongside, the customer x product tables (from the daily pairs of the longest window).

Every output name is deterministic and published atomically; the record is written last, so a
crash followed by a re-run redoes the same work and leaves identical tables.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

import pandas as pd
from distributed import Client, wait

from ..cluster import dask_client
from ..ingest import ledger_entries
from ..storage import Store
from ._io import write_table
from .daily import (
    DAILY_CUSTOMER,
    DAILY_CUSTOMER_PRODUCT,
    DailyPlan,
    compute_daily,
    daily_plan,
    read_daily,
)
from .definitions import FeatureRepo, load_feature_repo
from .snapshot import customer_product_snapshot, customer_snapshot, max_window, windows
from .state import CUSTOMER_STATE, advance, empty_state, load_state

__all__ = ["MaterializeReport", "materialize", "STATE_RECORD", "CUSTOMER_STATE"]

STATE_RECORD = "_state/materialize.json"
#: As-of dates submitted per round: bounds how many state frames are in flight at once.
CHUNK = 32


@dataclasses.dataclass
class MaterializeReport:
    """What one materialization did. ``to_dict`` is the JSON form (CLI ``materialize`` key)."""

    as_of_range: list[str] = dataclasses.field(default_factory=list)
    daily_dates: list[str] = dataclasses.field(default_factory=list)
    as_of_written: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    rows_written: dict[str, int] = dataclasses.field(default_factory=dict)
    state_dates: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update(out.pop("extra"))
        return out


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(n) for n in range((last - first).days + 1)]


def _read_record(store: Store) -> dict[str, Any]:
    try:
        record = store.read_json(STATE_RECORD)
    except FileNotFoundError:
        record = {}
    record.setdefault("files", {})
    record.setdefault("daily", {})
    record.setdefault("as_of", {})
    record.setdefault("state", {})
    return record


# -- tasks (run on workers) ------------------------------------------------------------------
def _daily_task(store: Store, plan: DailyPlan, day: dt.date, recompute: bool) -> pd.DataFrame:
    """(Re)build the daily aggregates of ``day`` when asked; return its customer frame (one row
    per customer active that day), which advances the customer state."""
    if recompute:
        cust, cp = compute_daily(store, plan, day)
        name = f"event_date={day.isoformat()}"
        if len(cust):
            write_table(store, cust, DAILY_CUSTOMER, name, "part-0.parquet")
            write_table(store, cp, DAILY_CUSTOMER_PRODUCT, name, "part-0.parquet")
        else:  # no counted hit that day: no partition (readers treat it as empty)
            store.remove(DAILY_CUSTOMER, name, recursive=True)
            store.remove(DAILY_CUSTOMER_PRODUCT, name, recursive=True)
        return cust
    return read_daily(store, DAILY_CUSTOMER, [day]).drop(columns="day")


def _pairs_of_window(store: Store, as_of: dt.date, window: int) -> pd.DataFrame:
    days = _days(as_of - dt.timedelta(window - 1), as_of)
    cp = read_daily(store, DAILY_CUSTOMER_PRODUCT, days)
    if "product_id" not in cp:
        cp["product_id"] = pd.Series([], dtype="string")
    return cp


def _pair_tables_task(store: Store, repo: FeatureRepo, as_of: dt.date, tables: list[str],
                      window: int) -> dict[str, int]:
    """Write the customer x product tables due at ``as_of`` (independent of the state chain,
    so they run alongside the customer tables)."""
    cp = _pairs_of_window(store, as_of, window)
    rows = {}
    for table in tables:
        df = customer_product_snapshot(repo, table, as_of, cp)
        write_table(store, df, table, f"as_of={as_of.isoformat()}", "part-0.parquet")
        rows[table] = len(df)
    return rows


def _customer_tables_task(store: Store, repo: FeatureRepo, as_of: dt.date, tables: list[str],
                          state: pd.DataFrame, lags: dict[int, pd.DataFrame],
                          window: int) -> dict[str, int]:
    """Write the customer tables due at ``as_of`` and the customer state of that day."""
    name = f"as_of={as_of.isoformat()}"
    rows: dict[str, int] = {}
    needs_pairs = any(f.aggregation == "distinct" and f.field == "product_id"
                      for t in tables for f in repo.tables[t].features.values())
    cp = _pairs_of_window(store, as_of, window) if needs_pairs else None
    for table in tables:
        df = customer_snapshot(repo, table, as_of, state, lags, cp)
        write_table(store, df, table, name, "part-0.parquet")
        rows[table] = len(df)
    state_out = state.reset_index()
    state_out["customer_id"] = state_out["customer_id"].astype("string")
    write_table(store, state_out, CUSTOMER_STATE, name, "part-0.parquet")
    return rows


# -- the driver --------------------------------------------------------------------------------
def materialize(
    store: Store,
    *,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    repo: FeatureRepo | str | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    force: bool = False,
) -> MaterializeReport:
    """Bring the feature tables up to date through the latest drop (see module docstring).

    ``start``/``end`` limit which as-of dates are (re)written; ``force`` rebuilds every as-of
    in that range and the daily aggregates they read (``featurestore backfill``). Holds the
    store's writer lock (``ingest`` calls :func:`materialize_locked` under its own).
    """
    with store.lock("materialize"):
        return materialize_locked(store, client=client, scheduler=scheduler, workers=workers,
                                  repo=repo, start=start, end=end, force=force)


def _as_date(value: dt.date | str | None) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def materialize_locked(store: Store, *, client: Client | None = None,
                       scheduler: str | None = None, workers: int | None = None,
                       repo: FeatureRepo | str | None = None, start=None, end=None,
                       force: bool = False) -> MaterializeReport:
    """:func:`materialize` for a caller that already holds the store lock (``ingest``)."""
    started = time.perf_counter()
    if not isinstance(repo, FeatureRepo):
        repo = load_feature_repo(repo)
    start, end = _as_date(start), _as_date(end)
    report = MaterializeReport()
    weblog_tables = list(repo.tables_for("weblog"))
    ledger = ledger_entries(store)
    if weblog_tables and ledger:
        _materialize_weblog(store, repo, ledger, report, client, scheduler, workers, start,
                            end, force)
    from ..sources.retail import materialize_retail

    materialize_retail(store, repo, report, client=client, scheduler=scheduler,
                       workers=workers, start=start, end=end, force=force)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _materialize_weblog(store: Store, repo: FeatureRepo, ledger: dict[str, dict[str, Any]],
                        report: MaterializeReport, client, scheduler, workers, start, end,
                        force) -> None:
    plan = daily_plan(repo)
    window = max_window(repo, "weblog")
    tables = list(repo.tables_for("weblog"))
    record = _read_record(store)
    event_dates = sorted({d for e in ledger.values() for d in e["event_dates"]})
    if not event_dates:
        return
    first = dt.date.fromisoformat(event_dates[0])
    last = max(dt.date.fromisoformat(k.split("/", 1)[0]) for k in ledger)
    last = max(last, dt.date.fromisoformat(event_dates[-1]))
    all_days = _days(first, last)
    report.as_of_range = [first.isoformat(), last.isoformat()]
    lo, hi = max(start or first, first), min(end or last, last)

    # 1. what changed since the record
    touched = sorted({d for k, e in ledger.items()
                      if record["files"].get(k) != e["ingested_at"] for d in e["event_dates"]})
    earliest = dt.date.fromisoformat(touched[0]) if touched else None
    if earliest is not None:  # states from the earliest touched date on are stale
        for d in list(record["state"]):
            if d >= earliest.isoformat():
                del record["state"][d]
    daily_dirty = {d for d in event_dates
                   if d in touched or record["daily"].get(d) != plan.fingerprint}
    if force:
        reach = (lo - dt.timedelta(window - 1)).isoformat()
        daily_dirty |= {d for d in event_dates if reach <= d <= hi.isoformat()}

    due: dict[dt.date, list[str]] = {}
    for table in tables:
        fp = repo.fingerprint(table)
        done = record["as_of"].setdefault(table, {})
        for day in all_days:
            iso = day.isoformat()
            stale = (done.get(iso) != fp or (earliest is not None and day >= earliest)
                     or (force and lo <= day <= hi))
            if not stale:
                continue
            if lo <= day <= hi:
                due.setdefault(day, []).append(table)
            else:  # outside the requested range: leave it marked stale for a later run
                done.pop(iso, None)
    due_days = sorted(due)

    # 2. the customer-state chain: from the stored state of the day before the first due day,
    # if it and every older state a window reaches back to are current; else from the start
    lags = windows(repo, "weblog")
    chain: list[dt.date] = []
    state = empty_state(plan)
    if due_days:
        begin = due_days[0]

        def stored(day: dt.date) -> bool:
            return record["state"].get(day.isoformat()) == plan.fingerprint and store.exists(
                CUSTOMER_STATE, f"as_of={day.isoformat()}", "part-0.parquet")

        older = {day - dt.timedelta(w) for day in _days(begin, due_days[-1]) for w in lags}
        older = {d for d in older | {begin - dt.timedelta(1)} if first <= d < begin}
        if begin > first and all(stored(d) for d in older):
            state = load_state(store, plan, begin - dt.timedelta(1))
        else:
            begin = first
        chain = _days(begin, due_days[-1])

    with dask_client(scheduler, workers, client) as c:
        # 3. daily aggregates: recompute the dirty dates, read the chain's customer frames
        need = sorted({dt.date.fromisoformat(d) for d in daily_dirty} | set(chain))
        futures = {day: c.submit(_daily_task, store, plan, day,
                                 day.isoformat() in daily_dirty, pure=False,
                                 key=f"fs-daily-{day.isoformat()}-{time.monotonic_ns()}")
                   for day in need}
        wait(list(futures.values()))
        for f in futures.values():
            f.result()  # raise a task's error here
        report.daily_dates = sorted(daily_dirty)
        for d in daily_dirty:
            record["daily"][d] = plan.fingerprint

        # 4. snapshots, in rounds of CHUNK days: advance the state on the client (small
        # frames), then one task per day with that day's state and the states a window back
        rows = dict.fromkeys(tables, 0)
        states: dict[dt.date, Any] = {}  # scattered states of this run's recent days

        def lagged(day: dt.date) -> Any:
            if day < first:
                return empty_state(plan)
            if day not in states:  # before this run's chain: stored and current (checked)
                states[day] = c.scatter(load_state(store, plan, day), hash=False)
            return states[day]

        if chain and chain[0] > first:  # the stored state the chain starts from is a lag too
            states[chain[0] - dt.timedelta(1)] = c.scatter(state, hash=False)
        pair_tables = {t for t in tables if len(repo.keys(t)) == 2}

        for i in range(0, len(chain), CHUNK):
            batch = []
            for day in chain[i:i + CHUNK]:  # pair tables first: they need no state
                if names := [t for t in due.get(day, []) if t in pair_tables]:
                    batch.append(c.submit(
                        _pair_tables_task, store, repo, day, names, window, pure=False,
                        key=f"fs-pairs-{day.isoformat()}-{time.monotonic_ns()}"))
            for day in chain[i:i + CHUNK]:
                state = advance(state, plan, day, futures[day].result())
                states[day] = c.scatter(state, hash=False)
                lag_states = {w: lagged(day - dt.timedelta(w)) for w in lags}
                names = [t for t in due.get(day, []) if t not in pair_tables]
                batch.append(c.submit(_customer_tables_task, store, repo, day, names,
                                      states[day], lag_states, window, pure=False,
                                      key=f"fs-asof-{day.isoformat()}-{time.monotonic_ns()}"))
                for old in [d for d in states if d < day - dt.timedelta(max(lags, default=1))]:
                    del states[old]  # no later day reaches back this far
            for fut in batch:
                for table, n in fut.result().items():
                    rows[table] += n
        for day in chain:
            record["state"][day.isoformat()] = plan.fingerprint
        for day, names in due.items():
            for table in names:
                record["as_of"][table][day.isoformat()] = repo.fingerprint(table)
                report.as_of_written.setdefault(table, []).append(day.isoformat())
        report.rows_written.update({t: n for t, n in rows.items() if n})
        report.state_dates = len(chain)

    record["files"] = {k: e["ingested_at"] for k, e in ledger.items()}
    store.write_json(record, STATE_RECORD)  # last: everything above is published
