"""Partition generations: which version of each ``(table, as_of)`` partition is committed.

One small JSON record, ``_state/generations.json``, so a reader polls it with one read instead
of listing every partition::

    {"commit": 7, "tables": {"customer_features": {"2026-01-03": 7, ...}, ...}}

``commit`` counts the materialization commits that wrote partitions; every partition written
by a commit gets that commit's number as its generation, so generations only grow (per
partition and store-wide). A rewrite always bumps, even when the bytes come out identical (a
reader then reloads the same values once). A partition missing from the record (a store
written before generations existed, or a file written by hand) is generation 0.

Writers call :func:`commit_generations` after the partitions are published and before their own
commit record (``_state/materialize.json``): a reader that sees generation g finds g's files,
and a crash in between only makes the re-run write (and bump) them again.
"""

from __future__ import annotations

import json
from typing import Any

from . import layout
from ._exceptions import StoreError
from .storage import Store

__all__ = ["GENERATIONS", "read_generations", "commit_generations"]

GENERATIONS = layout.GENERATIONS


def _read_record(store: Store) -> dict[str, Any]:
    try:
        record = store.read_json(GENERATIONS)
    except FileNotFoundError:
        return {"commit": 0, "tables": {}}
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(
            f"{store.uri(GENERATIONS)} is not valid JSON ({exc}); delete it (every partition "
            "then counts as generation 0) and re-run featurestore materialize") from None
    if not isinstance(record, dict) or not isinstance(record.get("tables", {}), dict):
        raise StoreError(f"{store.uri(GENERATIONS)} is not a generations record; delete it and "
                         "re-run featurestore materialize")
    record.setdefault("commit", 0)
    record.setdefault("tables", {})
    return record


def read_generations(store: Store) -> dict[str, dict[str, int]]:
    """The committed generation of every recorded partition: one small read.

    Args:
        store: the offline store.

    Returns:
        ``{table: {as_of: generation}}``; empty when the store has no record yet (every
        partition is then generation 0).
    """
    return _read_record(store)["tables"]


def commit_generations(store: Store, written: dict[str, list[str]]) -> int:
    """Give every partition in ``written`` the next commit number as its generation.

    Call it with the store lock held, after the partitions' files are published.

    Args:
        store: the offline store.
        written: ``{table: [as_of, ...]}`` rewritten (or written for the first time) by this
            commit.

    Returns:
        The commit number given to them (the current one, unchanged, when nothing was written).
    """
    record = _read_record(store)
    if not any(written.values()):
        return int(record["commit"])
    commit = int(record["commit"]) + 1
    for table, dates in written.items():
        recorded = record["tables"].setdefault(table, {})
        for as_of in dates:
            recorded[as_of] = commit
    record["commit"] = commit
    store.write_bytes(json.dumps(record, sort_keys=True, separators=(",", ":")).encode(),
                      GENERATIONS)
    return commit
