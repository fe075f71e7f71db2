"""Model registry inside the store.

Layout::

    <store>/_models/<name>/<version>/model.json|model.npz   (local backend; the model itself)
                                    metrics.json             (held-out metrics)
                                    training_set.json        (export URL + its metadata.json)
                                    features.json            (feature list, in model order)
                                    version.json             (job id, backend, params, artifact)
    <store>/_models/<name>/production.json                   ({"version", "promoted_at", ...})

Versions are ``v0001``, ``v0002``... in creation order. A version is written file by file with
``version.json`` last, so a half-written version (crash) is ignored by :func:`list_versions`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from .._exceptions import NotFoundError
from ..storage import Store

__all__ = ["register_version", "list_versions", "get_version", "production_version",
           "promote", "list_models", "model_summary"]

ROOT = "_models"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _version_names(store: Store, name: str) -> list[str]:
    return [v for v in store.listdir(ROOT, name) if v.startswith("v") and v[1:].isdigit()]


def register_version(store: Store, name: str, *, metrics: dict[str, Any],
                     model_bytes: bytes | None, model_filename: str | None,
                     training_set: dict[str, Any], features: list[str],
                     info: dict[str, Any]) -> str:
    """Write a new version and return its name (``vNNNN``).

    The number is claimed first (``vNNNN/.claim``, created only if absent), so two jobs of one
    model finishing together get two versions instead of writing into the same one.
    """
    claim = json.dumps({"job_id": info.get("job_id"), "at": _now(),
                        "nonce": uuid.uuid4().hex}).encode()
    number = 1 + max((int(v[1:]) for v in _version_names(store, name)), default=0)
    while not store.create_new(claim, ROOT, name, f"v{number:04d}", ".claim"):
        number += 1
    version = f"v{number:04d}"
    if model_bytes is not None and model_filename:
        store.write_bytes(model_bytes, ROOT, name, version, model_filename)
    store.write_json(metrics, ROOT, name, version, "metrics.json")
    store.write_json(training_set, ROOT, name, version, "training_set.json")
    store.write_json(features, ROOT, name, version, "features.json")
    model_uri = store.uri(ROOT, name, version, model_filename) if model_bytes else None
    store.write_json({**info, "model": name, "version": version, "created_at": _now(),
                      "model_file": model_uri}, ROOT, name, version, "version.json")
    return version


def get_version(store: Store, name: str, version: str) -> dict[str, Any]:
    try:
        record = store.read_json(ROOT, name, version, "version.json")
    except FileNotFoundError:
        raise NotFoundError(f"model {name!r} has no version {version!r}; "
                            f"`featurestore models {name}` lists them") from None
    record["metrics"] = store.read_json(ROOT, name, version, "metrics.json")
    record["training_set"] = store.read_json(ROOT, name, version, "training_set.json")
    record["features"] = store.read_json(ROOT, name, version, "features.json")
    return record


def list_versions(store: Store, name: str) -> list[dict[str, Any]]:
    out = []
    for version in _version_names(store, name):
        try:
            out.append(get_version(store, name, version))
        except (NotFoundError, FileNotFoundError):
            continue  # incomplete version (crashed mid-write)
    return out


def production_version(store: Store, name: str) -> str | None:
    try:
        return store.read_json(ROOT, name, "production.json")["version"]
    except FileNotFoundError:
        return None


def promote(store: Store, name: str, version: str, reason: str = "manual") -> dict[str, Any]:
    get_version(store, name, version)  # raises NotFoundError for an unknown version
    record = {"version": version, "promoted_at": _now(), "reason": reason,
              "previous": production_version(store, name)}
    store.write_json(record, ROOT, name, "production.json")
    return record


def list_models(store: Store) -> list[str]:
    return [n for n in store.listdir(ROOT) if _version_names(store, n)]


def model_summary(store: Store, name: str) -> dict[str, Any]:
    """``{"name", "production", "versions": [{version, metrics, production, ...}]}``."""
    versions = list_versions(store, name)
    if not versions:
        raise NotFoundError(f"no model named {name!r} in the registry of {store.url}; "
                            "train one with `featurestore retrain --model ...`")
    prod = production_version(store, name)
    return {
        "name": name,
        "production": prod,
        "versions": [{"version": v["version"], "created_at": v["created_at"],
                      "job_id": v.get("job_id"), "backend": v.get("backend"),
                      "metrics": v["metrics"], "artifact": v.get("artifact"),
                      "model_file": v.get("model_file"),
                      "training_set": v["training_set"].get("url"),
                      "production": v["version"] == prod} for v in versions],
    }
