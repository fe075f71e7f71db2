"""Contract suite of the ``Source`` seam: every implementation runs it.

The built-in sources (weblog drops, the Online Retail CSV) and one added by a test with one
class (:class:`SignupSource`) named by its dotted path in a repository file, as a user would.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from typing import Any, ClassVar

import pandas as pd
import pytest

from featurestore import FeatureStore, Settings
from featurestore.features.definitions import DEFAULT_REPO
from featurestore.features.materialize import MaterializeReport
from featurestore.repository import resolve_repo
from featurestore.sources.base import Source, SourceReport, source_class
from featurestore.storage import Store
from tests.conftest import ONLINE_RETAIL

SIGNUP_KIND = f"{__name__}.SignupSource"


class SignupReport:
    def __init__(self, files: int, rows: int) -> None:
        self.files_ingested, self.rows = files, rows

    @property
    def ok(self) -> bool:
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"files_ingested": self.files_ingested, "rows_ingested": self.rows}


class SignupSource:
    """A test source: a CSV of ``customer_id,signup_date``; tables count signups in a window
    and the days since the latest one (features ``count`` with a window, ``recency``)."""

    kind: ClassVar[str] = SIGNUP_KIND

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store

    def ingest(self, raw: str, *, client, raw_storage_options, progress,
               accept_changed: bool = False) -> SignupReport:
        with open(raw, "rb") as f:
            data = f.read()
        key = hashlib.md5(data).hexdigest()
        if self.store.exists("_ledger", "signups", f"{key}.json"):
            return SignupReport(0, 0)
        df = pd.read_csv(raw, dtype={"customer_id": "string"})
        self.store.write_parquet(df, "signups", f"part-{key}.parquet")
        self.store.write_json({"rows": len(df)}, "_ledger", "signups", f"{key}.json")
        return SignupReport(1, len(df))

    def materialize(self, repo, report, *, client, start, end, force) -> None:
        files = [f for f in self.store.listdir("signups") if f.endswith(".parquet")]
        if not files:
            return
        df = pd.concat([self.store.read_parquet("signups", f) for f in files])
        df["day"] = pd.to_datetime(df["signup_date"]).dt.date
        tables = {n: t for n, t in repo.tables.items()
                  if repo.sources[t.source].kind == self.kind}
        done = set()
        if self.store.exists("_state", "signups.json"):
            done = set(self.store.read_json("_state", "signups.json"))
        first, last = df["day"].min(), df["day"].max()
        day = max(start or first, first)
        while day <= min(end or last, last):
            if force or day.isoformat() not in done:
                seen = df[df["day"] <= day]
                for name, table in tables.items():
                    out = pd.DataFrame({"customer_id": sorted(seen["customer_id"].unique())})
                    for fname, f in table.features.items():
                        if f.aggregation == "count":
                            lo = day - dt.timedelta(f.window_days - 1)
                            window = seen[seen["day"] >= lo].groupby("customer_id").size()
                            out[fname] = out["customer_id"].map(window).fillna(0).astype("int64")
                        else:  # recency
                            latest = seen.groupby("customer_id")["day"].max()
                            out[fname] = [(day - latest[c]).days for c in out["customer_id"]]
                    out["customer_id"] = out["customer_id"].astype("string")
                    self.store.write_parquet(out, name, f"as_of={day}", "part-0.parquet")
                    report.as_of_written.setdefault(name, []).append(day.isoformat())
                    report.rows_written[name] = report.rows_written.get(name, 0) + len(out)
                done.add(day.isoformat())
            day += dt.timedelta(1)
        self.store.write_json(sorted(done), "_state", "signups.json")


SIGNUP_REPO = DEFAULT_REPO.read_text().replace("\nentities:", f"""
  signups:
    kind: {SIGNUP_KIND}
    table: signups

entities:""") + """
  customer_signups:
    source: signups
    entity: customer
    features:
      signups_7d: {aggregation: count, window_days: 7}
      days_since_signup: {aggregation: recency}
"""


def _signups_csv(path) -> str:
    rows = [("C1", "2026-01-01"), ("C2", "2026-01-02"), ("C1", "2026-01-05"),
            ("C3", "2026-01-05")]
    path.write_text("customer_id,signup_date\n" + "".join(f"{c},{d}\n" for c, d in rows))
    return str(path)


def _retail_csv(path) -> str:
    with gzip.open(ONLINE_RETAIL, "rt") as f:
        lines = [next(f) for _ in range(3000)]
    path.write_text("".join(lines))
    return str(path)


@pytest.fixture(params=["weblog", "retail", "signups"])
def case(request, tmp_path, drops_copy):
    store = Store(str(tmp_path / "store"))
    repo_file = tmp_path / "repo.yaml"
    repo_file.write_text(SIGNUP_REPO)
    from featurestore.repository import apply_repo

    apply_repo(store, str(repo_file))
    raw = {"weblog": lambda: str(drops_copy[0]),
           "retail": lambda: _retail_csv(tmp_path / "retail.csv"),
           "signups": lambda: _signups_csv(tmp_path / "signups.csv")}[request.param]()
    kind = {"signups": SIGNUP_KIND}.get(request.param, request.param)
    return store, kind, raw


def test_source_ingests_once_and_materializes_its_tables(case, client):
    store, kind, raw = case
    repo = resolve_repo(store, None)
    source = source_class(kind)(store, Settings(store=store.url))
    assert isinstance(source, Source)

    first = source.ingest(raw, client=client, raw_storage_options=None, progress=False)
    assert isinstance(first, SourceReport) and first.ok
    assert first.to_dict()["files_ingested"] >= 1
    json.dumps(first.to_dict(), default=str)
    again = source.ingest(raw, client=client, raw_storage_options=None, progress=False)
    assert again.ok and again.to_dict()["files_ingested"] == 0  # exactly once

    report = MaterializeReport()
    source.materialize(repo, report, client=client, start=None, end=None, force=False)
    mine = [n for n, t in repo.tables.items() if repo.sources[t.source].kind == kind]
    assert mine and set(report.as_of_written) == set(mine)
    for table in mine:
        dates = report.as_of_written[table]
        latest = pd.read_parquet(store.uri(table, f"as_of={dates[-1]}"))
        assert len(latest) == report.rows_written[table] // len(dates) or len(latest) > 0
        assert str(latest["customer_id"].dtype) in ("string", "str", "object")
        assert set(repo.tables[table].features) <= set(latest.columns)
    rerun = MaterializeReport()
    source.materialize(repo, rerun, client=client, start=None, end=None, force=False)
    assert rerun.as_of_written == {}  # incremental: nothing new, nothing written


def test_plugin_source_end_to_end_through_the_facade(tmp_path, client):
    """One class plus its dotted path in the repository: ingested and materialized by the
    facade with no code change, values checked against a plain computation."""
    repo_file = tmp_path / "repo.yaml"
    repo_file.write_text(SIGNUP_REPO)
    fs = FeatureStore(Settings(store=str(tmp_path / "store")), client=client)
    fs.apply(str(repo_file))
    result = fs.ingest(_signups_csv(tmp_path / "s.csv"), source="signups")
    assert result.ok and result.materialize.as_of_written["customer_signups"][-1] == "2026-01-05"
    got = pd.read_parquet(fs.offline_store.uri("customer_signups", "as_of=2026-01-05"))
    got = got.set_index("customer_id")
    assert got.loc["C1", "signups_7d"] == 2 and got.loc["C1", "days_since_signup"] == 0
    assert got.loc["C2", "signups_7d"] == 1 and got.loc["C2", "days_since_signup"] == 3
