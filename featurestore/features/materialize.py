"""Bring every feature table up to date, incrementally, on the Dask cluster.

What is dirty comes from comparing the ingest ledger with our own record,
``_state/materialize.json`` (files seen with their ``ingested_at``, every event date seen, and
per daily date / as-of date / state the definition fingerprint it was built with). Ledger
records change only when a changed file is replaced, which leaves a note naming the dates both
versions touched, so only the keys the record has not seen and noted keys are read:

* an event date touched by a new file, or whose daily aggregates were built for another set of
  definitions, gets its daily aggregates recomputed (one task per date);
* every as-of date from the earliest touched event date to the latest is rebuilt (windows and
  the state both reach forward), plus as-of dates never built or built with an older
  definition of the table (a new feature: ``backfill``);
* the customer state (running totals and last dates per customer, :mod:`.state`) chains day to
  day from the stored state of the day before the first rebuilt date, so nothing rescans
  history: a customer window is the state of D minus the state of D - w;
* customer x product windows (:mod:`.pairs`): the window without D is rolled from the stored
  window of D-1 (or aggregated from the stored days) alongside the day's own aggregates, then
  merged with the day's new pairs and stored for D+1.

The task graph of one as-of date is described on :class:`_Run`. Every output name is
deterministic and published atomically; the record is written last, so a crash followed by a
re-run redoes the same work and leaves identical tables.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from .. import layout
from ..cluster import dask_client
from ..generations import commit_generations
from ..layout import PARTIAL_CUSTOMER, PARTIAL_CUSTOMER_PRODUCT
from ..ledger import (
    LEDGER,
    REPLACED,
    changes,
    file_records,
    list_ledger,
    read_days,
    replaced_notes,
)
from ..planning import AsOfPlan, days_between, plan_as_of, requested_range, touched_dates
from ..storage import Store
from ._io import arrow_table, parquet_bytes, write_arrow
from .aggs import engine as ext_engine
from .daily import (
    DAILY_CUSTOMER,
    DAILY_CUSTOMER_PRODUCT,
    DailyPlan,
    compute_daily,
    daily_plan,
    read_daily_table,
)
from .definitions import FeatureRepo, is_extended
from .online_delta import (
    candidates,
    commit_deltas,
    delta_days,
    delta_windows,
    sorted_union,
    write_delta,
)
from .pairs import (
    PAIRS_FORMAT,
    DistinctCounts,
    PairSums,
    PairWindow,
    Spec,
    aggregate,
    column_of,
    load_pairs,
    pair_specs,
    pairs_exist,
    roll,
    rolls,
    write_pairs,
)
from .pairs import empty as empty_pairs
from .partials import combine_partial, partial_ids, partial_rows
from .snapshot import customer_product_snapshot, customer_snapshot, max_window, windows
from .state import (
    CUSTOMER_STATE,
    STATE_FORMAT,
    CustomerState,
    load_state,
    state_exists,
    write_state,
)

if TYPE_CHECKING:  # Dask loads when a plan has work (an empty one starts no cluster)
    from distributed import Client

__all__ = ["MaterializeReport", "WeblogPlan", "plan_weblog", "execute_weblog", "commit_weblog",
           "materialize_weblog", "STATE_RECORD", "CUSTOMER_STATE"]

STATE_RECORD = layout.MATERIALIZE_RECORD
#: As-of dates submitted per round: bounds how many state frames are in flight at once.
CHUNK = 16


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


def _dates_its_drop(entry: dict[str, Any]) -> bool:
    """Whether a ledger record's drop date may be an as-of date (the latest one served).

    Args:
        entry: a file's ledger record.

    Returns:
        False when every line of the file was quarantined as ``too_old``: a drop folder dated
        long after its hits must not move the latest as-of (nor make years of as-of dates).
        An empty file still dates its drop, as before.
    """
    lines = entry.get("lines", 0)
    return lines == 0 or entry.get("bad", {}).get("too_old", 0) < lines


def _new_entries(store: Store, record: dict[str, Any]
                 ) -> tuple[dict[str, dict[str, Any]], list[str], dict[str, int]]:
    """The ledger records the materialization record has not seen (see :mod:`..ledger`).

    Per-file records are read when their key is not in ``record["files"]``; a drop's day file
    when its version is not ``record["days"][drop]``, and of it only the rows added or changed
    since that version (``since``), or every row when the record never saw the day file (a
    row the record saw as a per-file record keeps its ``ingested_at``: not touched).

    Args:
        store: the store.
        record: the materialization record.

    Returns:
        (key -> record of the rows to look at, per-file keys listed, drop -> day-file version).
    """
    listing = list_ledger(store)
    current = "event_dates" in record and "drops" in record
    known = record["files"] if current else {}
    seen = record.get("days", {}) if current else {}
    days = listing.day_versions()
    rows = read_days(store, {d: v for d, v in days.items() if seen.get(d) != v},
                     ["key", "since", "record"]).to_pydict()
    entries = {}
    for key, since, body in zip(rows["key"], rows["since"], rows["record"], strict=True):
        was = seen.get(key.split("/", 1)[0])
        if was is None or since > was or days[key.split("/", 1)[0]] < was:
            entries[key] = json.loads(body)
    # a per-file record wins over a day file's row: it is the same or newer
    entries.update(file_records(store, [k for k in listing.keys if k not in known]))
    return entries, listing.keys, days


def _read_record(store: Store) -> dict[str, Any]:
    try:
        record = store.read_json(STATE_RECORD)
    except FileNotFoundError:
        record = {}
    record.setdefault("files", {})
    record.setdefault("daily", {})
    record.setdefault("as_of", {})
    record.setdefault("state", {})
    record.setdefault("pairs", {})
    return record


# -- tasks (run on workers) ------------------------------------------------------------------
def _daily_tables(store: Store, plan: DailyPlan, day: dt.date, kind: str
                  ) -> tuple[pa.Table, bool]:
    """One daily table of ``day`` rebuilt (Arrow, with the schema and pandas metadata of the
    frame it once went through) from the ingest tasks' partials when they cover the day, else
    from its events; and whether the day has a customer row (no counted hit: no partition).

    The two tables are independent sums of the same partials, so each is its own task on its
    own worker (issue #27: combining a first day's 3.7 M + 1.3 M partial rows was the longest
    step of materialization, done one after the other in one task)."""
    ids = partial_ids(store, plan, day)
    if ids is None:  # the events: both frames at once (the rare path: older ingests)
        cust, cp = compute_daily(store, plan, day)
        table = cust if kind == DAILY_CUSTOMER else cp
        return pa.Table.from_pandas(table, preserve_index=False), bool(len(cust))
    partial = PARTIAL_CUSTOMER if kind == DAILY_CUSTOMER else PARTIAL_CUSTOMER_PRODUCT
    table = _pandas_like(combine_partial(store, plan, day, partial, ids))
    if kind == DAILY_CUSTOMER:
        return table, table.num_rows > 0
    return table, partial_rows(store, plan, day, ids) > 0


def _pandas_like(table: pa.Table) -> pa.Table:
    """``table`` as ``Table.from_pandas`` gives it back after ``to_pandas`` (strings as
    ``string``), without the round trip through Python strings."""
    return arrow_table({name: column if pa.types.is_large_string(column.type)
                        or pa.types.is_string(column.type) else column.to_numpy()
                        for name, column in zip(table.column_names, table.columns,
                                                strict=True)})


def _publish_daily(store: Store, table: pa.Table, kind: str, day: dt.date,
                   active: bool) -> None:
    name = f"event_date={day.isoformat()}"
    if active:
        write_arrow(store, table, kind, name, "part-0.parquet")
    else:  # no counted hit that day: no partition (readers treat it as empty)
        store.remove(kind, name, recursive=True)


def _daily_task(store: Store, plan: DailyPlan, day: dt.date, recompute: bool) -> pa.Table:
    """The customer rows of ``day`` (one per customer active that day: it advances the
    customer state), Arrow; rebuilt and published when ``recompute``, else read back."""
    if recompute:
        cust, active = _daily_tables(store, plan, day, DAILY_CUSTOMER)
        _publish_daily(store, cust, DAILY_CUSTOMER, day, active)
        return cust
    return read_daily_table(store, DAILY_CUSTOMER, [day]).drop_columns(["day"])


def _daily_pairs_task(store: Store, plan: DailyPlan, day: dt.date) -> pa.Table:
    """The customer x product rows of a recomputed ``day``, published, returned with ``day``
    for this run's windows to take from memory."""
    cp, active = _daily_tables(store, plan, day, DAILY_CUSTOMER_PRODUCT)
    _publish_daily(store, cp, DAILY_CUSTOMER_PRODUCT, day, active)
    return cp.append_column("day", pa.array(np.full(cp.num_rows, day.toordinal())))


def _pair_rows(store: Store, source: dt.date | pa.Table) -> pa.Table:
    """A day's daily customer x product rows: read back (``source`` is its date) or this
    run's (:func:`_daily_pairs_task`)."""
    if isinstance(source, dt.date):
        return read_daily_table(store, DAILY_CUSTOMER_PRODUCT, [source])
    return source


def _with_day(store: Store, as_of: dt.date, specs: list[Spec], prior: PairSums,
              stored_day: bool, distinct: list[Spec]) -> PairWindow:
    """The prior task's result: the window with the stored rows of ``as_of`` when
    ``stored_day`` (else this run's, added later) and the prior counted for ``distinct``."""
    rows = _pair_rows(store, as_of) if stored_day else None
    return PairWindow(prior, rows, as_of.toordinal(), specs).count_prior(distinct)


def _aggregated_prior_task(store: Store, as_of: dt.date, specs: list[Spec],
                           stored: list[dt.date], fresh: list[pa.Table],
                           stored_day: bool, distinct: list[Spec]) -> PairWindow:
    """The window at ``as_of`` as (prior, stored pairs of ``as_of`` when ``stored_day``): the
    prior aggregated from the ``stored`` days before ``as_of`` and this run's daily results of
    the others (``fresh``: their customer x product rows). Needs nothing of the day's own aggregates: runs alongside them."""
    tables = [read_daily_table(store, DAILY_CUSTOMER_PRODUCT, stored)] if stored else []
    tables += list(fresh)
    tables = [t for t in tables if t.num_rows]
    prior = empty_pairs()
    if tables:
        rows = pa.concat_tables(tables, promote_options="default")
        day = rows["day"].to_numpy()
        if (day[1:] < day[:-1]).any():  # sum in day order: the same bits on every run
            rows = rows.take(pa.array(np.argsort(day, kind="stable")))
        prior = aggregate(rows, as_of.toordinal(), specs)
    return _with_day(store, as_of, specs, prior, stored_day, distinct)


def _rolled_prior_task(store: Store, as_of: dt.date, specs: list[Spec], written: Any,
                       leaving: dict[int, Any], stored_day: bool,
                       distinct: list[Spec]) -> PairWindow:
    """Like :func:`_aggregated_prior_task`, the prior rolled instead (see pairs.py): the stored
    window of the day before (written by this run's pair task of that day, ``written``, or by an
    earlier run) minus, per window w, the day leaving it (``leaving[w]``: a date or this
    run's customer x product rows of it)."""
    rows = {w: _pair_rows(store, source) for w, source in leaving.items()}
    prior = roll(load_pairs(store, as_of - dt.timedelta(1)), as_of.toordinal(),
                 {w: r for w, r in rows.items() if r is not None},
                 max(w for _, w in specs))
    return _with_day(store, as_of, specs, prior, stored_day, distinct)


def _window_at(window: PairWindow, daily: pa.Table | None) -> PairWindow:
    """The whole window: the prior task's, with the day's customer x product rows this run
    computed when it did (``daily``)."""
    if daily is None:
        return window
    return dataclasses.replace(window, rows=daily)


def _ready(_: Any) -> bool:
    """A token that its argument (a task's result) exists: a task given it runs after that
    one, and only ``True`` crosses workers."""
    return True


def _distinct_task(window: PairWindow, daily: pa.Table | None,
                   specs: list[Spec]) -> DistinctCounts:
    """The distinct-product counts the customer tables need of the whole window, computed
    where the window and the day's rows are (:class:`.pairs.DistinctCounts`)."""
    return DistinctCounts.of(_window_at(window, daily), specs)


def _state(store: Store, plan: DailyPlan, state: CustomerState | dt.date | None,
           ids: bool) -> CustomerState | None:
    """A state given as this run's, a stored one's date (read here: a millisecond, cheaper
    than a task of its own) or None (before the first event date)."""
    if isinstance(state, dt.date):
        return load_state(store, plan, state, ids=ids)
    return state


def _advance_task(store: Store, plan: DailyPlan, state: CustomerState | dt.date | None,
                  day: dt.date, daily: pa.Table) -> CustomerState:
    state = _state(store, plan, state, ids=True)
    return (CustomerState.empty(plan) if state is None else state).advance(plan, day, daily)


def _write_table(store: Store, as_of: dt.date, table: str, out: pa.Table,
                 deltas: dict[str, list[int]] | None, unique: tuple[str, ...] = (),
                 pool: ThreadPoolExecutor | None = None) -> None:
    """Publish ``table``'s partition of ``as_of`` and, when it has one at ``as_of``, the
    online push's handover (:mod:`.online_delta`): its rows of the customers active on a day
    that moves them (on a store's first day every row: then the partition's bytes).

    With a ``pool``, the handover is written in one of its threads while this one encodes
    the partition: the two are independent, so they cannot reuse each other's bytes (see
    :func:`_pair_tables_task`)."""
    handover = None
    if deltas and table in deltas and pool is not None:
        handover = pool.submit(_write_delta, store, as_of, table, out, deltas[table], unique,
                               None)
    encoded = parquet_bytes(out, unique)
    store.write_bytes(encoded, table, f"as_of={as_of.isoformat()}", "part-0.parquet")
    if handover is not None:
        handover.result()
    elif deltas and table in deltas:
        _write_delta(store, as_of, table, out, deltas[table], unique, encoded)


def _write_delta(store: Store, as_of: dt.date, table: str, out: pa.Table, windows: list[int],
                 unique: tuple[str, ...], encoded: bytes | None) -> None:
    """The online push's handover of ``table`` at ``as_of`` (``encoded``: the partition's
    bytes when known, written as they are when the handover holds every row unchanged)."""
    near = candidates(store, delta_days(as_of, windows, back=(0,)))
    far = candidates(store, [d for d in delta_days(as_of, windows)
                             if d not in delta_days(as_of, windows, back=(0,))])
    write_delta(store, table, as_of, out, sorted_union(near, far), near=near, unique=unique,
                encoded=encoded)


def _pair_tables_task(store: Store, repo: FeatureRepo, as_of: dt.date, tables: list[str],
                      specs: list[Spec], window: PairWindow, daily, keep: bool,
                      deltas: dict[str, list[int]] | None = None,
                      published: bool | None = None) -> dict[str, int]:
    """Write the customer x product tables due at ``as_of`` (independent of the state chain,
    so they run alongside the customer tables) and, when ``keep``, the whole window, for the
    next day's prior to roll from (``deltas``: table -> windows, see :func:`_write_table`;
    ``published``: :func:`_ready` of the state of ``as_of`` when there are deltas, whose
    candidates are read from the days' published customer rows).

    Its writes run side by side in threads: the stored window, each table's partition and
    its online handover are independent, and on a store's first day (1.3 M pair rows) this
    task was the materialization's critical path while the customer tables' worker sat idle
    at the end (issue #27). Parquet encoding and the id merges release the GIL, so the
    threads use that idle core; every file is published atomically as before, and only the
    commit record (written last, by the client) makes them current."""
    pairs = _window_at(window, daily).merged()
    rows = {}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fs-pair-writes") as pool:
        stored = pool.submit(write_pairs, store, pairs, as_of) if keep else None
        for table in tables:
            out = customer_product_snapshot(repo, table, pairs)
            _write_table(store, as_of, table, out, deltas, pool=pool)
            rows[table] = out.num_rows
        if stored is not None:
            stored.result()
    return rows


def _ext_advance_task(store: Store, ext: ext_engine.ExtPlan, prior: Any, day: dt.date,
                      today: pa.Table | dt.date, leaving: dict[int, pa.Table | dt.date]
                      ) -> pa.Table | dt.date:
    """The SPEC §3a state of ``day`` (see :mod:`.aggs.engine`) from that of the day before,
    the day's combined states (:func:`_ext_day_task`) and those of the days leaving a slid
    window that this run rebuilt (``leaving``; the others are read). The one serial chain of
    the SPEC §3a features: the day states, the front stacks and the as-of columns are other
    tasks, off it.

    On a local store the inputs are dates (their tasks published them: memory-mapped here)
    and the state is published here and passed on as its date, so no table of several MB
    moves between worker processes (see :func:`_ext_passed`)."""
    local = isinstance(today, dt.date)
    state = ext_engine.advance_ext(
        store, ext, prior, day, False, today=None if local else today,
        leaving={w: t for w, t in leaving.items() if not isinstance(t, dt.date)},
        suffixes=False, write=local)
    return day if local else state


def _ext_passed(store: Store, day: dt.date, table: pa.Table) -> pa.Table | dt.date:
    """What a SPEC §3a task hands on: on a local store the date of the table it published
    (its readers memory-map the page cache), else the table. Sending the chained state and the
    day states between the two worker processes (the chain alternates workers with the days)
    moved ~600 MB on the 60-day benchmark: serialized, sent and received over loopback TCP,
    ~4 s of CPU with the kernel's copies (Dask's worker metrics, issue #26)."""
    return day if store.is_local else table


def _ext_day_task(store: Store, ext: ext_engine.ExtPlan, day: dt.date,
                  recompute: bool) -> pa.Table | dt.date:
    """A day's combined SPEC §3a states: rebuilt from its partials and published when
    ``recompute``, else read back. Independent of the chain: runs ahead of it."""
    return _ext_passed(store, day, ext_engine.ext_daily(store, ext, day, recompute))


def _ext_suffix_task(store: Store, ext: ext_engine.ExtPlan, w: int, last: dt.date,
                     days: dict[dt.date, pa.Table | dt.date]) -> bool:
    """The front stack of the block of ``w`` days ending on ``last`` (``days``: the block's
    day states this run rebuilt; dates are read back); a token for the as-of tasks that read
    it."""
    return ext_engine.build_suffixes(
        store, ext, w, last, {d: t for d, t in days.items() if not isinstance(t, dt.date)})


def _ext_daily_task(store: Store, ext: ext_engine.ExtPlan, day: dt.date) -> int:
    """Rebuild a touched day's SPEC §3a day states outside the as-of chain."""
    return ext_engine.ext_daily(store, ext, day, True).num_rows


def _customer_tables_task(store: Store, repo: FeatureRepo, plan: DailyPlan, as_of: dt.date,
                          tables: list[str], state: CustomerState,
                          lags: dict[int, CustomerState | dt.date | None],
                          window: DistinctCounts | PairWindow | None, daily,
                          ext: tuple[ext_engine.ExtPlan, pa.Table | dt.date, dt.date,
                                     list[bool]] | None = None,
                          deltas: dict[str, list[int]] | None = None) -> dict[str, int]:
    """Write the customer tables due at ``as_of`` and the customer states of that day
    (``ext``: the SPEC §3a plan, its state of ``as_of`` (its date when the chain published
    it), the first event date and the tokens of the front stacks its windows read;
    ``deltas``: table -> windows, see :func:`_write_table`)."""
    rows: dict[str, int] = {}
    if ext is not None and isinstance(ext[1], dt.date):  # published by the chain (local)
        ext = (ext[0], ext_engine.load_ext_state(store, ext[0], ext[1]), *ext[2:])
    elif ext is not None:  # written here, off the chain that computed it
        ext_engine.write_ext_state(store, ext[0], ext[1], as_of)
    lags = {w: _state(store, plan, lag, ids=False) for w, lag in lags.items()}
    pairs = _window_at(window, daily) if window is not None else None
    for table in tables:
        out = customer_snapshot(repo, table, as_of, state, lags, pairs)
        if ext is not None and any(t == table for t, _, _ in ext[0].outputs):
            out = ext_engine.with_ext_columns(store, repo, ext[0], table, as_of, out, ext[1],
                                              ext[2])
        _write_table(store, as_of, table, out, deltas, unique=("customer_id",))
        rows[table] = out.num_rows
    write_state(store, state, as_of)
    return rows


# -- the web-log driver: plan, execute, commit ----------------------------------------------
@dataclasses.dataclass(frozen=True)
class WeblogPlan:
    """What one web-log materialization reads, computes and records (pure: see
    :func:`plan_weblog`).

    Attributes:
        first: the first event date (the first as-of date).
        last: the last as-of date (the latest drop or event date).
        as_of: the due as-of dates per table (the shared planner's answer).
        daily_dirty: event dates (ISO) whose daily aggregates are recomputed.
        chain: the as-of dates the customer state is advanced through (ascending).
        window: the longest window of the web-log tables, in days.
        lags: the window lengths customer tables subtract states at.
        pairs_current: dates (ISO) whose stored pair window is current and may be rolled.
        state_kept: the record's customer states still current (ISO date -> fingerprint).
        pairs_kept: the record's pair windows still current (ISO date -> fingerprint).
        files: the commit record's ``files`` after this run.
        days: the commit record's ``days`` (drop -> day-file version).
        event_dates: every event date seen (ISO).
        drops: drop dates that may be an as-of date (ISO).
        notes: keys of replacement notes this run consumes.
        daily_fp: fingerprint of the daily aggregates' definitions.
        state_fp: what a stored customer state is built for.
        pair_fp: what a stored pair window is built for.
    """

    first: dt.date
    last: dt.date
    as_of: AsOfPlan
    daily_dirty: tuple[str, ...]
    chain: tuple[dt.date, ...]
    window: int
    lags: tuple[int, ...]
    pairs_current: frozenset[str]
    state_kept: Mapping[str, str]
    pairs_kept: Mapping[str, str]
    files: Mapping[str, str]
    days: Mapping[str, int]
    event_dates: tuple[str, ...]
    drops: tuple[str, ...]
    notes: tuple[str, ...]
    daily_fp: str
    state_fp: str
    pair_fp: str
    ext_fp: str = ""


def plan_weblog(repo: FeatureRepo, record: dict[str, Any], entries: dict[str, dict[str, Any]],
                keys: list[str], days: dict[str, int], notes: dict[str, dict[str, Any]], *,
                start: dt.date | None, end: dt.date | None, force: bool,
                state_stored: Callable[[dt.date], bool]) -> WeblogPlan | None:
    """Plan a web-log materialization (see the module docstring) without touching the store.

    Args:
        repo: the feature repository.
        record: the commit record (:func:`_read_record`).
        entries: ledger records the record has not seen, and those of noted keys.
        keys: every per-file ledger key listed.
        days: drop -> day-file version listed.
        notes: replacement notes (key -> ``{"event_dates": [...]}``).
        start: first as-of date to (re)write, None for the first.
        end: last as-of date to (re)write, None for the latest.
        force: rebuild every as-of date in the range and the daily aggregates they read.
        state_stored: whether the customer state of a date exists in the store (a reader).

    Returns:
        The plan, or None when nothing is ingested (nothing is recorded).
    """
    if not keys and not days:
        return None
    plan = daily_plan(repo)
    state_fp = f"{plan.fingerprint}/{STATE_FORMAT}"  # what a stored state was built for
    ext = ext_engine.ext_plan(repo)
    if not ext.empty:  # SPEC §3a features chain their own state beside it
        state_fp += f"/{ext.state_fp}"
    pair_fp = f"{plan.fingerprint}/{pair_specs(repo)}/{PAIRS_FORMAT}"  # and stored pair sums
    window = max_window(repo, "weblog")
    fingerprints = {t: repo.fingerprint(t) for t in repo.tables_for("weblog")}
    touched = touched_dates(changes(entries, "ingested_at"), record["files"],
                            noted={d for n in notes.values() for d in n["event_dates"]})
    event_dates = sorted(set(record.get("event_dates", ()))
                         | {d for e in entries.values() for d in e["event_dates"]})
    # drop dates that may be an as-of date: not those of drops whose every hit was too old
    drops = sorted(set(record.get("drops", ()))
                   | {k.split("/", 1)[0] for k, e in entries.items() if _dates_its_drop(e)})
    if not event_dates:
        return None
    first = dt.date.fromisoformat(event_dates[0])
    last = max([dt.date.fromisoformat(d) for d in drops]
               + [dt.date.fromisoformat(event_dates[-1])])
    lo, hi = requested_range(first, last, start, end)

    earliest = dt.date.fromisoformat(touched[0]) if touched else None
    # states from the earliest touched date on are stale
    state_kept = {d: fp for d, fp in record["state"].items()
                  if earliest is None or d < earliest.isoformat()}
    pairs_kept = {d: fp for d, fp in record["pairs"].items()
                  if earliest is None or d < earliest.isoformat()}
    daily_dirty = {d for d in event_dates
                   if d in touched or record["daily"].get(d) != plan.fingerprint}
    if not ext.empty:  # and their day states, by their own fingerprint
        daily_dirty |= {d for d in event_dates
                        if record.get("ext_daily", {}).get(d) != ext.partial_fp}
    if force:
        reach = (lo - dt.timedelta(window - 1)).isoformat()
        daily_dirty |= {d for d in event_dates if reach <= d <= hi.isoformat()}
    as_of = plan_as_of(fingerprints, record["as_of"], days_between(first, last),
                       earliest=earliest, lo=lo, hi=hi, force=force)

    # the customer-state chain: from the stored state of the day before the first due day,
    # if it and every older state a window reaches back to are current; else from the start
    lags = windows(repo, "weblog")
    chain: list[dt.date] = []
    if as_of.due:
        due_days = as_of.days
        begin = due_days[0]

        def stored(day: dt.date) -> bool:
            return state_kept.get(day.isoformat()) == state_fp and state_stored(day)

        older = {day - dt.timedelta(w) for day in _days(begin, due_days[-1]) for w in lags}
        older = {d for d in older | {begin - dt.timedelta(1)} if first <= d < begin}
        if not (begin > first and all(stored(d) for d in older)):
            begin = first
        chain = _days(begin, due_days[-1])
    # per-file keys by name; compacted drops by day-file version (their keys are not kept:
    # the record stays O(days))
    files = {k: entries[k]["ingested_at"] if k in entries else record["files"][k] for k in keys}
    return WeblogPlan(
        first=first, last=last, as_of=as_of, daily_dirty=tuple(sorted(daily_dirty)),
        chain=tuple(chain), window=window, lags=tuple(lags),
        pairs_current=frozenset(d for d, fp in pairs_kept.items() if fp == pair_fp),
        state_kept=state_kept, pairs_kept=pairs_kept, files=files, days=dict(days),
        event_dates=tuple(event_dates), drops=tuple(drops), notes=tuple(notes),
        daily_fp=plan.fingerprint, state_fp=state_fp, pair_fp=pair_fp,
        ext_fp="" if ext.empty else ext.partial_fp)


def online_deltas(repo: FeatureRepo, plan: WeblogPlan) -> dict[str, tuple[dt.date, list[int]]]:
    """Per table that can have one (:func:`.online_delta.delta_windows`): the last as-of date
    this run writes, whose delta for the online push the as-of task publishes, and the
    table's windows."""
    out = {}
    for day, names in plan.as_of.due.items():
        for table in names:
            windows = delta_windows(repo, table)
            if windows is not None and (table not in out or day > out[table][0]):
                out[table] = (day, windows)
    return out


def execute_weblog(store: Store, repo: FeatureRepo, plan: WeblogPlan, client: Client
                   ) -> tuple[dict[str, int], list[dt.date]]:
    """Submit the planned task graph (see :class:`_Run`) and wait for it.

    Args:
        store: the store.
        repo: the feature repository.
        plan: the plan.
        client: the Dask client.

    Returns:
        (rows written per table, dates whose pair window this run stored).
    """
    run = _Run(client, store, repo, daily_plan(repo), plan.first,
               {dt.date.fromisoformat(d) for d in plan.daily_dirty}, plan.window,
               list(plan.lags), pairs_current=set(plan.pairs_current),
               deltas=online_deltas(repo, plan))
    rows = run.submit_chain(list(plan.chain), {d: list(n) for d, n in plan.as_of.due.items()})
    return rows, run.pairs_kept


def commit_weblog(store: Store, repo: FeatureRepo, record: dict[str, Any], plan: WeblogPlan,
                  pairs_written: list[dt.date]) -> None:
    """Record what the execution published: generations, then the commit record (last),
    then the consumed replacement notes.

    Args:
        store: the store.
        repo: the feature repository.
        record: the commit record read before planning (updated here).
        plan: the executed plan.
        pairs_written: dates whose pair window the execution stored.
    """
    tables = list(repo.tables_for("weblog"))
    record["state"] = dict(plan.state_kept)
    record["pairs"] = dict(plan.pairs_kept)
    for d in plan.daily_dirty:
        record["daily"][d] = plan.daily_fp
    if plan.ext_fp:  # the SPEC §3a day states rebuilt with the daily aggregates
        ext_daily = record.setdefault("ext_daily", {})
        for d in plan.daily_dirty:
            ext_daily[d] = plan.ext_fp
    for day in plan.chain:
        record["state"][day.isoformat()] = plan.state_fp
    for day in pairs_written:
        record["pairs"][day.isoformat()] = plan.pair_fp
    for table in tables:
        done = record["as_of"].setdefault(table, {})
        for iso in plan.as_of.forget.get(table, ()):
            done.pop(iso, None)
    for day, names in plan.as_of.due.items():
        for table in names:
            record["as_of"][table][day.isoformat()] = repo.fingerprint(table)
    record["files"] = dict(plan.files)
    record["days"] = dict(plan.days)
    record["event_dates"] = list(plan.event_dates)
    record["drops"] = list(plan.drops)
    # the partitions are published: bump their generations (before the record, so a crash in
    # between makes the re-run rewrite and bump them again) for the online store to notice
    commit_generations(store, {t: plan.as_of.written(t) for t in tables})
    # the online push's handover, against the generations just committed
    commit_deltas(store, {t: d.isoformat() for t, (d, _) in online_deltas(repo, plan).items()},
                  plan.first)
    store.write_json(record, STATE_RECORD)  # last: everything above is published
    for key in plan.notes:  # consumed (a crash before this only rebuilds those dates again)
        store.remove(LEDGER, REPLACED, f"{key}.json")


def materialize_weblog(store: Store, repo: FeatureRepo, report: MaterializeReport, client,
                       scheduler, workers, start, end, force) -> None:
    """Bring the web-log tables of ``repo`` up to date (caller holds the store lock; see the
    module docstring): read the record and the new ledger records, plan
    (:func:`plan_weblog`), execute (:func:`execute_weblog`), commit (:func:`commit_weblog`).
    ``start``/``end`` limit the as-of dates (re)written; ``force`` rebuilds every as-of in
    that range."""
    record = _read_record(store)
    ext = ext_engine.ext_plan(repo)
    # what changed since the record: ledger records are written once and never change, so
    # only the keys the record has not seen are read (a record without ``event_dates`` predates
    # that: read everything once)
    entries, keys, days = _new_entries(store, record)
    if not keys and not days:
        return
    notes = replaced_notes(store)
    entries.update(file_records(store, [k for k in notes if k in keys and k not in entries]))
    plan = plan_weblog(repo, record, entries, keys, days, notes, start=start, end=end,
                       force=force, state_stored=lambda day: state_exists(store, day) and (
                           ext.empty or ext_engine.state_exists(store, ext, day)))
    if plan is None:
        return
    report.as_of_range = [plan.first.isoformat(), plan.last.isoformat()]
    rows: dict[str, int] = {}
    pairs_written: list[dt.date] = []
    if plan.chain or plan.daily_dirty:  # an empty plan starts no cluster (a lazy client)
        with dask_client(scheduler, workers, client) as c:
            rows, pairs_written = execute_weblog(store, repo, plan, c)
    report.daily_dates = list(plan.daily_dirty)
    for day, names in plan.as_of.due.items():
        for table in names:
            report.as_of_written.setdefault(table, []).append(day.isoformat())
    report.rows_written.update({t: n for t, n in rows.items() if n})
    report.state_dates = len(plan.chain)
    commit_weblog(store, repo, record, plan, pairs_written)


class _Run:
    """One materialization's task graph, submitted a round of as-of dates at a time.

    Per as-of date D of the chain:

    * ``daily``: the day's customer rows (recomputed when dirty, else the stored ones);
    * ``dailypairs``: a dirty day's customer x product rows, on the pair window's worker (the
      two daily tables are independent sums: combined side by side, not one after the other);
    * ``prior``: the pair window of D without D's own new pairs, rolled from the stored window
      of the day before or aggregated from stored days;
    * ``advance``: the state of D from the state of D - 1 (this run's, or read from the store
      inside the task) and the day's customer frame;
    * ``pairs``: customer x product tables (prior + D's pairs), needing no state, and the
      window of D stored for the next day to roll from;
    * ``distinct``: per customer, the window's distinct-product counts (next to the window);
    * ``asof``: customer tables from the state of D and the states a window back, and the
      state of D written.

    ``prior`` starts at once, alongside ``daily``. Dask places a task by where its inputs
    are, which would put every task of the day on one worker; so the day's aggregates, state
    and customer tables are pinned (loosely: a missing worker is replaced) to one worker and
    its pair window, customer x product rows and tables to the next. What crosses between
    them is small: the prior (to the first worker only when it runs there) and ``distinct``,
    one row per customer.
    """

    def __init__(self, client: Client, store: Store, repo: FeatureRepo, plan: DailyPlan,
                 first: dt.date, dirty: set[dt.date], window: int, lags: list[int],
                 pairs_current: set[str],
                 deltas: dict[str, tuple[dt.date, list[int]]] | None = None) -> None:
        self.c, self.store, self.repo, self.plan = client, store, repo, plan
        self.deltas = deltas or {}  # table -> (the as-of date of its online delta, windows)
        self.first, self.dirty, self.window, self.lags = first, dirty, window, lags
        self.specs = pair_specs(repo)
        self.rolls = rolls(self.specs)
        self.pairs_current = pairs_current  # dates whose stored pair window is current
        self.pair_tasks: dict[dt.date, Any] = {}  # this run's pair tasks (they store windows)
        self.pairs_kept: list[dt.date] = []  # dates whose window this run writes
        self.daily: dict[dt.date, Any] = {}  # the day's customer rows
        self.daily_pairs: dict[dt.date, Any] = {}  # a recomputed day's customer x product rows
        self.submitted: list[Any] = []  # every daily future, to surface errors at the end
        self.states: dict[dt.date, Any] = {}
        self.pair_tables = {t for t in repo.tables_for("weblog") if len(repo.keys(t)) == 2}
        self.distinct = sorted({  # the specs of distinct-product counts of customer tables
            (column_of(f), f.window_days) for t in repo.tables_for("weblog")
            if t not in self.pair_tables for f in repo.tables[t].features.values()
            if f.aggregation == "distinct" and f.field == "product_id"
            and not is_extended(f)})
        self.workers = sorted(client.scheduler_info(n_workers=-1)["workers"]) or [None]
        self.ext = ext_engine.ext_plan(repo)  # SPEC §3a features: their own state chain
        self.ext_states: dict[dt.date, Any] = {}
        self.ext_days: dict[dt.date, Any] = {}  # this run's combined SPEC §3a day states
        self.ext_built: set[dt.date] = set()  # the dirty days among them
        self.ext_suffixes: dict[tuple[int, dt.date], Any] = {}  # (w, block end) -> token

    def _submit(self, kind: str, day: dt.date, fn, *args, worker: str | None = None,
                priority: int = 0) -> Any:
        where = {"workers": [worker], "allow_other_workers": True} if worker else {}
        return self.c.submit(fn, *args, pure=False, priority=priority, **where,
                             key=f"fs-{kind}-{day.isoformat()}-{time.monotonic_ns()}")

    def _worker(self, day: dt.date, offset: int) -> str | None:
        return self.workers[(day.toordinal() + offset) % len(self.workers)]

    def daily_of(self, day: dt.date) -> Any:
        if day not in self.daily:
            self.daily[day] = self._submit("daily", day, _daily_task, self.store, self.plan, day,
                                           day in self.dirty, worker=self._worker(day, 0))
            self.submitted.append(self.daily[day])
        return self.daily[day]

    def pairs_of(self, day: dt.date) -> Any:
        """The customer x product rows of a recomputed ``day``: their own task, on the worker
        of the day's pair window, alongside the day's customer rows."""
        if day not in self.daily_pairs:
            # with SPEC §3a features the day's merge (the longest task, first on the other
            # worker: :meth:`ext_day_of`) holds that worker: the rows go beside the day's
            # aggregates, not to wait there (or to be stolen late, delaying the state chain)
            # (after the day's state there: priority -1)
            self.daily_pairs[day] = self._submit("dailypairs", day, _daily_pairs_task,
                                                 self.store, self.plan, day,
                                                 worker=self._worker(
                                                     day, 1 if self.ext.empty else 0),
                                                 priority=0 if self.ext.empty else -1)
            self.submitted.append(self.daily_pairs[day])
        return self.daily_pairs[day]

    def daily_both(self, day: dt.date) -> None:
        """Submit the day's daily tasks (both tables when the day is recomputed)."""
        self.daily_of(day)
        if day in self.dirty:
            self.pairs_of(day)

    def ext_day_of(self, day: dt.date) -> Any:
        """The day's combined SPEC §3a states: a task of its own, ahead of the chain."""
        if day not in self.ext_days:
            # first on its worker (priority): the SPEC §3a chain (day states, state, as-of
            # columns) is the longest path of a big day (issue #26), the day's other
            # aggregates run beside it on the other worker
            self.ext_days[day] = self._submit("extday", day, _ext_day_task, self.store,
                                              self.ext, day, day in self.dirty,
                                              worker=self._worker(day, 1), priority=1)
            # not kept in ``submitted``: every one is an input of a chain task, which raises
            # its error, and the table is released once the days that read it are done
            if day in self.dirty:
                self.ext_built.add(day)
        return self.ext_days[day]

    def _ext_leaving(self, day: dt.date) -> dict[int, Any]:
        """Window -> this run's day states of the day leaving it (a rebuilt day only: the
        others are read back by the chain task)."""
        out = {}
        for w in self.ext.slide_windows():
            gone = day - dt.timedelta(w)
            if gone >= self.first and gone in self.dirty:
                out[w] = self.ext_day_of(gone)
        return out

    def _ext_fronts(self, day: dt.date) -> list[Any]:
        """Submit the front stacks of the blocks ending on ``day`` and return the tokens of
        those the windows ending on ``day`` read (built by this run)."""
        for w in self.ext.stacked():
            if ext_engine.block_ends(day, w):
                start = day - dt.timedelta(w - 1)
                days = {d: self.ext_days[d] for d in _days(start, day)
                        if d in self.ext_days and d in self.ext_built}
                self.ext_suffixes[(w, day)] = self._submit(
                    "extfront", day, _ext_suffix_task, self.store, self.ext, w, day, days)
                self.submitted.append(self.ext_suffixes[(w, day)])
        tokens = []
        for w in self.ext.stacked():
            end = ext_engine.block_end(day - dt.timedelta(w - 1), w)
            if end < day and (w, end) in self.ext_suffixes:
                tokens.append(self.ext_suffixes[(w, end)])
        return tokens

    def state_of(self, day: dt.date) -> Any:
        """The state at ``day``: this run's future, the date of a stored one (checked current
        by the caller; the task reads it), or None before the first event date (empty)."""
        if day < self.first:
            return None
        return self.states.get(day, day)

    def prior_of(self, day: dt.date, worker: str | None) -> Any:
        """The pair window of ``day`` without this run's new pairs of ``day`` (a PairWindow):
        rolled from the window of the day before when this run's pair task of that day stores
        it or it is stored and current, else aggregated from the window's daily partitions."""
        before = day - dt.timedelta(1)
        stored_day = day not in self.dirty
        written = self.pair_tasks.get(before)
        if self.rolls and (written is not None or (
                before.isoformat() in self.pairs_current and pairs_exist(self.store, before))):
            leaving = {}
            for w in sorted({w for _, w in self.specs}):
                gone = day - dt.timedelta(w)
                if gone >= self.first:
                    leaving[w] = self.pairs_of(gone) if gone in self.dirty else gone
            return self._submit("prior", day, _rolled_prior_task, self.store, day, self.specs,
                                written, leaving, stored_day, self.distinct, worker=worker)
        days = [d for d in _days(day - dt.timedelta(self.window - 1), before) if d >= self.first]
        return self._submit("prior", day, _aggregated_prior_task, self.store, day, self.specs,
                            [d for d in days if d not in self.dirty],
                            [self.pairs_of(d) for d in days if d in self.dirty], stored_day,
                            self.distinct, worker=worker)

    def submit_chain(self, chain: list[dt.date], due: dict[dt.date, list[str]]) -> dict[str, int]:
        rows: dict[str, int] = {}
        for i in range(0, len(chain), CHUNK):
            days = chain[i:i + CHUNK]
            for day in days:  # the days' aggregates first: the critical path
                if not self.ext.empty:  # submitted first: a worker starts what it has
                    self.ext_day_of(day)
                self.daily_both(day)
            batch = []
            for day in days:
                batch += self._submit_day(day, due.get(day, []))
            for fut in batch:
                for table, n in fut.result().items():
                    rows[table] = rows.get(table, 0) + n
            self._release(days[-1])
        for day in sorted(self.dirty - set(chain)):  # outside the chain: aggregates only
            self.daily_both(day)
            if not self.ext.empty and day not in self.ext_built:
                self.submitted.append(self._submit("extdaily", day, _ext_daily_task,
                                                   self.store, self.ext, day))
        from distributed import wait

        wait(self.submitted)
        for fut in self.submitted:
            if fut.status == "error":
                fut.result()  # raise the task's error here
        return rows

    def _submit_day(self, day: dt.date, names: list[str]) -> list[Any]:
        home = self._worker(day, 0)  # the day's aggregates, state and customer tables
        side = self._worker(day, 1)  # its pair window and customer x product tables
        pair_names = [t for t in names if t in self.pair_tables]
        cust_names = [t for t in names if t not in self.pair_tables]
        daily = self.daily_of(day)
        fresh = self.pairs_of(day) if day in self.dirty else None
        needs_pairs = bool(pair_names) or (self.distinct and bool(cust_names))
        prior = self.prior_of(day, side) if needs_pairs else None
        lagged = {w: self.state_of(day - dt.timedelta(w)) for w in self.lags}
        state = self._submit("advance", day, _advance_task, self.store, self.plan,
                             self.state_of(day - dt.timedelta(1)), day, daily, worker=home)
        self.states[day] = state
        ext = None
        if not self.ext.empty:
            before = day - dt.timedelta(1)
            ext_prior = None if before < self.first else self.ext_states.get(before, before)
            # the chain first on its worker (priority): every other task can wait for it
            ext_state = self._submit("ext", day, _ext_advance_task, self.store, self.ext,
                                     ext_prior, day, self.ext_day_of(day),
                                     self._ext_leaving(day), worker=home, priority=1)
            self.ext_states[day] = ext_state
            ext = (self.ext, ext_state, self.first, self._ext_fronts(day))
        out = []
        distinct = None
        if self.distinct and cust_names:
            # Per customer, on the pair window's worker, ahead of the pair tables there (else
            # the idle first worker may take it over and fetch the day's rows): the customer
            # tables' worker receives these counts, not the window nor the rows.
            # With SPEC §3a features the day's merge holds that worker first, so the day's
            # rows are often computed on the other one: then the counts go where the rows
            # are (the scheduler's choice), not the rows to the busy worker.
            distinct = self._submit("distinct", day, _distinct_task, prior, fresh,
                                    self.distinct, priority=1,
                                    worker=side if self.ext.empty else None)
        if pair_names or (needs_pairs and self.rolls):  # the window is stored when it rolls
            deltas = self._deltas_at(day, pair_names)
            # a delta's candidates are the published customer rows of D and the days before
            # (written by the customer rows' tasks on the other worker, which the state of D
            # follows): wait for that state, receiving a token, not the state
            published = self._submit("ready", day, _ready, state, worker=home) \
                if deltas else None
            pairs = self._submit("pairs", day, _pair_tables_task, self.store, self.repo, day,
                                 pair_names, self.specs, prior, fresh, self.rolls, deltas,
                                 published, worker=side)
            out.append(pairs)
            if self.rolls:
                self.pair_tasks[day] = pairs
                self.pairs_kept.append(day)
        out.append(self._submit("asof", day, _customer_tables_task, self.store, self.repo,
                                self.plan, day, cust_names, state, lagged, distinct, None,
                                ext, self._deltas_at(day, cust_names), worker=home))
        return out

    def _deltas_at(self, day: dt.date, names: list[str]) -> dict[str, list[int]]:
        """Table -> windows, of the tables whose online delta is written at ``day``."""
        return {t: w for t, (d, w) in self.deltas.items() if d == day and t in names}

    def _release(self, day: dt.date) -> None:
        """Drop the futures no as-of date after ``day`` reaches back to."""
        for d in [d for d in self.states if d < day - dt.timedelta(max(self.lags, default=1))]:
            del self.states[d]
        for d in [d for d in self.ext_states if d < day]:
            del self.ext_states[d]
        reach = max([*self.ext.slide_windows(), self.ext.max_tile_window(), 1])
        for d in [d for d in self.ext_days if d <= day - dt.timedelta(reach)]:
            del self.ext_days[d]
        for wd in [wd for wd in self.ext_suffixes if wd[1] <= day - dt.timedelta(wd[0])]:
            del self.ext_suffixes[wd]
        for d in [d for d in self.daily if d <= day - dt.timedelta(self.window)]:
            del self.daily[d]
        for d in [d for d in self.daily_pairs if d <= day - dt.timedelta(self.window)]:
            del self.daily_pairs[d]
        for d in [d for d in self.pair_tasks if d < day]:
            del self.pair_tasks[d]
