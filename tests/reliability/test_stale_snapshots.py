"""Issue #13 item 8: the API serves what is stored, also after a partition is rewritten.

A store is built by the real CLI (``featurestore ingest``) from generated drops with a part of a
drop held back; a real uvicorn server serves it; the held-back part arrives late and is
ingested (rewriting as-of dates the server already holds); the server must serve the rewritten
values, labelled with a higher generation, without ever mixing two versions in one answer.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from api.main import create_app
from featurestore.cli import main as cli
from featurestore.generate import generate_weblog
from featurestore.generations import GENERATIONS, read_generations
from featurestore.settings import Settings
from featurestore.storage import Store

from ..serving_helpers import expected_row, expected_rows, serve

POLL = 0.3  # the server's poll period in these tests (seconds)
LATE = "hit_data-0001.tsv.gz"  # the part of a drop that arrives late


@pytest.fixture(scope="module")
def drops3(tmp_path_factory) -> tuple[Path, list[str]]:
    """Three small daily drops (two parts each, no manifest: a late part is then just a new
    file of the drop); returns the raw root and the drop dates."""
    root = tmp_path_factory.mktemp("stale") / "raw"
    report = generate_weblog(str(root), days=3, customers=120, products=15, rows_per_day=700,
                             parts=2, seed=21, late_fraction=0.0, columns=40)
    for day in report.days:
        (root / day / "manifest.json").unlink()
    return root, report.days


def _raw_without(drops3, tmp_path: Path, late_days: list[str]) -> Path:
    """A copy of the drops with ``LATE`` of each of ``late_days`` held back (under ``late/``)."""
    root, _ = drops3
    raw = tmp_path / "raw"
    shutil.copytree(root, raw)
    for day in late_days:
        (tmp_path / "late" / day).mkdir(parents=True)
        shutil.move(raw / day / LATE, tmp_path / "late" / day / LATE)
    return raw


def _deliver(tmp_path: Path, raw: Path, day: str) -> None:
    shutil.move(tmp_path / "late" / day / LATE, raw / day / LATE)


def _ingest(raw: Path, store: Path, client) -> None:
    """``featurestore ingest`` (ingest + materialize) on the session's Dask cluster."""
    code = cli(["ingest", str(raw), "--store", str(store), "--scheduler",
                client.scheduler.address, "--json"])
    assert code == 0


def _built(drops3, client, tmp_path: Path, late_day: str
           ) -> tuple[Path, Path, pd.DataFrame, int]:
    """A store ingested by the CLI from the drops with ``late_day``'s ``LATE`` held back.

    Returns:
        The raw root, the store path, the stored ``customer_features`` of ``late_day`` and its
        generation.
    """
    raw = _raw_without(drops3, tmp_path, [late_day])
    store = tmp_path / "store"
    _ingest(raw, store, client)
    return raw, store, _stored(store, late_day), _generation(store, late_day)


def _stored(store: Path, as_of: str) -> pd.DataFrame:
    return pd.read_parquet(store / "customer_features" / f"as_of={as_of}")


def _generation(store: Path, as_of: str) -> int:
    return read_generations(Store(str(store))).get("customer_features", {}).get(as_of, 0)


def _changed(before: pd.DataFrame, after: pd.DataFrame) -> list[str]:
    """Customers of ``before`` whose stored row differs in ``after``."""
    old, new = expected_rows(before), expected_rows(after)
    return [c for c in before["customer_id"] if old[c] != new[c]]


def _wait_served(base: str, generation: int, timeout: float = 20) -> dict:
    """Poll ``/ready`` until ``customer_features`` is served at ``generation``."""
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(f"{base}/ready").json()
        if body["served"]["customer_features"]["generation"] == generation:
            return body
        assert time.monotonic() < deadline, f"generation {generation} not served: {body}"
        time.sleep(POLL / 3)


def _app(store: Path):
    return create_app(Settings(store=str(store), snapshot_poll_seconds=POLL))


@pytest.fixture(params=["memory", "redis"])
def online_store(request, monkeypatch):
    """Both online stores: ``memory``, or a real redis-server named by
    FEATURESTORE_ONLINE_STORE (so ``featurestore ingest`` pushes and the app reads it)."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
        monkeypatch.setenv("FEATURESTORE_ONLINE_STORE", url)
        return url
    return "memory"


def test_rewritten_latest_as_of_is_served(drops3, client, tmp_path, online_store):
    """(a) A late part of the latest drop rewrites the latest as-of: after one poll the API
    answers the rewritten values and a higher generation, in the headers and on /ready."""
    _, days = drops3
    latest = days[-1]
    raw, store, before, g1 = _built(drops3, client, tmp_path, latest)
    assert g1 >= 1  # the commit recorded a generation for the partition
    app = _app(store)
    with serve(app) as base, httpx.Client(base_url=base) as http:
        ready = http.get("/ready").json()
        assert ready["served"]["customer_features"] == {"as_of": latest, "generation": g1}
        assert ready["snapshot"]["customer_features"] == latest  # the existing field stays
        ids = list(before["customer_id"])
        r = http.post("/features/batch", json={"customer_ids": ids})
        assert r.headers["X-Feature-Generation"] == str(g1)
        assert r.headers["X-Feature-As-Of"] == latest
        want = expected_rows(before)
        assert [x["features"] for x in r.json()["results"]] == [want[c] for c in ids]

        _deliver(tmp_path, raw, latest)
        _ingest(raw, store, client)
        after, g2 = _stored(store, latest), _generation(store, latest)
        changed = _changed(before, after)
        assert changed and g2 > g1
        ready = _wait_served(base, g2)
        assert ready["served"]["customer_product_features"]["generation"] == g2
        for cid in changed[:25]:
            r = http.get(f"/customers/{cid}/features")
            assert r.status_code == 200, r.text
            assert r.json() == {"customer_id": cid, "as_of": latest,
                                "features": expected_row(after, cid)}
            assert r.headers["X-Feature-Generation"] == str(g2)
        r = http.get(f"/customers/{changed[0]}/products")
        assert r.status_code == 200 and r.headers["X-Feature-Generation"] == str(g2)
        info = http.get("/tables/customer_features").json()
        assert (info["served_as_of"], info["served_generation"]) == (latest, g2)


def test_rewritten_older_as_of_is_reloaded(drops3, client, tmp_path):
    """(b) An older as-of already requested (so cached) is rewritten by a late part of its
    drop: the next poll drops it from the cache and the API answers the rewritten values."""
    _, days = drops3
    older = days[-2]
    raw, store, before, g1 = _built(drops3, client, tmp_path, older)
    app = _app(store)
    with serve(app) as base, httpx.Client(base_url=base) as http:
        ids = list(before["customer_id"])
        r = http.post("/features/batch", json={"customer_ids": ids, "as_of": older})
        assert r.headers["X-Feature-As-Of"] == older
        assert r.headers["X-Feature-Generation"] == str(g1)
        want = expected_rows(before)
        assert [x["features"] for x in r.json()["results"]] == [want[c] for c in ids]
        assert ("customer_features", older) in app.state.online._cache  # it is cached

        _deliver(tmp_path, raw, older)
        _ingest(raw, store, client)
        after, g2 = _stored(store, older), _generation(store, older)
        changed = _changed(before, after)
        assert changed and g2 > g1
        _wait_served(base, _generation(store, days[-1]))  # a poll ran after the commit
        for cid in changed[:25]:
            r = http.get(f"/customers/{cid}/features", params={"as_of": older})
            assert r.status_code == 200, r.text
            assert r.json()["features"] == expected_row(after, cid)
            assert r.headers["X-Feature-Generation"] == str(g2)
            assert r.headers["X-Feature-As-Of"] == older


def test_no_torn_reads_while_a_rewrite_is_swapped_in(drops3, client, tmp_path, online_store):
    """(c) Requests running while the latest as-of is rewritten and swapped in each see one
    version: a customer's features are entirely the old or entirely the new stored row; an
    answer labelled with the new generation is never the old row; once the new generation
    was answered, no later request gets the old one."""
    _, days = drops3
    latest = days[-1]
    raw, store, before, _ = _built(drops3, client, tmp_path, latest)
    ids = list(before["customer_id"])
    answers: list[tuple[float, float, str, str, dict]] = []  # sent, received, gen, id, row
    errors: list[str] = []
    stop = threading.Event()

    def hammer(base: str, k: int) -> None:
        with httpx.Client(base_url=base) as http:
            n = k
            while not stop.is_set():
                n += 1
                sent = time.monotonic()
                if n % 2:
                    cid = ids[n % len(ids)]
                    r = http.get(f"/customers/{cid}/features")
                    rows = [(cid, r.json()["features"])] if r.status_code == 200 else []
                else:
                    chunk = ids[n % 7::7]
                    r = http.post("/features/batch", json={"customer_ids": chunk})
                    rows = ([(x["customer_id"], x["features"]) for x in r.json()["results"]]
                            if r.status_code == 200 else [])
                if r.status_code != 200:
                    errors.append(r.text)
                    continue
                gen = r.headers["X-Feature-Generation"]
                for cid, row in rows:
                    answers.append((sent, time.monotonic(), gen, cid, row))

    app = _app(store)
    with serve(app) as base:
        threads = [threading.Thread(target=hammer, args=(base, k)) for k in range(2)]
        for th in threads:
            th.start()
        try:
            time.sleep(0.3)
            _deliver(tmp_path, raw, latest)
            _ingest(raw, store, client)
            g2 = _generation(store, latest)
            _wait_served(base, g2)
            time.sleep(0.5)
        finally:
            stop.set()
            for th in threads:
                th.join(timeout=30)
    after = _stored(store, latest)
    assert not errors, errors[:3]
    old_rows, new_rows = expected_rows(before), expected_rows(after)
    old = {c: old_rows[c] for c in ids}
    new = {c: new_rows[c] for c in ids}
    first_new = min(received for _, received, gen, _, _ in answers if gen == str(g2))
    for sent, _, gen, cid, row in answers:
        assert row in (old[cid], new[cid]), cid  # one stored version, never a mix
        if gen == str(g2):
            assert row == new[cid], cid  # labelled new: the new files
        if sent > first_new:
            assert gen == str(g2), cid  # no going back once the new version is served
    changed = set(_changed(before, after))
    assert any(row == old[c] != new[c] for _, _, _, c, row in answers if c in changed)
    assert any(row == new[c] != old[c] for _, _, _, c, row in answers if c in changed)


def test_store_without_generations_is_served_as_generation_0(drops3, client, tmp_path):
    """A store written before generations existed (no record) still opens: served as
    generation 0; the next commit's generation is then noticed."""
    _, days = drops3
    raw, store, _, _ = _built(drops3, client, tmp_path, days[-1])
    (store / GENERATIONS).unlink()  # as today's code leaves a store
    app = _app(store)
    with serve(app) as base, httpx.Client(base_url=base) as http:
        ready = http.get("/ready").json()
        assert ready["served"]["customer_features"] == {"as_of": days[-1], "generation": 0}
        cid = _stored(store, days[-1])["customer_id"].iloc[0]
        r = http.get(f"/customers/{cid}/features")
        assert r.status_code == 200 and r.headers["X-Feature-Generation"] == "0"
        _deliver(tmp_path, raw, days[-1])
        _ingest(raw, store, client)
        assert json.loads((store / GENERATIONS).read_text())["commit"] == 1
        _wait_served(base, 1)
