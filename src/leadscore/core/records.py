"""Records: the nested mappings that scoring conditions read.

A *contact record* is what fit rules and exclusions see: ``{"traits": {...}, "account": {...}}``,
with ``traits.email_domain`` filled in from ``traits.email`` when the traits do not carry one.
An *event record* is a Segment message as a nested mapping (``type``, ``event``, ``userId``,
``anonymousId``, ``messageId``, ``properties``, ``context``, ``traits``), built from the columns
of the canonical event frame; it is what engagement rules and the machine-activity condition see.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadscore.core.condition_values import MISSING, email_domain


def contact_record(traits: Mapping[str, Any] | None, account: Mapping[str, Any] | None) -> dict[str, Any]:
    """The record of a contact: its traits (with the derived e-mail domain) and its account's traits."""
    contact_traits = dict(traits or {})
    if contact_traits.get("email_domain") is None:
        domain = email_domain(contact_traits.get("email", MISSING))
        if domain is not MISSING:
            contact_traits["email_domain"] = domain
    return {"traits": contact_traits, "account": dict(account or {})}


def event_record(
    *,
    type: str,
    event: str | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    message_id: str | None = None,
    properties: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    traits: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Segment message ``{type, event, userId, …, properties, context, traits}``; absent parts are left out."""
    parts: dict[str, Any] = {
        "type": type,
        "event": event,
        "userId": user_id,
        "anonymousId": anonymous_id,
        "messageId": message_id,
        "properties": properties,
        "context": context,
        "traits": traits,
    }
    return {key: value for key, value in parts.items() if value is not None}
