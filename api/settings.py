"""API settings: the library's :class:`featurestore.Settings` (``FEATURESTORE_*`` env)."""

from __future__ import annotations

from functools import lru_cache

from featurestore.settings import Settings, load_settings

__all__ = ["Settings", "get_settings"]


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings; tests override the dependency instead of the environment."""
    return load_settings()
