"""What data scientists pull from the store to train models.

* :func:`build_training_set`: point-in-time (customer, as_of) rows with features and the
  ``purchased_next_30d`` label (SPEC §3, §7);
* :func:`export_xgboost`: time-split CSVs for SageMaker's built-in XGBoost;
* :func:`export_fm`: recordIO-protobuf for SageMaker factorization machines (retail source);
* :func:`export_purchases`: the purchases the implicit-feedback recommenders train on;
* :mod:`featurestore.training.recordio`: the recordIO-protobuf writer and reader.
"""

from __future__ import annotations

from .fm import build_fm_matrix, export_fm, export_fm_classifier
from .purchases import export_purchases, read_purchases_export
from .pointintime import LABEL, TrainingSetResult, build_training_set, latest_data_date
from .recordio import read_recordio_protobuf, write_recordio_protobuf
from .xgboost_export import ExportResult, export_xgboost

__all__ = ["build_training_set", "TrainingSetResult", "export_xgboost", "ExportResult",
           "export_fm", "build_fm_matrix", "write_recordio_protobuf", "read_recordio_protobuf",
           "latest_data_date", "LABEL", "export_purchases", "read_purchases_export",
           "export_fm_classifier"]
