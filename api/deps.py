"""FastAPI dependencies shared by the routers (``Annotated`` aliases, as in FastAPI's template)."""

from __future__ import annotations

import hmac
import re
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from featurestore.feature_store import FeatureStore
from featurestore.online import OnlineStore
from featurestore.settings import Settings
from featurestore.storage import Store

from .settings import get_settings

__all__ = ["SettingsDep", "StoreDep", "FeatureStoreDep", "require_token", "require_read_token", "WriteAuth",
           "ReadAuth", "OnlineDep", "get_online", "app_settings", "get_settings", "is_operator",
           "hide_store", "hide_locations", "ID_PATTERN", "IdPath"]

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


async def get_feature_store(request: Request) -> FeatureStore:
    """The app's composition root (set once in ``create_app``)."""
    return request.app.state.feature_store


FeatureStoreDep = Annotated[FeatureStore, Depends(get_feature_store)]


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


def is_operator(request: Request) -> bool:
    """Whether the request carries the (configured) write token: only operators see locations.

    Args:
        request: the request.

    Returns:
        True for a valid bearer token, False for anonymous or a wrong token.
    """
    settings: Settings = request.app.state.settings
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        _check_token(settings, HTTPAuthorizationCredentials(scheme=scheme,
                                                            credentials=token.strip())
                     if scheme.lower() == "bearer" else None)
    except HTTPException:
        return False
    return True


def hide_store(text: str, store: Store) -> str:
    """``text`` with the store's URL and root path replaced by ``<store>``.

    Args:
        text: a message that may name the store (library errors do, for the CLI).
        store: the app's store.

    Returns:
        The message with logical names only.
    """
    for location in sorted({store.url, store.root, f"file://{store.root}"}, key=len,
                           reverse=True):
        text = text.replace(location, "<store>")
    return text


# A URL (scheme://...) or an absolute path of two parts or more (/a/b...).
_LOCATION = re.compile(r"""[A-Za-z][\w+.-]*://[^\s'"]*|(?<![\w./<>])/[^\s'"/]+/[^\s'"]*""")


def hide_locations(text: str, store: Store) -> str:
    """``text`` with the store as ``<store>`` and every other path or URL as ``<path>/<name>``.

    Args:
        text: a message for an anonymous reader (a job's error, a loading error).
        store: the app's store.

    Returns:
        The message with file names kept (they say what is wrong) and folders removed.
    """
    return _LOCATION.sub(lambda m: "<path>/" + m.group(0).rstrip("/").rsplit("/", 1)[-1],
                         hide_store(text, store))


#: Ids and names in paths (job ids ``purchase-xgboost-20260305T120000-ab12cd``, model names,
#: export ids): letters, digits, ``.``, ``_``, ``-``, not starting with a dot.
ID_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$"
IdPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=128)]
