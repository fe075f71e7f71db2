"""Integration fixtures shared by several modules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import _generated_store
from tests._shared_build import built_once


@pytest.fixture(scope="session")
def generated_data(tmp_path_factory, client, worker_id):
    """A generated store built through the real CLI on the session cluster (read-only: copy it
    before writing). Returns ``<work>/featurestore-data``.

    Built once per test run, not once per xdist worker (:func:`tests._shared_build.built_once`;
    building it took ~45 s of the suite's time on each worker)."""
    work = built_once(tmp_path_factory, worker_id, "generated", lambda folder: (
        _generated_store.build(folder, scheduler=client.scheduler.address, retail=False)))
    return work / "featurestore-data"


@pytest.fixture(scope="session")
def dashboard_store(tmp_path_factory, client, worker_id) -> dict[str, Any]:
    """The store of ``test_dashboard.build_store`` (generated drops, ``featurestore ingest``,
    two ``featurestore retrain`` runs), read by the dashboard's JSON and browser tests
    (read-only: copy it before writing). ``{"store", "raw", "report"}``: paths and the ingest
    ``--json`` report. Built once per test run, not once per module."""
    from tests.integration.test_dashboard import build_store

    folder = built_once(tmp_path_factory, worker_id, "dashboard",
                        lambda base: build_store(base, client.scheduler.address))
    return {"store": folder / "store", "raw": folder / "raw",
            "report": json.loads((folder / "report.json").read_text())}


@pytest.fixture(scope="session")
def ingested_drops(tmp_path_factory, client, worker_id):
    """A store of the ``drops`` fixture's drops (generated again beside it, the same
    arguments) ingested and materialized by ``FeatureStore.ingest`` on the session cluster
    (read-only: copy it before writing). Built once per test run, for the modules that only
    need such a store to start from (predictions, SageMaker predictions)."""
    from featurestore import FeatureStore, Settings
    from featurestore.generate import generate_weblog
    from featurestore.storage import Store
    from tests.conftest import DROPS

    def build(folder):
        generate_weblog(str(folder / "raw"), **DROPS)
        result = FeatureStore(Settings(store=str(folder / "store")), client=client).ingest(
            str(folder / "raw"))
        assert result.ok

    return Store(str(built_once(tmp_path_factory, worker_id, "ingested-drops", build) / "store"))
