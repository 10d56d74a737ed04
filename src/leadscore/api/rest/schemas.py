"""Request and response bodies of the REST API (what /docs documents). Times are ISO 8601 UTC
text (``2026-01-31T00:00:00Z``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorOut(BaseModel):
    """Every error: a stable machine code and a sentence."""

    code: str
    message: str


# contacts -------------------------------------------------------------------------------------


class IdentityOut(BaseModel):
    kind: Literal["user_id", "anonymous_id", "email"]
    value: str


class AccountRef(BaseModel):
    key: str
    name: str | None
    domain: str | None


class ContactOut(BaseModel):
    id: int = Field(description="internal id; `#ID` names the contact in URLs too")
    user_id: str | None
    anonymous_id: str | None
    email: str | None
    traits: dict[str, Any]
    account: AccountRef | None
    identities: list[IdentityOut]
    excluded: bool = Field(description="matched one of the model's exclusions: never a lead")
    fit_raw: float = Field(description="raw fit points (before clipping and scaling)")
    first_seen_at: str | None
    last_event_at: str | None
    created_at: str
    updated_at: str


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    userId: str = Field(min_length=1, max_length=256, description="the contact's user id (Segment `userId`)")
    traits: dict[str, Any] = Field(default_factory=dict, description="traits as an identify call sends them")


class ContactDeleted(BaseModel):
    events: int
    identities: int
    score_state: int
    merges: int


# scores ---------------------------------------------------------------------------------------


class ContributionOut(BaseModel):
    rule: str
    kind: Literal["fit", "engagement"]
    points: float = Field(description="raw points after decay and caps, before scaling")


class ScoreOut(BaseModel):
    """The `leadscore explain --format json` document."""

    contact: str
    at: str
    excluded: bool
    fit: float
    engagement: float
    score: float
    grade: str | None
    engagement_level: str | None
    temperature: str | None
    fit_raw: float
    engagement_raw: float
    breakdown: list[ContributionOut]


class RulePoints(BaseModel):
    rule: str
    points: float = Field(description="the rule's points when the event happened (before decay and caps)")


class TimelineEventOut(BaseModel):
    message_id: str
    type: str
    event: str | None
    timestamp: str
    received_at: str
    user_id: str | None
    anonymous_id: str | None
    properties: dict[str, Any] | None
    context: dict[str, Any] | None
    traits: dict[str, Any] | None
    machine: bool
    points: float = Field(description="sum of the rules' points")
    rules: list[RulePoints] = Field(description="engagement rules that counted this event")


class MergeOut(BaseModel):
    merged_contact_id: int
    cause: Literal["identify", "alias", "email"] | str
    identity_kind: str | None
    identity_value: str | None
    events_moved: int
    merged_at: str


class TimelineOut(BaseModel):
    contact: str
    events: list[TimelineEventOut] = Field(description="newest first")
    merges: list[MergeOut] = Field(description="contacts merged into this one, newest first (every page)")
    next_cursor: str | None


# leads and accounts ---------------------------------------------------------------------------


class LeadOut(BaseModel):
    contact: str
    contact_id: int
    email: str | None
    score: float
    fit: float
    engagement: float
    grade: str | None
    engagement_level: str | None
    temperature: str | None
    stage: str = Field(description="lifecycle stage (a contact never moved is in the model's first stage)")
    owner: str | None = Field(description="the owner's key (null: unassigned)")


class LeadPage(BaseModel):
    at: str = Field(description="the moment the scores are for (kept in the cursor)")
    items: list[LeadOut]
    next_cursor: str | None


class RoleCoverage(BaseModel):
    present: int = Field(description="contacts of the account holding this buying-committee role")
    engaged: int = Field(description="those of them engaged (engagement at or above `accounts.engaged`)")
    contacts: list[int] = Field(description="ids of up to 25 of them, the most engaged first")


class AccountOwner(BaseModel):
    id: int
    key: str
    name: str | None


class AccountOut(BaseModel):
    key: str
    name: str | None
    domain: str | None
    traits: dict[str, Any]
    created_at: str
    updated_at: str
    score: float | None = Field(description="account score 0-100 (null: not scored, the model has no accounts section)")
    fit: float | None = Field(description="account fit 0-100, from the account fit rules")
    engagement: float | None = Field(description="engagement 0-100 rolled up from the account's contacts")
    grade: str | None = Field(description="A-D, on the account fit")
    temperature: str | None = Field(description="hot, warm or cold, on the account score")
    coverage: dict[str, RoleCoverage] | None = Field(description="buying-committee coverage, per declared role")
    contacts_scored: int | None = Field(description="contacts counted in the scores (excluded ones never are)")
    qualified: bool = Field(description="a marketing-qualified account (MQA) now")
    qualified_at: str | None = Field(description="when its current qualification began")
    owner: AccountOwner | None = Field(description="the salesperson who owns the account")
    scored_at: str | None = Field(description="when the scores were last computed")


class AccountPage(BaseModel):
    items: list[AccountOut]
    next_cursor: str | None


class ContactSummary(BaseModel):
    id: int
    user_id: str | None
    anonymous_id: str | None
    email: str | None


class AccountDetail(AccountOut):
    contacts: list[ContactSummary] = Field(description="the first contacts by id (see contacts_limit)")
    contacts_total: int


# models ---------------------------------------------------------------------------------------


class ModelRevisionOut(BaseModel):
    revision: int
    name: str
    version: int
    status: Literal["draft", "published", "retired"] | str
    checksum: str
    created_at: str
    published_at: str | None


class ModelRevisionDetail(ModelRevisionOut):
    yaml: str


class ModelList(BaseModel):
    items: list[ModelRevisionOut] = Field(description="every revision, newest first")


class ModelValidation(BaseModel):
    valid: bool
    name: str
    fit_rules: int
    engagement_rules: int
    exclusions: int


class ModelDiffOut(BaseModel):
    revision: int
    against: int | None = Field(description="the published revision (null when none is)")
    diff: str = Field(description="unified diff from the published file to this one; empty when identical")


class RescoreOut(BaseModel):
    contacts: int
    events: int


class PublishOut(BaseModel):
    revision: int
    name: str
    changed: bool = Field(description="false when this revision already was the published one")
    rescored: RescoreOut | None = Field(description="the full rescore run after publishing (null when unchanged)")


# keys -----------------------------------------------------------------------------------------


class KeyOut(BaseModel):
    id: int
    kind: Literal["api", "write"]
    name: str | None
    prefix: str = Field(description="the secret's first characters, to recognise it")
    role: str | None = Field(description="API keys: admin, marketing, sales or ingest")
    origins: list[str] = Field(description="write keys: web sites allowed to send from a browser")
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class KeyList(BaseModel):
    items: list[KeyOut]


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["admin", "marketing", "sales", "ingest"] | None = Field(None, description="an API key with this role")
    write_key: bool = Field(False, description="a Segment write key instead of an API key")
    origins: list[str] = Field(default_factory=list, description="write keys: allowed web site origins")
    name: str | None = Field(None, max_length=200)


class NewKeyOut(KeyOut):
    secret: str = Field(description="the key itself: shown only in this answer, never again")


# reports --------------------------------------------------------------------------------------


class FunnelStageOut(BaseModel):
    stage: str
    label: str
    contacts: int = Field(description="contacts that reached the stage (or a later one) — first time only")
    conversion: float | None = Field(description="contacts / previous stage's contacts (null on the first stage or after 0)")


class FunnelGroupOut(BaseModel):
    group: str | None = Field(description="owner key or account key (null: none)")
    stages: list[FunnelStageOut]
    overall_conversion: float | None
    nurturing: int
    disqualified: int


class FunnelOut(BaseModel):
    from_: str | None = Field(alias="from", serialization_alias="from")
    to: str
    mode: Literal["entered", "cohort"]
    until: str | None = Field(description="cohort: stages reached up to this moment")
    by: Literal["owner", "account"] | None
    stages: list[FunnelStageOut]
    overall_conversion: float | None = Field(description="last stage's contacts / first stage's contacts")
    nurturing: int = Field(description="contacts moved to nurturing")
    disqualified: int = Field(description="contacts disqualified")
    breakdown: list[FunnelGroupOut] | None = None


class StayStatsOut(BaseModel):
    contacts: int
    median_seconds: float | None
    p90_seconds: float | None


class OpenStatsOut(BaseModel):
    contacts: int
    median_age_seconds: float | None
    p90_age_seconds: float | None
    max_age_seconds: float | None


class StageTimeOut(BaseModel):
    stage: str
    label: str
    left: StayStatsOut = Field(description="stays that ended in the period: time from entering to leaving")
    open: OpenStatsOut = Field(description="contacts still in the stage at `to`, with their age")


class StageTimesGroupOut(BaseModel):
    group: str | None
    stages: list[StageTimeOut]


class StageTimesOut(BaseModel):
    from_: str | None = Field(alias="from", serialization_alias="from")
    to: str
    by: Literal["owner", "account"] | None
    stages: list[StageTimeOut]
    breakdown: list[StageTimesGroupOut] | None = None


class ActiveStageOut(BaseModel):
    stage: str
    label: str
    contacts: int


class ActiveGroupOut(BaseModel):
    group: str | None
    contacts: int
    stages: list[ActiveStageOut]


class ActiveOut(BaseModel):
    from_: str | None = Field(alias="from", serialization_alias="from")
    to: str
    by: Literal["owner", "account"] | None
    contacts: int = Field(description="active contacts: at least one event (not machine activity) in the period")
    stages: list[ActiveStageOut] = Field(description="by stage at `to`")
    breakdown: list[ActiveGroupOut] | None = None
