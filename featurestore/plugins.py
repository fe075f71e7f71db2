"""Extension seams chosen by name or dotted class path, as Feast's ``*_CLASS_FOR_TYPE`` maps.

Three seams, each a small protocol with a registry of built-in implementations:

* :data:`SOURCE_CLASS_FOR_TYPE` — raw data sources (``weblog``, ``retail``), named by the
  ``kind`` of a source in the feature repository;
* :data:`ONLINE_STORE_CLASS_FOR_TYPE` — where the API serves features from (``memory``),
  named by the ``online_store`` setting;
* :data:`TRAINING_BACKEND_CLASS_FOR_TYPE` — where models train (``local``, ``sagemaker``),
  named by a retrain request's ``backend``.

A name that is not in a registry is taken as a dotted path ``package.module.Class`` (or
``package.module:Class``), so a user's implementation needs no change here; adding a built-in
one is one class plus one line in its registry. Values are dotted paths, not classes, so an
implementation with heavy dependencies (SageMaker) is imported only when it is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from ._exceptions import ConfigError

__all__ = ["SOURCE_CLASS_FOR_TYPE", "ONLINE_STORE_CLASS_FOR_TYPE",
           "TRAINING_BACKEND_CLASS_FOR_TYPE", "load_class", "is_known"]

SOURCE_CLASS_FOR_TYPE: dict[str, str] = {
    "weblog": "featurestore.sources.weblog.source.WeblogSource",
    "retail": "featurestore.sources.retail.RetailSource",
}
ONLINE_STORE_CLASS_FOR_TYPE: dict[str, str] = {
    "memory": "featurestore.online.OnlineStore",
    "redis": "featurestore.online.redis.RedisOnlineStore",  # a redis:// or rediss:// URL
}
TRAINING_BACKEND_CLASS_FOR_TYPE: dict[str, str] = {
    "local": "featurestore.retrain.backends.LocalBackend",
    "sagemaker": "featurestore.retrain.backends.SageMakerBackend",
}


def is_known(name: str, registry: Mapping[str, str]) -> bool:
    """Whether ``name`` is a registered name or looks like a dotted class path."""
    return name in registry or "." in name


def load_class(name: str, registry: Mapping[str, str], seam: str) -> type:
    """The class registered under ``name``, or the class at dotted path ``name``.

    Args:
        name: a registered name (``"local"``) or ``"package.module.Class"``.
        registry: the seam's name -> dotted path map.
        seam: what the class is, for error messages (``"training backend"``).

    Returns:
        The class (not an instance).

    Raises:
        ConfigError: the name is unknown or the path does not import.
    """
    path = registry.get(name, name)
    module_name, sep, attr = path.replace(":", ".").rpartition(".")
    if not sep or not module_name:
        raise ConfigError(f"unknown {seam} {name!r}: use one of {', '.join(sorted(registry))} "
                          "or a dotted class path such as mypackage.module.MyClass")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = " (install the extra it needs, e.g. pip install 'featurestore[sagemaker]')" \
            if name in registry else ""
        raise ConfigError(f"{seam} {name!r}: cannot import {module_name} ({exc}){hint}") \
            from None
    cls = getattr(module, attr, None)
    if not isinstance(cls, type):
        raise ConfigError(f"{seam} {name!r}: {module_name} has no class {attr}")
    return cls
