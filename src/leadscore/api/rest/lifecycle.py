"""Sales' actions on a lead (accept, reject, opportunity, won, lost), manual stage moves, the
stage history, BANT qualification and opportunities, under ``/api/contacts/{contact}``.

Sales and admins act; marketing and admins move stages by hand; every reading role reads.
The action is recorded in the stage history as done by the API key's name. A move the
lifecycle does not allow answers 409 ``transition_refused``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request

from leadscore.api.auth import require
from leadscore.api.errors import ApiError
from leadscore.api.rest.common import (
    BAD_REQUEST,
    COMMON_ERRORS,
    NOT_FOUND,
    READ,
    ContactKey,
    database_url,
    example,
    iso_ms,
    iso_s,
    unit_of_work,
)
from leadscore.api.rest.lifecycle_schemas import (
    BantIn,
    BantOut,
    LostIn,
    OpportunityIn,
    OpportunityList,
    OpportunityOut,
    OwnerRef,
    RejectIn,
    StageChangeOut,
    StageIn,
    StagesOut,
    TransitionOut,
)
from leadscore.api.rest.schemas import ErrorOut
from leadscore.core.types import ScoringModel
from leadscore.services import qualification
from leadscore.services.models import published_model
from leadscore.store.bulk import BulkSession
from leadscore.store.keys import ApiKey

router = APIRouter(prefix="/api/contacts", tags=["Lifecycle"], responses=COMMON_ERRORS)

Seller = Annotated[ApiKey, Depends(require("sales"))]
"""Sales' actions and BANT: admin, sales."""
Mover = Annotated[ApiKey, Depends(require("marketing"))]
"""Manual stage moves: admin, marketing."""
T = TypeVar("T")

REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "The contact's stage does not allow this (or no model is published)",
          "content": {"application/json": {"example": {
              "code": "transition_refused", "message": "cannot accept a contact in stage 'lead' (expected mql)"}}}},
}
OPPORTUNITY_EXAMPLE: dict[str, Any] = {
    "id": 7, "account": "acme", "amount": 48000.0, "currency": "EUR", "opened_at": "2026-02-03T10:00:00Z",
    "opened_by": "alice", "closed_at": None, "outcome": None, "reason": None,
}
CHANGE_EXAMPLE: dict[str, Any] = {
    "contact": "u-42", "contact_id": 42, "action": "accept", "from_stage": "mql", "to_stage": "sql",
    "at": "2026-02-01T09:30:00Z", "by": "alice", "reason": None, "opportunity": None,
}
STAGES_EXAMPLE: dict[str, Any] = {
    "contact": "u-42", "stage": "sql", "label": "Sales qualified lead", "entered_at": "2026-02-01T09:30:00Z",
    "owner": {"key": "alice", "name": "Alice Martin"},
    "history": [
        {"from_stage": "mql", "to_stage": "sql", "at": "2026-02-01T09:30:00Z", "cause_kind": "user", "cause": "alice",
         "reason": None, "amount": None, "fit": 75.0, "engagement": 52.0, "score": 61.2, "grade": "A",
         "temperature": "warm"},
        {"from_stage": "lead", "to_stage": "mql", "at": "2026-01-30T16:20:00Z", "cause_kind": "rule", "cause": "mql-demo",
         "reason": None, "amount": None, "fit": 75.0, "engagement": 58.0, "score": 64.8, "grade": "A",
         "temperature": "warm"},
    ],
}
BANT_EXAMPLE: dict[str, Any] = {
    "contact": "u-42", "budget": True, "authority": None, "need": True, "timeline": True,
    "notes": "budget approved for Q2", "temperature": "warm", "gate": "warm", "updated_by": "alice",
    "updated_at": "2026-02-01T09:00:00Z",
}


def _acting_as(key: ApiKey) -> str:
    return key.name or f"key {key.prefix}"


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except qualification.Refused as error:
        raise ApiError(409, "transition_refused", str(error)) from None


def _change(request: Request, contact: str, key: ApiKey, do: Callable[[BulkSession, ScoringModel, int, str], T]) -> T:
    """Run ``do(bulk, model, contact_id, user)`` in one write transaction and commit it."""
    with unit_of_work(request) as uow:
        model = published_model(uow)
    with _refusals(), BulkSession.open(database_url(request)) as bulk:
        result = do(bulk, model, qualification.resolve(bulk, contact), _acting_as(key))
        bulk.commit()
    return result


def _read(request: Request, contact: str, do: Callable[[BulkSession, ScoringModel, int], T]) -> T:
    with unit_of_work(request) as uow:
        model = published_model(uow)
    with BulkSession.open_reader(database_url(request)) as bulk:
        return do(bulk, model, qualification.resolve(bulk, contact))


def _action(request: Request, contact: str, key: ApiKey, action: Any, now: float, **details: Any) -> StageChangeOut:
    change = _change(request, contact, key, lambda bulk, model, contact_id, user: qualification.act(
        bulk, model, contact_id, action, now=now, user=user, **details))
    return change_out(change)


def change_out(change: qualification.StageChange) -> StageChangeOut:
    return StageChangeOut(
        contact=change.contact, contact_id=change.contact_id, action=change.action,  # type: ignore[arg-type]
        from_stage=change.from_stage, to_stage=change.to_stage, at=iso_s(change.at) or "", by=change.by,
        reason=change.reason, opportunity=None if change.opportunity is None else opportunity_out(change.opportunity),
    )


def opportunity_out(item: qualification.Opportunity) -> OpportunityOut:
    return OpportunityOut(id=item.id, account=item.account, amount=item.amount, currency=item.currency,
                          opened_at=iso_ms(item.opened_at) or "", opened_by=item.opened_by,
                          closed_at=iso_ms(item.closed_at), outcome=item.outcome, reason=item.reason)


ACTION_ERRORS = {**NOT_FOUND, **REFUSED, **BAD_REQUEST}


@router.post("/{contact}/accept", summary="Accept an MQL (-> SQL)", response_model=StageChangeOut,
             responses={**example(CHANGE_EXAMPLE), **ACTION_ERRORS})
def accept(request: Request, contact: ContactKey, key: Seller) -> StageChangeOut:
    """Sales accepts a marketing qualified lead: it becomes a sales qualified lead. When the
    model gates this on BANT (`lifecycle.bant.gate`), the lead's BANT must reach the gate."""
    return _action(request, contact, key, "accept", time.time())


@router.post("/{contact}/reject", summary="Reject an MQL or SQL (-> nurturing or disqualified)",
             response_model=StageChangeOut, responses={**example({
                 **CHANGE_EXAMPLE, "action": "reject", "to_stage": "nurturing", "reason": "no budget before 2027"}),
                 **ACTION_ERRORS})
def reject(request: Request, contact: ContactKey, key: Seller, body: RejectIn) -> StageChangeOut:
    """Send the lead back to nurturing (default) or disqualify it, saying why."""
    return _action(request, contact, key, "reject", time.time(), reason=body.reason, reject_to=body.to)


@router.post("/{contact}/opportunity", summary="Open an opportunity (MQL or SQL -> opportunity)",
             response_model=StageChangeOut, responses={**example({
                 **CHANGE_EXAMPLE, "action": "open_opportunity", "from_stage": "sql", "to_stage": "opportunity",
                 "opportunity": OPPORTUNITY_EXAMPLE}), **ACTION_ERRORS})
def open_opportunity(request: Request, contact: ContactKey, key: Seller, body: OpportunityIn) -> StageChangeOut:
    """Record a deal with its expected amount and currency (on the contact's account, when it
    has one); the contact becomes an opportunity."""
    return _action(request, contact, key, "open_opportunity", time.time(), amount=body.amount, currency=body.currency)


@router.post("/{contact}/won", summary="Mark the opportunity won (-> customer)", response_model=StageChangeOut,
             responses={**example({**CHANGE_EXAMPLE, "action": "won", "from_stage": "opportunity", "to_stage": "customer",
                                   "opportunity": {**OPPORTUNITY_EXAMPLE, "closed_at": "2026-03-01T10:00:00Z",
                                                   "outcome": "won"}}), **ACTION_ERRORS})
def won(request: Request, contact: ContactKey, key: Seller) -> StageChangeOut:
    """The deal is signed: the open opportunity closes as won, the contact becomes a customer."""
    return _action(request, contact, key, "won", time.time())


@router.post("/{contact}/lost", summary="Mark the opportunity lost (-> nurturing)", response_model=StageChangeOut,
             responses={**example({**CHANGE_EXAMPLE, "action": "lost", "from_stage": "opportunity", "to_stage": "nurturing",
                                   "reason": "chose a competitor",
                                   "opportunity": {**OPPORTUNITY_EXAMPLE, "closed_at": "2026-03-01T10:00:00Z",
                                                   "outcome": "lost", "reason": "chose a competitor"}}), **ACTION_ERRORS})
def lost(request: Request, contact: ContactKey, key: Seller, body: LostIn) -> StageChangeOut:
    """The deal is lost: the open opportunity closes as lost with the reason, the contact goes
    back to nurturing."""
    return _action(request, contact, key, "lost", time.time(), reason=body.reason)


@router.put("/{contact}/stage", summary="Move a contact to a stage by hand", response_model=StageChangeOut,
            responses={**example({**CHANGE_EXAMPLE, "action": "move", "from_stage": "lead", "to_stage": "mql",
                                  "by": "marketing-ops", "reason": "met at the trade fair"}), **ACTION_ERRORS})
def move(request: Request, contact: ContactKey, key: Mover, body: StageIn) -> StageChangeOut:
    """Admins and marketing move a contact forward along the stages, or along a move the model
    declares under `lifecycle.allow` (e.g. customer -> opportunity for an upsell)."""
    now = time.time()
    change = _change(request, contact, key, lambda bulk, model, contact_id, user: qualification.move(
        bulk, model, contact_id, body.stage, now=now, user=user, reason=body.reason))
    return change_out(change)


@router.get("/{contact}/stages", summary="A contact's stage and stage history", dependencies=READ,
            response_model=StagesOut, responses={**example(STAGES_EXAMPLE), **NOT_FOUND})
def stages(request: Request, contact: ContactKey) -> StagesOut:
    """The current stage (since when, owned by whom) and every transition, newest first, with
    its cause (rule, user, timer) and the scores at that moment."""
    view = _read(request, contact, qualification.history)
    return StagesOut(
        contact=view.contact, stage=view.stage, label=view.label, entered_at=iso_ms(view.entered_at),
        owner=None if view.owner is None else OwnerRef(key=view.owner[0], name=view.owner[1]),
        history=[TransitionOut(**{**row, "at": iso_ms(row["at"]) or ""}) for row in view.history],
    )


@router.get("/{contact}/bant", summary="A lead's BANT qualification", dependencies=READ, response_model=BantOut,
            responses={**example(BANT_EXAMPLE), **NOT_FOUND})
def get_bant(request: Request, contact: ContactKey) -> BantOut:
    """Budget, authority, need, timeline (null: not assessed) and the qualification
    temperature the model's `lifecycle.bant` thresholds give them."""
    return bant_out(_read(request, contact, qualification.bant_of))


@router.put("/{contact}/bant", summary="Record a lead's BANT qualification", response_model=BantOut,
            responses={**example(BANT_EXAMPLE), **NOT_FOUND, **BAD_REQUEST})
def put_bant(request: Request, contact: ContactKey, key: Seller, body: BantIn) -> BantOut:
    """Criteria in the body replace the recorded answers (null: not assessed); criteria left
    out keep theirs. Answers the temperature that results."""
    answers = {name: getattr(body, name) for name in qualification.BANT_FIELDS if name in body.model_fields_set}
    now = time.time()
    view = _change(request, contact, key, lambda bulk, model, contact_id, user: qualification.record_bant(
        bulk, model, contact_id, answers, now=now, user=user, notes=body.notes))
    return bant_out(view)


def bant_out(view: qualification.BantView) -> BantOut:
    return BantOut(contact=view.contact, **view.answers, notes=view.notes, temperature=view.temperature,
                   gate=view.gate, updated_by=view.updated_by, updated_at=iso_ms(view.updated_at))  # type: ignore[arg-type]


@router.get("/{contact}/opportunities", summary="A contact's opportunities", dependencies=READ,
            response_model=OpportunityList, responses={**example({"contact": "u-42", "items": [OPPORTUNITY_EXAMPLE]}),
                                                       **NOT_FOUND})
def list_opportunities(request: Request, contact: ContactKey) -> OpportunityList:
    """Every opportunity opened for the contact, newest first, with its outcome once closed."""
    with BulkSession.open_reader(database_url(request)) as bulk:
        contact_id = qualification.resolve(bulk, contact)
        items = qualification.opportunities_of(bulk, contact_id)
        name = qualification.contact_name(bulk, contact_id)
    return OpportunityList(contact=name, items=[opportunity_out(item) for item in items])
