"""The web-log feature engine: definitions as data, daily aggregates, rolling state, snapshots.

The driver that brings every table of a repository up to date (across sources) is
:func:`featurestore.materialization.materialize`.
"""

from .definitions import Feature, FeatureRepo, Filter, load_feature_repo

__all__ = ["Feature", "FeatureRepo", "Filter", "MaterializeReport", "load_feature_repo",
           "materialize_weblog"]


def __getattr__(name: str):
    # the engine (Dask) on first use (PEP 562): reading definitions needs none of it
    if name in ("MaterializeReport", "materialize_weblog"):
        from . import materialize

        return getattr(materialize, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
