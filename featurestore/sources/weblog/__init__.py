"""The ``weblog`` source: daily drops of wide, headerless, gzip TSV hit files (SPEC §1, §3a).

Read top to bottom, the way a drop travels:

| module | its one job |
|---|---|
| ``drops`` | the raw root's layout: drop folders, their files, headers, manifests, problems |
| ``scan`` | the numba byte scanner: field bounds, UTF-8 checks, field bytes to Arrow |
| ``parse`` | one file's gzip bytes to typed hit rows and quarantined bad rows |
| ``ingest`` | every new file exactly once: plan, one Dask task per file, ledger record last |
| ``backfill`` | a newly declared column re-read from the raw drops (``backfill --raw``) |
| ``source`` | :class:`WeblogSource`, the ``Source`` seam's face (ingest + materialize) |
| ``preload`` | Dask worker preload: loads the scanner kernels as a worker starts |

Materialization of the web-log tables is the feature engine's (:mod:`featurestore.features`).
The names below are this package's public API (``ingest`` and ``backfill`` import Dask-side
code and are imported by their module name).
"""

from __future__ import annotations

from .drops import WEBLOG_COLUMNS, Discovery, RawFile, discover_drops, discover_files

__all__ = ["WEBLOG_COLUMNS", "BAD_ROW_REASONS", "DEFAULT_MAX_LATE_DAYS", "EVENT_SCHEMA",
           "COLUMN_ARROW_TYPES", "QUARANTINE_SCHEMA", "Discovery", "ParsedFile", "RawFile",
           "discover_drops", "discover_files", "event_schema", "parse_file", "typed_column"]

#: The names ``parse`` gives, loaded on first use: a command with its own cluster reaches
#: :class:`~.source.WeblogSource` (this package) before it starts the workers' server, and
#: ``parse`` imports pyarrow.compute (issue #27: ~0.1-0.2 s earlier start)
_FROM_PARSE = frozenset({"BAD_ROW_REASONS", "COLUMN_ARROW_TYPES", "DEFAULT_MAX_LATE_DAYS",
                         "EVENT_SCHEMA", "QUARANTINE_SCHEMA", "ParsedFile", "event_schema",
                         "parse_file", "typed_column"})


def __getattr__(name: str):
    if name in _FROM_PARSE:
        from . import parse

        return getattr(parse, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
