"""featurestore: a Dask-based feature store for customer behaviour data.

The library: sources, ingestion, storage and (as they land) feature tables, training sets and
retraining. The HTTP API lives in the separate ``api`` package, which depends on this one.
"""

from ._exceptions import (
    ConfigError,
    FeatureStoreError,
    IncompleteDeliveryError,
    NotFoundError,
    QueueFullError,
    RegistryError,
    RejectedFileError,
    RequestTooLargeError,
    StoreError,
    StoreLockedError,
    StoreUnavailableError,
    TrainingError,
)
from .feature_store import FeatureStore, IngestResult
from .generate import generate_weblog
from .ingest import IngestReport, ingest_weblog
from .settings import Settings, load_settings
from .storage import Store

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "FeatureStore",
    "FeatureStoreError",
    "IncompleteDeliveryError",
    "IngestReport",
    "IngestResult",
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
    "generate_weblog",
    "ingest_weblog",
    "load_settings",
]
