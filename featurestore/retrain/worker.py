"""``python -m featurestore.retrain.worker JOB_ID``: run one queued job in a detached process.

``featurestore retrain`` without ``--wait`` starts this so the command returns at once; the
settings travel as JSON in ``FEATURESTORE_RETRAIN_SETTINGS`` (secrets are not needed to train).
"""

from __future__ import annotations

import json
import os
import sys

from ..settings import Settings
from ..storage import Store
from .jobs import run_job

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    settings = Settings.model_validate(json.loads(os.environ["FEATURESTORE_RETRAIN_SETTINGS"]))
    store = Store(settings.store, settings.storage_options)
    record = run_job(store, argv[0], settings)
    return 0 if record["status"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
