"""The feature repository a store uses: recorded by ``featurestore apply``, like ``feast apply``.

``apply`` validates a repository YAML and records it in the store (its text under a
content-addressed name, then the record naming it, last). Every later command on that store
uses the recorded repository without being told again. A command that is given a repository
(flag, environment or config file) that differs from the recorded one is refused with a message
naming the difference. A store with nothing recorded uses the configured repository, else the
built-in default (SPEC §5).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

from . import layout
from ._exceptions import ConfigError
from .features.definitions import FeatureRepo, load_feature_repo, parse_feature_repo
from .storage import Store

__all__ = ["ApplyResult", "apply_repo", "recorded_repo", "resolve_repo"]


@dataclasses.dataclass(frozen=True)
class ApplyResult:
    """What ``apply`` recorded, and what changed against the repository recorded before."""

    fingerprint: str
    tables: list[str]
    changes: list[str]  # against the recorded repository (first apply: the default one)
    first: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def recorded_repo(store: Store) -> FeatureRepo | None:
    """The repository recorded in ``store`` by ``apply``, or None when there is none.

    Args:
        store: the offline store.

    Returns:
        The validated repository, or None.
    """
    try:
        record = store.read_json(layout.REPO_RECORD)
    except FileNotFoundError:
        return None
    except ValueError:
        raise ConfigError(f"{store.uri(layout.REPO_RECORD)} is not valid JSON; run "
                          "`featurestore apply --repo FILE` again to re-record the "
                          "repository") from None
    path = layout.repo_yaml(record["fingerprint"])
    try:
        text = store.fs.cat_file(store.path(path)).decode()
    except FileNotFoundError:
        raise ConfigError(f"{store.uri(path)} named by {layout.REPO_RECORD} is missing; run "
                          "`featurestore apply --repo FILE` again") from None
    return parse_feature_repo(text, store.uri(path))


def apply_repo(store: Store, path: str | None) -> ApplyResult:
    """Validate the repository at ``path`` and record it in ``store``.

    Args:
        store: the offline store (created when it does not exist yet).
        path: the repository YAML; None records the built-in default.

    Returns:
        The fingerprint, the tables, and the changes against the previously recorded one.
        Changed tables are rebuilt whole by the next materialization (``ingest``,
        ``backfill``, ``run-daily``).
    """
    repo = load_feature_repo(path)
    text = Path(path).read_text(encoding="utf-8") if path else _default_text()
    with store.lock("apply"):
        before = recorded_repo(store)
        fingerprint = repo.repo_fingerprint
        store.write_bytes(text.encode(), layout.repo_yaml(fingerprint))
        store.write_json({"fingerprint": fingerprint, "applied_at":
                          dt.datetime.now(dt.UTC).isoformat(), "origin": path or "built-in",
                          "tables": sorted(repo.tables)}, layout.REPO_RECORD)
    # a store with nothing recorded was built with the default repository
    changes = (before or load_feature_repo(None)).differences(repo)
    return ApplyResult(fingerprint, sorted(repo.tables), changes, before is None)


def resolve_repo(store: Store, configured: str | None) -> FeatureRepo:
    """The repository commands on ``store`` use.

    Args:
        store: the offline store.
        configured: the repository named by the flag, environment or config file, if any.

    Returns:
        The recorded repository; without one, the configured one, else the built-in default.

    Raises:
        ConfigError: ``configured`` differs from the recorded repository (the message names
            the differences and the ``apply`` command that records it).
    """
    recorded = recorded_repo(store)
    if recorded is None:
        return load_feature_repo(configured)
    if configured is not None:
        given = load_feature_repo(configured)
        if given.repo_fingerprint != recorded.repo_fingerprint:
            changes = "; ".join(recorded.differences(given)) or "the definitions differ"
            raise ConfigError(
                f"the feature repository {configured} differs from the one recorded in "
                f"{store.url} ({changes}) — run `featurestore apply --repo {configured} "
                f"--store {store.url}` to record it, or unset the feature_repo setting")
    return recorded


def _default_text() -> str:
    from .features.definitions import DEFAULT_REPO

    return DEFAULT_REPO.read_text(encoding="utf-8")
