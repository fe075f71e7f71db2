"""Settings shared by the CLI, the library and the API: flags > environment > config file.

Environment variables are ``FEATURESTORE_<NAME>``; a YAML config file is named by
``FEATURESTORE_CONFIG`` (or ``--config``). AWS endpoint, region and credentials come from the
standard ``AWS_*`` variables so the same code runs against AWS, MinIO or moto.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ._exceptions import ConfigError

__all__ = ["Settings", "load_settings"]


class Settings(BaseSettings):
    """Every knob of the feature store, in one place."""

    model_config = SettingsConfigDict(env_prefix="FEATURESTORE_", extra="forbid")

    store: str = Field("./featurestore-data/store", description="Offline store URL (path or s3://)")
    storage_options: dict[str, Any] = Field(default_factory=dict,
                                            description="fsspec options for the store")
    scheduler: str | None = Field(None, description="tcp://host:port of a Dask scheduler")
    workers: int | None = Field(None, ge=1, description="LocalCluster worker processes")
    feature_repo: str | None = Field(None,
                                     description="Feature repository YAML (default: built-in)")
    max_late_days: int = Field(30, ge=0, description="ingest quarantines hits dated more than "
                               "this many days before their drop's date (reason too_old)")
    events_compaction: bool = Field(True, description="ingest merges each event date's parts "
                                    "of a run into one events file (docs/choices.md, #14)")
    events_target_mb: float = Field(128.0, gt=0, description="largest merged events file, in "
                                    "MB of parquet; a date's parts above it make several")
    events_copy_min_mb: float = Field(1.0, ge=0, description="a date's parts averaging at "
                                      "least this many MB are merged without decoding (row "
                                      "groups copied); smaller ones are rewritten as one")
    lease_seconds: float = Field(60.0, ge=1, description="Expiry of the store's writer lease; "
                                 "its heartbeat renews it every third of that")

    api_token: SecretStr | None = Field(None, description="Bearer token for write endpoints")
    api_require_token_for_reads: bool = False
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535, description="API port")
    snapshot_poll_seconds: float = 30.0
    online_store: str = Field("memory", description="online store: memory, or the dotted class "
                              "path of an OnlineStore implementation")
    api_max_body_bytes: int = Field(1024 * 1024, ge=1024,
                                    description="largest request body the API reads (413 beyond)")
    retrain_queue_limit: int = Field(4, ge=1, description="retrain jobs queued or running in "
                                     "the API process at once (429 beyond)")
    export_roots: list[str] = Field(default_factory=list,
                                    description="folders POST /training-sets may write under "
                                    "(default: <store>/_exports)")
    export_input_prefixes: list[str] = Field(default_factory=list,
                                             description="folders POST /retrain export_url may "
                                             "read from, besides the export roots")

    sagemaker_role_arn: str | None = None
    sagemaker_s3_prefix: str | None = None
    sagemaker_instance_type: str = "ml.m5.xlarge"
    sagemaker_region: str | None = None
    sagemaker_poll_seconds: float = Field(30.0, gt=0, description="SageMaker status poll period")
    sagemaker_timeout_seconds: float = Field(6 * 3600, gt=0,
                                             description="give up polling a SageMaker job after")
    sagemaker_max_runtime_seconds: int = Field(3600, ge=60,
                                               description="StoppingCondition of training jobs")

    alert_webhook_url: str | None = None
    alert_sns_topic_arn: str | None = None
    alert_threshold: float = Field(0.05, ge=0, description="Relative metric change that alerts "
                                   "when a version has no bootstrap intervals")
    alert_confidence_level: float = Field(
        0.95, gt=0, lt=1, description="a change is significant (alerts) when production's "
        "value is outside the new version's bootstrap interval at this level")
    auto_promote: bool = True
    retrain_weekday: int = Field(0, ge=0, le=6, description="0 = Monday, for run-daily")
    retrain_models: list[str] = Field(default_factory=lambda: ["purchase-xgboost"],
                                      description="models run-daily retrains")
    retrain_backend: str = Field("local", description="backend run-daily uses: local|sagemaker")
    retrain_tune: bool = Field(False, description="run-daily retrains with tuning")
    predict_schedule: Literal["daily", "weekly", "monthly", "never"] = Field(
        "daily", description="run-daily scores every customer after ingest: daily, weekly (on "
        "retrain_weekday), monthly (on the 1st) or never")
    predict_models: list[str] = Field(default_factory=lambda: ["purchase-xgboost"],
                                      description="models run-daily scores with")
    recommendation_model: str = Field(
        "retail-als", description="the recommender whose production version the "
        "recommendation routes and `featurestore recommend` serve (SPEC §7)")
    recommendation_holdout_days: int = Field(
        30, ge=1, description="a recommender version is judged on the last this many days of "
        "its data (the test window), trained on what comes before")
    recommendation_validation_days: int = Field(
        30, ge=1, description="days before the test window on which a recommender's "
        "hyperparameters and repeat-purchase weight are chosen")


def load_settings(config_file: str | None = None, **overrides: Any) -> Settings:
    """Build settings from a YAML file (lowest), the environment, then explicit overrides.

    ``None`` overrides are ignored so unset CLI flags do not mask the environment.
    """
    path = config_file or os.environ.get("FEATURESTORE_CONFIG")
    file_values: dict[str, Any] = {}
    if path:
        try:
            file_values = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        if not isinstance(file_values, dict):
            raise ConfigError(f"config file {path} must hold a mapping of setting: value")
    try:
        env_values = Settings().model_dump(exclude_unset=True)  # only what the environment set
        merged = {**file_values, **env_values,
                  **{k: v for k, v in overrides.items() if v is not None}}
        return Settings.model_validate(merged) if merged else Settings()
    except ValidationError as exc:  # a bad FEATURESTORE_* variable too: one line, no traceback
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None


#: Where locations may point: local paths and S3 (never http(s), ftp...: the server must not
#: fetch or write an arbitrary URL it is handed).
_LOCATION_PROTOCOLS = ("file", "s3", "s3a")


def resolve_location(url: str) -> str:
    """A location normalized for prefix checks: an absolute real path, or ``s3://bucket/key``.

    Args:
        url: a local path (relative to the working directory), ``file://`` or ``s3://`` URL.

    Returns:
        The location without ``..``, symlinks (local) or a trailing slash.

    Raises:
        ConfigError: for another protocol, a NUL byte, or ``.``/``..``/empty parts in an S3 key.
    """
    import fsspec  # noqa: PLC0415 - settings stays importable without the storage stack

    url = str(url)
    if "\x00" in url:
        raise ConfigError("a location may not contain a NUL byte")
    protocol = fsspec.utils.get_protocol(url)
    if protocol not in _LOCATION_PROTOCOLS:
        raise ConfigError(f"{protocol}:// locations are not accepted; use a local path or s3://")
    if protocol == "file":
        return os.path.realpath(os.path.expanduser(url.removeprefix("file://")))
    rest = url.split("://", 1)[1].rstrip("/")
    if any(part in ("", ".", "..") for part in rest.split("/")):
        raise ConfigError(f"{url!r} has an empty, '.' or '..' part; give a plain s3://bucket/key")
    return f"s3://{rest}"


def is_under(url: str, root: str) -> bool:
    """Whether ``url`` lies strictly below ``root`` once both are resolved.

    Args:
        url: the location asked for.
        root: an allowed folder.

    Returns:
        True when ``url`` is inside ``root`` (the root itself does not count).
    """
    target, base = resolve_location(url), resolve_location(root)
    return target.startswith(base.rstrip("/") + "/")


def export_roots(settings: Settings, store_url: str) -> list[str]:
    """Folders the API may write training-set exports under.

    Args:
        settings: ``export_roots`` (default ``<store>/_exports``) and ``sagemaker_s3_prefix``.
        store_url: the store's URL.

    Returns:
        The allowed output roots.
    """
    roots = list(settings.export_roots) or [f"{store_url.rstrip('/')}/_exports"]
    if settings.sagemaker_s3_prefix:  # SPEC: exports for SageMaker go under this prefix
        roots.append(settings.sagemaker_s3_prefix)
    return roots
