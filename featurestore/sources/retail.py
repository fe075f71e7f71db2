"""The retail source (SPEC §2): UCI Online Retail CSV -> ``transactions`` -> retail features.

``ingest_retail`` applies the reference notebook's cleaning (drop rows without CustomerID,
drop rows with Quantity <= 0), writes ``transactions/event_date=D/part-<file id>.parquet`` (one
deterministic part per source file and date) and a ledger record per file, last.
``materialize_retail`` builds ``customer_retail_features`` (and any other table of a retail
source in the feature repository) for every as-of date from the first to the last invoice date.

Retail history is small (one year, ~400k cleaned rows), so an incremental run rebuilds every
as-of date from the earliest date a new file touched, with the cleaned transactions up to the
last due date held in memory and one Dask task per round of as-of dates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import fsspec
import pandas as pd

from .. import layout
from .._exceptions import RejectedFileError
from ..cluster import dask_client
from ..generations import commit_generations
from ..layout import is_published
from ..ledger import changes, content_id, finish_replacements
from ..ledger import unit_records as ledger_records
from ..planning import AsOfPlan, days_between, plan_as_of, requested_range, touched_dates
from ..storage import Store

if TYPE_CHECKING:  # Dask loads when there is work (dask_client)
    from distributed import Client

__all__ = ["RetailReport", "RetailSource", "clean_retail", "ingest_retail", "materialize_retail",
           "retail_features", "prepare", "read_transactions", "TRANSACTIONS_TABLE"]

TRANSACTIONS_TABLE = layout.TRANSACTIONS
SOURCE = "retail"
LEDGER = layout.ledger(SOURCE)
STATE_RECORD = layout.RETAIL_RECORD
RAW_COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
               "CustomerID", "Country"]
CHUNK_DAYS = 32


@dataclasses.dataclass
class RetailReport:
    files_ingested: int = 0
    files_skipped: int = 0
    rows_read: int = 0
    rows_dropped_no_customer: int = 0
    rows_dropped_quantity: int = 0
    rows_ingested: int = 0
    event_dates: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    files_replaced: int = 0
    #: files whose content changed under a name already ingested, refused (no --accept-changed)
    changed: list[dict[str, str]] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """False while a changed file is refused (a file that cannot be read at all raises
        :class:`RejectedFileError`)."""
        return not self.changed

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def clean_retail(raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """SPEC §2 cleaning and the ``transactions`` dtypes (SPEC §4)."""
    no_customer = raw["CustomerID"].isna() | (raw["CustomerID"].astype("string").str.strip()
                                              == "")
    df = raw[~no_customer]
    quantity = pd.to_numeric(df["Quantity"], errors="raise").astype("int64")
    keep = (quantity > 0).to_numpy()
    df, quantity = df[keep], quantity[keep]
    customer = pd.to_numeric(df["CustomerID"], errors="raise").astype("int64").astype(str)
    out = pd.DataFrame({
        "invoice_no": df["InvoiceNo"].astype("string"),
        "stock_code": df["StockCode"].astype("string"),
        "description": df["Description"].astype("string"),
        "quantity": quantity.astype("int64"),
        "invoice_date": pd.to_datetime(df["InvoiceDate"], format="%Y-%m-%d %H:%M:%S")
        .astype("datetime64[ms]"),
        "unit_price": pd.to_numeric(df["UnitPrice"]).astype("float64"),
        "customer_id": customer.astype("string"),
        "country": df["Country"].astype("string"),
    }).reset_index(drop=True)
    counts = {"rows_dropped_no_customer": int(no_customer.sum()),
              "rows_dropped_quantity": int((~keep).sum())}
    return out, counts


def _ledger(store: Store) -> dict[str, dict[str, Any]]:
    return ledger_records(store, SOURCE)


def _ingest_file(store: Store, url: str, data: bytes, file_id: str) -> dict[str, Any]:
    """Clean one file and publish its per-date parts (runs on a worker)."""
    import io

    try:
        raw = pd.read_csv(io.BytesIO(data), compression="infer" if not url.endswith(".gz")
                          else "gzip", dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:  # noqa: BLE001 - any parse failure rejects the file whole
        raise RejectedFileError(url, f"not a readable Online Retail CSV: {exc}") from None
    missing = [c for c in RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise RejectedFileError(url, f"missing columns {missing}; expected {RAW_COLUMNS}")
    df, counts = clean_retail(raw)
    dates = df["invoice_date"].dt.strftime("%Y-%m-%d")
    for day, part in df.groupby(dates, sort=True):
        write_transactions(store, part.reset_index(drop=True), day, file_id)
    return {"rows_read": len(raw), "rows_ingested": len(df), **counts,
            "event_dates": sorted(dates.unique().tolist())}


def write_transactions(store: Store, df: pd.DataFrame, day: str, file_id: str) -> None:
    from ..features._io import write_table

    write_table(store, df, TRANSACTIONS_TABLE, f"event_date={day}", f"part-{file_id}.parquet")


def ingest_retail(path: str, store: Store, *, client: Client | None = None,
                  scheduler: str | None = None, workers: int | None = None,
                  storage_options: dict[str, Any] | None = None,
                  accept_changed: bool = False) -> RetailReport:
    """Ingest one Online Retail CSV (.csv or .csv.gz) exactly once.

    A file is keyed by its name and content. The same name with other content is a correction:
    refused (``report.changed``, not ok) unless ``accept_changed``, which replaces the old
    version's transactions (new parts published, then the old ones removed; a crash in between
    is finished by the next run) and rebuilds every as-of date either version touched.
    """
    started = time.perf_counter()
    report = RetailReport()
    with store.lock("ingest retail"):
        _finish_replacements(store)
        _ingest_retail_locked(path, store, report, client, scheduler, workers, storage_options,
                              accept_changed)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _name_of(key: str) -> str:
    """The file name of a ledger key ``<name>-<12 hex file id>``."""
    return key.rsplit("-", 1)[0]


def _remove_parts(store: Store, old: dict[str, Any]) -> None:
    """Remove the transactions parts of a replaced version (its ledger record ``old``)."""
    for day in old["event_dates"]:
        store.remove(TRANSACTIONS_TABLE, f"event_date={day}", f"part-{old['file_id']}.parquet")


def _finish_replacements(store: Store) -> None:
    """Remove what replaced versions left (see :func:`featurestore.ledger.finish_replacements`)."""
    finish_replacements(store, SOURCE, lambda old: _remove_parts(store, old))


def _ingest_retail_locked(path, store, report, client, scheduler, workers, options,
                          accept_changed: bool = False) -> None:
    try:
        with fsspec.open(path, "rb", **(options or {})) as f:
            data = f.read()
    except (FileNotFoundError, OSError) as exc:
        raise RejectedFileError(str(path), f"cannot read: {exc}") from None
    md5 = hashlib.md5(data).hexdigest()
    name = str(path).rstrip("/").rsplit("/", 1)[-1]
    file_id = content_id(name, md5)
    key = f"{name}-{file_id}"
    ledger = _ledger(store)
    if key in ledger:
        report.files_skipped += 1
        return
    older = {k: e for k, e in ledger.items() if _name_of(k) == name}
    if older and not accept_changed:
        report.changed.append({
            "file": str(path), "md5": md5,
            "ingested_md5": ", ".join(e["md5"] for e in older.values()),
            "action": "its content changed since it was ingested: re-run with "
                      "--accept-changed to replace the old version's rows, or restore the file"})
        return
    with dask_client(scheduler, workers, client) as c:
        result = c.submit(_ingest_file, store, str(path), data, file_id, pure=False).result()
    entry = {"file": str(path), "size": len(data), "md5": md5, "file_id": file_id,
             "ingested_at": dt.datetime.now(dt.UTC).isoformat(), **result}
    if older:  # materialization rebuilds from the earliest date either version touched
        entry["replaces"] = sorted(older)
        entry["replaced_event_dates"] = sorted({d for e in older.values()
                                                for d in e["event_dates"]})
    store.write_json(entry, LEDGER, f"{key}.json")  # last: the parts above are published
    if older:
        _finish_replacements(store)
        report.files_replaced += 1
    report.files_ingested += 1
    for k in ("rows_read", "rows_ingested", "rows_dropped_no_customer", "rows_dropped_quantity"):
        setattr(report, k, getattr(report, k) + result[k])
    report.event_dates = result["event_dates"]


# -- features ---------------------------------------------------------------------------------
@dataclasses.dataclass
class Prepared:
    """Compact per (customer, day) frames a retail table's as-of dates are computed from."""

    daily: pd.DataFrame                 # customer_id, day, rows, <sum fields>
    distinct: dict[str, pd.DataFrame]   # field -> unique (customer_id, day, field)
    latest: dict[str, pd.DataFrame]     # field -> (customer_id, day, value of the day's last line)


def prepare(tx: pd.DataFrame, features: dict[str, dict[str, Any]]) -> Prepared:
    """One pass over the transactions for every retail table's features."""
    tx = tx.copy()
    tx["revenue"] = tx["quantity"].astype("float64") * tx["unit_price"]
    epoch = dt.date(1970, 1, 1).toordinal()
    tx["day"] = (tx["invoice_date"].to_numpy().astype("datetime64[D]").astype("int64")
                 + epoch)
    feats = [f for table in features.values() for f in table.values()]
    sums = sorted({f.field for f in feats if f.aggregation == "sum"})
    g = tx.groupby(["customer_id", "day"], sort=True)
    daily = g.size().rename("rows").to_frame().join(g[sums].sum()) if sums else \
        g.size().rename("rows").to_frame()
    distinct = {}
    for fld in sorted({f.field for f in feats if f.aggregation == "distinct"}):
        col = "day" if fld == "event_date" else fld
        distinct[fld] = tx[["customer_id", "day"] + ([col] if col != "day" else [])] \
            .drop_duplicates().reset_index(drop=True)
    latest = {}
    for fld in sorted({f.field for f in feats if f.aggregation == "latest"}):
        ordered = tx.sort_values(["customer_id", "day", "invoice_date", "invoice_no", fld],
                                 kind="stable")
        latest[fld] = ordered.groupby(["customer_id", "day"], sort=True)[fld].last().reset_index()
    return Prepared(daily.reset_index(), distinct, latest)


def retail_features(prep: Prepared, features: dict[str, Any], as_of: dt.date) -> pd.DataFrame:
    """One as-of date of a retail table.

    Rows: customers with an invoice on or before ``as_of``. ``latest`` (country) is the value on
    the customer's latest invoice line: latest ``invoice_date``, ties broken by the highest
    ``invoice_no``, then the highest value.
    """
    day = as_of.toordinal()
    daily = prep.daily[prep.daily["day"].to_numpy() <= day]
    last_day = daily.groupby("customer_id", sort=True)["day"].max()
    index = last_day.index.astype("string")
    out = pd.DataFrame(index=index)

    def window(df: pd.DataFrame, days: int) -> pd.DataFrame:
        d = df["day"].to_numpy()
        return df[(d <= day) & (d > day - days)]

    for name, f in features.items():
        if f.aggregation in ("count", "sum"):
            rows = window(daily, f.window_days).groupby("customer_id", sort=False)[
                "rows" if f.aggregation == "count" else f.field].sum()
            dtype = "float64" if f.aggregation == "sum" and f.field != "quantity" else "int64"
            out[name] = rows.reindex(index, fill_value=0).astype(dtype).to_numpy()
        elif f.aggregation == "distinct":
            frame = window(prep.distinct[f.field], f.window_days)
            col = "day" if f.field == "event_date" else f.field
            out[name] = frame.groupby("customer_id", sort=False)[col].nunique().reindex(
                index, fill_value=0).astype("int64").to_numpy()
        elif f.aggregation == "recency":
            out[name] = (day - last_day).astype("int64").to_numpy()
        elif f.aggregation == "latest":
            frame = prep.latest[f.field]
            frame = frame[frame["day"].to_numpy() <= day]
            out[name] = frame.groupby("customer_id", sort=False)[f.field].last().reindex(
                index).astype("string").to_numpy()
    out = out.reset_index()
    out["customer_id"] = out["customer_id"].astype("string")
    return out


def _retail_task(store: Store, prep: Prepared, tables: dict[str, Any],
                 days: list[dt.date]) -> dict[str, int]:
    from ..features._io import write_table

    rows: dict[str, int] = {}
    for day in days:
        for name, feats in tables.items():
            df = retail_features(prep, feats, day)
            write_table(store, df, name, f"as_of={day.isoformat()}", "part-0.parquet")
            rows[name] = rows.get(name, 0) + len(df)
    return rows


def read_transactions(store: Store, until: dt.date | None = None) -> pd.DataFrame:
    import pyarrow.dataset as ds

    files = []
    for part in store.listdir(TRANSACTIONS_TABLE):
        if part.startswith("event_date=") and (until is None or part[11:] <= until.isoformat()):
            files += [store.path(TRANSACTIONS_TABLE, part, n)
                      for n in store.listdir(TRANSACTIONS_TABLE, part)
                      if is_published(n)]
    df = ds.dataset(sorted(files), format="parquet", filesystem=store.fs).to_table().to_pandas()
    for c in ("invoice_no", "stock_code", "description", "customer_id", "country"):
        df[c] = df[c].astype("string")
    return df


@dataclasses.dataclass(frozen=True)
class RetailPlan:
    """What one retail materialization reads, computes and records (pure: see
    :func:`plan_retail`).

    Attributes:
        as_of: the due as-of dates per table (the shared planner's answer).
        read_until: transactions are read up to this date (the last due date), None: no read.
        tasks: one Dask task each: (its as-of dates, the tables it writes).
        files: the commit record's ``files`` after this run (ledger key -> md5).
    """

    as_of: AsOfPlan
    read_until: dt.date | None
    tasks: tuple[tuple[tuple[dt.date, ...], tuple[str, ...]], ...]
    files: Mapping[str, str]


def plan_retail(record: dict[str, Any], ledger: Mapping[str, dict[str, Any]],
                fingerprints: Mapping[str, str], *, start: dt.date | None = None,
                end: dt.date | None = None, force: bool = False,
                chunk_days: int = CHUNK_DAYS) -> RetailPlan | None:
    """Plan a retail materialization from the commit record and the ledger, no I/O.

    Args:
        record: the commit record ``_state/retail.json`` (``files``, ``as_of``; {} when new).
        ledger: the retail ledger's records, keyed ``<name>-<content id>``.
        fingerprints: retail table -> its definition's fingerprint, in repository order.
        start: first as-of date to (re)write, None for the first invoice date.
        end: last as-of date to (re)write, None for the last.
        force: rebuild every as-of date in the range.
        chunk_days: as-of dates per Dask task.

    Returns:
        The plan, or None when there is no table or nothing ingested (nothing is recorded).
    """
    if not fingerprints or not ledger:
        return None
    versions = changes(ledger, "md5")
    # a replaced version's dates stay in range: its as-of partitions are rebuilt, not left stale
    dates = sorted({d for _, ds in versions.values() for d in ds})
    first, last = dt.date.fromisoformat(dates[0]), dt.date.fromisoformat(dates[-1])
    touched = touched_dates(versions, record.get("files", {}))
    lo, hi = requested_range(first, last, start, end)
    as_of = plan_as_of(fingerprints, record.get("as_of", {}), days_between(first, last),
                       earliest=dt.date.fromisoformat(touched[0]) if touched else None,
                       lo=lo, hi=hi, force=force)
    days = as_of.days
    tasks = []
    for i in range(0, len(days), chunk_days):
        chunk = tuple(days[i:i + chunk_days])
        tasks.append((chunk, tuple(n for n in fingerprints
                                   if any(n in as_of.due[d] for d in chunk))))
    return RetailPlan(as_of, days[-1] if days else None, tuple(tasks),
                      {k: e["md5"] for k, e in ledger.items()})


def execute_retail(store: Store, plan: RetailPlan, feats: dict[str, Any], client: Client
                   ) -> dict[str, int]:
    """Compute and publish the planned as-of partitions on the cluster.

    Args:
        store: the store.
        plan: the plan.
        feats: table -> its feature definitions.
        client: the Dask client.

    Returns:
        Rows written per table.
    """
    rows: dict[str, int] = {}
    if plan.read_until is None:
        return rows
    prep = prepare(read_transactions(store, until=plan.read_until), feats)
    tx_future = client.scatter(prep, broadcast=True)
    futures = [client.submit(_retail_task, store, tx_future, {n: feats[n] for n in names},
                             list(days), pure=False)
               for days, names in plan.tasks]
    for fut in futures:
        for name, n in fut.result().items():
            rows[name] = rows.get(name, 0) + n
    return rows


def commit_retail(store: Store, record: dict[str, Any], plan: RetailPlan,
                  fingerprints: Mapping[str, str]) -> None:
    """Record what the execution published: generations first, then the commit record (a
    crash in between rebuilds the same dates; see :mod:`featurestore.generations`).

    Args:
        store: the store.
        record: the commit record read before planning (updated here).
        plan: the executed plan.
        fingerprints: retail table -> fingerprint.
    """
    built = record.setdefault("as_of", {})
    for name in fingerprints:
        done = built.setdefault(name, {})
        for iso in plan.as_of.forget.get(name, ()):
            done.pop(iso, None)
    for day, names in plan.as_of.due.items():
        for name in names:
            built[name][day.isoformat()] = fingerprints[name]
    record["files"] = dict(plan.files)
    commit_generations(store, {n: plan.as_of.written(n) for n in fingerprints})
    store.write_json(record, STATE_RECORD)


def materialize_retail(store: Store, repo, report, *, client: Client | None = None,
                       scheduler: str | None = None, workers: int | None = None,
                       start: dt.date | None = None, end: dt.date | None = None,
                       force: bool = False) -> None:
    """Rebuild the retail tables' stale as-of dates (caller holds the store lock): plan
    (:func:`plan_retail`), execute (:func:`execute_retail`), commit (:func:`commit_retail`)."""
    tables = repo.tables_for(SOURCE)
    fingerprints = {n: repo.fingerprint(n) for n in tables}
    try:
        record = store.read_json(STATE_RECORD)
    except FileNotFoundError:
        record = {}
    record.setdefault("files", {})
    record.setdefault("as_of", {})
    plan = plan_retail(record, _ledger(store) if tables else {}, fingerprints, start=start,
                       end=end, force=force)
    if plan is None:
        return
    if plan.tasks:
        with dask_client(scheduler, workers, client) as c:
            rows = execute_retail(store, plan, {n: tables[n].features for n in tables}, c)
        for name, n in rows.items():
            report.rows_written[name] = report.rows_written.get(name, 0) + n
        for day, names in plan.as_of.due.items():
            for name in names:
                report.as_of_written.setdefault(name, []).append(day.isoformat())
    commit_retail(store, record, plan, fingerprints)


class RetailSource:
    """The ``retail`` :class:`~featurestore.sources.base.Source`: Online Retail CSVs into
    ``transactions``; ``customer_retail_features`` (and any other retail table)."""

    kind = "retail"

    def __init__(self, store: Store, settings: Any = None) -> None:
        self.store = store
        self.settings = settings

    def ingest(self, raw: str, *, client: Client, raw_storage_options: dict[str, Any] | None,
               progress: bool | None, accept_changed: bool = False) -> RetailReport:
        return ingest_retail(raw, self.store, client=client, storage_options=raw_storage_options,
                             accept_changed=accept_changed)

    def materialize(self, repo, report, *, client: Client, start: dt.date | None,
                    end: dt.date | None, force: bool) -> None:
        materialize_retail(self.store, repo, report, client=client, start=start, end=end,
                           force=force)
