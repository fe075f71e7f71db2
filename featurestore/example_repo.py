"""``featurestore init --example``: a commented feature repository to start from, like
``feast init``.

The file is the built-in repository (``featurestore/feature_repo.yaml``: the SPEC §3 tables,
whose format notes it carries) plus one more table, :data:`EXAMPLE_TABLE`, holding one custom
feature per kind of aggregation, each with a description, an owner and tags for the catalogue
(``featurestore features``). It is written next to the store (a local store's parent folder;
the working directory for a store on S3), never over a file that says something else.

Adding an example of a new aggregation is one more :class:`ExampleFeature` in
:data:`EXAMPLE_FEATURES`; ``tests/integration/test_init_example.py`` applies the file, builds
the table and checks every feature against pandas.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ._exceptions import ConfigError
from .features.definitions import DEFAULT_REPO, parse_feature_repo
from .storage import Store

__all__ = ["EXAMPLE_FEATURES", "EXAMPLE_FILE", "EXAMPLE_TABLE", "ExampleFeature",
           "ExampleResult", "example_path", "example_text", "write_example"]

#: The table of custom features the example adds.
EXAMPLE_TABLE = "customer_example_features"
#: The example's file name.
EXAMPLE_FILE = "feature_repo.yaml"
#: Owner written on the example table and features (change it to your team).
EXAMPLE_OWNER = "growth-analytics"


@dataclasses.dataclass(frozen=True)
class ExampleFeature:
    """One custom feature of the example: its name, a comment saying what it shows about the
    language, and its definition as a YAML flow mapping (without the catalogue fields)."""

    name: str
    comment: str
    definition: str
    description: str
    tags: tuple[str, ...]


#: One feature per kind of aggregation the definition language has (append one per new kind).
EXAMPLE_FEATURES: tuple[ExampleFeature, ...] = (
    ExampleFeature(
        "sale_page_views_14d",
        "count: hits matching a filter; url_path_prefix matches the path of page_url",
        '{aggregation: count, filter: {url_path_prefix: "/sale"}, window_days: 14}',
        "Views of sale pages in the last 14 days: interest in discounts.",
        ("marketing", "discount")),
    ExampleFeature(
        "link_clicks_7d",
        "count with page_event: post_page_event 100 is a link click",
        '{aggregation: count, filter: {page_event: "100"}, window_days: 7}',
        "Link clicks in the last 7 days.", ("engagement",)),
    ExampleFeature(
        "items_bought_30d",
        "sum: a field of the products of matching hits (price or quantity)",
        '{aggregation: sum, field: quantity, filter: {event_id: "1"}, window_days: 30}',
        "Items bought in the last 30 days (sum of quantities on purchase hits).",
        ("purchase", "basket")),
    ExampleFeature(
        "products_carted_30d",
        "distinct: distinct product_id (or event_date: active days) over matching hits",
        '{aggregation: distinct, field: product_id, filter: {event_id: "12"}, '
        'window_days: 30}',
        "Distinct products added to the cart in the last 30 days.", ("cart", "basket")),
    ExampleFeature(
        "sale_days_30d",
        "distinct event_date: days with at least one matching hit",
        '{aggregation: distinct, field: event_date, filter: {url_path_prefix: "/sale"}, '
        'window_days: 30}',
        "Days with a sale-page view in the last 30 days.", ("marketing", "discount")),
    ExampleFeature(
        "days_since_last_cart_add",
        "recency: days since the latest matching event date (no window; null if none)",
        '{aggregation: recency, filter: {event_id: "12"}}',
        "Days since the customer last added something to the cart.", ("cart",)),
)

_HEADER = """\
# A feature repository to start from, written by `featurestore init --example`.
#
# It holds the built-in tables (the format notes just below explain every key) and one table
# of your own, {table}, at the end: one feature per kind of aggregation, each with
# the optional catalogue fields
#   description: what the feature means, in a sentence
#   owner:       who answers for it (a team or a person; a table's owner holds for its features)
#   tags:        words to find it by (`featurestore features --search WORD`, /dashboard/catalogue)
# Catalogue fields change no value: editing them rebuilds nothing.
#
# Next:
#   featurestore apply --repo THIS_FILE --store STORE     record it in the store
#   featurestore backfill --store STORE                   build the new table (or: ingest)
#   featurestore features --store STORE --table {table}
#
"""


def _table_block() -> str:
    lines = ["", "  # -- your own features " + "-" * 68,
             f"  {EXAMPLE_TABLE}:",
             "    source: weblog          # a source declared above",
             "    entity: customer        # one row per customer (keys: customer_id)",
             "    description: Custom behaviour features from the web logs (written by "
             "featurestore init --example).",
             f"    owner: {EXAMPLE_OWNER}",
             "    tags: [example]",
             "    features:"]
    for f in EXAMPLE_FEATURES:
        body = f.definition[1:-1]  # the flow mapping's inside, to add the catalogue fields
        lines += [f"      # {f.comment}",
                  f"      {f.name}:",
                  f"        {{{body},",
                  f"         description: {_quoted(f.description)},",
                  f"         tags: [{', '.join(f.tags)}]}}"]
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def example_text() -> str:
    """The example repository's YAML: a header, the built-in repository, the example table.

    Returns:
        The text (validated: it parses as a repository holding :data:`EXAMPLE_TABLE`).
    """
    default = DEFAULT_REPO.read_text(encoding="utf-8")
    if not default.rstrip().splitlines()[-1].startswith("  "):
        raise AssertionError("feature_repo.yaml must end inside its tables: mapping")
    text = _HEADER.format(table=EXAMPLE_TABLE) + default.rstrip("\n") + "\n" + _table_block()
    repo = parse_feature_repo(text, "the example repository")
    assert EXAMPLE_TABLE in repo.tables and len(repo.tables[EXAMPLE_TABLE].features) == len(
        EXAMPLE_FEATURES)
    return text


@dataclasses.dataclass
class ExampleResult:
    """Where the example was written, and the three commands to run next."""

    path: str
    written: bool  # False: the same file was there already
    table: str
    features: list[str]
    next_commands: list[str]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def example_path(store: Store, path: str | None = None) -> Path:
    """Where the example goes: ``path`` when given, else next to a local store (its parent
    folder), else ``./feature_repo.yaml`` (a store on S3: the repository is a local file you
    edit and apply).

    Args:
        store: the store the example is for.
        path: an explicit file path.

    Returns:
        The absolute path.
    """
    if path:
        return Path(path).expanduser().resolve()
    if store.is_local:
        return (Path(store.root).parent / EXAMPLE_FILE).resolve()
    return (Path.cwd() / EXAMPLE_FILE).resolve()


def write_example(store: Store, path: str | None = None, *, has_data: bool = False
                  ) -> ExampleResult:
    """Write the example repository (see the module docstring).

    Args:
        store: the store it is for (names the commands printed next).
        path: where to write it (default: :func:`example_path`).
        has_data: the store holds ingested data already (the second command is then
            ``backfill`` rather than ``ingest``).

    Returns:
        Where it is and the next three commands.

    Raises:
        ConfigError: a different file is at the path already (it is never overwritten).
    """
    target = example_path(store, path)
    text = example_text()
    written = True
    if target.exists():
        if target.read_text(encoding="utf-8", errors="replace") != text:
            raise ConfigError(f"{target} exists and is not the example repository; move it "
                              "away or pass --repo OTHER_FILE.yaml for the example")
        written = False
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)  # whole or absent, never half written
    url = store.url
    second = (f"featurestore backfill --store {url}" if has_data
              else f"featurestore ingest RAW_ROOT --store {url}")
    return ExampleResult(
        str(target), written, EXAMPLE_TABLE, [f.name for f in EXAMPLE_FEATURES],
        [f"featurestore apply --repo {target} --store {url}", second,
         f"featurestore features --store {url} --table {EXAMPLE_TABLE}"])
