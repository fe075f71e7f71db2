"""FastAPI dependencies shared by the routers (``Annotated`` aliases, as in FastAPI's template)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from featurestore.online import OnlineStore
from featurestore.settings import Settings
from featurestore.storage import Store

from .settings import get_settings

__all__ = ["SettingsDep", "StoreDep", "require_token", "require_read_token", "WriteAuth",
           "ReadAuth", "OnlineDep", "get_online", "app_settings", "get_settings"]

async def app_settings(request: Request) -> Settings:
    """The settings the app was created with (``get_settings()`` for ``uvicorn api.main:app``).

    Read from ``app.state`` instead of a dependency override: FastAPI re-inspects overridden
    dependencies on every request, which costs more than the whole feature lookup.
    """
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]

_bearer = HTTPBearer(auto_error=False)


async def get_store(request: Request) -> Store:
    """The store the app was created for (set once in ``create_app``)."""
    return request.app.state.store


StoreDep = Annotated[Store, Depends(get_store)]


def _check_token(settings: Settings, credentials: HTTPAuthorizationCredentials | None) -> None:
    expected = settings.api_token.get_secret_value() if settings.api_token else None
    if expected is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "this endpoint needs a bearer token, and the server has none configured: "
            "set FEATURESTORE_API_TOKEN on the server and send 'Authorization: Bearer <token>'",
        )
    given = credentials.credentials if credentials else ""
    # Constant-time comparison: no timing side channel on the token.
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token: send 'Authorization: Bearer <FEATURESTORE_API_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def require_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Write endpoints (retrain, exports, ingest triggers) always need the token."""
    _check_token(settings, credentials)


async def require_read_token(request: Request) -> None:
    """Read endpoints need the token only with FEATURESTORE_API_REQUIRE_TOKEN_FOR_READS=true.

    One dependency reading the header itself (no sub-dependencies): this runs on every feature
    lookup, and each FastAPI dependency step costs more than the lookup.
    """
    settings: Settings = request.app.state.settings
    if settings.api_require_token_for_reads:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        credentials = (HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
                       if scheme.lower() == "bearer" else None)
        _check_token(settings, credentials)


WriteAuth = Depends(require_token)
ReadAuth = Depends(require_read_token)


async def get_online(request: Request) -> OnlineStore:
    """The app's embedded online store (started in the lifespan)."""
    return request.app.state.online


OnlineDep = Annotated[OnlineStore, Depends(get_online)]
