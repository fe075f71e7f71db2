"""Integration fixtures shared by several modules."""

from __future__ import annotations

import pytest

from tests import _generated_store


@pytest.fixture(scope="session")
def generated_data(tmp_path_factory, client):
    """A generated store built through the real CLI on the session cluster (read-only: copy it
    before writing). Returns ``<work>/featurestore-data``."""
    work = tmp_path_factory.mktemp("generated")
    return _generated_store.build(work, scheduler=client.scheduler.address, retail=False)
