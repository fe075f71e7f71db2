"""Whether a store holds enough history to retrain a model, and if not how much more it needs.

``run-daily`` retrains on a weekday whatever the store holds; a young store (a new deployment,
the compose demo's three days) cannot train the purchase model yet: its time split needs three
as-of dates whose 30-day label window is complete. That is a skip with a date in sight ("need
N more days of history"), not a failed run (issue #31). A retrain that runs and fails still
fails the run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from ..storage import Store
from .models import ModelSpec

__all__ = ["MIN_SPLIT_DATES", "HistoryShortfall", "days_short", "history_shortfall"]

#: A time split (train, validation, test) needs at least this many complete-label as-of dates.
MIN_SPLIT_DATES = 3


@dataclass(frozen=True)
class HistoryShortfall:
    """Why a due retrain cannot run yet.

    Attributes:
        need_days: more days of data before it can (None: not a matter of days).
        reason: one line for the report, e.g. ``need 30 more days of history``.
    """

    need_days: int | None
    reason: str


def days_short(as_of_dates: Sequence[dt.date], latest: dt.date | None, horizon_days: int,
               min_dates: int = MIN_SPLIT_DATES) -> int:
    """How many more days of data until ``min_dates`` as-of dates have a complete label window.

    An as-of date D is complete once the data reaches D + ``horizon_days``. Days not yet
    materialized are assumed to come one as-of date a day, as run-daily makes them.

    Args:
        as_of_dates: the materialized as-of dates.
        latest: the latest date the store has data through (None: no data yet).
        horizon_days: the label window.
        min_dates: complete dates needed.

    Returns:
        0 when there are enough, else the number of days more.
    """
    dates = sorted(set(as_of_dates))
    if latest is None:
        return horizon_days + min_dates
    if len(dates) >= min_dates:
        needed = dates[min_dates - 1]
    else:
        needed = max([latest, *dates]) + dt.timedelta(days=min_dates - len(dates))
    return max(0, (needed + dt.timedelta(days=horizon_days) - latest).days)


def history_shortfall(store: Store, spec: ModelSpec) -> HistoryShortfall | None:
    """What keeps ``spec`` from training on ``store`` now, or None when it can.

    Args:
        store: the offline store.
        spec: the model.

    Returns:
        The shortfall, or None.
    """
    if spec.export == "export_xgboost":
        from ..training.pointintime import HORIZON_DAYS, feature_dates, latest_data_date

        need = days_short(feature_dates(store), latest_data_date(store), HORIZON_DAYS)
        return HistoryShortfall(need, f"need {need} more days of history") if need else None
    if spec.export == "export_fm" and not store.partitions("transactions", "event_date"):
        return HistoryShortfall(None, "no retail transactions yet: run `featurestore ingest "
                                      "RAW --source retail` first")
    return None
