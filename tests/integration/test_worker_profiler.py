"""The workers we start sample their threads for Dask's profiler every 100 ms, not every 10 ms
(featurestore.cluster.WORKER_SETTINGS: the 10 ms default cost ~15-25 ms of CPU per file of issue
#27's drop), and the image's Dask config says the same."""

from __future__ import annotations

from pathlib import Path

import yaml


def _profile_period_ms(dask_worker) -> float:
    """How often the worker's profiler callback runs (Tornado's period, in ms)."""
    return dask_worker.periodic_callbacks["profile"].callback_time


def test_our_workers_profile_every_100_ms(client):
    from featurestore.cluster import WORKER_SETTINGS

    assert set(client.run(_profile_period_ms).values()) == {100}
    image = yaml.safe_load((Path(__file__).resolve().parents[2] / "deploy" /
                            "dask-config.yaml").read_text())
    assert image["distributed"]["worker"]["profile"]["interval"] == \
        WORKER_SETTINGS["distributed.worker.profile.interval"]
