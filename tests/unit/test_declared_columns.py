"""Declared columns (SPEC §3a): repository validation, typed parsing of one file, the
backfill planner. Values are checked against what the raw lines say, written out by hand."""

from __future__ import annotations

import datetime as dt
import gzip

import pyarrow as pa
import pytest
import yaml

from featurestore._exceptions import ConfigError
from featurestore.features.definitions import (
    DEFAULT_REPO,
    columns_read,
    load_feature_repo,
    parse_feature_repo,
)
from featurestore.sources.weblog import EVENT_SCHEMA, RawFile, event_schema, parse_file
from featurestore.sources.weblog.backfill import EventsFile, RawSource, plan_column_backfill

DAY = dt.date(2026, 1, 1)
T = int(dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC).timestamp())
SEVEN = ("hit_time_gmt", "customer_id", "page_url", "post_page_event", "post_event_list",
         "post_product_list", "exclude_hit")
DECLARED = {"visit_num": "int", "evar12": "float", "flag": "bool", "post_channel": "string"}


def _file(columns: tuple[str, ...], rows: list[dict[str, str]], raw_bytes: bytes = b""
          ) -> tuple[RawFile, bytes]:
    lines = ["\t".join(r.get(c, "") for c in columns).encode() for r in rows]
    body = b"\n".join(lines) + b"\n" + raw_bytes
    return RawFile("mem://2026-01-01/h.tsv.gz", DAY, "h.tsv.gz", 0, columns, None), \
        gzip.compress(body)


def _hit(i: int, **extra: str) -> dict[str, str]:
    return {"hit_time_gmt": str(T + i), "customer_id": f"C{i}", "page_url": "https://x/a",
            "post_page_event": "0", "exclude_hit": "0", **extra}


def _values(parsed, name):
    return parsed.events.column(name).to_pylist()


def test_each_type_parses_and_bad_values_are_null_and_counted():
    columns = ("junk", *SEVEN[:3], "visit_num", *SEVEN[3:], "evar12", "flag", "post_channel")
    rows = [
        _hit(0, visit_num="3", evar12="1.5", flag="1", post_channel="Email"),
        _hit(1, visit_num="-7", evar12="-2e3", flag="false", post_channel="Paid Search"),
        _hit(2, visit_num="x", evar12="n/a", flag="yes", post_channel=""),
        _hit(3, visit_num="\\N", evar12="", flag="\\N", post_channel="\\N"),
        _hit(4, visit_num="99999999999999999999", evar12="1e999", flag="TRUE",
             post_channel="Direct"),
        _hit(5, visit_num="+12", evar12=".25", flag="0", post_channel="Social"),
    ]
    parsed = parse_file(*_file(columns, rows), declared=DECLARED)
    assert _values(parsed, "visit_num") == [3, -7, None, None, None, 12]
    assert _values(parsed, "evar12") == [1.5, -2000.0, None, None, None, 0.25]
    assert _values(parsed, "flag") == [True, False, None, None, True, False]
    assert _values(parsed, "post_channel") == ["Email", "Paid Search", None, None, "Direct",
                                               "Social"]
    assert parsed.column_bad == {"visit_num": 2, "evar12": 2, "flag": 1, "post_channel": 0}
    assert parsed.columns_missing == []
    assert parsed.events.num_rows == 6 and sum(parsed.bad.values()) == 0
    assert parsed.events.schema.field("visit_num").type == pa.int64()
    assert parsed.events.schema.field("evar12").type == pa.float64()
    assert parsed.events.schema.field("flag").type == pa.bool_()
    assert parsed.events.schema.names == [*event_schema(DECLARED).names, "event_date"]


def test_a_column_missing_from_the_header_is_null_and_listed():
    columns = (*SEVEN, "visit_num")
    parsed = parse_file(*_file(columns, [_hit(0, visit_num="4"), _hit(1, visit_num="5")]),
                        declared={"visit_num": "int", "geo_country": "string"})
    assert _values(parsed, "visit_num") == [4, 5]
    assert _values(parsed, "geo_country") == [None, None]
    assert parsed.events.schema.field("geo_country").type == pa.string()
    assert parsed.columns_missing == ["geo_country"]
    assert parsed.column_bad == {"visit_num": 0, "geo_country": 0}


def test_header_order_changing_between_drops_gives_the_same_values():
    rows = [_hit(i, visit_num=str(i * 10), evar12=f"{i}.5", post_channel=f"ch{i}")
            for i in range(5)]
    a = (*SEVEN, "visit_num", "evar12", "post_channel")
    b = ("post_channel", "x1", "evar12", *reversed(SEVEN), "x2", "visit_num")
    decl = {"visit_num": "int", "evar12": "float", "post_channel": "string"}
    first = parse_file(*_file(a, rows), declared=decl)
    second = parse_file(*_file(b, rows), declared=decl)
    assert first.events.equals(second.events)
    assert _values(first, "visit_num") == [0, 10, 20, 30, 40]


def test_invalid_utf8_in_a_declared_column_nulls_the_value_not_the_row():
    columns = (*SEVEN, "post_channel")
    good = "\t".join(_hit(9, post_channel="x").get(c, "") for c in columns).encode()
    bad_line = good.replace(b"\tx", b"\tcaf\xff")
    raw, data = _file(columns, [_hit(0, post_channel="caf\u00e9")], bad_line + b"\n")
    parsed = parse_file(raw, data, declared={"post_channel": "string"})
    assert parsed.events.num_rows == 2 and parsed.bad["bad_utf8"] == 0
    assert _values(parsed, "post_channel") == ["caf\u00e9", None]
    assert parsed.column_bad == {"post_channel": 1}
    # the seven columns keep their rule: invalid UTF-8 there quarantines the row
    worse = good.replace(b"https://x/a", b"https://x/\xff")
    parsed = parse_file(*_file(columns, [], worse + b"\n"), declared={"post_channel": "string"})
    assert parsed.events.num_rows == 0 and parsed.bad["bad_utf8"] == 1


def test_excluded_and_quarantined_rows_do_not_count_bad_values():
    columns = (*SEVEN, "visit_num")
    rows = [_hit(0, visit_num="x"), {**_hit(1, visit_num="y"), "exclude_hit": "1"},
            {**_hit(2, visit_num="z"), "hit_time_gmt": "soon"}]
    parsed = parse_file(*_file(columns, rows), declared={"visit_num": "int"})
    assert parsed.events.num_rows == 1 and parsed.column_bad == {"visit_num": 1}


def test_no_declared_columns_parses_as_before():
    parsed = parse_file(*_file(SEVEN, [_hit(0)]))
    assert parsed.events.schema.names == [*EVENT_SCHEMA.names, "event_date"]
    assert parsed.column_bad == {} and parsed.columns_missing == []


def _repo(columns) -> str:
    doc = yaml.safe_load(DEFAULT_REPO.read_text())
    doc["sources"]["weblog"]["columns"] = columns
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.mark.parametrize("columns, key", [
    ({"visit_num": "integer"}, "sources.weblog.columns.visit_num: unknown type"),
    ({"page_url": "string"}, "sources.weblog.columns.page_url: 'page_url' is a column"),
    ({"event_date": "string"}, "sources.weblog.columns.event_date:"),
    ({"price": "float"}, "sources.weblog.columns.price:"),
    ({"9lives": "int"}, "sources.weblog.columns.9lives: a column name"),
])
def test_bad_declarations_name_the_key(columns, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("(", r"\(")):
        parse_feature_repo(_repo(columns), "repo.yaml")


def test_declared_columns_keep_order_and_the_default_fingerprint_does_not_change():
    repo = parse_feature_repo(_repo({"visit_num": "int", "evar12": "float"}), "r")
    assert list(repo.declared_columns()) == ["visit_num", "evar12"]
    assert repo.declared_columns("weblog") == {"visit_num": "int", "evar12": "float"}
    assert repo.declared_columns("retail") == {}
    default = load_feature_repo()
    assert default.declared_columns() == {}
    # the fingerprint main recorded for the built-in repository (stores keep working)
    assert default.repo_fingerprint == "35b57b85b4080879"
    assert parse_feature_repo(_repo({}), "r").repo_fingerprint == default.repo_fingerprint
    assert repo.repo_fingerprint != default.repo_fingerprint
    assert default.differences(repo) == ["source weblog changed"]


def test_columns_read_follow_fields_where_and_expressions_transitively():
    doc = yaml.safe_load(_repo({"visit_num": "int", "evar12": "float", "channel": "string"}))
    doc["tables"]["customer_features"]["features"].update({
        "visits_mean": {"aggregation": "mean", "field": "visit_num"},
        "search_hits": {"aggregation": "count", "filter": {"where": [
            {"column": "channel", "op": "eq", "value": "search"}]}},
        "ratio": {"expression": "visits_mean / search_hits"},
        "ratio2": {"expression": "ratio * 2 + page_views_7d"},
    })
    repo = parse_feature_repo(yaml.safe_dump(doc, sort_keys=False), "r")
    got = columns_read(repo.tables["customer_features"], repo.declared_columns())
    assert got == {"visit_num": ["ratio", "ratio2", "visits_mean"],
                   "evar12": [], "channel": ["ratio", "ratio2", "search_hits"]}
    assert columns_read(repo.tables["customer_product_features"], {}) == {}


def test_backfill_plan_takes_only_files_lacking_a_column_with_their_raw_files():
    # day 2's file was ingested with visit_num declared; day 1's before any column was
    src = {f"2026-01-0{i}-hit_data-0000": RawSource(f"/raw/2026-01-0{i}/hit_data-0000.tsv.gz",
                                                    f"2026-01-0{i}", "hit_data-0000.tsv.gz",
                                                    "m", ("visit_num",) if i == 2 else ())
           for i in (1, 2)}
    files = [
        EventsFile("2026-01-02", "part-cabc.parquet", ("hit_time_gmt", "visit_num"),
                   (("2026-01-02-hit_data-0000", 0, 5),)),
        EventsFile("2026-01-01", "part-cdef.parquet", ("hit_time_gmt",),
                   (("2026-01-01-hit_data-0000", 0, 3), ("2026-01-02-hit_data-0000", 3, 4),
                    ("gone-id", 4, 6))),
    ]
    plan = plan_column_backfill({"visit_num": "int", "evar12": "float"}, files, src)
    assert [t.file.name for t in plan.tasks] == ["part-cdef.parquet", "part-cabc.parquet"]
    assert plan.tasks[0].columns == (("visit_num", "int"), ("evar12", "float"))
    assert plan.tasks[1].columns == (("evar12", "float"),)
    assert [fid for fid, _ in plan.tasks[0].sources] == ["2026-01-01-hit_data-0000",
                                                         "2026-01-02-hit_data-0000"]
    assert plan.columns == ["evar12", "visit_num"]
    assert dict(plan.tasks[0].needs) == {
        "2026-01-01-hit_data-0000": ("visit_num", "evar12"),
        "2026-01-02-hit_data-0000": ("visit_num", "evar12"),  # the file lacks visit_num
        "gone-id": ("visit_num", "evar12")}
    assert plan_column_backfill({"hit": "int"}, [], src).tasks == ()
    # a merged file that has the column, holding rows ingested without it: those need it,
    # unless a backfill's note says they were filled
    merged = EventsFile("2026-01-02", "part-cm.parquet", ("hit_time_gmt", "visit_num"),
                        (("2026-01-01-hit_data-0000", 0, 2), ("2026-01-02-hit_data-0000", 2, 4)))
    plan = plan_column_backfill({"visit_num": "int"}, [merged], src)
    assert dict(plan.tasks[0].needs) == {"2026-01-01-hit_data-0000": ("visit_num",),
                                         "2026-01-02-hit_data-0000": ()}
    assert plan_column_backfill({"visit_num": "int"}, [merged], src,
                                {"2026-01-01-hit_data-0000": {"visit_num"}}).tasks == ()


def test_backfill_plan_does_not_retry_a_raw_file_given_up_at_the_same_place():
    url = "/raw/2026-01-01/hit_data-0000.tsv.gz"
    src = {"a": RawSource(url, "2026-01-01", "hit_data-0000.tsv.gz", "m"),
           "b": RawSource("/raw/2026-01-01/hit_data-0001.tsv.gz", "2026-01-01",
                          "hit_data-0001.tsv.gz", "m")}
    after = EventsFile("2026-01-01", "part-c1.parquet", ("hit_time_gmt", "visit_num"),
                       (("a", 0, 3), ("b", 3, 5)))
    gone = {"a": {"file": url, "reason": "raw file gone", "columns": {"visit_num"}}}
    # b was filled, a given up at the same place: nothing to do, a reported as not retried
    plan = plan_column_backfill({"visit_num": "int"}, [after], src, {"b": {"visit_num"}}, gone)
    assert plan.tasks == () and plan.not_retried == ((url, "raw file gone"),)
    # a new column: tried (the file lacks it); the given-up column is not needed again
    plan = plan_column_backfill({"visit_num": "int", "evar12": "float"}, [after], src,
                                {"b": {"visit_num"}}, gone)
    assert dict(plan.tasks[0].needs) == {"a": ("evar12",), "b": ("evar12",)}
    # the drops elsewhere (--raw): a new place, tried again
    moved = {**src, "a": RawSource("/new/2026-01-01/hit_data-0000.tsv.gz", "2026-01-01",
                                   "hit_data-0000.tsv.gz", "m")}
    plan = plan_column_backfill({"visit_num": "int"}, [after], moved, {"b": {"visit_num"}},
                                gone)
    assert dict(plan.tasks[0].needs) == {"a": ("visit_num",), "b": ()}
    assert plan.not_retried == ()
    # a file lacking the column altogether is written (the column null there)
    before = EventsFile("2026-01-01", "part-c0.parquet", ("hit_time_gmt",), (("a", 0, 3),))
    plan = plan_column_backfill({"visit_num": "int"}, [before], src, {}, gone)
    assert dict(plan.tasks[0].needs) == {"a": ("visit_num",)}


def test_a_column_present_but_empty_in_every_row_is_typed_null_with_no_bad_value():
    """A declared column the header has but no row fills (sparse feeds) is null, of its
    type, with no bad value; the same rows with one value typed as usual."""
    columns = (*SEVEN, "visit_num", "evar12", "flag", "post_channel")
    empty = [_hit(i, visit_num="" if i % 2 else "\\N", evar12="", flag="\\N") for i in range(4)]
    parsed = parse_file(*_file(columns, empty), declared=DECLARED)
    for name, kind in (("visit_num", pa.int64()), ("evar12", pa.float64()),
                       ("flag", pa.bool_()), ("post_channel", pa.string())):
        assert _values(parsed, name) == [None] * 4
        assert parsed.events.schema.field(name).type == kind
    assert parsed.column_bad == {"visit_num": 0, "evar12": 0, "flag": 0, "post_channel": 0}
    one = [*empty, _hit(4, visit_num="x", evar12="2.5", flag="1")]
    parsed = parse_file(*_file(columns, one), declared=DECLARED)
    assert _values(parsed, "visit_num") == [None] * 5
    assert _values(parsed, "evar12") == [None] * 4 + [2.5]
    assert parsed.column_bad["visit_num"] == 1


def _python_typed(fields: list[str | None], kind: str) -> tuple[pa.Array, int]:
    """The declared-number rules in plain Python: a field matching ``_INT_RE`` within int64
    (``int``), or ``_FLOAT_RE`` and finite (``float``, read by Python's correctly rounded
    ``float``), else null and counted."""
    import math
    import re

    from featurestore.sources.weblog.parse import _FLOAT_RE, _INT_RE

    out, bad = [], 0
    for f in fields:
        value = None
        if f is not None and re.fullmatch(_INT_RE if kind == "int" else _FLOAT_RE, f):
            value = int(f) if kind == "int" else float(f)
            if (kind == "int" and not -2**63 <= value < 2**63) or \
                    (kind == "float" and not math.isfinite(value)):
                value = None
        bad += f is not None and value is None
        out.append(value)
    return pa.array(out, pa.int64() if kind == "int" else pa.float64()), bad


@pytest.mark.parametrize("kind", ["int", "float"])
def test_typed_numbers_match_the_patterns_read_in_python(kind):
    """int / float fields are checked (and ints read) by one numba sweep over the bytes,
    floats read by Arrow's cast: the same values and bad counts as the documented patterns
    read in Python, on random fields built from signs, digits, points, exponents, hex,
    inf/nan words, spaces, non-ASCII digits, long digit runs and leading zeros, in arrays
    that are all good, all odd, or mixed, sliced or not, string or large string."""
    import random

    from featurestore.sources.weblog.parse import typed_column

    rng = random.Random(3 if kind == "int" else 4)
    good = ["0", "7", "-12", "007", "-0", "123456789012345678", "9223372036854775807",
            "-9223372036854775808", "+12", "0000000000000000000000042", "-922337203685477580"]
    if kind == "float":
        good += ["1.5", ".25", "5.", "-2e3", "1E+05", "+1.5", "+.5", "-.5e-3", "1e999",
                 "00.5", "3.14159", "0.1000000000000000055511151231257827", "1e-400"]
    odd = ["+1", "0x1f", "0X1F", "1e3", "inf", "-inf", "nan", "NaN", "Infinity", " 1", "1 ",
           "1_000", "1,5", "", "-", "+", "--1", "+-1", "abc", "9223372036854775808",
           "-9223372036854775809", "99999999999999999999", "1.", ".", "1e", "1e+", "0x1p3",
           "١", "e5", ".e5", "1.2.3", "1e5.5"]
    for trial in range(400):
        pool = rng.choice([good, odd, good + odd])
        fields = [None if rng.random() < 0.2 else rng.choice(pool)
                  for _ in range(rng.randint(1, 30))]
        lead = rng.randint(0, 3)
        values = pa.array(["9"] * lead + fields, rng.choice([pa.string(), pa.large_string()]))
        values = values.slice(lead)  # an array that does not start at its buffers' start
        got, bad = typed_column(values, kind)
        want, want_bad = _python_typed(fields, kind)
        assert got.equals(want) and bad == want_bad, fields
