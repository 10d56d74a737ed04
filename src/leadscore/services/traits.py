"""Trait updates: merge what identify / group messages and contact imports say about people and
their companies into the stored traits, then recompute fit and exclusion for those contacts.

Traits are current state (the latest value received for a key wins, in message order); fit is
computed from them. Engagement is the point-in-time part of the score (see docs/architecture.md).
"""

from __future__ import annotations

from typing import Any

import orjson
import polars as pl

from leadscore.core import vectorized
from leadscore.core.types import ScoringModel
from leadscore.store.bulk import BulkSession


def apply(bulk: BulkSession, model: ScoringModel, updates: pl.DataFrame) -> int:
    """Apply rows ``[contact_id, traits, account, account_key]`` (JSON text, nulls allowed) in
    order; returns the number of contacts updated."""
    if updates.is_empty():
        return 0
    ids = updates["contact_id"].unique()
    stored = bulk.read_contacts(["traits", "account_id"], ids)
    traits: dict[int, dict[str, Any]] = {
        cid: _load(text) for cid, text in stored.select("contact_id", "traits").iter_rows()
    }
    account_of: dict[int, int | None] = dict(stored.select("contact_id", "account_id").iter_rows())
    account_rows: dict[str, dict[str, Any]] = {}
    member_key: dict[int, str] = {}
    columns = [c for c in ("contact_id", "traits", "account", "account_key") if c in updates.columns]
    for row in updates.select(columns).iter_rows(named=True):
        cid = row["contact_id"]
        traits[cid].update(_load(row.get("traits")))
        key = row.get("account_key")
        if key:
            account_rows.setdefault(key, {}).update(_load(row.get("account")))
            member_key[cid] = key
    account_traits = _merge_accounts(bulk, account_rows, account_of, member_key)
    frame = pl.DataFrame(
        {
            "contact_id": list(traits),
            "traits": [_dump(t) for t in traits.values()],
            "email": [_email(t) for t in traits.values()],
            "account_id": [account_of.get(cid) for cid in traits],
        },
        schema={"contact_id": pl.Int64, "traits": pl.String, "email": pl.String, "account_id": pl.Int64},
    )
    accounts = pl.DataFrame(
        {"account_id": list(account_traits), "account": [_dump(t) for t in account_traits.values()]},
        schema={"account_id": pl.Int64, "account": pl.String},
    )
    scored = refresh_fit(model, frame.join(accounts, on="account_id", how="left"))
    bulk.upsert_contacts(scored.select("contact_id", "traits", "email", "account_id", "fit_raw", "excluded"))
    return frame.height


def apply_messages(bulk: BulkSession, model: ScoringModel, messages: pl.DataFrame) -> int:
    """Apply stored ``identify`` (contact traits) and ``group`` (account traits + membership)
    messages, oldest first."""
    ordered = messages.sort("ts", "message_id")
    is_group = pl.col("type") == "group"
    updates = ordered.select(
        "contact_id",
        pl.when(is_group).then(None).otherwise(pl.col("traits")).alias("traits"),
        pl.when(is_group).then(pl.col("traits")).alias("account"),
        pl.when(is_group).then(pl.col("group_id")).alias("account_key"),
    )
    return apply(bulk, model, updates)


def refresh_fit(model: ScoringModel, contacts: pl.DataFrame) -> pl.DataFrame:
    """Add ``fit_raw`` and ``excluded`` to a frame ``[contact_id, traits, account]``."""
    fit = vectorized.fit_frame(model, contacts.select("contact_id", "traits", "account"))
    return contacts.drop("fit_raw", "excluded", strict=False).join(fit, on="contact_id", how="left")


def _merge_accounts(
    bulk: BulkSession,
    rows: dict[str, dict[str, Any]],
    account_of: dict[int, int | None],
    member_key: dict[int, str],
) -> dict[int, dict[str, Any]]:
    """Upsert the accounts named in this batch (traits merged over the stored ones), link the
    members, and return the traits of every account a contact of the batch belongs to."""
    if rows:
        keys = pl.DataFrame({"key": list(rows)}, schema={"key": pl.String})
        stored = {k: _load(t) for k, t in bulk.read_accounts(keys["key"]).select("key", "traits").iter_rows()}
        merged = {key: {**stored.get(key, {}), **update} for key, update in rows.items()}
        written = bulk.upsert_accounts(
            pl.DataFrame(
                {
                    "key": list(merged),
                    "name": [_text(t.get("name")) for t in merged.values()],
                    "domain": [_text(t.get("domain")) for t in merged.values()],
                    "traits": [_dump(t) for t in merged.values()],
                },
                schema={"key": pl.String, "name": pl.String, "domain": pl.String, "traits": pl.String},
            )
        )
        id_of = dict(written.select("key", "account_id").iter_rows())
        for cid, key in member_key.items():
            account_of[cid] = id_of[key]
    wanted = {aid for aid in account_of.values() if aid is not None}
    if not wanted:
        return {}
    found = bulk.read_accounts(None, pl.Series("account_id", sorted(wanted), dtype=pl.Int64))
    return {aid: _load(t) for aid, t in found.select("account_id", "traits").iter_rows()}


def _load(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = orjson.loads(text)
    return value if isinstance(value, dict) else {}


def _dump(document: dict[str, Any]) -> str:
    return orjson.dumps(document).decode()


def _email(traits: dict[str, Any]) -> str | None:
    email = traits.get("email")
    return email.strip().lower() if isinstance(email, str) and email.strip() else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
