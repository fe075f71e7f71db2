"""The operations dashboard (``/dashboard``) and the offline ``/docs`` and ``/redoc`` pages.

Thin routes: the numbers come from :mod:`featurestore.dashboard`; every asset (plotly.js from
the ``plotly`` wheel, Swagger UI and ReDoc from the ``fastapi-offline`` wheel, this package's
own page script) is served from the installed packages, so the pages work with no internet.
"""

from __future__ import annotations

from .routes import install_docs, router

__all__ = ["install_docs", "router"]
