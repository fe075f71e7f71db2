"""SageMaker Batch Transform: score CSV rows with a SageMaker-trained XGBoost version.

A version trained by the SageMaker backend keeps its model in the training job's artifact
(``model.tar.gz`` on S3), not in the store, so ``featurestore predict`` scores it where it lives:

1. upload one CSV per snapshot part file under
   ``<sagemaker_s3_prefix>/<model>/transform/<job>/input/part-NNNNN.csv`` (``customer_id``
   first, then the model's features as the training export wrote them: float, empty = missing);
2. ``CreateModel`` (the built-in XGBoost image, ``ModelDataUrl`` = the version's artifact);
3. ``CreateTransformJob`` with ``DataProcessing`` ``InputFilter="$[1:]"`` (the container sees
   the features only), ``JoinSource="Input"`` and ``OutputFilter="$[0,-1]"``: each output line
   is ``customer_id,score``, so a score can never be attached to the wrong customer;
4. ``DescribeTransformJob`` until Completed, Failed or Stopped; read
   ``.../output/part-NNNNN.csv.out`` back (SageMaker names an output after its input + ``.out``);
5. ``DeleteModel`` (the model is a per-job handle; the artifact stays).

Against moto the calls are real but its jobs complete at once and write no output; the tests
play the container (they write the ``.out`` files the job would write, from the artifact's
model), which is the only stand-in. A completed job without its output files is an error that
names the missing file, never an empty prediction.
"""

from __future__ import annotations

import uuid
from typing import Any

from .._exceptions import ConfigError, TrainingError
from ..settings import Settings
from .models import ModelSpec
from .sagemaker_backend import _job_name, _poll, _region, _split_s3, image_uri

__all__ = ["TransformResult", "batch_transform", "DATA_PROCESSING"]

#: The container reads the features only; each output line joins the input's first column
#: (the customer id) with the prediction.
DATA_PROCESSING = {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}


class TransformResult:
    """The output of one Batch Transform job: one CSV (``customer_id,score``) per input part."""

    def __init__(self, outputs: list[bytes], details: dict[str, Any]) -> None:
        self.outputs = outputs
        self.details = details


def batch_transform(spec: ModelSpec, artifact: str, parts: list[bytes], *, settings: Settings,
                    label: str) -> TransformResult:
    """Run one Batch Transform job over CSV parts and return their outputs, in input order.

    Args:
        spec: the model (its kind picks the container image).
        artifact: the version's ``s3://.../model.tar.gz``.
        parts: CSV bytes, ``customer_id`` first, no header.
        settings: role ARN, S3 prefix, region, instance type, poll period and timeout.
        label: a short name for the job (model, version, as-of), made unique here.

    Returns:
        The output CSV of every part (``customer_id,score`` lines) and the job's details.

    Raises:
        ConfigError: no role ARN / S3 prefix / region, or the SDK extra is missing.
        TrainingError: the job did not complete, or completed without an output file.
    """
    import boto3
    from botocore.exceptions import ClientError

    if not settings.sagemaker_role_arn:
        raise ConfigError("scoring a SageMaker-trained version needs "
                          "FEATURESTORE_SAGEMAKER_ROLE_ARN (a role SageMaker can assume)")
    if not (isinstance(artifact, str) and artifact.startswith("s3://")):
        raise TrainingError(f"the version's artifact {artifact!r} is not an s3:// model; "
                            "retrain it with the sagemaker backend")
    bucket, base = _split_s3(settings.sagemaker_s3_prefix or "")
    region = _region(settings)
    name = _job_name(f"fs-{label}-{uuid.uuid4().hex[:6]}", 63)
    run_prefix = "/".join(p for p in (base, spec.name, "transform", name) if p)
    s3 = boto3.client("s3")
    keys = [f"{run_prefix}/input/part-{i:05d}.csv" for i in range(len(parts))]
    for key, body in zip(keys, parts):
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    output = f"s3://{bucket}/{run_prefix}/output/"
    image = image_uri(spec, region)
    sm = boto3.client("sagemaker", region_name=region)
    sm.create_model(ModelName=name, ExecutionRoleArn=settings.sagemaker_role_arn,
                    PrimaryContainer={"Image": image, "ModelDataUrl": artifact})
    try:
        sm.create_transform_job(
            TransformJobName=name, ModelName=name, BatchStrategy="MultiRecord",
            MaxPayloadInMB=6,
            TransformInput={"DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/{run_prefix}/input/"}},
                "ContentType": "text/csv", "SplitType": "Line"},
            TransformOutput={"S3OutputPath": output, "Accept": "text/csv",
                             "AssembleWith": "Line"},
            TransformResources={"InstanceType": settings.sagemaker_instance_type,
                                "InstanceCount": 1},
            DataProcessing=DATA_PROCESSING)
        d = _poll(lambda: sm.describe_transform_job(TransformJobName=name),
                  "TransformJobStatus", settings.sagemaker_timeout_seconds,
                  settings.sagemaker_poll_seconds)
    finally:
        try:  # the model is a per-job handle; the artifact it names stays
            sm.delete_model(ModelName=name)
        except ClientError:
            pass
    details = {"transform_job_name": name, "image": image, "region": region,
               "input": f"s3://{bucket}/{run_prefix}/input/", "output": output,
               "status": d["TransformJobStatus"]}
    if d["TransformJobStatus"] != "Completed":
        raise TrainingError(f"SageMaker transform job {name} ended {d['TransformJobStatus']}: "
                            f"{d.get('FailureReason') or 'no reason given'}")
    outputs = []
    for key in keys:
        out_key = f"{run_prefix}/output/{key.rsplit('/', 1)[-1]}.out"
        try:
            outputs.append(s3.get_object(Bucket=bucket, Key=out_key)["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise
            raise TrainingError(
                f"SageMaker transform job {name} completed but wrote no "
                f"s3://{bucket}/{out_key}; check the job's CloudWatch logs and run "
                "featurestore predict again") from None
    return TransformResult(outputs, details)
