"""Conditions of the scoring model: parsing, the Python evaluator and the polars evaluator.

A condition is ``{field: F, OP: value}`` (a *comparison*) or ``{all: [...]}``, ``{any: [...]}``,
``{not: {...}}``. It is read against a *record*: a Segment message or a contact as a nested
mapping (``{"type": "track", "event": "...", "userId": ..., "properties": {...},
"context": {...}, "traits": {...}, "account": {...}}``).

Fields. ``F`` is ``type``, ``event``, ``userId``, ``anonymousId``, ``messageId``, or a dotted
path under ``properties``, ``context``, ``traits`` or ``account`` (``traits.title``,
``context.campaign.source``). The path walks nested mappings only (not list positions).
``traits.email_domain`` is derived when traits carry no ``email_domain`` of their own: the
lower-cased text after the last ``@`` of ``traits.email``.

Values are read as JSON values. A field that is absent, ``null``, or a non-finite float is
*missing*. Every present value has a *text*: a string is itself, ``true``/``false`` for
booleans, the JSON spelling of a number (``3``, ``2.5``, ``1e+20``, ``1e-7``), compact JSON
for objects and lists (``{"a":1}``, ``["x",2]``). Its *number* is the text read as a decimal
number when the text is one (``"42"``, ``-3.5``, ``1e3``; not ``"inf"``, not ``" 3"``), and
its *truth* is the text compared case-insensitively with ``true``/``false``.

Operators (on a missing field every comparison is false, except ``exists: false``):

- ``equals: V`` — ``V`` boolean: the truth equals ``V``; ``V`` a number: the number equals
  ``V``; ``V`` a string: the text equals ``V`` (case-sensitive).
- ``in: [V, ...]`` or ``in: list_name`` — ``equals`` any of them (a name is looked up in the
  model's ``lists``).
- ``matches: RE`` — the regular expression (RE2 syntax) is found anywhere in the text.
- ``contains: V`` — for a non-empty list, some element ``equals`` ``V``; otherwise the text of
  ``V`` is a substring of the text.
- ``gt, gte, lt, lte: N`` and ``between: [LO, HI]`` (inclusive) — on the number; false when the
  value has none.
- ``exists: true|false`` — whether the field is present (and not null).

``all`` is true when every item is, ``any`` when one is, ``not`` inverts (so ``not`` of a
comparison on a missing field is true).

The polars evaluator (:func:`to_expr`) reads a frame with JSON-text columns ``properties``,
``context``, ``traits``, ``account`` (a JSON object as a string, or null) and string columns
``type``, ``event``, ``user_id``, ``anonymous_id``, ``message_id``; ``userId`` maps to
``user_id`` and so on. ``json_path_match`` gives exactly the *text* above, so both evaluators
agree on every record whose columns are the JSON encoding of its parts. Regular expressions
follow RE2 (``\\d``, ``\\w``, ``\\s``, ``\\b`` are ASCII); the polars side is given the same
meaning by :func:`~leadscore.core.condition_values.polars_pattern`. One known limit: polars'
JSON reader may round a number written with 16-17 significant digits to a neighbouring float
(numbers with up to 15 significant digits are read exactly).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, get_args

import orjson
import polars as pl
import re2

from leadscore.core.condition_values import (
    EMAIL_DOMAIN,
    MISSING,
    NUMBER_PATTERN,
    field_value,
    is_non_finite,
    is_number,
    polars_pattern,
    text_equals,
    text_number,
    value_text,
)
from leadscore.core.types import AllOf, AnyOf, Comparison, Condition, Not, Operator

__all__ = [
    "MISSING",
    "ConditionError",
    "check_regex",
    "ensure_columns",
    "evaluate",
    "field_value",
    "parse_condition",
    "referenced_fields",
    "to_expr",
    "value_text",
]

OPERATORS: Final[tuple[str, ...]] = get_args(Operator)
JSON_ROOTS: Final[tuple[str, ...]] = ("properties", "context", "traits", "account")
TOP_LEVEL_COLUMNS: Final[dict[str, str]] = {
    "type": "type",
    "event": "event",
    "userId": "user_id",
    "anonymousId": "anonymous_id",
    "messageId": "message_id",
}
_SEGMENT = re.compile(r"[\w$ :/-]+")


class ConditionError(ValueError):
    """A condition in the model file is malformed; ``path`` is its key path in the file."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


# --------------------------------------------------------------------------- parsing


def parse_condition(raw: object, lists: Mapping[str, Sequence[Any]], path: str) -> Condition:
    """Build the condition tree from its YAML form; raise :class:`ConditionError` when malformed."""
    if not isinstance(raw, Mapping):
        raise ConditionError(path, f"a condition must be a mapping, got {_type_name(raw)}")
    keys = set(raw)
    combinators = keys & {"all", "any", "not"}
    if combinators:
        if len(keys) != 1:
            others = ", ".join(sorted(str(k) for k in keys - combinators)) or ", ".join(sorted(combinators))
            raise ConditionError(path, f"'{sorted(combinators)[0]}' cannot be combined with other keys ({others})")
        (key,) = combinators
        if key == "not":
            return Not(parse_condition(raw["not"], lists, f"{path}.not"))
        items = raw[key]
        if not isinstance(items, list) or not items:
            raise ConditionError(f"{path}.{key}", f"'{key}' takes a non-empty list of conditions")
        parsed = tuple(parse_condition(item, lists, f"{path}.{key}[{i}]") for i, item in enumerate(items))
        return AllOf(parsed) if key == "all" else AnyOf(parsed)
    return _parse_comparison(raw, lists, path)


def _parse_comparison(raw: Mapping[Any, Any], lists: Mapping[str, Sequence[Any]], path: str) -> Comparison:
    unknown = [str(k) for k in raw if k != "field" and k not in OPERATORS]
    if unknown:
        allowed = ", ".join(("field", *OPERATORS, "all", "any", "not"))
        raise ConditionError(path, f"unknown key '{unknown[0]}' (allowed: {allowed})")
    if "field" not in raw:
        raise ConditionError(path, "a comparison needs 'field' (or use all / any / not)")
    field = raw["field"]
    if not isinstance(field, str):
        raise ConditionError(f"{path}.field", f"expected a field path, got {_type_name(field)}")
    _check_field(field, f"{path}.field")
    ops = [k for k in raw if k in OPERATORS]
    if not ops:
        raise ConditionError(path, f"operator missing: add one of {', '.join(OPERATORS)}")
    if len(ops) > 1:
        raise ConditionError(path, f"one operator per comparison, got {' and '.join(ops)}: combine them with 'all'")
    op = ops[0]
    value = _check_value(op, raw[op], lists, f"{path}.{op}")
    return Comparison(field=field, op=op, value=value)


def _check_field(field: str, path: str) -> None:
    if field in TOP_LEVEL_COLUMNS:
        return
    root, _, rest = field.partition(".")
    if root not in JSON_ROOTS or not rest:
        raise ConditionError(
            path,
            f"unknown field '{field}': use {', '.join(TOP_LEVEL_COLUMNS)} or a path under "
            f"{', '.join(r + '.' for r in JSON_ROOTS)}",
        )
    for segment in rest.split("."):
        if not _SEGMENT.fullmatch(segment):
            raise ConditionError(
                path, f"bad field path '{field}': each part is letters, digits, spaces or $ : / _ -"
            )


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | bool) or is_number(value)


def _check_value(op: str, value: Any, lists: Mapping[str, Sequence[Any]], path: str) -> Any:
    if op == "equals":
        if not _is_scalar(value):
            raise ConditionError(path, f"expected a string, number or boolean, got {_type_name(value)}")
        return value
    if op == "in":
        if isinstance(value, str):
            if value not in lists:
                known = ", ".join(sorted(lists)) or "none defined"
                raise ConditionError(path, f"unknown list '{value}' (lists: {known})")
            value = lists[value]
        if not isinstance(value, Sequence) or isinstance(value, str) or not value:
            raise ConditionError(path, "expected a non-empty list of values or the name of a list under 'lists'")
        for i, item in enumerate(value):
            if not _is_scalar(item):
                raise ConditionError(f"{path}[{i}]", f"expected a string, number or boolean, got {_type_name(item)}")
        return tuple(value)
    if op == "matches":
        if not isinstance(value, str):
            raise ConditionError(path, f"expected a regular expression string, got {_type_name(value)}")
        check_regex(value, path)
        return value
    if op == "contains":
        if not (isinstance(value, str) or is_number(value)):
            raise ConditionError(path, f"expected a string or a number, got {_type_name(value)}")
        return value
    if op == "between":
        if not (isinstance(value, list | tuple) and len(value) == 2 and all(is_number(v) for v in value)):
            raise ConditionError(path, "expected a pair of numbers [low, high]")
        low, high = value
        if low > high:
            raise ConditionError(path, f"low bound {low} is above high bound {high}")
        return (low, high)
    if op == "exists":
        if not isinstance(value, bool):
            raise ConditionError(path, f"expected true or false, got {_type_name(value)}")
        return value
    if not is_number(value):
        raise ConditionError(path, f"expected a number, got {_type_name(value)}")
    return value


def check_regex(pattern: str, path: str) -> None:
    """Raise :class:`ConditionError` unless both RE2 and polars compile ``pattern``."""
    try:
        re2.compile(pattern)
    except re2.error as exc:
        raise ConditionError(path, f"bad regular expression '{pattern}': {exc}") from None
    try:
        pl.Series([""], dtype=pl.String).str.contains(polars_pattern(pattern))
    except pl.exceptions.PolarsError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConditionError(path, f"bad regular expression '{pattern}' for polars: {reason}") from None


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def referenced_fields(cond: Condition) -> set[str]:
    """Every field path a condition reads."""
    if isinstance(cond, Comparison):
        return {cond.field}
    if isinstance(cond, Not):
        return referenced_fields(cond.item)
    return set().union(*(referenced_fields(item) for item in cond.items))


# --------------------------------------------------------------------------- Python evaluator


def evaluate(cond: Condition, record: Mapping[str, Any]) -> bool:
    """Whether ``record`` meets ``cond`` (semantics in the module docstring)."""
    if isinstance(cond, Comparison):
        return _compare(cond, field_value(record, cond.field))
    if isinstance(cond, Not):
        return not evaluate(cond.item, record)
    if isinstance(cond, AllOf):
        return all(evaluate(item, record) for item in cond.items)
    return any(evaluate(item, record) for item in cond.items)


def _compare(cond: Comparison, value: object) -> bool:
    present = value is not MISSING and value is not None and not is_non_finite(value)
    if cond.op == "exists":
        return present == cond.value
    if not present:
        return False
    text = value_text(value)
    return _COMPARATORS[cond.op](value, text, cond.value)


def _contains(value: object, text: str, needle: object) -> bool:
    if isinstance(value, list | tuple) and value:
        return any(_element_equals(item, needle) for item in value)
    return value_text(needle) in text


def _element_equals(item: object, expected: object) -> bool:
    if item is None or is_non_finite(item):
        return False
    return text_equals(value_text(item), expected)


def _numeric(test: Callable[[float, Any], bool]) -> Callable[[object, str, Any], bool]:
    def compare(value: object, text: str, bound: Any) -> bool:
        number = text_number(text)
        return number is not None and test(number, bound)

    return compare


def _between(number: float, bounds: Any) -> bool:
    return bool(bounds[0] <= number <= bounds[1])


_COMPARATORS: Final[dict[str, Callable[[object, str, Any], bool]]] = {
    "equals": lambda value, text, expected: text_equals(text, expected),
    "in": lambda value, text, options: any(text_equals(text, option) for option in options),
    "matches": lambda value, text, pattern: re2.search(pattern, text) is not None,
    "contains": _contains,
    "between": _numeric(_between),
    "gt": _numeric(operator.gt),
    "gte": _numeric(operator.ge),
    "lt": _numeric(operator.lt),
    "lte": _numeric(operator.le),
}


# --------------------------------------------------------------------------- polars evaluator


def ensure_columns(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """The frame with every column :func:`to_expr` reads, adding absent ones as null strings."""
    schema = frame.collect_schema()
    wanted = (*JSON_ROOTS, *TOP_LEVEL_COLUMNS.values())
    fixes = [
        pl.lit(None, dtype=pl.String).alias(name) if name not in schema else pl.col(name).cast(pl.String)
        for name in wanted
        if schema.get(name) != pl.String
    ]
    return frame.with_columns(fixes) if fixes else frame


def to_expr(cond: Condition) -> pl.Expr:
    """A boolean polars expression equal to :func:`evaluate` on every row (never null)."""
    if isinstance(cond, Comparison):
        return _comparison_expr(cond).fill_null(False)
    if isinstance(cond, Not):
        return ~to_expr(cond.item)
    exprs = [to_expr(item) for item in cond.items]
    return pl.all_horizontal(exprs) if isinstance(cond, AllOf) else pl.any_horizontal(exprs)


def _json_path(segments: Sequence[str]) -> str:
    return "$" + "".join(f"['{segment}']" for segment in segments)


def _text_expr(field: str) -> pl.Expr:
    if field in TOP_LEVEL_COLUMNS:
        return pl.col(TOP_LEVEL_COLUMNS[field]).cast(pl.String)
    root, *segments = field.split(".")
    text = pl.col(root).str.json_path_match(_json_path(segments))
    if field == EMAIL_DOMAIN:
        email = pl.col("traits").str.json_path_match(_json_path(["email"]))
        text = pl.coalesce(text, email.str.extract(r"@([^@]*)$", 1).str.to_lowercase())
    return text


def _is_list_expr(field: str, text: pl.Expr) -> pl.Expr:
    """True for a non-empty JSON list (``[*]`` yields an element; strings yield nothing)."""
    if field in TOP_LEVEL_COLUMNS:
        return pl.lit(False)
    root, *segments = field.split(".")
    first = pl.col(root).str.json_path_match(_json_path(segments) + "[*]")
    return text.str.starts_with("[") & first.is_not_null()


def _number_expr(text: pl.Expr) -> pl.Expr:
    return pl.when(text.str.contains(NUMBER_PATTERN)).then(text).cast(pl.Float64, strict=False)


def _equals_expr(text: pl.Expr, expected: object) -> pl.Expr:
    if isinstance(expected, bool):
        return text.str.to_lowercase() == ("true" if expected else "false")
    if is_number(expected):
        return _number_expr(text) == float(expected)  # type: ignore[arg-type]
    return text == expected


def _in_expr(text: pl.Expr, options: Sequence[object]) -> pl.Expr:
    strings = [o for o in options if isinstance(o, str)]
    numbers = [float(o) for o in options if is_number(o)]  # type: ignore[arg-type]
    truths = ["true" if o else "false" for o in options if isinstance(o, bool)]
    parts = []
    if strings:
        parts.append(text.is_in(strings))
    if numbers:
        parts.append(_number_expr(text).is_in(numbers))
    if truths:
        parts.append(text.str.to_lowercase().is_in(truths))
    return pl.any_horizontal([p.fill_null(False) for p in parts])


def _contains_expr(field: str, text: pl.Expr, needle: object) -> pl.Expr:
    def members(texts: pl.Series) -> pl.Series:
        return pl.Series(
            [None if t is None else _contains(orjson.loads(t), t, needle) for t in texts], dtype=pl.Boolean
        )

    is_list = _is_list_expr(field, text)
    in_list = pl.when(is_list).then(text).map_batches(members, return_dtype=pl.Boolean, is_elementwise=True)
    substring = text.str.contains(value_text(needle), literal=True)
    return pl.when(is_list).then(in_list).otherwise(substring)


def _comparison_expr(cond: Comparison) -> pl.Expr:
    text = _text_expr(cond.field)
    op, value = cond.op, cond.value
    if op == "exists":
        return text.is_not_null() if value else text.is_null()
    if op == "equals":
        return _equals_expr(text, value)
    if op == "in":
        return _in_expr(text, value)
    if op == "matches":
        return text.str.contains(polars_pattern(value))
    if op == "contains":
        return _contains_expr(cond.field, text, value)
    number = _number_expr(text)
    if op == "between":
        return number.is_between(float(value[0]), float(value[1]), closed="both")
    bound = float(value)
    return {"gt": number > bound, "gte": number >= bound, "lt": number < bound, "lte": number <= bound}[op]
