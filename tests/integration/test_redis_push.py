"""A whole push split over tasks by parquet row groups writes every row once (real
redis-server), and reads back equal to pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.online.redis import RedisOnlineStore
from featurestore.online.redis_push import push_online
from featurestore.storage import Store
from tests.serving_helpers import expected_rows


def test_whole_push_by_row_groups_writes_every_row_once(tmp_path, redis_server):
    rng = np.random.default_rng(11)
    n = 1000
    frame = pd.DataFrame({
        "customer_id": [f"K{i:05d}" for i in range(n)],
        "page_views_7d": rng.poisson(4, n).astype("int64"),
        "revenue_30d": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(1.0, 20.0, n)),
        "days_since_last_visit": pd.array(np.where(rng.random(n) < 0.2, None,
                                                   rng.integers(0, 40, n)), dtype="Int64"),
    })
    folder = tmp_path / "store" / "customer_features" / "as_of=2026-03-05"
    folder.mkdir(parents=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.slice(0, 700), folder / "part-0.parquet", row_group_size=100)  # 7
    pq.write_table(table.slice(700), folder / "part-1.parquet", row_group_size=100)  # 3
    store = Store(str(tmp_path / "store"))
    report = push_online(store, redis_server.url, tables={"customer_features": ["customer_id"]},
                         recency={"customer_features": ["days_since_last_visit"]}, parts=3)
    info = report.tables["customer_features"]
    assert (info["mode"], info["written"]) == ("full", n)
    online = RedisOnlineStore(store, url=redis_server.url, tables=("customer_features",))
    online.refresh()
    view = online.view("customer_features", list(frame["customer_id"]) + ["nobody"])
    assert "nobody" not in view.index and len(view.index) == n
    want = expected_rows(frame)
    for cid in frame["customer_id"]:
        assert view.get(cid) == want[cid], cid
    online.stop()


def test_two_stores_share_one_redis_without_mixing(tmp_path, redis_server):
    """Keys are namespaced per store: two stores pushed to one Redis each serve their own
    rows, and emptying one store's keys does not touch the other's."""
    import redis

    stores = []
    for k in (0, 1):
        frame = pd.DataFrame({"customer_id": ["A", "B"], "page_views_7d": [10 + k, 20 + k]})
        folder = tmp_path / f"s{k}" / "customer_features" / "as_of=2026-03-05"
        folder.mkdir(parents=True)
        frame.to_parquet(folder / "part-0.parquet", index=False)
        store = Store(str(tmp_path / f"s{k}"))
        push_online(store, redis_server.url, tables={"customer_features": ["customer_id"]},
                    recency={})
        stores.append(store)
    views = [RedisOnlineStore(s, url=redis_server.url, tables=("customer_features",))
             .view("customer_features", ["A", "B"]) for s in stores]
    assert [v.get("B") for v in views] == [{"page_views_7d": 20}, {"page_views_7d": 21}]
    spaces = [s.read_json("_state", "online.json")["namespace"] for s in stores]
    assert spaces[0] != spaces[1]
    r = redis.Redis.from_url(redis_server.url)
    for key in r.scan_iter(match=f"{{fs:{spaces[0]}:*"):
        r.delete(key)
    assert RedisOnlineStore(stores[1], url=redis_server.url, tables=("customer_features",)) \
        .view("customer_features", ["A"]).get("A") == {"page_views_7d": 11}


def _publish(tmp_path, as_of: str, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"customer_id": [f"C{i:06d}" for i in range(n)],
                          "page_views_7d": rng.poisson(4, n).astype("int64")})
    folder = tmp_path / "store" / "customer_features" / f"as_of={as_of}"
    folder.mkdir(parents=True)
    frame.to_parquet(folder / "part-0.parquet", index=False)
    return frame


def test_buckets_follow_the_row_count_and_readers_follow_a_flip_to_other_buckets(
        tmp_path, redis_server):
    """A whole push sizes a slot's buckets by its rows (about 100 customers each), every row
    sits in bucket crc32(id) mod buckets, a reader that cached the old slot answers the new
    one's rows after a flip (its first call gets the new buckets), a day's difference keeps
    the slot's buckets and deletes across them, and a whole rewrite after one that died clears
    every bucket key the dead one may have written."""
    import zlib

    import redis

    from featurestore.online.redis_codec import SlotMeta, TableKeys

    store = Store(str(tmp_path / "store"))
    args = {"tables": {"customer_features": ["customer_id"]}, "recency": {}}
    first = _publish(tmp_path, "2026-03-05", 150, 1)
    report = push_online(store, redis_server.url, **args)
    online = RedisOnlineStore(store, url=redis_server.url, tables=("customer_features",))
    online.refresh()
    ids = list(first["customer_id"])
    assert online.view("customer_features", ids).get(ids[7]) == \
        {"page_views_7d": int(first["page_views_7d"][7])}
    r = redis.Redis.from_url(redis_server.url)
    keys = TableKeys(report.namespace, "customer_features")
    assert SlotMeta.loads(r.get(keys.meta("a"))).buckets == 2

    second = _publish(tmp_path, "2026-03-06", 1050, 2)  # slot b: a whole push, 11 buckets
    assert push_online(store, redis_server.url, **args).tables["customer_features"]["mode"] \
        == "full"
    assert SlotMeta.loads(r.get(keys.meta("b"))).buckets == 11
    for cid, value in zip(second["customer_id"][:200], second["page_views_7d"][:200]):
        raw = r.hget(keys.rows("b", zlib.crc32(cid.encode()) % 11), cid)
        assert raw == f"[{value}]".encode(), cid
    ids2 = list(second["customer_id"])
    view = online.view("customer_features", ids2)  # cached slot a: moves to b in this read
    assert view.as_of == "2026-03-06" and len(view.index) == 1050
    assert all(view.get(c) == {"page_views_7d": int(v)}
               for c, v in zip(second["customer_id"], second["page_views_7d"]))

    third = _publish(tmp_path, "2026-03-07", 40, 3)  # its difference: an overlay over b
    info = push_online(store, redis_server.url, **args).tables["customer_features"]
    differ = int((third["page_views_7d"].values != second["page_views_7d"].values[:40]).sum())
    assert (info["slot"], info["mode"], info["written"], info["deleted"]) == \
        ("x", "diff", differ, 1010)  # only the changed rows, and the gone customers
    over = SlotMeta.loads(r.get(keys.meta("x")))
    assert (over.base_slot, over.buckets, over.overlay) == ("b", 11, 11)
    view = online.view("customer_features", ids2)
    assert sorted(view.index) == list(third["customer_id"])  # the 1010 others deleted
    assert all(view.get(c) == {"page_views_7d": int(v)}
               for c, v in zip(third["customer_id"], third["page_views_7d"]))
    # folded: base b holds the 40 rows in its 11 buckets, its metadata the generation
    assert sum(r.hlen(keys.rows("b", b)) for b in range(11)) == 40
    held = SlotMeta.loads(r.get(keys.meta("b")))
    assert (held.state, held.as_of, held.folding) == ("complete", "2026-03-07", "")
    assert r.get(keys.ptr).decode().startswith("b|")  # then served from the base alone

    # a whole rewrite of slot a that died after writing into buckets 0..10 ...
    for b in range(11):
        r.hset(keys.rows("a", b), "junk", "[0]")
    assert r.get(keys.meta("a")) is None  # retired when b became the base (one base held)
    dead = SlotMeta.loads(r.get(keys.meta("b")))
    r.set(keys.meta("a"), SlotMeta(**{**dead.__dict__, "state": "writing", "base": None,
                                      "stale": 11}).dumps())
    fourth = _publish(tmp_path, "2026-03-08", 30, 4).rename(
        columns={"page_views_7d": "page_views_30d"})  # other columns: a base rewritten
    fourth.to_parquet(tmp_path / "store" / "customer_features" / "as_of=2026-03-08"
                      / "part-0.parquet", index=False)
    info = push_online(store, redis_server.url, **args).tables["customer_features"]
    assert (info["slot"], info["mode"], info["written"]) == ("a", "full", 30)
    # ... is cleared whole by the next one: 30 rows in one bucket, no key of the old ones left
    left = sorted(k.decode() for k in r.scan_iter(match=keys.rows("a") + "*"))
    assert left == [keys.rows("a", 0)] and r.hlen(keys.rows("a", 0)) == 30
    # and the base it replaced and the overlays over it are gone (one base held, not two)
    for slot in ("b", "x", "y"):
        assert not list(r.scan_iter(match=f"{keys.tag}:{slot}:*")), slot
    view = online.view("customer_features", ids)
    assert view.get(ids[5]) == {"page_views_30d": int(fourth["page_views_30d"][5])}
    online.stop()


def test_an_error_reply_in_a_bucketed_write_raises_and_leaves_the_client_usable(redis_server):
    """The writer counts replies on the raw socket (RESP2, the push's clients) or parses them
    (RESP3): either way an error reply among them (here WRONGTYPE: one bucket key holds a
    string) raises Redis's message, and the client still works."""
    import zlib

    import redis

    from featurestore.online.redis import redis_client
    from featurestore.online.redis_protocol import Dest, write_arrow

    ids = pa.array([f"E{i:04d}" for i in range(3000)])
    values = pa.array([f"[{i}]" for i in range(3000)])
    for protocol in (2, 3):
        r = redis_client(redis_server.url, protocol=protocol)
        r.set("errtest:rows:1", "not a hash")
        try:
            write_arrow(r, Dest("errtest:rows", 4), ids, values)
        except redis.exceptions.ResponseError as exc:
            assert "WRONGTYPE" in str(exc)
        else:
            raise AssertionError("the WRONGTYPE reply was not raised")
        assert r.ping() and r.get("errtest:rows:1") == b"not a hash"
        r.delete(*[f"errtest:rows:{b}" for b in range(4)])
        write_arrow(r, Dest("errtest:rows", 4), ids, values)
        assert sum(r.hlen(f"errtest:rows:{b}") for b in range(4)) == 3000
        assert r.hget(f"errtest:rows:{zlib.crc32(b'E0042') % 4}", "E0042") == b"[42]"
        r.delete(*[f"errtest:rows:{b}" for b in range(4)])


def test_a_slot_of_one_hash_written_before_buckets_is_read_then_rewritten_into_buckets(
        tmp_path, redis_server):
    """A served slot in the older layout (one hash ``:rows``, no ``buckets`` in its metadata)
    answers reads, and the next push rewrites the idle slot whole into buckets."""
    import orjson
    import redis

    from featurestore.online.redis_codec import SlotMeta, TableKeys

    store = Store(str(tmp_path / "store"))
    frame = _publish(tmp_path, "2026-03-05", 30, 5)
    store.write_json({"namespace": "legacy1", "url": "x", "push_id": "old", "pushed_at": "",
                      "tables": {"customer_features": {"as_of": "2026-03-05",
                                                       "generation": 0, "slot": "a"}}},
                     "_state", "online.json")
    keys = TableKeys("legacy1", "customer_features")
    r = redis.Redis.from_url(redis_server.url)
    meta = {"state": "complete", "push_id": "old", "as_of": "2026-03-05", "generation": 0,
            "columns": ["page_views_7d"], "dtypes": {"page_views_7d": "int64"},
            "keys": ["customer_id"], "recency": [], "base": None, "pushed_at": 0.0}
    r.set(keys.meta("a"), orjson.dumps(meta))
    r.hset(keys.rows("a"), mapping={c: f"[{v}]" for c, v in
                                    zip(frame["customer_id"], frame["page_views_7d"])})
    r.set(keys.ptr, "a|old")
    online = RedisOnlineStore(store, url=redis_server.url, tables=("customer_features",))
    online.refresh()
    ids = list(frame["customer_id"])
    view = online.view("customer_features", [*ids, "nobody"])
    assert len(view.index) == 30 and view.get(ids[3]) == \
        {"page_views_7d": int(frame["page_views_7d"][3])}
    _publish(tmp_path, "2026-03-06", 30, 6)
    info = push_online(store, redis_server.url, tables={"customer_features": ["customer_id"]},
                       recency={}).tables["customer_features"]
    assert (info["slot"], info["mode"], info["written"]) == ("b", "full", 30)
    assert SlotMeta.loads(r.get(keys.meta("b"))).buckets == 1
    assert r.hlen(keys.rows("b", 0)) == 30
    online.stop()


@pytest.mark.parametrize("send_rows", [0, 200_000])
def test_a_days_overlay_folds_into_the_base_by_script_or_by_sending_the_rows(
        tmp_path, redis_server, monkeypatch, send_rows):
    """Either fold (the Lua script per overlay bucket, or the committing process sending the
    written rows into the base's buckets) leaves the base alone holding exactly the new
    partition: changed rows, new customers, and the customers gone deleted."""
    import redis

    from featurestore.online import redis_push
    from featurestore.online.redis_codec import SlotMeta, TableKeys

    monkeypatch.setattr(redis_push, "FOLD_SEND_ROWS", send_rows)
    redis.Redis.from_url(redis_server.url).flushall()
    store = Store(str(tmp_path / "store"))
    args = {"tables": {"customer_features": ["customer_id"]}, "recency": {}}
    first = _publish(tmp_path, "2026-03-05", 900, 7)
    push_online(store, redis_server.url, **args)
    second = _publish(tmp_path, "2026-03-06", 1000, 8).iloc[50:]  # 50 gone, 100 new
    second.to_parquet(tmp_path / "store" / "customer_features" / "as_of=2026-03-06"
                      / "part-0.parquet", index=False)
    report = push_online(store, redis_server.url, **args)
    info = report.tables["customer_features"]
    assert (info["mode"], info["deleted"]) == ("diff", 50) and info["folded"] > 0
    r = redis.Redis.from_url(redis_server.url)
    keys = TableKeys(report.namespace, "customer_features")
    assert r.get(keys.ptr).decode().startswith("a|")  # the base alone is served
    assert SlotMeta.loads(r.get(keys.meta("a"))).as_of == "2026-03-06"
    online = RedisOnlineStore(store, url=redis_server.url, tables=("customer_features",))
    ids = list(first["customer_id"]) + list(second["customer_id"])
    view = online.view("customer_features", ids)
    assert sorted(view.index) == sorted(second["customer_id"])
    assert all(view.get(c) == {"page_views_7d": int(v)}
               for c, v in zip(second["customer_id"], second["page_views_7d"]))
    assert sum(r.hlen(keys.rows("a", b)) for b in range(9)) == len(second)
    online.stop()
