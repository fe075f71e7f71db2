"""The numbers behind the operations dashboard (``/dashboard``), from what the store records.

Every function here reads only records the pipeline already writes (the ledger, the quarantine,
the feature tables' footers and partitions, the generations record, the model registry and the
retrain jobs) and returns plain JSON-able dicts, so the API serves them as they are under
``/dashboard/api/...`` and other tools can use the same numbers. Tables and sources come from
the feature repository (:class:`~featurestore.features.definitions.FeatureRepo`), never from
names written in a page. No FastAPI here: the API routes are thin wrappers.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ._exceptions import NotFoundError
from .features.definitions import FeatureRepo
from .generations import read_generations
from .layout import is_published
from .retrain.jobs import list_jobs
from .retrain.registry import list_summaries
from .sources.weblog.ingest import LEDGER, QUARANTINE, drop_status, ledger_entries, ledger_keys
from .storage import Store
from .tables import as_of_dates, read_table

__all__ = [
    "MODEL_METRICS",
    "cluster",
    "drift",
    "feature_profile",
    "ingestion",
    "models",
    "overview",
    "pr_curves",
    "psi",
    "refusal_label",
    "source_latest",
]

#: Registry metrics charted over versions (a model records the ones that apply to it).
MODEL_METRICS = ("pr_auc", "roc_auc", "rmse", "recall_at_10_new", "recall_at_10_any")
#: Keeps the probability of an empty bin above zero, so PSI stays finite (the usual choice).
_PSI_FLOOR = 1e-4


def _partition_rows(store: Store, table: str, key: str, value: str) -> int:
    """Rows of one partition, from its files' parquet footers (no data read)."""
    total = 0
    for name in store.listdir(table, f"{key}={value}"):
        if is_published(name):
            total += pq.read_metadata(store.path(table, f"{key}={value}", name),
                                      filesystem=store.fs).num_rows
    return total


def _source_latest(store: Store, repo: FeatureRepo, source: str) -> str | None:
    """The newest date a source has delivered: its newest ledger drop (web logs) or the newest
    event date of its table (other sources), None before its first ingest."""
    spec = repo.sources[source]
    dates = store.partitions(spec.table, "event_date")
    if spec.kind == "weblog":
        dates = dates + [key.split("/", 1)[0] for key in ledger_keys(store)]
    return max(dates) if dates else None


#: Public for the catalogue's freshness (the same rule as the overview's).
source_latest = _source_latest


def overview(store: Store, repo: FeatureRepo, history: int = 60) -> dict[str, Any]:
    """Freshness and volume of every table of the repository.

    Args:
        store: the offline store.
        repo: the feature repository (which tables exist, and their sources).
        history: how many of the newest as-of partitions to count rows for.

    Returns:
        ``{"tables": [{"table", "source", "entity", "latest_as_of", "source_latest",
        "lag_days", "behind", "as_of_count", "rows_per_as_of": [{"as_of", "rows",
        "generation"}]}]}``; ``behind`` is true when the table's latest as-of is older than its
        source's newest date (or the table has none yet while the source has data).
    """
    generations = read_generations(store)
    out = []
    latest_by_source = {name: _source_latest(store, repo, name) for name in repo.sources}
    for table, spec in sorted(repo.tables.items()):
        dates = as_of_dates(store, table)
        latest = dates[-1] if dates else None
        source_latest = latest_by_source.get(spec.source)
        lag = None
        if latest and source_latest:
            lag = (dt.date.fromisoformat(source_latest) - dt.date.fromisoformat(latest)).days
        recorded = generations.get(table, {})
        out.append({
            "table": table, "source": spec.source, "entity": spec.entity,
            "latest_as_of": latest, "source_latest": source_latest, "lag_days": lag,
            "behind": bool(source_latest) and (latest is None or (lag or 0) > 0),
            "as_of_count": len(dates),
            "rows_per_as_of": [{"as_of": d, "rows": _partition_rows(store, table, "as_of", d),
                                "generation": int(recorded.get(d, 0))}
                               for d in dates[-history:]],
        })
    return {"tables": out}


def _quarantine_rows(store: Store, drop: str) -> int:
    """Rows in the quarantine folder of one drop, from the parquet footers."""
    return _partition_rows(store, QUARANTINE, "drop", drop)


def ingestion(store: Store, days: int = 60) -> dict[str, Any]:
    """Per web-log drop: files and rows ingested, rows quarantined by reason, files held back.

    Args:
        store: the offline store.
        days: how many of the newest drops to summarise.

    Returns:
        ``{"days": [{"drop", "files_ingested", "files_duplicate", "rows_ingested",
        "rows_quarantined", "quarantined_by_reason", "quarantine_rows_on_disk",
        "quarantine_location", "files_missing", "files_placeholder", "files_changed",
        "files_rejected", "rejected", "complete", "column_bad_values", "columns_missing"}],
        "reasons": [...], "declared_columns": [...], "quarantine_root": url}``.
        Files held back are those the drop's status record names (missing, zero-byte
        placeholders, changed content); ``rejected`` lists ``{"file", "reason"}`` of the files
        the last run rejected whole (corrupt, wrong header), from the same record.
        ``column_bad_values`` (declared column -> values stored as null because they did not
        parse as its type) and ``columns_missing`` (declared columns the drop's header
        lacks) come from the files' ledger records (SPEC §3a).
    """
    keys = ledger_keys(store)
    # a drop whose files are all missing or placeholders has only its status record
    listed = {n for n in store.listdir(LEDGER) if not n.startswith(("_", "."))}
    drops = sorted({k.split("/", 1)[0] for k in keys} | listed)[-days:]
    wanted = set(drops)
    entries = ledger_entries(store, [k for k in keys if k.split("/", 1)[0] in wanted])
    reasons: set[str] = set()
    declared: set[str] = set()
    rows = []
    for drop in drops:
        day = {"drop": drop, "files_ingested": 0, "files_duplicate": 0, "rows_ingested": 0,
               "rows_quarantined": 0, "quarantined_by_reason": {}, "column_bad_values": {},
               "columns_missing": []}
        for key, record in entries.items():
            if not key.startswith(f"{drop}/"):
                continue
            if record.get("status") == "duplicate":
                day["files_duplicate"] += 1
                continue
            day["files_ingested"] += 1
            day["rows_ingested"] += int(record.get("rows_ingested", 0))
            day["rows_quarantined"] += int(record.get("rows_quarantined", 0))
            for reason, n in (record.get("bad") or {}).items():
                if n:
                    reasons.add(reason)
                    by = day["quarantined_by_reason"]
                    by[reason] = by.get(reason, 0) + int(n)
            declared.update(record.get("columns", []))
            for column, n in (record.get("columns_bad") or {}).items():
                bad = day["column_bad_values"]
                bad[column] = bad.get(column, 0) + int(n)
            day["columns_missing"] = sorted(set(day["columns_missing"])
                                            | set(record.get("columns_missing", [])))
        status = drop_status(store, drop) or {}
        on_disk = _quarantine_rows(store, drop)
        day.update(
            quarantine_rows_on_disk=on_disk,
            quarantine_location=store.uri(QUARANTINE, f"drop={drop}") if on_disk else None,
            files_missing=len(status.get("missing", [])),
            files_placeholder=len(status.get("placeholders", [])),
            files_changed=len(status.get("changed", [])),
            files_rejected=len(status.get("rejected", [])),
            rejected=status.get("rejected", []),
            complete=bool(status.get("complete", True)),
        )
        rows.append(day)
    return {"days": rows, "reasons": sorted(reasons), "declared_columns": sorted(declared),
            "quarantine_root": store.uri(QUARANTINE)}


def _feature_columns(repo: FeatureRepo, table: str) -> list[str]:
    if table not in repo.tables:
        raise NotFoundError(f"no table {table!r} in the feature repository; tables: "
                            f"{', '.join(sorted(repo.tables))}")
    return list(repo.tables[table].features)


def _numeric(series: pd.Series) -> np.ndarray:
    """The non-null values of a feature as float64 (nullable ints and floats alike)."""
    return pd.to_numeric(series, errors="coerce").dropna().to_numpy(dtype="float64")


def _is_numeric(series: pd.Series) -> bool:
    """Whether a feature column has numbers (not strings, dates or SPEC §3a top_k lists)."""
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
        series.dtype)


def feature_profile(store: Store, repo: FeatureRepo, table: str, as_of: str | None = None,
                    bins: int = 20) -> dict[str, Any]:
    """A histogram and the null share of every feature of one as-of partition.

    Args:
        store: the offline store.
        repo: the feature repository (which columns are features).
        table: a table of the repository.
        as_of: the partition (None: the latest).
        bins: at most this many bins (fewer when a feature has fewer distinct values).

    Returns:
        ``{"table", "as_of", "as_of_dates", "rows", "features": [{"name", "null_share",
        "edges", "counts"}]}``; ``edges`` has one more item than ``counts``.

    Raises:
        NotFoundError: the table is not in the repository, or has no such as-of.
    """
    features = _feature_columns(repo, table)
    df = read_table(store, table, as_of)
    dates = as_of_dates(store, table)
    day = dates[-1] if as_of is None else str(as_of)
    out = []
    for name in features:
        if name not in df.columns:
            continue
        if not _is_numeric(df[name]):  # strings, dates, bools, lists: the null share only
            null_share = float(df[name].isna().mean()) if len(df) else 0.0
            out.append({"name": name, "null_share": round(null_share, 6), "edges": [],
                        "counts": []})
            continue
        values = _numeric(df[name])
        null_share = float(1 - len(values) / len(df)) if len(df) else 0.0
        if len(values):
            distinct = np.unique(values)
            if len(distinct) <= bins and np.all(distinct == np.round(distinct)):
                # small integer ranges: one bin per value, so a count reads as itself
                edges = np.append(distinct - 0.5, distinct[-1] + 0.5)
            else:
                edges = np.histogram_bin_edges(values, bins=bins)
            counts, edges = np.histogram(values, bins=edges)
        else:
            counts, edges = np.array([], dtype=int), np.array([])
        out.append({"name": name, "null_share": round(null_share, 6),
                    "edges": [float(e) for e in edges], "counts": [int(c) for c in counts]})
    return {"table": table, "as_of": day, "as_of_dates": dates, "rows": len(df),
            "features": out}


def psi(expected: pd.Series, actual: pd.Series, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected``.

    Bins are the baseline's deciles (one per value when it has at most ``bins`` distinct
    values), one for values above its maximum and one for nulls; empty bins get a small floor
    so the index stays finite.

    Args:
        expected: the baseline values (the earlier as-of).
        actual: the values compared with it.
        bins: number of quantile bins of the baseline.

    Returns:
        ``sum((a - e) * ln(a / e))`` over the bins; 0 when both are empty.
    """
    exp_values, act_values = _numeric(expected), _numeric(actual)
    if not len(expected) or not len(actual):
        return 0.0
    inner = np.array([])
    if len(exp_values):
        distinct = np.unique(exp_values)
        # few distinct values (counts, day numbers): one bin per value; else the deciles
        inner = distinct if len(distinct) <= bins else np.unique(
            np.quantile(exp_values, np.linspace(0, 1, bins + 1))[1:-1])
        # values above the baseline's maximum get a bin of their own, so a constant baseline
        # still shows a shift
        inner = np.append(inner, np.nextafter(distinct[-1], np.inf))

    def shares(values: np.ndarray, total: int) -> np.ndarray:
        counts = np.bincount(np.searchsorted(inner, values, side="right"),
                             minlength=len(inner) + 1).astype(float)
        counts = np.append(counts, total - len(values))  # the null bin
        return np.maximum(counts / total, _PSI_FLOOR)

    e, a = shares(exp_values, len(expected)), shares(act_values, len(actual))
    return float(np.sum((a - e) * np.log(a / e)))


def drift(store: Store, repo: FeatureRepo, table: str, as_of: str | None = None,
          baseline: str | None = None) -> dict[str, Any]:
    """PSI of every feature of ``as_of`` against ``baseline``, the largest movers first.

    Args:
        store: the offline store.
        repo: the feature repository.
        table: a table of the repository.
        as_of: the partition compared (None: the latest).
        baseline: the earlier partition (None: the one 7 days before ``as_of``, else the
            oldest one).

    Returns:
        ``{"table", "as_of", "baseline", "features": [{"name", "psi"}]}`` sorted by PSI
        descending; ``baseline`` is None (and the list empty) when the table has one as-of.

    Raises:
        NotFoundError: the table is not in the repository, or has no such as-of.
    """
    features = _feature_columns(repo, table)
    dates = as_of_dates(store, table)
    current = read_table(store, table, as_of)
    day = dates[-1] if as_of is None else str(as_of)
    if baseline is None:
        week_before = (dt.date.fromisoformat(day) - dt.timedelta(days=7)).isoformat()
        earlier = [d for d in dates if d < day]
        baseline = week_before if week_before in dates else (earlier[0] if earlier else None)
    if baseline is None:
        return {"table": table, "as_of": day, "baseline": None, "features": []}
    base = read_table(store, table, baseline)
    scores = [{"name": f, "psi": round(psi(base[f], current[f]), 6)}
              for f in features if f in current.columns and f in base.columns
              and _is_numeric(current[f]) and _is_numeric(base[f])]  # PSI needs numbers
    scores.sort(key=lambda s: -s["psi"])
    return {"table": table, "as_of": day, "baseline": baseline, "features": scores}


#: The phrase of a baseline-gate reason (featurestore.retrain.baseline) a badge shows.
_REFUSAL = re.compile(r"(no better than (?:chance|a random ranking|the baseline|predicting)"
                      r"|not distinguishable from (?:chance|a random ranking)"
                      r"|not a number|nothing shows it beats)")


def refusal_label(reason: str) -> str:
    """A short badge for a baseline-gate reason: ``refused: no better than chance``.

    Args:
        reason: the sentence the gate recorded (``alert.below_baseline`` of the job).

    Returns:
        ``refused: <the reason's verdict phrase>`` (``below the trivial baseline`` when the
        sentence has none of the known phrases).
    """
    found = _REFUSAL.search(reason)
    return f"refused: {found.group(1) if found else 'below the trivial baseline'}"


def _verdicts(jobs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(model, version) -> the promotion verdict its retrain job recorded (the newest job
    wins when two name one version)."""
    out = {}
    for j in jobs:
        alert = j.get("alert") or {}
        if j.get("model_version") and alert:
            out[(j["model"], j["model_version"])] = alert
    return out


def models(store: Store, jobs_limit: int = 20) -> dict[str, Any]:
    """Model versions with their held-out metrics, recent retrain jobs, and alerts sent.

    Args:
        store: the store holding the registry and the jobs.
        jobs_limit: how many of the newest jobs to list.

    Returns:
        ``{"models": [{"name", "production", "versions": [{"version", "created_at",
        "production", "damaged", "metrics": {pr_auc|roc_auc|rmse|recall_at_10_*: value},
        "holdout": a recommender's time-holdout table or None, "refused": the baseline
        gate's reason when it refused the version (no better than chance...) or None,
        "refused_label": its short badge or None, "not_promoted_reason": why its retrain
        did not promote it (refused, auto_promote off, not better than production) or
        None}]}], "jobs":
        [{"job_id", "model", "backend", "status", "submitted_at", "finished_at",
        "model_version", "error"}], "alerts": [{"job_id", "model", "version",
        "primary_metric", "new_value", "production_value", "relative_change", "promoted",
        "notified"}]}``.
    """
    jobs = list_jobs(store)
    verdicts = _verdicts(jobs)  # the registry records versions; the job, its verdict
    summaries = []
    for summary in list_summaries(store):
        versions = []
        for v in summary["versions"]:
            verdict = verdicts.get((summary["name"], v["version"]), {})
            refused = verdict.get("below_baseline")
            versions.append({"version": v["version"], "created_at": v["created_at"],
                             "production": v["production"], "damaged": v["damaged"],
                             "metrics": {m: v["metrics"][m] for m in MODEL_METRICS
                                         if m in (v["metrics"] or {})},
                             "holdout": v.get("holdout"), "refused": refused,
                             "refused_label": refusal_label(refused) if refused else None,
                             "not_promoted_reason": verdict.get("not_promoted_reason")})
        summaries.append({"name": summary["name"], "production": summary["production"],
                          "versions": versions})
    recent = [{k: j.get(k) for k in ("job_id", "model", "backend", "status", "submitted_at",
                                     "finished_at", "model_version", "error")}
              for j in reversed(jobs[-jobs_limit:])]
    alerts = []
    for j in reversed(jobs):
        alert = j.get("alert") or {}
        if alert.get("alert") or alert.get("damage"):
            alerts.append({"job_id": j["job_id"], "model": j["model"],
                           "version": j.get("model_version"),
                           **{k: alert.get(k) for k in ("primary_metric", "new_value",
                                                        "production_value", "relative_change",
                                                        "promoted", "notified", "damage")}})
    return {"models": summaries, "jobs": recent, "alerts": alerts}


#: Why a classifier's production version has no PR curve, by training backend.
_NO_CURVE = {"sagemaker": "trained on SageMaker, whose training job reports final metrics "
                          "only (no held-out scores to draw a curve from)"}
_NO_CURVE_RECORDED = "trained before PR curves were recorded (its record has none)"


def pr_curves(store: Store) -> dict[str, Any]:
    """The held-out precision-recall curve of each classifier's production version, as the
    registry recorded it when the version was trained.

    Only versions with a PR-AUC (classifiers) have a curve: a recommender is judged on its
    time holdout (the models page's holdout table) and is not listed here at all.

    Args:
        store: the store holding the registry.

    Returns:
        ``{"curves": [{"model", "version", "pr_auc", "positive_rate", "precision": [...],
        "recall": [...], "threshold": [...]}], "without_curve": [{"model", "version",
        "reason"}]}``: a classifier's production version whose record has no curve is in
        ``without_curve`` with the reason (trained on SageMaker, or before curves were
        recorded).
    """
    curves, missing = [], []
    for summary in list_summaries(store):
        production = next((v for v in summary["versions"] if v["production"]), None)
        metrics = (production or {}).get("metrics") or {}
        if production is None or metrics.get("pr_auc") is None:
            continue  # nothing promoted, or not a classifier: no curve to expect
        curve = production.get("pr_curve")
        if not isinstance(curve, dict) or not curve.get("precision"):
            missing.append({"model": summary["name"], "version": production["version"],
                            "reason": _NO_CURVE.get(production.get("backend") or "",
                                                    _NO_CURVE_RECORDED)})
            continue
        curves.append({"model": summary["name"], "version": production["version"],
                       "pr_auc": metrics.get("pr_auc"),
                       "positive_rate": metrics.get("positive_rate"),
                       **{k: curve.get(k, []) for k in ("precision", "recall", "threshold")}})
    return {"curves": curves, "without_curve": missing}


def cluster(scheduler: str | None) -> dict[str, Any]:
    """Where the Dask dashboard of the configured scheduler is.

    Args:
        scheduler: the ``scheduler`` setting (``tcp://host:port``), or None.

    Returns:
        ``{"scheduler", "dashboard_url"}``; the URL assumes Dask's default dashboard port 8787
        on the scheduler's host (None without a configured scheduler: each command then runs a
        LocalCluster of its own, gone when it ends).
    """
    if not scheduler:
        return {"scheduler": None, "dashboard_url": None}
    host = urlsplit(scheduler if "://" in scheduler else f"tcp://{scheduler}").hostname
    return {"scheduler": scheduler, "dashboard_url": f"http://{host}:8787/status"}
