"""Shared fixtures: a real LocalCluster, a real moto S3/SageMaker server, generated drops."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# OpenMP threads (XGBoost, implicit's ALS) sleep when out of work instead of spinning. The
# suite runs two test processes plus their Dask workers on two cores: a spinning thread burns
# the core its partner needs (150 XGBoost rounds took 2-12 s instead of 0.3 s under load).
# Set before anything loads libgomp (it reads this once); children (cluster workers, CLI
# subprocesses) inherit it. It changes no result, only how idle threads wait.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: the checkout (test file names in this module are relative to it)
ROOT_DIR = Path(__file__).resolve().parents[1]
SHARED = ROOT_DIR.parent / "shared"
SAMPLE_DROPS = SHARED / "data" / "sample-drops"
ONLINE_RETAIL = SHARED / "data" / "online_retail.csv.gz"


@pytest.fixture(scope="session")
def client():
    """One real distributed LocalCluster (2 worker processes) for the whole session, set up as
    the one ``featurestore`` commands start."""
    from distributed import Client

    from featurestore.cluster import local_cluster

    with local_cluster(2) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="session")
def moto_server():
    """A real moto server on 127.0.0.1 (S3, SNS, SageMaker APIs); env points boto3/s3fs at it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.update({
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAGEMAKER_VALIDATE_ROLE": "false",
    })
    yield endpoint
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


_AWS_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION", "SAGEMAKER_VALIDATE_ROLE")


@pytest.fixture()
def s3_bucket(moto_server):
    """A fresh bucket on the moto server; yields its name."""
    import uuid

    import boto3

    name = f"fs-test-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def drops(tmp_path_factory):
    """Small generated drops with every bad-row class and late hits (read-only: copy to mutate)."""
    from featurestore.generate import generate_weblog

    root = tmp_path_factory.mktemp("drops") / "raw"
    report = generate_weblog(str(root), **DROPS)
    return root, report


#: The generator's arguments of the ``drops`` fixture.
DROPS = {"days": 4, "customers": 300, "products": 30, "rows_per_day": 1500, "parts": 2,
         "seed": 11, "bad_rows": 0.01, "late_fraction": 0.05}


@pytest.fixture()
def drops_copy(drops, tmp_path):
    root, report = drops
    dest = tmp_path / "raw"
    shutil.copytree(root, dest)
    return dest, report


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server on a free port (apt-installed when missing), for the session."""
    pytest.importorskip("redis", reason="redis-py is in the test extra")
    from tests._redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


# -- the order test files are handed to the two xdist processes ------------------------------
#: The slowest test files, longest first (idle seconds of a whole `python -m pytest` run,
#: 2026-12-07, scaled by each file's before/after ratio under load for the kill -9, BI types,
#: features and other modules made shorter that evening: docs/performance.md). With ``--dist loadfile`` each process takes a whole file when it runs short of
#: work; xdist's own order (most tests first) left the files with one to three long tests
#: (S3 faults, the kill -9 modules, the end-to-end retrain) for the very end, where one
#: process ran them alone while the other had finished. Longest first, the last files are short
#: and both processes end within seconds of each other. The S3 fault module goes first: most
#: of its time is botocore back-off (waiting), which the other process's CPU work fills.
#: Two files that build the same shared store (tests/_shared_build.py) are not adjacent at the
#: start, so neither process waits on the other's build. A file missing here runs after these,
#: most tests first; a stale list costs balance, never a test.
SLOW_FILES_FIRST = (
    "tests/reliability/test_s3_faults.py",
    "tests/integration/test_docs_executed.py",       # builds the generated store (~45 s)
    "tests/integration/test_bi_types.py",
    "tests/reliability/test_redis_online.py",        # ~half since expected_rows
    "tests/reliability/test_kill9.py",               # the run after each kill in process
    "tests/integration/test_features.py",
    "tests/reliability/test_kill9_aggs.py",
    "tests/integration/test_dashboard_browser.py",   # builds the dashboard store
    "tests/integration/test_retail.py",
    "tests/reliability/test_compaction_kill9.py",    # builds the clean ingest (in process)
    "tests/integration/test_cli_newcomer.py",
    "tests/integration/test_training.py",
    "tests/integration/test_recommenders.py",        # FM job test: npz read once
    "tests/integration/test_catalogue.py",
    "tests/reliability/test_backfill_columns_kill9.py",
    "tests/integration/test_e2e_retrain.py",
    "tests/integration/test_fm_export.py",
    "tests/reliability/test_registry.py",
    "tests/integration/test_retrain_local.py",
    "tests/integration/test_cold_start.py",
    "tests/reliability/test_partials_kill9.py",
    "tests/integration/test_retrain_api.py",
    "tests/integration/test_predict.py",             # builds the ingested drops
    "tests/integration/test_ingest_crash.py",
    "tests/integration/test_training_labels.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files in :data:`SLOW_FILES_FIRST` order, then the rest most tests first; a file's own
    tests keep their order. xdist hands out files in this order because the suite's addopts
    say ``--no-loadscope-reorder`` (its default reorder is by test count alone)."""
    def file_of(item: pytest.Item) -> str:
        return item.nodeid.split("::", 1)[0]

    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        name = file_of(item)
        counts[name] = counts.get(name, 0) + 1
        first.setdefault(name, i)
    rank = {name: i for i, name in enumerate(SLOW_FILES_FIRST)}

    def key(item: pytest.Item) -> tuple[int, int, int]:
        name = file_of(item)
        return (rank.get(name, len(rank)), -counts[name], first[name])

    items.sort(key=key)  # stable: a file's tests stay in their order
