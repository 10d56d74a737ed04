"""The lifecycle state machine: stages, which moves are allowed, sales' manual actions and the
BANT qualification temperature. Pure: no I/O, no clock.

A contact walks the main path (visitor → subscriber → lead → MQL → SQL → opportunity →
customer, plus any stages the model adds between them) forward only; it may also be parked in
the side stages ``nurturing`` (recycled) and ``disqualified``. The moves off the forward path
are the manual actions below (reject, lost, re-evaluation after nurturing) and the ``allow``
exceptions the model file declares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from leadscore.core.durations import parse_duration
from leadscore.core.lifecycle_schema import BANT_CRITERIA, MAIN_STAGES, SIDE_STAGES, STAGE_LABELS, LifecycleDoc

VISITOR, SUBSCRIBER, LEAD, MQL, SQL, OPPORTUNITY, CUSTOMER = MAIN_STAGES
NURTURING, DISQUALIFIED = SIDE_STAGES

Action = Literal["accept", "reject", "open_opportunity", "won", "lost"]
ACTIONS: tuple[Action, ...] = ("accept", "reject", "open_opportunity", "won", "lost")
BantTemperature = Literal["hot", "warm", "cold"]


class TransitionRefused(ValueError):
    """A stage change the lifecycle does not allow (the message says why and what would be)."""


@dataclass(frozen=True, slots=True)
class StageRule:
    """An automatic transition: move to ``to`` when ``when`` holds (compiled by the stage
    condition module)."""

    id: str
    to: str
    when: Any
    description: str = ""


@dataclass(frozen=True, slots=True)
class Recycle:
    below: float  # combined score
    grace: float  # seconds
    to: str


@dataclass(frozen=True, slots=True)
class Nurturing:
    min_stay: float  # seconds
    max_stay: float | None  # seconds; None: stays until something else moves it
    then: Literal["reevaluate", "disqualify"]


@dataclass(frozen=True, slots=True)
class Sla:
    accept_within: float  # seconds
    on_breach: Literal["reassign", "escalate"]


@dataclass(frozen=True, slots=True)
class BantLevel:
    met: int
    require: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Bant:
    hot: BantLevel
    warm: BantLevel
    gate: BantTemperature | None


@dataclass(frozen=True, slots=True)
class Lifecycle:
    stages: tuple[str, ...]  # the main path, in order
    labels: Mapping[str, str]
    rules: tuple[StageRule, ...]
    allow: frozenset[tuple[str, str]]
    recycle: Recycle | None
    nurturing: Nurturing
    sla: Sla | None
    bant: Bant
    rank: Mapping[str, int] = field(default_factory=dict)  # main-path position; side stages absent

    @property
    def all_stages(self) -> tuple[str, ...]:
        return (*self.stages, *SIDE_STAGES)

    @property
    def first(self) -> str:
        return self.stages[0]


def compile_lifecycle(doc: LifecycleDoc, rules: tuple[StageRule, ...] = ()) -> Lifecycle:
    """The compiled section; ``rules`` are the automatic transitions, their conditions already
    compiled (stage ids are checked by :func:`check_stage`)."""
    stages = tuple(stage.id for stage in doc.stages)
    labels = {**STAGE_LABELS, **{stage.id: stage.label or STAGE_LABELS.get(stage.id, stage.id) for stage in doc.stages}}
    recycle = None
    if doc.recycle is not None:
        recycle = Recycle(doc.recycle.below, _seconds(doc.recycle.grace), doc.recycle.to)
    sla = None
    if doc.sla is not None:
        sla = Sla(parse_duration(doc.sla.accept_within) or 0.0, doc.sla.on_breach)
    nurturing = Nurturing(
        _seconds(doc.nurturing.min_stay),
        None if doc.nurturing.max_stay is None else parse_duration(doc.nurturing.max_stay),
        doc.nurturing.then,
    )
    bant = Bant(
        BantLevel(doc.bant.hot.met, tuple(doc.bant.hot.require)),
        BantLevel(doc.bant.warm.met, tuple(doc.bant.warm.require)),
        doc.bant.gate,
    )
    return Lifecycle(
        stages=stages,
        labels=labels,
        rules=rules,
        allow=frozenset((item.from_, item.to) for item in doc.allow),
        recycle=recycle,
        nurturing=nurturing,
        sla=sla,
        bant=bant,
        rank={stage: position for position, stage in enumerate(stages)},
    )


def _seconds(duration: str | None) -> float:
    """A duration that may be absent (zero) but not ``never``."""
    return 0.0 if duration is None else parse_duration(duration) or 0.0


DEFAULT_LIFECYCLE = compile_lifecycle(LifecycleDoc())


def check_stage(lifecycle: Lifecycle, stage: str) -> str | None:
    """None when ``stage`` exists, else the reason (for model-file errors and API input)."""
    if stage in lifecycle.rank or stage in SIDE_STAGES:
        return None
    return f"unknown stage '{stage}' (stages: {', '.join(lifecycle.all_stages)})"


def is_forward(lifecycle: Lifecycle, current: str, target: str) -> bool:
    """True when ``target`` is further along the main path than ``current``."""
    if target not in lifecycle.rank:
        return False
    if current in SIDE_STAGES:
        return False
    return lifecycle.rank[target] > lifecycle.rank.get(current, -1)


def may_move(lifecycle: Lifecycle, current: str, target: str) -> bool:
    """A manual move to any stage: forward, or a declared ``allow`` exception."""
    return current != target and (is_forward(lifecycle, current, target) or (current, target) in lifecycle.allow)


def manual_target(
    lifecycle: Lifecycle, current: str, action: Action, *, reject_to: str = NURTURING, bant: BantTemperature | None = None
) -> str:
    """The stage sales' ``action`` moves a contact in ``current`` to, or :class:`TransitionRefused`.

    - ``accept`` an MQL → SQL (when the model gates it on BANT, ``bant`` must reach the gate);
    - ``reject`` an MQL (or SQL) → ``nurturing`` or ``disqualified`` (``reject_to``);
    - ``open_opportunity`` from MQL or SQL → opportunity;
    - ``won`` an opportunity → customer; ``lost`` → nurturing.
    """
    def refuse(expected: str) -> TransitionRefused:
        return TransitionRefused(f"cannot {action.replace('_', ' ')} a contact in stage '{current}' (expected {expected})")

    if action == "accept":
        if current != MQL:
            raise refuse("mql")
        gate = lifecycle.bant.gate
        if gate is not None and not bant_reaches(bant, gate):
            raise TransitionRefused(
                f"the model requires a {gate} BANT qualification to accept an MQL (this lead's is {bant or 'not recorded'})"
            )
        return SQL
    if action == "reject":
        if current not in (MQL, SQL):
            raise refuse("mql or sql")
        if reject_to not in SIDE_STAGES:
            raise TransitionRefused(f"a rejected lead goes to nurturing or disqualified, not '{reject_to}'")
        return reject_to
    if action == "open_opportunity":
        if current not in (MQL, SQL):
            raise refuse("mql or sql")
        return OPPORTUNITY
    if action == "won":
        if current != OPPORTUNITY:
            raise refuse("opportunity")
        return CUSTOMER
    if action == "lost":
        if current != OPPORTUNITY:
            raise refuse("opportunity")
        return NURTURING
    raise TransitionRefused(f"unknown action '{action}' (actions: {', '.join(ACTIONS)})")


def bant_temperature(lifecycle: Lifecycle, answers: Mapping[str, bool | None]) -> BantTemperature:
    """hot / warm / cold from the four BANT answers (``None``: not assessed, counts as not met)."""
    met = {criterion for criterion in BANT_CRITERIA if answers.get(criterion) is True}
    for name, level in (("hot", lifecycle.bant.hot), ("warm", lifecycle.bant.warm)):
        if len(met) >= level.met and all(criterion in met for criterion in level.require):
            return name  # type: ignore[return-value]
    return "cold"


def bant_reaches(temperature: BantTemperature | None, gate: BantTemperature) -> bool:
    order = {"cold": 0, "warm": 1, "hot": 2}
    return temperature is not None and order[temperature] >= order[gate]
