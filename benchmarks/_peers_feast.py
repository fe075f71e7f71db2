"""The Feast side of benchmarks/peers.py, run by the Python of Feast's own virtualenv.

    <feast-venv>/bin/python _peers_feast.py setup REPO FEATURES.parquet LATEST_DAY [REDIS_URL]
    <feast-venv>/bin/python _peers_feast.py historical REPO ENTITIES.parquet

``setup`` writes a Feast repository (local provider, Dask offline store, SQLite online store)
with one feature view over ``FEATURES.parquet`` (every customer_features partition, with an
``event_timestamp``), applies it and materializes the latest day into the online store (with
``REDIS_URL``: Feast's Redis online store, ``feast[redis]``, instead of SQLite; the rows written
and the rows per second are printed).
``historical`` times ``get_historical_features(...).to_df()`` for the entity rows (customer_id,
event_timestamp and the label, which Feast passes through) and prints one JSON line.
Imports only Feast's environment (never featurestore).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path

import pandas as pd

YAML = """project: peers
registry: {repo}/registry.db
provider: local
offline_store:
  type: dask
online_store:
{online}
entity_key_serialization_version: 3
"""
SQLITE = """  type: sqlite
  path: {repo}/online.db"""
REDIS = '  type: redis\n  connection_string: "{host}:{port},db={db}"'


def online_yaml(repo: Path, redis_url: str | None) -> str:
    """The ``online_store`` block: SQLite in the repository, or the Redis at ``redis_url``."""
    if not redis_url:
        return SQLITE.format(repo=repo)
    from urllib.parse import urlparse

    u = urlparse(redis_url)
    return REDIS.format(host=u.hostname, port=u.port or 6379, db=(u.path or "/0").strip("/") or 0)

DEFINITIONS = '''from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource
from feast.types import Float64, Int64

customer = Entity(name="customer", join_keys=["customer_id"])
source = FileSource(path={path!r}, timestamp_field="event_timestamp")
customer_features = FeatureView(
    name="customer_features", entities=[customer], ttl=timedelta(days=1), online=True,
    source=source,
    schema=[{fields}],
)
'''


def setup(repo: Path, features: Path, latest: str, redis_url: str | None = None) -> None:
    from feast import FeatureStore

    repo.mkdir(parents=True, exist_ok=True)
    frame = pd.read_parquet(features)
    fields = ", ".join(
        f'Field(name="{c}", dtype={"Float64" if frame[c].dtype.kind == "f" else "Int64"})'
        for c in frame.columns if c not in ("customer_id", "event_timestamp"))
    (repo / "feature_store.yaml").write_text(YAML.format(repo=repo,
                                                     online=online_yaml(repo, redis_url)))
    (repo / "definitions.py").write_text(DEFINITIONS.format(path=str(features), fields=fields))
    sys.path.insert(0, str(repo))
    import definitions  # noqa: E402

    store = FeatureStore(repo_path=str(repo))
    store.apply([definitions.customer, definitions.customer_features])
    day = dt.datetime.fromisoformat(latest).replace(tzinfo=dt.timezone.utc)
    start = time.perf_counter()
    store.materialize(day - dt.timedelta(hours=1), day + dt.timedelta(hours=1))
    seconds = time.perf_counter() - start
    stamps = pd.to_datetime(frame["event_timestamp"], utc=True)
    rows = int(((stamps >= day - dt.timedelta(hours=1)) & (stamps < day + dt.timedelta(hours=1)))
               .sum())
    print(json.dumps({"materialize_s": seconds, "rows": rows, "rows_per_s": rows / seconds,
                      "features": [f"customer_features:{c}" for c in frame.columns
                                   if c not in ("customer_id", "event_timestamp")]}))


def historical(repo: Path, entities_path: Path) -> None:
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(repo))
    entities = pd.read_parquet(entities_path)
    view = store.get_feature_view("customer_features")
    refs = [f"customer_features:{f.name}" for f in view.features]
    store.get_historical_features(entity_df=entities.head(1000), features=refs).to_df()  # warm
    start = time.perf_counter()
    out = store.get_historical_features(entity_df=entities, features=refs).to_df()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rows": len(out),
                      "checksum": float(out["page_views_7d"].fillna(0).sum()),
                      "positives": int(out["purchased_next_30d"].sum())}))


if __name__ == "__main__":
    command, repo_dir, *rest = sys.argv[1:]
    if command == "setup":
        setup(Path(repo_dir), Path(rest[0]), rest[1], rest[2] if len(rest) > 2 else None)
    else:
        historical(Path(repo_dir), Path(rest[0]))
