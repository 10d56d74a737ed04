"""Keyword-only factories for scoring-model value objects, events and event frames.

They build :mod:`leadscore.core.types` objects directly, so scoring tests do not depend on the
YAML parser. ``reference_model()`` is the DESIGN.md "Reference shapes" model, written by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import polars as pl

from leadscore.core.types import (
    AllOf,
    Comparison,
    Condition,
    EngagementRule,
    Event,
    FitRule,
    Limit,
    ScoringModel,
)

SECOND = 1.0
HOUR = 3600.0
DAY = 86400.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def make_fit_rule(*, id: str = "fit-rule", where: Condition | None = None, points: float = 10.0) -> FitRule:
    return FitRule(
        id=id,
        where=where if where is not None else Comparison("traits.title", "exists", True),
        points=points,
    )


def make_engagement_rule(
    *,
    id: str = "rule",
    on: str = "Email Opened",
    points: float = 1.0,
    half_life: float | None = 30 * DAY,
    where: Condition | None = None,
    cap: float | None = None,
    limit: Limit | None = None,
    group: str | None = None,
    machine: bool = False,
) -> EngagementRule:
    return EngagementRule(
        id=id,
        on=on,
        points=points,
        half_life=half_life,
        where=where,
        cap=cap,
        limit=limit,
        group=group,
        machine=machine,
    )


def make_model(
    *,
    engagement_rules: Sequence[EngagementRule] = (),
    fit_rules: Sequence[FitRule] = (),
    fit_max: float = 100.0,
    engagement_max: float = 100.0,
    default_half_life: float | None = 30 * DAY,
    group_caps: Mapping[str, float] | None = None,
    machine: Condition | None = None,
    exclude: Sequence[Condition] = (),
    weight_fit: float = 0.5,
    weight_engagement: float = 0.5,
    fit_grades: Sequence[tuple[str, float]] = (("A", 75.0), ("B", 50.0), ("C", 25.0)),
    engagement_levels: Sequence[tuple[str, float]] = (("1", 75.0), ("2", 50.0), ("3", 25.0)),
    temperature: Sequence[tuple[str, float]] = (("hot", 70.0), ("warm", 40.0)),
    name: str = "test-model",
) -> ScoringModel:
    return ScoringModel(
        version=1,
        name=name,
        fit_max=fit_max,
        fit_rules=tuple(fit_rules),
        engagement_max=engagement_max,
        default_half_life=default_half_life,
        engagement_rules=tuple(engagement_rules),
        group_caps=dict(group_caps or {}),
        machine=machine,
        exclude=tuple(exclude),
        weight_fit=weight_fit,
        weight_engagement=weight_engagement,
        fit_grades=tuple(fit_grades),
        engagement_levels=tuple(engagement_levels),
        temperature=tuple(temperature),
    )


def make_event(
    *,
    message_id: str,
    ts: float,
    type: str = "track",
    name: str | None = None,
    properties: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    traits: Mapping[str, Any] | None = None,
    user_id: str | None = None,
) -> Event:
    """A Segment-style message: ``name`` is the track event name (None for page, screen …)."""
    record: dict[str, Any] = {"type": type, "messageId": message_id}
    if name is not None:
        record["event"] = name
    if user_id is not None:
        record["userId"] = user_id
    for key, value in (("properties", properties), ("context", context), ("traits", traits)):
        if value is not None:
            record[key] = dict(value)
    return Event(message_id=message_id, ts=ts, type=type, name=name, record=record)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def events_frame(events_by_contact: Mapping[int, Iterable[Event]]) -> pl.DataFrame:
    """The canonical events frame (JSON-text columns) holding the same messages as the events."""
    rows: list[dict[str, Any]] = []
    for contact_id, events in events_by_contact.items():
        for event in events:
            rows.append(
                {
                    "contact_id": contact_id,
                    "message_id": event.message_id,
                    "ts": event.ts,
                    "type": event.type,
                    "event": event.name,
                    "properties": _json_or_none(event.record.get("properties")),
                    "context": _json_or_none(event.record.get("context")),
                    "traits": _json_or_none(event.record.get("traits")),
                    "user_id": event.record.get("userId"),
                    "anonymous_id": event.record.get("anonymousId"),
                }
            )
    schema = {
        "contact_id": pl.Int64,
        "message_id": pl.Utf8,
        "ts": pl.Float64,
        "type": pl.Utf8,
        "event": pl.Utf8,
        "properties": pl.Utf8,
        "context": pl.Utf8,
        "traits": pl.Utf8,
        "user_id": pl.Utf8,
        "anonymous_id": pl.Utf8,
    }
    return pl.DataFrame(rows, schema=schema)


def contacts_frame(contacts: Mapping[int, tuple[Mapping[str, Any], Mapping[str, Any]]]) -> pl.DataFrame:
    """Contacts frame ``[contact_id, traits, account]`` from ``{id: (traits, account)}``."""
    return pl.DataFrame(
        {
            "contact_id": list(contacts),
            "traits": [_json_or_none(dict(traits)) for traits, _ in contacts.values()],
            "account": [_json_or_none(dict(account)) for _, account in contacts.values()],
        },
        schema={"contact_id": pl.Int64, "traits": pl.Utf8, "account": pl.Utf8},
    )


def reference_model() -> ScoringModel:
    """The DESIGN.md "Reference shapes" model (b2b-saas), built without the YAML parser."""
    free_email = ["gmail.com", "yahoo.com", "hotmail.com", "outlook.com"]
    return make_model(
        name="b2b-saas",
        fit_max=60.0,
        fit_rules=[
            make_fit_rule(
                id="decision-maker",
                where=Comparison("traits.title", "matches", r"(?i)\b(ceo|cto|vp|head|director|directeur)\b"),
                points=20.0,
            ),
            make_fit_rule(
                id="target-industry",
                where=Comparison("account.industry", "in", ("software", "fintech")),
                points=15.0,
            ),
            make_fit_rule(
                id="mid-market",
                where=AllOf(
                    (
                        Comparison("account.employees", "gte", 50),
                        Comparison("account.employees", "lte", 1000),
                    )
                ),
                points=25.0,
            ),
            make_fit_rule(
                id="free-email",
                where=Comparison("traits.email_domain", "in", tuple(free_email)),
                points=-10.0,
            ),
        ],
        engagement_max=100.0,
        default_half_life=30 * DAY,
        engagement_rules=[
            make_engagement_rule(id="email-click", on="Email Link Clicked", points=3.0, cap=15.0),
            make_engagement_rule(
                id="pricing-page",
                on="page",
                where=Comparison("properties.path", "matches", "^/pricing"),
                points=10.0,
                limit=Limit(count=3, per=DAY),
            ),
            make_engagement_rule(id="demo-request", on="Demo Requested", points=40.0, half_life=60 * DAY),
            make_engagement_rule(id="unsubscribe", on="Unsubscribed", points=-25.0, half_life=None),
        ],
        exclude=[Comparison("traits.email", "matches", r"@ourcompany\.com$")],
        weight_fit=0.4,
        weight_engagement=0.6,
    )
