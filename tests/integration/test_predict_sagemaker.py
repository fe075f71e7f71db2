"""Batch predictions of a SageMaker-trained version through SageMaker Batch Transform (issue #17
item 1), against the real moto server (S3 + SageMaker APIs).

Real: the SageMaker retrain job, ``CreateModel``, ``CreateTransformJob``,
``DescribeTransformJob``, ``DeleteModel``, the S3 input and output objects, the LocalCluster
converting the snapshot, the commit. The one stand-in: moto's jobs complete at once and run no
container, so ``container`` below plays the two containers: it writes the ``model.tar.gz`` the
training job would have written (a real XGBoost booster trained here on the same export) and,
when the transform job is created on the moto server, writes the ``.out`` files the XGBoost
container would write from that artifact's model and the job's DataProcessing (InputFilter
``$[1:]``, join with the input, OutputFilter ``$[0,-1]``). The expected scores are computed
independently: the booster's own ``predict`` on the snapshot read with pandas.
"""

from __future__ import annotations

import io
import shutil
import tarfile

import boto3
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from featurestore import FeatureStore, Settings
from featurestore.cli import main as cli
from featurestore.retrain import new_job, registry, run_job
from featurestore.storage import Store
from tests._retrain_fixtures import FEATURES, make_xgb_export, sagemaker_settings

MODEL = "purchase-xgboost"


@pytest.fixture(scope="module")
def ingested(ingested_drops):
    """The generated drops ingested and materialized (read-only: copy to mutate)."""
    return ingested_drops


@pytest.fixture()
def env(ingested, tmp_path, s3_bucket):
    shutil.copytree(ingested.url, tmp_path / "store")
    store = Store(str(tmp_path / "store"))
    settings = sagemaker_settings(store.url, s3_bucket)
    return store, settings, s3_bucket


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def _sagemaker_version(store: Store, settings: Settings, tmp_path) -> tuple[str, xgb.Booster]:
    """A real SageMaker retrain job on moto, then the training container's part: the artifact
    ``model.tar.gz`` holding ``xgboost-model``, a booster trained here on the same export."""
    export = make_xgb_export(tmp_path / "export", rows=(3000, 1000, 1000), seed=5)
    job = run_job(store, new_job(store, MODEL, "sagemaker", export_url=str(export))["job_id"],
                  settings)
    assert job["status"] == "completed", job["error"]
    train = pd.read_csv(export / "train" / "train.csv", header=None)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3},
                        xgb.DMatrix(train.iloc[:, 1:].to_numpy(float), label=train[0],
                                    missing=np.nan), 20)  # CSV-trained: no feature names
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        data = bytes(booster.save_raw("json"))
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    bucket, key = _split_s3(job["artifact"])
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=raw.getvalue())
    return job["model_version"], booster


@pytest.fixture()
def container(monkeypatch):
    """Plays SageMaker's XGBoost container on the moto server: when a transform job is
    created, score every input line with the model in the job's ModelDataUrl and write the
    ``.out`` files. Yields the list of jobs it ran."""
    from moto.sagemaker.models import SageMakerModelBackend

    original = SageMakerModelBackend.create_transform_job
    ran: list[str] = []

    def create_transform_job(self, transform_job_name, model_name, *args, **kwargs):
        job = original(self, transform_job_name, model_name, *args, **kwargs)
        s3 = boto3.client("s3")  # the server is threaded: a nested request is served
        model_url = self.describe_model(model_name).primary_container["ModelDataUrl"]
        tar_bytes = s3.get_object(Bucket=_split_s3(model_url)[0],
                                  Key=_split_s3(model_url)[1])["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            booster = xgb.Booster()
            booster.load_model(bytearray(tar.extractfile("xgboost-model").read()))
        assert job.data_processing == {"InputFilter": "$[1:]", "JoinSource": "Input",
                                       "OutputFilter": "$[0,-1]"}
        in_bucket, in_prefix = _split_s3(
            job.transform_input["DataSource"]["S3DataSource"]["S3Uri"])
        out_bucket, out_prefix = _split_s3(job.transform_output["S3OutputPath"])
        listed = s3.list_objects_v2(Bucket=in_bucket, Prefix=in_prefix).get("Contents", [])
        for obj in listed:
            body = s3.get_object(Bucket=in_bucket, Key=obj["Key"])["Body"].read().decode()
            rows = [line.split(",") for line in body.splitlines()]
            x = np.array([[float(v) if v else np.nan for v in r[1:]] for r in rows])
            scores = booster.predict(xgb.DMatrix(x, missing=np.nan))
            out = "".join(f"{r[0]},{float(s)!r}\n" for r, s in zip(rows, scores))
            s3.put_object(Bucket=out_bucket,
                          Key=out_prefix + obj["Key"].rsplit("/", 1)[-1] + ".out",
                          Body=out.encode())
        ran.append(transform_job_name)
        return job

    monkeypatch.setattr(SageMakerModelBackend, "create_transform_job", create_transform_job)
    return ran


def _snapshot(store: Store, as_of: str) -> pd.DataFrame:
    return pd.read_parquet(store.path("customer_features", f"as_of={as_of}"))


def test_batch_transform_scores_every_customer_once(env, client, tmp_path, container):
    store, settings, bucket = env
    version, booster = _sagemaker_version(store, settings, tmp_path)
    assert registry.get_version(store, MODEL, version)["model_file"] is None
    fs = FeatureStore(settings, client=client)
    report = fs.predict()
    assert report.status == "written" and report.model_version == version
    as_of = report.as_of

    # the predictions table: every customer of the snapshot once, the model's own scores
    rows = _snapshot(store, as_of)
    expected = pd.Series(booster.predict(xgb.DMatrix(rows[FEATURES].astype("float64")
                                                     .to_numpy(), missing=np.nan)),
                         index=rows["customer_id"].astype(str))
    got = pd.read_parquet(store.path("predictions", f"model={MODEL}", f"as_of={as_of}"))
    assert got["customer_id"].is_unique and set(got["customer_id"]) == set(expected.index)
    assert len(got) == len(rows) == report.rows
    np.testing.assert_allclose(got.set_index("customer_id")["score"].loc[expected.index],
                               expected.to_numpy(), rtol=1e-6)
    assert sorted(got["rank"]) == list(range(1, len(got) + 1))
    assert (np.diff(got.sort_values("rank")["score"].to_numpy()) <= 0).all()
    assert (got["model_version"] == version).all()

    # the real API calls: the job moto recorded, its input on S3 and the deleted model
    run = store.read_json("_state", "predictions", f"{MODEL}.json")["runs"][as_of]
    assert run["scored_by"] == "sagemaker-batch-transform"
    assert container == [run["transform_job_name"]]
    sm = boto3.client("sagemaker")
    d = sm.describe_transform_job(TransformJobName=run["transform_job_name"])
    assert d["TransformJobStatus"] == "Completed"
    assert d["TransformInput"]["ContentType"] == "text/csv"
    assert d["TransformInput"]["SplitType"] == "Line"
    assert d["TransformOutput"]["S3OutputPath"] == run["transform_output"]
    assert d["TransformResources"]["InstanceType"] == "ml.m5.large"
    with pytest.raises(sm.exceptions.ClientError):
        sm.describe_model(ModelName=d["ModelName"])  # a per-job handle, deleted after
    in_bucket, in_prefix = _split_s3(d["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
    assert in_bucket == bucket and in_prefix.startswith(f"sm/{MODEL}/transform/")
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=in_prefix)["Contents"]]
    sent = pd.concat([pd.read_csv(s3.get_object(Bucket=bucket, Key=k)["Body"], header=None,
                                  dtype={0: str}) for k in keys])
    sent = sent.set_index(0).loc[rows["customer_id"].astype(str)]
    np.testing.assert_array_equal(sent.to_numpy(float), rows[FEATURES].astype("float64"))

    # exactly once: a re-run finds the record and starts no job
    again = fs.predict()
    assert again.status == "skipped" and len(container) == 1


def test_a_completed_job_without_output_is_one_error_line_and_nothing_written(env, client,
                                                                              tmp_path, capsys):
    """Without the container stand-in moto completes the job and writes nothing: predict
    fails with the missing S3 object named, exit 1, and commits nothing."""
    store, settings, bucket = env
    _sagemaker_version(store, settings, tmp_path)
    code = cli(["predict", "--store", store.url, "--scheduler", client.scheduler.address,
                "--config", _config(tmp_path, settings)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert "Traceback" not in "\n".join(err)
    assert err[-1].startswith("featurestore predict: error: SageMaker transform job ")
    assert "completed but wrote no s3://" in err[-1] and ".csv.out" in err[-1]
    assert not store.exists("predictions")
    assert not store.exists("_state", "predictions", f"{MODEL}.json")


def _config(tmp_path, settings: Settings) -> str:
    """A config file with the SageMaker settings, as an operator would give them."""
    import yaml

    path = tmp_path / "featurestore.yaml"
    path.write_text(yaml.safe_dump({
        k: v for k, v in settings.model_dump().items()
        if k.startswith("sagemaker_") and v is not None}))
    return str(path)
