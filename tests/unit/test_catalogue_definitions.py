"""The catalogue fields of the repository (description, owner, tags) and the catalogue's
pure parts: fingerprints stay what they were, metadata rebuilds nothing, definitions read as
sentences, search words match names, descriptions and tags."""

from __future__ import annotations

import typing

import pytest
import yaml

from featurestore import ConfigError
from featurestore.catalogue import describe, matches
from featurestore.example_repo import EXAMPLE_FEATURES, EXAMPLE_TABLE, example_text
from featurestore.features.definitions import Feature, load_feature_repo, parse_feature_repo

#: Fingerprints of the built-in repository before the catalogue fields existed (main at
#: 2a16b93): stores built then must not be rebuilt, nor their recorded repository renamed.
DEFAULT_REPO_FINGERPRINT = "35b57b85b4080879"
DEFAULT_TABLE_FINGERPRINTS = {"customer_features": "b73309ef2941c281",
                              "customer_product_features": "57124a488fca30db",
                              "customer_retail_features": "52e5c6f621e97d9b"}


def _with(tables_patch: dict) -> str:
    """The built-in repository's YAML with ``tables_patch`` merged into its tables."""
    raw = yaml.safe_load(load_feature_repo(None).model_dump_json())
    for table, patch in tables_patch.items():
        features = patch.pop("features", {})
        raw["tables"][table].update(patch)
        for name, fields in features.items():
            raw["tables"][table]["features"][name].update(fields)
    return yaml.safe_dump(raw)


def test_fingerprints_of_a_repository_without_the_fields_are_unchanged():
    repo = load_feature_repo(None)
    assert repo.repo_fingerprint == DEFAULT_REPO_FINGERPRINT
    assert {t: repo.fingerprint(t) for t in repo.tables} == DEFAULT_TABLE_FINGERPRINTS
    # the same repository dumped and parsed again (every field explicit, empty) hashes alike
    again = parse_feature_repo(_with({}), "dumped")
    assert again.repo_fingerprint == DEFAULT_REPO_FINGERPRINT


def test_metadata_is_recorded_but_rebuilds_nothing():
    described = parse_feature_repo(_with({"customer_features": {
        "description": "per customer", "owner": "growth", "tags": ["core"],
        "features": {"cart_adds_7d": {"owner": "growth", "tags": ["cart", "basket"]}}}}), "m")
    base = load_feature_repo(None)
    assert described.tables["customer_features"].features["cart_adds_7d"].tags == (
        "cart", "basket")
    # a table's build fingerprint ignores it: nothing is rebuilt for a new owner or tag
    assert described.fingerprint("customer_features") == base.fingerprint("customer_features")
    # the repository's own fingerprint records it (apply writes the new text)
    assert described.repo_fingerprint != base.repo_fingerprint
    assert base.differences(described) == [
        "table customer_features: description, owner or tags of the table changed",
        "table customer_features: description, owner or tags of feature cart_adds_7d changed"]


def test_a_definition_change_next_to_a_metadata_change_is_still_a_change():
    changed = parse_feature_repo(_with({"customer_features": {"features": {
        "cart_adds_7d": {"owner": "growth", "window_days": 8}}}}), "m")
    base = load_feature_repo(None)
    assert base.differences(changed) == ["table customer_features: feature cart_adds_7d changed"]
    assert changed.fingerprint("customer_features") != base.fingerprint("customer_features")


def test_bad_metadata_names_its_key():
    text = _with({"customer_features": {"features": {"cart_adds_7d": {"tags": "cart"}}}})
    with pytest.raises(ConfigError, match=r"customer_features\.features\.cart_adds_7d\.tags"):
        parse_feature_repo(text, "bad")


@pytest.mark.parametrize("fields,expected", [
    ({"aggregation": "count", "filter": {"event_id": "12"}, "window_days": 7},
     "count of hits where event list has 12, over the 7 days ending on the as-of date"),
    ({"aggregation": "count", "unit": "product", "filter": {"event_id": "2"}, "window_days": 1},
     "count of (hit, product) pairs where event list has 2, over the 1 day ending on the "
     "as-of date"),
    ({"aggregation": "sum", "field": "price", "filter": {"event_id": "1",
                                                         "url_path_prefix": "/p/"},
      "window_days": 30},
     "sum of price over the products where event list has 1 and page path starts with /p/, "
     "over the 30 days ending on the as-of date"),
    ({"aggregation": "distinct", "field": "event_date", "window_days": 30},
     "count of days with a matching hit, over the 30 days ending on the as-of date"),
    ({"aggregation": "recency", "filter": {"page_event": "100"}},
     "days since the latest matching event date where post_page_event = 100"),
])
def test_definitions_read_as_sentences(fields, expected):
    assert describe(Feature(**fields)) == expected


def test_retail_definitions_speak_of_invoices():
    assert describe(Feature(aggregation="sum", field="quantity", window_days=90), "retail") == (
        "sum of quantity over the invoice lines, over the 90 days ending on the as-of date")
    assert describe(Feature(aggregation="recency"), "retail") == (
        "days since the latest invoice date")
    assert describe(Feature(aggregation="distinct", field="invoice_no", window_days=90),
                    "retail") == ("count of distinct invoice_no, over the 90 days ending on "
                                  "the as-of date")
    assert describe(Feature(aggregation="latest", field="country"), "retail") == (
        "country of the latest invoice")


def test_search_needs_every_word_in_a_name_description_owner_or_tag():
    entry = {"name": "products_carted_30d", "table": "t", "description": "Distinct products "
             "added to the cart", "owner": "growth", "tags": ["cart", "basket"]}
    assert matches(entry, None) and matches(entry, "  ")
    assert matches(entry, "CART basket") and matches(entry, "growth carted")
    assert not matches(entry, "cart discount")


def test_the_example_repository_is_valid_and_documents_every_feature():
    repo = parse_feature_repo(example_text(), "example")
    table = repo.tables[EXAMPLE_TABLE]
    assert list(table.features) == [f.name for f in EXAMPLE_FEATURES]
    assert table.owner and table.description
    for f in EXAMPLE_FEATURES:
        assert table.features[f.name].description == f.description
        assert table.features[f.name].tags == f.tags
    # the built-in tables are kept as they are: applying the example rebuilds none of them
    base = load_feature_repo(None)
    assert base.differences(repo) == [f"table {EXAMPLE_TABLE} added"]
    assert all(repo.fingerprint(t) == base.fingerprint(t) for t in base.tables)
    # one example per kind of aggregation a web-log customer table can have ('latest' is
    # retail's): a new aggregation of the language needs an ExampleFeature too
    kinds = {table.features[f.name].aggregation for f in EXAMPLE_FEATURES}
    language = set(typing.get_args(Feature.model_fields["aggregation"].annotation)) - {"latest"}
    assert language - kinds == set(), "add an ExampleFeature (featurestore/example_repo.py) for"
    assert kinds >= {"count", "sum", "distinct", "recency"}
