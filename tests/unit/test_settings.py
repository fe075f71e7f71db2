"""Settings precedence (flags > env > file), config errors that name the key, storage options."""

from __future__ import annotations

import pytest

from featurestore import ConfigError, load_settings
from featurestore.storage import Store, parse_storage_options


def test_precedence_file_then_env_then_flags(tmp_path, monkeypatch):
    cfg = tmp_path / "fs.yaml"
    cfg.write_text("store: /from/file\nworkers: 3\nalert_threshold: 0.2\n")
    monkeypatch.setenv("FEATURESTORE_WORKERS", "5")
    s = load_settings(str(cfg))
    assert (s.store, s.workers, s.alert_threshold) == ("/from/file", 5, 0.2)
    s = load_settings(str(cfg), store="/from/flag", workers=None)
    assert (s.store, s.workers) == ("/from/flag", 5)


def test_unknown_or_invalid_keys_are_named(tmp_path):
    cfg = tmp_path / "fs.yaml"
    cfg.write_text("stroe: /typo\n")
    with pytest.raises(ConfigError, match="stroe"):
        load_settings(str(cfg))
    cfg.write_text("workers: zero\n")
    with pytest.raises(ConfigError, match="workers"):
        load_settings(str(cfg))
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(str(tmp_path / "missing.yaml"))


def test_storage_options_parse_nested_and_typed():
    opts = parse_storage_options(["anon=false", "client_kwargs.endpoint_url=http://h:9",
                                  "max_concurrency=4"])
    assert opts == {"anon": False, "client_kwargs": {"endpoint_url": "http://h:9"},
                    "max_concurrency": 4}
    with pytest.raises(ConfigError, match="is not KEY=VALUE"):
        parse_storage_options(["novalue"])


def test_s3_endpoint_defaults_from_aws_env(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert Store("s3://b/p").storage_options["client_kwargs"]["endpoint_url"] == \
        "http://127.0.0.1:1"
    explicit = Store("s3://b/p", {"client_kwargs": {"endpoint_url": "http://x"}})
    assert explicit.storage_options["client_kwargs"]["endpoint_url"] == "http://x"
    assert Store("relative/dir").url.startswith("/")
