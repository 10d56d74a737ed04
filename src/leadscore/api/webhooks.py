"""``/api/webhooks``: subscribe a URL to contact notifications, list and delete subscriptions,
read a webhook's delivery log (admin, marketing). The signing secret is returned once, when
the webhook is created. Payloads, signatures and retries: docs/user-guide.md, "Webhooks"."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from leadscore.api.auth import require
from leadscore.api.rest.common import BAD_REQUEST, COMMON_ERRORS, NOT_FOUND, example, iso_ms, unit_of_work
from leadscore.services import webhooks
from leadscore.store.webhooks import Delivery, Webhook

router = APIRouter(prefix="/api/webhooks", tags=["Webhooks"], responses=COMMON_ERRORS)

MANAGE = [Depends(require("marketing"))]
"""Webhooks: admin, marketing."""

EventName = Literal["contact.score_threshold_crossed", "contact.temperature_changed", "contact.merged",
                    "contact.stage_changed", "contact.mql", "contact.assigned", "contact.sla_breached", "account.qualified"]
# every event of leadscore.store.tables.WEBHOOK_EVENTS (a test checks the two agree)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2048, description="where notifications are POSTed (http or https)")
    events: list[EventName] = Field(min_length=1, description="the notifications to receive")
    threshold: float | None = Field(
        default=None, description="combined score (0–100) whose crossing notifies; for contact.score_threshold_crossed"
    )
    hysteresis: float = Field(
        default=5.0, ge=0, description="a lead above the threshold is notified down only below threshold − hysteresis"
    )
    description: str | None = Field(default=None, max_length=500)


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    threshold: float | None
    hysteresis: float
    active: bool
    description: str | None
    created_at: str


class NewWebhookOut(WebhookOut):
    secret: str = Field(description="signs every delivery (X-Leadscore-Signature); shown only now")


class WebhookList(BaseModel):
    items: list[WebhookOut]


class DeliveryOut(BaseModel):
    id: int = Field(description="outbox id; pass as `before` for older deliveries")
    event_id: str = Field(description="the notification's id (X-Leadscore-Event-Id), the same on every attempt")
    type: str
    status: Literal["delivered", "pending", "retrying"]
    created_at: str
    attempts: int
    next_attempt_at: str | None
    delivered_at: str | None
    last_status: int | None = Field(description="HTTP status of the last attempt (null: no answer)")
    last_error: str | None


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


WEBHOOK_EXAMPLE: dict[str, Any] = {
    "id": 1, "url": "https://crm.example.com/hooks/leadscore",
    "events": ["contact.score_threshold_crossed", "contact.temperature_changed"], "threshold": 70.0,
    "hysteresis": 5.0, "active": True, "description": "hot leads to the CRM", "created_at": "2026-01-31T10:00:00.000Z",
}
DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": 42, "event_id": "evt_3f9c1a7be2d04c55a1e0000000000007", "type": "contact.score_threshold_crossed",
    "status": "retrying", "created_at": "2026-01-31T10:00:00.000Z", "attempts": 2,
    "next_attempt_at": "2026-01-31T10:00:31.000Z", "delivered_at": None, "last_status": 503,
    "last_error": "HTTP 503 Service Unavailable",
}


def webhook_out(webhook: Webhook) -> dict[str, Any]:
    return {"id": webhook.id, "url": webhook.url, "events": list(webhook.events), "threshold": webhook.threshold,
            "hysteresis": webhook.hysteresis, "active": webhook.active, "description": webhook.description,
            "created_at": iso_ms(webhook.created_at)}


def delivery_out(delivery: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id, event_id=delivery.event_id, type=delivery.kind, status=delivery.status,
        created_at=iso_ms(delivery.created_at) or "", attempts=delivery.attempts,
        next_attempt_at=iso_ms(delivery.next_attempt_at) if delivery.delivered_at is None else None,
        delivered_at=iso_ms(delivery.delivered_at), last_status=delivery.last_status, last_error=delivery.last_error,
    )


@router.post("", summary="Create a webhook", status_code=201, dependencies=MANAGE, responses={
    **example({**WEBHOOK_EXAMPLE, "secret": "whsec_example-secret-shown-once"}, 201, "Created: the secret is shown only now"),
    **BAD_REQUEST})
def create_webhook(
    request: Request,
    body: Annotated[WebhookIn, Body(openapi_examples={
        "hot leads": {"summary": "threshold crossings and temperature changes",
                      "value": {"url": "https://crm.example.com/hooks/leadscore", "threshold": 70, "hysteresis": 5,
                                "events": ["contact.score_threshold_crossed", "contact.temperature_changed"]}},
        "merges": {"summary": "identity merges only",
                   "value": {"url": "https://crm.example.com/hooks/merges", "events": ["contact.merged"]}},
    })],
) -> NewWebhookOut:
    """Subscribe a URL. `threshold` (and `hysteresis`, default 5) are required with
    `contact.score_threshold_crossed`. The answer holds the signing secret, once."""
    with unit_of_work(request) as uow:
        webhook, secret = webhooks.create(
            uow, url=body.url, events=body.events, threshold=body.threshold, hysteresis=body.hysteresis,
            description=body.description,
        )
        uow.commit()
    return NewWebhookOut(**webhook_out(webhook), secret=secret)


@router.get("", summary="List webhooks", dependencies=MANAGE, responses=example({"items": [WEBHOOK_EXAMPLE]}))
def list_webhooks(request: Request) -> WebhookList:
    """Every subscription (secrets are never shown again)."""
    with unit_of_work(request) as uow:
        return WebhookList(items=[WebhookOut(**webhook_out(w)) for w in webhooks.list_webhooks(uow)])


@router.delete("/{webhook_id}", summary="Delete a webhook", status_code=204, dependencies=MANAGE,
               responses={204: {"description": "Deleted, with its pending notifications"}, **NOT_FOUND})
def delete_webhook(
    request: Request, webhook_id: Annotated[int, Path(description="the webhook's id", examples=[1])]
) -> Response:
    """Unsubscribe: nothing more is sent, pending notifications and the delivery log go too."""
    with unit_of_work(request) as uow:
        webhooks.delete(uow, webhook_id)
        uow.commit()
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", summary="A webhook's delivery log", dependencies=MANAGE,
            responses={**example({"items": [DELIVERY_EXAMPLE]}), **NOT_FOUND})
def list_deliveries(
    request: Request,
    webhook_id: Annotated[int, Path(description="the webhook's id", examples=[1])],
    limit: Annotated[int, Query(ge=1, le=500, description="at most this many, newest first")] = 50,
    before: Annotated[int | None, Query(description="only deliveries older than this outbox id (paging)")] = None,
) -> DeliveryList:
    """Each notification with its attempts, last HTTP status and error, and when it was
    delivered or will be retried."""
    with unit_of_work(request) as uow:
        return DeliveryList(items=[delivery_out(d) for d in webhooks.deliveries(uow, webhook_id, limit=limit, before=before)])
