"""The purchases export that ``retail-als`` and ``retail-knn`` train on (issue #29).

``<out>/purchases.parquet``: one row per cleaned transaction line of the ``transactions``
table up to ``end`` (default: all), columns ``customer_id``, ``stock_code``, ``invoice_no``,
``invoice_date``, ``description``; ``<out>/metadata.json``: ``format: purchases``, rows,
customers, items, first and last day. The trainer (:mod:`featurestore.recsys.train`) splits
it by time itself, so one export serves the validation, the holdout and the refit.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pandas as pd

from .._exceptions import NotFoundError
from ..storage import Store
from .fm import read_transactions
from .xgboost_export import ExportResult

__all__ = ["export_purchases", "read_purchases_export", "FILENAME"]

FILENAME = "purchases.parquet"
COLUMNS = ["customer_id", "stock_code", "invoice_no", "invoice_date", "description"]


def export_purchases(store: Store, out_url: str, *, end: dt.date | None = None,
                     storage_options: dict[str, Any] | None = None) -> ExportResult:
    """Write the purchases export under ``out_url``.

    Args:
        store: the offline store (its ``transactions`` table).
        out_url: the export folder.
        end: the last invoice day to include (None: all).
        storage_options: fsspec options for ``out_url``.

    Returns:
        The export (its metadata and files).

    Raises:
        NotFoundError: no transactions (up to ``end``).
    """
    tx = read_transactions(store)[COLUMNS]
    if end is not None:
        tx = tx[pd.to_datetime(tx["invoice_date"]).dt.date <= end]
    if tx.empty:
        raise NotFoundError(f"no retail transactions up to {end} in {store.url}")
    tx = tx.astype({"customer_id": str, "stock_code": str, "invoice_no": str,
                    "description": "string"}).reset_index(drop=True)
    out = Store(out_url, storage_options)
    buf = io.BytesIO()
    tx.to_parquet(buf, index=False)
    out.write_bytes(buf.getvalue(), FILENAME)
    days = pd.to_datetime(tx["invoice_date"]).dt.date
    meta = {"format": "purchases", "rows": int(len(tx)),
            "customers": int(tx["customer_id"].nunique()),
            "items": int(tx["stock_code"].nunique()),
            "first_day": days.min().isoformat(), "last_day": days.max().isoformat(),
            "file": FILENAME}
    out.write_json(meta, "metadata.json")
    return ExportResult(out_url=out.url, metadata=meta,
                        files=[out.uri(FILENAME), out.uri("metadata.json")])


def read_purchases_export(export_url: str, storage_options: dict[str, Any] | None = None
                          ) -> pd.DataFrame:
    """The transaction lines of a purchases export (or of an FM export that carries them)."""
    import fsspec

    url = f"{export_url.rstrip('/')}/{FILENAME}"
    try:
        with fsspec.open(url, "rb", **(storage_options or {})) as f:
            return pd.read_parquet(f)
    except FileNotFoundError:
        raise NotFoundError(f"no {FILENAME} under {export_url}: build it with "
                            "featurestore.training.export_purchases") from None
