"""Issue #18 item 2 through the real materialization: with many customers in history and few
active on a day, the state that day writes holds only the active ones, and the features read
through the chain equal an independent pandas computation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from featurestore import Store
from featurestore.features.state import stored_rows
from featurestore.generate import generate_weblog
from featurestore.materialization import materialize
from featurestore.sources.weblog.ingest import ingest_weblog
from tests.integration.test_features import (
    assert_same,
    read_as_of,
    reference_customer,
    reference_customer_product,
    reference_hits,
)

DAY1 = dt.date(2026, 1, 1)


def test_a_days_state_write_is_bounded_by_its_active_customers(tmp_path, client):
    raw = tmp_path / "raw"
    generate_weblog(str(raw), days=1, customers=3000, products=20, rows_per_day=9000, parts=2,
                    seed=4, start=DAY1, columns=12)
    generate_weblog(str(raw), days=3, customers=60, products=20, rows_per_day=150, parts=1,
                    seed=6, start=DAY1 + dt.timedelta(1), columns=12)
    store = Store(str(tmp_path / "store"))
    ingest_weblog(str(raw), store, client=client)
    materialize(store, client=client)
    h, pairs = reference_hits(raw)
    history = h[h["day"] == DAY1]["customer_id"].nunique()
    assert history > 2000
    sizes = {}
    for n in range(4):
        day = DAY1 + dt.timedelta(n)
        active = pd.read_parquet(store.path("events", f"event_date={day}"))[
            "customer_id"].dropna().nunique()
        kind, rows = stored_rows(store, day)
        assert (kind, rows) == (("full", history) if n == 0 else ("delta", active)), day
        sizes[n] = Path(store.path("_state/customer", f"as_of={day}", "part-0.arrow")
                        ).stat().st_size
        # the features of every day, read through the chain, against plain pandas
        assert_same(read_as_of(store, "customer_features", day), reference_customer(h, pairs, day))
        assert_same(read_as_of(store, "customer_product_features", day),
                    reference_customer_product(pairs, day))
    assert max(sizes[n] for n in (1, 2, 3)) * 20 < sizes[0], sizes
