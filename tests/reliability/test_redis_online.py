"""Issue #28: the Redis online store written by the runs that commit, and its failure modes,
against real redis-server processes, the real CLI and a real uvicorn server.

* a day's push writes only the customers whose stored row changed (recency kept as event
  days), checked against a pandas difference of the two partitions, and serves every row;
* ``ingest`` with Redis down: the offline commit stands, the run exits non-zero saying the
  online store is behind, ``featurestore online push`` catches up;
* the API with Redis stopped (503 JSON, ``/ready`` 503), emptied by a restart without
  persistence (503 "lost", never "customer not found"), and restarted with persistence
  (recovers by itself);
* ``kill -9`` of a push while readers hammer the API: nothing of the half-written generation
  is served, the next push completes it, every answer is one stored version.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from api.main import create_app
from featurestore import FeatureStore
from featurestore.cli import main as cli
from featurestore.generate import generate_weblog
from featurestore.online.redis_codec import SlotMeta, TableKeys
from featurestore.settings import Settings
from tests._redis_server import RedisServer
from tests.serving_helpers import expected_row, expected_rows, serve

pytest.importorskip("redis", reason="redis-py is in the test extra")
import redis

ROOT = Path(__file__).resolve().parents[2]
POLL = 0.3


@pytest.fixture(scope="module")
def days4(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("redis-drops") / "raw"
    report = generate_weblog(str(root), days=4, customers=4000, products=20, rows_per_day=900,
                             parts=1, seed=28, late_fraction=0.0, columns=40)
    return root, report.days


@pytest.fixture()
def server(tmp_path):
    s = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    s.start()
    yield s
    s.stop()


def _raw(days4, tmp_path: Path, upto: int) -> Path:
    """A raw root holding the first ``upto`` drops (more are added by calling it again)."""
    root, days = days4
    raw = tmp_path / "raw"
    raw.mkdir(exist_ok=True)
    for day in days[:upto]:
        if not (raw / day).exists():
            shutil.copytree(root / day, raw / day)
    return raw


def _ingest(raw: Path, store: Path, client, online: str | None, monkeypatch) -> int:
    if online:
        monkeypatch.setenv("FEATURESTORE_ONLINE_STORE", online)
    else:
        monkeypatch.delenv("FEATURESTORE_ONLINE_STORE", raising=False)
    return cli(["ingest", str(raw), "--store", str(store), "--scheduler",
                client.scheduler.address, "--no-progress"])


def _partition(store: Path, table: str, as_of: str) -> pd.DataFrame:
    return pd.read_parquet(store / table / f"as_of={as_of}")


def _latest(store: Path, table: str = "customer_features") -> str:
    return sorted(p.name.split("=")[1] for p in (store / table).glob("as_of=*"))[-1]


def _with_dates(frame: pd.DataFrame, as_of: str) -> pd.DataFrame:
    """Recency features as event dates: what stays the same for an idle customer."""
    out = frame.set_index("customer_id").copy()
    day = dt.date.fromisoformat(as_of)
    for c in [c for c in out.columns if c.startswith("days_since_")]:
        out[c] = [None if pd.isna(v) else day - dt.timedelta(days=int(v)) for v in out[c]]
    return out.astype(object).where(out.notna(), None)


def _changed(store: Path, table: str, new_as_of: str, old_as_of: str) -> tuple[set, set]:
    """The oracle: (customers whose row, recency as dates, differs between the two as-of
    dates or who are new; customers gone)."""
    new, old = _with_dates(_partition(store, table, new_as_of), new_as_of), \
        _with_dates(_partition(store, table, old_as_of), old_as_of)
    both = new.index.intersection(old.index)
    differ = {c for c in both if new.loc[c].to_dict() != old.loc[c].to_dict()}
    return differ | set(new.index.difference(old.index)), set(old.index.difference(new.index))


def _active(store: Path, days: list[dt.date]) -> set:
    """Customers with an event on any of ``days``, from the events table (pandas)."""
    frames = [pd.read_parquet(p, columns=["customer_id"]) for d in days
              for p in (store / "events").glob(f"event_date={d.isoformat()}/*.parquet")]
    return set(pd.concat(frames)["customer_id"].dropna()) if frames else set()


def _push(store: Path, server, client, capsys) -> dict:
    capsys.readouterr()
    assert cli(["online", "push", "--store", str(store), "--online-store", server.url,
                "--scheduler", client.scheduler.address, "--json"]) == 0
    return json.loads(capsys.readouterr().out)["tables"]


def _served_equals_offline(store: Path, server, latest: str) -> None:
    """Every row served from Redis equals the parquet partition (both tables)."""
    fs = FeatureStore(Settings(store=str(store), online_store=server.url))
    online = fs.online_store()
    frame = _partition(store, "customer_features", latest)
    ids = list(frame["customer_id"])
    view = online.view("customer_features", ids)
    assert view.as_of == latest
    want = expected_rows(frame)
    for cid in ids:
        assert view.get(cid) == want[cid], cid
    pairs = _partition(store, "customer_product_features", latest)
    view = online.view("customer_product_features", list(pairs["customer_id"].unique()))
    assert view.as_of == latest
    for row in pairs.itertuples(index=False):
        got = view.lookup({"customer_id": row.customer_id, "product_id": row.product_id},
                          ["product_views_7d", "product_views_30d"])
        assert got == {"product_views_7d": row.product_views_7d,
                       "product_views_30d": row.product_views_30d}
    assert fs.online_status()["customer_features"]["behind"] is False


def _fields(r, keys, slot: str) -> int:
    """The fields written so far into a slot: the sum over its buckets (from its metadata)."""
    meta = SlotMeta.loads(r.get(keys.meta(slot)))
    if meta is None:
        return 0
    if slot in ("x", "y"):  # an overlay: the buckets it may use are listed before writing
        pipe = r.pipeline(transaction=False)
        for b in range(max(meta.overlay, meta.stale)):
            pipe.hlen(keys.rows(slot, b))
        return sum(pipe.execute())
    if not meta.buckets:
        return r.hlen(keys.rows(slot))
    pipe = r.pipeline(transaction=False)
    for b in range(meta.buckets):
        pipe.hlen(keys.rows(slot, b))
    return sum(pipe.execute())


def test_a_days_push_writes_only_changed_customers_and_serves_every_row(
        days4, client, tmp_path, server, monkeypatch, capsys):
    store = tmp_path / "store"
    # day 1 and day 2: pushed by ingest (whole base a, then day 2's overlay x folded into a)
    assert _ingest(_raw(days4, tmp_path, 1), store, client, server.url, monkeypatch) == 0
    assert _ingest(_raw(days4, tmp_path, 2), store, client, server.url, monkeypatch) == 0
    second = _latest(store)
    # day 3 committed without a push, then `featurestore online push`: served is day 2 (an
    # overlay over base a, folded, then base a alone); the materialization handed over the rows that may have
    # changed since day 1, flagged with those that may have changed since day 2: only those
    # are written, into the other overlay (no partition is read whole)
    assert _ingest(_raw(days4, tmp_path, 3), store, client, None, monkeypatch) == 0
    latest = _latest(store)
    pushed = _push(store, server, client, capsys)
    cf = pushed["customer_features"]
    assert (cf["mode"], cf["as_of"], cf["slot"]) == ("delta", latest, "x"), cf
    assert pushed["customer_product_features"]["mode"] == "delta"  # grouped per customer
    want, gone = _changed(store, "customer_features", latest, second)
    delta = pd.read_parquet(store / "_state" / "online_delta" / "customer_features"
                            / f"as_of={latest}.parquet")
    near = set(delta.loc[delta["_near"], "customer_id"])
    assert cf["written"] == len(near) < len(delta) and cf["deleted"] == len(gone) == 0
    assert cf["folded"] == len(near)
    assert want <= near  # every changed customer is written ...
    day = dt.date.fromisoformat(latest)  # ... and only customers active on a day that moves
    assert near <= _active(store, [day - dt.timedelta(w) for w in (0, 1, 7, 30)])
    _served_equals_offline(store, server, latest)

    # day 4 without its handover (record removed): the push compares the partitions instead,
    # writing exactly the customers whose stored row changed since day 3 (overlay x again)
    assert _ingest(_raw(days4, tmp_path, 4), store, client, None, monkeypatch) == 0
    (store / "_state" / "online_delta.json").unlink()
    previous, latest = latest, _latest(store)
    cf = _push(store, server, client, capsys)["customer_features"]
    assert (cf["mode"], cf["as_of"], cf["slot"]) == ("diff", latest, "x"), cf
    want, gone = _changed(store, "customer_features", latest, previous)
    assert cf["written"] == len(want) and cf["deleted"] == len(gone)
    assert cf["written"] < len(_partition(store, "customer_features", latest))
    _served_equals_offline(store, server, latest)


@pytest.fixture(scope="module")
def late4(tmp_path_factory) -> tuple[Path, list[str]]:
    """Four drops, each with hits of the days before it (late data)."""
    root = tmp_path_factory.mktemp("redis-late") / "raw"
    report = generate_weblog(str(root), days=4, customers=3000, products=20, rows_per_day=700,
                             parts=1, seed=29, late_fraction=0.3, columns=40)
    return root, report.days


def test_late_days_rewrite_several_as_of_dates_and_the_push_serves_them(
        days4, late4, client, tmp_path, server, monkeypatch, capsys):
    """A drop with late hits rewrites the as-of dates they reach back to. Here the late hits
    are of day 2, the day served (an overlay over base a): its partition was rewritten, but
    day 1 was not, so the whole handover (every customer active on day 2 or 3, the late ones
    included) covers what changed since the version served; the push writes it into the
    other overlay and every served row equals the partition."""
    store = tmp_path / "store"
    for upto in (1, 2):  # base a: day 1, then overlay x: day 2 (served, folded into a)
        assert _ingest(_raw(days4, tmp_path, upto), store, client, server.url, monkeypatch) == 0
    gens = lambda: json.loads((store / "_state" / "generations.json").read_text())["tables"]  # noqa: E731
    before = gens()["customer_features"]
    late_root, late_days = late4
    day2, day3 = late_days[1], late_days[2]
    assert sorted(before) == [late_days[0], day2]
    shutil.copytree(late_root / day3, tmp_path / "raw" / day3)  # day 3 and late hits of day 2
    assert _ingest(tmp_path / "raw", store, client, None, monkeypatch) == 0
    after = gens()["customer_features"]
    assert after[day2] > before[day2] and after[late_days[0]] == before[late_days[0]]
    cf = _push(store, server, client, capsys)["customer_features"]
    assert (cf["mode"], cf["slot"], cf["as_of"], cf["generation"]) == \
        ("delta", "x", day3, after[day3])
    handed_all = pd.read_parquet(store / "_state" / "online_delta" / "customer_features"
                                 / f"as_of={day3}.parquet")
    assert cf["written"] == len(handed_all)  # not only the rows flagged near
    want, _ = _changed(store, "customer_features", day3, late_days[0])
    handed = set(pd.read_parquet(store / "_state" / "online_delta" / "customer_features"
                                 / f"as_of={day3}.parquet")["customer_id"])
    assert want <= handed
    _served_equals_offline(store, server, day3)


def test_ingest_with_redis_down_keeps_the_commit_and_push_catches_up(
        days4, client, tmp_path, server, monkeypatch, capsys):
    store = tmp_path / "store"
    assert _ingest(_raw(days4, tmp_path, 1), store, client, server.url, monkeypatch) == 0
    server.stop()
    capsys.readouterr()
    code = _ingest(_raw(days4, tmp_path, 2), store, client, server.url, monkeypatch)
    err = capsys.readouterr().err
    assert code != 0 and "online store is behind" in err and "online push" in err
    assert "Traceback" not in err
    latest = _latest(store)  # the offline commit stands
    server.start()  # empty: no persistence
    args = ["--store", str(store), "--online-store", server.url]
    assert cli(["online", "status", *args]) == 1
    assert "BEHIND" in capsys.readouterr().out
    assert cli(["online", "push", *args, "--scheduler", client.scheduler.address]) == 0
    assert cli(["online", "status", *args]) == 0
    frame = _partition(store, "customer_features", latest)
    view = FeatureStore(Settings(store=str(store), online_store=server.url)).online_store() \
        .view("customer_features", list(frame["customer_id"][:50]))
    assert view.as_of == latest
    assert [view.get(c) for c in frame["customer_id"][:50]] == [
        expected_row(frame, c) for c in frame["customer_id"][:50]]


def _wait(http: httpx.Client, path: str, status: int, timeout: float = 20) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        r = http.get(path)
        if r.status_code == status:
            return r
        assert time.monotonic() < deadline, (path, r.status_code, r.text)
        time.sleep(0.05)


def test_api_with_redis_stopped_emptied_and_restarted(days4, client, tmp_path, monkeypatch):
    store = tmp_path / "store"
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis", persist=True, password="s3cret")  # in the URL
    server.start()
    try:
        assert _ingest(_raw(days4, tmp_path, 2), store, client, server.url, monkeypatch) == 0
        latest = _latest(store)
        dates = sorted(p.name.split("=")[1] for p in (store / "customer_features").glob("as_of=*"))
        frame = _partition(store, "customer_features", latest)
        cid = frame["customer_id"].iloc[0]
        app = create_app(Settings(store=str(store), online_store=server.url,
                                  snapshot_poll_seconds=POLL))
        with serve(app) as base, httpx.Client(base_url=base) as http:
            r = http.get(f"/customers/{cid}/features")
            assert r.status_code == 200 and r.json()["features"] == expected_row(frame, cid)
            ready = http.get("/ready").json()
            assert ready["served"]["customer_features"]["as_of"] == latest

            server.stop()  # unreachable: 503 JSON everywhere it is needed, never 500
            r = http.get(f"/customers/{cid}/features")
            assert r.status_code == 503 and "unreachable" in r.json()["detail"]
            r = http.post("/features/batch", json={"customer_ids": [cid, "nope"]})
            assert r.status_code == 503 and "detail" in r.json()
            r = http.get(f"/tables/customer_features/features?customer_id={cid}")
            assert r.status_code == 503
            assert http.get("/ready").status_code == 503
            assert "s3cret" not in http.get("/ready").text
            assert http.get("/health").status_code == 200
            older = http.get(f"/customers/{cid}/features", params={"as_of": dates[0]})
            assert older.status_code in (200, 404) and older.status_code != 503  # offline

            server.start()  # back with its data (append-only file): recovers by itself
            r = _wait(http, f"/customers/{cid}/features", 200)
            assert r.json()["features"] == expected_row(frame, cid)
            assert r.headers["X-Feature-As-Of"] == latest
            _wait(http, "/ready", 200)

            server.flush()  # emptied (as a restart without persistence): detected, never 404
            r = http.get(f"/customers/{cid}/features")
            assert r.status_code == 503 and "lost" in r.json()["detail"]
            r = http.get("/customers/NOPE/features")
            assert r.status_code == 503
            r = _wait(http, "/ready", 503)
            assert "lost" in r.json()["detail"] and "online push" in r.json()["detail"]

            assert cli(["online", "push", "--store", str(store), "--online-store", server.url,
                        "--scheduler", client.scheduler.address]) == 0
            r = _wait(http, f"/customers/{cid}/features", 200)
            assert r.json()["features"] == expected_row(frame, cid)
            assert http.get("/customers/NOPE/features").status_code == 404
            _wait(http, "/ready", 200)
    finally:
        server.stop()


# -- kill -9 of a push while readers hammer the API: the shared harness ---------------------
@dataclasses.dataclass
class _TwoDays:
    """A store whose Redis serves the 2-day as-of while parquet holds the 4-day one."""

    store: Path
    old_as_of: str
    new_as_of: str
    rows: dict[str, dict[str, dict]]  # as-of -> customer -> the stored row
    ids: list[str]  # the new as-of's customers
    keys: TableKeys


def _two_days(days4, tmp_path: Path, client, server, monkeypatch) -> _TwoDays:
    store = tmp_path / "store"
    assert _ingest(_raw(days4, tmp_path, 2), store, client, server.url, monkeypatch) == 0
    old_as_of = _latest(store)
    assert _ingest(_raw(days4, tmp_path, 4), store, client, None, monkeypatch) == 0
    new_as_of = _latest(store)
    assert new_as_of > old_as_of
    frames = {d: _partition(store, "customer_features", d) for d in (old_as_of, new_as_of)}
    rows = {d: expected_rows(f) for d, f in frames.items()}
    keys = TableKeys(json.loads((store / "_state" / "online.json").read_text())["namespace"],
                     "customer_features")
    return _TwoDays(store, old_as_of, new_as_of, rows, list(frames[new_as_of]["customer_id"]),
                    keys)


#: One answer: (sent, received, X-Feature-As-Of or the 404's detail, customer, row or None).
_Answer = tuple[float, float, str, str, "dict | None"]


@contextlib.contextmanager
def _hammered(days: _TwoDays, server, singles: bool) -> Iterator[tuple[list, list]]:
    """The API on the store and Redis, read by two threads for the duration of the block:
    batches of 100, and single GETs too when ``singles``. Yields (answers, errors)."""
    answers: list[_Answer] = []
    errors: list[str] = []
    stop = threading.Event()
    ids = days.ids

    def hammer(base: str, k: int) -> None:
        # a generous timeout, and a slow answer retried: this is about torn reads, not latency
        # (on a loaded 2-core machine an answer can take longer than httpx's 5 s default)
        with httpx.Client(base_url=base, timeout=60) as http:
            n = k
            while not stop.is_set():
                n += 1
                sent = time.monotonic()
                try:
                    if singles and n % 2:
                        cid = ids[n % len(ids)]
                        r = http.get(f"/customers/{cid}/features")
                        got = [(cid, r.json().get("features"))]
                    else:
                        chunk = ids[n % 7::7][:100]
                        r = http.post("/features/batch", json={"customer_ids": chunk})
                        got = [(x["customer_id"], x["features"])
                               for x in r.json().get("results", [])]
                except httpx.TimeoutException:
                    continue
                if r.status_code not in ((200, 404) if singles else (200,)):
                    errors.append(f"{r.status_code} {r.text}")
                    continue
                as_of = r.headers.get("X-Feature-As-Of") or r.json().get("detail", "")
                for cid, row in got:
                    answers.append((sent, time.monotonic(), as_of, cid, row))

    app = create_app(Settings(store=str(days.store), online_store=server.url,
                              snapshot_poll_seconds=POLL))
    with serve(app) as base:
        threads = [threading.Thread(target=hammer, args=(base, k)) for k in range(2)]
        for th in threads:
            th.start()
        try:
            yield answers, errors
        finally:
            stop.set()
            for th in threads:
                th.join(timeout=30)


def _push_cmd(days: _TwoDays, server) -> list[str]:
    return [sys.executable, "-m", "featurestore", "online", "push", "--store", str(days.store),
            "--online-store", server.url, "--workers", "1", "--no-progress"]


def _push_killed_when(days: _TwoDays, server, env: dict[str, str],
                      ready: Callable[[], bool]) -> None:
    """Run ``featurestore online push`` (slowed by ``env``'s test delay) and SIGKILL its
    process group (CLI, scheduler, worker) once ``ready()`` says the kill point is reached."""
    proc = subprocess.Popen(_push_cmd(days, server), cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not ready():
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _next_push(days: _TwoDays, server) -> None:
    """The next push, undelayed: it takes over the dead push's lease and completes it."""
    done = subprocess.run(_push_cmd(days, server), cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr


def test_killed_push_is_never_served_and_the_next_push_completes_it(
        days4, client, tmp_path, server, monkeypatch):
    days = _two_days(days4, tmp_path, client, server, monkeypatch)
    keys, r = days.keys, redis.Redis.from_url(server.url)

    def mid_write() -> bool:  # the overlay over base a is being written, 30+ fields in
        slot = SlotMeta.loads(r.get(keys.meta("x")))
        return slot is not None and slot.state == "writing" and _fields(r, keys, "x") >= 30

    with _hammered(days, server, singles=True) as (answers, errors):
        _push_killed_when(days, server, {"FEATURESTORE_TEST_PUSH_DELAY": "0.03"}, mid_write)
        assert 0 < _fields(r, keys, "x") < len(days.ids), "the kill needs to land mid-push"
        assert r.get(keys.ptr).decode().startswith("a|")  # never flipped
        time.sleep(0.5)
        killed_at = time.monotonic()
        _next_push(days, server)
        time.sleep(0.5)
    assert not errors, errors[:3]
    served = [a for a in answers if a[2] in (days.old_as_of, days.new_as_of)]
    assert any(a[2] == days.old_as_of and a[1] < killed_at for a in served)
    first_new = min(received for _, received, as_of, _, _ in served if as_of == days.new_as_of)
    assert first_new > killed_at  # nothing of the killed push was served
    for sent, _, as_of, cid, row in served:
        if row is not None:
            assert row == days.rows[as_of][cid], (as_of, cid)  # one stored version, never a mix
        else:  # not found: only a customer the served as-of does not have
            assert cid not in days.rows[as_of], (as_of, cid)
        if sent > first_new:
            assert as_of == days.new_as_of  # no going back


def test_push_killed_while_folding_serves_the_new_generation_and_the_next_finishes_it(
        days4, client, tmp_path, server, monkeypatch):
    """A day's push flips to its overlay, then folds it into the base. ``kill -9`` midway
    through the fold: readers hammering the API get the new generation only, every row one
    stored version (the overlay answers for every customer it changed, folded or not); the
    next push finishes the fold, after which the base alone holds exactly the partition."""
    days = _two_days(days4, tmp_path, client, server, monkeypatch)
    keys, r = days.keys, redis.Redis.from_url(server.url)
    folding_since: list[float] = []

    def mid_fold() -> bool:  # a bucket or two folded: 0.5 s after the fold began
        held = SlotMeta.loads(r.get(keys.meta("a")))
        if not folding_since and held is not None and held.state == "folding":
            folding_since.append(time.monotonic())
        return bool(folding_since) and time.monotonic() - folding_since[0] > 0.5

    with _hammered(days, server, singles=False) as (answers, errors):
        _push_killed_when(days, server, {"FEATURESTORE_TEST_FOLD_DELAY": "0.4"}, mid_fold)
        flipped_at = time.monotonic()
        assert r.get(keys.ptr).decode().startswith("x|")  # flipped before the fold
        over = SlotMeta.loads(r.get(keys.meta("x")))
        assert over.overlay >= 3, "the overlay needs buckets left to fold"
        assert SlotMeta.loads(r.get(keys.meta("a"))).state == "folding", \
            "the kill needs to land mid-fold"
        time.sleep(1.0)  # readers on the half-folded base
        _next_push(days, server)
        time.sleep(0.5)
    assert not errors, errors[:3]
    after = [a for a in answers if a[1] > flipped_at]
    assert after and all(a[2] == days.new_as_of for a in after)
    for _, _, as_of, cid, row in answers:
        assert row == days.rows[as_of].get(cid), (as_of, cid)  # one stored version, never a mix
    held = SlotMeta.loads(r.get(keys.meta("a")))
    assert (held.state, held.as_of, held.folding) == ("complete", days.new_as_of, "")
    assert r.get(keys.ptr).decode().startswith("a|")  # folded: the base alone is served
    # the base alone now holds the partition: served without the overlay, every row equal
    for b in range(max(over.overlay, over.stale)):
        r.delete(keys.rows("x", b))
    r.set(keys.ptr, "a|check")
    _served_equals_offline(days.store, server, days.new_as_of)


def test_run_daily_and_backfill_push_and_report_a_push_that_failed(
        days4, client, tmp_path, server, monkeypatch, capsys):
    """``run-daily`` pushes after its commit and reports it; with Redis down its report says
    the online store is behind and it exits 1 (the commit stands); ``backfill`` pushes too."""
    store = tmp_path / "store"
    raw = _raw(days4, tmp_path, 2)
    monkeypatch.setenv("FEATURESTORE_ONLINE_STORE", server.url)
    monkeypatch.setenv("FEATURESTORE_RETRAIN_MODELS", "[]")
    _, days = days4
    daily = ["run-daily", "--store", str(store), "--raw", str(raw), "--scheduler",
             client.scheduler.address, "--json"]
    assert cli([*daily, "--today", days[1]]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["online"]["status"] == "pushed"
    latest = _latest(store)
    assert report["online"]["tables"]["customer_features"]["as_of"] == latest
    fs = FeatureStore(Settings(store=str(store), online_store=server.url))
    assert fs.online_status()["customer_features"]["behind"] is False

    server.stop()
    raw = _raw(days4, tmp_path, 3)
    assert cli([*daily, "--today", days[2]]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["online"]["status"] == "behind" and not report["ok"]
    assert "online push" in report["online"]["hint"]
    assert _latest(store) > latest  # the offline commit stands

    server.start()  # empty; backfill rewrites the range and pushes the latest as-of
    assert cli(["backfill", "--store", str(store), "--scheduler", client.scheduler.address,
                "--from", days[0]]) == 0
    capsys.readouterr()
    status = fs.online_status()
    assert status["customer_features"]["served"]["as_of"] == _latest(store)
    assert not any(s["behind"] for t, s in status.items() if s["committed"])
