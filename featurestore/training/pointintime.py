"""Point-in-time training sets: features as they were on each as-of date, label from the future.

For a row (customer_id, as_of D) the features come from ``customer_features/as_of=D`` only
(never a later partition) and the label ``purchased_next_30d`` (SPEC §3) is 1 when the customer
has a purchase hit (``post_event_list`` holds event id ``1`` as a whole comma-separated item)
with event date in D+1 .. D+30, read from ``events/event_date=*`` partitions of those dates
only. Rows whose label window is not complete yet (D+30 after the latest ingested date) are left
out and counted.

Who purchased on an event date comes from the ingest's partial daily aggregates when they cover
the date, else from its events (:mod:`.labels`); every needed event date is read once, into one
:class:`.labels.PurchaseIndex` of sorted (customer, date) keys, and each as-of date's label is
a vectorized as-of lookup in it. In process (no client) the dates run on a thread pool (pyarrow
releases the GIL; a dask graph of 30-90 small tasks cost more than the work). On a cluster: two
tasks per worker thread for runs of event dates, one that builds the index, two per thread for
runs of as-of dates (each reads its feature partitions, labels and writes or returns them).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._exceptions import ConfigError, NotFoundError
from ..layout import is_published
from ..schema import conform, nullable_columns
from ..storage import Store
from . import labels as _labels
from .labels import PURCHASE_PATTERN, PurchaseIndex
from .split_policy import HORIZON_DAYS

__all__ = ["LABEL", "HORIZON_DAYS", "FEATURES_TABLE", "PURCHASE_PATTERN", "TrainingSetResult",
           "build_training_set", "TrainingSetPlan", "plan_training_set", "execute_training_set",
           "commit_training_set", "latest_data_date", "feature_dates", "purchasers_on"]

log = logging.getLogger(__name__)

LABEL = "purchased_next_30d"
FEATURES_TABLE = "customer_features"
KEY_COLUMNS = ("customer_id", "as_of")
_EPOCH = dt.date(1970, 1, 1)


@dataclass
class TrainingSetResult:
    """A training set and what went into it.

    ``frame`` is a pandas frame (no ``output``) or a lazy dask frame over the written parquet.
    """

    frame: Any
    rows: int
    excluded_incomplete_label: int
    positives: int
    missing_features: int = 0
    as_of_dates: list[str] = field(default_factory=list)
    latest_event_date: str | None = None
    output: str | None = None
    #: event dates whose purchasers were read from the ingest's partials / from the events
    label_event_dates: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("frame")
        d["positive_rate"] = self.positives / self.rows if self.rows else None
        return d


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, pd.Timestamp):
        return value.date()
    return dt.date.fromisoformat(str(value)[:10])


def latest_data_date(store: Store) -> dt.date | None:
    """The latest date the store has data through: latest drop in the ingest ledger or latest
    events partition, whichever is later (a drop may end with a day that has no events)."""
    from ..sources.weblog.ingest import ledger_keys

    dates: list[dt.date] = []
    for key in ledger_keys(store):
        try:
            dates.append(dt.date.fromisoformat(key.split("/", 1)[0]))
        except ValueError:
            continue
    dates += [dt.date.fromisoformat(d) for d in store.partitions("events", "event_date")]
    return max(dates) if dates else None


def feature_dates(store: Store, start: dt.date | None = None,
                  end: dt.date | None = None) -> list[dt.date]:
    """As-of dates of ``customer_features`` partitions within [start, end]."""
    dates = [dt.date.fromisoformat(d) for d in store.partitions(FEATURES_TABLE, "as_of")]
    return [d for d in dates if (start is None or d >= start) and (end is None or d <= end)]


def purchasers_on(store: Store, day: dt.date, partials: str | None = None) -> Any:
    """Distinct customer ids (a pyarrow array) with a purchase hit on event date ``day``.

    Empty when the date has no events partition.

    Args:
        store: the offline store.
        day: the event date.
        partials: :func:`.labels.partials_token` of the store's repository: read the ingest's
            partials when they cover ``day`` (None: the events).

    Returns:
        The customer ids (string, unsorted).
    """
    return _purchasers(store, day, partials)[0]


def _purchasers(store: Store, day: dt.date, partials: str | None) -> tuple[Any, str]:
    """:func:`purchasers_on` and what it read ("partials" or "events")."""
    if partials is not None:
        ids = _labels.purchasers_from_partials(store, day, partials)
        if ids is not None:
            return ids, "partials"
    return _labels.purchasers_from_events(store, day), "events"


def _dated_purchasers(store: Store, day: dt.date, partials: str | None
                      ) -> tuple[dt.date, tuple[Any, str]]:
    return day, _purchasers(store, day, partials)


def _index(found: list[tuple[dt.date, tuple[Any, str]]]) -> tuple[PurchaseIndex, dict[str, int]]:
    """The purchase index of every event date read, and how many dates each reader gave."""
    sources: dict[str, int] = {}
    for _, (_, source) in found:
        sources[source] = sources.get(source, 0) + 1
    return _labels.build_index({day: ids for day, (ids, _) in found}), sources


def _feature_files(store: Store, day: dt.date, table: str = FEATURES_TABLE) -> list[str]:
    path = store.path(table, f"as_of={day.isoformat()}")
    try:
        return sorted(f for f in store.fs.ls(path, detail=False) if is_published(f))
    except FileNotFoundError:
        return []


def _read_features_table(store: Store, day: dt.date,
                         name: str = FEATURES_TABLE) -> tuple[Any, list[str]]:
    """The as-of partition of table ``name`` as an Arrow table, and its nullable-int columns
    (pandas ``Int64``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = _feature_files(store, day, name)
    if not files:
        raise NotFoundError(f"no {name} partition as_of={day}: materialize features through "
                            "that date (featurestore backfill)")
    fs = _labels.parquet_filesystem(store)
    tables = [pq.read_table(f, filesystem=fs) for f in files]
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    table = table.drop_columns([c for c in table.column_names if c == "as_of"])
    # pandas metadata names a nullable int's dtype in numpy_type ("Int64"), not pandas_type
    nullable = nullable_columns(table.schema)
    if table.schema.field("customer_id").type != pa.string():
        table = table.set_column(table.schema.get_field_index("customer_id"), "customer_id",
                                 table["customer_id"].cast(pa.string()))
    return table.replace_schema_metadata(None), nullable


def _to_pandas(table: Any, nullable: list[str]) -> pd.DataFrame:
    """Arrow -> pandas with SPEC dtypes: string ids, ``datetime.date`` as_of, nullable ints
    as ``Int64`` on every date (pyarrow alone gives float64 when a date has nulls)."""
    import pyarrow as pa

    df = table.to_pandas(types_mapper={pa.string(): pd.StringDtype(),
                                       pa.large_string(): pd.StringDtype()}.get)
    for name in nullable:
        if name in df:
            df[name] = table.column(name).to_pandas(
                types_mapper={pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype()}.get)
    return df


def _read_features(store: Store, day: dt.date) -> pd.DataFrame:
    table, nullable = _read_features_table(store, day)
    return _to_pandas(table, nullable)


def _sample_indices(n: int, fraction: float, seed: int, day: dt.date) -> np.ndarray:
    # per-date seed: the sample of one date does not depend on which other dates are built
    rng = np.random.default_rng([seed, day.toordinal()])
    return np.sort(rng.choice(n, size=int(round(n * fraction)), replace=False))


def _join_tables(store: Store, day: dt.date, feats: Any, nullable: list[str],
                 joins: tuple[str, ...]) -> tuple[Any, list[str]]:
    """``feats`` with the columns of each customer-keyed table in ``joins`` at the same as-of
    (a left join on customer_id: a customer without a row there gets nulls). A column whose
    name is taken already is named ``<table>__<column>``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for name in joins:
        other, other_nullable = _read_features_table(store, day, name)
        rows = pc.index_in(feats["customer_id"], value_set=other["customer_id"])
        for column in other.column_names:
            if column == "customer_id":
                continue
            label = column if column not in feats.column_names else f"{name}__{column}"
            values = other[column].take(rows)
            feats = feats.append_column(label, values)
            if pa.types.is_integer(values.type) or column in other_nullable:
                nullable.append(label)  # a missing row is a null: stays an integer column
    return feats, nullable


def _as_of_table(store: Store, day: dt.date, index: PurchaseIndex,
                 entity_ids: pd.Series | None, fraction: float, seed: int,
                 joins: tuple[str, ...] = ()) -> tuple[Any, list[str], int]:
    """The training rows of one as-of date as an Arrow table (+ nullable cols, missing count)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    feats, nullable = _read_features_table(store, day)
    if joins:
        feats, nullable = _join_tables(store, day, feats, nullable, joins)
    missing = 0
    if entity_ids is not None:
        # keep entity order (and duplicates): position of each entity id in the partition
        ids = pa.array(entity_ids.astype(object).where(entity_ids.notna(), None), pa.string())
        pos = pc.index_in(ids, value_set=feats["customer_id"])
        pos = pc.drop_null(pos)
        missing = len(ids) - len(pos)
        feats = feats.take(pos)
    elif fraction < 1.0:
        feats = feats.take(pa.array(_sample_indices(feats.num_rows, fraction, seed, day)))
    label = pa.array(index.purchased(feats["customer_id"], day, HORIZON_DAYS))
    as_of = pa.array(np.full(feats.num_rows, (day - _EPOCH).days, dtype=np.int32)
                     ).cast(pa.date32())
    table = feats.add_column(1, "as_of", as_of)
    table = table.append_column(LABEL, label)
    return table, nullable, missing


def _write_part(table: Any, nullable: list[str], out: Store, day: dt.date) -> None:
    import pyarrow.parquet as pq

    table = conform(table, nullable)  # the store's types: Int64 nullable ints in every part
    with out.publishing(f"part-{day.isoformat()}.parquet") as target:
        if out.is_local:  # pyarrow's own file: fsspec's local file costs more than the encoding
            pq.write_table(table, target, compression="snappy")
            return
        with out.fs.open(target, "wb") as f:
            pq.write_table(table, f, compression="snappy")


def _build_day(store: Store, day: dt.date, index: PurchaseIndex,
               entity_ids: pd.Series | None, fraction: float, seed: int,
               out: Store | None, joins: tuple[str, ...] = ()
               ) -> tuple[pd.DataFrame | None, int, int, int]:
    import pyarrow.compute as pc

    table, nullable, missing = _as_of_table(store, day, index, entity_ids, fraction,
                                            seed, joins)
    stats = (table.num_rows, int(pc.sum(table[LABEL]).as_py() or 0), missing)
    if out is not None:
        _write_part(table, nullable, out, day)
        return (None, *stats)
    return (_to_pandas(table, nullable), *stats)


def _count_incomplete(store: Store, day: dt.date, fraction: float) -> int:
    """Rows date-range mode would have produced for ``day`` (parquet footers only)."""
    import pyarrow.parquet as pq

    n = 0
    for path in _feature_files(store, day):
        with store.fs.open(path, "rb") as f:
            n += pq.ParquetFile(f).metadata.num_rows
    return n if fraction >= 1.0 else int(round(n * fraction))


def _map_here(fn: Callable[..., Any], items: list[Any]) -> list[Any]:
    """``fn`` over ``items`` on a thread pool of this process, results in order (pyarrow
    releases the GIL while it reads and computes)."""
    from concurrent.futures import ThreadPoolExecutor

    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(len(items), os.cpu_count() or 1)) as pool:
        return list(pool.map(fn, items))


def _window(day: dt.date) -> list[dt.date]:
    return [day + dt.timedelta(days=k) for k in range(1, HORIZON_DAYS + 1)]


@dataclass(frozen=True)
class TrainingSetPlan:
    """What one training set reads and builds (pure: see :func:`plan_training_set`).

    Attributes:
        latest: the latest date the store has data through (labels end there).
        groups: as-of date -> the entity ids of that date (entity mode) or None (every
            customer, or a sample of them).
        incomplete_days: as-of dates left out because their label window is not complete
            (date-range mode: their rows are counted from parquet footers).
        excluded: entity rows already left out for an incomplete label window.
        fraction: the share of each date's customers taken (1.0: all).
        joins: more customer-keyed tables joined at the same as-of date.
        partials: the fingerprint of the ingest's partials that answer who purchased on a
            date (:func:`.labels.partials_token`); None: the labels read the events.
    """

    latest: dt.date
    groups: Mapping[dt.date, pd.Series | None]
    incomplete_days: tuple[dt.date, ...]
    excluded: int
    fraction: float
    joins: tuple[str, ...]
    partials: str | None = None

    @property
    def event_dates(self) -> list[dt.date]:
        """Every event date whose purchasers a label window reads, each once."""
        return list(dict.fromkeys(e for day in self.groups for e in _window(day)))


def _fraction(sample: str, sample_fraction: float) -> float:
    """The share of each date's customers taken; raises ConfigError for a bad request."""
    if sample not in ("all", "fraction"):
        raise ConfigError(f"sample={sample!r}: use 'all' or 'fraction'")
    fraction = 1.0 if sample == "all" else float(sample_fraction)
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"sample_fraction={sample_fraction}: must be in (0, 1]")
    return fraction


def plan_training_set(latest: dt.date | None, available: Iterable[dt.date],
                      has_table: Callable[[str], bool], *, url: str = "the store",
                      entities: pd.DataFrame | None = None, start: dt.date | None = None,
                      end: dt.date | None = None, sample: str = "all",
                      sample_fraction: float = 1.0, tables: list[str] | None = None,
                      partials: str | None = None) -> TrainingSetPlan:
    """Plan a point-in-time training set from what the store holds, without reading it.

    Args:
        latest: :func:`latest_data_date` of the store (None: no events).
        available: as-of dates of the ``customer_features`` partitions.
        has_table: whether a feature table has partitions (a reader).
        url: the store, for error messages.
        entities, start, end, sample, sample_fraction, tables: as for
            :func:`build_training_set`.
        partials: :func:`.labels.partials_token` of the store's repository (None: labels
            from the events).

    Returns:
        The plan.

    Raises:
        ConfigError: a bad sample, fraction or entity frame.
        NotFoundError: no events, no feature partition where one is needed, or a joined
            table without partitions.
    """
    fraction = _fraction(sample, sample_fraction)
    start = _as_date(start) if start is not None else None
    end = _as_date(end) if end is not None else None
    if latest is None:
        raise NotFoundError(f"store {url} has no events: run `featurestore ingest` first")
    available = list(available)

    groups: dict[dt.date, pd.Series | None]
    excluded = 0
    if entities is not None:
        missing_cols = {"customer_id", "as_of"} - set(entities.columns)
        if missing_cols:
            raise ConfigError(f"entity frame lacks column(s) {sorted(missing_cols)}; "
                              "it needs customer_id and as_of")
        ent = pd.DataFrame({"customer_id": entities["customer_id"].astype("string"),
                            "as_of": [_as_date(v) for v in entities["as_of"]]})
        if start is not None or end is not None:     # optional: restrict the entity dates
            keep = [(start is None or d >= start) and (end is None or d <= end)
                    for d in ent["as_of"]]
            ent = ent[keep]
        present = set(available)
        groups = {}
        for day, part in ent.groupby("as_of", sort=True):
            if day + dt.timedelta(days=HORIZON_DAYS) > latest:
                excluded += len(part)
            elif day not in present:
                raise NotFoundError(
                    f"no {FEATURES_TABLE} partition as_of={day}: materialize features "
                    f"through that date or drop those entity rows")
            else:
                groups[day] = part["customer_id"].reset_index(drop=True)
        incomplete_days: list[dt.date] = []
    else:
        dates = [d for d in available
                 if (start is None or d >= start) and (end is None or d <= end)]
        if not dates:
            raise NotFoundError(f"no {FEATURES_TABLE} partitions between {start} and {end} in "
                                f"{url}: materialize features first")
        groups = {d: None for d in dates if d + dt.timedelta(days=HORIZON_DAYS) <= latest}
        incomplete_days = [d for d in dates if d not in groups]

    joins = tuple(t for t in (tables or []) if t != FEATURES_TABLE)
    missing_tables = [t for t in joins if not has_table(t)]
    if missing_tables:
        raise NotFoundError(f"no feature table {', '.join(missing_tables)} in {url}: "
                            "`featurestore tables` lists the tables; apply and backfill first")
    return TrainingSetPlan(latest, groups, tuple(incomplete_days), excluded, fraction, joins,
                           partials)


def execute_training_set(store: Store, plan: TrainingSetPlan, *, seed: int = 0,
                         client: Any = None, out: Store | None = None
                         ) -> tuple[list[Any], int, dict[str, int]]:
    """Build the planned as-of dates and count the rows left out for an incomplete label.

    Every event date a label window needs is read once (partials or events) into one
    :class:`.labels.PurchaseIndex`; each as-of date then reads its feature partition and
    labels it. With a client: Dask tasks on the cluster (runs of event dates, one task for
    the index, runs of as-of dates; two runs of each per worker thread). Without: a thread
    pool in this process.

    Args:
        store: the offline store.
        plan: the plan.
        seed: the sampling seed.
        client: a Dask client (None: threads here).
        out: where each as-of date's part is published (None: returned as pandas).

    Returns:
        (per as-of date ``(frame or None, rows, positives, missing)``, rows excluded in all,
        event dates read per reader: ``{"partials": n, "events": m}``).
    """
    events = plan.event_dates
    if client is None:
        found = _map_here(lambda e: _dated_purchasers(store, e, plan.partials), events)
        index, sources = _index(found)
        built = _map_here(lambda item: _build_day(store, item[0], index, item[1],
                                                  plan.fraction, seed, out, plan.joins),
                          list(plan.groups.items()))
        counted = _map_here(lambda d: _count_incomplete(store, d, plan.fraction),
                            list(plan.incomplete_days))
        return built, plan.excluded + int(sum(counted)), sources

    import dask

    # A few tasks per thread, each a run of dates: a task costs the scheduler more than
    # reading one date's partials or labelling one as-of date does.
    slots = 2 * max(1, sum(client.nthreads().values()))
    found_tasks = [dask.delayed(_purchasers_of, pure=True)(
        store, chunk, plan.partials, dask_key_name=f"purchasers-{chunk[0].isoformat()}")
        for chunk in _chunks(events, slots)]
    index_task = dask.delayed(_index_of, pure=True)(found_tasks, dask_key_name="purchase-index")
    day_tasks = [
        dask.delayed(_build_days)(store, chunk, index_task, plan.fraction, seed, out,
                                  plan.joins, dask_key_name=f"as-of-{chunk[0][0].isoformat()}")
        for chunk in _chunks(list(plan.groups.items()), slots)
    ]
    count_tasks = [dask.delayed(_count_incomplete)(store, d, plan.fraction)
                   for d in plan.incomplete_days]
    results = client.gather(client.compute([*day_tasks, *count_tasks]))
    built = [r for chunk in results[:len(day_tasks)] for r in chunk[0]]
    sources = results[0][1] if day_tasks else {}
    return built, plan.excluded + int(sum(results[len(day_tasks):])), sources


def _chunks(items: list[Any], n: int) -> list[list[Any]]:
    """``items`` in at most ``n`` contiguous runs of near-equal length (none empty)."""
    size, extra = divmod(len(items), n)
    runs, at = [], 0
    for k in range(min(n, len(items))):
        step = size + (k < extra)
        runs.append(items[at:at + step])
        at += step
    return runs


def _purchasers_of(store: Store, days: list[dt.date], partials: str | None
                   ) -> list[tuple[dt.date, tuple[Any, str]]]:
    return [_dated_purchasers(store, day, partials) for day in days]


def _index_of(chunks: list[list[Any]]) -> tuple[PurchaseIndex, dict[str, int]]:
    return _index([found for chunk in chunks for found in chunk])


def _build_days(store: Store, items: list[tuple[dt.date, pd.Series | None]],
                index: tuple[PurchaseIndex, dict[str, int]], fraction: float, seed: int,
                out: Store | None, joins: tuple[str, ...]
                ) -> tuple[list[Any], dict[str, int]]:
    """:func:`_build_day` of each (as-of date, entity ids), and the index's reader counts."""
    return ([_build_day(store, day, index[0], ids, fraction, seed, out, joins)
             for day, ids in items], index[1])


def commit_training_set(store: Store, plan: TrainingSetPlan, built: list[Any], excluded: int,
                        out: Store | None, sources: Mapping[str, int] | None = None
                        ) -> TrainingSetResult:
    """The result of the built parts; with ``out``, its record ``_training_set.json`` written
    last (the parts before it are published).

    Args:
        store: the offline store.
        plan: the executed plan.
        built: :func:`execute_training_set`'s per-date results.
        excluded: rows left out for an incomplete label window.
        out: the output store, or None.
        sources: event dates read per label reader (:func:`execute_training_set`).

    Returns:
        The :class:`TrainingSetResult`.
    """
    rows = int(sum(r[1] for r in built))
    positives = int(sum(r[2] for r in built))
    missing = int(sum(r[3] for r in built))
    log.info("training set: %d rows, %d positives, %d excluded (label window incomplete)",
             rows, positives, excluded)
    result = TrainingSetResult(
        frame=None, rows=rows, excluded_incomplete_label=excluded, positives=positives,
        missing_features=missing, as_of_dates=[d.isoformat() for d in plan.groups],
        latest_event_date=plan.latest.isoformat(), output=out.url if out else None,
        label_event_dates=dict(sources or {}))
    if out is not None:
        out.write_json(result.to_dict(), "_training_set.json")
        if rows:
            import dask.dataframe as dd

            result.frame = dd.read_parquet(out.uri(), storage_options=out.storage_options or None)
        return result
    frames = [r[0] for r in built if r[0] is not None and len(r[0])]
    result.frame = (pd.concat(frames, ignore_index=True) if frames
                    else _empty_frame(store, plan.groups))
    return result


def build_training_set(
    store: Store,
    *,
    entities: pd.DataFrame | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    sample: str = "all",
    sample_fraction: float = 1.0,
    seed: int = 0,
    client: Any = None,
    output: str | None = None,
    storage_options: dict[str, Any] | None = None,
    tables: list[str] | None = None,
    repo: Any = None,
) -> TrainingSetResult:
    """Build a point-in-time training set: plan (:func:`plan_training_set`), execute
    (:func:`execute_training_set`), commit (:func:`commit_training_set`).

    ``tables``: more customer-keyed feature tables to join, each at the same as-of date as
    the ``customer_features`` row (left join; a taken column name becomes
    ``<table>__<column>``). Any table of the store's repository keyed by ``customer_id``.

    Entity mode: ``entities`` has ``customer_id`` and ``as_of`` columns; each pair becomes a
    row (pairs whose customer has no feature row on that date are dropped and counted in
    ``missing_features``; ``start``/``end``, when given, keep only entity dates in range).
    Date-range mode: every customer of each ``customer_features``
    partition in [start, end], or with ``sample="fraction"`` a random ``sample_fraction`` of
    them per date (seeded, reproducible per date).

    With ``output`` (local path or fsspec URL) the set is written as
    ``<output>/part-<as_of>.parquet`` plus ``<output>/_training_set.json`` and ``frame`` is a
    lazy dask frame over it; otherwise ``frame`` is a pandas frame. Columns: customer_id,
    as_of (``datetime.date``), the feature columns in table order, purchased_next_30d (int64).

    ``repo``: the store's feature repository (:func:`featurestore.repository.resolve_repo`);
    None: the one recorded in the store, else the built-in one (what an ingest without a
    ``feature_repo`` setting builds its partials for). It names the ingest's partials that
    say who purchased on a date; dates they do not cover read the events.
    """
    _fraction(sample, sample_fraction)  # a bad request fails before any read of the store
    if repo is None:
        from ..features.partials import repo_for_ingest

        repo = repo_for_ingest(store, None)
    latest = latest_data_date(store)
    plan = plan_training_set(latest, feature_dates(store) if latest is not None else [],
                             lambda t: bool(store.partitions(t, "as_of")), url=store.url,
                             entities=entities, start=start, end=end, sample=sample,
                             sample_fraction=sample_fraction, tables=tables,
                             partials=_labels.partials_token(repo))
    out = Store(output, storage_options) if output else None
    built, excluded, sources = execute_training_set(store, plan, seed=seed, client=client,
                                                    out=out)
    return commit_training_set(store, plan, built, excluded, out, sources)


def _empty_frame(store: Store, groups: Iterable[dt.date]) -> pd.DataFrame:
    days = list(groups)
    if days:
        cols = list(_read_features(store, days[0]).columns)
    else:
        cols = ["customer_id"]
    frame = pd.DataFrame({c: [] for c in cols})
    frame.insert(1, "as_of", [])
    frame[LABEL] = pd.Series([], dtype="int64")
    return frame
