"""SageMaker backend: upload the export to S3, run a built-in-algorithm training (or tuning) job.

Calls go through boto3's ``sagemaker`` client (``create_training_job``,
``create_hyper_parameter_tuning_job``, ``describe_*``); the image URIs come from the v3 SDK's
``sagemaker.core.image_uris``. Why not ``sagemaker.train.ModelTrainer``: v3 has no
FactorizationMachines estimator and ModelTrainer is built around user training scripts
(source upload, a default-bucket session, log streaming); for two built-in images a direct
``CreateTrainingJob`` request is smaller, shows exactly what is sent, and runs the same against
AWS and an S3/SageMaker-compatible endpoint (``AWS_ENDPOINT_URL``, e.g. moto).

Metrics: SageMaker reports the built-in algorithms' metrics in ``FinalMetricDataList``
(``validation:aucpr`` for XGBoost, ``test:rmse`` for FM); they are recorded as returned and
mapped to ``pr_auc`` / ``rmse`` for the registry's comparison. Note the XGBoost figure is on the
validation channel. moto completes jobs at once and returns no algorithm metrics and no model
file: the record then holds only what the API returned.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

import fsspec

from .._exceptions import ConfigError, TrainingError
from ..settings import Settings
from .local import TrainResult, read_export_metadata
from .models import ModelSpec

__all__ = ["train", "hyperparameters", "upload_export", "image_uri"]

XGBOOST_VERSION = "1.7-1"
TERMINAL = ("Completed", "Failed", "Stopped")
METRIC_MAP = {"validation:aucpr": "pr_auc", "validation:auc": "roc_auc", "test:rmse": "rmse"}


def _region(settings: Settings) -> str:
    import boto3

    region = settings.sagemaker_region or boto3.session.Session().region_name
    if not region:
        raise ConfigError("no AWS region: set FEATURESTORE_SAGEMAKER_REGION or AWS_DEFAULT_REGION")
    return region


def _split_s3(url: str) -> tuple[str, str]:
    m = re.fullmatch(r"s3://([^/]+)/?(.*)", url or "")
    if not m:
        raise ConfigError(f"FEATURESTORE_SAGEMAKER_S3_PREFIX must look like s3://bucket/prefix, "
                          f"got {url!r}")
    return m.group(1), m.group(2).strip("/")


def image_uri(spec: ModelSpec, region: str) -> str:
    try:
        from sagemaker.core import image_uris
    except ImportError:
        raise ConfigError("the sagemaker backend needs the SageMaker SDK, an extra: "
                          "pip install 'featurestore[sagemaker]'") from None

    if spec.kind == "xgboost":
        return image_uris.retrieve("xgboost", region=region, version=XGBOOST_VERSION)
    return image_uris.retrieve("factorization-machines", region=region)


def hyperparameters(spec: ModelSpec, meta: dict[str, Any]) -> dict[str, str]:
    """Static hyperparameters (strings, as the API wants them)."""
    if spec.kind == "xgboost":
        return {"objective": "binary:logistic", "eval_metric": "aucpr",
                "scale_pos_weight": f"{float(meta.get('scale_pos_weight') or 1.0):.6g}",
                "num_round": "400", "early_stopping_rounds": "30", "max_depth": "5",
                "eta": "0.1"}
    if not meta.get("feature_dim"):
        raise TrainingError("the FM export's metadata.json has no feature_dim")
    # As the SageMaker factorization-machines reference notebook; a classifier export (#29:
    # bought pairs against sampled negatives) trains predictor_type=binary_classifier.
    predictor = ("binary_classifier" if meta.get("predictor_type") == "binary_classifier"
                 else "regressor")
    return {"feature_dim": str(int(meta["feature_dim"])), "predictor_type": predictor,
            "num_factors": "64", "mini_batch_size": "1000", "epochs": "20"}


def _channels(spec: ModelSpec, bucket: str, input_prefix: str) -> list[dict[str, Any]]:
    if spec.kind == "xgboost":
        names, content = ("train", "validation"), "text/csv"
    else:
        names, content = ("train", "test"), "application/x-recordio-protobuf"
    return [{"ChannelName": n, "ContentType": content,
             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                             "S3Uri": f"s3://{bucket}/{input_prefix}/{n}/",
                                             "S3DataDistributionType": "FullyReplicated"}}}
            for n in names]


def upload_export(export_url: str, bucket: str, prefix: str,
                  storage_options: dict[str, Any] | None = None) -> list[str]:
    """Copy every file of the export under ``s3://bucket/prefix/`` (keys keep the layout)."""
    import boto3

    fs, root = fsspec.core.url_to_fs(export_url.rstrip("/"), **(storage_options or {}))
    s3 = boto3.client("s3")
    keys = []
    for path in sorted(fs.find(root)):
        rel = path[len(root.rstrip("/")) + 1:]
        if any(part.startswith((".", "_")) for part in rel.split("/")):
            continue
        key = f"{prefix}/{rel}"
        with fs.open(path, "rb") as f:
            s3.upload_fileobj(f, bucket, key)
        keys.append(key)
    if not keys:
        raise TrainingError(f"export {export_url} is empty; nothing to upload")
    return keys


def _tuning_config(spec: ModelSpec, classifier: bool = False) -> dict[str, Any]:
    if spec.kind == "xgboost":
        objective = {"Type": "Maximize", "MetricName": "validation:aucpr"}
        ranges = {
            "ContinuousParameterRanges": [
                {"Name": "eta", "MinValue": "0.03", "MaxValue": "0.3",
                 "ScalingType": "Logarithmic"},
                {"Name": "min_child_weight", "MinValue": "1", "MaxValue": "10",
                 "ScalingType": "Auto"},
                {"Name": "subsample", "MinValue": "0.6", "MaxValue": "1", "ScalingType": "Auto"},
            ],
            "IntegerParameterRanges": [
                {"Name": "max_depth", "MinValue": "3", "MaxValue": "8", "ScalingType": "Auto"}],
        }
    else:  # the FM: the same ranges whether it classifies or regresses
        objective = ({"Type": "Maximize", "MetricName": "test:binary_classification_accuracy"}
                     if classifier else {"Type": "Minimize", "MetricName": "test:rmse"})
        ranges = {"ContinuousParameterRanges": [
            {"Name": "factors_lr", "MinValue": "0.0001", "MaxValue": "0.1",
             "ScalingType": "Logarithmic"},
            {"Name": "factors_wd", "MinValue": "0.00001", "MaxValue": "0.01",
             "ScalingType": "Logarithmic"}]}
    return {"Strategy": "Bayesian", "HyperParameterTuningJobObjective": objective,
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 8, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": ranges, "TrainingJobEarlyStoppingType": "Auto"}


def _metrics_from(final: list[dict[str, Any]] | None) -> dict[str, float]:
    raw = {m["MetricName"]: float(m["Value"]) for m in final or []}
    out = dict(raw)
    for name, ours in METRIC_MAP.items():
        if name in raw:
            out[ours] = raw[name]
    return out


def _poll(describe, key: str, timeout: float, interval: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        d = describe()
        if d[key] in TERMINAL:
            return d
        if time.monotonic() > deadline:
            raise TrainingError(f"SageMaker job still {d[key]} after {timeout:.0f} s")
        time.sleep(interval)


def _job_name(job_id: str, limit: int) -> str:
    clean = re.sub(r"[^a-zA-Z0-9-]", "-", job_id)
    if len(clean) <= limit:
        return clean
    digest = hashlib.sha1(job_id.encode()).hexdigest()[:8]
    return f"{clean[:limit - 9].rstrip('-')}-{digest}"


def train(spec: ModelSpec, export_url: str, *, settings: Settings,
          storage_options: dict[str, Any] | None = None, tune: bool = False,
          job_id: str) -> TrainResult:
    """Upload, start the training (or tuning) job, poll it to the end, return its outcome."""
    import boto3
    from botocore.exceptions import ClientError

    if spec.kind == "implicit":
        raise ConfigError(f"{spec.name} trains locally only (SageMaker has no built-in "
                          "implicit-feedback ALS or item-kNN); use backend 'local'")
    if not settings.sagemaker_role_arn:
        raise ConfigError("the sagemaker backend needs FEATURESTORE_SAGEMAKER_ROLE_ARN "
                          "(an IAM role SageMaker can assume, with access to the S3 prefix)")
    bucket, base = _split_s3(settings.sagemaker_s3_prefix or "")
    region = _region(settings)
    meta = read_export_metadata(export_url, storage_options)
    run_prefix = "/".join(p for p in (base, spec.name, job_id) if p)
    upload_export(export_url, bucket, f"{run_prefix}/input", storage_options)
    image = image_uri(spec, region)
    hp = hyperparameters(spec, meta)
    definition: dict[str, Any] = {
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": settings.sagemaker_role_arn,
        "InputDataConfig": _channels(spec, bucket, f"{run_prefix}/input"),
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/{run_prefix}/output/"},
        "ResourceConfig": {"InstanceType": settings.sagemaker_instance_type,
                           "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": int(settings.sagemaker_max_runtime_seconds)},
    }
    sm = boto3.client("sagemaker", region_name=region)
    poll, timeout = settings.sagemaker_poll_seconds, settings.sagemaker_timeout_seconds
    details: dict[str, Any] = {"image": image, "region": region,
                               "input": f"s3://{bucket}/{run_prefix}/input/"}
    if tune:
        tuning_name = _job_name(f"fs-{job_id.rsplit('-', 1)[-1]}-{spec.kind}", 32)
        sm.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=tuning_name,
            HyperParameterTuningJobConfig=_tuning_config(
                spec, hp.get("predictor_type") == "binary_classifier"),
            TrainingJobDefinition={**definition, "StaticHyperParameters": hp})
        d = _poll(lambda: sm.describe_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=tuning_name), "HyperParameterTuningJobStatus",
            timeout, poll)
        details.update(tuning_job_name=tuning_name,
                       status=d["HyperParameterTuningJobStatus"],
                       status_counters=d.get("TrainingJobStatusCounters"))
        if d["HyperParameterTuningJobStatus"] != "Completed":
            raise TrainingError(f"SageMaker tuning job {tuning_name} ended "
                                f"{d['HyperParameterTuningJobStatus']}: "
                                f"{d.get('FailureReason', 'no reason given')}")
        best = d.get("BestTrainingJob") or {}
        objective = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
        details["best_training_job"] = best.get("TrainingJobName")
        details["tuned_hyperparameters"] = best.get("TunedHyperParameters")
        metrics = _metrics_from([objective] if objective.get("MetricName") else [])
        artifact = None
        try:  # the best job's own record carries the model artifact and all final metrics
            bd = sm.describe_training_job(TrainingJobName=best["TrainingJobName"])
            metrics = {**_metrics_from(bd.get("FinalMetricDataList")), **metrics}
            artifact = (bd.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        except (ClientError, KeyError) as exc:
            # moto's tuning job names a placeholder best job that cannot be described.
            details["best_training_job_error"] = str(exc)
        return TrainResult(metrics=metrics, model_bytes=None, model_filename="",
                           params={**hp, **(best.get("TunedHyperParameters") or {})},
                           artifact=artifact, details=details)

    training_name = _job_name(job_id, 63)
    sm.create_training_job(TrainingJobName=training_name, HyperParameters=hp, **definition)
    d = _poll(lambda: sm.describe_training_job(TrainingJobName=training_name),
              "TrainingJobStatus", timeout, poll)
    details.update(training_job_name=training_name, status=d["TrainingJobStatus"],
                   final_metric_data=[{"MetricName": m["MetricName"], "Value": m["Value"]}
                                      for m in d.get("FinalMetricDataList") or []])
    if d["TrainingJobStatus"] != "Completed":
        raise TrainingError(f"SageMaker training job {training_name} ended "
                            f"{d['TrainingJobStatus']}: {d.get('FailureReason', 'no reason')}")
    return TrainResult(metrics=_metrics_from(d.get("FinalMetricDataList")), model_bytes=None,
                       model_filename="", params=hp,
                       artifact=(d.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
                       details=details)
