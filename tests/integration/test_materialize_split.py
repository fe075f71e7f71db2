"""Issue #27: a day's customer rows and customer x product rows are combined by two tasks on
two workers. The customer x product table's online delta reads its candidates from the
published customer rows, so its task must wait for them: here the customer rows' task is
made slow (an in-process cluster, so the task can be patched) and the delta must still hold
every row of the first day (each customer in it was active that day), against the published
partition read back independently."""

from __future__ import annotations

import time

import pyarrow.parquet as pq
from distributed import Client, LocalCluster

import featurestore.features.materialize as m
from featurestore import Store, ingest_weblog
from featurestore.generate import generate_weblog
from featurestore.materialization import materialize


def test_pair_delta_waits_for_the_days_customer_rows(tmp_path, monkeypatch):
    raw, store = tmp_path / "raw", Store(str(tmp_path / "store"))
    generate_weblog(str(raw), days=1, customers=300, products=30, rows_per_day=3000, parts=2,
                    seed=11)
    original = m._daily_task

    def slow(*args, **kwargs):
        time.sleep(3)  # the pair side is done long before this publishes the customer rows
        return original(*args, **kwargs)

    monkeypatch.setattr(m, "_daily_task", slow)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        ingest_weblog(str(raw), store, client=client)
        report = materialize(store, client=client)
    (day,) = report.as_of_written["customer_product_features"]
    table = pq.read_table(tmp_path / "store" / "customer_product_features" / f"as_of={day}")
    delta_dir = tmp_path / "store" / "_state" / "online_delta" / "customer_product_features"
    delta = pq.read_table(delta_dir / f"as_of={day}.parquet")
    assert table.num_rows > 0
    assert delta.num_rows == table.num_rows  # the first day: every row may have changed
    assert delta.select(table.column_names).equals(table.select(table.column_names))
