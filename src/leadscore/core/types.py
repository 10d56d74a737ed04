"""Value objects shared by the scoring core: the compiled model, events and score cards.

The YAML model file is parsed and validated by :mod:`leadscore.core.model` into these frozen
dataclasses; everything downstream (pure scoring, vectorised scoring, store, services) works on
them. Time is seconds since the Unix epoch (UTC) as a float; durations are seconds, and
``None`` means "never" (no decay).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from leadscore.core.lifecycle import DEFAULT_LIFECYCLE, Lifecycle

from leadscore.core.routing import DEFAULT_ROUTING, Routing

if TYPE_CHECKING:
    from leadscore.core.account_scoring import Accounts

Operator = Literal["equals", "in", "matches", "contains", "between", "gt", "gte", "lt", "lte", "exists"]


@dataclass(frozen=True, slots=True)
class Comparison:
    """``{field: traits.title, matches: "..."}``; ``value`` is already resolved (named lists expanded)."""

    field: str
    op: Operator
    value: Any


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition


Condition = Comparison | AllOf | AnyOf | Not


@dataclass(frozen=True, slots=True)
class FitRule:
    id: str
    where: Condition
    points: float
    description: str = ""


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` events per ``per`` seconds (epoch-aligned windows); ``per=None`` is ever."""

    count: int
    per: float | None


@dataclass(frozen=True, slots=True)
class EngagementRule:
    id: str
    on: str  # a track event name, or "page" / "screen" / "identify" / "group"
    points: float
    half_life: float | None  # seconds; None = never decays
    where: Condition | None = None
    cap: float | None = None
    limit: Limit | None = None
    group: str | None = None
    machine: bool = False  # count events flagged as machine activity too
    description: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    max: float
    rules: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ScoringModel:
    version: int
    name: str
    fit_max: float
    fit_rules: tuple[FitRule, ...]
    engagement_max: float
    default_half_life: float | None
    engagement_rules: tuple[EngagementRule, ...]
    group_caps: Mapping[str, float]
    machine: Condition | None
    exclude: tuple[Condition, ...]
    weight_fit: float  # normalised so weight_fit + weight_engagement == 1
    weight_engagement: float
    fit_grades: tuple[tuple[str, float], ...]  # (("A", 75), ("B", 50), ("C", 25)); below last is "D"
    engagement_levels: tuple[tuple[str, float], ...]  # (("1", 75), ("2", 50), ("3", 25)); below is "4"
    temperature: tuple[tuple[str, float], ...]  # (("hot", 70), ("warm", 40)); below is "cold"
    source: str = "<string>"
    raw: Mapping[str, Any] = field(default_factory=dict)  # the validated document, for storage and diffs
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE
    accounts: Accounts | None = None  # the ``accounts`` section; None: the model scores no accounts
    routing: Routing = DEFAULT_ROUTING


@dataclass(frozen=True, slots=True)
class Event:
    """One stored Segment-style message as the core sees it.

    ``record`` is the message as a nested mapping (``properties``, ``context``, ``traits`` …) so
    that conditions can address ``properties.path`` or ``context.userAgent``.
    """

    message_id: str
    ts: float
    type: str  # track | page | screen | identify | group | alias
    name: str | None  # the track event name; None for other types
    record: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Contribution:
    rule: str
    kind: Literal["fit", "engagement"]
    points: float


@dataclass(frozen=True, slots=True)
class ScoreCard:
    contact: str
    at: float
    excluded: bool
    fit: float
    engagement: float
    score: float
    grade: str | None
    engagement_level: str | None
    temperature: str | None
    fit_raw: float
    engagement_raw: float
    breakdown: tuple[Contribution, ...]
