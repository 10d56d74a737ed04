"""Per-contact scoring: which rules an event triggers, decayed sums, caps, normalisation.

This is the exact, pure-Python form of the score, used to explain one contact and to apply
single events; :mod:`leadscore.core.vectorized` computes the same numbers over whole frames.
Nothing here reads the clock: ``at`` (seconds since the epoch) is always an argument.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from leadscore.core import grading
from leadscore.core.conditions import evaluate
from leadscore.core.decay import Accumulator, decay_factor
from leadscore.core.types import Contribution, EngagementRule, Event, ScoreCard, ScoringModel

NEGLIGIBLE_POINTS = 1e-12


def is_machine(model: ScoringModel, record: Mapping[str, Any]) -> bool:
    """True when the model's ``machine`` condition flags the message as machine activity."""
    return model.machine is not None and evaluate(model.machine, record)


def trigger_name(event: Event) -> str | None:
    """What a rule's ``on`` is compared with: the track event name, or the call type."""
    return event.name if event.type == "track" else event.type


def matching_rules(model: ScoringModel, event: Event) -> list[EngagementRule]:
    """Engagement rules (in model order) that count this event.

    A rule counts an event when its ``on`` is the event's trigger name, its ``where`` (if any)
    holds on the message, and the event is not machine activity unless the rule says
    ``machine: true``.
    """
    trigger = trigger_name(event)
    candidates = [rule for rule in model.engagement_rules if rule.on == trigger]
    if not candidates:
        return []
    machine = is_machine(model, event.record)
    return [
        rule
        for rule in candidates
        if (rule.machine or not machine) and (rule.where is None or evaluate(rule.where, event.record))
    ]


def limit_window(rule: EngagementRule, ts: float) -> int:
    """Index of the epoch-aligned window ``floor(ts / per)`` of a limited rule (0 for "ever")."""
    if rule.limit is None or rule.limit.per is None:
        return 0
    return math.floor(ts / rule.limit.per)


def counted_events(rule: EngagementRule, matched: Iterable[Event]) -> list[Event]:
    """The matched events a rule counts, sorted by ``(ts, message_id)``.

    With a limit of ``N`` per window, the ``N`` earliest events of each window count (ties
    broken by message id), whatever the order in which they arrived.
    """
    ordered = sorted(matched, key=lambda event: (event.ts, event.message_id))
    if rule.limit is None:
        return ordered
    taken: dict[int, int] = defaultdict(int)
    counted: list[Event] = []
    for event in ordered:
        window = limit_window(rule, event.ts)
        if taken[window] < rule.limit.count:
            taken[window] += 1
            counted.append(event)
    return counted


def accumulator_of(rule: EngagementRule, counted: list[Event]) -> Accumulator:
    """Accumulator of events sorted by time: ``t_ref`` is the latest, ``s = Σ p·2^(-(t_ref-ts)/h)``."""
    if not counted:
        return Accumulator.empty()
    t_ref = counted[-1].ts
    weights = [rule.points * decay_factor(t_ref - event.ts, rule.half_life) for event in counted]
    return Accumulator(math.fsum(weights), t_ref)


def accumulate(
    model: ScoringModel, events: Iterable[Event], until: float | None = None
) -> dict[str, Accumulator]:
    """Accumulators, by engagement rule id, of a contact's events with ``ts <= until``.

    Exact replay: limits are applied on the whole set, and the result does not depend on the
    order of ``events``. Rules that count nothing are absent.
    """
    matched: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if until is not None and event.ts > until:
            continue
        for rule in matching_rules(model, event):
            matched[rule.id].append(event)
    state: dict[str, Accumulator] = {}
    for rule in model.engagement_rules:
        if rule.id in matched:
            state[rule.id] = accumulator_of(rule, counted_events(rule, matched[rule.id]))
    return state


def rule_points_at(model: ScoringModel, state: Mapping[str, Accumulator], at: float) -> dict[str, float]:
    """Current points of every engagement rule at ``at``, after decay, rule caps and group caps.

    A rule's decayed value is clipped to ``[-cap, cap]``; then, when the members of a group sum
    beyond the group's cap in absolute value, they are scaled proportionally to sum to ``±cap``
    (so the explanation still adds up). ``state`` must not hold events later than ``at``.
    """
    points: dict[str, float] = {}
    for rule in model.engagement_rules:
        accumulator = state.get(rule.id)
        value = accumulator.value_at(at, rule.half_life) if accumulator is not None else 0.0
        if rule.cap is not None:
            value = min(max(value, -rule.cap), rule.cap)
        points[rule.id] = value
    members: dict[str, list[str]] = defaultdict(list)
    for rule in model.engagement_rules:
        if rule.group is not None and rule.group in model.group_caps:
            members[rule.group].append(rule.id)
    for group, rule_ids in members.items():
        group_cap = model.group_caps[group]
        total = sum(points[rule_id] for rule_id in rule_ids)
        if abs(total) > group_cap:
            scale = group_cap / abs(total)
            for rule_id in rule_ids:
                points[rule_id] = points[rule_id] * scale
    return points


def fit_contributions(model: ScoringModel, record: Mapping[str, Any]) -> list[Contribution]:
    """Fit rules (in model order) whose condition holds on the contact record, with their points."""
    return [
        Contribution(rule=rule.id, kind="fit", points=float(rule.points))
        for rule in model.fit_rules
        if evaluate(rule.where, record)
    ]


def is_excluded(model: ScoringModel, record: Mapping[str, Any]) -> bool:
    """True when any of the model's ``exclude`` conditions holds on the contact record."""
    return any(evaluate(condition, record) for condition in model.exclude)


def excluded_card(contact: str, at: float) -> ScoreCard:
    """Score card of an excluded contact: zero scores, no labels, nothing to explain."""
    return ScoreCard(
        contact=contact,
        at=at,
        excluded=True,
        fit=0.0,
        engagement=0.0,
        score=0.0,
        grade=None,
        engagement_level=None,
        temperature=None,
        fit_raw=0.0,
        engagement_raw=0.0,
        breakdown=(),
    )


def score_card(
    model: ScoringModel,
    *,
    contact: str,
    record: Mapping[str, Any],
    state: Mapping[str, Accumulator],
    at: float,
) -> ScoreCard:
    """The explained score of a contact at ``at`` from its record and engagement accumulators.

    The breakdown lists the fit rules that hold, in model order, then the engagement rules from
    the largest current contribution (in absolute value) to the smallest, ties in model order,
    as in the DESIGN.md explain example; contributions below 1e-12 points are left out.

    ``record`` is the contact record (``{"traits": …, "account": …}``); ``state`` must not hold
    events later than ``at`` (for a past moment, use :func:`score_contact`).
    """
    if is_excluded(model, record):
        return excluded_card(contact, at)
    fit_parts = fit_contributions(model, record)
    engagement_points = rule_points_at(model, state, at)
    fit_raw = sum(part.points for part in fit_parts)
    engagement_raw = sum(engagement_points.values())
    fit = grading.normalise(fit_raw, model.fit_max)
    engagement = grading.normalise(engagement_raw, model.engagement_max)
    score = grading.combined_score(model, fit, engagement)
    engagement_parts = sorted(
        (Contribution(rule=rule_id, kind="engagement", points=points) for rule_id, points in engagement_points.items()),
        key=lambda part: -abs(part.points),
    )
    breakdown = tuple(
        part for part in (*fit_parts, *engagement_parts) if abs(part.points) >= NEGLIGIBLE_POINTS
    )
    return ScoreCard(
        contact=contact,
        at=at,
        excluded=False,
        fit=fit,
        engagement=engagement,
        score=score,
        grade=grading.fit_grade(model, fit),
        engagement_level=grading.engagement_level(model, engagement),
        temperature=grading.temperature(model, score),
        fit_raw=fit_raw,
        engagement_raw=engagement_raw,
        breakdown=breakdown,
    )


def score_contact(
    model: ScoringModel,
    *,
    contact: str,
    record: Mapping[str, Any],
    events: Iterable[Event],
    at: float,
) -> ScoreCard:
    """Score of a contact at ``at`` replayed from its event log (events after ``at`` ignored)."""
    state = accumulate(model, events, until=at)
    return score_card(model, contact=contact, record=record, state=state, at=at)
