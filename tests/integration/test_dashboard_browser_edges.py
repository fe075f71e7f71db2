"""Dashboard pages in real headless Chromium on the stores at the edges: a month of small
drops (30 dates on an axis, rows per drop within a few percent of each other) and an empty
store. The pages on a store with models are in test_dashboard_browser.py (this file has its
own browser so the two files can run on two pytest-xdist workers)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from featurestore.settings import Settings
from tests.integration.test_dashboard_browser import Browser, _chromium, _visit

pytest.importorskip("websocket", reason="websocket-client is in the test extra")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(_chromium(), tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def month_site(tmp_path_factory, client):
    """30 daily drops of about 60 rows, no bad rows, ingested by the CLI (in process: no
    process-level behaviour is under test here)."""
    from api.main import create_app
    from featurestore.cli import main
    from featurestore.generate import generate_weblog
    from tests.serving_helpers import serve

    base = tmp_path_factory.mktemp("dash-month")
    raw, store = base / "raw", base / "store"
    generate_weblog(str(raw), days=30, customers=60, products=5, rows_per_day=60, parts=1,
                    seed=3, columns=40)
    assert main(["ingest", str(raw), "--store", str(store), "--scheduler",
                 client.scheduler.address]) == 0
    with serve(create_app(Settings(store=str(store)))) as url:
        yield url, store


@pytest.fixture(scope="module")
def empty_site(tmp_path_factory):
    """A store nothing was ingested into (a new user's first look)."""
    from api.main import create_app
    from tests.serving_helpers import serve

    store = tmp_path_factory.mktemp("dash-empty") / "store"
    store.mkdir()
    with serve(create_app(Settings(store=str(store))), ready_path="/health") as url:
        yield url


def test_dates_fit_inside_their_charts(browser, month_site, shots):
    """A month of as-of dates and drops on a category axis: every date label is inside its
    chart (``_visit`` checks every tick label's box against its SVG)."""
    base, store = month_site
    seen = _visit(browser, base, "overview", shots)
    dates = sorted(p.name.split("=", 1)[1] for p in (store / "customer_features").iterdir())
    assert len(dates) == 30
    drawn = browser.evaluate("document.getElementById('rows-per-as-of').data[0].x")
    assert drawn == dates
    labels = browser.evaluate("[...document.querySelectorAll('#rows-per-as-of .xtick text')]"
                              ".map(t => t.textContent)")
    assert labels and set(labels) <= set(dates)
    assert {c["id"] for c in seen["charts"]} == {"freshness", "rows-per-as-of"}
    _visit(browser, base, "ingestion", shots)
    labels = browser.evaluate("[...document.querySelectorAll('#rows-ingested .xtick text')]"
                              ".map(t => t.textContent)")
    assert dates[-1] in labels  # the newest drop's label was the one cut off on the right


def test_rows_axis_is_linear_over_a_narrow_spread(browser, month_site, shots):
    """Rows per drop within a few percent of each other (no quarantined rows): a linear axis
    from zero, not a log axis stretched over the spread."""
    base, store = month_site
    _visit(browser, base, "ingestion", shots)
    drawn = browser.evaluate("document.getElementById('rows-ingested').data.map(t => t.y)")
    ingested = drawn[0]
    assert len(drawn) == 1 and len(ingested) == 30  # no quarantine reason, one trace
    assert max(ingested) / min(ingested) < 1.2
    # the chart's numbers are the store's: rows per event date of the month
    events = pd.read_parquet(store / "events")
    assert sum(ingested) == len(events)
    axis = browser.evaluate("(a => ({type: a.type, range: a.range}))"
                            "(document.getElementById('rows-ingested')._fullLayout.yaxis)")
    assert axis["type"] == "linear" and axis["range"][0] == 0


@pytest.mark.parametrize("page,notes", [
    ("overview", ["freshness", "rows-per-as-of"]),
    ("ingestion", ["rows-ingested", "files"]),
])
def test_an_empty_store_says_no_data_instead_of_empty_axes(browser, empty_site, shots, page,
                                                           notes):
    """No chart with empty axes (plotly's default -1..4): a "no data yet" note in its place."""
    seen = _visit(browser, empty_site, page, shots)
    assert seen["charts"] == []
    for chart in notes:
        assert seen["ids"][f"no-data-{chart}"].startswith("No data yet"), chart


def test_an_empty_store_features_and_models_pages(browser, empty_site, shots):
    seen = _visit(browser, empty_site, "features", shots)
    assert seen["charts"] == []
    assert seen["ids"]["table-note"].startswith("No data yet: no table has an as-of partition")
    seen = _visit(browser, empty_site, "models", shots)
    assert seen["charts"] == []
    text = browser.evaluate("document.getElementById('main').innerText")
    assert "No model in the registry yet" in text
