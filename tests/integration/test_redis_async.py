"""The API's pipelined Redis connection (``featurestore/online/redis_async.py``) against a real
redis-server: many concurrent commands on one connection each get their own reply, password
and database come from the URL, a dropped connection fails the pending reads (the API's 503)
and the next read reconnects, and a server without the read script is sent it once."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from featurestore.online.redis import RedisOnlineStore
from featurestore.online.redis_async import AsyncRedis
from featurestore.online.redis_push import push_online
from featurestore.storage import Store
from tests._redis_server import RedisServer

pytest.importorskip("hiredis", reason="the redis extra")
from hiredis import pack_command


@pytest.fixture()
def guarded(tmp_path):
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis", password="s3cret+1")
    server.start()
    yield server
    server.stop()


def test_concurrent_commands_share_one_connection_and_get_their_own_replies(guarded):
    import redis

    url = guarded.url.replace("/0", "/3").replace("s3cret+1", "s3cret%2B1")
    redis.Redis.from_url(url).mset({f"k{i}": f"v{i}" for i in range(300)})

    async def main():
        conn = AsyncRedis(url)
        got = await asyncio.gather(*[conn.execute(pack_command(("GET", f"k{i}")))
                                     for i in range(300)])
        assert got == [f"v{i}".encode() for i in range(300)]
        assert conn._proto is not None and not conn._proto.closed  # one connection
        err = await conn.execute(pack_command(("HGET", "k1", "f")))  # WRONGTYPE: a reply
        assert "WRONGTYPE" in str(err)
        assert await conn.execute(pack_command(("GET", "k7"))) == b"v7"
        await conn.aclose()
        bad = AsyncRedis(guarded.url.replace("s3cret+1", "wrong"))
        with pytest.raises(ConnectionError):
            await bad.execute(pack_command(("PING",)))

    asyncio.run(main())
    assert redis.Redis.from_url(guarded.url).get("k1") is None  # database 3, not 0


def test_reads_fail_while_redis_is_down_then_reconnect_and_reload_the_script(
        tmp_path, guarded):
    import redis

    folder = tmp_path / "store" / "customer_features" / "as_of=2026-03-05"
    folder.mkdir(parents=True)
    pd.DataFrame({"customer_id": ["A", "B"], "page_views_7d": [1, 2]}).to_parquet(
        folder / "part-0.parquet", index=False)
    store = Store(str(tmp_path / "store"))
    push_online(store, guarded.url, tables={"customer_features": ["customer_id"]}, recency={})
    online = RedisOnlineStore(store, url=guarded.url, tables=("customer_features",),
                              keys={"customer_features": ["customer_id"]})

    async def read():
        view = await online.aview("customer_features", ["B", "Z"])
        return view.get("B"), "Z" in view.index

    async def main():
        assert await read() == ({"page_views_7d": 2}, False)
        redis.Redis.from_url(guarded.url).script_flush()  # e.g. a restarted Redis
        assert await read() == ({"page_views_7d": 2}, False)  # EVAL once, then EVALSHA
        guarded.stop()
        from featurestore._exceptions import OnlineStoreUnavailableError

        with pytest.raises(OnlineStoreUnavailableError):
            await read()
        guarded.persist = False
        guarded.start()  # empty: the pushed table is lost (503, never "not found")
        with pytest.raises(OnlineStoreUnavailableError, match="lost"):
            await read()
        push_online(store, guarded.url, tables={"customer_features": ["customer_id"]},
                    recency={})
        assert await read() == ({"page_views_7d": 2}, False)
        await online.aclose()

    asyncio.run(main())
