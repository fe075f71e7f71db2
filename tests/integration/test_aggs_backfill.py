"""A SPEC §3a feature added after the drops were ingested (``apply`` then ``backfill``): the
days' states come from the stored events (no ingest partials were built for it) and every
table equals a store that had the feature from the start (built from the ingest partials)."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import yaml

from featurestore.features.definitions import DEFAULT_REPO, parse_feature_repo
from featurestore.materialization import materialize
from featurestore.sources.weblog.ingest import ingest_weblog
from featurestore.storage import Store
from tests.reliability.test_kill9_aggs import EXTRA


def _tables(store: Store) -> dict[str, pd.DataFrame]:
    root = store.path("customer_features")
    return {d: pq.read_table(f"{root}/as_of={d}/part-0.parquet").to_pandas()
            for d in sorted(store.partitions("customer_features", "as_of"))}


def test_backfilled_feature_equals_one_built_at_ingest(drops, client, tmp_path):
    raw, _ = drops
    text = yaml.safe_load(DEFAULT_REPO.read_text())
    text["tables"]["customer_features"]["features"].update(EXTRA)
    aggs = parse_feature_repo(yaml.safe_dump(text), "aggs")
    default = parse_feature_repo(DEFAULT_REPO.read_text(), "default")
    later, early = Store(str(tmp_path / "later")), Store(str(tmp_path / "early"))
    ingest_weblog(str(raw), later, client=client, repo=default, progress=False)
    materialize(later, client=client, repo=default)
    report = materialize(later, client=client, repo=aggs)  # the backfill
    assert report.as_of_written["customer_features"]
    ingest_weblog(str(raw), early, client=client, repo=aggs, progress=False)
    materialize(early, client=client, repo=aggs)
    a, b = _tables(later), _tables(early)
    assert a.keys() == b.keys() and a
    for day in a:
        pd.testing.assert_frame_equal(a[day], b[day], check_exact=False, rtol=1e-12, obj=day)
        assert set(EXTRA) <= set(a[day].columns)
