"""Shared fixtures: a real LocalCluster, a real moto S3/SageMaker server, generated drops."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
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
