"""One exception tree for the whole library.

Every error a user can hit derives from :class:`FeatureStoreError`, so callers can catch one
class. Messages say what went wrong *and* what to do about it.
"""

from __future__ import annotations

__all__ = [
    "FeatureStoreError",
    "ConfigError",
    "StoreLockedError",
    "RejectedFileError",
    "NotFoundError",
    "TrainingError",
]


class FeatureStoreError(Exception):
    """Base class of every error raised by :mod:`featurestore`."""


class ConfigError(FeatureStoreError):
    """A setting, flag or feature-repository entry is invalid; the message names the key."""


class StoreLockedError(FeatureStoreError):
    """Another run holds the store's writer lock (one writer at a time per store)."""


class RejectedFileError(FeatureStoreError):
    """A raw file was rejected whole (corrupt gzip, manifest mismatch...); nothing of it landed."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class NotFoundError(FeatureStoreError):
    """A table, as-of date, customer or feature does not exist in the store."""


class TrainingError(FeatureStoreError):
    """A training set, export or retraining job could not be built or run."""
