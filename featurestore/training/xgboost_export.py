"""XGBoost export: train/validation/test CSVs split by as-of date, as SageMaker XGBoost reads them.

Layout under ``out_url`` (local path or s3://...):

* ``train/train.csv``, ``validation/validation.csv``, ``test/test.csv``: the label first, then
  the numeric feature columns, no header, no index. A null feature is an empty field, which
  SageMaker's built-in XGBoost (``content_type=text/csv``) reads as a missing value.
* ``metadata.json``: format, feature_names (CSV order after the label), label, rows,
  positive_rate, scale_pos_weight (negatives / positives of train), as_of ranges per split,
  excluded_incomplete_label, gap_days.

The split is by as-of date: the complete-label dates, oldest first, are cut into train,
validation and test (``split`` fractions of the dates), so no as-of date is in two splits and
later splits are later in time. Between splits ``gap_days`` as-of dates are purged (default the
30-day label horizon): a train row's label window D+1..D+30 then ends before the first
validation as-of date, so nothing the model learns from comes from the evaluation period. The
split policy caps that purge: training always keeps at least ``MIN_TRAIN_FRACTION`` (60%) of the
complete-label dates, so the largest gap that allows it (and leaves every split a date) is used
and recorded in metadata.json (``gap_days``, ``split_policy``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._exceptions import TrainingError
from ..storage import Store
from .pointintime import HORIZON_DAYS, KEY_COLUMNS, LABEL, build_training_set
from .split_policy import (DEFAULT_SPLIT_POLICY, grouped_dates, holdout_customers,
                           holdout_fraction, resolve_policy)

__all__ = ["ExportResult", "export_xgboost", "split_dates", "feature_columns"]

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


@dataclass
class ExportResult:
    """Where an export was written and its metadata.json content."""

    out_url: str
    metadata: dict[str, Any]
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"out": self.out_url, "files": self.files, "metadata": self.metadata}


#: The split policy: training keeps at least this share of the complete-label dates; the
#: purge between splits is capped to allow it (recorded in metadata.json, ``split_policy``).
MIN_TRAIN_FRACTION = 0.6


def _sizes(n: int, split: tuple[float, float, float], gap: int) -> tuple[int, int, int]:
    """(train, validation, test) date counts for ``n`` dates with ``gap`` purged twice."""
    usable = n - 2 * gap
    total = float(sum(split))
    n_val = max(1, int(round(usable * split[1] / total)))
    n_test = max(1, int(round(usable * split[2] / total)))
    n_train = usable - n_val - n_test
    while n_train < 1:  # tiny ranges: take back from the larger of val/test
        if n_val >= n_test and n_val > 1:
            n_val -= 1
        else:
            n_test -= 1
        n_train = usable - n_val - n_test
    return n_train, n_val, n_test


def split_dates(dates: list[dt.date], split: tuple[float, float, float],
                gap_days: int, min_train_fraction: float = MIN_TRAIN_FRACTION
                ) -> tuple[dict[str, list[dt.date]], int]:
    """Cut sorted as-of dates into train/validation/test with ``gap`` purged dates between.

    The purge is the largest gap up to ``gap_days`` that leaves every split a date and
    training at least ``min_train_fraction`` of the dates (the split policy; 0 turns the
    training floor off).

    Args:
        dates: the complete-label as-of dates.
        split: fractions of the (unpurged) dates for train, validation, test.
        gap_days: the purge wanted between splits (the label horizon).
        min_train_fraction: the share of the dates training keeps at least.

    Returns:
        The split and the gap actually used.
    """
    dates = sorted(set(dates))
    n = len(dates)
    if n < 3:
        raise TrainingError(
            f"only {n} as-of date(s) with a complete {HORIZON_DAYS}-day label window; a time "
            "split needs at least 3: widen --from/--to or ingest more days")
    if len(split) != 3 or min(split) <= 0:
        raise TrainingError(f"split={split}: give three positive fractions (train, val, test)")
    gap = max(0, min(gap_days, (n - 3) // 2))
    floor = int(np.ceil(min_train_fraction * n))
    while gap > 0 and _sizes(n, split, gap)[0] < floor:  # cap the purge, not the training
        gap -= 1
    n_train, n_val, _ = _sizes(n, split, gap)
    train = dates[:n_train]
    val = dates[n_train + gap:n_train + gap + n_val]
    test = dates[n_train + 2 * gap + n_val:]
    return {"train": train, "validation": val, "test": test}, gap


def flatten_lists(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every list column (SPEC §3a ``top_k``) as ``name_1 .. name_k`` columns,
    k the longest list, shorter lists padded with nulls (CSV has no lists).

    Args:
        frame: a training set.

    Returns:
        The frame (the same object when it has no list column).
    """
    lists = [c for c in frame.columns if frame[c].dtype == object and len(frame)
             and isinstance(frame[c].dropna().iloc[0] if frame[c].notna().any() else None,
                            (list, np.ndarray))]
    if not lists:
        return frame
    out = {}
    for c in frame.columns:
        if c not in lists:
            out[c] = frame[c]
            continue
        values = [list(v) if v is not None else [] for v in frame[c]]
        k = max((len(v) for v in values), default=0)
        for i in range(k):
            out[f"{c}_{i + 1}"] = pd.array([v[i] if i < len(v) else None for v in values],
                                           dtype="string")
    return pd.DataFrame(out, index=frame.index)


def feature_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(numeric feature columns in frame order, non-numeric columns left out of the CSV)."""
    feats, dropped = [], []
    for c in frame.columns:
        if c in KEY_COLUMNS or c == LABEL:
            continue
        dtype = frame[c].dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            feats.append(c)
        else:
            dropped.append(c)
    return feats, dropped


def _csv_bytes(part: pd.DataFrame, feats: list[str]) -> bytes:
    cols = part[[LABEL, *feats]].copy()
    for c in feats:
        if pd.api.types.is_bool_dtype(cols[c].dtype):
            cols[c] = cols[c].astype("Int64")
    return cols.to_csv(header=False, index=False, na_rep="", lineterminator="\n").encode()


def export_xgboost(
    store: Store,
    out_url: str,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    split: tuple[float, float, float] = (0.7, 0.15, 0.15),
    gap_days: int = HORIZON_DAYS,
    storage_options: dict[str, Any] | None = None,
    client: Any = None,
    tables: list[str] | None = None,
    split_policy: str = DEFAULT_SPLIT_POLICY,
    repo: Any = None,
) -> ExportResult:
    """Build the point-in-time training set for [start, end] and write the XGBoost layout.

    ``tables``: more customer-keyed feature tables joined in (see ``build_training_set``).
    ``split_policy``: ``time``, ``grouped`` or ``auto`` (:mod:`.split_policy`); the policy used
    is recorded in ``metadata.split_policy.policy``. ``repo``: as for ``build_training_set``.
    """
    resolve_policy(split_policy, False)  # an unknown name fails before the build
    ts = build_training_set(store, start=start, end=end, client=client, tables=tables,
                            repo=repo)
    frame: pd.DataFrame = flatten_lists(ts.frame)
    dates = sorted(set(frame["as_of"])) if len(frame) else []
    parts, gap = split_dates(dates, split, gap_days)
    policy = resolve_policy(split_policy, gap < gap_days)
    selections, policy_meta = _selections(frame, dates, parts, gap, policy, split, gap_days)
    gap = policy_meta["gap_days"]
    spans = policy_meta.pop("dates")
    if gap < gap_days:
        log.warning("%d complete as-of dates: purge gap capped from %d to %d so training keeps "
                    ">= %.0f%% of them (split policy %s)", len(dates), gap_days, gap,
                    100 * MIN_TRAIN_FRACTION, policy)
    feats, dropped = feature_columns(frame)
    out = Store(out_url, storage_options)
    meta: dict[str, Any] = {
        "format": "xgboost-csv",
        "feature_names": feats,
        "label": LABEL,
        "rows": {},
        "positive_rate": {},
        "scale_pos_weight": None,
        "as_of": {},
        "excluded_incomplete_label": ts.excluded_incomplete_label,
        "gap_days": gap,
        "gap_days_requested": gap_days,
        "split_policy": {"split": list(split), "min_train_fraction": MIN_TRAIN_FRACTION,
                         "complete_label_dates": len(dates), "gap_capped": gap < gap_days,
                         "requested": split_policy, **policy_meta},
        "dropped_columns": dropped,
        "purged_rows": int(len(frame) - sum(int(m.sum()) for m in selections.values())),
        "missing_value": "empty field",
    }
    files = []
    for name in SPLITS:
        part = frame[selections[name]]
        n = len(part)
        pos = int(part[LABEL].sum())
        meta["rows"][name] = n
        meta["positive_rate"][name] = pos / n if n else None
        span = spans[name]
        meta["as_of"][name] = [span[0].isoformat(), span[-1].isoformat()]
        if name == "train":
            meta["scale_pos_weight"] = (n - pos) / pos if pos else None
        out.write_bytes(_csv_bytes(part, feats), name, f"{name}.csv")
        files.append(out.uri(name, f"{name}.csv"))
    out.write_json(meta, "metadata.json")
    files.append(out.uri("metadata.json"))
    return ExportResult(out_url=out.url, metadata=meta, files=files)


def _selections(frame: pd.DataFrame, dates: list[dt.date], parts: dict[str, list[dt.date]],
                gap: int, policy: str, split: tuple[float, float, float], gap_days: int
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rows of each split under ``policy`` and what metadata.json records about it."""
    if policy == "time":
        masks = {name: frame["as_of"].isin(parts[name]) for name in SPLITS}
        return masks, {"name": "time-ordered, purge capped", "policy": "time", "gap_days": gap,
                       "train_fraction": len(parts["train"]) / len(dates),
                       "dates": dict(parts)}
    period, test, gap = grouped_dates(dates, len(parts["test"]), gap_days, MIN_TRAIN_FRACTION)
    in_period = frame["as_of"].isin(period)
    fraction = holdout_fraction(split)
    held = holdout_customers(frame.loc[in_period, "customer_id"], fraction)
    is_held = frame["customer_id"].astype(str).isin(held)
    masks = {"train": in_period & ~is_held, "validation": in_period & is_held,
             "test": frame["as_of"].isin(test)}
    period_customers = frame.loc[in_period, "customer_id"].astype(str).nunique()
    return masks, {"name": "customer-grouped holdout, purge capped", "policy": "grouped",
                   "gap_days": gap, "train_fraction": len(period) / len(dates),
                   "holdout_fraction": fraction, "validation_customers": len(held),
                   "train_customers": period_customers - len(held),
                   "dates": {"train": period, "validation": period, "test": test}}


def read_split(out_url: str, name: str, storage_options: dict[str, Any] | None = None
               ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read one split back as (y, X, feature_names) - for tests and local training."""
    out = Store(out_url, storage_options)
    meta = out.read_json("metadata.json")
    with out.fs.open(out.path(name, f"{name}.csv"), "rb") as f:
        df = pd.read_csv(f, header=None)
    return df[0].to_numpy(), df.iloc[:, 1:].to_numpy(dtype=float), meta["feature_names"]
