"""S3 faults on reads and writes (issue #13): retried, or one clear error; never a partial table.

The real CLI ingests drops held on a real moto server through ``S3FaultProxy``, which injects
500/503/SlowDown answers, slow answers and dropped connections. After each run: every
published file reads whole and the ledger names no missing output; after a fault-free re-run,
every table equals a clean run's into a fresh bucket (no row lost, none duplicated).

The three faulty runs start together, each through its own proxy into its own bucket (the
``faulty_runs`` fixture), and each test waits for its own: most of a faulty run is botocore's
back-off and held answers, i.e. waiting, so run one after another they took ~67 s of the
suite's time for ~25 s of work. What each run checks, and its fault counts, are unchanged.
"""

from __future__ import annotations

import uuid
from concurrent.futures import Future, ThreadPoolExecutor

import boto3
import fsspec
import pytest

from featurestore import Store
from featurestore.materialization import materialize
from featurestore.sources.weblog.ingest import ingest_weblog, ledger_entries
from tests.reliability.s3_fault_proxy import (
    FaultRule,
    S3FaultProxy,
    compare_contents,
    ingest_cli,
    partial_problems,
    store_contents,
)

# Bounded retries keep a persistent failure's test short; the defaults are in storage.py.
FAST_FAIL = ("config_kwargs.retries.max_attempts=2",)


def _options(endpoint: str) -> dict:
    return {"key": "testing", "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}


def _new_bucket(endpoint: str) -> str:
    name = f"fs-faults-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def raw_bucket(moto_server, drops):
    """The generated drops, uploaded once to a bucket (read through the proxy by each run)."""
    bucket = _new_bucket(moto_server)
    fs = fsspec.filesystem("s3", **_options(moto_server))
    fs.put(str(drops[0]), f"{bucket}/raw", recursive=True)
    return bucket


@pytest.fixture(scope="module")
def clean(moto_server, raw_bucket, client):
    """Contents of a fault-free ingest + materialize into a fresh bucket, the reference."""
    store = Store(f"s3://{_new_bucket(moto_server)}/store", _options(moto_server))
    ingest_weblog(f"s3://{raw_bucket}/raw", store, client=client)
    materialize(store, client=client)
    return store_contents(store)


def _run(raw_bucket, proxy, client, store_url, options=()):
    return ingest_cli(f"s3://{raw_bucket}/raw", store_url, proxy.url,
                      scheduler=client.scheduler.address, options=options, timeout=180)


# Each faulty run: its fault rules and extra storage options.
TRANSIENT_OPS = ["GET", "HEAD", "PUT", "LIST", "DELETE"]
SCENARIOS = {
    # ~7% of ~600 requests: each fault costs a back-off of ~0.5 s (botocore's first retry
    # waits rand(0, 1) s; no setting shortens it), so the rates are as low as still give every
    # kind on every common operation (twice these took ~25 s more, proving nothing more)
    "transient": ([FaultRule(TRANSIENT_OPS, "500", rate=0.02),
                   FaultRule(TRANSIENT_OPS, "503", rate=0.02),
                   FaultRule(TRANSIENT_OPS, "slowdown", rate=0.015),
                   FaultRule(TRANSIENT_OPS, "drop", rate=0.015),
                   FaultRule(["PUT"], "drop_after", rate=0.03)], ()),
    # every write of one event date fails; bounded retries keep the failure short
    "persistent": ([FaultRule(["PUT"], "500", path="event_date=2026-01-03")], FAST_FAIL),
    # stalls three times the read timeout; slow answers 100x moto's own (a few ms), one read
    # in ten (~40 of them: each holds its task 0.1 s, 0.3 of reads cost ~10 s more)
    "slow": ([FaultRule(["GET", "LIST", "HEAD"], "slow", rate=1.0, delay=3.0, times=2),
              FaultRule(["GET", "LIST", "HEAD"], "slow", rate=0.1, delay=0.1)],
             ("config_kwargs.read_timeout=1", "config_kwargs.connect_timeout=1")),
}


@pytest.fixture(scope="module")
def faulty_runs(moto_server, raw_bucket, client):
    """``{scenario: (proxy, store_url, Future of the run)}``: the faulty run of each scenario
    of :data:`SCENARIOS`, all started at once on the session cluster, each through its own
    :class:`S3FaultProxy` (seeded as before) into a fresh bucket. Requested before ``clean``,
    so the reference ingest overlaps them too."""
    with S3FaultProxy(moto_server, seed=13) as p1, S3FaultProxy(moto_server, seed=13) as p2, \
            S3FaultProxy(moto_server, seed=13) as p3, ThreadPoolExecutor(3) as pool:
        runs: dict[str, tuple[S3FaultProxy, str, Future]] = {}
        for (name, (rules, options)), proxy in zip(SCENARIOS.items(), (p1, p2, p3)):
            proxy.set_rules(rules)
            store_url = f"s3://{_new_bucket(moto_server)}/store"
            runs[name] = (proxy, store_url,
                          pool.submit(_run, raw_bucket, proxy, client, store_url, options))
        yield runs


def _assert_equals_clean(store: Store, clean: dict) -> None:
    diff = compare_contents(clean, store_contents(store))
    assert diff == {"rows_lost": 0, "rows_duplicated": 0, "tables": {}}


def test_transient_faults_on_every_operation_are_retried(moto_server, faulty_runs, clean):
    """Errors, SlowDown and dropped connections on GET/HEAD/PUT/LIST/DELETE: the default
    retry settings absorb them; the run succeeds with the clean run's tables."""
    proxy, store_url, run = faulty_runs["transient"]
    proc = run.result()
    print(f"transient faults: {proxy.faults_injected} injected in "
          f"{sum(proxy.requests.values())} requests, run took {proc.seconds:.1f} s")
    assert proc.returncode == 0, proc.stderr
    assert proxy.faults_injected >= 10, proxy.injected
    assert {op for op, _ in proxy.injected} >= {"GET", "PUT", "LIST"}
    store = Store(store_url, _options(moto_server))
    assert partial_problems(store) == []
    _assert_equals_clean(store, clean)


def test_persistent_write_failure_is_one_line_then_rerun_completes(moto_server, raw_bucket,
                                                                   faulty_runs, clean, client):
    """Every write of one event date fails: the run stops with one error line naming the
    store and what to do (exit 1, no traceback), leaves no half-published table and no
    lock; a re-run once the store answers again gives the clean run's tables."""
    proxy, store_url, run = faulty_runs["persistent"]
    failed = run.result()
    lines = failed.stderr.strip().splitlines()
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr and len(lines) == 1, failed.stderr
    assert lines[0].startswith("featurestore ingest: error: ")
    assert store_url in lines[0] and "re-run" in lines[0]
    store = Store(store_url, _options(moto_server))
    assert partial_problems(store) == []
    assert not store.exists("_lock.json")
    landed = ledger_entries(store)  # the ledger's own reader (records, not markers)
    assert 0 < len(landed) < 8  # some files landed, the failing ones did not

    proxy.set_rules([])
    rerun = _run(raw_bucket, proxy, client, store_url)
    assert rerun.returncode == 0, rerun.stderr
    _assert_equals_clean(store, clean)


def test_slow_and_stalled_reads_complete(moto_server, faulty_runs, clean):
    """Slow answers to reads finish; an answer stalled past the read timeout is retried."""
    proxy, store_url, run = faulty_runs["slow"]
    proc = run.result()
    assert proc.returncode == 0, proc.stderr
    slow = sum(n for (_, fault), n in proxy.injected.items() if fault == "slow")
    print(f"slow reads: {slow} of {sum(proxy.requests.values())} requests delayed, "
          f"run took {proc.seconds:.1f} s")
    assert slow >= 5
    assert proc.seconds < 120
    _assert_equals_clean(Store(store_url, _options(moto_server)), clean)
