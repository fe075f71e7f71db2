"""The training-set export job runner in the library (featurestore/training/export_jobs.py)
and the one rule for options of locations outside the store (storage.options_for)."""

from __future__ import annotations

import datetime as dt

import pytest

from featurestore import ConfigError, NotFoundError, Settings
from featurestore.storage import Store, options_for
from featurestore.training.export_jobs import allowed_out, export_target, read_export


def test_options_for_defaults_to_the_stores_when_the_protocol_matches(tmp_path):
    s3 = Store("s3://bucket/store", {"endpoint_url": "http://127.0.0.1:9"})
    assert options_for("s3://other/raw", s3)["endpoint_url"] == "http://127.0.0.1:9"
    assert options_for("/local/raw", s3) is None
    assert options_for("s3://other/raw", s3, {"anon": True}) == {"anon": True}
    local = Store(str(tmp_path))
    assert options_for(str(tmp_path / "raw"), local) == local.storage_options
    assert options_for("s3://b/raw", local) is None


def test_export_targets_stay_below_the_exports_folder(tmp_path):
    store = Store(str(tmp_path / "store"))
    settings = Settings(store=store.url)
    export_id, out = export_target(store, settings, None)
    assert out == store.uri("_exports", export_id) and export_id.isalnum()
    assert allowed_out(store, settings, store.uri("_exports", "mine"))
    for bad in (store.uri("_exports", "_jobs"), store.uri("_exports"), store.uri("_ledger"),
                store.uri("customer_features"), store.uri("_exports", "..", "_ledger"),
                str(tmp_path / "elsewhere")):
        assert not allowed_out(store, settings, bad), bad
        with pytest.raises(ConfigError, match="outside the store's exports folder"):
            export_target(store, settings, bad)
    with pytest.raises(ConfigError, match="is after"):
        export_target(store, settings, None, dt.date(2026, 2, 1), dt.date(2026, 1, 1))


def test_export_roots_setting_allows_another_folder(tmp_path):
    store = Store(str(tmp_path / "store"))
    settings = Settings(store=store.url, export_roots=[str(tmp_path / "exports")])
    assert allowed_out(store, settings, str(tmp_path / "exports" / "x"))


def test_read_export_names_what_to_do(tmp_path):
    store = Store(str(tmp_path))
    with pytest.raises(NotFoundError, match="ids come from POST /training-sets"):
        read_export(store, "abc123")
    with pytest.raises(NotFoundError):
        read_export(store, "../x")
    store.write_json({"id": "abc123", "status": "running"}, "_exports", "_jobs", "abc123.json")
    assert read_export(store, "abc123")["status"] == "running"
