"""Retraining: jobs (local XGBoost / FM or SageMaker), a model registry in the store, alerts.

``submit`` queues a job record under ``<store>/_jobs/`` and runs it in a small in-process
thread pool; ``run_job`` runs one synchronously (CLI ``--wait``, ``run-daily``).
"""

from __future__ import annotations

from .jobs import BACKENDS, get_job, list_jobs, new_job, run_job, submit, wait_for
from .models import MODELS, ModelSpec, model_spec

__all__ = ["BACKENDS", "MODELS", "ModelSpec", "model_spec", "new_job", "run_job", "submit",
           "get_job", "list_jobs", "wait_for"]
