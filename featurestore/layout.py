"""The store layout: every path the feature store writes under its root, in one place.

```
<store>/
    <table>/as_of=YYYY-MM-DD/part-*.parquet         feature tables (one per repository table)
    events/event_date=YYYY-MM-DD/part-c<digest>.parquet      web-log hits (source weblog), one
                                                    file per date per ingest run (loose parts
                                                    part-<file id>.parquet until merged)
    transactions/event_date=YYYY-MM-DD/part-*.parquet        retail invoices (source retail)
    _ledger/weblog/<drop>/<file>.json               one record per ingested raw file (last)
    _ledger/weblog/_days/<drop>/<version>.parquet   a complete drop's records, compacted
    _ledger/weblog/_compaction/<date>/<output>.json a merged events file's inputs and row
                                                    ranges (featurestore.events_compaction)
    _ledger/retail/<name>-<content id>.json         one record per ingested CSV (last)
    _quarantine/<source>/drop=<drop>/part-<file id>.parquet   bad rows with file, line, reason
    _daily/customer|customer_product/event_date=D/  per-day aggregates (internal)
    _partials/customer|customer_product/event_date=D/part-<file id>-<fp>.arrow
                                                    one file's share of them, from ingest
    _state/materialize.json, _state/retail.json     materialization commit records
    _state/generations.json                         generation of every feature partition
    _state/online.json                              the last push to a shared online store
    _state/online_delta/<table>/as_of=D.parquet     the rows of D that may have changed since
                                                    D-2 (the push's handover), and .json: ids
                                                    without a row
    _state/online_delta.json                        their generations (the commit's record)
    _state/columns.json                             declared columns' completeness (backfill's
                                                    commit record, SPEC §3a)
    _state/column_backfill/<date>/<events file>.json   what a column backfill could not fill
    _state/customer/, _state/pairs/                 rolling customer and pair state (internal;
                                                    customer: whole or a delta of the day)
    _meta/feature_repo.json                         the applied feature repository's record,
    _meta/feature_repo-<fingerprint>.yaml           naming its YAML (written first)
    _models/<model>/<version>/...                   model registry
    predictions/model=<model>/as_of=YYYY-MM-DD/part-*.parquet   batch scores (featurestore predict)
    _state/predictions/<model>.json                 predictions commit record (written last)
    _jobs/<job id>.json, _jobs/_runners/            retrain jobs and their runners' heartbeats
    _exports/...                                    training-set and FM exports
    _exports/_jobs/<export id>.json                 API training-set export records
    _lock.json                                      the writer lease
```

Names starting with ``_`` or ``.`` are internal: readers of the tables skip them, and a
temporary file being published starts with ``.``.
"""

from __future__ import annotations

__all__ = [
    "EVENTS", "TRANSACTIONS", "LEDGER_ROOT", "QUARANTINE_ROOT", "DAILY_ROOT", "STATE_ROOT",
    "META_ROOT", "REPO_RECORD", "repo_yaml", "MODELS", "JOBS", "EXPORTS", "LOCK",
    "DAILY_CUSTOMER", "DAILY_CUSTOMER_PRODUCT", "PARTIALS_ROOT", "PARTIAL_CUSTOMER",
    "PARTIAL_CUSTOMER_PRODUCT", "partial_name", "EXT_PARTIALS", "EXT_DAILY", "EXT_STATE",
    "EXT_TILES", "CUSTOMER_STATE", "PAIR_STATE",
    "MATERIALIZE_RECORD", "RETAIL_RECORD", "COLUMNS_RECORD", "COLUMN_NOTES", "GENERATIONS",
    "ONLINE_RECORD", "ONLINE_DELTA", "ONLINE_DELTA_RECORD", "RUNNERS", "EXPORT_JOBS",
    "ledger", "quarantine", "is_published", "is_internal",
    "PREDICTIONS", "predictions", "predictions_record",
]

EVENTS = "events"
TRANSACTIONS = "transactions"
LEDGER_ROOT = "_ledger"
QUARANTINE_ROOT = "_quarantine"
DAILY_ROOT = "_daily"
STATE_ROOT = "_state"
META_ROOT = "_meta"
REPO_RECORD = f"{META_ROOT}/feature_repo.json"
MODELS = "_models"
JOBS = "_jobs"
EXPORTS = "_exports"
LOCK = "_lock.json"
PREDICTIONS = "predictions"

PARTIALS_ROOT = "_partials"
DAILY_CUSTOMER = f"{DAILY_ROOT}/customer"
DAILY_CUSTOMER_PRODUCT = f"{DAILY_ROOT}/customer_product"
PARTIAL_CUSTOMER = f"{PARTIALS_ROOT}/customer"
PARTIAL_CUSTOMER_PRODUCT = f"{PARTIALS_ROOT}/customer_product"
CUSTOMER_STATE = f"{STATE_ROOT}/customer"
#: SPEC §3a aggregations (featurestore.features.aggs): per-file partials, per-day combined
#: partials, the chained per-customer state and the window tiles (internal, Arrow IPC).
EXT_PARTIALS = f"{PARTIALS_ROOT}/ext"
EXT_DAILY = f"{DAILY_ROOT}/ext"
EXT_STATE = f"{STATE_ROOT}/ext"
EXT_TILES = f"{STATE_ROOT}/ext_tiles"
PAIR_STATE = f"{STATE_ROOT}/pairs"
MATERIALIZE_RECORD = f"{STATE_ROOT}/materialize.json"
RETAIL_RECORD = f"{STATE_ROOT}/retail.json"
COLUMNS_RECORD = f"{STATE_ROOT}/columns.json"
COLUMN_NOTES = f"{STATE_ROOT}/column_backfill"
GENERATIONS = f"{STATE_ROOT}/generations.json"
#: What the last push to a shared online store (Redis) committed: namespace, per table as-of,
#: generation and push id (written after the pointers flip; see featurestore/online/redis_push.py).
ONLINE_RECORD = f"{STATE_ROOT}/online.json"
#: The rows of each table's latest as-of whose value may have changed in the last two days,
#: for the online push (featurestore/features/online_delta.py), and their commit record.
ONLINE_DELTA = f"{STATE_ROOT}/online_delta"
ONLINE_DELTA_RECORD = f"{STATE_ROOT}/online_delta.json"
RUNNERS = f"{JOBS}/_runners"
EXPORT_JOBS = f"{EXPORTS}/_jobs"


def ledger(source: str) -> str:
    """The ledger folder of one source (``_ledger/weblog``)."""
    return f"{LEDGER_ROOT}/{source}"


def quarantine(source: str) -> str:
    """The quarantine folder of one source (``_quarantine/weblog``)."""
    return f"{QUARANTINE_ROOT}/{source}"


def partial_name(file_id: str, fingerprint: str) -> str:
    """The base name of one ingested file's partial daily aggregates of one event date, built
    for the daily plan ``fingerprint`` (under ``PARTIAL_CUSTOMER[_PRODUCT]/event_date=D``).

    Args:
        file_id: the raw file's id (as in its ``events`` part name).
        fingerprint: the daily plan's fingerprint and the partials format.

    Returns:
        ``part-<file id>-<fingerprint>.arrow``.
    """
    return f"part-{file_id}-{fingerprint}.arrow"


def predictions(model: str) -> str:
    """The predictions folder of one model (``predictions/model=purchase-xgboost``); its
    partitions are ``as_of=YYYY-MM-DD``."""
    return f"{PREDICTIONS}/model={model}"


def predictions_record(model: str) -> str:
    """The commit record of one model's predictions (which version scored which as-of)."""
    return f"{STATE_ROOT}/predictions/{model}.json"


def repo_yaml(fingerprint: str) -> str:
    """The recorded copy of an applied repository (content-addressed, so the record that
    names it is the one atomic switch)."""
    return f"{META_ROOT}/feature_repo-{fingerprint}.yaml"


def is_internal(name: str) -> bool:
    """Whether a file or folder name is one readers skip (``_`` or ``.`` first)."""
    return name.startswith(("_", "."))


def is_published(name: str) -> bool:
    """Whether ``name`` (a base name or a relative path) is a published parquet part: the one
    filter every reader of a table partition applies."""
    return name.endswith(".parquet") and not is_internal(name.rsplit("/", 1)[-1])
