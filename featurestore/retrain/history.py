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


def history_shortfall(store: Store, spec: ModelSpec, holdout_days: int = 30,
                      validation_days: int = 30) -> HistoryShortfall | None:
    """What keeps ``spec`` from training on ``store`` now, or None when it can.

    A recommender (``export_purchases``, and the FM classifier) is judged on a time holdout:
    its transactions must span the test and validation windows and as long again to fit on
    (:func:`featurestore.recsys.data.min_history_days`).

    Args:
        store: the offline store.
        spec: the model.
        holdout_days: a recommender's test window (setting ``recommendation_holdout_days``).
        validation_days: its validation window.

    Returns:
        The shortfall, or None.
    """
    if spec.export == "export_xgboost":
        from ..training.pointintime import HORIZON_DAYS, feature_dates, latest_data_date

        need = days_short(feature_dates(store), latest_data_date(store), HORIZON_DAYS)
        return HistoryShortfall(need, f"need {need} more days of history") if need else None
    if spec.export in ("export_fm", "export_fm_classifier", "export_purchases"):
        days = sorted(store.partitions("transactions", "event_date"))
        if not days:
            return HistoryShortfall(None, "no retail transactions yet: run `featurestore "
                                          "ingest RAW --source retail` first")
        from ..recsys.data import min_history_days

        span = (dt.date.fromisoformat(str(days[-1])) - dt.date.fromisoformat(str(days[0]))
                ).days + 1
        need = min_history_days(holdout_days, validation_days) - span
        if need > 0 and spec.export != "export_fm":  # the seed's FM regressor: a random split
            return HistoryShortfall(need, f"need {need} more days of history (a "
                                          f"{holdout_days}-day holdout and a {validation_days}"
                                          "-day validation window)")
    return None
