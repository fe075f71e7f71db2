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
from typing import Any, Literal

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
from .aggs import language

__all__ = [
    "COLUMN_TYPES",
    "DEFAULT_REPO",
    "Condition",
    "Feature",
    "FeatureRepo",
    "Filter",
    "TableDef",
    "declared_columns",
    "field_type",
    "is_extended",
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


#: Keys SPEC §3a added: left out of a model's dump while unset, so every fingerprint and
#: filter key of a repository written before them stays what it was (no rebuild on upgrade).
_NEW_KEYS = ("where", "k", "expression")


def _without_unset_new_keys(data: dict) -> dict:
    for key in _NEW_KEYS:
        if key in data and data[key] is None:
            del data[key]
    return data


_Scalar = str | int | float | bool


class Condition(_Strict):
    """One ``where`` condition on a hit column (SPEC §3a); a null satisfies only is_null."""

    column: str
    op: Literal["eq", "ne", "in", "not_in", "prefix", "gt", "ge", "lt", "le", "is_null",
                "not_null"]
    value: _Scalar | list[_Scalar] | None = None

    @model_validator(mode="after")
    def _value_shape(self) -> Condition:
        if self.op in ("is_null", "not_null"):
            if self.value is not None:
                raise ValueError(f"value: {self.op} takes no value")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"value: {self.op} takes a non-empty list")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"value: {self.op} takes one value")
        return self


class Filter(_Strict):
    """Which hits a feature counts; every condition given must hold (AND)."""

    event_id: str | None = Field(None, description="the hit's event list contains this id")
    page_event: str | None = Field(None, description="post_page_event equals this value")
    url_path_prefix: str | None = Field(None, description="path of page_url starts with this")
    where: tuple[Condition, ...] | None = Field(
        None, description="SPEC §3a conditions on hit columns, all of which must hold")

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        return _without_unset_new_keys(handler(self))

    @property
    def is_empty(self) -> bool:
        return (self.event_id is None and self.page_event is None
                and self.url_path_prefix is None and not self.where)

    @functools.cached_property  # asked for per column and feature on every as-of date
    def key(self) -> str:
        """Short deterministic name, used in daily-aggregate column names."""
        if self.is_empty:
            return "all"
        blob = json.dumps(self.model_dump(), sort_keys=True).encode()
        return "f" + hashlib.sha1(blob).hexdigest()[:10]


class Feature(_Strict):
    """One feature: an aggregation over a window of days ending on the as-of date."""

    aggregation: Literal["count", "sum", "mean", "min", "max", "stddev", "distinct",
                         "approx_distinct", "first", "last", "top_k", "recency",
                         "latest"] | None = None
    unit: Literal["hit", "product"] = Field(
        "hit", description="count: hits, or (hit, product) pairs")
    field: str | None = Field(None, description="the field aggregated (count/recency: none)")
    filter: Filter = Filter()
    window_days: int | None = Field(None, ge=1, le=3660,
                                    description="absent: all history up to the as-of date")
    k: int | None = Field(None, ge=1, le=1000, description="top_k: how many values")
    expression: str | None = Field(None, description="instead of aggregation: + - * / over "
                                   "other features of the table")
    description: str = ""
    # catalogue metadata (optional): who answers for the feature, and words to find it by
    owner: str | None = Field(None, description="who answers for the feature (team or person)")
    tags: tuple[str, ...] = Field((), description="words to find the feature by")

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        return _without_unset_new_keys(handler(self))

    @model_validator(mode="after")
    def _shape(self) -> Feature:
        if self.expression is not None:
            if self.aggregation is not None:
                raise ValueError("expression: a feature has an aggregation or an expression, "
                                 "not both")
            extra = [k for k in ("field", "window_days", "k") if getattr(self, k) is not None]
            if extra or not self.filter.is_empty or self.unit != "hit":
                raise ValueError(f"expression: an expression feature takes no "
                                 f"{', '.join(extra) or 'filter or unit'}")
            try:
                language.parse_expression(self.expression)
            except ValueError as exc:
                raise ValueError(f"expression: {exc}") from None
            return self
        if self.aggregation is None:
            raise ValueError("aggregation: required (or an expression)")
        if self.aggregation in ("recency", "latest") and self.window_days is not None:
            raise ValueError(f"window_days: a {self.aggregation} feature has no window "
                             "(it looks back over all history)")
        if self.aggregation not in ("count", "recency") and not self.field:
            raise ValueError(f"field: required for a {self.aggregation} feature")
        if self.aggregation in ("count", "recency") and self.field:
            raise ValueError(f"field: not allowed for a {self.aggregation} feature")
        if (self.aggregation == "top_k") != (self.k is not None):
            raise ValueError("k: required for a top_k feature" if self.k is None
                             else f"k: not allowed for a {self.aggregation} feature")
        return self


#: Catalogue metadata: optional fields that describe a table or feature without changing what
#: it computes. Left out of a table's build fingerprint (editing them rebuilds nothing) and, while
#: absent, out of the repository's fingerprint (repositories written before they existed keep
#: their fingerprints).
METADATA_FIELDS = ("owner", "tags")
TABLE_METADATA_FIELDS = ("description", "owner", "tags")


class TableDef(_Strict):
    source: str
    entity: str
    features: dict[str, Feature] = Field(min_length=1)
    description: str = Field("", description="what a row of the table is, for the catalogue")
    owner: str | None = Field(None, description="who answers for the table")
    tags: tuple[str, ...] = Field((), description="words to find the table by")

    def definition(self) -> dict[str, Any]:
        """What the table computes, without its catalogue metadata (feature descriptions,
        which were hashed before the metadata fields existed, stay in).

        Returns:
            The table's fields as JSON-able data.
        """
        data = self.model_dump(exclude=set(TABLE_METADATA_FIELDS))
        for feature in data["features"].values():
            for name in METADATA_FIELDS:
                feature.pop(name)
        return data

    def metadata_differences(self, other: TableDef) -> list[str]:
        """Features (and the table itself, as ``"(table)"``) whose catalogue metadata differs
        while their definitions are equal."""
        out = ["(table)"] if any(getattr(self, n) != getattr(other, n)
                                 for n in TABLE_METADATA_FIELDS) else []
        for name in self.features.keys() & other.features.keys():
            a, b = self.features[name], other.features[name]
            if a != b and a.model_copy(update=dict.fromkeys(METADATA_FIELDS)) == \
                    b.model_copy(update=dict.fromkeys(METADATA_FIELDS)):
                out.append(name)
        return sorted(out)


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
    def _dump(self, handler):
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
            declared = declared_columns(self, table.source) if kind == "weblog" else {}
            for fname, f in table.features.items():
                _check_feature(f"{where}.features.{fname}", f, kind, keys, declared)
            _check_expressions(where, table, kind)
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
        """Changes when the table's definition changes (so its partitions must be rebuilt);
        its catalogue metadata (owner, tags, the table's description) is not part of it."""
        blob = json.dumps(self.tables[table].definition(), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:16]

    @property
    def repo_fingerprint(self) -> str:
        """Changes when any source, entity, table or feature definition changes, or any
        catalogue metadata that is given (absent metadata is left out of the hash, so a
        repository that gives none keeps the fingerprint it had before the fields existed)."""
        data = self.model_dump()
        for table in data["tables"].values():
            for feature in table["features"].values():
                _drop_absent(feature, METADATA_FIELDS)
            _drop_absent(table, TABLE_METADATA_FIELDS)
        blob = json.dumps(data, sort_keys=True).encode()
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
            described = a.metadata_differences(b)
            out += [f"{where}: feature {f} changed" for f in a.features
                    if f in b.features and a.features[f] != b.features[f]
                    and f not in described]
            out += [f"{where}: description, owner or tags of "
                    f"{'the table' if f == '(table)' else 'feature ' + f} changed"
                    for f in described]
        return out


def declared_columns(repo: FeatureRepo, source: str) -> dict[str, str]:
    """A source's declared columns (SPEC §3a), name -> type; {} when it declares none.

    Args:
        repo: the repository.
        source: the source's name.

    Returns:
        Column name -> ``string`` / ``int`` / ``float`` / ``bool``.
    """
    return repo.declared_columns(source)


#: The aggregations SPEC §3 had (each served by the original engine in its original shapes).
_LEGACY_WEBLOG = {"count": None, "sum": {"price", "quantity"},
                  "distinct": {"product_id", "event_date"}, "recency": None}


def is_extended(f: Feature, kind: str = "weblog") -> bool:
    """Whether a feature needs the SPEC §3a engine (:mod:`.aggs`) rather than the original one.

    Every feature a SPEC §3 repository could hold is not extended, so its tables keep the
    original engine and their bytes.

    Args:
        f: the feature.
        kind: its table's source kind.

    Returns:
        True for an expression, a new aggregation, a ``where`` filter, a lifetime count, sum or
        distinct, or a field only §3a allows.
    """
    if kind != "weblog":
        return f.expression is not None
    if f.expression is not None or f.aggregation not in _LEGACY_WEBLOG or f.filter.where:
        return True
    if f.aggregation == "recency":
        return False
    fields = _LEGACY_WEBLOG[f.aggregation]
    return f.window_days is None or (fields is not None and f.field not in fields)


def field_type(f: Feature, declared: dict[str, str]) -> str | None:
    """The type of a feature's field (None for count / recency / expressions, or unknown)."""
    if not f.field:
        return None
    return declared.get(f.field) or language.BUILTIN_FIELDS.get(f.field)


def feature_type(f: Feature, declared: dict[str, str]) -> str:
    """The type of a weblog feature's values (``int``, ``float``, ``string``, ``bool``,
    ``date``, ``list``); expressions are ``float``."""
    if f.expression is not None:
        return "float"
    if f.aggregation == "sum" and f.field == "price":
        return "float"
    return language.output_type(f.aggregation, field_type(f, declared))


def columns_read(table: TableDef, declared: dict[str, str]) -> dict[str, list[str]]:
    """Which of a table's features read each declared column: as their field, in a ``where``
    condition, or through the features an expression names (transitively).

    Args:
        table: the table.
        declared: its source's declared columns (name -> type).

    Returns:
        Every declared column -> the names of the features reading it, sorted (maybe empty).
    """
    direct: dict[str, set[str]] = {}
    for name, f in table.features.items():
        used = {f.field} if f.field else set()
        used |= {c.column for c in f.filter.where or ()}
        direct[name] = used & set(declared)
    resolved: dict[str, set[str]] = {}

    def reads(name: str, seen: frozenset[str]) -> set[str]:
        if name in resolved:
            return resolved[name]
        f = table.features.get(name)
        out = set(direct.get(name, ()))
        if f is not None and f.expression is not None and name not in seen:
            for ref in language.references(language.parse_expression(f.expression)):
                out |= reads(ref, seen | {name})
        resolved[name] = out
        return out

    by_column: dict[str, list[str]] = {c: [] for c in declared}
    for name in table.features:
        for c in reads(name, frozenset()):
            by_column[c].append(name)
    return {c: sorted(names) for c, names in by_column.items()}


def _check_extended(where: str, f: Feature, declared: dict[str, str]) -> None:
    """SPEC §3a rules of a weblog feature the original engine does not serve."""
    if f.window_days is not None and f.window_days > 365:
        raise ValueError(f"{where}.window_days: at most 365 days (or none: all history)")
    if f.unit == "product" and f.aggregation != "count":
        raise ValueError(f"{where}.unit: only a count takes a unit; a field of the product "
                         "list (price, quantity, product_id) aggregates the (hit, product) "
                         "pairs by itself")
    if f.field is not None:
        ftype = field_type(f, declared)
        if ftype is None:
            raise ValueError(
                f"{where}.field: unknown column {f.field!r}; declare it under the source's "
                f"columns or use one of {', '.join([*declared, *language.BUILTIN_FIELDS])}")
        if f.aggregation in language.NUMERIC_AGGREGATIONS and ftype not in ("int", "float"):
            raise ValueError(f"{where}.aggregation: {f.aggregation!r} needs a numeric field; "
                             f"{f.field!r} is {ftype}")
    columns = {**language.WHERE_BUILTINS, **declared}
    for i, cond in enumerate(f.filter.where or ()):
        at = f"{where}.filter.where.{i}"
        ctype = columns.get(cond.column)
        if ctype is None:
            raise ValueError(f"{at}.column: unknown column {cond.column!r}; one of "
                             f"{', '.join(columns)}")
        if cond.op == "prefix" and ctype != "string":
            raise ValueError(f"{at}.op: prefix needs a string column; {cond.column!r} is "
                             f"{ctype}")
        if cond.op in ("gt", "ge", "lt", "le") and ctype == "bool":
            raise ValueError(f"{at}.op: {cond.op} does not compare bool column "
                             f"{cond.column!r}")
        values = cond.value if isinstance(cond.value, list) else (
            [] if cond.value is None else [cond.value])
        for v in values:
            try:
                language.coerce(v, ctype)
            except ValueError as exc:
                raise ValueError(f"{at}.value: {exc} (column {cond.column!r} is "
                                 f"{ctype})") from None


def _check_expressions(where: str, table: TableDef, kind: str) -> None:
    """Expression features name numeric features of the same table, without a cycle."""
    exprs = {n: language.references(language.parse_expression(f.expression))
             for n, f in table.features.items() if f.expression is not None}
    for name, refs in exprs.items():
        at = f"{where}.features.{name}.expression"
        for ref in sorted(refs):
            target = table.features.get(ref)
            if target is None:
                raise ValueError(f"{at}: unknown feature {ref!r} (features of this table: "
                                 f"{', '.join(table.features)})")
            if target.aggregation in ("top_k", "latest") or (
                    target.aggregation in ("min", "max", "first", "last")
                    and target.field in ("product_id", "event_date")):
                raise ValueError(f"{at}: feature {ref!r} is not numeric")
    # cycles: depth-first over the expression graph
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2 or name not in exprs:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*path[path.index(name):], name])
            raise ValueError(f"{where}.features.{path[0]}.expression: a cycle ({cycle})")
        state[name] = 1
        for ref in sorted(exprs[name]):
            visit(ref, [*path, name])
        state[name] = 2

    for name in exprs:
        visit(name, [])


def _drop_absent(data: dict[str, Any], names: tuple[str, ...]) -> None:
    """Remove the metadata fields left at their defaults (empty or None) from ``data``."""
    for name in names:
        if not data.get(name):
            data.pop(name, None)


def _check_feature(where: str, f: Feature, kind: str, keys: list[str],
                   declared: dict[str, str] | None = None) -> None:
    if f.expression is not None:
        if kind != "weblog" or len(keys) == 2:
            raise ValueError(f"{where}.expression: expressions are for weblog customer tables")
        return
    if kind == "weblog" and is_extended(f, kind):
        if len(keys) == 2:
            raise ValueError(f"{where}.aggregation: a customer x product table holds "
                             "'count' (unit: product) or 'sum' features only")
        _check_extended(where, f, declared or {})
        return
    if kind == "retail" and f.aggregation not in ("count", "sum", "distinct", "recency",
                                                  "latest"):
        raise ValueError(f"{where}.aggregation: retail features are distinct, sum, recency or "
                         f"latest, not {f.aggregation!r}")
    if kind == "retail" and f.aggregation != "recency" and f.aggregation != "latest" \
            and f.window_days is None:
        raise ValueError(f"{where}.window_days: required for a retail {f.aggregation} feature")
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
