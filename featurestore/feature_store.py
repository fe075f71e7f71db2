"""The composition root: :class:`FeatureStore`, built from :class:`Settings`.

Every entry point (the CLI, the API, ``run-daily``, the demo) builds one ``FeatureStore`` and
calls only its methods, so a setting given once (the feature repository, the scheduler, the
storage options) holds everywhere. It owns:

* the offline store (:class:`~featurestore.storage.Store`, the parquet tables and records);
* the feature repository: the one recorded in the store by :meth:`apply`, else the configured
  one, else the built-in default (:mod:`featurestore.repository`);
* the Dask client factory (a LocalCluster it owns, or ``settings.scheduler``);
* the sources, the online store and the training backends, each chosen by name or dotted
  class path from a registry (:mod:`featurestore.plugins`).

Example::

    from featurestore import FeatureStore, Settings

    fs = FeatureStore(Settings(store="./featurestore-data/store"))
    fs.apply("my_repo.yaml")
    result = fs.ingest("./featurestore-data/raw")
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .cluster import LazyClient, dask_client
from .features.definitions import FeatureRepo
from .repository import ApplyResult, apply_repo, resolve_repo
from .settings import Settings, load_settings
from .storage import Store, options_for

if TYPE_CHECKING:
    from distributed import Client

    from .example_repo import ExampleResult
    from .features.materialize import MaterializeReport
    from .job_records import JobView
    from .online import OnlineStoreProtocol
    from .predict import PredictReport
    from .sources.weblog.backfill import ColumnBackfillReport
    from .store_init import InitResult
    from .tables import TableInfo

__all__ = ["FeatureStore", "IngestResult"]


@dataclasses.dataclass
class IngestResult:
    """One ``ingest``: the source's report and the materialization that followed it."""

    source: str
    report: Any  # IngestReport (weblog) or RetailReport (retail): both have to_dict() and ok
    materialize: MaterializeReport

    @property
    def ok(self) -> bool:
        """True when every delivered row is accounted for (no rejected or missing file)."""
        return bool(getattr(self.report, "ok", True))

    def to_dict(self) -> dict[str, Any]:
        return {**self.report.to_dict(), "materialize": self.materialize.to_dict()}


class FeatureStore:
    """The feature store facade: one per process and store.

    Args:
        settings: every knob (store URL, storage options, scheduler, repository...); None
            reads the environment and config file (:func:`~featurestore.load_settings`).
        client: an existing Dask client to run on (else one is made per call from the
            settings: the configured scheduler, or a LocalCluster owned by the call).
        progress: draw a bar of Dask task completion on stderr while work runs on the
            cluster (:mod:`featurestore.progress`); None: only when stderr is a terminal.
        progress_label: the bar's label (the CLI passes the command).
    """

    def __init__(self, settings: Settings | None = None, *, client: Client | None = None,
                 progress: bool | None = False, progress_label: str = "featurestore"
                 ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.offline_store = Store(self.settings.store, self.settings.storage_options,
                                   self.settings.lease_seconds)
        self._client = client
        self.progress = progress
        self.progress_label = progress_label
        self._repo: FeatureRepo | None = None

    def __repr__(self) -> str:
        return f"FeatureStore({self.offline_store.url!r})"

    # -- wiring ----------------------------------------------------------------------------
    @property
    def repo(self) -> FeatureRepo:
        """The feature repository every command on this store uses (see module docstring).

        Raises:
            ConfigError: the configured repository differs from the recorded one.
        """
        if self._repo is None:
            self._repo = resolve_repo(self.offline_store, self.settings.feature_repo)
        return self._repo

    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        """A Dask client for the duration of the block: the one given to the constructor, the
        configured scheduler's, or a LocalCluster that is closed at the end."""
        from .progress import task_progress

        with dask_client(self.settings.scheduler, self.settings.workers, self._client) as c, \
                task_progress(c, self.progress_label, self.progress):
            yield c

    @contextlib.contextmanager
    def lazy_client(self) -> Iterator[LazyClient]:
        """Like :meth:`client`, but the cluster starts only when a step asks for it (after
        planning): a run with nothing to do starts none.

        Yields:
            A :class:`~featurestore.cluster.LazyClient` to pass as ``client``.
        """
        def progress(c: Client):  # the bar follows the cluster's tasks once there is one
            from .progress import task_progress  # (imports Dask)

            return task_progress(c, self.progress_label, self.progress)

        with LazyClient(self.settings.scheduler, self.settings.workers, self._client,
                        on_start=progress) as lazy:
            yield lazy

    def online_store(self) -> OnlineStoreProtocol:
        """A new online store (``settings.online_store``) serving every table of the
        repository with its entity keys; the API owns and starts it."""
        from .online import online_store_class, online_store_type

        repo = self.repo
        tables = tuple(repo.tables)
        _, url = online_store_type(self.settings.online_store)
        extra = {"url": url} if url else {}
        return online_store_class(self.settings.online_store)(
            self.offline_store, poll_seconds=self.settings.snapshot_poll_seconds,
            tables=tables, keys={t: repo.keys(t) for t in tables}, **extra)

    # -- the shared online store (Redis): pushed by the run that commits --------------------
    @property
    def online_url(self) -> str | None:
        """The Redis URL of a shared online store, or None (``memory``: nothing to push)."""
        from .online import online_store_type

        return online_store_type(self.settings.online_store)[1]

    def push_online(self, *, client: Client | None = None) -> Any:
        """Push the latest committed as-of of every table to the shared online store, under
        the store's writer lease (``featurestore online push``).

        Args:
            client: a Dask client to write from (default: :meth:`client`).

        Returns:
            The :class:`~featurestore.online.redis_push.PushReport`, or None with no shared
            online store configured.

        Raises:
            OnlineStoreBehindError: Redis failed; the offline store is unchanged.
        """
        if self.online_url is None:
            return None
        with contextlib.ExitStack() as stack:
            if client is None:
                client = stack.enter_context(self.client())
            stack.enter_context(self.offline_store.lock("online push"))
            report, error = self._push_locked(client)
        if error:
            raise _behind("nothing new", error)
        return report

    def online_status(self) -> dict[str, dict[str, Any]] | None:
        """Per table: committed latest as-of, what the shared online store serves, and whether
        it is behind; None with no shared online store configured.

        Raises:
            OnlineStoreUnavailableError: Redis does not answer.
        """
        from ._exceptions import OnlineStoreUnavailableError
        from .online.redis import redact
        from .online.redis_push import online_status

        if self.online_url is None:
            return None
        try:
            return online_status(self.offline_store, self.online_url, list(self.repo.tables))
        except Exception as exc:
            raise OnlineStoreUnavailableError(
                f"the online store {redact(self.online_url)} does not answer "
                f"({type(exc).__name__}: {exc}); check that Redis runs and the URL") from None

    def _push_locked(self, client: Client | None) -> tuple[Any, str | None]:
        """Push after a commit (the caller holds the lease): (report, None), or (None, why)
        when Redis failed — the offline commit stands either way."""
        from .online.redis_push import push_online

        repo = self.repo
        tables = {t: repo.keys(t) for t in repo.tables}
        recency = {t: [n for n, f in repo.tables[t].features.items()
                       if f.aggregation == "recency"] for t in repo.tables}
        try:
            return push_online(self.offline_store, self.online_url, tables=tables,
                               recency=recency, client=client), None
        except Exception as exc:  # Redis down or failing: reported, never undoes the commit
            from .online.redis import redact

            return None, redact(f"{type(exc).__name__}: {exc}")

    def check(self, access: str) -> None:
        """Check the store before any work starts (no cluster is started).

        Args:
            access: ``"write"`` (the root must be a writable folder, created when absent) or
                ``"read"`` (it must exist).

        Raises:
            StoreError: one line naming the path and what to do.
        """
        self.offline_store.preflight(write=access == "write")

    def init(self) -> InitResult:
        """Create the store's bucket (S3) or folder (local) when absent; the only call that
        creates a bucket (:mod:`featurestore.store_init`).

        Returns:
            What was created.
        """
        from .store_init import init_store

        return init_store(self.offline_store)

    def write_example_repo(self, path: str | None = None) -> ExampleResult:
        """Write a commented feature repository with custom features next to the store
        (``featurestore init --example``; :mod:`featurestore.example_repo`).

        Args:
            path: where to write it (default: the local store's parent folder, else the
                working directory).

        Returns:
            Where it is and the three commands to run next.

        Raises:
            ConfigError: another file is at the path already.
        """
        from .example_repo import write_example
        from .tables import as_of_dates

        store = self.offline_store
        has_data = store.exists() and (
            bool(store.listdir("events")) or any(as_of_dates(store, t) for t in self.repo.tables))
        return write_example(store, path, has_data=has_data)

    # -- definitions -----------------------------------------------------------------------
    def apply(self, repo_path: str | None) -> ApplyResult:
        """Validate a feature repository and record it in the store.

        Args:
            repo_path: the repository YAML; None records the built-in default.

        Returns:
            The recorded fingerprint and tables, and what changed against the previous one
            (changed tables are rebuilt whole by the next materialization).
        """
        result = apply_repo(self.offline_store, repo_path)
        self._repo = None
        return result

    # -- pipeline --------------------------------------------------------------------------
    def ingest(self, raw_root: str, *, source: str = "weblog",
               raw_storage_options: dict[str, Any] | None = None,
               progress: bool | None = None, accept_changed: bool = False) -> IngestResult:
        """Ingest every new raw file of ``source`` exactly once, then bring every table up to
        date, under one hold of the store's writer lease.

        Args:
            raw_root: the drops folder (weblog) or CSV file (retail), local or fsspec URL.
            source: a source name of the repository, or a source kind (``weblog``,
                ``retail``, or a dotted class path).
            raw_storage_options: fsspec options for ``raw_root`` when they differ from the
                store's.
            progress: show a progress bar (None: when stderr is a terminal).
            accept_changed: replace the rows of raw files whose content changed since they
                were ingested (else they are refused and the report is not ok).

        Returns:
            The source's report and the materialization report.
        """
        from .sources.base import source_class

        repo = self.repo
        store = self.offline_store
        # a source of the repository by its name, else a kind (weblog, retail, dotted path)
        cls = source_class(repo.sources[source].kind if source in repo.sources else source)
        # the store's options when the protocol matches: one rule for the check and every source
        raw_storage_options = options_for(raw_root, store, raw_storage_options)
        _check_raw(raw_root, raw_storage_options,  # before any cluster starts
                   weblog=cls.__name__ == "WeblogSource")
        error = None
        src = cls(store, self.settings)
        with self.lazy_client() as client, store.lock(f"ingest {source} + materialize"):
            # a source that sees work coming (a new drop) has its cluster start now, while
            # the libraries load and the run is planned (issue #27)
            hint = getattr(src, "expects_work", None)
            if hint is not None and hint(raw_root):
                client.start_soon()
            from .materialization import materialize_locked

            report = src.ingest(raw_root, client=client, raw_storage_options=raw_storage_options,
                                progress=progress, accept_changed=accept_changed)
            mat = materialize_locked(store, client=client, repo=repo, settings=self.settings)
            if self.online_url:
                _, error = self._push_locked(client)
        if error:
            raise _behind(f"ingest of {source}", error)
        return IngestResult(source, report, mat)

    def backfill_columns(self, *, raw: str | None = None,
                         raw_storage_options: dict[str, Any] | None = None
                         ) -> ColumnBackfillReport:
        """Fill the declared columns (SPEC §3a) that ingested events lack from the raw drops
        the ledger recorded, exactly once (``featurestore backfill`` runs it first).

        Args:
            raw: where the drops are now (default: the URL the ledger recorded per file).
            raw_storage_options: fsspec options for the raw files when they differ from the
                store's.

        Returns:
            What was filled, what could not be, and from which date each column is complete.
        """
        from .features.daily import daily_plan
        from .sources.weblog.backfill import ColumnBackfillReport, backfill_columns  # noqa: F811

        repo = self.repo
        declared = repo.declared_columns()
        if not declared:  # nothing to fill: no cluster
            return ColumnBackfillReport()
        daily = daily_plan(repo) if repo.tables_for("weblog") else None
        from .features.aggs.engine import ext_plan

        ext = ext_plan(repo) if daily is not None else None
        ext = ext if ext is not None and ext.specs else None  # as ingest chooses it
        with self.client() as client:
            return backfill_columns(self.offline_store, declared, client=client, raw_root=raw,
                                    raw_storage_options=raw_storage_options,
                                    max_late_days=self.settings.max_late_days, daily=daily,
                                    ext=ext)

    def declared_columns(self) -> dict[str, dict[str, Any]]:
        """The weblog source's declared columns (SPEC §3a) with their completeness.

        Returns:
            Column -> ``{"type", "complete_from"}``; ``complete_from`` is None when every
            event date has the column, else the first date from which it is complete (a
            backfill found raw files gone for earlier dates).
        """
        from .sources.weblog.backfill import column_completeness

        return column_completeness(self.offline_store, self.repo.declared_columns())

    def table_columns(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per table of the repository, its source's declared columns (SPEC §3a) with their
        completeness and the table's features that read each (``tables --json``).

        Returns:
            Table -> column -> ``{"type", "complete_from", "pending", "features"}``; a table
            of a source without declared columns maps to ``{}``.
        """
        from .features.definitions import columns_read

        repo = self.repo
        known = self.declared_columns()
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for name, table in repo.tables.items():
            declared = repo.declared_columns(table.source) \
                if repo.sources[table.source].kind == "weblog" else {}
            reads = columns_read(table, declared)
            out[name] = {c: {**known.get(c, {"type": t, "complete_from": None,
                                             "pending": False}), "features": reads[c]}
                         for c, t in declared.items()}
        return out

    def materialize(self, *, start: dt.date | None = None, end: dt.date | None = None,
                    force: bool = False) -> MaterializeReport:
        """Bring every table of the repository up to date (``force``: rebuild the range).

        Args:
            start: first as-of date to (re)write (default: the first event date).
            end: last as-of date to (re)write (default: the latest drop).
            force: rebuild every as-of date in the range (``featurestore backfill``).

        Returns:
            What was written.
        """
        from .materialization import materialize, materialize_locked

        if not self.online_url:
            with self.client() as client:
                return materialize(self.offline_store, client=client, repo=self.repo,
                                   start=start, end=end, force=force, settings=self.settings)
        with self.client() as client, self.offline_store.lock("materialize + online push"):
            report = materialize_locked(self.offline_store, client=client, repo=self.repo,
                                        start=start, end=end, force=force,
                                        settings=self.settings)
            _, error = self._push_locked(client)
        if error:
            raise _behind("materialization", error)
        return report

    def tables(self) -> list[TableInfo]:
        """Every feature table in the store with its key, as-of range and columns."""
        from .tables import list_tables

        return list_tables(self.offline_store)

    def catalogue(self, *, table: str | None = None, search: str | None = None,
                  model: str | None = None, version: str | None = None) -> dict[str, Any]:
        """The feature catalogue: every table and feature of the repository with its
        definition, description, owner, tags, numbers of the latest as-of, freshness and
        lineage (source -> table -> training sets and model versions); see
        :func:`featurestore.catalogue.catalogue`.

        Args:
            table: only this table's features.
            search: only features whose name, table, description, owner or tags hold every
                word.
            model: only the features this model used (``version``: that version's).
            version: a version of ``model``.

        Returns:
            ``{"tables", "features", "models", "filters", "total"}``.

        Raises:
            NotFoundError: an unknown table or model version.
        """
        from .catalogue import catalogue

        return catalogue(self.offline_store, self.repo, table=table, search=search,
                         model=model, version=version)

    def read_table(self, table: str, *, as_of: dt.date | None = None,
                   customer_id: str | None = None) -> Any:
        """One as-of partition of a table (the latest when ``as_of`` is None) as pandas,
        optionally only one customer's rows.

        Raises:
            NotFoundError: no such table or as-of date.
        """
        from .tables import read_table

        return read_table(self.offline_store, table, as_of=as_of, customer_id=customer_id)

    def read_dataset(self, table: str, *, start: dt.date | None = None,
                     end: dt.date | None = None, columns: list[str] | None = None
                     ) -> Any:
        """Every as-of partition of ``table`` (from ``start`` to ``end`` when given), with
        ``as_of`` as a ``datetime.date`` column and the store's dtypes; see
        :func:`featurestore.tables.read_dataset`."""
        from .tables import read_dataset

        key = "event_date" if table in ("events", "transactions") else "as_of"
        return read_dataset(self.offline_store, table, start=start, end=end, columns=columns,
                            key=key)

    def training_set(self, out: str, *, fmt: str = "csv", start: dt.date | None = None,
                     end: dt.date | None = None, gap_days: int | None = None,
                     sample_fraction: float = 1.0, seed: int = 0,
                     tables: list[str] | None = None,
                     storage_options: dict[str, Any] | None = None,
                     split_policy: str | None = None) -> dict[str, Any]:
        """Export a point-in-time training set of ``customer_features`` (plus ``tables``).

        Args:
            out: output folder (path or fsspec URL).
            fmt: ``csv`` (the XGBoost train/validation/test layout) or ``parquet``.
            start: first as-of date (default: the first feature partition).
            end: last as-of date (default: the latest with a complete label window).
            gap_days: as-of dates purged between the csv splits (default: the horizon).
            sample_fraction: keep this fraction of customers per as-of date (parquet).
            seed: the sampling seed.
            tables: more customer-keyed tables of the repository to join.
            storage_options: fsspec options for ``out``.
            split_policy: ``time``, ``grouped`` or ``auto`` (csv; default: the measured best,
                ``featurestore.training.split_policy.DEFAULT_SPLIT_POLICY``).

        Returns:
            The export's summary (``format`` plus the builder's report).
        """
        from .training import build_training_set, export_xgboost
        from .training.pointintime import HORIZON_DAYS

        joins = self.joinable_tables(tables) if tables else None
        with self.client() as client:
            if fmt == "csv":
                res = export_xgboost(self.offline_store, out, start=start, end=end,
                                     gap_days=HORIZON_DAYS if gap_days is None else gap_days,
                                     storage_options=storage_options, client=client,
                                     tables=joins, repo=self.repo,
                                     **({"split_policy": split_policy}
                                                      if split_policy else {}))
                return {"format": "csv", **res.to_dict()}
            ts = build_training_set(self.offline_store, start=start, end=end,
                                    sample="all" if sample_fraction >= 1 else "fraction",
                                    sample_fraction=sample_fraction, seed=seed, client=client,
                                    output=out, storage_options=storage_options, tables=joins,
                                    repo=self.repo)
            return {"format": "parquet", **ts.to_dict()}

    def export_training_set(self, *, out: str | None = None, fmt: str = "csv",
                            start: dt.date | None = None, end: dt.date | None = None,
                            gap_days: int | None = None, wait: bool = True,
                            split_policy: str | None = None) -> dict[str, Any]:
        """Export a training set as a job (``POST /training-sets``): checked, then written
        now or, with ``wait`` False, in a background thread whose outcome is recorded for
        :meth:`export_status`.

        Args:
            out: output folder below an export root (None: ``<store>/_exports/<id>``).
            fmt: ``csv`` (the SageMaker XGBoost layout) or ``parquet``.
            start: first as-of date.
            end: last as-of date.
            gap_days: as-of dates purged between the csv splits (default: the horizon).
            wait: write it before returning.
            split_policy: ``time``, ``grouped`` or ``auto`` (csv; default: the measured best,
                ``featurestore.training.split_policy.DEFAULT_SPLIT_POLICY``).

        Returns:
            The export's record (``id``, ``status`` completed or running, ``format``, ``out``,
            counts).

        Raises:
            ConfigError: ``out`` outside the export roots, ``start`` after ``end``, or an
                unknown split policy.
        """
        from .training.export_jobs import export_target, run_export, start_export
        from .training.pointintime import HORIZON_DAYS
        from .training.split_policy import DEFAULT_SPLIT_POLICY, resolve_policy

        policy = split_policy or DEFAULT_SPLIT_POLICY
        resolve_policy(policy, False)  # an unknown name fails here, not in a background thread
        store = self.offline_store
        export_id, target = export_target(store, self.settings, out, start, end)
        run = run_export if wait else start_export
        return run(store, export_id, target, fmt=fmt, start=start, end=end,
                   gap_days=HORIZON_DAYS if gap_days is None else gap_days,
                   split_policy=policy).to_dict()

    def export_status(self, export_id: str) -> dict[str, Any]:
        """The record of an export started with ``wait`` False.

        Raises:
            NotFoundError: no such export.
        """
        from .training.export_jobs import read_export

        return read_export(self.offline_store, export_id)

    def export_fm(self, out: str, *, test_fraction: float = 0.2, seed: int = 0,
                  storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Export the retail transactions as factorization-machines recordIO-protobuf.

        Returns:
            The export's summary.
        """
        from .training import export_fm

        return export_fm(self.offline_store, out, test_fraction=test_fraction, seed=seed,
                         storage_options=storage_options).to_dict()

    def retrain(self, model: str, *, backend: str = "local", tune: bool = False,
                as_of: str | None = None, export_url: str | None = None) -> dict[str, Any]:
        """Queue a retrain job and run it to the end in this process.

        Args:
            model: ``purchase-xgboost`` or ``retail-fm``.
            backend: a training backend name or dotted class path.
            tune: run a hyper-parameter search.
            as_of: last as-of date of the training set (default: the latest).
            export_url: train on this existing export instead of building one.

        Returns:
            The job's final record (``status`` completed or failed).
        """
        from .retrain import run_job

        record = self.new_job(model, backend=backend, tune=tune, as_of=as_of,
                              export_url=export_url)
        return run_job(self.offline_store, record["job_id"], self.settings)

    def new_job(self, model: str, *, backend: str = "local", tune: bool = False,
                as_of: str | None = None, export_url: str | None = None) -> dict[str, Any]:
        """Validate a retrain request and record it as ``queued`` (run it with
        :meth:`retrain` or a detached worker)."""
        from .retrain import new_job

        return new_job(self.offline_store, model, backend, tune=tune, as_of=as_of,
                       export_url=export_url)

    def joinable_tables(self, names: list[str]) -> list[str]:
        """Check that each named table is in the repository and keyed by ``customer_id``
        alone, so it can be joined into a customer training set.

        Args:
            names: table names (blank entries are ignored).

        Returns:
            The names, stripped.

        Raises:
            NotFoundError: a name is not a table of the repository, or is not customer-keyed.
        """
        from ._exceptions import NotFoundError

        repo = self.repo
        out = [n.strip() for n in names if n.strip()]
        for name in out:
            if name not in repo.tables:
                raise NotFoundError(f"no table {name!r} in the feature repository; tables: "
                                    f"{', '.join(sorted(repo.tables))}")
            if repo.keys(name) != ["customer_id"]:
                raise NotFoundError(f"table {name!r} is keyed by {repo.keys(name)}: only tables "
                                    "keyed by customer_id join into a customer training set")
        return out

    def run_daily(self, raw_root: str, *, force_retrain: bool = False,
                  today: dt.date | None = None,
                  export_urls: dict[str, str] | None = None) -> dict[str, Any]:
        """What cron runs once a day: ingest, materialize, retrain when due, notify.

        Args:
            raw_root: the drops folder.
            force_retrain: retrain whatever the weekday.
            today: the day to act as (default: today, UTC).
            export_urls: model -> existing export, to skip building training sets.

        Returns:
            The JSON-able daily report, with ``ok``.
        """
        from .retrain.daily import run_daily

        with self.client() as client:
            report = run_daily(self.offline_store, raw_root, settings=self.settings,
                               force_retrain=force_retrain, today=today, client=client,
                               export_urls=export_urls, repo=self.repo)
            if self.online_url:
                with self.offline_store.lock("run-daily: online push"):
                    pushed, error = self._push_locked(client)
                report["online"] = ({"status": "pushed", **pushed.to_dict()} if error is None
                                    else {"status": "behind", "error": error,
                                          "hint": "run featurestore online push"})
                report["ok"] = bool(report.get("ok", True)) and error is None
            return report

    # -- jobs ------------------------------------------------------------------------------
    def jobs(self) -> list[JobView]:
        """Every retrain and training-set export job the store records, oldest first."""
        from .job_records import list_all_jobs

        return list_all_jobs(self.offline_store)

    def job(self, job_id: str) -> JobView:
        """One recorded job.

        Raises:
            NotFoundError: no job has this id.
        """
        from .job_records import get_any_job

        return get_any_job(self.offline_store, job_id)

    def follow_job(self, job_id: str, on_change: Callable[[JobView], None], *,
                   poll: float = 1.0, timeout: float | None = None) -> JobView:
        """Wait for a job to end, calling ``on_change`` on each status change.

        Args:
            job_id: the job.
            on_change: called with the job's view at first and on every status change.
            poll: seconds between reads.
            timeout: give up after this long (None: no limit).

        Returns:
            The final view (or the last one after ``timeout``).
        """
        from .job_records import follow_job

        return follow_job(self.offline_store, job_id, on_change, poll=poll, timeout=timeout)

    # -- models ----------------------------------------------------------------------------
    def predict(self, *, model: str = "purchase-xgboost", as_of: dt.date | str | None = None
                ) -> PredictReport:
        """Score every customer of an as-of snapshot with ``model``'s production version,
        exactly once per (version, as-of), on the Dask cluster (:mod:`featurestore.predict`).

        Args:
            model: the classifier to score with.
            as_of: the snapshot date (default: the latest).

        Returns:
            The report (``status`` ``written`` or ``skipped``).
        """
        from .predict import predict

        with self.client() as client:
            return predict(self.offline_store, model=model, as_of=as_of, client=client,
                           settings=self.settings)

    def recommend(self, customer_id: str, *, k: int = 10, exclude_purchased: bool = True
                  ) -> dict[str, Any]:
        """The top ``k`` products for a customer from the production version of the
        recommender the setting ``recommendation_model`` names (:mod:`featurestore.recommend`).

        Args:
            customer_id: a customer the model knows.
            k: how many products at most.
            exclude_purchased: leave out the products the customer already bought.

        Returns:
            ``{"customer_id", "model", "version", "items": [{"product_id", "score",
            "description"}]}``, best first.

        Raises:
            ModelUnavailableError: no production version of that recommender.
            NotFoundError: the model does not know the customer.
        """
        from .recommend import Recommendations

        return Recommendations(self.offline_store, model=self.settings.recommendation_model
                               ).recommend(customer_id, k, exclude_purchased)


def _behind(what: str, error: str) -> Exception:
    from ._exceptions import OnlineStoreBehindError

    return OnlineStoreBehindError(
        f"{what} committed to the offline store, but the online store is behind ({error}); "
        "run featurestore online push once Redis answers (the next run also catches up)")


def _check_raw(raw_root: str, options: dict[str, Any] | None, weblog: bool = False) -> None:
    """One clear error for a raw path that cannot be what the source reads, before a cluster
    starts: a path that does not exist; for web logs, a CSV file (the retail source's input) or
    one drop folder instead of the folder holding them (which would ingest nothing, silently).

    Args:
        raw_root: the raw folder, file or URL.
        options: its fsspec options, resolved by :func:`~featurestore.storage.options_for`.
        weblog: the source reads web-log drops (the CSV and drop-folder checks apply).
    """
    import re

    import fsspec

    from ._exceptions import ConfigError, NotFoundError

    fs, path = fsspec.core.url_to_fs(raw_root, **(options or {}))
    if not fs.exists(path):
        raise NotFoundError(f"raw path {raw_root} does not exist: pass the folder holding the "
                            "YYYY-MM-DD drop folders (weblog) or the CSV file (retail)")
    if not weblog:
        return
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if re.search(r"\.csv(\.gz)?$", name) and fs.isfile(path):
        raise ConfigError(f"{raw_root} is a CSV file, not web-log drops: for the Online Retail "
                          "data add --source retail")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", name):
        raise ConfigError(f"{raw_root} is one drop folder: pass the folder that holds the "
                          f"YYYY-MM-DD drop folders (its parent, "
                          f"{raw_root.rstrip('/').rsplit('/', 1)[0] or '.'})")
    if not fs.isdir(path):
        return
    from . import layout
    from .sources.weblog.drops import _DATE_LIKE, DROP_DIR

    names = {p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)}
    # ``ingest STORE --store RAW``: the arguments swapped would ingest nothing, silently
    if names & {layout.LEDGER_ROOT, layout.STATE_ROOT, layout.META_ROOT}:
        raise ConfigError(f"{raw_root} is a feature store, not web-log drops: are the "
                          "arguments swapped? featurestore ingest RAW_ROOT --store STORE")
    if not any(_DATE_LIKE.match(n) or DROP_DIR.match(n) for n in names):
        raise ConfigError(f"{raw_root} holds no YYYY-MM-DD drop folders: pass the folder that "
                          "holds them (featurestore ingest RAW_ROOT --store STORE)")
