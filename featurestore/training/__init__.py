"""What data scientists pull from the store to train models.

* :func:`build_training_set`: point-in-time (customer, as_of) rows with features and the
  ``purchased_next_30d`` label (SPEC §3, §7);
* :func:`export_xgboost`: time-split CSVs for SageMaker's built-in XGBoost;
* :func:`export_fm`: recordIO-protobuf for SageMaker factorization machines (retail source);
* :func:`export_purchases`: the purchases the implicit-feedback recommenders train on;
* :mod:`featurestore.training.recordio`: the recordIO-protobuf writer and reader.
"""

from __future__ import annotations

from .._lazy import lazy_getattr

_LAZY = {
    "build_fm_matrix": ".fm", "export_fm": ".fm", "export_fm_classifier": ".fm",
    "export_purchases": ".purchases", "read_purchases_export": ".purchases",
    "LABEL": ".pointintime", "TrainingSetResult": ".pointintime",
    "build_training_set": ".pointintime", "latest_data_date": ".pointintime",
    "read_recordio_protobuf": ".recordio", "write_recordio_protobuf": ".recordio",
    "ExportResult": ".xgboost_export", "export_xgboost": ".xgboost_export",
}

__all__ = ["build_training_set", "TrainingSetResult", "export_xgboost", "ExportResult",
           "export_fm", "build_fm_matrix", "write_recordio_protobuf", "read_recordio_protobuf",
           "latest_data_date", "LABEL", "export_purchases", "read_purchases_export",
           "export_fm_classifier"]


__getattr__ = lazy_getattr(__name__, _LAZY)
