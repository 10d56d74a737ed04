"""Stage conditions (``lifecycle.rules[].when``) and the automatic stage decision. Pure (polars).

A stage condition is the regular condition syntax over the contact (``{field: traits.x, OP: v}``,
``account.*`` fields, ``all`` / ``any`` / ``not``; see :mod:`leadscore.core.conditions`) plus
*score terms* read from the contact's scores at the moment of the decision:

- ``{score: {gte: 60}}``, ``{fit: {gt: 50}}``, ``{engagement: {lt: 20}}`` — the 0–100 combined,
  fit and engagement scores; operators ``gt``, ``gte``, ``lt``, ``lte`` (several in one mapping
  must all hold: ``{score: {gte: 40, lt: 70}}``);
- ``{grade: {at_least: B}}`` or ``{grade: {in: [A, B]}}`` — fit grade, ``A`` best, ``D`` worst;
- ``{engagement_level: {at_least: "2"}}`` — ``"1"`` best, ``"4"`` worst;
- ``{temperature: {at_least: warm}}`` — ``hot`` > ``warm`` > ``cold``;
- ``{bant: {at_least: warm}}`` — the BANT qualification temperature sales recorded (a contact
  without a BANT record meets no ``bant`` term);
- ``{rule: demo-request}`` (or a list: any of them) — that engagement rule has counted for the
  contact (it has an accumulator for it), whatever its points now; for a contact in
  nurturing, only an event counted since it entered nurturing (the readings' ``rules``).

Everything is evaluated set-based over a *readings* frame (:data:`READING_SCHEMA`, one row per
contact). An excluded contact is never moved by a rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from leadscore.core.conditions import ConditionError, parse_condition, referenced_fields, to_expr
from leadscore.core.lifecycle import MQL, NURTURING, Lifecycle, StageRule, check_stage
from leadscore.core.types import Condition

READING_SCHEMA: Final = {
    "contact_id": pl.Int64, "excluded": pl.Boolean, "traits": pl.String, "account": pl.String,
    "fit": pl.Float64, "engagement": pl.Float64, "score": pl.Float64, "grade": pl.String,
    "engagement_level": pl.String, "temperature": pl.String, "bant": pl.String, "rules": pl.List(pl.String),
}
STAGE_SCHEMA: Final = {"contact_id": pl.Int64, "stage": pl.String, "entered_at": pl.Float64}
"""Current stages (``entered_at`` in seconds); a contact without a row is in the first stage."""
DECISION_SCHEMA: Final = {"contact_id": pl.Int64, "from_stage": pl.String, "to_stage": pl.String, "cause": pl.String}

SCORES: Final = ("score", "fit", "engagement")
NUMERIC_OPS: Final = ("gt", "gte", "lt", "lte")
ORDERS: Final[dict[str, tuple[str, ...]]] = {  # best first
    "grade": ("A", "B", "C", "D"),
    "engagement_level": ("1", "2", "3", "4"),
    "temperature": ("hot", "warm", "cold"),
    "bant": ("hot", "warm", "cold"),
}
TERMS: Final = (*SCORES, *ORDERS, "rule")
CONTACT_ROOTS: Final = ("traits", "account")


@dataclass(frozen=True, slots=True)
class FieldTerm:
    condition: Condition


@dataclass(frozen=True, slots=True)
class ScoreTerm:
    measure: str  # score, fit, engagement
    bounds: tuple[tuple[str, float], ...]  # (op, value)


@dataclass(frozen=True, slots=True)
class LabelTerm:
    measure: str  # grade, engagement_level, temperature, bant
    labels: tuple[str, ...]  # the labels that meet it


@dataclass(frozen=True, slots=True)
class RuleTerm:
    rule_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AllTerms:
    items: tuple[StageCondition, ...]


@dataclass(frozen=True, slots=True)
class AnyTerms:
    items: tuple[StageCondition, ...]


@dataclass(frozen=True, slots=True)
class NotTerm:
    item: StageCondition


StageCondition = FieldTerm | ScoreTerm | LabelTerm | RuleTerm | AllTerms | AnyTerms | NotTerm

DEFAULT_RULES: Final = ({"id": "known", "to": "subscriber", "when": {"field": "traits.email", "exists": True}},)
"""The automatic transitions of a model whose ``lifecycle`` section gives no ``rules``: a
contact whose e-mail is known is a subscriber. ``rules: []`` turns automation off."""


# --------------------------------------------------------------------------- parsing


def parse_stage_condition(
    raw: object, lists: Mapping[str, Sequence[Any]], path: str, *, rule_ids: Sequence[str]
) -> StageCondition:
    """Compile a ``when`` mapping; raise :class:`ConditionError` (with its key path) when malformed."""
    if not isinstance(raw, Mapping):
        raise ConditionError(path, f"a stage condition must be a mapping, got {_kind(raw)}")
    keys = [str(key) for key in raw]
    combinators = [key for key in keys if key in ("all", "any", "not")]
    terms = [key for key in keys if key in TERMS]
    if combinators or terms:
        if len(keys) != 1:
            raise ConditionError(path, f"'{(combinators or terms)[0]}' cannot be combined with other keys ({', '.join(keys)})")
        key = keys[0]
        value = raw[key]
        if key == "not":
            return NotTerm(parse_stage_condition(value, lists, f"{path}.not", rule_ids=rule_ids))
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise ConditionError(f"{path}.{key}", f"'{key}' takes a non-empty list of conditions")
            items = tuple(
                parse_stage_condition(item, lists, f"{path}.{key}[{i}]", rule_ids=rule_ids) for i, item in enumerate(value)
            )
            return AllTerms(items) if key == "all" else AnyTerms(items)
        return _parse_term(key, value, f"{path}.{key}", rule_ids)
    if "field" not in raw:
        allowed = ", ".join(("field", *TERMS, "all", "any", "not"))
        raise ConditionError(path, f"unknown key '{keys[0] if keys else ''}' (allowed: {allowed})")
    condition = parse_condition(raw, lists, path)
    field = str(raw["field"])
    if field.partition(".")[0] not in CONTACT_ROOTS:
        raise ConditionError(f"{path}.field", f"a stage condition reads the contact: use a field under traits. or account. (got '{field}')")
    return FieldTerm(condition)


def _parse_term(key: str, value: Any, path: str, rule_ids: Sequence[str]) -> StageCondition:
    if key == "rule":
        ids = [value] if isinstance(value, str) else value
        if not isinstance(ids, list) or not ids or not all(isinstance(item, str) for item in ids):
            raise ConditionError(path, f"expected an engagement rule id or a list of them, got {_kind(value)}")
        for i, rule_id in enumerate(ids):
            if rule_id not in rule_ids:
                where = path if isinstance(value, str) else f"{path}[{i}]"
                raise ConditionError(where, f"unknown engagement rule '{rule_id}' (rules: {', '.join(rule_ids) or 'none'})")
        return RuleTerm(tuple(ids))
    if not isinstance(value, Mapping) or not value:
        raise ConditionError(path, f"expected a mapping such as {_example(key)}, got {_kind(value)}")
    if key in SCORES:
        bounds = []
        for op, bound in value.items():
            if op not in NUMERIC_OPS:
                raise ConditionError(f"{path}.{op}", f"unknown operator '{op}' (allowed: {', '.join(NUMERIC_OPS)})")
            if isinstance(bound, bool) or not isinstance(bound, int | float) or not 0 <= bound <= 100:
                raise ConditionError(f"{path}.{op}", f"expected a number between 0 and 100, got {_kind(bound)}")
            bounds.append((str(op), float(bound)))
        return ScoreTerm(key, tuple(bounds))
    order = ORDERS[key]
    if len(value) != 1 or next(iter(value)) not in ("at_least", "in"):
        raise ConditionError(path, f"expected exactly one of at_least, in (e.g. {_example(key)})")
    op, given = next(iter(value.items()))
    labels = [given] if op == "at_least" else given
    if not isinstance(labels, list) or not labels:
        raise ConditionError(f"{path}.{op}", f"expected a non-empty list of {', '.join(order)}")
    texts = []
    for i, label in enumerate(labels):
        text = str(label) if isinstance(label, str | int) and not isinstance(label, bool) else None
        if text not in order:
            where = f"{path}.{op}" if op == "at_least" else f"{path}.{op}[{i}]"
            raise ConditionError(where, f"unknown {key.replace('_', ' ')} {label!r} (expected one of {', '.join(order)})")
        texts.append(text)
    if op == "at_least":
        return LabelTerm(key, order[: order.index(texts[0]) + 1])
    return LabelTerm(key, tuple(label for label in order if label in texts))


def _example(key: str) -> str:
    return {"grade": "{at_least: B}", "engagement_level": '{at_least: "2"}', "temperature": "{at_least: warm}",
            "bant": "{at_least: warm}"}.get(key, "{gte: 60}")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def needs(condition: StageCondition) -> set[str]:
    """What the condition reads: ``traits``, ``account``, ``scores``, ``bant``, ``rules``."""
    if isinstance(condition, FieldTerm):
        return {field.partition(".")[0] for field in referenced_fields(condition.condition)}
    if isinstance(condition, ScoreTerm):
        return {"scores"}
    if isinstance(condition, LabelTerm):
        return {"bant"} if condition.measure == "bant" else {"scores"}
    if isinstance(condition, RuleTerm):
        return {"rules"}
    if isinstance(condition, NotTerm):
        return needs(condition.item)
    return set().union(*(needs(item) for item in condition.items))


def rules_need(lifecycle: Lifecycle) -> set[str]:
    return set().union(*(needs(rule.when) for rule in lifecycle.rules)) if lifecycle.rules else set()


# --------------------------------------------------------------------------- evaluation


def stage_expr(condition: StageCondition) -> pl.Expr:
    """A boolean expression over a :data:`READING_SCHEMA` frame (never null)."""
    if isinstance(condition, FieldTerm):
        return to_expr(condition.condition)
    if isinstance(condition, ScoreTerm):
        column = pl.col(condition.measure)
        tests = {"gt": column.__gt__, "gte": column.__ge__, "lt": column.__lt__, "lte": column.__le__}
        return pl.all_horizontal([tests[op](bound) for op, bound in condition.bounds]).fill_null(False)
    if isinstance(condition, LabelTerm):
        return pl.col(condition.measure).is_in(list(condition.labels)).fill_null(False)
    if isinstance(condition, RuleTerm):
        held = [pl.col("rules").list.contains(pl.lit(rule_id)) for rule_id in condition.rule_ids]
        return pl.any_horizontal(held).fill_null(False)
    if isinstance(condition, NotTerm):
        return ~stage_expr(condition.item)
    exprs = [stage_expr(item) for item in condition.items]
    return pl.all_horizontal(exprs) if isinstance(condition, AllTerms) else pl.any_horizontal(exprs)


def holding_rules(lifecycle: Lifecycle, readings: pl.DataFrame) -> pl.DataFrame:
    """``[contact_id, rule, to_stage, rank, order]``: one row per non-excluded contact and rule
    whose condition holds (``rank``: the target's main-path position)."""
    frame = readings.lazy().filter(~pl.col("excluded").fill_null(False))
    plans = [
        frame.filter(stage_expr(rule.when)).select(
            "contact_id",
            pl.lit(rule.id).alias("rule"),
            pl.lit(rule.to).alias("to_stage"),
            pl.lit(lifecycle.rank[rule.to], dtype=pl.Int64).alias("rank"),
            pl.lit(order, dtype=pl.Int64).alias("order"),
        )
        for order, rule in enumerate(lifecycle.rules)
    ]
    if not plans:
        return pl.DataFrame(schema={"contact_id": pl.Int64, "rule": pl.String, "to_stage": pl.String,
                                    "rank": pl.Int64, "order": pl.Int64})
    return pl.concat(pl.collect_all(plans))


def decide(lifecycle: Lifecycle, stages: pl.DataFrame, readings: pl.DataFrame, now: float) -> pl.DataFrame:
    """The automatic transitions (:data:`DECISION_SCHEMA`) of the contacts of ``readings``:
    to the furthest main-path stage among the rules whose condition holds and that lie forward
    of the contact's current stage (``stages``, :data:`STAGE_SCHEMA`; no row: the first stage).
    ``cause`` is the rule (the first in model order when several lead there).

    From ``nurturing`` a rule may move a contact again only to MQL or beyond, and only once
    ``nurturing.min_stay`` has passed since it entered (re-qualification); ``disqualified`` is
    never left automatically; excluded contacts never move.
    """
    holding = holding_rules(lifecycle, readings)
    if holding.is_empty():
        return pl.DataFrame(schema=DECISION_SCHEMA)
    rank = pl.col("from_stage").replace_strict(dict(lifecycle.rank), default=None, return_dtype=pl.Int64)
    current = (
        holding.select(pl.col("contact_id").unique())
        .join(stages.select(list(STAGE_SCHEMA)).cast(STAGE_SCHEMA), on="contact_id", how="left")
        .select("contact_id", pl.col("stage").fill_null(lifecycle.first).alias("from_stage"), "entered_at")
        .with_columns(rank.alias("from_rank"))
    )
    requalifies = (pl.col("from_stage") == NURTURING) & (
        pl.col("entered_at").is_null() | (pl.col("entered_at") + lifecycle.nurturing.min_stay <= now)
    ) & (pl.col("rank") >= lifecycle.rank[MQL])
    forward = pl.col("from_rank").is_not_null() & (pl.col("rank") > pl.col("from_rank"))
    return (
        holding.join(current, on="contact_id")
        .filter(forward | requalifies)
        .sort(["contact_id", "rank", "order"], descending=[False, True, False])
        .group_by("contact_id", maintain_order=True)
        .first()
        .select("contact_id", "from_stage", "to_stage", pl.col("rule").alias("cause"))
        .cast(DECISION_SCHEMA)
    )


def compile_rules(
    raw_rules: Sequence[Mapping[str, Any]],
    lists: Mapping[str, Sequence[Any]],
    rule_ids: Sequence[str],
    lifecycle: Lifecycle,
    path: str = "lifecycle.rules",
) -> tuple[tuple[StageRule, ...], list[ConditionError]]:
    """The compiled rules and every problem found (stage ids checked, conditions parsed)."""
    rules: list[StageRule] = []
    problems: list[ConditionError] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        where = f"{path}[{i}]"
        if raw["id"] in seen:
            problems.append(ConditionError(f"{where}.id", f"duplicate stage rule id '{raw['id']}'"))
        seen.add(raw["id"])
        reason = check_stage(lifecycle, raw["to"])
        if reason is None and raw["to"] not in lifecycle.rank:
            reason = (f"rules move contacts forward along the main path ({', '.join(lifecycle.stages)}); "
                      f"'{raw['to']}' is reached by recycling, rejection or a lost opportunity")
        if reason is not None:
            problems.append(ConditionError(f"{where}.to", reason))
            continue
        try:
            when = parse_stage_condition(raw["when"], lists, f"{where}.when", rule_ids=rule_ids)
        except ConditionError as problem:
            problems.append(problem)
            continue
        rules.append(StageRule(raw["id"], raw["to"], when, raw.get("description") or ""))
    return tuple(rules), problems
