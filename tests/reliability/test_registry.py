"""Issue #13 item 13: a damaged registry record must not wedge the registry.

Each damage case (empty / corrupt ``production.json``, production pointing at a deleted version,
empty ``metrics.json``, a corrupt model file) is made on a real registry (two real local
retrains), then checked through the real CLI (``featurestore.cli.main`` in the test process:
what the commands print and return, no interpreter start per call), a real uvicorn server and a
real webhook receiver:
``featurestore models`` exits 0 listing the damage, ``GET /models`` answers 200 listing it, and
the next retrain promotes a new good version and sends one alert naming the damage.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from featurestore._exceptions import RegistryError
from featurestore.retrain import new_job, registry, run_job
from featurestore.settings import Settings
from featurestore.storage import Store
from tests import _retrain_fixtures as fx
from tests._generated_store import cli_in_process
from tests._receivers import WebhookReceiver
from tests.serving_helpers import serve_subprocess

MODEL = "purchase-xgboost"
ROWS = (1500, 500, 1500)  # small exports: each retrain takes about a second


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("reg-exports")
    good = fx.make_xgb_export(root / "good", seed=5, rows=ROWS)
    bad = fx.make_xgb_export(root / "bad", seed=5, rows=ROWS, informative=False)
    return good, bad


@pytest.fixture(scope="module")
def template(tmp_path_factory, exports) -> Path:
    """A registry with v0001 (weak) and v0002 (better, auto-promoted to production)."""
    good, bad = exports
    store = Store(str(tmp_path_factory.mktemp("reg-template") / "store"))
    settings = Settings(store=store.url, auto_promote=True)
    for export in (bad, good):
        job = run_job(store, new_job(store, MODEL, "local", export_url=str(export))["job_id"],
                      settings)
        assert job["status"] == "completed", job["error"]
    assert registry.production_version(store, MODEL) == "v0002"
    return Path(store.url)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real uvicorn server on a store path the tests refill from the template."""
    path = tmp_path_factory.mktemp("reg-served") / "store"
    with serve_subprocess({"FEATURESTORE_STORE": str(path)}) as base:
        yield base, path


def _fresh(template: Path, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(template, dest)
    return dest


def _cli(*args: str, store: Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess:
    """``featurestore ARGS --store STORE`` in this process (:func:`cli_in_process`), with the
    settings of ``env``."""
    result = cli_in_process(*args, "--store", str(store), check=False, **(env or {}))
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _models(*args: str, store: Path) -> tuple[int, str, str]:
    """``featurestore models ...`` in this process (the CLI's own entry point, no import cost)."""
    done = _cli("models", *args, store=store)
    return done.returncode, done.stdout, done.stderr


def _version_dir(store: Path, version: str) -> Path:
    return store / "_models" / MODEL / version


def _empty_production(store: Path) -> None:
    (store / "_models" / MODEL / "production.json").write_bytes(b"")


def _corrupt_production(store: Path) -> None:
    (store / "_models" / MODEL / "production.json").write_text('{"version": "v00')


def _delete_production_version(store: Path) -> None:
    shutil.rmtree(_version_dir(store, "v0002"))


def _empty_metrics(store: Path) -> None:
    (_version_dir(store, "v0002") / "metrics.json").write_bytes(b"")


def _corrupt_model(store: Path) -> None:
    path = _version_dir(store, "v0002") / "model.json"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a torn copy: still bytes, no longer the model


# (damage, what production_damaged says, the damaged version and what it says)
CASES: dict[str, tuple[Callable[[Path], None], str, str | None, str | None]] = {
    "empty-production": (_empty_production, "production.json is empty", None, None),
    "corrupt-production": (_corrupt_production, "production.json is not valid JSON", None,
                           None),
    "production-deleted": (_delete_production_version, "v0002, which does not exist", None,
                           None),
    "empty-metrics": (_empty_metrics, "v0002 is damaged", "v0002", "metrics.json is empty"),
    "corrupt-model": (_corrupt_model, "v0002 is damaged", "v0002",
                      "model.json does not match the sha256"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_damage_is_listed_and_next_retrain_promotes(case, template, served, exports):
    damage, production_says, damaged_version, version_says = CASES[case]
    base, store = served
    _fresh(template, store)
    damage(store)

    # CLI: exit 0, the damage listed (JSON and text).
    code, out, _ = _models("--json", store=store)
    assert code == 0
    (summary,) = json.loads(out)["models"]
    assert summary["production"] is None
    assert production_says in summary["production_damaged"]
    versions = {v["version"]: v for v in summary["versions"]}
    assert versions["v0001"]["damaged"] is None  # the good version is listed as before
    if damaged_version:
        assert version_says in versions[damaged_version]["damaged"]
        assert versions[damaged_version]["production"] is False
    code, out, _ = _models(store=store)
    assert code == 0
    assert production_says in out and "damaged" in out

    # API: 200 with the same fields.
    r = httpx.get(f"{base}/models", timeout=30)
    assert r.status_code == 200, r.text
    assert production_says in r.json()["models"][0]["production_damaged"]
    r = httpx.get(f"{base}/models/{MODEL}", timeout=30)
    assert r.status_code == 200, r.text
    if damaged_version:
        listed = {v["version"]: v["damaged"] for v in r.json()["versions"]}
        assert version_says in listed[damaged_version]

    # The next retrain (real CLI) promotes its good version and alerts once about the damage.
    good, _ = exports
    with WebhookReceiver() as hook:
        r = _cli("retrain", "--model", MODEL, "--export-url", str(good), "--wait", "--json",
                 store=store,
                 env={"FEATURESTORE_ALERT_WEBHOOK_URL": hook.url})
        assert r.returncode == 0, r.stderr
        job = json.loads(r.stdout)
        assert job["status"] == "completed", job["error"]
        assert job["model_version"] == "v0003" and job["alert"]["promoted"] is True
        assert [m["json"]["event"] for m in hook.received] == ["registry_damaged"]
        alert = hook.received[0]["json"]
        assert alert["model"] == MODEL and alert["version"] == "v0003"
        assert production_says in alert["production_damaged"]
        assert alert["promoted"] is True
        if damaged_version:
            assert version_says in alert["damaged_versions"][damaged_version]
    assert job["alert"]["damage"]["production_damaged"] == alert["production_damaged"]
    code, out, _ = _models(MODEL, "--json", store=store)
    after = json.loads(out)
    assert after["production"] == "v0003" and after["production_damaged"] is None
    # production.json was rewritten whole (valid JSON naming the new version).
    record = json.loads((store / "_models" / MODEL / "production.json").read_text())
    assert record["version"] == "v0003"


def test_damaged_version_is_never_promoted(template, tmp_path):
    store = _fresh(template, tmp_path / "store")
    (_version_dir(store, "v0001") / "metrics.json").write_text("{not json")
    code, _, err = _models(MODEL, "--promote", "v0001", store=store)
    assert code == 1
    assert err.count("\n") == 1 and "metrics.json is not valid JSON" in err
    assert registry.production_version(Store(str(store)), MODEL) == "v0002"  # unchanged
    summary = registry.model_summary(Store(str(store)), MODEL)
    assert summary["production"] == "v0002" and summary["production_damaged"] is None


def test_valid_json_of_the_wrong_shape_is_damaged(template, tmp_path):
    store = _fresh(template, tmp_path / "store")
    (_version_dir(store, "v0001") / "metrics.json").write_text('["pr_auc", 0.5]')
    (_version_dir(store, "v0002") / "version.json").write_text('{"model": "purchase-xgboost"}')
    summary = registry.model_summary(Store(str(store)), MODEL)
    damaged = {v["version"]: v["damaged"] for v in summary["versions"]}
    assert "metrics.json is not a JSON object" in damaged["v0001"]
    assert "version.json lacks" in damaged["v0002"]
    assert summary["production"] is None and "v0002 is damaged" in summary["production_damaged"]


def test_model_file_checksum_checked_on_load(template, tmp_path):
    store_path = _fresh(template, tmp_path / "store")
    store = Store(str(store_path))
    model_file = _version_dir(store_path, "v0002") / "model.json"
    data = registry.load_model_bytes(store, MODEL, "v0002")
    assert data == model_file.read_bytes()
    record = json.loads((_version_dir(store_path, "v0002") / "version.json").read_text())
    assert record["model_sha256"] == hashlib.sha256(data).hexdigest()
    model_file.write_bytes(data.replace(b'"', b"'", 1))  # one byte changed, same size
    with pytest.raises(RegistryError, match="sha256"):
        registry.load_model_bytes(store, MODEL, "v0002")


def test_store_written_before_checksums_still_opens(template, tmp_path):
    """Versions registered by earlier code have no model_sha256: they stay valid."""
    store_path = _fresh(template, tmp_path / "store")
    path = _version_dir(store_path, "v0002") / "version.json"
    record = json.loads(path.read_text())
    del record["model_sha256"]
    path.write_text(json.dumps(record))
    store = Store(str(store_path))
    summary = registry.model_summary(store, MODEL)
    assert summary["production"] == "v0002"
    assert [v["damaged"] for v in summary["versions"]] == [None, None]
    assert registry.load_model_bytes(store, MODEL, "v0002")


def test_half_written_versions_do_not_break_the_listing(template, tmp_path):
    """A crash between the claim and version.json (or a job still writing) leaves a version
    folder without version.json: skipped, and a model with only such a folder is not listed."""
    store = _fresh(template, tmp_path / "store")
    (store / "_models" / MODEL / "v0003").mkdir()
    (store / "_models" / MODEL / "v0003" / ".claim").write_text("{}")
    (store / "_models" / "retail-fm" / "v0001").mkdir(parents=True)
    (store / "_models" / "retail-fm" / "v0001" / ".claim").write_text("{}")
    code, out, _ = _models("--json", store=store)
    assert code == 0
    models = json.loads(out)["models"]
    assert [m["name"] for m in models] == [MODEL]
    assert [v["version"] for v in models[0]["versions"]] == ["v0001", "v0002"]


def test_checksums_on_s3(s3_bucket):
    """The same validation on an S3 store (real moto server): a rewritten model is caught."""
    import boto3

    store = Store(f"s3://{s3_bucket}/store")
    version = registry.register_version(
        store, MODEL, metrics={"pr_auc": 0.5}, model_bytes=b'{"learner": {}}',
        model_filename="model.json", training_set={"url": "s3://x/export"}, features=["a"],
        info={"job_id": "j1", "backend": "local"})
    registry.promote(store, MODEL, version)
    assert registry.model_summary(store, MODEL)["versions"][0]["damaged"] is None
    boto3.client("s3").put_object(Bucket=s3_bucket, Key=f"store/_models/{MODEL}/v0001/model.json",
                                  Body=b'{"learner": []}')
    summary = registry.model_summary(store, MODEL)
    assert "does not match the sha256" in summary["versions"][0]["damaged"]
    assert summary["production"] is None and "v0001 is damaged" in summary["production_damaged"]
    with pytest.raises(RegistryError):
        registry.load_model_bytes(store, MODEL, "v0001")
