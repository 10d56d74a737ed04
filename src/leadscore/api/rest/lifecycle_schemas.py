"""Request and response bodies of sales' lifecycle routes (:mod:`leadscore.api.rest.lifecycle`):
actions, manual moves, stage history, BANT, opportunities. Times are ISO 8601 UTC text."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000, description="why sales rejects the lead")
    to: Literal["nurturing", "disqualified"] = Field("nurturing", description="where the lead goes")


class OpportunityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: float = Field(ge=0, allow_inf_nan=False, description="expected deal value")
    currency: str = Field("EUR", pattern=r"^[A-Za-z]{3}$", description="ISO 4217 code")


class LostIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000, description="why the deal was lost")


class StageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str = Field(min_length=1, max_length=100, description="target stage: forward, or a move the model allows")
    reason: str | None = Field(None, max_length=2000)


class BantIn(BaseModel):
    """Criteria given replace the stored answers (null: not assessed); absent ones keep theirs."""

    model_config = ConfigDict(extra="forbid")

    budget: bool | None = None
    authority: bool | None = None
    need: bool | None = None
    timeline: bool | None = None
    notes: str | None = Field(None, max_length=5000, description="replaces the notes; \"\" clears them")


class OpportunityOut(BaseModel):
    id: int
    account: str | None = Field(description="the contact's account key when it was opened")
    amount: float | None
    currency: str | None
    opened_at: str
    opened_by: str | None
    closed_at: str | None
    outcome: Literal["won", "lost"] | None
    reason: str | None


class OpportunityList(BaseModel):
    contact: str
    items: list[OpportunityOut] = Field(description="newest first")


class StageChangeOut(BaseModel):
    contact: str
    contact_id: int
    action: Literal["accept", "reject", "open_opportunity", "won", "lost", "move"]
    from_stage: str
    to_stage: str
    at: str
    by: str = Field(description="who did it (the API key's name)")
    reason: str | None
    opportunity: OpportunityOut | None = Field(description="the opportunity opened or closed")


class OwnerRef(BaseModel):
    key: str
    name: str | None


class TransitionOut(BaseModel):
    from_stage: str | None
    to_stage: str
    at: str
    cause_kind: str = Field(description="rule, user, timer or import")
    cause: str | None = Field(description="the rule id, user or timer")
    reason: str | None
    amount: float | None
    fit: float | None
    engagement: float | None
    score: float | None
    grade: str | None
    temperature: str | None


class StagesOut(BaseModel):
    contact: str
    stage: str
    label: str
    entered_at: str | None = Field(description="null: never moved (still in the first stage)")
    owner: OwnerRef | None
    history: list[TransitionOut] = Field(description="newest first")


class BantOut(BaseModel):
    contact: str
    budget: bool | None
    authority: bool | None
    need: bool | None
    timeline: bool | None
    notes: str | None
    temperature: Literal["hot", "warm", "cold"] | None = Field(description="null: nothing recorded yet")
    gate: Literal["hot", "warm"] | None = Field(description="the BANT temperature the model requires to accept an MQL")
    updated_by: str | None
    updated_at: str | None
