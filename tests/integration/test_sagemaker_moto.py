"""SageMaker backend end to end against the real moto server (S3 + SageMaker APIs).

moto completes jobs at once and reports no algorithm metrics and no model file; the tests check
what was sent (upload, image, hyperparameters, channels, tuning objective), that the status was
polled to Completed, and that the registry records what the API returned.
"""

from __future__ import annotations

import json

import boto3
import pytest
from sagemaker.core import image_uris

from featurestore.retrain import new_job, registry, run_job
from featurestore.storage import Store
from tests import _retrain_fixtures as fx
from tests._retrain_fixtures import SAGEMAKER_ROLE, sagemaker_settings

ROLE = SAGEMAKER_ROLE


@pytest.fixture()
def env(tmp_path, s3_bucket):
    store = Store(str(tmp_path / "store"))
    settings = sagemaker_settings(store.url, s3_bucket)
    return store, settings, s3_bucket


def _keys(bucket: str, prefix: str) -> set[str]:
    s3 = boto3.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"] for p in pages for o in p.get("Contents", [])}


def test_xgboost_training_job(env, tmp_path):
    store, settings, bucket = env
    export = fx.make_xgb_export(tmp_path / "xgb", rows=(600, 200, 200), seed=3)
    meta = json.loads((export / "metadata.json").read_text())
    record = new_job(store, "purchase-xgboost", "sagemaker", export_url=str(export))
    final = run_job(store, record["job_id"], settings)
    assert final["status"] == "completed", final["error"]

    prefix = f"sm/purchase-xgboost/{record['job_id']}/input/"
    keys = _keys(bucket, prefix)
    assert {prefix + k for k in ("train/train.csv", "validation/validation.csv",
                                 "test/test.csv", "metadata.json")} <= keys
    body = boto3.client("s3").get_object(Bucket=bucket, Key=prefix + "train/train.csv")["Body"]
    assert body.read() == (export / "train" / "train.csv").read_bytes()

    version = registry.get_version(store, "purchase-xgboost", final["model_version"])
    job_name = version["details"]["training_job_name"]
    d = boto3.client("sagemaker").describe_training_job(TrainingJobName=job_name)
    assert d["TrainingJobStatus"] == "Completed"
    assert d["AlgorithmSpecification"]["TrainingImage"] == image_uris.retrieve(
        "xgboost", region="us-east-1", version="1.7-1")
    hp = d["HyperParameters"]
    assert hp["objective"] == "binary:logistic" and hp["eval_metric"] == "aucpr"
    assert float(hp["scale_pos_weight"]) == pytest.approx(meta["scale_pos_weight"], rel=1e-5)
    assert d["RoleArn"] == ROLE
    assert d["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    channels = {c["ChannelName"]: c for c in d["InputDataConfig"]}
    assert set(channels) == {"train", "validation"}
    train_uri = channels["train"]["DataSource"]["S3DataSource"]["S3Uri"]
    assert train_uri == f"s3://{bucket}/{prefix}train/"
    # What the API returned is what was recorded.
    assert final["artifact"] == d["ModelArtifacts"]["S3ModelArtifacts"]
    returned = {m["MetricName"]: m["Value"] for m in d.get("FinalMetricDataList", [])}
    assert {k: final["metrics"][k] for k in returned} == pytest.approx(returned)
    assert version["backend"] == "sagemaker" and version["model_file"] is None
    assert registry.production_version(store, "purchase-xgboost") == final["model_version"]


def test_xgboost_tuning_job(env, tmp_path):
    store, settings, _ = env
    export = fx.make_xgb_export(tmp_path / "xgb", rows=(600, 200, 200), seed=4)
    record = new_job(store, "purchase-xgboost", "sagemaker", tune=True, export_url=str(export))
    final = run_job(store, record["job_id"], settings)
    assert final["status"] == "completed", final["error"]
    details = registry.get_version(store, "purchase-xgboost", final["model_version"])["details"]
    name = details["tuning_job_name"]
    assert len(name) <= 32
    d = boto3.client("sagemaker").describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name)
    assert d["HyperParameterTuningJobStatus"] == "Completed"
    cfg = d["HyperParameterTuningJobConfig"]
    assert cfg["HyperParameterTuningJobObjective"] == {"Type": "Maximize",
                                                       "MetricName": "validation:aucpr"}
    ranges = {r["Name"] for kind in cfg["ParameterRanges"].values() for r in kind}
    assert {"eta", "max_depth"} <= ranges
    static = d["TrainingJobDefinition"]["StaticHyperParameters"]
    assert static["objective"] == "binary:logistic"
    best = d["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]
    assert final["metrics"][best["MetricName"]] == pytest.approx(best["Value"])


def test_fm_training_job(env, tmp_path):
    store, settings, bucket = env
    export = fx.make_fm_export(tmp_path / "fm", customers=40, items=20, per_customer=8)
    record = new_job(store, "retail-fm", "sagemaker", export_url=str(export))
    final = run_job(store, record["job_id"], settings)
    assert final["status"] == "completed", final["error"]
    details = registry.get_version(store, "retail-fm", final["model_version"])["details"]
    d = boto3.client("sagemaker").describe_training_job(
        TrainingJobName=details["training_job_name"])
    assert d["AlgorithmSpecification"]["TrainingImage"] == image_uris.retrieve(
        "factorization-machines", region="us-east-1")
    assert d["HyperParameters"] == {"feature_dim": "60", "predictor_type": "regressor",
                                    "num_factors": "64", "mini_batch_size": "1000",
                                    "epochs": "20"}
    channels = {c["ChannelName"]: c["ContentType"] for c in d["InputDataConfig"]}
    assert channels == {"train": "application/x-recordio-protobuf",
                        "test": "application/x-recordio-protobuf"}
    prefix = f"sm/retail-fm/{record['job_id']}/input/"
    assert {prefix + "train/train.protobuf", prefix + "test/test.protobuf"} <= _keys(bucket,
                                                                                     prefix)


def test_sagemaker_needs_role(env, tmp_path):
    store, settings, _ = env
    export = fx.make_xgb_export(tmp_path / "xgb", rows=(100, 50, 50))
    record = new_job(store, "purchase-xgboost", "sagemaker", export_url=str(export))
    final = run_job(store, record["job_id"], settings.model_copy(update={
        "sagemaker_role_arn": None}))
    assert final["status"] == "failed" and "SAGEMAKER_ROLE_ARN" in final["error"]


def test_cli_retrain_sagemaker_from_environment(tmp_path, s3_bucket):
    """`featurestore retrain --backend sagemaker --wait` with settings from FEATURESTORE_* env."""
    from tests._generated_store import cli_in_process  # what the command prints and returns

    export = fx.make_xgb_export(tmp_path / "xgb", rows=(300, 100, 100), seed=6)
    env = {"FEATURESTORE_SAGEMAKER_ROLE_ARN": ROLE,
           "FEATURESTORE_SAGEMAKER_S3_PREFIX": f"s3://{s3_bucket}/cli",
           "FEATURESTORE_SAGEMAKER_POLL_SECONDS": "0.05"}
    r = cli_in_process("retrain", "--store", str(tmp_path / "store"), "--model",
                       "purchase-xgboost", "--backend", "sagemaker", "--export-url", str(export),
                       "--wait", "--json", check=False, **env)
    assert r.returncode == 0, r.stderr
    job = json.loads(r.stdout)
    assert job["status"] == "completed" and job["backend"] == "sagemaker"
    assert job["artifact"].startswith(f"s3://{s3_bucket}/cli/purchase-xgboost/{job['job_id']}/")
    assert f"cli/purchase-xgboost/{job['job_id']}/input/train/train.csv" in _keys(s3_bucket,
                                                                                  "cli/")
