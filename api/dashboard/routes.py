"""Routes of the dashboard: HTML pages, static assets and the JSON under ``/dashboard/api``."""

from __future__ import annotations

import functools
import html
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from featurestore import NotFoundError, clip
from featurestore._lazy import lazy_module
from featurestore.feature_store import FeatureStore
from featurestore.features.definitions import FeatureRepo
from featurestore.storage import Store
from featurestore.tables import as_of_dates

from ..deps import ReadAuth, hide_store, is_operator

# the dashboard's numbers load on the first page that needs them, not before /ready
numbers = lazy_module("featurestore.dashboard")

__all__ = ["PAGES", "install_docs", "router"]

router = APIRouter(prefix="/dashboard", tags=["dashboard"], dependencies=[ReadAuth])

#: page -> title, in navigation order
PAGES = {"overview": "Overview", "catalogue": "Catalogue", "ingestion": "Ingestion",
         "features": "Features", "models": "Models", "cluster": "Cluster"}

_STATIC = Path(__file__).parent / "static"
_DOCS_STATIC = Path(str(resources.files("fastapi_offline") / "static"))
_PLOTLY_JS = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
_ASSETS = {"plotly.min.js": _PLOTLY_JS, "dashboard.js": _STATIC / "dashboard.js",
           "catalogue.js": _STATIC / "catalogue.js", "dashboard.css": _STATIC / "dashboard.css"}
_DOCS_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def _store(request: Request) -> Store:
    return request.app.state.store


def _facade(request: Request) -> FeatureStore:
    """The app's composition root (a fresh facade when the app has none)."""
    return getattr(request.app.state, "feature_store", None) or FeatureStore(
        request.app.state.settings)


def _repo(request: Request) -> FeatureRepo:
    """The store's feature repository, from the app's composition root (a fresh facade when
    the app has none), as every command on this store uses it."""
    fs = getattr(request.app.state, "feature_store", None)
    return (fs or FeatureStore(request.app.state.settings)).repo


def _page(name: str) -> str:
    nav = "".join(
        f'<a href="/dashboard/{p}"{" class=current" if p == name else ""}>{html.escape(t)}</a>'
        for p, t in PAGES.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>featurestore - {html.escape(PAGES[name])}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/static/dashboard.css">
<script src="/dashboard/static/plotly.min.js"></script>
<script src="/dashboard/static/dashboard.js" defer></script>
<script src="/dashboard/static/catalogue.js" defer></script>
</head><body data-page="{name}">
<header><strong>featurestore</strong><nav>{nav}</nav>
<a class="json" href="/dashboard/api/{name if name != 'features' else 'tables'}">JSON</a></header>
<main id="main"><p class="loading">loading...</p></main>
</body></html>"""


@router.get("", include_in_schema=False)
def dashboard_root() -> RedirectResponse:
    """``/dashboard`` opens the overview."""
    return RedirectResponse("/dashboard/overview")


@router.get("/static/{name}", include_in_schema=False)
def dashboard_asset(name: str) -> FileResponse:
    """plotly.js (from the plotly wheel) and the page's own script and style."""
    path = _ASSETS.get(name)
    if path is None:
        raise NotFoundError(f"no dashboard asset {clip(name)}")
    return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})


@router.get("/api/overview")
def api_overview(request: Request) -> dict[str, Any]:
    """Per table of the repository: latest as-of, its source's newest date, lag, rows per as-of."""
    return numbers.overview(_store(request), _repo(request))


@router.get("/api/catalogue")
def api_catalogue(request: Request,
                  table: Annotated[str | None, Query(max_length=100)] = None,
                  search: Annotated[str | None, Query(max_length=200)] = None,
                  model: Annotated[str | None, Query(max_length=100)] = None,
                  version: Annotated[str | None, Query(max_length=100)] = None
                  ) -> dict[str, Any]:
    """The feature catalogue: every table and feature with its definition, description,
    owner, tags, type, the latest as-of's numbers, freshness and lineage (source -> table ->
    training sets and model versions, with the feature's importance in each). ``table``,
    ``search`` (every word in the name, table, description, owner or tags), ``model`` and
    ``version`` narrow the features listed. Training-set locations (``url``,
    ``training_set``) are answered only with the write token, as on ``/models``."""
    data = _facade(request).catalogue(table=table, search=search, model=model,
                                      version=version)
    # where training sets are is for operators (the write token), as on /models; for them
    # logical locations only (<store>/_exports/...)
    store, operator = _store(request), is_operator(request)

    def location(url: str | None) -> str | None:
        return hide_store(url, store) if url and operator else None

    for entry in data["features"]:
        for ts in entry["lineage"]["training_sets"]:
            ts["url"] = location(ts["url"])
        for m in entry["lineage"]["models"]:
            m["training_set"] = location(m["training_set"])
    for v in data["models"]:
        v["training_set"] = location(v["training_set"])
    return data


@router.get("/api/ingestion")
def api_ingestion(request: Request,
                  days: Annotated[int, Query(ge=1, le=3660)] = 60) -> dict[str, Any]:
    """Per web-log drop: rows ingested and quarantined by reason, files held back and files
    rejected (with their reasons)."""
    store = _store(request)
    data = numbers.ingestion(store, days=days)
    # logical locations only (<store>/_quarantine/...), as every API answer to a reader
    data["quarantine_root"] = hide_store(data["quarantine_root"], store)
    for day in data["days"]:
        if day["quarantine_location"]:
            day["quarantine_location"] = hide_store(day["quarantine_location"], store)
    return data


@router.get("/api/tables")
def api_tables(request: Request) -> dict[str, Any]:
    """The repository's tables with their features and as-of dates (for the features page)."""
    store, repo = _store(request), _repo(request)
    return {"tables": [{"table": name, "source": spec.source, "features": list(spec.features),
                        "as_of_dates": as_of_dates(store, name)}
                       for name, spec in sorted(repo.tables.items())]}


@router.get("/api/features/{table}")
def api_features(request: Request, table: str, as_of: str | None = None,
                 bins: Annotated[int, Query(ge=2, le=100)] = 20) -> dict[str, Any]:
    """Histogram and null share of every feature of one as-of (the latest by default)."""
    return numbers.feature_profile(_store(request), _repo(request), table, as_of, bins)


@router.get("/api/drift/{table}")
def api_drift(request: Request, table: str, as_of: str | None = None,
              baseline: str | None = None) -> dict[str, Any]:
    """PSI per feature of ``as_of`` against ``baseline``, the largest movers first."""
    return numbers.drift(_store(request), _repo(request), table, as_of, baseline)


@router.get("/api/models")
def api_models(request: Request) -> dict[str, Any]:
    """Model versions and metrics, the production version, recent jobs and alerts."""
    return numbers.models(_store(request))


@router.get("/api/pr-curves")
def api_pr_curves(request: Request) -> dict[str, Any]:
    """The held-out precision-recall curve of each model's production version."""
    return numbers.pr_curves(_store(request))


@router.get("/api/cluster")
def api_cluster(request: Request) -> dict[str, Any]:
    """The configured Dask scheduler and its dashboard URL."""
    return numbers.cluster(request.app.state.settings.scheduler)


@router.get("/{page}", include_in_schema=False)
def dashboard_page(page: str) -> HTMLResponse:
    """One dashboard page (the charts are drawn in the browser from ``/dashboard/api``)."""
    if page not in PAGES:
        raise NotFoundError(f"no dashboard page {clip(page)}; pages: {', '.join(PAGES)}")
    return HTMLResponse(_page(page))


def install_docs(application: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` with Swagger UI and ReDoc from the installed package.

    The app must be created with ``docs_url=None, redoc_url=None`` (FastAPI's own pages load
    their assets from a CDN and render blank without internet access).

    Args:
        application: the app to add the pages and their assets to.
    """
    openapi_url = application.openapi_url or "/openapi.json"
    title = application.title

    @application.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} - Swagger UI",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png")

    @application.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @application.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{title} - ReDoc",
                              redoc_js_url="/docs-assets/redoc.standalone.js",
                              redoc_favicon_url="/docs-assets/favicon.png",
                              with_google_fonts=False)

    @application.get("/docs-assets/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        if name not in _DOCS_ASSETS:
            raise NotFoundError(f"no docs asset {clip(name)}")
        headers = {"Cache-Control": "public, max-age=86400"}
        if name == "redoc.standalone.js":
            return Response(_redoc_js(), media_type="text/javascript", headers=headers)
        return FileResponse(_DOCS_STATIC / name, headers=headers)


@functools.cache
def _redoc_js() -> bytes:
    """ReDoc's bundle with its one remote asset (the sidebar's "built with" logo on a CDN)
    pointed at the local favicon, so the page makes no request outside the server."""
    return (_DOCS_STATIC / "redoc.standalone.js").read_bytes().replace(
        b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"/docs-assets/favicon.png")
