"""Purchases as a recommender sees them, and the windows of the time-holdout protocol.

A *purchase* is one (customer, item, invoice) of the cleaned transactions (SPEC §2), dated by
its invoice day. The learned models and the "buy again" baseline read the number of distinct
invoices per (customer, item) in a window (:meth:`Purchases.counts`): buying 24 of a mug on one
invoice is one purchase decision, buying it on 5 invoices is five.

The protocol (:func:`plan_holdout`): the last ``holdout_days`` of the data are the *test*
window; everything before it is the *fit* window; the last ``validation_days`` of the fit
window are the *validation* window, with the *sub-fit* window before it. Hyperparameters and
the blend weight are chosen on validation (models fitted on sub-fit), the chosen model is
fitted on fit and scored once on test, and the served model is refitted on all of it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._exceptions import TrainingError

__all__ = ["Purchases", "HoldoutPlan", "plan_holdout", "purchases_from_transactions"]


@dataclasses.dataclass(frozen=True)
class Purchases:
    """Distinct (customer, item, invoice) purchases with their day.

    Attributes:
        customers: customer ids, sorted (row order of every matrix).
        items: item ids (stock codes), sorted (column order).
        descriptions: each item's most frequent description ("" when none).
        customer: row index of each purchase.
        item: column index of each purchase.
        day: invoice day of each purchase (``datetime64[D]``).
    """

    customers: np.ndarray
    items: np.ndarray
    descriptions: np.ndarray
    customer: np.ndarray
    item: np.ndarray
    day: np.ndarray

    @property
    def first_day(self) -> dt.date:
        return pd.Timestamp(self.day.min()).date()

    @property
    def last_day(self) -> dt.date:
        return pd.Timestamp(self.day.max()).date()

    def counts(self, start: dt.date | None = None, stop: dt.date | None = None
               ) -> sp.csr_matrix:
        """Invoices per (customer, item) among purchases on days in ``[start, stop)``.

        Args:
            start: first day (None: from the beginning).
            stop: day after the last (None: to the end).

        Returns:
            customers x items CSR of float32 counts (every customer and item keeps its row and
            column, bought in the window or not).
        """
        mask = np.ones(len(self.day), bool)
        if start is not None:
            mask &= self.day >= np.datetime64(start, "D")
        if stop is not None:
            mask &= self.day < np.datetime64(stop, "D")
        m = sp.csr_matrix((np.ones(int(mask.sum()), np.float32),
                           (self.customer[mask], self.item[mask])),
                          shape=(len(self.customers), len(self.items)))
        m.sum_duplicates()
        return m

    def repeat_counts(self, start: dt.date | None, stop: dt.date | None,
                      half_life_days: float | None) -> sp.csr_matrix:
        """Invoices per (customer, item) in ``[start, stop)``, each weighted
        ``0.5 ** (age / half_life_days)`` with its age in days at the window's last day (None:
        unweighted, as :meth:`counts`): the repeat-purchase term's input."""
        if half_life_days is None:
            return self.counts(start, stop)
        mask = np.ones(len(self.day), bool)
        if start is not None:
            mask &= self.day >= np.datetime64(start, "D")
        end = np.datetime64(stop, "D") if stop is not None else self.day.max() + 1
        mask &= self.day < end
        age = (end - 1 - self.day[mask]).astype(np.float64)
        m = sp.csr_matrix((0.5 ** (age / half_life_days), (self.customer[mask],
                                                           self.item[mask])),
                          shape=(len(self.customers), len(self.items)))
        m.sum_duplicates()
        return m


def purchases_from_transactions(tx: pd.DataFrame) -> Purchases:
    """Purchases from cleaned transaction lines.

    Args:
        tx: rows with ``customer_id``, ``stock_code``, ``invoice_no``, ``invoice_date`` and
            ``description`` (the ``transactions`` table's columns).

    Returns:
        The purchases (one per distinct customer, item and invoice).

    Raises:
        TrainingError: no transactions.
    """
    if tx.empty:
        raise TrainingError("no retail transactions to train a recommender on: run "
                            "`featurestore ingest RAW --source retail` first")
    tx = tx.astype({"customer_id": str, "stock_code": str, "invoice_no": str})
    day = pd.to_datetime(tx["invoice_date"]).dt.tz_localize(None).dt.floor("D")
    lines = pd.DataFrame({"c": tx["customer_id"].to_numpy(), "i": tx["stock_code"].to_numpy(),
                          "inv": tx["invoice_no"].to_numpy(), "day": day.to_numpy()})
    lines = lines.drop_duplicates(["c", "i", "inv"])
    desc = (tx.dropna(subset=["description"])
            .groupby(["stock_code", "description"]).size().rename("n").reset_index()
            .sort_values(["stock_code", "n", "description"], ascending=[True, False, True])
            .drop_duplicates("stock_code").set_index("stock_code")["description"])
    customers = np.sort(lines["c"].unique()).astype(str)
    items = np.sort(lines["i"].unique()).astype(str)
    return Purchases(
        customers=customers, items=items,
        descriptions=pd.Series(items).map(desc).fillna("").astype(str).to_numpy(),
        customer=np.searchsorted(customers, lines["c"].to_numpy()).astype(np.int64),
        item=np.searchsorted(items, lines["i"].to_numpy()).astype(np.int64),
        day=lines["day"].to_numpy().astype("datetime64[D]"))


@dataclasses.dataclass(frozen=True)
class HoldoutPlan:
    """The windows of one evaluation (pure; see the module docstring).

    Attributes:
        first_day: first day of the data.
        last_day: last day of the data.
        test_start: first day of the test window (it runs to ``last_day``).
        validation_start: first day of the validation window (it runs to ``test_start``).
        holdout_days: length of the test window.
        validation_days: length of the validation window.
    """

    first_day: dt.date
    last_day: dt.date
    test_start: dt.date
    validation_start: dt.date
    holdout_days: int
    validation_days: int

    def as_dict(self) -> dict[str, object]:
        return {"first_day": self.first_day.isoformat(), "last_day": self.last_day.isoformat(),
                "test": [self.test_start.isoformat(), self.last_day.isoformat()],
                "validation": [self.validation_start.isoformat(),
                               (self.test_start - dt.timedelta(days=1)).isoformat()],
                "holdout_days": self.holdout_days, "validation_days": self.validation_days}


def min_history_days(holdout_days: int, validation_days: int) -> int:
    """Days of data a holdout needs: the test and validation windows and as long again to fit
    on before them (at least one day)."""
    return holdout_days + validation_days + max(1, validation_days)


def plan_holdout(first_day: dt.date, last_day: dt.date, holdout_days: int = 30,
                 validation_days: int = 30) -> HoldoutPlan:
    """The windows for data from ``first_day`` to ``last_day`` (both included).

    Args:
        first_day: first day of the data.
        last_day: last day of the data.
        holdout_days: the test window, the last days of the data.
        validation_days: the validation window, the days before the test window.

    Returns:
        The plan.

    Raises:
        TrainingError: the data spans too few days for the windows and a fit before them.
    """
    if holdout_days < 1 or validation_days < 1:
        raise TrainingError("holdout_days and validation_days must be at least 1")
    span = (last_day - first_day).days + 1
    need = min_history_days(holdout_days, validation_days)
    if span < need:
        raise TrainingError(
            f"the transactions span {span} days ({first_day}..{last_day}); a {holdout_days}-day "
            f"test window and a {validation_days}-day validation window need at least {need}")
    test_start = last_day - dt.timedelta(days=holdout_days - 1)
    return HoldoutPlan(first_day, last_day, test_start,
                       test_start - dt.timedelta(days=validation_days), holdout_days,
                       validation_days)
