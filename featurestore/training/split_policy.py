"""Split policies of the XGBoost export: where validation comes from (pure; no I/O).

Both policies keep the *test* split identical: the final time-ordered complete-label dates that
the ``time`` policy picks (``split_dates``), so their PR-AUC figures compare on the same rows.

* ``time`` - train | purge | validation | purge | test, by as-of date; each purge is capped so
  training keeps at least ``MIN_TRAIN_FRACTION`` of the dates.
* ``grouped`` - a customer-grouped holdout: the training period is every date before
  ``purge | test``; the customers of a fixed share (``holdout_fraction``, by a stable hash of
  the id) are validation on those dates, all others are training, so no customer is in both
  and validation needs no second purge. The one purge (before test) is capped the same way.
* ``auto`` - ``grouped`` when the ``time`` policy had to cap its purge (a short history),
  else ``time``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from typing import Any

from .._exceptions import ConfigError, TrainingError

#: Days of the label window after an as-of date (``purchased_next_30d``); defined here, the
#: light module the API imports, and re-exported by :mod:`.pointintime`.
HORIZON_DAYS = 30

__all__ = ["POLICIES", "DEFAULT_SPLIT_POLICY", "grouped_dates", "holdout_customers",
           "holdout_fraction", "resolve_policy"]

POLICIES = ("time", "grouped", "auto")

#: Chosen by ``benchmarks/split_policy.py`` (PR-AUC on the final time-ordered test dates,
#: docs/retraining.md "Split policy"); recorded per export in ``metadata.split_policy``.
DEFAULT_SPLIT_POLICY = "auto"


def holdout_fraction(split: tuple[float, float, float]) -> float:
    """The share of customers the grouped policy holds out: validation's share of the
    dates before test (0.15 / 0.85 with the default 70/15/15)."""
    return float(split[1]) / float(split[0] + split[1])


def resolve_policy(policy: str, gap_capped: bool) -> str:
    """The policy an export uses: ``auto`` becomes ``grouped`` for a short history (the time
    policy's purge was capped), else ``time``.

    Raises:
        ConfigError: an unknown policy name.
    """
    if policy not in POLICIES:
        raise ConfigError(f"split policy {policy!r}: use one of {', '.join(POLICIES)}")
    if policy == "auto":
        return "grouped" if gap_capped else "time"
    return policy


def grouped_dates(dates: list[Any], n_test: int, gap_days: int, min_train_fraction: float
                  ) -> tuple[list[Any], list[Any], int]:
    """The grouped policy's dates: (training period, test dates, purge used).

    Args:
        dates: the sorted complete-label as-of dates.
        n_test: how many final dates are test (the time policy's count).
        gap_days: the purge wanted before test (the label horizon).
        min_train_fraction: the share of the dates the training period keeps at least.

    Returns:
        The training period (validation customers included), the test dates and the purge:
        the largest up to ``gap_days`` leaving the period ``min_train_fraction`` of the dates.
    """
    n = len(dates)
    if n_test < 1 or n - n_test < 1:
        raise TrainingError(f"{n} as-of date(s) cannot hold {n_test} test date(s) and a "
                            "training period: ingest more days")
    floor = max(1, math.ceil(min_train_fraction * n))
    gap = max(0, min(gap_days, n - n_test - 1))
    while gap > 0 and n - n_test - gap < floor:
        gap -= 1
    return list(dates[:n - n_test - gap]), list(dates[n - n_test:]), gap


def _key(customer_id: Any) -> int:
    return int.from_bytes(hashlib.sha1(str(customer_id).encode()).digest()[:8], "big")


def holdout_customers(customer_ids: Iterable[Any], fraction: float) -> set[str]:
    """The validation customers of the grouped policy: the ``ceil(fraction * n)`` ids with the
    smallest SHA-1 (a stable choice: the same customer is held out in every export), at least
    one and never all.

    Raises:
        TrainingError: fewer than two customers (no group can be held out).
    """
    ids = sorted({str(c) for c in customer_ids})
    if len(ids) < 2:
        raise TrainingError(f"{len(ids)} customer(s) in the training period: a customer-grouped "
                            "holdout needs at least 2; use --split-policy time")
    k = min(len(ids) - 1, max(1, math.ceil(fraction * len(ids))))
    import numpy as np  # here: the CLI reads this module's constants at start-up

    keys = np.array([_key(c) for c in ids], dtype=np.uint64)
    return {ids[i] for i in np.argsort(keys, kind="stable")[:k]}
