"""The one planner of due as-of dates, shared by every source (weblog, retail, ...).

A source's materialization keeps a commit record: per table, per as-of date, the fingerprint
of the definition it was built with; and per ingested unit the version it last saw (see
:mod:`featurestore.ledger`). From that record and the ledger this module decides, without any
I/O, which as-of dates of which tables are due:

* an as-of date never built, or built with another definition of its table;
* every as-of date from the earliest event date a new or replaced unit touched on (windows
  and rolling state reach forward);
* with ``force``, every as-of date of the requested range (``featurestore backfill``).

A due date outside the requested range is not written but forgotten (left stale for a later
run), except for a table whose definition changed: that table is rebuilt whole, so it never
holds partitions with different columns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["AsOfPlan", "days_between", "plan_as_of", "requested_range", "touched_dates"]


@dataclasses.dataclass(frozen=True)
class AsOfPlan:
    """Which as-of dates of which tables a materialization writes.

    Attributes:
        due: as-of date -> the tables to (re)write at it, in table order.
        forget: table -> as-of dates (ISO) to drop from the commit record: stale, but outside
            the requested range (a later run rebuilds them).
    """

    due: Mapping[dt.date, tuple[str, ...]]
    forget: Mapping[str, tuple[str, ...]]

    @property
    def days(self) -> list[dt.date]:
        """The due as-of dates, ascending."""
        return sorted(self.due)

    def written(self, table: str) -> list[str]:
        """ISO as-of dates at which ``table`` is written, ascending."""
        return [d.isoformat() for d in self.days if table in self.due[d]]


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every date from ``first`` to ``last``, both included (empty when ``last < first``)."""
    return [first + dt.timedelta(n) for n in range((last - first).days + 1)]


def requested_range(first: dt.date, last: dt.date, start: dt.date | None,
                    end: dt.date | None) -> tuple[dt.date, dt.date]:
    """The as-of range a run may write: ``start``..``end`` clipped to the data's
    ``first``..``last``.

    Args:
        first: the first event date of the source.
        last: the last as-of date the source's data reaches.
        start: the first date asked for (None: ``first``).
        end: the last date asked for (None: ``last``).

    Returns:
        (lo, hi).
    """
    return max(start or first, first), min(end or last, last)


def touched_dates(entries: Mapping[str, tuple[str, Iterable[str]]],
                  seen: Mapping[str, str], noted: Iterable[str] = ()) -> list[str]:
    """Event dates whose data changed since the commit record: those of every unit whose
    version the record has not seen, plus dates noted by replacements.

    Args:
        entries: ledger key -> (the unit's version, every event date it touches, including
            those of a version it replaced).
        seen: ledger key -> the version the commit record saw.
        noted: more changed event dates (a replacement's notes).

    Returns:
        Sorted ISO dates.
    """
    return sorted({d for key, (version, dates) in entries.items() if seen.get(key) != version
                   for d in dates} | set(noted))


def plan_as_of(fingerprints: Mapping[str, str], built: Mapping[str, Mapping[str, str]],
               days: Sequence[dt.date], *, earliest: dt.date | None, lo: dt.date,
               hi: dt.date, force: bool) -> AsOfPlan:
    """The due as-of dates of a source's tables (see the module docstring).

    Args:
        fingerprints: table -> its current definition's fingerprint, in table order.
        built: table -> ISO as-of date -> fingerprint it was built with (commit record).
        days: every as-of date the source's data spans, ascending.
        earliest: the earliest touched event date (None: nothing new).
        lo: first as-of date of the requested range.
        hi: last as-of date of the requested range.
        force: rebuild every as-of date of ``lo``..``hi``.

    Returns:
        The :class:`AsOfPlan`.
    """
    due: dict[dt.date, list[str]] = {}
    forget: dict[str, list[str]] = {}
    for table, fp in fingerprints.items():
        done = built.get(table, {})
        # A table whose definition changed is rebuilt whole, whatever the range asked for:
        # a table never holds partitions with different columns.
        redefined = any(v != fp for v in done.values())
        for day in days:
            iso = day.isoformat()
            stale = (done.get(iso) != fp or (earliest is not None and day >= earliest)
                     or (force and lo <= day <= hi))
            if not stale:
                continue
            if lo <= day <= hi or redefined:
                due.setdefault(day, []).append(table)
            elif iso in done:  # outside the requested range: stale for a later run
                forget.setdefault(table, []).append(iso)
    return AsOfPlan({d: tuple(due[d]) for d in sorted(due)},
                    {t: tuple(v) for t, v in forget.items()})
