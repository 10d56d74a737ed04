"""The ``lifecycle`` section of the model file as a pydantic schema (every key optional).

```yaml
lifecycle:
  stages:                      # the main path, in order (these are the defaults)
    - {id: visitor, label: Anonymous visitor}
    - {id: subscriber, label: Subscriber}
    - {id: lead, label: Lead}
    - {id: mql, label: Marketing qualified lead}
    - {id: sql, label: Sales qualified lead}
    - {id: opportunity, label: Opportunity}
    - {id: customer, label: Customer}
  rules:                       # automatic transitions, tried every time a contact's scores change
    - id: known
      to: subscriber
      when: {field: traits.email, exists: true}
    - id: mql-fit-and-engagement
      to: mql
      when: {all: [{grade: {at_least: B}}, {engagement_level: {at_least: "2"}}]}
    - id: mql-demo
      to: mql
      when: {rule: demo-request}
  allow:                       # exceptions to forward-only, for manual moves
    - {from: customer, to: opportunity}
  recycle: {below: 30, grace: 7d}              # an MQL under 30 for 7 days goes to nurturing
  nurturing: {min_stay: 14d, max_stay: 180d, then: reevaluate}
  sla: {accept_within: 48h, on_breach: reassign}
  bant:
    hot: {met: 4}
    warm: {met: 2, require: [need]}
    gate: warm                 # MQL -> SQL needs at least a warm BANT (null: no gate)
```

The side stages ``nurturing`` and ``disqualified`` always exist. Stage conditions (``when``)
stay raw mappings here; :mod:`leadscore.core.lifecycle` compiles them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from leadscore.core.durations import DURATION_HINT, parse_duration

MAIN_STAGES = ("visitor", "subscriber", "lead", "mql", "sql", "opportunity", "customer")
"""The built-in main path; a model may add its own stages between them, never drop or reorder these."""
SIDE_STAGES = ("nurturing", "disqualified")
STAGE_LABELS = {
    "visitor": "Anonymous visitor",
    "subscriber": "Subscriber",
    "lead": "Lead",
    "mql": "Marketing qualified lead",
    "sql": "Sales qualified lead",
    "opportunity": "Opportunity",
    "customer": "Customer",
    "nurturing": "Nurturing",
    "disqualified": "Disqualified",
}
BANT_CRITERIA = ("budget", "authority", "need", "timeline")
STAGE_ID = r"^[a-z][a-z0-9_-]*$"


def _duration(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"bad duration {value!r} ({DURATION_HINT})")
    parse_duration(value)
    return value


Duration = Annotated[Any, AfterValidator(_duration)]
StageId = Annotated[str, Field(pattern=STAGE_ID)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StageDoc(Section):
    id: StageId
    label: str = ""


class StageRuleDoc(Section):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    to: StageId
    when: Any
    description: str = ""


class AllowDoc(Section):
    from_: StageId = Field(alias="from")
    to: StageId

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class RecycleDoc(Section):
    below: Annotated[float, Field(ge=0, le=100)]
    grace: Duration | None = None  # none: at once
    to: Literal["nurturing", "disqualified"] = "nurturing"


class NurturingDoc(Section):
    min_stay: Duration | None = None  # none: may re-qualify at once
    max_stay: Duration | None = None
    then: Literal["reevaluate", "disqualify"] = "reevaluate"

    @model_validator(mode="after")
    def _ordered(self) -> NurturingDoc:
        if self.max_stay is not None and self.max_stay != "never":
            low = 0.0 if self.min_stay is None else parse_duration(self.min_stay) or 0.0
            high = parse_duration(self.max_stay)
            if high is not None and high <= low:
                raise ValueError(f"max_stay ({self.max_stay}) must be longer than min_stay ({self.min_stay})")
        return self


class SlaDoc(Section):
    accept_within: Duration
    on_breach: Literal["reassign", "escalate"] = "escalate"


class BantLevelDoc(Section):
    met: Annotated[int, Field(ge=0, le=4)]
    require: list[Literal["budget", "authority", "need", "timeline"]] = Field(default_factory=list)


class BantDoc(Section):
    hot: BantLevelDoc = Field(default_factory=lambda: BantLevelDoc(met=4))
    warm: BantLevelDoc = Field(default_factory=lambda: BantLevelDoc(met=2, require=["need"]))
    gate: Literal["hot", "warm"] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> BantDoc:
        if self.hot.met < self.warm.met:
            raise ValueError(f"hot must need at least as many criteria as warm (hot {self.hot.met}, warm {self.warm.met})")
        return self


def _default_stages() -> list[StageDoc]:
    return [StageDoc(id=stage, label=STAGE_LABELS[stage]) for stage in MAIN_STAGES]


class LifecycleDoc(Section):
    stages: list[StageDoc] = Field(default_factory=_default_stages)
    rules: list[StageRuleDoc] = Field(default_factory=list)
    allow: list[AllowDoc] = Field(default_factory=list)
    recycle: RecycleDoc | None = None
    nurturing: NurturingDoc = Field(default_factory=NurturingDoc)
    sla: SlaDoc | None = None
    bant: BantDoc = Field(default_factory=BantDoc)

    @model_validator(mode="after")
    def _main_path(self) -> LifecycleDoc:
        ids = [stage.id for stage in self.stages]
        duplicates = sorted({stage for stage in ids if ids.count(stage) > 1})
        if duplicates:
            raise ValueError(f"stage ids must be unique (repeated: {', '.join(duplicates)})")
        clash = [stage for stage in ids if stage in SIDE_STAGES]
        if clash:
            raise ValueError(f"{', '.join(clash)} is a side stage, always present: do not list it under stages")
        built_in = [stage for stage in ids if stage in MAIN_STAGES]
        if tuple(built_in) != MAIN_STAGES:
            raise ValueError(
                "stages must keep the built-in stages, in this order: " + " -> ".join(MAIN_STAGES)
                + " (you may add your own between them)"
            )
        return self
