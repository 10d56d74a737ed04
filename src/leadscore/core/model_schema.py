"""The scoring model file as a pydantic schema: keys, types and the checks one section can make.

Every section forbids unknown keys. Values keep their written form here (durations stay
``"30d"``, conditions stay raw mappings); :mod:`leadscore.core.model` then compiles the
validated document into a :class:`~leadscore.core.types.ScoringModel`, which is where checks
needing the whole file happen (named lists, unique rule ids, known groups).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from leadscore.core.durations import DURATION_HINT, parse_duration
from leadscore.core.accounts_schema import AccountsDoc
from leadscore.core.lifecycle_schema import LifecycleDoc
from leadscore.core.routing_schema import RoutingDoc

SUPPORTED_VERSIONS = (1,)
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

#: Default ``machine`` condition: bots, crawlers, headless browsers, link previews and mail
#: scanners by user agent, or a sender that flags the event itself.
DEFAULT_MACHINE: dict[str, Any] = {
    "any": [
        {"field": "context.userAgent", "matches": "(?i)(bot|crawler|spider|headless|preview|scanner)"},
        {"field": "properties.machine_activity", "equals": True},
    ]
}


def _duration(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"bad duration {value!r} ({DURATION_HINT})")
    parse_duration(value)
    return value


def _rule_id(value: str) -> str:
    if not RULE_ID.fullmatch(value):
        raise ValueError(
            f"bad rule id '{value}': use lower-case letters, digits and . _ - starting with a letter or "
            "digit (ids appear in explanations, URLs and stored score state)"
        )
    return value


def _non_zero(value: float) -> float:
    if value == 0:
        raise ValueError("points must not be zero (remove the rule instead)")
    return value


def _scalar(value: Any) -> Any:
    if isinstance(value, str | bool | int | float):
        return value
    raise ValueError(f"list items are strings, numbers or booleans, got {value!r}")


def _limit(value: Any) -> Any:
    if value == "once":
        return {"count": 1}
    if isinstance(value, str):
        raise ValueError(f"bad limit '{value}': use once, {{count: N}} or {{count: N, per: DURATION}}")
    return value


def _string_keys(value: Any) -> Any:
    """YAML reads ``{1: 75}`` with integer keys; the engagement levels are named ``"1"`` … ``"3"``."""
    if isinstance(value, dict):
        return {str(k) if isinstance(k, int) and not isinstance(k, bool) else k: v for k, v in value.items()}
    return value


Duration = Annotated[Any, AfterValidator(_duration)]
RuleId = Annotated[str, AfterValidator(_rule_id)]
Points = Annotated[float, AfterValidator(_non_zero)]
Scalar = Annotated[Any, AfterValidator(_scalar)]
Threshold = Annotated[float, Field(ge=0, le=100)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class FitRuleDoc(Section):
    id: RuleId
    where: Any
    points: Points
    description: str = ""


class FitDoc(Section):
    max: Annotated[float, Field(gt=0)]
    rules: list[FitRuleDoc]


class LimitDoc(Section):
    count: Annotated[int, Field(ge=1)]
    per: Duration | None = None


class EngagementRuleDoc(Section):
    id: RuleId
    on: Annotated[str, Field(min_length=1)]
    where: Any = None
    points: Points
    cap: Annotated[float, Field(gt=0)] | None = None
    limit: Annotated[LimitDoc | None, BeforeValidator(_limit)] = None
    half_life: Duration | None = None
    group: str | None = None
    machine: bool = False
    description: str = ""


class GroupDoc(Section):
    cap: Annotated[float, Field(gt=0)]
    description: str = ""


class EngagementDoc(Section):
    max: Annotated[float, Field(gt=0)]
    half_life: Duration
    groups: dict[str, GroupDoc] = Field(default_factory=dict)
    rules: list[EngagementRuleDoc]


def _decreasing(thresholds: list[tuple[str, float]]) -> None:
    for (upper_name, upper), (lower_name, lower) in zip(thresholds, thresholds[1:], strict=False):
        if upper <= lower:
            written = ", ".join(f"{name}={value:g}" for name, value in thresholds)
            order = " > ".join(name for name, _ in thresholds)
            raise ValueError(f"thresholds must decrease strictly, {order} (got {written})")


class FitGradesDoc(Section):
    A: Threshold
    B: Threshold
    C: Threshold

    @model_validator(mode="after")
    def _ordered(self) -> FitGradesDoc:
        _decreasing([("A", self.A), ("B", self.B), ("C", self.C)])
        return self


class EngagementLevelsDoc(Section):
    level_1: Threshold = Field(alias="1")
    level_2: Threshold = Field(alias="2")
    level_3: Threshold = Field(alias="3")

    @model_validator(mode="after")
    def _ordered(self) -> EngagementLevelsDoc:
        _decreasing([("1", self.level_1), ("2", self.level_2), ("3", self.level_3)])
        return self


class GradesDoc(Section):
    fit: FitGradesDoc = Field(default_factory=lambda: FitGradesDoc(A=75, B=50, C=25))
    engagement: Annotated[EngagementLevelsDoc, BeforeValidator(_string_keys)] = Field(
        default_factory=lambda: EngagementLevelsDoc.model_validate({"1": 75, "2": 50, "3": 25})
    )


class TemperatureDoc(Section):
    hot: Threshold
    warm: Threshold

    @model_validator(mode="after")
    def _ordered(self) -> TemperatureDoc:
        if self.hot <= self.warm:
            raise ValueError(f"hot must be above warm (got hot={self.hot:g}, warm={self.warm:g})")
        return self


class CombinedDoc(Section):
    fit: Annotated[float, Field(ge=0)]
    engagement: Annotated[float, Field(ge=0)]

    @model_validator(mode="after")
    def _not_both_zero(self) -> CombinedDoc:
        if self.fit == 0 and self.engagement == 0:
            raise ValueError("fit and engagement weights cannot both be zero")
        return self


class ModelDoc(Section):
    """The whole file. ``grades``, ``temperature`` and ``combined`` have the defaults shown."""

    version: Literal[1]
    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    lists: dict[str, list[Scalar]] = Field(default_factory=dict)
    fit: FitDoc
    engagement: EngagementDoc
    machine: Any = None
    exclude: list[Any] = Field(default_factory=list)
    combined: CombinedDoc = Field(default_factory=lambda: CombinedDoc(fit=0.5, engagement=0.5))
    grades: GradesDoc = Field(default_factory=GradesDoc)
    temperature: TemperatureDoc = Field(default_factory=lambda: TemperatureDoc(hot=70, warm=40))
    lifecycle: LifecycleDoc = Field(default_factory=LifecycleDoc)
    accounts: AccountsDoc = Field(default_factory=AccountsDoc)
    routing: RoutingDoc = Field(default_factory=RoutingDoc)


def allowed_keys(loc: tuple[int | str, ...]) -> list[str] | None:
    """The keys the section at ``loc`` (a pydantic error location, without the bad key) accepts."""
    section: type[BaseModel] | None = ModelDoc
    mapping_of: type[BaseModel] | None = None  # set while the next part is a free mapping key
    for part in loc:
        if isinstance(part, int):
            continue
        if mapping_of is not None:
            section, mapping_of = mapping_of, None
            continue
        if section is None:
            return None
        fields = {info.alias or name: info for name, info in section.model_fields.items()}
        if part not in fields:
            return None
        section, mapping_of = _inner_section(fields[part].annotation)
    if section is None or mapping_of is not None:
        return None
    return [info.alias or name for name, info in section.model_fields.items()]


def _inner_section(annotation: Any) -> tuple[type[BaseModel] | None, type[BaseModel] | None]:
    """(section, None) for a section or list/optional of one; (None, section) for dict[str, section]."""
    origin = getattr(annotation, "__origin__", None)
    args = getattr(annotation, "__args__", ())
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, None
    if origin is dict and len(args) == 2:
        inner, _ = _inner_section(args[1])
        return None, inner
    if hasattr(annotation, "__metadata__"):  # Annotated[X, ...]: look at X
        args = (origin,)
    for arg in args:
        inner, free = _inner_section(arg)
        if inner is not None or free is not None:
            return inner, free
    return None, None
