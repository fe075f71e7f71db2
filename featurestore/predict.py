"""Batch predictions: score every customer of an as-of snapshot with the production model.

``predict(store, model="purchase-xgboost", as_of=D)`` (``featurestore predict``):

1. plan: the production version (the registry's ``production.json``), the as-of date (default:
   the latest ``customer_features`` partition) and its part files; when the commit record says
   this (version, as-of) is scored already, nothing is written (exactly once);
2. execute: one Dask task per feature part file loads the model (from bytes checked against
   the registry's sha256) and scores its rows; the driver ranks all scores (1 = most likely;
   ties by customer id, so the file is a pure function of model and snapshot). A version
   trained by the SageMaker backend keeps its model in the job's artifact, so it is scored
   there instead: the Dask tasks write each part file as Batch Transform input CSV and one
   SageMaker Batch Transform job scores them (:mod:`.retrain.sagemaker_transform`); its
   ``customer_id,score`` output is checked against the input before anything is written;
3. commit: ``predictions/model=<name>/as_of=D/part-0.parquet`` (``customer_id``, ``score``,
   ``rank``, ``model_version``) is published in one atomic write, then the partition's
   generation (:mod:`.generations`, table ``predictions/model=<name>``), then the commit record
   ``_state/predictions/<name>.json`` last. A crash before the record only makes the re-run
   write the same bytes again.

Features are converted exactly as the training export wrote them (float64, null = NaN, booleans
as 0/1), so a score equals the model's own ``predict`` on the same row.

:class:`LatestPredictions` serves the latest committed scores: it re-reads the small commit
record at most every ``poll_seconds``, loads a new partition off to the side and swaps one
reference, like the online feature snapshots.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import numpy as np

from . import layout
from ._exceptions import (ConfigError, ModelUnavailableError, NotFoundError, StoreError,
                          TrainingError, clip)
from .generations import commit_generations, read_generations
from .retrain import registry
from .retrain.models import model_spec
from .schema import conform
from .settings import Settings
from .storage import Store

__all__ = ["PredictReport", "predict", "score_rows", "LatestPredictions", "PredictionsSnapshot",
           "SwappedReference", "production_or_raise", "FEATURES_TABLE"]

FEATURES_TABLE = "customer_features"
PART = "part-0.parquet"

T = TypeVar("T")


@dataclasses.dataclass
class PredictReport:
    """What one ``predict`` did: ``status`` is ``written`` or ``skipped`` (already scored)."""

    model: str
    model_version: str
    as_of: str
    status: str
    rows: int
    path: str
    generation: int
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def production_or_raise(store: Store, model: str) -> str:
    """The production version of ``model``.

    Raises:
        ModelUnavailableError: nothing promoted yet, or the production record is damaged.
    """
    version, damaged = registry.production_state(store, model)
    if version is None:
        why = f" ({damaged})" if damaged else ""
        raise ModelUnavailableError(
            f"model {model!r} has no production version{why}: train one with `featurestore "
            f"retrain --model {model}` or promote one with `featurestore models {model} "
            "--promote VERSION`")
    return version


def _record(store: Store, model: str) -> dict[str, Any]:
    try:
        record = store.read_json(layout.predictions_record(model))
    except FileNotFoundError:
        return {"model": model, "runs": {}}
    except ValueError:
        raise StoreError(f"{store.uri(layout.predictions_record(model))} is not valid JSON; "
                         f"delete it and re-run featurestore predict --model {model}") from None
    if not isinstance(record, dict) or not isinstance(record.get("runs"), dict):
        raise StoreError(f"{store.uri(layout.predictions_record(model))} is not a predictions "
                         f"record; delete it and re-run featurestore predict --model {model}")
    return record


def _feature_files(store: Store, as_of: str) -> list[str]:
    return [store.path(FEATURES_TABLE, f"as_of={as_of}", f)
            for f in store.listdir(FEATURES_TABLE, f"as_of={as_of}") if layout.is_published(f)]


def _booster(model_bytes: bytes) -> tuple[Any, tuple[int, int]]:
    """The XGBoost booster and the iteration range its registration was measured with."""
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(model_bytes))
    best = booster.attr("best_iteration")
    return booster, (0, int(best) + 1) if best is not None else (0, 0)


def _feature_matrix(features: list[str], table: Any) -> np.ndarray:
    """The model's features as float64 with NaN for null: what the export's CSV (empty field =
    missing) reads back as; booleans become 0/1."""
    import pyarrow as pa

    missing = [f for f in features if f not in table.column_names]
    if missing:
        raise ConfigError(f"the model was trained on features the {FEATURES_TABLE} snapshot "
                          f"lacks: {', '.join(missing)}; retrain it on this repository's "
                          "features")
    if not features:
        return np.empty((table.num_rows, 0))
    return np.column_stack([table[f].cast(pa.float64()).to_numpy(zero_copy_only=False)
                            for f in features])


def score_rows(model_bytes: bytes, features: list[str], table: Any) -> np.ndarray:
    """Score the rows of an Arrow table with an XGBoost model, as the training export saw them.

    Args:
        model_bytes: the registered XGBoost JSON model.
        features: the model's feature names, in model order.
        table: a ``pyarrow.Table`` holding (at least) those columns.

    Returns:
        One float64 score per row.

    Raises:
        ConfigError: a feature of the model is not a column of the table.
    """
    import xgboost as xgb

    x = _feature_matrix(features, table)
    booster, iterations = _booster(model_bytes)
    matrix = xgb.DMatrix(x, missing=np.nan, feature_names=features or None)
    return booster.predict(matrix, iteration_range=iterations).astype(np.float64)


def _score_file(store: Store, path: str, features: list[str], model_bytes: bytes
                ) -> tuple[np.ndarray, np.ndarray]:
    """One Dask task: (customer ids, scores) of one feature part file."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, filesystem=store.fs, columns=["customer_id", *features])
    ids = table["customer_id"].cast("string").to_numpy(zero_copy_only=False).astype(object)
    return ids, score_rows(model_bytes, features, table)


def predict(store: Store, *, model: str = "purchase-xgboost", as_of: dt.date | str | None = None,
            client: Any = None, settings: Settings | None = None) -> PredictReport:
    """Score every customer of the ``as_of`` snapshot with ``model``'s production version.

    Args:
        store: the offline store.
        model: a registered classifier (``purchase-xgboost``).
        as_of: the snapshot date (default: the latest ``customer_features`` partition).
        client: a Dask client to score on (None: dask's threads in this process).
        settings: the SageMaker settings, used when the production version was trained by
            the SageMaker backend (scored by a Batch Transform job; default: from the
            environment).

    Returns:
        The report; ``status="skipped"`` when this version already scored this as-of.

    Raises:
        ModelUnavailableError: no production version.
        NotFoundError: no such snapshot, or the version keeps no model file in the store.
        ConfigError: the model is not a classifier, or needs features the snapshot lacks.
        TrainingError: the SageMaker Batch Transform job failed or its output is incomplete.
    """
    import pyarrow as pa

    start = time.monotonic()
    if model_spec(model).kind != "xgboost":
        raise ConfigError(f"model {model!r} is not a classifier: recommend with it "
                          "(`featurestore recommend`)")
    dates = store.partitions(FEATURES_TABLE, "as_of")
    if as_of is None:
        if not dates:
            raise NotFoundError(f"no {FEATURES_TABLE} snapshot in {store.url}: ingest first")
        as_of = dates[-1]
    as_of = str(as_of)[:10]
    try:
        dt.date.fromisoformat(as_of)
    except ValueError:
        raise ConfigError(f"as-of {clip(as_of)} is not a date like 2026-03-05") from None
    if as_of not in dates:
        raise NotFoundError(f"no {FEATURES_TABLE} snapshot as_of={as_of} in {store.url}; "
                            f"latest is {dates[-1] if dates else 'none'}")
    folder = (layout.predictions(model), f"as_of={as_of}")
    with store.lock(f"predict {model} as_of={as_of}"):
        version = production_or_raise(store, model)
        record = _record(store, model)
        done = record["runs"].get(as_of)
        if done and done.get("model_version") == version and store.exists(*folder, PART):
            return PredictReport(model, version, as_of, "skipped", int(done["rows"]),
                                 store.uri(*folder, PART), int(done.get("generation", 0)),
                                 round(time.monotonic() - start, 3))
        record_v = registry.get_version(store, model, version)
        features = record_v["features"]
        files = _feature_files(store, as_of)
        scored_by: dict[str, Any] = {"scored_by": "local"}
        if not record_v.get("model_file") and record_v.get("backend") == "sagemaker":
            # the model lives in the SageMaker artifact: score it there (Batch Transform)
            parts, scored_by = _transform_parts(store, files, model, version, as_of, record_v,
                                                settings, client)
        else:
            model_bytes = registry.load_model_bytes(store, model, version)
            parts = _score_parts(store, files, features, model_bytes, client)
        ids = np.concatenate([p[0] for p in parts]) if parts else np.array([], object)
        scores = np.concatenate([p[1] for p in parts]) if parts else np.array([], np.float64)
        order = np.lexsort((ids.astype(str), -scores))  # best first; ties by customer id
        rank = np.empty(len(ids), np.int64)
        rank[order] = np.arange(1, len(ids) + 1)
        table = pa.table({"customer_id": pa.array(ids[order], pa.string()),
                          "score": pa.array(scores[order], pa.float64()),
                          "rank": pa.array(rank[order], pa.int64()),
                          "model_version": pa.array([version] * len(ids), pa.string())})
        store.write_arrow(conform(table), *folder, PART)  # the store's column types
        for name in store.listdir(*folder):  # parts of an older layout: after the publish
            if name != PART and layout.is_published(name):
                store.remove(*folder, name)
        generation = commit_generations(store, {layout.predictions(model): [as_of]})
        record["runs"][as_of] = {"model_version": version, "rows": len(ids),
                                 "generation": generation, **scored_by,
                                 "written_at": dt.datetime.now(dt.UTC).isoformat()}
        store.write_json(record, layout.predictions_record(model))  # the commit: last
    return PredictReport(model, version, as_of, "written", len(ids), store.uri(*folder, PART),
                         generation, round(time.monotonic() - start, 3))


def _score_parts(store: Store, files: list[str], features: list[str], model_bytes: bytes,
                 client: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    if not files:
        return []
    if client is None:
        return [_score_file(store, f, features, model_bytes) for f in files]
    model_future = client.scatter(model_bytes, broadcast=True)  # shipped once per worker
    futures = [client.submit(_score_file, store, f, features, model_future, pure=False)
               for f in files]
    return client.gather(futures)


def _transform_input(store: Store, path: str, features: list[str]) -> tuple[np.ndarray, bytes]:
    """One Dask task: (customer ids, Batch Transform input CSV) of one feature part file.

    The CSV is ``customer_id`` then the features as the training export wrote them (float
    repr, empty field = missing), no header; the job's InputFilter drops the id."""
    import pandas as pd
    import pyarrow.parquet as pq

    table = pq.read_table(path, filesystem=store.fs, columns=["customer_id", *features])
    ids = table["customer_id"].cast("string").to_numpy(zero_copy_only=False).astype(object)
    frame = pd.DataFrame(_feature_matrix(features, table), columns=features)
    frame.insert(0, "customer_id", ids)
    return ids, frame.to_csv(header=False, index=False, na_rep="",
                             lineterminator="\n").encode()


def _parse_transform_output(data: bytes, ids: np.ndarray, where: str
                            ) -> tuple[np.ndarray, np.ndarray]:
    """(customer ids, scores) of one ``customer_id,score`` output, checked against its input.

    Raises:
        TrainingError: the output does not hold exactly one score per input customer.
    """
    import io

    import pandas as pd

    if len(ids) == 0 and not data.strip():  # an empty part file: nothing sent, nothing back
        return np.array([], object), np.array([], np.float64)
    try:
        out = pd.read_csv(io.BytesIO(data), header=None, names=["customer_id", "score"],
                          dtype={"customer_id": str, "score": np.float64})
    except (ValueError, pd.errors.ParserError) as exc:
        raise TrainingError(f"{where} is not customer_id,score CSV ({exc}); check the "
                            "transform job's DataProcessing and run featurestore predict "
                            "again") from None
    got = out["customer_id"].to_numpy(object)
    if len(got) != len(ids) or set(got) != set(ids) or out["score"].isna().any():
        raise TrainingError(f"{where} holds {len(got)} scores for {len(ids)} input customers "
                            "(or a customer without a score); nothing was written: run "
                            "featurestore predict again")
    return got, out["score"].to_numpy(np.float64)


def _transform_parts(store: Store, files: list[str], model: str, version: str, as_of: str,
                     record: dict[str, Any], settings: Settings | None, client: Any
                     ) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """Score a SageMaker-trained version through one Batch Transform job.

    Returns:
        (customer ids, scores) per part file, and what to record about the job.
    """
    from .retrain.sagemaker_transform import batch_transform

    if not files:
        return [], {"scored_by": "sagemaker-batch-transform"}
    features = record["features"]
    if client is None:
        inputs = [_transform_input(store, f, features) for f in files]
    else:  # the conversion runs on the cluster; the driver uploads (it holds the AWS config)
        inputs = client.gather([client.submit(_transform_input, store, f, features, pure=False)
                                for f in files])
    result = batch_transform(model_spec(model), record.get("artifact"),
                             [body for _, body in inputs],
                             settings=settings or Settings(store=store.url),
                             label=f"{model}-{version}-{as_of}")
    parts = [_parse_transform_output(out, ids, f"{result.details['output']}part-{i:05d}.csv.out")
             for i, ((ids, _), out) in enumerate(zip(inputs, result.outputs))]
    return parts, {"scored_by": "sagemaker-batch-transform",
                   "transform_job_name": result.details["transform_job_name"],
                   "transform_output": result.details["output"]}


# -- serving ----------------------------------------------------------------------------------
class SwappedReference(Generic[T]):
    """A value rebuilt off to the side when its source changes, then swapped in one assignment.

    ``key()`` is a cheap read naming the current source (a commit record's entry, a production
    pointer); it runs at most every ``poll_seconds``, and ``load(key)`` only when it changed.
    Readers take :meth:`get`'s result once per request, so each sees one version.
    """

    def __init__(self, key: Callable[[], Any], load: Callable[[Any], T],
                 poll_seconds: float = 30.0) -> None:
        self._key, self._load, self.poll_seconds = key, load, poll_seconds
        self._value: tuple[Any, T] | None = None
        self._checked = -float("inf")
        self._lock = threading.Lock()

    def get(self, recheck: bool = False) -> T | None:
        """The current value (None while its source does not exist).

        Args:
            recheck: read the key now, not only after ``poll_seconds`` (a reader that found
                nothing: a commit since the last poll answers instead of a 404). The key is
                a small record read, under the lock: misses queue, one read at a time.
        """
        every = 0.0 if recheck else self.poll_seconds
        if time.monotonic() - self._checked >= every:
            with self._lock:  # one reload at a time; the others keep serving the old value
                if time.monotonic() - self._checked >= every:
                    key = self._key()
                    if key is None:
                        self._value = None
                    elif self._value is None or self._value[0] != key:
                        self._value = (key, self._load(key))
                    self._checked = time.monotonic()
        current = self._value
        return current[1] if current else None


@dataclasses.dataclass
class PredictionsSnapshot:
    """One committed predictions partition, indexed by customer id."""

    model: str
    model_version: str
    as_of: str
    generation: int
    index: dict[str, int]
    score: np.ndarray
    rank: np.ndarray

    def get(self, customer_id: str) -> dict[str, Any] | None:
        """SPEC §7's answer for one customer, or None when not scored."""
        i = self.index.get(customer_id)
        if i is None:
            return None
        return {"customer_id": customer_id, "model": self.model,
                "model_version": self.model_version, "as_of": self.as_of,
                "score": float(self.score[i]), "rank": int(self.rank[i])}


class LatestPredictions:
    """The latest committed scores of one model, reloaded when a newer as-of or a rewrite
    (another generation) is committed."""

    def __init__(self, store: Store, model: str = "purchase-xgboost",
                 poll_seconds: float = 30.0) -> None:
        self.store, self.model = store, model
        self._ref: SwappedReference[PredictionsSnapshot] = SwappedReference(
            self._latest, self._load, poll_seconds)

    def _latest(self) -> tuple[str, str, int] | None:
        runs = _record(self.store, self.model)["runs"]
        if not runs:
            return None
        as_of = max(runs)
        # the generations record too: a rewrite bumps it even if the record were stale
        gen = read_generations(self.store).get(layout.predictions(self.model), {}).get(as_of, 0)
        return as_of, runs[as_of]["model_version"], gen

    def _load(self, key: tuple[str, str, int]) -> PredictionsSnapshot:
        as_of, version, generation = key
        frame = self.store.read_parquet(layout.predictions(self.model), f"as_of={as_of}", PART)
        ids = frame["customer_id"].astype(str).tolist()
        return PredictionsSnapshot(self.model, version, as_of, generation,
                                   {c: i for i, c in enumerate(ids)},
                                   frame["score"].to_numpy(np.float64),
                                   frame["rank"].to_numpy(np.int64))

    def get(self, customer_id: str) -> dict[str, Any]:
        """The latest score of one customer.

        Raises:
            NotFoundError: no predictions yet, or the customer was not scored.
        """
        snapshot = self._ref.get()
        if snapshot is None or snapshot.get(customer_id) is None:
            # found nothing: check the committed generation before answering 404 (a predict
            # run that finished since the last poll is served now, not a poll interval later)
            snapshot = self._ref.get(recheck=True)
        if snapshot is None:
            raise NotFoundError(f"no predictions of {self.model} yet: run `featurestore "
                                f"predict --model {self.model}`")
        found = snapshot.get(customer_id)
        if found is None:
            raise NotFoundError(f"customer {clip(customer_id)} has no {self.model} score as of "
                                f"{snapshot.as_of}")
        return found
