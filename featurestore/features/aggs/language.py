"""The SPEC §3a definition language: field types, ``where`` conditions and expressions.

Pure helpers used by the repository validator (:mod:`..definitions`) and the aggregation engine
(:mod:`.engine`); nothing here reads the store. An expression is parsed by a small recursive
descent parser into a tuple tree (never ``eval``):

    expr := term (("+" | "-") term)*      term := unary (("*" | "/") unary)*
    unary := "-" unary | primary          primary := NUMBER | NAME | "(" expr ")"
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy loads with the first evaluation, not with the repository
    import numpy as np

__all__ = [
    "AGGREGATIONS", "BUILTIN_FIELDS", "NUMERIC_AGGREGATIONS", "WHERE_BUILTINS", "Expr",
    "evaluate", "output_type", "parse_expression", "references",
]

#: Every aggregation of SPEC §3a (``latest`` stays a retail aggregation).
AGGREGATIONS = ("count", "sum", "mean", "min", "max", "stddev", "distinct", "approx_distinct",
                "first", "last", "top_k", "recency")
#: Aggregations that need an int or float field.
NUMERIC_AGGREGATIONS = ("sum", "mean", "stddev")
#: Fields every weblog source has besides its declared columns, with their type. ``price``,
#: ``quantity`` and ``product_id`` come from the product list: aggregating them aggregates the
#: (hit, product) pairs of the matching hits.
BUILTIN_FIELDS = {"price": "float", "quantity": "int", "product_id": "string",
                  "event_date": "date"}
PAIR_FIELDS = ("price", "quantity", "product_id")
#: Hit columns a ``where`` condition may name besides the declared columns.
WHERE_BUILTINS = {"page_url": "string", "post_page_event": "string",
                  "post_event_list": "string", "post_product_list": "string",
                  "hit_time_gmt": "int"}
COLUMN_TYPES = ("string", "int", "float", "bool")

Expr = tuple  # ("num", float) | ("ref", name) | ("neg", e) | ("bin", op, a, b)

_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
                    r"|([A-Za-z_][A-Za-z0-9_]*)|(.))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing blanks left
            break
        num, name, other = m.groups()
        if num is not None:
            out.append(("num", num))
        elif name is not None:
            out.append(("name", name))
        elif other in "+-*/()":
            out.append(("op", other))
        else:
            raise ValueError(f"unexpected character {other!r} at position {m.start(3) + 1}")
        pos = m.end()
    return out


def parse_expression(text: str) -> Expr:
    """Parse an expression over feature names.

    Args:
        text: e.g. ``"revenue_30d / (purchases_30d + 1)"``.

    Returns:
        The expression tree.

    Raises:
        ValueError: with a short message naming the problem.
    """
    toks = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(toks):
            raise ValueError("ends too early")
        pos += 1
        return toks[pos - 1]

    def expr() -> Expr:
        node = term()
        while peek() in (("op", "+"), ("op", "-")):
            node = ("bin", take()[1], node, term())
        return node

    def term() -> Expr:
        node = unary()
        while peek() in (("op", "*"), ("op", "/")):
            node = ("bin", take()[1], node, unary())
        return node

    def unary() -> Expr:
        if peek() == ("op", "-"):
            take()
            return ("neg", unary())
        if peek() == ("op", "+"):
            take()
            return unary()
        return primary()

    def primary() -> Expr:
        kind, value = take()
        if kind == "num":
            return ("num", float(value))
        if kind == "name":
            return ("ref", value)
        if value == "(":
            node = expr()
            if take() != ("op", ")"):
                raise ValueError("missing ')'")
            return node
        raise ValueError(f"unexpected {value!r}")

    if not toks:
        raise ValueError("empty expression")
    tree = expr()
    if pos != len(toks):
        raise ValueError(f"unexpected {toks[pos][1]!r} after a complete expression")
    return tree


def references(tree: Expr) -> set[str]:
    """The feature names an expression reads."""
    if tree[0] == "ref":
        return {tree[1]}
    if tree[0] == "num":
        return set()
    if tree[0] == "neg":
        return references(tree[1])
    return references(tree[2]) | references(tree[3])


def evaluate(tree: Expr, columns: dict[str, tuple[np.ndarray, np.ndarray]], size: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate an expression over columns given as (float64 values, valid mask).

    Args:
        tree: the parsed expression.
        columns: feature name -> (values, valid), each of length ``size``.
        size: the number of rows.

    Returns:
        (values, valid): null where an operand is null or a divisor is 0.
    """
    import numpy as np

    kind = tree[0]
    if kind == "num":
        return np.full(size, tree[1]), np.ones(size, dtype=bool)
    if kind == "ref":
        return columns[tree[1]]
    if kind == "neg":
        v, ok = evaluate(tree[1], columns, size)
        return -v, ok
    a, aok = evaluate(tree[2], columns, size)
    b, bok = evaluate(tree[3], columns, size)
    ok = aok & bok
    with np.errstate(all="ignore"):
        if tree[1] == "+":
            v = a + b
        elif tree[1] == "-":
            v = a - b
        elif tree[1] == "*":
            v = a * b
        else:
            ok = ok & (b != 0)
            v = np.where(ok, a / np.where(b == 0, 1.0, b), 0.0)
    return np.where(ok, v, 0.0), ok


def output_type(aggregation: str, field_type: str | None) -> str:
    """The type of a feature's values: ``int``, ``float``, ``string``, ``bool``, ``date`` or
    ``list`` (top_k), per SPEC §3a."""
    if aggregation in ("count", "distinct", "approx_distinct", "recency"):
        return "int"
    if aggregation == "sum":
        return "int" if field_type in ("int", "bool") else "float"
    if aggregation in ("mean", "stddev"):
        return "float"
    if aggregation == "top_k":
        return "list"
    return field_type or "string"


def coerce(value: Any, column_type: str) -> Any:
    """A condition's value as the column's type (ValueError when it is not one)."""
    if column_type in ("string",):
        if isinstance(value, bool | dict | list):
            raise ValueError(f"{value!r} is not a string")
        return str(value)
    if column_type == "int":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{value!r} is not an int")
        out = int(str(value)) if isinstance(value, str) else int(value)
        if isinstance(value, float) and value != out:
            raise ValueError(f"{value!r} is not an int")
        return out
    if column_type == "float":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{value!r} is not a number")
        return float(value)
    if column_type == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true"):
            return True
        if text in ("0", "false"):
            return False
        raise ValueError(f"{value!r} is not a bool")
    raise ValueError(f"a {column_type} column takes no conditions")
