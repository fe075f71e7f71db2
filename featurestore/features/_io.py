"""Publishing feature-table partitions.

Tables go through pyarrow rather than ``Store.write_parquet`` (fastparquet): fastparquet records
a nullable ``Int64`` column's numpy type as ``int64``, so ``pandas.read_parquet`` reads it back
as float64; pyarrow's pandas metadata keeps ``Int64`` (SPEC §4: nullable day counts). The commit
protocol is the store's own (``Store._publish``: temp name + rename, or one PUT on S3).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from ..storage import Store

__all__ = ["write_table"]


def write_table(store: Store, df: pd.DataFrame, *parts: str) -> None:
    """Publish ``df`` atomically as one parquet file at ``parts`` (dtypes kept for pandas)."""
    store.write_arrow(pa.Table.from_pandas(df, preserve_index=False), *parts)
