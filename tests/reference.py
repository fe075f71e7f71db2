"""Independent plain-Python/pandas readers of raw drops, to check the engine against.

Deliberately written without any featurestore code: stdlib gzip, str.split, pandas.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from pathlib import Path

import pandas as pd

NAMED = ["hit_time_gmt", "customer_id", "page_url", "post_page_event", "post_event_list",
         "post_product_list", "exclude_hit"]
PRODUCT = re.compile(r"^[^;]*;[^;]+;(-?\d+)?;(-?\d+(\.\d*)?|-?\.\d+)?(;.*)?$")


def read_drops(raw_root: Path, max_late_days: int = 30) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All lines of all drops: (valid rows incl. excluded, quarantined rows with reason).

    Lines may end with LF or CRLF; a hit more than ``max_late_days`` before its drop's day is
    ``too_old``."""
    good, bad = [], []
    for day_dir in sorted(p for p in Path(raw_root).iterdir() if p.is_dir()):
        cols = (day_dir / "column_headers.tsv").read_text().rstrip("\n").split("\t")
        drop_start = int(dt.datetime.fromisoformat(day_dir.name).replace(
            tzinfo=dt.UTC).timestamp())
        for f in sorted(day_dir.glob("*.tsv.gz")):
            lines = gzip.decompress(f.read_bytes()).split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            lines = [line.removesuffix(b"\r") for line in lines]
            for no, line in enumerate(lines, 1):
                fields = line.split(b"\t")
                where = {"drop": day_dir.name, "file": f.name, "line_number": no}
                if len(fields) != len(cols):
                    bad.append({**where, "reason": "field_count"})
                    continue
                try:
                    row = {c: fields[cols.index(c)].decode("utf-8") for c in NAMED}
                except UnicodeDecodeError:
                    bad.append({**where, "reason": "bad_utf8"})
                    continue
                t = row["hit_time_gmt"]
                if not re.fullmatch(r"-?\d{1,18}", t) or int(t) < 946684800:
                    bad.append({**where, "reason": "bad_time"})
                    continue
                if int(t) >= drop_start + 86400:
                    bad.append({**where, "reason": "future_time"})
                    continue
                if int(t) < drop_start - max_late_days * 86400:
                    bad.append({**where, "reason": "too_old"})
                    continue
                products = [p for p in row["post_product_list"].split(",") if p]
                if row["post_product_list"] not in ("", "\\N") and not all(
                        PRODUCT.match(p) for p in products):
                    bad.append({**where, "reason": "bad_product"})
                    continue
                good.append({**where, **row, "late": int(t) < drop_start})
    good_df = pd.DataFrame(good)
    good_df["hit_time_gmt"] = good_df["hit_time_gmt"].astype("int64")
    good_df["event_date"] = pd.to_datetime(good_df["hit_time_gmt"], unit="s").dt.strftime(
        "%Y-%m-%d")
    return good_df, pd.DataFrame(bad, columns=["drop", "file", "line_number", "reason"])


def kept_hits(good: pd.DataFrame) -> pd.DataFrame:
    """The rows the store keeps: not excluded (anonymous ones are kept with a null id)."""
    return good[good["exclude_hit"] == "0"]


def expected_sample_counts(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def store_tables(store) -> dict[str, pd.DataFrame]:
    """Events and quarantine tables of a store, sorted, for exact comparison between runs."""
    events = pd.read_parquet(store.uri("events"))
    events["event_date"] = events["event_date"].astype(str)
    quarantine = pd.read_parquet(store.uri("_quarantine/weblog"))
    quarantine["drop"] = quarantine["drop"].astype(str)
    return {
        "events": events.sort_values(list(events.columns)).reset_index(drop=True),
        "quarantine": quarantine.sort_values(["source_file", "line_number"]).reset_index(
            drop=True),
    }
