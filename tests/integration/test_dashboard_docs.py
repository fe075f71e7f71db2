"""docs/dashboards.md's examples, run as written against a local store built by the generator
and the CLI, and against the same store copied to a moto ``s3://`` bucket."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "dashboards.md"
TYPES = {"string": ("string", "large_string"), "bigint": ("int64",), "double": ("double",)}


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


@pytest.fixture(scope="module")
def store(dashboard_store) -> Path:
    """The dashboard tests' store (built once per run; the examples only read it)."""
    return dashboard_store["store"]


def _run_examples(url: str, options: dict, bi_db: Path) -> dict:
    namespace = {"STORE": url, "STORAGE_OPTIONS": options, "BI_DB": bi_db}
    blocks = _blocks("python")
    assert len(blocks) == 4
    for code in blocks:  # one namespace: later examples compare with earlier results
        exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - the doc's own examples
    return namespace


def test_examples_on_a_local_store(store, tmp_path):
    ns = _run_examples(str(store), {}, tmp_path / "bi.duckdb")
    assert str(ns["latest"]) == max(p.name for p in (store / "customer_features").iterdir())[6:]
    assert (tmp_path / "bi.duckdb").exists()


def test_examples_on_s3(store, moto_server, s3_bucket, tmp_path):
    import s3fs

    options = {"endpoint_url": moto_server, "key": "testing", "secret": "testing"}
    fs = s3fs.S3FileSystem(**options)
    fs.put(str(store) + "/", f"{s3_bucket}/store/", recursive=True)
    ns = _run_examples(f"s3://{s3_bucket}/store", options, tmp_path / "bi.duckdb")
    local = _run_examples(str(store), {}, tmp_path / "bi-local.duckdb")
    assert ns["rows"] == local["rows"] and len(ns["df"]) == len(local["df"])


def test_athena_ddl_matches_the_files(store):
    (ddl,) = [b for b in _blocks("sql") if "customer_features (" in b]
    columns = re.findall(r"(\w+) (string|bigint|double)", ddl.split("PARTITIONED BY")[0])
    latest = max((store / "customer_features").iterdir())
    schema = pq.read_schema(next(latest.glob("*.parquet")))
    assert [c for c, _ in columns] == [f.name for f in schema]
    for name, sql_type in columns:
        assert str(schema.field(name).type) in TYPES[sql_type], name
