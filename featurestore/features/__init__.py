"""Windowed customer feature tables: definitions as data, incremental materialization."""

from .definitions import Feature, FeatureRepo, Filter, load_feature_repo
from .materialize import MaterializeReport, materialize, materialize_locked

__all__ = ["Feature", "FeatureRepo", "Filter", "MaterializeReport", "load_feature_repo",
           "materialize", "materialize_locked"]
