"""Retraining: jobs (local XGBoost / FM or SageMaker), a model registry in the store, alerts.

``submit`` queues a job record under ``<store>/_jobs/`` and runs it in a small in-process
thread pool; ``run_job`` runs one synchronously (CLI ``--wait``, ``run-daily``).
"""

from __future__ import annotations

from .models import MODELS, ModelSpec, model_spec

_LAZY = {name: ".jobs" for name in ("BACKENDS", "get_job", "list_jobs", "new_job", "run_job",
                                    "submit", "wait_for")}

__all__ = ["BACKENDS", "MODELS", "ModelSpec", "model_spec", "new_job", "run_job", "submit",
           "get_job", "list_jobs", "wait_for"]


def __getattr__(name: str):
    # imported on first use (PEP 562): the CLI reads this package's constants without it
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
