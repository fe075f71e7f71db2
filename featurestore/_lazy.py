"""Names a package imports on first use (PEP 562), so ``featurestore --help`` and every usage
error answer before Dask, pandas and pyarrow are loaded (docs/performance.md, "CLI start-up")."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_getattr", "lazy_module"]


def lazy_getattr(package: str, modules: dict[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        modules: attribute name -> the module (relative to ``package``) that defines it.

    Returns:
        The function: it imports the module on the first lookup of a name and keeps the value
        in the package, so the next lookup is a plain attribute.
    """

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__


class _LazyModule:
    """A module imported on its first attribute lookup (see :func:`lazy_module`)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_module(name: str) -> Any:
    """``name`` as an object whose first attribute lookup imports it: a module an entry point
    (the API) uses only in some routes does not slow its start (``/ready``).

    Args:
        name: the absolute module name.

    Returns:
        The stand-in; ``stand_in.f`` is ``importlib.import_module(name).f``.
    """
    return _LazyModule(name)
