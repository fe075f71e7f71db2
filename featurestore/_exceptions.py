"""One exception tree for the whole library (httpx style).

Every error a user can hit derives from :class:`FeatureStoreError`, so callers can catch one
class. Messages say what went wrong *and* what to do about it. Each class carries the HTTP
status the API answers with and the exit code the CLI ends with, so no entry point maps errors
by hand:

* exit code 2: the user asked for something that cannot work (usage, settings, a missing path);
* exit code 1: the request was fine but the run failed (a rejected file, a locked store).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "OnlineStoreUnavailableError",
    "OnlineStoreBehindError",
    "FeatureStoreError",
    "ConfigError",
    "StoreError",
    "AggregationOverflowError",
    "StoreLockedError",
    "StoreUnavailableError",
    "RejectedFileError",
    "IncompleteDeliveryError",
    "NotFoundError",
    "RequestTooLargeError",
    "QueueFullError",
    "TrainingError",
    "RegistryError",
    "ModelUnavailableError",
]


class FeatureStoreError(Exception):
    """Base class of every error raised by :mod:`featurestore`."""

    #: HTTP status the API answers with for this error.
    http_status: ClassVar[int] = 400
    #: Process exit code of the CLI for this error.
    exit_code: ClassVar[int] = 1


class ConfigError(FeatureStoreError):
    """A setting, flag or feature-repository entry is invalid; the message names the key."""

    http_status = 400
    exit_code = 2


class AggregationOverflowError(FeatureStoreError):
    """An int64 ``sum`` feature's value does not fit in int64 (SPEC §3a: a clear error, never
    a wrapped number); the message names the feature's column state and customer."""

    http_status = 500
    exit_code = 1


class StoreError(FeatureStoreError):
    """The store cannot be used as it is (a file where its folder should be, read-only, a
    missing bucket); raised before any work starts."""

    http_status = 503
    exit_code = 2


class StoreUnavailableError(StoreError):
    """The object store kept failing (errors, timeouts, dropped connections) after the
    client's retries, mid-run. What was published stays whole; re-running finishes the rest."""

    http_status = 503
    exit_code = 1


class StoreLockedError(FeatureStoreError):
    """Another live run holds the store's writer lease (one writer at a time per store)."""

    http_status = 409
    exit_code = 1


class RejectedFileError(FeatureStoreError):
    """A raw file was rejected whole (corrupt gzip, manifest mismatch...); nothing of it landed."""

    http_status = 422
    exit_code = 1

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class IncompleteDeliveryError(FeatureStoreError):
    """A drop is missing files its manifest names, or holds placeholders: the day is marked
    incomplete and the run exits non-zero until the files arrive."""

    http_status = 409
    exit_code = 1


class NotFoundError(FeatureStoreError):
    """A table, as-of date, customer or feature does not exist in the store."""

    http_status = 404
    exit_code = 2


class RequestTooLargeError(FeatureStoreError):
    """A request (body, batch) is larger than the configured bound."""

    http_status = 413
    exit_code = 2


class QueueFullError(FeatureStoreError):
    """A bounded queue (retrain jobs) is full; retry later."""

    http_status = 429
    exit_code = 1


class TrainingError(FeatureStoreError):
    """A training set, export or retraining job could not be built or run."""

    http_status = 422
    exit_code = 1


class RegistryError(FeatureStoreError):
    """A model-registry record is damaged (unreadable or invalid); it is reported and skipped.

    ``reason`` is the short cause alone (``"metrics.json is empty"``), as listings show it.
    """

    http_status = 500
    exit_code = 1

    def __init__(self, message: str, reason: str | None = None) -> None:
        self.reason = reason or message
        super().__init__(message)


class ModelUnavailableError(FeatureStoreError):
    """No usable production version of a model yet (nothing promoted, or its record is
    damaged); predictions and recommendations wait for one."""

    http_status = 503
    exit_code = 1


class OnlineStoreUnavailableError(FeatureStoreError):
    """The shared online store (Redis) cannot answer now: unreachable, loading, or emptied
    since its last push. The API answers 503 and recovers by itself once it answers again."""

    http_status = 503
    exit_code = 1


class OnlineStoreBehindError(FeatureStoreError):
    """A run committed to the offline store but could not push to the online store: the
    offline commit stands; ``featurestore online push`` (or the next run) catches up."""

    http_status = 503
    exit_code = 1
