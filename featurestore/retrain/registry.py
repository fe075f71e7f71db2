"""Model registry inside the store.

Layout::

    <store>/_models/<name>/<version>/model.json|model.npz   (local backend; the model itself)
                                    metrics.json             (held-out metrics)
                                    training_set.json        (export URL + its metadata.json)
                                    features.json            (feature list, in model order)
                                    version.json             (job id, backend, params, artifact,
                                                              model_sha256 of the model file)
    <store>/_models/<name>/production.json                   ({"version", "promoted_at", ...})

Versions are ``v0001``, ``v0002``... in creation order. Every file is published atomically
(:meth:`Store.write_bytes`) and ``version.json`` is written last, so a half-written version
(crash) is ignored by :func:`list_versions`.

Records are validated on read (JSON, required keys and types, the model file's sha256). A
damaged version is listed with ``"damaged": "<reason>"`` and is never promoted nor used as the
comparison baseline; a damaged ``production.json`` (or one naming a missing or damaged version)
reads as "no valid production" with ``production_damaged`` saying why, so the next retrain can
promote a good version and rewrite the pointer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Any

from .. import layout
from .._exceptions import NotFoundError, RegistryError, clip
from ..storage import Store
from . import quality

__all__ = ["register_version", "list_versions", "get_version", "production_version",
           "production_state", "promote", "list_models", "model_summary", "list_summaries",
           "damage_report", "load_model_bytes", "load_file_bytes"]

ROOT = layout.MODELS

# Required keys of each version record and their types (validated on every read).
_VERSION_KEYS: dict[str, type] = {"version": str, "created_at": str}

# sha256 of model files already checked, by (path, size, mtime/etag): listing the registry must
# not download every model on every request.
_checked: dict[tuple[Any, ...], str] = {}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _is_version(name: Any) -> bool:
    return isinstance(name, str) and name.startswith("v") and name[1:].isdigit()


def _version_names(store: Store, name: str) -> list[str]:
    return [v for v in store.listdir(ROOT, name) if _is_version(v)]


def _pointer(store: Store, name: str) -> str | None:
    """The version production.json names, valid or not (None when absent or unreadable)."""
    try:
        return _read_record(store, (ROOT, name, "production.json"), dict).get("version")
    except (FileNotFoundError, RegistryError):
        return None


def register_version(store: Store, name: str, *, metrics: dict[str, Any],
                     model_bytes: bytes | None, model_filename: str | None,
                     training_set: dict[str, Any], features: list[str],
                     info: dict[str, Any], files: dict[str, bytes] | None = None) -> str:
    """Write a new version and return its name (``vNNNN``).

    The number is claimed first (``vNNNN/.claim``, created only if absent), so two jobs of one
    model finishing together get two versions instead of writing into the same one. Each file
    is published atomically and ``version.json`` (the completion marker, with the model file's
    sha256) comes last.

    Args:
        store: the store holding the registry.
        name: model name (``purchase-xgboost``...).
        metrics: held-out metrics, name -> number.
        model_bytes: the model file's content (None when the model lives elsewhere, SageMaker).
        model_filename: its file name in the version folder (``model.json`` / ``model.npz``).
        training_set: ``{"url", "metadata"}`` of the export it was trained on.
        features: feature names in model order.
        info: job id, backend, params, artifact... merged into ``version.json``.
        files: more files of the version (``index.npz`` of a recommender), name -> content;
            their sha256 go into ``version.json`` (``files_sha256``).

    Returns:
        The new version's name.
    """
    claim = json.dumps({"job_id": info.get("job_id"), "at": _now(),
                        "nonce": uuid.uuid4().hex}).encode()
    # Past the production pointer too: a deleted version's number is never reused, so a stale
    # production.json cannot silently name a new, unpromoted model.
    taken = [int(v[1:]) for v in [*_version_names(store, name), _pointer(store, name)]
             if _is_version(v)]
    number = 1 + max(taken, default=0)
    while not store.create_new(claim, ROOT, name, f"v{number:04d}", ".claim"):
        number += 1
    version = f"v{number:04d}"
    has_model = model_bytes is not None and bool(model_filename)
    if has_model:
        store.write_bytes(model_bytes, ROOT, name, version, model_filename)
    store.write_json(metrics, ROOT, name, version, "metrics.json")
    store.write_json(training_set, ROOT, name, version, "training_set.json")
    store.write_json(features, ROOT, name, version, "features.json")
    for filename, data in (files or {}).items():
        store.write_bytes(data, ROOT, name, version, filename)
    model_uri = store.uri(ROOT, name, version, model_filename) if has_model else None
    store.write_json({**info, "model": name, "version": version, "created_at": _now(),
                      "model_file": model_uri,
                      "model_sha256": hashlib.sha256(model_bytes).hexdigest() if has_model
                      else None,
                      "files_sha256": {f: hashlib.sha256(d).hexdigest()
                                       for f, d in (files or {}).items()}},
                     ROOT, name, version, "version.json")
    return version


def _damaged(name: str, version: str, reason: str) -> RegistryError:
    return RegistryError(f"model {name!r} version {version}: {reason}; it is skipped (retrain "
                         f"to replace it, or promote another version with `featurestore models "
                         f"{name} --promote VERSION`)", reason=reason)


def _read_record(store: Store, parts: tuple[str, ...], expect: type) -> Any:
    """Parse one JSON record; :class:`RegistryError` (with ``.reason``) when it is damaged.

    A missing file raises ``FileNotFoundError`` so callers can tell "absent" from "damaged".
    """
    filename = parts[-1]
    with store.fs.open(store.path(*parts), "rb") as f:
        raw = f.read()
    if not raw.strip():
        raise RegistryError(f"{filename} is empty")  # message = reason: callers add context
    try:
        value = json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        raise RegistryError(f"{filename} is not valid JSON") from None
    if not isinstance(value, expect):
        kind = "a JSON object" if expect is dict else "a JSON list"
        raise RegistryError(f"{filename} is not {kind}")
    return value


def _problem(record: dict[str, Any], version: str) -> str | None:
    """What is wrong with a parsed ``version.json``, or None."""
    for key, kind in _VERSION_KEYS.items():
        if not isinstance(record.get(key), kind):
            return f"version.json lacks {key!r}"
    if record["version"] != version:
        return f"version.json names {record['version']}, not {version}"
    return None


def _metrics_problem(metrics: dict[str, Any]) -> str | None:
    for key, value in metrics.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"metrics.json has a non-numeric value for {key!r}"
    return None


def _model_sha256(store: Store, path: str) -> str:
    info = store.fs.info(path)
    key = (path, info.get("size"), info.get("mtime") or info.get("LastModified"),
           info.get("ETag"))
    if key not in _checked:
        if len(_checked) > 4096:
            _checked.clear()
        with store.fs.open(path, "rb") as f:
            _checked[key] = hashlib.file_digest(f, "sha256").hexdigest()
    return _checked[key]


def _model_filename(record: dict[str, Any]) -> str | None:
    uri = record.get("model_file")
    return uri.rsplit("/", 1)[-1] if isinstance(uri, str) and uri else None


def get_version(store: Store, name: str, version: str) -> dict[str, Any]:
    """One version's ``version.json`` with its ``metrics``, ``training_set`` and ``features``.

    Args:
        store: the store holding the registry.
        name: model name.
        version: ``vNNNN``.

    Returns:
        The validated record.

    Raises:
        NotFoundError: no such version (or it has no ``version.json`` yet: half written).
        RegistryError: a record of the version is damaged; ``.reason`` says which and how.
    """
    if not _is_version(version):
        raise NotFoundError(f"model {clip(name)} has no version {clip(version)}; "
                            f"`featurestore models {name}` lists them")
    try:
        record = _read_record(store, (ROOT, name, version, "version.json"), dict)
    except FileNotFoundError:
        raise NotFoundError(f"model {clip(name)} has no version {clip(version)}; "
                            f"`featurestore models {name}` lists them") from None
    except RegistryError as exc:
        raise _damaged(name, version, exc.reason) from None
    reason = _problem(record, version)
    for filename, kind in (("metrics.json", dict), ("training_set.json", dict),
                           ("features.json", list)):
        if reason:
            break
        try:
            record[filename[:-5]] = _read_record(store, (ROOT, name, version, filename), kind)
        except FileNotFoundError:
            reason = f"{filename} is missing"
        except RegistryError as exc:
            reason = exc.reason
    reason = reason or _metrics_problem(record["metrics"])
    model_file = _model_filename(record)
    if not reason and model_file and record.get("model_sha256"):  # absent before checksums
        try:
            if _model_sha256(store, store.path(ROOT, name, version, model_file)) != \
                    record["model_sha256"]:
                reason = f"{model_file} does not match the sha256 in version.json"
        except FileNotFoundError:
            reason = f"{model_file} is missing"
    if reason:
        raise _damaged(name, version, reason)
    return record


def load_model_bytes(store: Store, name: str, version: str) -> bytes:
    """The model file of a version, checked against the sha256 recorded at registration.

    Args:
        store: the store holding the registry.
        name: model name.
        version: ``vNNNN``.

    Returns:
        The model file's bytes (XGBoost JSON or FM ``.npz``).

    Raises:
        NotFoundError: no such version, or its model is not in the store (SageMaker artifact).
        RegistryError: the version or its model file is damaged.
    """
    record = get_version(store, name, version)
    model_file = _model_filename(record)
    if not model_file:
        raise NotFoundError(f"model {name!r} version {version} keeps no model file in the "
                            f"store; its artifact is {record.get('artifact')}")
    try:
        data = store.fs.cat_file(store.path(ROOT, name, version, model_file))
    except FileNotFoundError:
        raise _damaged(name, version, f"{model_file} is missing") from None
    # Checked again on the bytes read: the file may have changed since the listing.
    expected = record.get("model_sha256")
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise _damaged(name, version, f"{model_file} does not match the sha256 in version.json")
    return data


def load_file_bytes(store: Store, name: str, version: str, filename: str) -> bytes:
    """A further file of a version (``files`` of :func:`register_version`), checked against
    its recorded sha256.

    Args:
        store: the store holding the registry.
        name: model name.
        version: ``vNNNN``.
        filename: the file's name in the version folder.

    Returns:
        Its bytes.

    Raises:
        NotFoundError: the version was registered without that file.
        RegistryError: the file is missing or does not match its sha256.
    """
    expected = (get_version(store, name, version).get("files_sha256") or {}).get(filename)
    if not isinstance(expected, str):
        raise NotFoundError(f"model {name!r} version {version} has no {filename}; retrain it "
                            "with this release to get one")
    try:
        data = store.fs.cat_file(store.path(ROOT, name, version, filename))
    except FileNotFoundError:
        raise _damaged(name, version, f"{filename} is missing") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise _damaged(name, version, f"{filename} does not match the sha256 in version.json")
    return data


def list_versions(store: Store, name: str) -> list[dict[str, Any]]:
    """Every complete version, oldest first; a damaged one is ``{"version", "damaged": why}``.

    Args:
        store: the store holding the registry.
        name: model name.

    Returns:
        Validated records with ``"damaged": None``, or the damaged versions' stubs.
    """
    out = []
    for version in _version_names(store, name):
        try:
            out.append({**get_version(store, name, version), "damaged": None})
        except NotFoundError:
            continue  # incomplete version (crashed mid-write, or a job still writing it)
        except RegistryError as exc:
            out.append({"version": version, "damaged": exc.reason})
    return out


def _production_state(store: Store, name: str, versions: dict[str, dict[str, Any]] | None
                      ) -> tuple[str | None, str | None]:
    try:
        record = _read_record(store, (ROOT, name, "production.json"), dict)
    except FileNotFoundError:
        return None, None
    except RegistryError as exc:
        return None, exc.reason
    version = record.get("version")
    if not _is_version(version):
        return None, "production.json names no version"
    if versions is None:
        try:
            get_version(store, name, version)
            return version, None
        except NotFoundError:
            pass
        except RegistryError as exc:
            return None, f"production version {version} is damaged: {exc.reason}"
    elif version in versions:
        damaged = versions[version]["damaged"]
        return (None, f"production version {version} is damaged: {damaged}") if damaged \
            else (version, None)
    return None, f"production.json points at {version}, which does not exist"


def production_state(store: Store, name: str) -> tuple[str | None, str | None]:
    """The valid production version and, when ``production.json`` cannot be used, why.

    Args:
        store: the store holding the registry.
        name: model name.

    Returns:
        ``(version, None)``; ``(None, None)`` when nothing was promoted yet; ``(None, reason)``
        when production.json is empty, corrupt or names a missing or damaged version.
    """
    return _production_state(store, name, None)


def production_version(store: Store, name: str) -> str | None:
    """The production version, or None (none promoted yet, or its record is damaged)."""
    return production_state(store, name)[0]


def promote(store: Store, name: str, version: str, reason: str = "manual") -> dict[str, Any]:
    """Point ``production.json`` at ``version`` (rewritten atomically) and return the record.

    Raises:
        NotFoundError: unknown version.
        RegistryError: the version is damaged (a damaged version is never promoted).
    """
    get_version(store, name, version)
    previous, damaged = production_state(store, name)
    record = {"version": version, "promoted_at": _now(), "reason": reason,
              "previous": previous}
    if damaged:
        record["replaced_damaged"] = damaged
    store.write_json(record, ROOT, name, "production.json")
    return record


def list_models(store: Store) -> list[str]:
    return [n for n in store.listdir(ROOT) if _version_names(store, n)]


def damage_report(store: Store, name: str) -> dict[str, Any]:
    """What is damaged in one model's registry (for the alert a retrain sends).

    Returns:
        ``{"production": valid version or None, "production_damaged": reason or None,
        "damaged_versions": {version: reason}}``.
    """
    versions = {v["version"]: v for v in list_versions(store, name)}
    production, damaged = _production_state(store, name, versions)
    return {"production": production, "production_damaged": damaged,
            "damaged_versions": {v: r["damaged"] for v, r in versions.items() if r["damaged"]}}


def _by_value(values: Any) -> dict[str, float] | None:
    """Importances largest first (version.json is written with sorted keys)."""
    if not isinstance(values, dict):
        return None
    return dict(sorted(values.items(), key=lambda kv: -float(kv[1])))


def _version_summary(v: dict[str, Any], production: str | None) -> dict[str, Any]:
    if v["damaged"]:
        return {"version": v["version"], "created_at": None, "job_id": None, "backend": None,
                "metrics": {}, "artifact": None, "model_file": None, "training_set": None,
                "production": False, "damaged": v["damaged"], "feature_importance": None,
                "pr_curve": None, "intervals_95": None, "split_policy": None, "holdout": None}
    details = v.get("details") if isinstance(v.get("details"), dict) else {}
    bootstrap = details.get("bootstrap") if isinstance(details.get("bootstrap"), dict) else None
    return {"version": v["version"], "created_at": v["created_at"],
            "job_id": v.get("job_id"), "backend": v.get("backend"),
            "metrics": v["metrics"], "artifact": v.get("artifact"),
            "model_file": v.get("model_file"),
            "training_set": v["training_set"].get("url"),
            "production": v["version"] == production, "damaged": None,
            # what the model looks at and how sure its metrics are (None before they existed)
            "feature_importance": _by_value(details.get("feature_importance")),
            "pr_curve": details.get("pr_curve"),
            "intervals_95": quality.intervals(bootstrap, 0.95) if bootstrap else None,
            "split_policy": (v["training_set"].get("metadata") or {}).get("split_policy"),
            # a recommender's time-holdout table: model vs baselines, both modes (#29)
            "holdout": details.get("holdout") if isinstance(details.get("holdout"), dict)
            else None}


def model_summary(store: Store, name: str) -> dict[str, Any]:
    """``{"name", "production", "production_damaged", "versions": [{version, metrics,
    production, damaged, ...}]}``; damaged records are listed with their reason, never raised.

    Raises:
        NotFoundError: the model has no complete version.
    """
    versions = list_versions(store, name)
    if not versions:
        raise NotFoundError(f"no model named {clip(name)} in the registry of {store.url}; "
                            "train one with `featurestore retrain --model ...`")
    prod, damaged = _production_state(store, name, {v["version"]: v for v in versions})
    return {"name": name, "production": prod, "production_damaged": damaged,
            "versions": [_version_summary(v, prod) for v in versions]}


def list_summaries(store: Store) -> list[dict[str, Any]]:
    """:func:`model_summary` of every model that has a complete version.

    A model whose only version folder is half written (a crash, or a first job still
    writing) is left out instead of failing the whole listing.
    """
    out = []
    for name in list_models(store):
        try:
            out.append(model_summary(store, name))
        except NotFoundError:
            continue
    return out
