"""A whole push split over tasks by parquet row groups writes every row once (real
redis-server), and reads back equal to pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.online.redis import RedisOnlineStore
from featurestore.online.redis_push import push_online
from featurestore.storage import Store
from tests.serving_helpers import expected_row


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
    for cid in frame["customer_id"]:
        assert view.get(cid) == expected_row(frame, cid), cid
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
