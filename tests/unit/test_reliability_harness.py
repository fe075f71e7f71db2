"""The kill -9 harness's report of a failed trial (benchmarks/reliability.py): which tables
differ from the clean run, by how many rows, and a few of those rows, so a rare failure says
where it differs the first time it happens."""

from __future__ import annotations

import json

import pandas as pd

from benchmarks.reliability import _as_text, compare, table_diffs


def test_table_diffs_names_each_table_and_its_lost_and_extra_rows():
    clean = {"a": _as_text(pd.DataFrame({"id": [1, 2, 3], "v": [0.5, 1.5, 2.5]})),
             "b": _as_text(pd.DataFrame({"id": [7]})),
             "same": _as_text(pd.DataFrame({"id": [9]}))}
    got = {"a": _as_text(pd.DataFrame({"v": [0.5, 9.5, 2.5, 2.5], "id": [1, 2, 3, 3]})),
           "same": clean["same"], "new": _as_text(pd.DataFrame({"x": [1, 2]}))}
    diffs = table_diffs(clean, got)
    assert sorted(diffs) == ["a", "b", "new"]  # column order does not matter; "same" equal
    assert diffs["a"]["lost"] == 1 and diffs["a"]["duplicated"] == 2
    assert [json.loads(r) for r in diffs["a"]["lost_rows"]] == [
        {"row": {"id": "2", "v": "1.5"}, "count": 1}]
    assert sorted((json.loads(r)["row"]["v"], json.loads(r)["count"])
                  for r in diffs["a"]["extra_rows"]) == [("2.5", 1), ("9.5", 1)]
    assert diffs["b"] == {"lost": 1, "duplicated": 0, "extra_rows": [],
                          "lost_rows": ['{"row": {"id": "7"}, "count": 1}']}
    assert diffs["new"]["duplicated"] == 2
    # the totals are compare()'s
    assert compare(clean, got) == {
        "rows_lost": sum(d["lost"] for d in diffs.values()),
        "rows_duplicated": sum(d["duplicated"] for d in diffs.values())}
