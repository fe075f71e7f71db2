"""The feature repository: feature definitions as data (SPEC §3), validated with pydantic.

A repository YAML declares ``sources``, ``entities`` and ``tables``; each table lists its
features (aggregation, filter, window). The SPEC §3 features ship as the defaults in
``featurestore/feature_repo.yaml``; a user adds a feature by editing a copy and naming it with
``featurestore apply --repo FILE --store S`` (recorded in the store), then runs
``featurestore backfill``.

Errors name the bad key, e.g. ``tables.customer_features.features.cart_adds_30d.window_days``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_serializer,
    model_validator,
)

from .._exceptions import ConfigError

__all__ = [
    "COLUMN_TYPES",
    "DEFAULT_REPO",
    "Feature",
    "FeatureRepo",
    "Filter",
    "TableDef",
    "load_feature_repo",
    "parse_feature_repo",
]

DEFAULT_REPO = Path(__file__).resolve().parents[1] / "feature_repo.yaml"

#: Fields each source's aggregations may name.
SUM_FIELDS = {"weblog": {"price", "quantity"}, "retail": {"quantity", "revenue", "unit_price"}}
DISTINCT_FIELDS = {"weblog": {"product_id", "event_date"},
                   "retail": {"invoice_no", "stock_code", "event_date"}}
LATEST_FIELDS = {"retail": {"country"}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Filter(_Strict):
    """Which hits a feature counts; every condition given must hold (AND)."""

    event_id: str | None = Field(None, description="the hit's event list contains this id")
    page_event: str | None = Field(None, description="post_page_event equals this value")
    url_path_prefix: str | None = Field(None, description="path of page_url starts with this")

    @property
    def is_empty(self) -> bool:
        return self.event_id is None and self.page_event is None and self.url_path_prefix is None

    @functools.cached_property  # asked for per column and feature on every as-of date
    def key(self) -> str:
        """Short deterministic name, used in daily-aggregate column names."""
        if self.is_empty:
            return "all"
        blob = json.dumps(self.model_dump(), sort_keys=True).encode()
        return "f" + hashlib.sha1(blob).hexdigest()[:10]


class Feature(_Strict):
    """One feature: an aggregation over a window of days ending on the as-of date."""

    aggregation: Literal["count", "sum", "distinct", "recency", "latest"]
    unit: Literal["hit", "product"] = Field(
        "hit", description="count: hits, or (hit, product) pairs")
    field: str | None = Field(None, description="sum/distinct/latest: the field aggregated")
    filter: Filter = Filter()
    window_days: int | None = Field(None, ge=1, le=3660)
    description: str = ""

    @model_validator(mode="after")
    def _shape(self) -> Feature:
        if self.aggregation in ("recency", "latest"):
            if self.window_days is not None:
                raise ValueError(f"window_days: a {self.aggregation} feature has no window "
                                 "(it looks back over all history)")
        elif self.window_days is None:
            raise ValueError(f"window_days: required for a {self.aggregation} feature")
        if self.aggregation in ("sum", "distinct", "latest") and not self.field:
            raise ValueError(f"field: required for a {self.aggregation} feature")
        if self.aggregation in ("count", "recency") and self.field:
            raise ValueError(f"field: not allowed for a {self.aggregation} feature")
        return self


class TableDef(_Strict):
    source: str
    entity: str
    features: dict[str, Feature] = Field(min_length=1)


#: The types a declared column may have (SPEC §3a): string, int (int64), float (float64), bool.
COLUMN_TYPES = ("string", "int", "float", "bool")
#: Names a declared column may not take: the seven SPEC §1 columns and the store's own
#: columns of ``events`` and of the feature engine (a declared one would shadow them).
RESERVED_COLUMNS = frozenset({
    "hit_time_gmt", "customer_id", "page_url", "post_page_event", "post_event_list",
    "post_product_list", "exclude_hit", "event_date", "as_of", "product_id", "price",
    "quantity"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class Source(_Strict):
    kind: str = Field(description="weblog, retail, or the dotted class path of a Source")
    table: str
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="weblog: drop columns kept besides the seven of SPEC §1, name -> type")

    @model_validator(mode="after")
    def _known(self) -> Source:
        from ..plugins import SOURCE_CLASS_FOR_TYPE, is_known

        if not is_known(self.kind, SOURCE_CLASS_FOR_TYPE):
            raise ValueError(f"kind: unknown source kind {self.kind!r}; use one of "
                             f"{', '.join(SOURCE_CLASS_FOR_TYPE)} or a dotted class path")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):  # noqa: ANN001, ANN202 - pydantic's serializer protocol
        # a source without declared columns dumps as before: fingerprints of existing
        # repositories (and the stores that recorded them) do not change
        out = handler(self)
        if isinstance(out, dict) and not out.get("columns"):
            out.pop("columns", None)
        return out


class Entity(_Strict):
    keys: list[str] = Field(min_length=1)


class FeatureRepo(_Strict):
    """A whole repository. :meth:`tables_for` gives the tables built from one source kind."""

    sources: dict[str, Source]
    entities: dict[str, Entity]
    tables: dict[str, TableDef]

    @model_validator(mode="after")
    def _references(self) -> FeatureRepo:
        for tname, table in self.tables.items():
            where = f"tables.{tname}"
            if table.source not in self.sources:
                raise ValueError(f"{where}.source: unknown source {table.source!r} "
                                 f"(declared: {', '.join(self.sources)})")
            if table.entity not in self.entities:
                raise ValueError(f"{where}.entity: unknown entity {table.entity!r} "
                                 f"(declared: {', '.join(self.entities)})")
            kind = self.sources[table.source].kind
            keys = self.entities[table.entity].keys
            if kind not in SUM_FIELDS:  # a plugin source checks its own tables
                continue
            allowed_keys = (["customer_id"], ["customer_id", "product_id"]) if kind == "weblog" \
                else (["customer_id"],)
            if keys not in [list(k) for k in allowed_keys]:
                raise ValueError(f"{where}.entity: a {kind} table is keyed by one of "
                                 f"{[list(k) for k in allowed_keys]}, not {keys}")
            for fname, f in table.features.items():
                _check_feature(f"{where}.features.{fname}", f, kind, keys)
        return self

    @model_validator(mode="after")
    def _declared(self) -> FeatureRepo:
        # here, not on Source: the error names the whole key (sources.<name>.columns.<col>)
        for sname, source in self.sources.items():
            where = f"sources.{sname}.columns"
            if source.columns and source.kind != "weblog":
                raise ValueError(f"{where}: only a weblog source declares columns, not a "
                                 f"{source.kind} one")
            for name, kind in source.columns.items():
                if not isinstance(name, str) or not _IDENTIFIER.match(name):
                    raise ValueError(f"{where}.{name}: a column name is letters, digits and _ "
                                     "(not starting with a digit, at most 128 characters)")
                if name in RESERVED_COLUMNS:
                    raise ValueError(f"{where}.{name}: {name!r} is a column the store already "
                                     "has (SPEC §1 or events); declare only other drop columns")
                if kind not in COLUMN_TYPES:
                    raise ValueError(f"{where}.{name}: unknown type {kind!r}; use one of "
                                     f"{', '.join(COLUMN_TYPES)}")
        return self

    def source_kind(self, table: str) -> str:
        return self.sources[self.tables[table].source].kind

    def keys(self, table: str) -> list[str]:
        return list(self.entities[self.tables[table].entity].keys)

    def declared_columns(self, source: str | None = None) -> dict[str, str]:
        """The columns a weblog source keeps besides the seven of SPEC §1, in declared order.

        Args:
            source: a source name; None: the repository's first ``weblog`` source.

        Returns:
            Column name -> type (``string``, ``int``, ``float``, ``bool``); empty when none.
        """
        if source is None:
            source = next((n for n, s in self.sources.items() if s.kind == "weblog"), None)
        if source is None or source not in self.sources:
            return {}
        return dict(self.sources[source].columns)

    def tables_for(self, kind: str) -> dict[str, TableDef]:
        return {n: t for n, t in self.tables.items() if self.sources[t.source].kind == kind}

    def fingerprint(self, table: str) -> str:
        """Changes when the table's definition changes (so its partitions must be rebuilt)."""
        blob = json.dumps(self.tables[table].model_dump(), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:16]

    @property
    def repo_fingerprint(self) -> str:
        """Changes when any source, entity, table or feature definition changes."""
        blob = json.dumps(self.model_dump(), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:16]

    def differences(self, other: FeatureRepo) -> list[str]:
        """What ``other`` changes against this repository, one short phrase per change.

        Args:
            other: the repository compared with this one (e.g. a command's against the
                recorded one).

        Returns:
            Phrases like ``"table customer_features: feature cart_adds_30d added"``; empty
            when the two define the same things.
        """
        out: list[str] = []
        for kind, mine, theirs in (("source", self.sources, other.sources),
                                   ("entity", self.entities, other.entities)):
            out += [f"{kind} {n} added" for n in theirs if n not in mine]
            out += [f"{kind} {n} removed" for n in mine if n not in theirs]
            out += [f"{kind} {n} changed" for n in mine if n in theirs and mine[n] != theirs[n]]
        out += [f"table {n} added" for n in other.tables if n not in self.tables]
        out += [f"table {n} removed" for n in self.tables if n not in other.tables]
        for name in [n for n in self.tables if n in other.tables]:
            a, b = self.tables[name], other.tables[name]
            where = f"table {name}"
            if (a.source, a.entity) != (b.source, b.entity):
                out.append(f"{where}: source or entity changed")
            out += [f"{where}: feature {f} added" for f in b.features if f not in a.features]
            out += [f"{where}: feature {f} removed" for f in a.features if f not in b.features]
            out += [f"{where}: feature {f} changed" for f in a.features
                    if f in b.features and a.features[f] != b.features[f]]
        return out


def _check_feature(where: str, f: Feature, kind: str, keys: list[str]) -> None:
    if f.aggregation == "sum" and f.field not in SUM_FIELDS[kind]:
        raise ValueError(f"{where}.field: {kind} sums one of {sorted(SUM_FIELDS[kind])}, "
                         f"not {f.field!r}")
    if f.aggregation == "distinct" and f.field not in DISTINCT_FIELDS[kind]:
        raise ValueError(f"{where}.field: {kind} counts distinct "
                         f"{sorted(DISTINCT_FIELDS[kind])}, not {f.field!r}")
    if f.aggregation == "latest" and f.field not in LATEST_FIELDS.get(kind, set()):
        raise ValueError(f"{where}.aggregation: 'latest' is only for "
                         f"{sorted(LATEST_FIELDS.get(kind, set())) or 'no'} {kind} fields")
    if kind == "retail" and not f.filter.is_empty:
        raise ValueError(f"{where}.filter: retail features take no filter")
    if len(keys) == 2:  # customer x product: per-product counts and sums only
        if f.aggregation not in ("count", "sum") or (
                f.aggregation == "count" and f.unit != "product"):
            raise ValueError(f"{where}.aggregation: a customer x product table holds "
                             "'count' (unit: product) or 'sum' features only")


def _error_message(path: str, exc: ValidationError) -> str:
    problems = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        # Our validators put the bad key first ("window_days: ..."); join it onto the location.
        head, sep, rest = msg.partition(": ")
        if sep and " " not in head:
            if "." in head:  # already a full path from the repository validator
                loc, msg = head, rest
            else:
                loc, msg = ".".join(p for p in (loc, head) if p), rest
        problems.append(f"{loc}: {msg}")
    return f"feature repository {path}: " + "; ".join(problems)


def load_feature_repo(path: str | None = None) -> FeatureRepo:
    """Load and validate a repository YAML (``None``: the shipped SPEC §3 defaults).

    Parsed once per file version (path, size, mtime): a daily materialization would otherwise
    spend ~20 ms of its time in the YAML parser. Treat the result as read-only.
    """
    source = Path(path) if path else DEFAULT_REPO
    try:
        stat = source.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read feature repository {source}: {exc}") from None
    return _load_feature_repo(source, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _load_feature_repo(source: Path, size: int, mtime_ns: int) -> FeatureRepo:
    try:
        text = source.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read feature repository {source}: {exc}") from None
    return parse_feature_repo(text, str(source))


@functools.lru_cache(maxsize=16)
def parse_feature_repo(text: str, origin: str) -> FeatureRepo:
    """Validate a repository given as YAML text (a file's, or the copy recorded in a store).

    Args:
        text: the YAML document.
        origin: where it came from, for error messages (a path or a store URL).

    Returns:
        The validated repository (cached per text: treat it as read-only).
    """
    try:
        raw = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise ConfigError(f"feature repository {origin} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"feature repository {origin} must be a mapping with sources, "
                          "entities and tables")
    try:
        return FeatureRepo.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_error_message(origin, exc)) from None
