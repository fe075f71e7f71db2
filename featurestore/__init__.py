"""featurestore: a Dask-based feature store for customer behaviour data.

The library: sources, ingestion, storage and (as they land) feature tables, training sets and
retraining. The HTTP API lives in the separate ``api`` package, which depends on this one.
"""

from ._exceptions import (
    ConfigError,
    FeatureStoreError,
    IncompleteDeliveryError,
    InvalidInputError,
    ModelUnavailableError,
    NotFoundError,
    QueueFullError,
    RegistryError,
    RejectedFileError,
    RequestTooLargeError,
    StoreError,
    StoreLockedError,
    StoreUnavailableError,
    TrainingError,
    clip,
)
from ._lazy import lazy_getattr
# The rest is imported on first use (PEP 562): ``featurestore --help`` and every usage error
# answer before Dask, pandas and pyarrow are loaded (docs/performance.md, "CLI start-up").
_LAZY = {
    "FeatureStore": ".feature_store",
    "IngestResult": ".feature_store",
    "generate_weblog": ".generate",
    "IngestReport": ".sources.weblog.ingest",
    "ingest_weblog": ".sources.weblog.ingest",
    "Settings": ".settings",
    "load_settings": ".settings",
    "Store": ".storage",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "FeatureStore",
    "FeatureStoreError",
    "IncompleteDeliveryError",
    "IngestReport",
    "IngestResult",
    "InvalidInputError",
    "ModelUnavailableError",
    "NotFoundError",
    "QueueFullError",
    "RegistryError",
    "RejectedFileError",
    "RequestTooLargeError",
    "Settings",
    "Store",
    "StoreError",
    "StoreLockedError",
    "StoreUnavailableError",
    "TrainingError",
    "clip",
    "generate_weblog",
    "ingest_weblog",
    "load_settings",
]
