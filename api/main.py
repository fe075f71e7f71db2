"""The FastAPI application: ``create_app(settings)``; ``uvicorn api.main:app`` uses the env
settings."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from featurestore import FeatureStore, FeatureStoreError
from featurestore.settings import Settings

from .dashboard import install_docs
from .dashboard import router as dashboard_router
from .deps import hide_store
from .guard import GuardMiddleware, write_routes
from .hot import HotPathMiddleware
from .metrics import Metrics, MetricsMiddleware
from .routes import all_routers
from .settings import get_settings

__all__ = ["create_app", "app"]  # noqa: F822 - `app` is made on first use (__getattr__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    feature_store = FeatureStore(settings)  # the composition root: one per app
    store = feature_store.offline_store
    online = feature_store.online_store()  # every table of the repository, with its keys

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Load in a background thread so /health answers at once; /ready says when loaded.
        online.start()
        try:
            yield
        finally:
            online.stop()
            close = getattr(online, "aclose", None)  # a shared store's connections
            if close is not None:
                await close()

    application = FastAPI(
        title="featurestore",
        version="0.1.0",
        description="Customer features over REST, training-set exports and retraining.",
        lifespan=lifespan,
        docs_url=None,  # served from the package by install_docs (no CDN)
        redoc_url=None,
    )
    application.state.settings = settings
    application.state.feature_store = feature_store
    application.state.store = store
    application.state.online = online
    application.state.metrics = Metrics()
    _add_routes(application, all_routers())
    install_docs(application)
    application.include_router(dashboard_router)
    # Innermost: the plain feature lookups, after the token and body checks (api/hot.py).
    application.add_middleware(HotPathMiddleware, routes=application.router.routes)
    # Added before metrics, so it runs inside it: rejected requests are counted too.
    application.add_middleware(GuardMiddleware, settings=settings,
                               writes=write_routes(application.router.routes))
    application.add_middleware(MetricsMiddleware, metrics=application.state.metrics)
    _install_error_handlers(application)
    return application


def _add_routes(application: FastAPI, routers: list[APIRouter]) -> None:
    """Put every router's routes straight into the app's route list, hot routes first.

    Same result as ``include_router`` for routers without a prefix (each ``APIRoute`` already
    carries its router's tags and dependencies), but ``include_router`` wraps each router in a
    branch that FastAPI matches twice per request, and the built-in ``/docs`` routes come first:
    together about 40 us of a 110 us feature lookup (``benchmarks/serve.py``).
    """
    routes = [route for router in routers for route in router.routes]
    application.router.routes[:0] = routes


def _install_error_handlers(application: FastAPI) -> None:
    """Every error is JSON ``{"detail": "<actionable message>"}``; nothing leaks as a bare 500."""

    @application.exception_handler(FeatureStoreError)
    async def _store_error(request: Request, exc: FeatureStoreError) -> JSONResponse:
        # each library error carries its status (404 not found, 409 locked, 413 too large...);
        # library messages name the store for the CLI: answer its logical name instead
        detail = hide_store(str(exc), request.app.state.store)
        return JSONResponse({"detail": detail}, status_code=exc.http_status)

    @application.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse({"detail": f"invalid request: {problems}"}, status_code=422)

    @application.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @application.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}); the server log has details"},
            status_code=500,
        )


def __getattr__(name: str):
    # ``uvicorn api.main:app`` builds the app lazily, from the environment's settings.
    if name == "app":
        return create_app()
    raise AttributeError(name)
