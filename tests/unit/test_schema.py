"""featurestore.schema: the one set of column types writers conform to (no cluster, no store
server: files in a temp folder, read back by plain pandas and pyarrow)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.schema import conform, nullable_columns, partitioning, to_pandas


def _write(table: pa.Table, folder, name: str = "part-0.parquet") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / name)


def test_strings_become_large_string_and_pandas_string():
    table = pa.table({"customer_id": pa.array(["a", None], pa.string()),
                      "product_id": pa.array(["p", "q"]).dictionary_encode(),
                      "n": pa.array([1, 2], pa.int64())})
    out = conform(table)
    assert out.schema.field("customer_id").type == pa.large_string()
    assert out.schema.field("product_id").type == pa.dictionary(pa.int32(), pa.large_string())
    assert out.column("customer_id").to_pylist() == ["a", None]
    df = out.to_pandas()
    assert str(df["customer_id"].dtype) == "string" and df["customer_id"].isna().sum() == 1
    assert str(df["n"].dtype) == "int64"


def test_nullable_int_is_Int64_in_every_file_even_without_nulls(tmp_path):
    """pandas takes a dataset's dtypes from its first file: a file without nulls must still
    say Int64, or the whole read turns the column into float64."""
    no_nulls = conform(pa.table({"d": pa.array([1, 2], pa.int64())}), nullable=["d"])
    with_nulls = conform(pa.table({"d": pa.array([None, 4], pa.int64())}))
    _write(no_nulls, tmp_path / "as_of=2026-01-01")
    _write(with_nulls, tmp_path / "as_of=2026-01-02")
    assert nullable_columns(no_nulls.schema) == ["d"] == nullable_columns(with_nulls.schema)
    df = pd.read_parquet(tmp_path)
    assert str(df["d"].dtype) == "Int64"
    assert df["d"].isna().sum() == 1
    assert sorted(df["d"].dropna().tolist()) == [1, 2, 4]


def test_conform_keeps_metadata_nullable_from_the_feature_engine():
    df = pd.DataFrame({"d": pd.array([1, 2], dtype="Int64"), "x": [1.5, 2.5]})
    table = pa.Table.from_pandas(df, preserve_index=False)
    out = conform(table)
    assert nullable_columns(out.schema) == ["d"]
    assert str(out.to_pandas()["x"].dtype) == "float64"


def test_conform_is_free_on_conformed_input():
    table = conform(pa.table({"customer_id": pa.array(["a"], pa.large_string())}))
    again = conform(table)
    assert again.column(0).chunk(0).buffers()[2].address == \
        table.column(0).chunk(0).buffers()[2].address  # no copy of the string data
    assert again.schema.equals(table.schema, check_metadata=True)


def test_date_columns_and_partition_keys_read_as_dates(tmp_path):
    for day in ("2026-01-01", "2026-01-02"):
        _write(conform(pa.table({"customer_id": ["a", "b"], "n": [1, 2]})),
               tmp_path / f"as_of={day}")
    plain = pd.read_parquet(tmp_path)
    assert isinstance(plain["as_of"].dtype, pd.CategoricalDtype)  # documented
    df = pd.read_parquet(tmp_path, partitioning=partitioning())
    assert set(df["as_of"]) == {dt.date(2026, 1, 1), dt.date(2026, 1, 2)}
    one = pd.read_parquet(tmp_path, partitioning=partitioning(),
                          filters=[("as_of", "==", dt.date(2026, 1, 2))])
    assert len(one) == 2 and (one["as_of"] == dt.date(2026, 1, 2)).all()
    table = pq.read_table(tmp_path, partitioning=partitioning())
    assert table.schema.field("as_of").type == pa.date32()
    mine = to_pandas(table)
    assert str(mine["customer_id"].dtype) == "string"
    assert mine["as_of"].map(type).eq(dt.date).all()
