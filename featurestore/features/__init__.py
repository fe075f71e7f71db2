"""The web-log feature engine: definitions as data, daily aggregates, rolling state, snapshots.

The driver that brings every table of a repository up to date (across sources) is
:func:`featurestore.materialization.materialize`.
"""

from .definitions import Feature, FeatureRepo, Filter, load_feature_repo
from .materialize import MaterializeReport, materialize_weblog

__all__ = ["Feature", "FeatureRepo", "Filter", "MaterializeReport", "load_feature_repo",
           "materialize_weblog"]
