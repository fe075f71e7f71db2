"""Partial daily aggregates: each ingested file's share of the daily aggregates of a date.

An ingest task has every hit of its file in memory; it also computes, per event date D the
file touches, the daily frames :func:`.daily.aggregate_events` makes from those hits alone and
publishes them beside the file's events part:

* ``_partials/customer/event_date=D/part-<file id>-<fp>.arrow``
* ``_partials/customer_product/event_date=D/part-<file id>-<fp>.arrow``

(Arrow IPC: read back only by us). ``<fp>`` is the daily plan's fingerprint and
:data:`PARTIALS_FORMAT`: partials answer only for the definitions they were built for. They
are written before the file's ledger record, with deterministic names, so they follow the
file's commit exactly as its events do: a crashed file is redone and overwrites them, a
replaced file's old ones are removed with its old events (:func:`remove_partials`).

Every daily column is a sum over hits (or over a hit's products), so the daily frames of D are
the per-key sums of the partials of every file with events on D (:func:`combine_partials`):
materialization reads a few small files instead of the day's events. When some events part of
D has no partial for the current definitions (a file ingested before partials existed, or a
repository changed since), the caller falls back to reading the events.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa

from .. import layout
from ..events_compaction import live_file_ids
from ..layout import PARTIAL_CUSTOMER, PARTIAL_CUSTOMER_PRODUCT
from ..storage import Store
from ._io import read_ipc, write_ipc
from .daily import DailyPlan, HitShare, _to_pandas, aggregate_tables, sum_by
from .definitions import FeatureRepo, load_feature_repo, parse_feature_repo

__all__ = ["PARTIALS_FORMAT", "combine_partial", "combine_partials", "partial_ids",
           "partial_rows", "partials_fingerprint", "remove_partials", "repo_for_ingest",
           "write_partials"]

#: Bumped when what a partial holds changes, so older ones are ignored rather than misread.
PARTIALS_FORMAT = 1
_KINDS = (PARTIAL_CUSTOMER, PARTIAL_CUSTOMER_PRODUCT)


def partials_fingerprint(plan: DailyPlan) -> str:
    """What a partial is built for: the daily plan and the partials format.

    Args:
        plan: the daily plan.

    Returns:
        A short token without ``-`` (it ends the file name).
    """
    return f"{plan.fingerprint}v{PARTIALS_FORMAT}"


def _folder(day: dt.date | str) -> str:
    return f"event_date={day if isinstance(day, str) else day.isoformat()}"


def write_partials(store: Store, plan: DailyPlan, day: dt.date, file_id: str,
                   events: pd.DataFrame | pa.Table, share: HitShare | None = None) -> None:
    """Publish one file's partial daily aggregates of ``day``, even when empty (so the file
    is known to contribute nothing rather than to lack a partial).

    Args:
        store: the store.
        plan: the daily plan of the store's repository.
        day: the event date of every row of ``events``.
        file_id: the raw file's id.
        events: the file's hits of ``day`` (event columns, pandas or Arrow; anonymous rows
            are left out).
        share: what the file's SPEC §3a partials computed from the same hits
            (:class:`.daily.HitShare`), or None.
    """
    name = layout.partial_name(file_id, partials_fingerprint(plan))
    # Arrow all the way (no pandas round trip), keys in first-seen order (combine_partials
    # sorts); ids as large_string, the type these files have always had
    tables = aggregate_tables(events, plan, sort=False, share=share)
    for kind, table in zip(_KINDS, tables, strict=True):
        table = pa.table([c.cast(pa.large_string()) if pa.types.is_string(c.type) else c
                          for c in table.columns], names=table.column_names)
        write_ipc(store, table, kind, _folder(day), name)


def remove_partials(store: Store, day: dt.date | str, file_id: str) -> None:
    """Remove every partial of ``file_id`` on ``day`` (whatever definitions it was built for).

    Args:
        store: the store.
        day: the event date.
        file_id: the raw file's id.
    """
    prefix = f"part-{file_id}-"
    for kind in (*_KINDS, layout.EXT_PARTIALS):  # the SPEC §3a partial states too
        for name in store.listdir(kind, _folder(day)):
            rest = name[len(prefix):-len(".arrow")] if name.startswith(prefix) else "-"
            if name.endswith(".arrow") and "-" not in rest:  # not another id's (a-b vs a-b-c)
                store.remove(kind, _folder(day), name)


def _file_ids(names: list[str], prefix: str, suffix: str) -> set[str]:
    return {n[len(prefix):-len(suffix)] for n in names
            if n.startswith(prefix) and n.endswith(suffix) and len(n) > len(prefix + suffix)}


def combine_partials(store: Store, plan: DailyPlan, day: dt.date
                     ) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The daily frames of ``day`` from its partials, or None when they do not cover it.

    They cover it when every file whose rows ``day``'s live events hold (a merged file's
    inputs, :func:`featurestore.events_compaction.live_events`) has both partials built for
    ``plan``; a partial without events (left by a replaced file) is not used.

    Args:
        store: the store.
        plan: the daily plan.
        day: the event date.

    Returns:
        (customer frame, customer x product frame) as :func:`.daily.compute_daily` gives
        them (int sums exact; float sums may differ from it in the last bits, the order of
        addition being per file), or None.
    """
    ids = partial_ids(store, plan, day)
    if ids is None:
        return None
    return (_to_pandas(combine_partial(store, plan, day, PARTIAL_CUSTOMER, ids)),
            _to_pandas(combine_partial(store, plan, day, PARTIAL_CUSTOMER_PRODUCT, ids)))


def partial_ids(store: Store, plan: DailyPlan, day: dt.date) -> list[str] | None:
    """The file ids whose partials make up ``day``'s daily aggregates, or None when the
    partials do not cover it (see :func:`combine_partials`; both kinds are checked, so the
    two daily tables always come from the same source).

    Args:
        store: the store.
        plan: the daily plan.
        day: the event date.

    Returns:
        The file ids, sorted (the float sums add up in the same order on every run), or None.
    """
    # the file ids behind the live events files: a merged file stands for its inputs
    events = live_file_ids(store, day)
    if not events:
        return None
    suffix = f"-{partials_fingerprint(plan)}.arrow"
    for kind in _KINDS:
        if not events <= _file_ids(store.listdir(kind, _folder(day)), "part-", suffix):
            return None
    return sorted(events)


def combine_partial(store: Store, plan: DailyPlan, day: dt.date, kind: str,
                    ids: list[str]) -> pa.Table:
    """One daily table of ``day`` (Arrow, sorted by key) from the partials of ``ids``.

    Args:
        store: the store.
        plan: the daily plan.
        day: the event date.
        kind: ``PARTIAL_CUSTOMER`` or ``PARTIAL_CUSTOMER_PRODUCT``.
        ids: the file ids (:func:`partial_ids`).

    Returns:
        Per key, the sums of every partial (added in ``ids`` order).
    """
    suffix = f"-{partials_fingerprint(plan)}.arrow"
    keys = ["customer_id"] if kind == PARTIAL_CUSTOMER else ["customer_id", "product_id"]
    tables = [read_ipc(store, kind, _folder(day), f"part-{fid}{suffix}") for fid in ids]
    return sum_by(pa.concat_tables(tables), keys)


def partial_rows(store: Store, plan: DailyPlan, day: dt.date, ids: list[str]) -> int:
    """How many customer rows the customer partials of ``ids`` hold (0: no counted hit that
    day), from the files' metadata (memory-mapped: no column is read).

    Args:
        store: the store.
        plan: the daily plan.
        day: the event date.
        ids: the file ids (:func:`partial_ids`).

    Returns:
        The row count.
    """
    suffix = f"-{partials_fingerprint(plan)}.arrow"
    return sum(read_ipc(store, PARTIAL_CUSTOMER, _folder(day), f"part-{fid}{suffix}").num_rows
               for fid in ids)


def repo_for_ingest(store: Store, configured: str | None) -> FeatureRepo | None:
    """The repository whose daily columns an ingest's partials hold: the one recorded in the
    store by ``apply``, else the configured one, else the built-in one (as
    :func:`featurestore.repository.resolve_repo` chooses; read here because ingestion sits
    below that module). None when it cannot be read: then no partials are written and
    materialization reads events, as before (the command reports the repository's error
    where it is used).

    Args:
        store: the store.
        configured: the ``feature_repo`` setting (a YAML path), or None.

    Returns:
        The repository, or None.
    """
    try:
        try:
            record = store.read_json(layout.REPO_RECORD)
        except FileNotFoundError:
            return load_feature_repo(configured)
        path = layout.repo_yaml(record["fingerprint"])
        return parse_feature_repo(store.fs.cat_file(store.path(path)).decode(), path)
    except Exception:  # noqa: BLE001 - an optimisation only: never fail an ingest over it
        return None
