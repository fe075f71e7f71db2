"""Reliability fixtures shared by several modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._shared_build import built_once
from tests.reliability import _clean_ingest


@pytest.fixture(scope="session")
def clean_ingest(tmp_path_factory, worker_id, client) -> tuple[Path, Path]:
    """``(raw, store)``: small drops and one clean ``featurestore ingest`` of them on the
    session cluster (:mod:`tests.reliability._clean_ingest`), both read-only (copy before
    writing). Built once per test run (:func:`tests._shared_build.built_once`), not once per
    module: the kill -9 modules of the compaction, the partials and the column backfill all
    compare with this run."""
    folder = built_once(tmp_path_factory, worker_id, "clean-ingest", lambda folder: (
        _clean_ingest.build(folder, client.scheduler.address)))
    return folder / "raw", folder / "store"
