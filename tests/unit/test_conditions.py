"""Conditions: parsing, every operator in the Python evaluator, and agreement with polars."""

from __future__ import annotations

from typing import Any

import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore.core.conditions import (
    MISSING,
    ConditionError,
    ensure_columns,
    evaluate,
    field_value,
    parse_condition,
    referenced_fields,
    to_expr,
    value_text,
)
from leadscore.core.records import contact_record, event_record
from leadscore.core.types import AllOf, AnyOf, Comparison, Not

LISTS = {"free_email": ["gmail.com", "yahoo.com"]}


def cond(raw: Any) -> Any:
    return parse_condition(raw, LISTS, "where")


def frame_of(records: list[dict[str, Any]]) -> pl.DataFrame:
    """One row per record: JSON-text roots, scalar top-level columns, as the intake builds them."""
    columns: dict[str, list[str | None]] = {}
    for root in ("properties", "context", "traits", "account"):
        columns[root] = [None if r.get(root) is None else orjson.dumps(r[root]).decode() for r in records]
    for key, column in (("type", "type"), ("event", "event"), ("userId", "user_id")):
        columns[column] = [r.get(key) for r in records]
    frame = pl.DataFrame(columns, schema={name: pl.String for name in columns})
    return ensure_columns(frame)  # type: ignore[return-value]


def vectorised(condition: Any, records: list[dict[str, Any]]) -> list[bool]:
    return frame_of(records).select(to_expr(condition).alias("hit"))["hit"].to_list()


def check(raw: Any, record: dict[str, Any], expected: bool) -> None:
    condition = cond(raw)
    assert evaluate(condition, record) is expected
    assert vectorised(condition, [record]) == [expected]


# --------------------------------------------------------------------------- parsing


def test_parse_builds_the_tree_and_resolves_named_lists() -> None:
    parsed = cond(
        {
            "all": [
                {"field": "traits.email_domain", "in": "free_email"},
                {"not": {"any": [{"field": "properties.n", "between": [1, 2]}, {"field": "event", "exists": True}]}},
            ]
        }
    )
    assert parsed == AllOf(
        (
            Comparison("traits.email_domain", "in", ("gmail.com", "yahoo.com")),
            Not(AnyOf((Comparison("properties.n", "between", (1, 2)), Comparison("event", "exists", True)))),
        )
    )
    assert referenced_fields(parsed) == {"traits.email_domain", "properties.n", "event"}


@pytest.mark.parametrize(
    ("raw", "path", "reason"),
    [
        ({"field": "traits.x"}, "where", "operator missing"),
        ({"field": "traits.x", "gt": 1, "lt": 3}, "where", "one operator per comparison"),
        ({"field": "traits.x", "equal": 1}, "where", "unknown key 'equal'"),
        ({"equals": 1}, "where", "needs 'field'"),
        ({"field": "trait.x", "equals": 1}, "where.field", "unknown field 'trait.x'"),
        ({"field": "traits", "equals": 1}, "where.field", "unknown field 'traits'"),
        ({"field": "traits..x", "equals": 1}, "where.field", "bad field path"),
        ({"field": "traits.x", "in": "nope"}, "where.in", "unknown list 'nope'"),
        ({"field": "traits.x", "in": []}, "where.in", "non-empty list"),
        ({"field": "traits.x", "in": [1, [2]]}, "where.in[1]", "expected a string, number or boolean"),
        ({"field": "traits.x", "matches": "(?=a)"}, "where.matches", "bad regular expression '(?=a)'"),
        ({"field": "traits.x", "matches": "a{2,1}"}, "where.matches", "bad regular expression"),
        ({"field": "traits.x", "between": [3, 1]}, "where.between", "low bound 3 is above high bound 1"),
        ({"field": "traits.x", "between": [1]}, "where.between", "pair of numbers"),
        ({"field": "traits.x", "between": ["a", 2]}, "where.between", "pair of numbers"),
        ({"field": "traits.x", "gt": "5"}, "where.gt", "expected a number"),
        ({"field": "traits.x", "gte": True}, "where.gte", "expected a number"),
        ({"field": "traits.x", "exists": "yes"}, "where.exists", "expected true or false"),
        ({"field": "traits.x", "equals": None}, "where.equals", "got null"),
        ({"all": []}, "where.all", "non-empty list"),
        ({"all": [{"field": "traits.x", "equals": 1}, "x"]}, "where.all[1]", "must be a mapping"),
        ({"not": {"field": "traits.x"}}, "where.not", "operator missing"),
        ({"all": [], "field": "traits.x"}, "where", "cannot be combined"),
        ("traits.x == 1", "where", "must be a mapping"),
    ],
)
def test_parse_errors_name_the_path_and_the_reason(raw: Any, path: str, reason: str) -> None:
    with pytest.raises(ConditionError) as caught:
        cond(raw)
    assert caught.value.path == path
    assert reason in caught.value.reason


def test_regex_rejected_by_polars_only_is_an_error() -> None:
    # RE2 accepts \C (any byte); Rust's regex does not.
    with pytest.raises(ConditionError, match="polars"):
        cond({"field": "traits.x", "matches": r"a\C"})


# --------------------------------------------------------------------------- field lookup


def test_field_value_walks_nested_mappings_only() -> None:
    record = {"properties": {"a": {"b": 1}, "items": [{"b": 2}]}, "userId": "u1"}
    assert field_value(record, "properties.a.b") == 1
    assert field_value(record, "properties.items.b") is MISSING
    assert field_value(record, "properties.zz") is MISSING
    assert field_value(record, "userId") == "u1"


def test_email_domain_is_derived_lower_cased_unless_given() -> None:
    assert field_value({"traits": {"email": "Ann@Sub.Example.COM"}}, "traits.email_domain") == "sub.example.com"
    assert field_value({"traits": {"email": "a@b@C.io"}}, "traits.email_domain") == "c.io"
    assert field_value({"traits": {"email": "no-at-sign"}}, "traits.email_domain") is MISSING
    given_domain = {"traits": {"email": "a@x.com", "email_domain": "Own.org"}}
    assert field_value(given_domain, "traits.email_domain") == "Own.org"


# --------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("raw", "properties", "expected"),
    [
        ({"field": "properties.v", "equals": "Paris"}, {"v": "Paris"}, True),
        ({"field": "properties.v", "equals": "paris"}, {"v": "Paris"}, False),
        ({"field": "properties.v", "equals": 3}, {"v": 3.0}, True),
        ({"field": "properties.v", "equals": 3}, {"v": "3"}, True),
        ({"field": "properties.v", "equals": 3}, {"v": "three"}, False),
        ({"field": "properties.v", "equals": 3}, {"v": True}, False),
        ({"field": "properties.v", "equals": "3"}, {"v": 3}, True),
        ({"field": "properties.v", "equals": "3"}, {"v": 3.0}, False),
        ({"field": "properties.v", "equals": True}, {"v": True}, True),
        ({"field": "properties.v", "equals": True}, {"v": "TRUE"}, True),
        ({"field": "properties.v", "equals": False}, {"v": True}, False),
        ({"field": "properties.v", "equals": True}, {"v": 1}, False),
        ({"field": "properties.v", "in": ["a", 2, False]}, {"v": 2.0}, True),
        ({"field": "properties.v", "in": ["a", 2, False]}, {"v": "false"}, True),
        ({"field": "properties.v", "in": ["a", 2, False]}, {"v": "b"}, False),
        ({"field": "properties.v", "matches": "^/pricing"}, {"v": "/pricing/team"}, True),
        ({"field": "properties.v", "matches": "pricing$"}, {"v": "/pricing/team"}, False),
        ({"field": "properties.v", "matches": "(?i)\\bceo\\b"}, {"v": "Founder & CEO"}, True),
        ({"field": "properties.v", "matches": "^1e\\+20$"}, {"v": 1e20}, True),
        ({"field": "properties.v", "contains": "vip"}, {"v": "a vip b"}, True),
        ({"field": "properties.v", "contains": "vip"}, {"v": ["vip", "x"]}, True),
        ({"field": "properties.v", "contains": "vip"}, {"v": ["vips"]}, False),
        ({"field": "properties.v", "contains": 42}, {"v": [1, 42.0]}, True),
        ({"field": "properties.v", "contains": "vip"}, {"v": "[\"vip\"]"}, True),
        ({"field": "properties.v", "contains": "["}, {"v": []}, True),
        ({"field": "properties.v", "gt": 10}, {"v": 10.5}, True),
        ({"field": "properties.v", "gt": 10}, {"v": 10}, False),
        ({"field": "properties.v", "gte": 10}, {"v": "10"}, True),
        ({"field": "properties.v", "lt": 0}, {"v": -1e-7}, True),
        ({"field": "properties.v", "lte": 5}, {"v": "abc"}, False),
        ({"field": "properties.v", "lte": 5}, {"v": " 4"}, False),
        ({"field": "properties.v", "between": [1, 2]}, {"v": 2}, True),
        ({"field": "properties.v", "between": [1, 2]}, {"v": 1}, True),
        ({"field": "properties.v", "between": [1, 2]}, {"v": 2.01}, False),
        ({"field": "properties.v", "exists": True}, {"v": ""}, True),
        ({"field": "properties.v", "exists": True}, {"v": None}, False),
        ({"field": "properties.v", "exists": False}, {}, True),
        ({"field": "properties.v", "equals": "x"}, {}, False),
        ({"not": {"field": "properties.v", "equals": "x"}}, {}, True),
        ({"not": {"field": "properties.v", "gt": 1}}, {"v": None}, True),
        ({"all": [{"field": "properties.v", "gt": 1}, {"field": "properties.v", "lt": 3}]}, {"v": 2}, True),
        ({"any": [{"field": "properties.v", "gt": 5}, {"field": "properties.v", "lt": 3}]}, {"v": 4}, False),
        ({"field": "properties.v.w", "equals": 1}, {"v": {"w": 1}}, True),
        ({"field": "properties.v", "equals": '{"w":1}'}, {"v": {"w": 1}}, True),
        ({"field": "properties.Lead Source", "equals": "Google"}, {"Lead Source": "Google"}, True),
    ],
)
def test_operator(raw: Any, properties: dict[str, Any], expected: bool) -> None:
    check(raw, {"type": "track", "properties": properties}, expected)


def test_top_level_fields_and_missing_roots() -> None:
    record = {"type": "track", "event": "Demo Requested", "userId": "u-1"}
    check({"field": "event", "equals": "Demo Requested"}, record, True)
    check({"field": "userId", "matches": "^u-"}, record, True)
    check({"field": "account.industry", "exists": False}, record, True)
    check({"field": "traits.email_domain", "in": "free_email"}, {"traits": {"email": "x@GMail.com"}}, True)
    check({"field": "traits.email_domain", "in": "free_email"}, {"traits": {"email": "x@acme.io"}}, False)


def test_ensure_columns_adds_absent_roots_as_null() -> None:
    frame = ensure_columns(pl.DataFrame({"traits": ['{"a": 1}']}))
    assert isinstance(frame, pl.DataFrame)
    hit = frame.select(to_expr(cond({"field": "account.x", "exists": False})))
    assert hit.to_series().to_list() == [True]


# --------------------------------------------------------------------------- the two evaluators agree

_FIELDS = ["properties.a", "properties.b.c", "traits.email", "traits.email_domain", "traits.n", "event"]
_words = st.sampled_from(["", "a", "A", "vip", "true", "TRUE", "false", "3", "3.0", "-2", "1e3", "x@Y.com", "[1]", "Étudiant"])
_odd_chars = "éÉßẞ٣\u00a0\v\t\n_-"
_text = st.one_of(
    _words, st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from(_odd_chars), max_size=6)
)
_ints = st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.integers(min_value=-5, max_value=5)
# Up to 15 significant digits: polars' JSON reader is exact there (see the conditions docstring).
_floats = st.builds(lambda m, e: m / 10**e, st.integers(-(10**12), 10**12), st.integers(0, 8)) | st.sampled_from(
    [0.0, -0.0, 1e20, 1e-7, 2.5e-5, 3.0]
)
_scalars = st.one_of(st.none(), st.booleans(), _ints, _floats, _text)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3), st.dictionaries(st.sampled_from(["c", "d"]), _scalars))


@st.composite
def _records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "track"}
    for root, keys in (("properties", ["a", "b"]), ("traits", ["email", "email_domain", "n"])):
        if draw(st.booleans()):
            record[root] = draw(st.dictionaries(st.sampled_from(keys), _values))
    if draw(st.booleans()):
        record["event"] = draw(_text)
    return record


_PATTERNS = [
    "^a", "(?i)true", "\\d+", "^-?\\d+\\.\\d", "@", "^$", "e[+-]", "\\[", "c", "\\bé", "(?i)\\bétudiant\\b",
    "\\w+$", "^\\W", "\\s", "\\S\\s\\S", "[\\w.-]+@", "\\B", "[^\\d]", "[\\D]", "(?i)É", "(?i)ß", "[[:alpha:]]", "[]a]",
]
_condition_values = st.one_of(st.booleans(), st.integers(-5, 5), _floats, _words)
_number = st.integers(-5, 5) | _floats


@st.composite
def _comparisons(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from(_FIELDS))
    op = draw(st.sampled_from(["equals", "in", "matches", "contains", "between", "gt", "gte", "lt", "lte", "exists"]))
    if op == "equals":
        value: Any = draw(_condition_values)
    elif op == "in":
        value = draw(st.lists(_condition_values, min_size=1, max_size=4))
    elif op == "matches":
        value = draw(st.sampled_from(_PATTERNS))
    elif op == "contains":
        value = draw(st.one_of(_words, st.integers(-5, 5)))
    elif op == "between":
        low, high = sorted(draw(st.lists(_number, min_size=2, max_size=2)))
        value = [low, high]
    elif op == "exists":
        value = draw(st.booleans())
    else:
        value = draw(_number)
    return {"field": field, op: value}


_conditions = st.recursive(
    _comparisons(),
    lambda inner: st.one_of(
        st.builds(lambda items: {"all": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda items: {"any": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda item: {"not": item}, inner),
    ),
    max_leaves=5,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_conditions, records=st.lists(_records(), min_size=1, max_size=6))
def test_polars_evaluator_agrees_with_python(raw: Any, records: list[dict[str, Any]]) -> None:
    condition = cond(raw)
    assert vectorised(condition, records) == [evaluate(condition, r) for r in records]


@settings(max_examples=200, deadline=None)
@given(value=st.recursive(
    _scalars | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
))
def test_value_text_is_what_polars_extracts(value: Any) -> None:
    document = orjson.dumps({"v": value}).decode()
    extracted = pl.Series([document]).str.json_path_match("$['v']").item()
    assert extracted == (None if value is None else value_text(value))


# --------------------------------------------------------------------------- regex dialects and records


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("(?i)\\bétudiant\\b", "Étudiant en master", False),  # RE2: \b is ASCII, É is not a word character
        ("(?i)(^|\\W)étudiant\\b", "Étudiant en master", True),
        ("\\d", "٣", False),
        ("\\s", "\u00a0", False),
        ("[\\w-]+$", "ana-b_1", True),
    ],
)
def test_regexes_mean_the_same_in_re2_and_polars(pattern: str, text: str, expected: bool) -> None:
    check({"field": "traits.title", "matches": pattern}, {"traits": {"title": text}}, expected)


def test_contact_record_adds_the_email_domain() -> None:
    record = contact_record({"email": "Ana@Acme.IO", "title": "CTO"}, {"industry": "software"})
    assert record == {
        "traits": {"email": "Ana@Acme.IO", "title": "CTO", "email_domain": "acme.io"},
        "account": {"industry": "software"},
    }
    assert contact_record({"email": "a@b.com", "email_domain": "own.org"}, None)["traits"]["email_domain"] == "own.org"
    assert contact_record(None, None) == {"traits": {}, "account": {}}


def test_event_record_uses_segment_field_names() -> None:
    record = event_record(type="track", event="Demo Requested", user_id="u-1", message_id="m-1", properties={"a": 1})
    assert record == {"type": "track", "event": "Demo Requested", "userId": "u-1", "messageId": "m-1", "properties": {"a": 1}}
    assert field_value(record, "userId") == "u-1"
