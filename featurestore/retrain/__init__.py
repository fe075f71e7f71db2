"""Retraining: jobs (local XGBoost / FM or SageMaker), a model registry in the store, alerts.

``submit`` queues a job record under ``<store>/_jobs/`` and runs it in a small in-process
thread pool; ``run_job`` runs one synchronously (CLI ``--wait``, ``run-daily``).
"""

from __future__ import annotations

from .._lazy import lazy_getattr
from .models import MODELS, ModelSpec, model_spec

_LAZY = {name: ".jobs" for name in ("BACKENDS", "get_job", "list_jobs", "new_job", "run_job",
                                    "submit", "wait_for")}

__all__ = ["BACKENDS", "MODELS", "ModelSpec", "model_spec", "new_job", "run_job", "submit",
           "get_job", "list_jobs", "wait_for"]


__getattr__ = lazy_getattr(__name__, _LAZY)
