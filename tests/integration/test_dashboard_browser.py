"""Every dashboard page (and /docs, /redoc) in real headless Chromium, driven over the Chrome
DevTools protocol, from a real uvicorn server on a store built by the generator and the CLI.

Checks per page: no console error or uncaught exception, no request leaves the server (no CDN),
every chart drew a non-empty SVG, and the numbers shown equal the store's own figures.
Screenshots are saved under the pytest tmp dir (``<tmp>/screenshots/<page>.png``).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from featurestore.settings import Settings

websocket = pytest.importorskip("websocket", reason="websocket-client is in the test extra")

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def _chromium() -> str:
    """Debian's chromium, installed with apt when missing; skips only when it cannot be."""
    found = shutil.which("chromium")
    if found:
        return found
    try:
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True,
                       capture_output=True, timeout=900,
                       env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin"})
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"chromium is not installed and `apt-get install chromium` failed ({exc})")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("`apt-get install chromium` ran but no chromium binary is on PATH")
    return found


# Resolves once plotly's charts look the same in two samples two frames and 50 ms apart (or
# after ~5 s): chart and SVG sizes, the margins automargin settled on, the drawn labels.
SETTLED = """(async () => {
  const pause = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(
    () => setTimeout(r, 50))));
  const look = () => JSON.stringify([...document.querySelectorAll('.js-plotly-plot')].map(d => {
    const svg = d.querySelector('svg.main-svg');
    const box = svg ? svg.getBoundingClientRect() : {};
    return [box.width, box.height, d._fullLayout ? d._fullLayout._size : null,
            [...d.querySelectorAll('.xtick text, .ytick text, .g-xtitle text, .g-ytitle text')]
              .map(t => t.textContent + t.getAttribute('transform')).join('|'),
            d.querySelectorAll('.trace').length];
  }));
  let before = null;
  for (let i = 0; i < 40; i++) {
    await pause();
    const now = look();
    if (now === before) return true;
    before = now;
  }
  return false;
})()"""


class Browser:
    """One headless Chromium with one page, driven over its DevTools websocket."""

    def __init__(self, binary: str, profile: Path) -> None:
        # stderr to a file: a pipe nobody reads after start-up would fill and stall chromium
        self.log = profile / "chromium.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                 "--remote-debugging-port=0", "--window-size=1280,900", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 60
        while True:
            match = re.search(r"DevTools listening on (ws://\S+)", self.log.read_text())
            if match:
                browser_ws = match.group(1)
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (exit {self.proc.poll()}): "
                                   f"{self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        import httpx

        http = browser_ws.split("/devtools/")[0].replace("ws://", "http://")
        page = next(t for t in httpx.get(f"{http}/json/list").json() if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60,
                                              suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        ident = next(self.ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, ready: str, timeout: float = 60) -> None:
        """Navigate and wait until the JS expression ``ready`` is true."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"Boolean(document.body && ({ready}))"):
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} not ready ({ready}) within {timeout} s")
            time.sleep(0.2)
        self.settle()

    def settle(self) -> None:
        """Wait until plotly has finished drawing: its charts' sizes, margins (automargin
        redraws after the first pass) and drawn labels unchanged over two samples a couple
        of frames apart (a fixed 0.5 s before; usually ~0.1 s, longer under load)."""
        self.evaluate(SETTLED)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads since the last ``open``."""
        out = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description")))
                                    for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                out.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                out.append(params["entry"]["text"])
            elif method == "Network.loadingFailed":
                out.append(f"load failed: {params.get('errorText')}")
        return out

    def requested(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path: Path) -> None:
        """A full-page PNG (the viewport stretched to the page's height)."""
        height = self.evaluate("document.documentElement.scrollHeight")
        self.call("Emulation.setDeviceMetricsOverride", width=1280,
                  height=min(max(int(height), 900), 6000), deviceScaleFactor=1, mobile=False)
        self.settle()  # plotly's responsive resize pass
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        self.call("Emulation.clearDeviceMetricsOverride")

    def close(self) -> None:
        self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = _chromium()
    b = Browser(binary, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def site(dashboard_store):
    """The dashboard over a real server, on the store test_dashboard.py checks (built once per
    run, read-only: the API writes nothing)."""
    from api.main import create_app
    from tests.serving_helpers import serve

    built = dashboard_store
    with serve(create_app(Settings(store=str(built["store"])))) as base:
        yield base, built


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


# In-page checks: every plotly chart has an SVG with drawn marks.
CHARTS = """[...document.querySelectorAll('.js-plotly-plot')].map(d => ({
  id: d.id, svg: d.querySelectorAll('svg.main-svg').length,
  marks: d.querySelectorAll('.trace path, .trace .point, .barlayer path').length}))"""
# Tick labels and axis titles outside their chart's SVG are cut off (long dates, feature
# names): every label's box must lie inside the SVG it is drawn in.
CLIPPED = """[...document.querySelectorAll('.js-plotly-plot')].flatMap(d => {
  const svg = d.querySelector('svg.main-svg').getBoundingClientRect();
  return [...d.querySelectorAll('.xtick text, .ytick text, .g-xtitle text, .g-ytitle text')]
    .map(t => [t, t.getBoundingClientRect()])
    .filter(([t, r]) => r.width > 0 && (r.left < svg.left - 0.5 || r.right > svg.right + 0.5
                                         || r.top < svg.top - 0.5 || r.bottom > svg.bottom + 0.5))
    .map(([t, r]) => `${d.id}: ${t.textContent}`);
})"""
TESTIDS = """Object.fromEntries([...document.querySelectorAll('[data-testid]')]
  .map(e => [e.dataset.testid, e.textContent.trim()]))"""


def _visit(browser: Browser, base: str, page: str, shots: Path) -> dict[str, str]:
    browser.open(f"{base}/dashboard/{page}", "document.body.dataset.ready")
    assert browser.evaluate("document.body.dataset.ready") == "true", browser.evaluate(
        "document.getElementById('main').innerText")
    browser.screenshot(shots / f"{page.replace('?', '-')}.png")
    assert browser.errors() == [], page
    outside = [u for u in browser.requested() if not u.startswith((base, "data:"))]
    assert outside == [], f"{page} fetched from outside the server: {outside}"
    charts = browser.evaluate(CHARTS)
    for c in charts:
        assert c["svg"] > 0 and c["marks"] > 0, (page, c)
    assert browser.evaluate(CLIPPED) == [], f"{page}: axis labels cut off"
    return {"charts": charts, "ids": browser.evaluate(TESTIDS)}


def test_overview_page(browser, site, shots):
    base, built = site
    seen = _visit(browser, base, "overview", shots)
    assert {c["id"] for c in seen["charts"]} == {"freshness", "rows-per-as-of"}
    for table in ("customer_features", "customer_product_features"):
        folder = built["store"] / table
        latest = max(p.name for p in folder.iterdir()).split("=", 1)[1]
        assert seen["ids"][f"latest-{table}"] == latest
        assert int(seen["ids"][f"rows-{table}"]) == len(
            pd.read_parquet(folder / f"as_of={latest}"))
        assert seen["ids"][f"lag-{table}"] == "0"
    # the chart's own data is the store's rows per as-of
    ys = browser.evaluate("document.getElementById('rows-per-as-of').data"
                          ".find(t => t.name === 'customer_features').y")
    folder = built["store"] / "customer_features"
    assert ys == [len(pd.read_parquet(p)) for p in sorted(folder.iterdir())]


def test_ingestion_page(browser, site, shots):
    base, built = site
    seen = _visit(browser, base, "ingestion", shots)
    report = built["report"]
    ingested = {k[len("ingested-"):]: int(v) for k, v in seen["ids"].items()
                if k.startswith("ingested-")}
    assert sum(ingested.values()) == report["rows_ingested"]
    for drop in ingested:
        quarantined = pd.read_parquet(built["store"] / "_quarantine" / "weblog" / f"drop={drop}")
        assert int(seen["ids"][f"quarantined-{drop}"]) == len(quarantined)
    reasons = sorted(k for k, v in report["quarantined_by_reason"].items() if v)
    assert seen["ids"]["reasons"] == ", ".join(reasons)


@pytest.fixture(scope="module")
def rejecting_site(tmp_path_factory, client):
    """A store whose second drop holds a truncated gzip file (rejected whole by the CLI)."""
    import os
    import sys

    from api.main import create_app
    from featurestore.generate import generate_weblog
    from tests.serving_helpers import serve

    base = tmp_path_factory.mktemp("dash-rejected")
    raw, store = base / "raw", base / "store"
    generate_weblog(str(raw), days=1, customers=50, products=5, rows_per_day=300, parts=2,
                    seed=4)
    drop = next(p for p in raw.iterdir() if p.is_dir())
    bad = raw / "2026-01-02"
    bad.mkdir()
    shutil.copy(drop / "column_headers.tsv", bad)
    source = sorted(drop.glob("*.tsv.gz"))[0]
    (bad / source.name).write_bytes(source.read_bytes()[:len(source.read_bytes()) // 2])
    proc = subprocess.run([sys.executable, "-m", "featurestore", "ingest", str(raw), "--store",
                           str(store), "--scheduler", client.scheduler.address, "--json"],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert proc.returncode != 0, proc.stderr  # a rejected file is not accounted for
    report = json.loads(proc.stdout)
    with serve(create_app(Settings(store=str(store)))) as url:
        yield url, report, source.name


def test_ingestion_page_shows_rejected_files(browser, rejecting_site, shots):
    """The rejected file, its reason and its bar come from what the run reported."""
    base, report, name = rejecting_site
    (shots / "rejected").mkdir(exist_ok=True)
    seen = _visit(browser, base, "ingestion", shots / "rejected")
    [rejected] = report["rejected"]
    assert seen["ids"]["rejected-2026-01-02"] == f"{name}: {rejected['reason']}"
    assert seen["ids"]["rejected-2026-01-01"] == "0"
    ys = browser.evaluate("document.getElementById('files').data"
                          ".find(t => t.name === 'rejected').y")
    assert ys == [0, 1]


def test_features_page(browser, site, shots):
    base, built = site
    seen = _visit(browser, base, "features", shots)
    folder = built["store"] / "customer_features"
    latest = max(p.name for p in folder.iterdir())
    frame = pd.read_parquet(folder / latest)
    assert int(seen["ids"]["profile-rows"]) == len(frame)
    ids = {c["id"] for c in seen["charts"]}
    assert {"null-share", "drift", "hist-page_views_7d"} <= ids
    counts = browser.evaluate("document.getElementById('hist-page_views_7d').data[0].y")
    assert sum(counts) == frame["page_views_7d"].notna().sum()
    # another table and as-of through the form's query string
    browser.open(f"{base}/dashboard/features?table=customer_product_features&as_of="
                 f"{latest.split('=', 1)[1]}", "document.body.dataset.ready")
    assert browser.errors() == []
    rows = browser.evaluate("document.querySelector('[data-testid=profile-rows]').textContent")
    assert int(rows) == len(pd.read_parquet(built["store"] / "customer_product_features"
                                            / latest))


def test_features_page_shows_the_table_named_in_the_query(browser, site, shots):
    """``?table=`` picks the table shown, also one with no as-of yet (its note, not another
    table's charts) and an unknown one (the repository's tables, not the first table)."""
    base, built = site
    latest = max(p.name for p in (built["store"] / "customer_product_features").iterdir())
    seen = _visit(browser, base, "features?table=customer_product_features", shots)
    assert seen["ids"]["features-table"] == "customer_product_features"
    assert browser.evaluate("document.getElementById('table').value") == (
        "customer_product_features")
    frame = pd.read_parquet(built["store"] / "customer_product_features" / latest)
    assert int(seen["ids"]["profile-rows"]) == len(frame)
    drawn = browser.evaluate("document.getElementById('null-share').data[0].x")
    assert drawn == [c for c in ("product_views_7d", "product_views_30d") if c in frame.columns]
    # a table of the repository that has no as-of partition (its source delivered nothing)
    assert not (built["store"] / "customer_retail_features").exists()
    seen = _visit(browser, base, "features?table=customer_retail_features", shots)
    assert seen["ids"]["features-table"] == "customer_retail_features"
    assert browser.evaluate("document.getElementById('table').value") == (
        "customer_retail_features")
    assert "customer_retail_features has no as-of partition yet" in seen["ids"]["table-note"]
    assert seen["charts"] == [] and "profile-rows" not in seen["ids"]
    # a name the repository does not have
    seen = _visit(browser, base, "features?table=nope", shots)
    assert seen["ids"]["table-note"].startswith("No table 'nope' in the feature repository")
    assert "customer_features, customer_product_features" in seen["ids"]["table-note"]
    assert seen["charts"] == [] and "features-table" not in seen["ids"]


def test_models_page_marks_a_refused_version(browser, site, shots):
    """The version the baseline gate refused (the noise model, v0002) carries a badge with the
    reason its retrain job recorded; the promoted one does not."""
    base, built = site
    seen = _visit(browser, base, "models", shots)
    jobs = [json.loads(p.read_text()) for p in (built["store"] / "_jobs").glob("*.json")]
    verdicts = {j["model_version"]: (j.get("alert") or {}).get("below_baseline") for j in jobs}
    assert verdicts["v0001"] is None and "chance" in verdicts["v0002"]
    assert seen["ids"]["refused-purchase-xgboost-v0002"] == (
        "refused: not distinguishable from chance")
    title = browser.evaluate("document.querySelector('[data-testid=refused-purchase-xgboost-v0002]')"
                             ".title")
    assert title == verdicts["v0002"]
    assert "refused-purchase-xgboost-v0001" not in seen["ids"]
    symbols = browser.evaluate("document.getElementById('metrics-purchase-xgboost')"
                               ".data[0].marker.symbol")
    assert symbols == ["star", "x"]


def test_ingestion_rows_axis_is_log_only_over_a_wide_spread(browser, site, shots):
    """Rows ingested (about 1,400 a drop) beside a few quarantined rows span over a decade: a
    log axis; the narrow case is in test_dashboard_browser_edges."""
    base, _ = site
    _visit(browser, base, "ingestion", shots)
    drawn = [y for ys in browser.evaluate(
        "document.getElementById('rows-ingested').data.map(t => t.y)") for y in ys if y > 0]
    assert max(drawn) / min(drawn) >= 10
    assert browser.evaluate("document.getElementById('rows-ingested')._fullLayout.yaxis.type"
                            ) == "log"


def test_models_page(browser, site, shots):
    base, built = site
    seen = _visit(browser, base, "models", shots)
    versions = built["store"] / "_models" / "purchase-xgboost"
    for version in ("v0001", "v0002"):
        metrics = json.loads((versions / version / "metrics.json").read_text())
        shown = seen["ids"][f"purchase-xgboost-{version}-pr_auc"]
        assert float(shown) == round(metrics["pr_auc"], 4)
    production = json.loads((versions / "production.json").read_text())["version"]
    symbols = browser.evaluate("document.getElementById('metrics-purchase-xgboost')"
                               ".data[0].marker.symbol")
    assert symbols[int(production[1:]) - 1] == "star"
    assert [v for k, v in seen["ids"].items() if k.startswith("job-")] == ["completed"] * 2
    # the production version's PR curve, as the registry recorded it at training time
    recorded = json.loads((versions / production / "version.json").read_text())
    curve = recorded["details"]["pr_curve"]
    drawn = browser.evaluate("(d => ({x: [...d.data[0].x], y: [...d.data[0].y]}))"
                             "(document.getElementById('pr-curve-purchase-xgboost'))")
    assert drawn == {"x": curve["recall"], "y": curve["precision"]}
    assert len(curve["recall"]) > 2
    assert "pr-curve-purchase-xgboost" in [c["id"] for c in seen["charts"]]
    assert int(seen["ids"]["pr-curve-purchase-xgboost-points"]) == len(curve["precision"])
    pr_auc = json.loads((versions / production / "metrics.json").read_text())["pr_auc"]
    assert float(seen["ids"]["pr-curve-purchase-xgboost-pr_auc"]) == round(pr_auc, 4)


def test_cluster_page(browser, site, shots):
    base, _ = site
    seen = _visit(browser, base, "cluster", shots)
    assert "No scheduler is configured" in seen["ids"]["dask-link"]


@pytest.mark.parametrize("page,ready", [
    ("docs", "document.querySelectorAll('.opblock').length > 0"),
    ("redoc", "document.querySelectorAll('[data-section-id]').length > 0"),
])
def test_api_docs_render_offline(browser, site, shots, page, ready):
    base, _ = site
    browser.open(f"{base}/{page}", ready)
    browser.screenshot(shots / f"{page}.png")
    outside = [u for u in browser.requested() if not u.startswith((base, "data:", "blob:"))]
    assert outside == [], f"{page} fetched from outside the server: {outside}"
    assert browser.errors() == []
    assert "/customers/{customer_id}/features" in browser.evaluate("document.body.innerText")


def test_models_page_shows_a_recommenders_holdout_table(browser, site, shots, tmp_path):
    """A recommender version's time-holdout figures (issue #29), model beside "most popular"
    and "buy again" in both modes with their intervals, as the registry stores them. The
    version is registered in a copy of the shared store, served on its own: the shared one
    is read-only (test_dashboard.py counts its models, in whichever order the files run)."""
    import numpy as np
    import scipy.sparse as sp

    from api.main import create_app
    from featurestore.recsys.evaluate import evaluate_holdout
    from featurestore.retrain import registry
    from featurestore.storage import Store
    from tests.serving_helpers import serve

    _, built = site
    copy = tmp_path / "store"
    shutil.copytree(built["store"], copy)
    rng = np.random.default_rng(0)
    fit = sp.csr_matrix((rng.random((60, 40)) < 0.2).astype(np.float32))
    test = sp.csr_matrix((rng.random((60, 40)) < 0.1).astype(np.float32))
    held = evaluate_holdout(lambda rows: rng.random((len(rows), 40)), fit, test, rounds=50)
    holdout = {"test": ["2011-11-10", "2011-12-09"], "k": 10, "customers": held["customers"],
               "table": held["table"]}
    store = Store(str(copy))
    version = registry.register_version(
        store, "retail-knn", metrics=held["metrics"], model_bytes=b"x",
        model_filename="recommender.npz", training_set={"url": "-", "metadata": {}},
        features=["purchases"], info={"job_id": None, "backend": "local", "params": {},
                                      "artifact": None, "details": {"holdout": holdout}})
    with serve(create_app(Settings(store=str(copy)))) as base:
        seen = _visit(browser, base, "models", shots)
        text = browser.evaluate("document.getElementById('main').innerText")
    for who, mode in (("model", "any"), ("model", "new"), ("popular", "new"),
                      ("buy_again", "any")):
        cell = held["table"][who][mode]["recall"]
        shown = seen["ids"][f"holdout-retail-knn-{who}-{mode}-recall"]
        assert shown == (f"{cell['value']:.4f} [{cell['low']:.4f}, {cell['high']:.4f}]"), (
            who, mode)
    assert "holdout-retail-knn-buy_again-new-recall" not in seen["ids"]
    assert f"retail-knn {version}: top-10 on the test window 2011-11-10..2011-12-09" in text


@pytest.fixture(scope="module")
def declaring_site(tmp_path_factory, client):
    """A store whose repository declares columns (SPEC §3a); the second drop's header lacks
    ``post_channel``."""
    import os
    import sys

    from api.main import create_app
    from featurestore.features.definitions import DEFAULT_REPO
    from featurestore.generate import generate_weblog
    from tests.serving_helpers import serve

    base = tmp_path_factory.mktemp("dash-declared")
    raw, store = base / "raw", base / "store"
    generate_weblog(str(raw), days=2, customers=80, products=5, rows_per_day=600, parts=1,
                    seed=6)
    header = raw / "2026-01-02" / "column_headers.tsv"
    header.write_text("\t".join("post_channel_v2" if n == "post_channel" else n
                                for n in header.read_text().rstrip("\n").split("\t")) + "\n")
    anchor = "    kind: weblog\n    table: events\n"
    repo = base / "repo.yaml"
    repo.write_text(DEFAULT_REPO.read_text().replace(
        anchor, anchor + "    columns: {post_channel: string, evar12: float}\n"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    for args in (["apply", "--repo", str(repo), "--store", str(store)],
                 ["ingest", str(raw), "--store", str(store), "--scheduler",
                  client.scheduler.address, "--json"]):
        proc = subprocess.run([sys.executable, "-m", "featurestore", *args], capture_output=True,
                              text=True, timeout=300, check=False, env=env)
        assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    with serve(create_app(Settings(store=str(store)))) as url:
        yield url, report


def test_ingestion_page_shows_declared_columns(browser, declaring_site, shots):
    """Each declared column's bad values per drop (chart and table) and the column a drop's
    header lacks, as the ingest reported them."""
    base, report = declaring_site
    (shots / "declared").mkdir(exist_ok=True)
    seen = _visit(browser, base, "ingestion", shots / "declared")
    by_drop = report["column_bad_by_drop"]
    assert report["column_bad_values"]["evar12"] > 0
    for drop in ("2026-01-01", "2026-01-02"):
        assert seen["ids"][f"bad-evar12-{drop}"] == str(by_drop.get(drop, {}).get("evar12", 0))
    assert seen["ids"]["columns-missing-2026-01-02"] == "post_channel"
    assert seen["ids"]["columns-missing-2026-01-01"] == "-"
    traces = browser.evaluate("document.getElementById('column-bad-values').data"
                              ".map(t => [t.name, t.y])")
    assert dict(traces)["evar12"] == [by_drop.get(d, {}).get("evar12", 0)
                                      for d in ("2026-01-01", "2026-01-02")]


def test_models_page_draws_no_pr_curve_note_for_a_recommender(browser, site, shots, tmp_path):
    """A recommender's production version (judged on its time holdout, no PR-AUC) trained
    minutes ago is not "trained before PR curves were recorded". Registered in a copy of the
    shared store, served on its own (the shared one is read-only)."""
    from api.main import create_app
    from featurestore.retrain import registry
    from featurestore.storage import Store
    from tests.serving_helpers import serve

    _, built = site
    copy = tmp_path / "store"
    shutil.copytree(built["store"], copy)
    store = Store(str(copy))
    metrics = {"recall_at_10_new": 0.12, "recall_at_10_any": 0.3,
               "popular_recall_at_10_new": 0.05, "buy_again_recall_at_10_any": 0.2}
    version = registry.register_version(
        store, "retail-als", metrics=metrics, model_bytes=b"x",
        model_filename="recommender.npz", training_set={"url": "-", "metadata": {}},
        features=["purchases"], info={"job_id": None, "backend": "local", "params": {},
                                      "artifact": None, "details": {}})
    registry.promote(store, "retail-als", version, reason="first version")
    with serve(create_app(Settings(store=str(copy)))) as base:
        seen = _visit(browser, base, "models", shots)
        text = browser.evaluate("document.getElementById('main').innerText")
    assert "before PR curves" not in text
    assert "retail-als" in text and "pr-curve-retail-als" not in [c["id"] for c in seen["charts"]]
    assert "pr-curve-purchase-xgboost" in [c["id"] for c in seen["charts"]]
