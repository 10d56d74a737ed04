"""Sales' work on a lead: accept an MQL, reject it, open an opportunity, mark it won or lost,
move a contact to another stage by hand, record its BANT qualification; and the reads that go
with them (current stage and history, BANT, opportunities).

Every stage change goes through :func:`leadscore.services.lifecycle.apply_transitions` (the
single writer of stages), with ``cause_kind`` ``user`` and the user's name as ``cause``; the
lifecycle's rules (:func:`leadscore.core.lifecycle.manual_target`, :func:`may_move`) decide
whether it is allowed. The contact is locked first (PostgreSQL: ``FOR UPDATE``), so two
salespeople acting on one lead take turns and the second sees the first one's stage. Nothing
here commits: the caller does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from leadscore.core.lifecycle import (
    Action,
    BantTemperature,
    TransitionRefused,
    bant_temperature,
    check_stage,
    manual_target,
    may_move,
)
from leadscore.core import stage_conditions
from leadscore.core.types import ScoringModel
from leadscore.services.errors import LeadscoreError, NotFound
from leadscore.services.lifecycle import TRANSITION_SCHEMA, apply_transitions, scores_written
from leadscore.store import bulk_qualification as store
from leadscore.store.bulk import BulkSession

DEFAULT_CURRENCY = "EUR"
BANT_FIELDS = store.BANT_FIELDS
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class Refused(LeadscoreError):
    """The lifecycle does not allow this stage change now (HTTP 409, exit code 7)."""

    exit_code = 7


class InvalidAction(LeadscoreError):
    """An action asked with missing or wrong details: no reason, a bad amount or currency, an
    unknown stage (HTTP 400, exit code 2)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Opportunity:
    id: int
    account: str | None  # account key
    amount: float | None
    currency: str | None
    opened_at: int  # ms
    opened_by: str | None
    closed_at: int | None
    outcome: Literal["won", "lost"] | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class StageChange:
    """What an action did: the contact moved from ``from_stage`` to ``to_stage`` at ``at``."""

    contact_id: int
    contact: str
    action: str
    from_stage: str
    to_stage: str
    at: float  # seconds
    by: str
    reason: str | None
    opportunity: Opportunity | None


@dataclass(frozen=True, slots=True)
class BantView:
    contact_id: int
    contact: str
    answers: dict[str, bool | None]
    notes: str | None
    temperature: BantTemperature | None  # None: nothing recorded yet
    gate: str | None  # the model's MQL -> SQL gate
    updated_by: str | None
    updated_at: int | None  # ms


@dataclass(frozen=True, slots=True)
class StageView:
    contact_id: int
    contact: str
    stage: str
    label: str
    entered_at: int | None  # ms; None: never moved (still in the first stage)
    owner: tuple[str, str | None] | None  # (key, name)
    history: list[dict[str, Any]]  # newest first, columns of store.HISTORY_SCHEMA


def resolve(bulk: BulkSession, key: str) -> int:
    """The id of the contact named ``key`` (user id, anonymous id, e-mail or ``#ID``)."""
    contact_id = store.find_contact(bulk.writer, key)
    if contact_id is None:
        raise NotFound(f"no contact with user id, anonymous id or e-mail {key!r}")
    return contact_id


def contact_name(bulk: BulkSession, contact_id: int) -> str:
    """How answers name the contact: its user id, else anonymous id, else ``#ID``."""
    label = store.contact_label(bulk.writer, contact_id)
    if label is None:
        raise NotFound(f"no contact #{contact_id}")
    return label


def act(
    bulk: BulkSession,
    model: ScoringModel,
    contact_id: int,
    action: Action,
    *,
    now: float,
    user: str,
    reason: str | None = None,
    reject_to: str = "nurturing",
    amount: float | None = None,
    currency: str | None = None,
) -> StageChange:
    """Apply sales' ``action`` (accept, reject, open_opportunity, won, lost) to the contact at
    ``now`` (seconds) on behalf of ``user``. Raises :class:`Refused` when its stage does not
    allow it, :class:`InvalidAction` when details are missing, :class:`NotFound`."""
    reason = _text(reason)
    if action in ("reject", "lost") and reason is None:
        raise InvalidAction(f"say why: {action} needs a reason")
    if action == "open_opportunity":
        amount, currency = _amount(amount), _currency(currency)
    label = _lock(bulk, contact_id)
    current = _stage_of(bulk, model, contact_id)
    bant = store.read_bant(bulk.writer, contact_id)
    temperature = None if bant is None else bant_temperature(model.lifecycle, bant)
    try:
        target = manual_target(model.lifecycle, current, action, reject_to=reject_to, bant=temperature)
    except TransitionRefused as error:
        raise Refused(_worded(str(error), action)) from None
    at_ms = _ms(now)
    opportunity_id: int | None = None
    moved_amount: float | None = None
    if action == "open_opportunity":
        assert amount is not None and currency is not None
        opportunity_id = store.open_opportunity(bulk.writer, contact_id, amount=amount, currency=currency, at_ms=at_ms, by=user)
        moved_amount = amount
    elif action in ("won", "lost"):
        open_one = store.open_opportunity_of(bulk.writer, contact_id)
        if open_one is not None:
            opportunity_id = int(open_one["id"])
            moved_amount = open_one["amount"]
            store.close_opportunity(bulk.writer, opportunity_id, outcome=action, reason=reason, at_ms=at_ms)
    _transition(bulk, model, contact_id, target, now=now, user=user, reason=reason, amount=moved_amount)
    opportunity = None
    if opportunity_id is not None:
        opportunity = next(o for o in opportunities_of(bulk, contact_id) if o.id == opportunity_id)
    return StageChange(contact_id, label, action, current, target, now, user, reason, opportunity)


def move(
    bulk: BulkSession, model: ScoringModel, contact_id: int, stage: str, *, now: float, user: str, reason: str | None = None
) -> StageChange:
    """Move the contact to ``stage`` by hand (admins, marketing): forward along the main path,
    or a move the model's ``lifecycle.allow`` declares. :class:`Refused` otherwise."""
    problem = check_stage(model.lifecycle, stage)
    if problem is not None:
        raise InvalidAction(problem)
    label = _lock(bulk, contact_id)
    current = _stage_of(bulk, model, contact_id)
    if not may_move(model.lifecycle, current, stage):
        already = current == stage
        raise Refused(
            f"the contact is already in stage '{stage}'" if already else
            f"cannot move a contact from '{current}' to '{stage}': stages only move forward"
            " (declare the exception under lifecycle.allow in the model file)"
        )
    reason = _text(reason)
    _transition(bulk, model, contact_id, stage, now=now, user=user, reason=reason, amount=None)
    return StageChange(contact_id, label, "move", current, stage, now, user, reason, None)


def record_bant(
    bulk: BulkSession,
    model: ScoringModel,
    contact_id: int,
    answers: Mapping[str, bool | None],
    *,
    now: float,
    user: str,
    notes: str | None = None,
) -> BantView:
    """Record BANT answers: the keys of ``answers`` given (budget, authority, need, timeline;
    ``None`` = not assessed) replace the stored ones, the others keep their value; ``notes``
    replaces the notes when given (``""`` clears them). When the model's rules read BANT, they
    are tried on the contact at once (it may move, cause ``rule``)."""
    unknown = sorted(set(answers) - set(BANT_FIELDS))
    if unknown:
        raise InvalidAction(f"unknown BANT criteria {', '.join(unknown)} (criteria: {', '.join(BANT_FIELDS)})")
    _lock(bulk, contact_id)
    stored = store.read_bant(bulk.writer, contact_id) or {name: None for name in store.BANT_SCHEMA}
    row = {**stored, **answers, "updated_by": user, "updated_at": _ms(now)}
    if notes is not None:
        row["notes"] = notes.strip() or None
    store.write_bant(bulk.writer, contact_id, row)
    if "bant" in stage_conditions.rules_need(model.lifecycle):  # e.g. to: mql when {bant: {at_least: warm}}
        scores_written(bulk, model, None, pl.Series("contact_id", [contact_id], dtype=pl.Int64), now=now)
    return bant_of(bulk, model, contact_id)


def bant_of(bulk: BulkSession, model: ScoringModel, contact_id: int) -> BantView:
    """The contact's BANT answers and qualification temperature (all unassessed, temperature
    None, when nothing is recorded)."""
    label = contact_name(bulk, contact_id)
    row = store.read_bant(bulk.writer, contact_id)
    gate = model.lifecycle.bant.gate
    if row is None:
        return BantView(contact_id, label, dict.fromkeys(BANT_FIELDS), None, None, gate, None, None)
    answers = {name: row[name] for name in BANT_FIELDS}
    return BantView(contact_id, label, answers, row["notes"], bant_temperature(model.lifecycle, answers), gate,
                    row["updated_by"], row["updated_at"])


def history(bulk: BulkSession, model: ScoringModel, contact_id: int) -> StageView:
    """The contact's current stage (when it entered it, its owner) and every transition, newest
    first."""
    label = contact_name(bulk, contact_id)
    current = store.current_stage(bulk.writer, contact_id)
    stage = model.lifecycle.first if current is None else current["stage"]
    owner = None
    if current is not None and current["owner_key"] is not None:
        owner = (current["owner_key"], current["owner_name"])
    return StageView(
        contact_id=contact_id,
        contact=label,
        stage=stage,
        label=model.lifecycle.labels.get(stage, stage),
        entered_at=None if current is None else current["entered_at"],
        owner=owner,
        history=store.history(bulk.writer, contact_id).to_dicts(),
    )


def opportunities_of(bulk: BulkSession, contact_id: int) -> list[Opportunity]:
    """The contact's opportunities, newest first."""
    contact_name(bulk, contact_id)
    return [
        Opportunity(row["id"], row["account_key"], row["amount"], row["currency"], row["opened_at"], row["opened_by"],
                    row["closed_at"], row["outcome"], row["reason"])
        for row in store.opportunities(bulk.writer, contact_id).iter_rows(named=True)
    ]


# --------------------------------------------------------------------------- helpers


def _transition(
    bulk: BulkSession, model: ScoringModel, contact_id: int, target: str, *, now: float, user: str,
    reason: str | None, amount: float | None,
) -> None:
    """One stage change through the lifecycle's single writer."""
    transitions = pl.DataFrame(
        [{"contact_id": contact_id, "to_stage": target, "cause_kind": "user", "cause": user, "reason": reason,
          "amount": amount}],
        schema=TRANSITION_SCHEMA,
    )
    apply_transitions(bulk, model, transitions, now=now)


def _lock(bulk: BulkSession, contact_id: int) -> str:
    if bulk.lock_contacts(pl.Series("contact_id", [contact_id], dtype=pl.Int64)).is_empty():
        raise NotFound(f"no contact #{contact_id}")
    return contact_name(bulk, contact_id)


def _stage_of(bulk: BulkSession, model: ScoringModel, contact_id: int) -> str:
    current = store.current_stage(bulk.writer, contact_id)
    return model.lifecycle.first if current is None else str(current["stage"])


_WORDS = {"open_opportunity": "open an opportunity for", "won": "mark as won", "lost": "mark as lost"}


def _worded(message: str, action: str) -> str:
    """The core's refusal in plain words ("cannot mark as won a contact…", not "cannot won…")."""
    plain = f"cannot {action.replace('_', ' ')} "
    if action in _WORDS and message.startswith(plain):
        return f"cannot {_WORDS[action]} " + message[len(plain):]
    return message


def _text(value: str | None) -> str | None:
    return None if value is None or not value.strip() else value.strip()


def _amount(amount: float | None) -> float:
    if amount is None:
        raise InvalidAction("an opportunity needs an amount")
    if not math.isfinite(amount) or amount < 0:
        raise InvalidAction(f"an opportunity's amount must be a number of at least 0, not {amount}")
    return float(amount)


def _currency(currency: str | None) -> str:
    code = DEFAULT_CURRENCY if currency is None or not currency.strip() else currency.strip().upper()
    if not _CURRENCY.match(code):
        raise InvalidAction(f"{currency!r} is not a currency: use a three-letter ISO 4217 code like EUR or USD")
    return code


def _ms(seconds: float) -> int:
    return math.floor(seconds * 1000)  # as the lifecycle stamps its rows
