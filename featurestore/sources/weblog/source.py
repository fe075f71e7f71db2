"""The ``weblog`` :class:`~featurestore.sources.base.Source`: daily drops of wide gzip TSV.

Parsing is :mod:`featurestore.sources.weblog`, ingestion :mod:`featurestore.sources.weblog.ingest`,
materialization :mod:`featurestore.features.materialize`; this class is the seam's face.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any, ClassVar

from ... import layout
from ...settings import Settings
from ...storage import Store
from .drops import DROP_DIR

if TYPE_CHECKING:
    from distributed import Client

    from ...features.definitions import FeatureRepo
    from ...features.materialize import MaterializeReport
    from .ingest import IngestReport

__all__ = ["WeblogSource"]


class WeblogSource:
    """Web-log drops (SPEC §1) into ``events``; ``customer_features`` and
    ``customer_product_features`` (and any other weblog table of the repository)."""

    kind: ClassVar[str] = "weblog"

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def expects_work(self, raw: str) -> bool:
        """A cheap hint, before anything is imported or planned, that an ingest of ``raw`` has
        work: a local raw root holds a drop folder the ledger has never seen (neither its
        records nor its compacted day file). The command then starts its own cluster while
        it plans (:meth:`featurestore.cluster.LazyClient.start_soon`).

        A hint only: a new folder of placeholders starts a cluster that finds nothing to do,
        and new files in a drop already seen, or a remote raw root, start it after planning,
        as before. A re-run with nothing new starts none.

        Args:
            raw: the raw root (a folder or URL).

        Returns:
            True when a drop folder is new to the ledger.
        """
        if "://" in raw and not raw.startswith("file://"):
            return False  # (a listing of an object store is not cheap enough for a hint)
        try:
            names = os.listdir(raw.removeprefix("file://"))
        except OSError:
            return False
        ledger = layout.ledger(self.kind)
        return any(DROP_DIR.match(name) and not self.store.exists(ledger, name)
                   and not self.store.exists(ledger, "_days", name) for name in names)

    def ingest(self, raw: str, *, client: Client, raw_storage_options: dict[str, Any] | None,
               progress: bool | None, accept_changed: bool = False) -> IngestReport:
        from ...features.partials import repo_for_ingest
        from .ingest import ingest_weblog

        return ingest_weblog(raw, self.store, client=client,
                             raw_storage_options=raw_storage_options, progress=progress,
                             max_late_days=self.settings.max_late_days,
                             accept_changed=accept_changed,
                             compaction=self.settings.events_compaction,
                             target_mb=self.settings.events_target_mb,
                             copy_min_mb=self.settings.events_copy_min_mb,
                             repo=repo_for_ingest(self.store, self.settings.feature_repo))

    def materialize(self, repo: FeatureRepo, report: MaterializeReport, *, client: Client,
                    start: dt.date | None, end: dt.date | None, force: bool) -> None:
        from ...features.materialize import materialize_weblog

        if repo.tables_for(self.kind):
            materialize_weblog(self.store, repo, report, client, None, None, start, end, force)
