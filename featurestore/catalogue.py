"""The feature catalogue: which features exist, what they mean, where they come from and who
uses them (``/dashboard/catalogue``, ``/dashboard/api/catalogue``, ``featurestore features``).

Everything comes from what the store already records: the recorded feature repository (the
definitions and their optional ``description``, ``owner`` and ``tags``), the latest as-of
partition of every table (type, null share, min/mean/max or top values), the partitions and
the ledger (freshness), the model registry (which versions used a feature, its importance in
each, and the training set each was trained on) and the training-set exports. Plain
JSON-able dicts, no FastAPI: the routes and the CLI only shape them.

Feature names in a training set are the table's column names; a column of a joined table whose
name the base table (``customer_features``) already has is ``<table>__<column>`` (see
:func:`featurestore.training.pointintime._join_tables`), which is how a model's feature is
traced back to its table.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from . import layout
from ._exceptions import NotFoundError
from .dashboard import source_latest
from .features.definitions import Feature, FeatureRepo
from .retrain.registry import list_summaries
from .storage import Store
from .tables import as_of_dates, latest_written, read_table

__all__ = ["BASE_TABLE", "TOP_VALUES", "catalogue", "describe", "matches"]

#: The table every training set starts from (its columns keep their names).
BASE_TABLE = "customer_features"
#: How many of the most frequent values a non-numeric feature lists.
TOP_VALUES = 5

_WHAT = {"sum": "sum of {field}", "distinct": "count of distinct {field}",
         "recency": "days since the latest matching event date",
         "latest": "{field} of the latest record"}
_FIELD_WORDS = {"event_date": "days with a matching hit", "product_id": "distinct products",
                "price": "price over the products", "quantity": "quantity over the products"}


def describe(feature: Feature, kind: str = "weblog") -> str:
    """A feature's definition in one readable line.

    Args:
        feature: the definition, as the repository holds it.
        kind: the kind of its table's source (``retail`` features count invoice lines, not
            hits).

    Returns:
        E.g. ``"count of hits where event list has 12, over the 7 days ending on the as-of
        date"``. Fields this renderer does not know (a newer aggregation's options) are
        appended as ``key=value``, so nothing a definition says is hidden.
    """
    data = feature.model_dump(exclude={"description", "owner", "tags"})
    agg = data.pop("aggregation", None)
    field = data.pop("field", None)
    unit = data.pop("unit", "hit")
    filt = data.pop("filter", None) or {}
    window = data.pop("window_days", None)
    if kind == "retail":
        what = {"sum": f"sum of {field} over the invoice lines",
                "distinct": "count of days with an invoice" if field == "event_date"
                else f"count of distinct {field}",
                "recency": "days since the latest invoice date",
                "latest": f"{field} of the latest invoice"}.get(agg) or (
                    f"{agg} of {field}" if field else str(agg))
    elif agg == "count":
        what = "count of (hit, product) pairs" if unit == "product" else "count of hits"
    elif agg == "distinct" and field in ("event_date", "product_id"):
        what = f"count of {_FIELD_WORDS[field]}"
    elif agg == "sum" and field in ("price", "quantity"):
        what = f"sum of {_FIELD_WORDS[field]}"
    elif agg in _WHAT:
        what = _WHAT[agg].format(field=field)
    else:
        what = f"{agg} of {field}" if field else str(agg)
    conditions = []
    for key, value in filt.items():
        if value is None or value == []:
            continue
        if key == "event_id":
            conditions.append(f"event list has {value}")
        elif key == "page_event":
            conditions.append(f"post_page_event = {value}")
        elif key == "url_path_prefix":
            conditions.append(f"page path starts with {value}")
        elif key == "where" and isinstance(value, list):
            conditions += [" ".join(str(c.get(k, "")) for k in ("column", "op", "value")).strip()
                           for c in value if isinstance(c, dict)]
        else:
            conditions.append(f"{key} = {value}")
    line = what + (f" where {' and '.join(conditions)}" if conditions else "")
    if window is not None:
        line += f", over the {window} day{'s' if window != 1 else ''} ending on the as-of date"
    elif agg not in ("recency", "latest"):
        line += ", over all history up to the as-of date"
    extra = [f"{k}={v}" for k, v in sorted(data.items()) if v not in (None, "", [], ())]
    return line + (f" ({', '.join(extra)})" if extra else "")


def matches(entry: dict[str, Any], search: str | None) -> bool:
    """Whether a catalogue feature answers a search: every word of ``search`` appears
    (case-insensitively) in its name, table, description, owner or one of its tags.

    Args:
        entry: a feature of :func:`catalogue`.
        search: the words typed (None or blank: everything matches).

    Returns:
        True when it matches.
    """
    words = (search or "").lower().split()
    if not words:
        return True
    text = " ".join([entry["name"], entry["table"], entry.get("description") or "",
                     entry.get("owner") or "", *entry.get("tags", []),
                     entry.get("table_description") or ""]).lower()
    return all(w in text for w in words)


def _stats(frame: pd.DataFrame | None, name: str) -> dict[str, Any]:
    """Type, null share and min/mean/max (numbers) or the most frequent values (the rest)."""
    if frame is None or name not in frame.columns:
        return {"type": None, "rows": 0, "null_share": None, "min": None, "mean": None,
                "max": None, "top": None}
    column = frame[name]
    out: dict[str, Any] = {"type": str(column.dtype), "rows": int(len(column)),
                           "null_share": round(float(column.isna().mean()), 6)
                           if len(column) else None, "min": None, "mean": None, "max": None,
                           "top": None}
    values = column.dropna()
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
            column.dtype):
        if len(values):
            numbers = values.astype("float64")
            out.update(min=_number(numbers.min()), mean=round(float(numbers.mean()), 6),
                       max=_number(numbers.max()))
        return out
    # lists (top_k) count each item; everything else counts its value as text
    first = values.iloc[0] if len(values) else None
    if isinstance(first, (list, tuple)) or (hasattr(first, "tolist") and not isinstance(
            first, str) and getattr(first, "ndim", 0) > 0):
        values = values.explode().dropna()
    counts = values.astype(str).value_counts()
    counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    out["top"] = [{"value": v, "count": int(c)} for v, c in counts.head(TOP_VALUES).items()]
    return out


def _number(value: Any) -> float | int:
    value = float(value)
    return int(value) if value.is_integer() else round(value, 6)


def _model_feature(repo: FeatureRepo, column: str) -> tuple[str, str] | None:
    """The (table, feature) a training-set column comes from, None when the repository has
    no such feature (a model trained on an older repository, or on a synthetic export)."""
    table, sep, rest = column.partition("__")
    if sep and table in repo.tables and rest in repo.tables[table].features:
        return table, rest
    if BASE_TABLE in repo.tables and column in repo.tables[BASE_TABLE].features:
        return BASE_TABLE, column
    for name, spec in sorted(repo.tables.items()):
        if column in spec.features and repo.keys(name) == ["customer_id"]:
            return name, column
    return None


def _usage(store: Store, repo: FeatureRepo) -> tuple[dict[tuple[str, str], dict[str, list]],
                                                     list[dict[str, Any]]]:
    """Per (table, feature): the model versions and training sets that used it; and every
    model version with the catalogue ids of its features."""
    used: dict[tuple[str, str], dict[str, list]] = {}
    versions_out: list[dict[str, Any]] = []
    training_sets: dict[str, dict[str, Any]] = {}

    def entry(key: tuple[str, str]) -> dict[str, list]:
        return used.setdefault(key, {"models": [], "training_sets": []})

    for summary in list_summaries(store):
        for v in summary["versions"]:
            if v["damaged"]:
                continue
            record = _version_features(store, summary["name"], v["version"])
            importance = v.get("feature_importance") or {}
            total = sum(float(x) for x in importance.values()) or None
            ranks = {n: i + 1 for i, n in enumerate(importance)}
            ids, unknown = [], []
            for column in record:
                found = _model_feature(repo, column)
                if found is None:
                    unknown.append(column)
                    continue
                ids.append(f"{found[0]}.{found[1]}")
                gain = importance.get(column)
                entry(found)["models"].append({
                    "model": summary["name"], "version": v["version"],
                    "production": v["production"], "created_at": v["created_at"],
                    "column": column, "importance": None if gain is None else float(gain),
                    "importance_share": None if gain is None or not total
                    else round(float(gain) / total, 6),
                    "rank": ranks.get(column), "of": len(record),
                    "training_set": v.get("training_set")})
            url = v.get("training_set")
            if url:
                ts = training_sets.setdefault(url, {
                    "url": url, "name": f"training set of {summary['name']} {v['version']}",
                    "kind": "model version", "columns": record, "used_by": []})
                ts["used_by"].append(f"{summary['name']} {v['version']}")
            versions_out.append({"model": summary["name"], "version": v["version"],
                                 "production": v["production"], "created_at": v["created_at"],
                                 "training_set": url, "features": ids,
                                 "unknown_features": unknown})
    for url, name, columns in _exports(store):
        if url not in training_sets:
            training_sets[url] = {"url": url, "name": f"export {name}", "kind": "export",
                                  "columns": columns, "used_by": []}
    for ts in training_sets.values():
        for column in ts["columns"]:
            found = _model_feature(repo, column)
            if found is not None:
                entry(found)["training_sets"].append(
                    {"name": ts["name"], "kind": ts["kind"], "url": ts["url"],
                     "column": column, "used_by": ts["used_by"]})
    return used, versions_out


def _version_features(store: Store, model: str, version: str) -> list[str]:
    try:
        names = store.read_json(layout.MODELS, model, version, "features.json")
    except (FileNotFoundError, ValueError):
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


def _exports(store: Store) -> list[tuple[str, str, list[str]]]:
    """(url, name, feature columns) of every csv training set the store records: each
    ``_exports/<name>/metadata.json`` (``POST /training-sets``, retrain exports) and each
    completed export job written elsewhere (``_exports/_jobs``)."""
    out = []
    for name in store.listdir(layout.EXPORTS):
        if layout.is_internal(name):
            continue
        meta = _json(store, layout.EXPORTS, name, "metadata.json")
        if isinstance(meta, dict) and meta.get("feature_names"):
            out.append((store.uri(layout.EXPORTS, name), name, list(meta["feature_names"])))
    for name in store.listdir(layout.EXPORT_JOBS):
        job = _json(store, layout.EXPORT_JOBS, name) if name.endswith(".json") else None
        if not isinstance(job, dict) or job.get("status") != "completed":
            continue
        meta = job.get("metadata") or {}
        if meta.get("feature_names") and job.get("out"):
            out.append((job["out"], str(job.get("id")), list(meta["feature_names"])))
    return out


def _json(store: Store, *parts: str) -> Any:
    """A JSON record, None when it is missing or not JSON (half-written, foreign)."""
    try:
        return store.read_json(*parts)
    except (FileNotFoundError, ValueError):
        return None


def catalogue(store: Store, repo: FeatureRepo, *, table: str | None = None,
              search: str | None = None, model: str | None = None,
              version: str | None = None) -> dict[str, Any]:
    """Every table and feature of the repository with its meaning, numbers and lineage.

    Args:
        store: the offline store.
        repo: the feature repository the store uses.
        table: only this table's features.
        search: only features matching these words (see :func:`matches`).
        model: only the features this model used (with ``version``: that version's).
        version: a version of ``model`` (default: every version of it).

    Returns:
        ``{"tables": [{"table", "source", "source_kind", "source_table", "entity", "keys",
        "description", "owner", "tags", "features", "latest_as_of", "as_of_count", "rows",
        "source_latest", "lag_days", "last_written"}], "features": [{"id", "table", "name",
        "definition", "aggregation", "window_days", "filter", "description", "owner", "tags",
        "type", "as_of", "rows", "null_share", "min", "mean", "max", "top", "freshness":
        {"latest_as_of", "source_latest", "lag_days", "last_written"}, "lineage": {"source",
        "source_kind", "source_table", "table", "training_sets": [{"name", "kind", "url",
        "column", "used_by"}], "models": [{"model", "version", "production", "created_at", "column",
        "importance", "importance_share", "rank", "of", "training_set"}]}}], "models":
        [{"model", "version", "production", "created_at", "training_set", "features",
        "unknown_features"}], "filters": {"table", "search", "model", "version"}, "total":
        features before filtering}``.

    Raises:
        NotFoundError: an unknown table, or a model (version) the registry does not hold.
    """
    if table is not None and table not in repo.tables:
        raise NotFoundError(f"no table {table!r} in the feature repository; tables: "
                            f"{', '.join(sorted(repo.tables))}")
    used, versions = _usage(store, repo)
    if model is not None:
        chosen = [v for v in versions if v["model"] == model
                  and (version is None or v["version"] == version)]
        if not chosen:
            known = sorted({f"{v['model']} {v['version']}" for v in versions}) or ["none yet"]
            raise NotFoundError(f"no model version {model} {version or ''}".rstrip() +
                                f" in the registry; versions: {', '.join(known)}")
        wanted_ids = {i for v in chosen for i in v["features"]}
    latest_by_source = {name: source_latest(store, repo, name) for name in repo.sources}
    tables_out, features_out, total = [], [], 0
    for name, spec in sorted(repo.tables.items()):
        source = repo.sources[spec.source]
        dates = as_of_dates(store, name)
        latest = dates[-1] if dates else None
        frame = read_table(store, name, latest) if latest else None
        src_latest = latest_by_source.get(spec.source)
        lag = (dt.date.fromisoformat(src_latest) - dt.date.fromisoformat(latest)).days \
            if latest and src_latest else None
        freshness = {"latest_as_of": latest, "source_latest": src_latest, "lag_days": lag,
                     "last_written": latest_written(store, name, latest) if latest else None}
        tables_out.append({"table": name, "source": spec.source, "source_kind": source.kind,
                           "source_table": source.table, "entity": spec.entity,
                           "keys": repo.keys(name), "description": spec.description,
                           "owner": spec.owner, "tags": list(spec.tags),
                           "features": list(spec.features), "as_of_count": len(dates),
                           "rows": 0 if frame is None else int(len(frame)), **freshness})
        for fname, feature in spec.features.items():
            total += 1
            usage = used.get((name, fname), {"models": [], "training_sets": []})
            entry = {
                "id": f"{name}.{fname}", "table": name, "name": fname,
                "definition": describe(feature, source.kind), "aggregation": feature.aggregation,
                "window_days": feature.window_days,
                "filter": {k: v for k, v in feature.filter.model_dump().items()
                           if v not in (None, [], ())},
                "description": feature.description, "owner": feature.owner or spec.owner,
                "tags": list(dict.fromkeys([*feature.tags, *spec.tags])),
                "table_description": spec.description,
                "as_of": latest, **_stats(frame, fname), "freshness": freshness,
                "lineage": {"source": spec.source, "source_kind": source.kind,
                            "source_table": source.table, "table": name, **usage},
            }
            if table is not None and name != table:
                continue
            if model is not None and entry["id"] not in wanted_ids:
                continue
            if not matches(entry, search):
                continue
            features_out.append(entry)
    if model is not None:
        versions = chosen
    return {"tables": tables_out, "features": features_out, "models": versions,
            "filters": {"table": table, "search": search, "model": model, "version": version},
            "total": total}

