"""The ``Source`` seam: a kind of raw data the store ingests and builds feature tables from.

A source kind is named in the feature repository (``sources.<name>.kind``): a built-in name of
:data:`featurestore.plugins.SOURCE_CLASS_FOR_TYPE` (``weblog``, ``retail``) or a dotted class
path. Its class ingests new raw units exactly once into the store (a ledger record per unit,
written last) and materializes the repository's tables of its kind for every due as-of date.
Every implementation runs the contract suite in ``tests/contract/test_source.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from ..plugins import SOURCE_CLASS_FOR_TYPE, load_class
from ..settings import Settings
from ..storage import Store

if TYPE_CHECKING:
    from distributed import Client

    from ..features.definitions import FeatureRepo
    from ..features.materialize import MaterializeReport

__all__ = ["Source", "SourceReport", "source_class", "source_kinds"]


@runtime_checkable
class SourceReport(Protocol):
    """What one ingest of a source did."""

    @property
    def ok(self) -> bool:
        """True when every delivered row is accounted for."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


@runtime_checkable
class Source(Protocol):
    """Ingests one kind of raw data and materializes the tables built from it."""

    #: The kind name the repository uses for it.
    kind: ClassVar[str]

    def __init__(self, store: Store, settings: Settings) -> None: ...

    def ingest(self, raw: str, *, client: Client, raw_storage_options: dict[str, Any] | None,
               progress: bool | None, accept_changed: bool = False) -> SourceReport:
        """Ingest every raw unit under ``raw`` not yet in this source's ledger (caller holds
        the store's writer lease).

        Args:
            raw: a folder, file or fsspec URL of raw data.
            client: the Dask client to run on.
            raw_storage_options: fsspec options for ``raw``.
            progress: show progress (None: when stderr is a terminal).
            accept_changed: replace the rows of units whose content changed since they were
                ingested (without it they are refused: the report is not ok).

        Returns:
            The report (``ok`` False when something delivered was not accounted for).
        """
        ...

    def materialize(self, repo: FeatureRepo, report: MaterializeReport, *, client: Client,
                    start: dt.date | None, end: dt.date | None, force: bool) -> None:
        """Write every due as-of date of the repository's tables of this kind, recording what
        was written in ``report`` (caller holds the store's writer lease).

        Args:
            repo: the store's feature repository.
            report: filled with ``as_of_written`` and ``rows_written`` per table.
            client: the Dask client to run on.
            start: first as-of date to (re)write, None for the first.
            end: last as-of date to (re)write, None for the latest.
            force: rebuild every as-of date in the range.

        A source that rewrites a feature partition bumps its generation
        (:func:`featurestore.generations.commit_generations`) before its own commit record,
        so a running server notices the rewrite.
        """
        ...


def source_class(kind: str) -> type[Source]:
    """The class of source ``kind`` (a registered name or a dotted class path).

    Raises:
        ConfigError: unknown kind, or a path that does not import.
    """
    return load_class(kind, SOURCE_CLASS_FOR_TYPE, "source kind")


def source_kinds(repo: FeatureRepo) -> list[str]:
    """The source kinds of a repository in materialization order (built-ins first)."""
    kinds = {s.kind for s in repo.sources.values()}
    builtin = [k for k in SOURCE_CLASS_FOR_TYPE if k in kinds]
    return builtin + sorted(kinds - set(builtin))
