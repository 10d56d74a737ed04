"""Account-based scoring in the transaction that changes the data (bulk import, live intake,
rescore): contacts attached to accounts by e-mail domain, then the scores of their accounts
recomputed from the contacts' current engagement, stored in ``account_scores``, and
``account.qualified`` webhooks queued when an account becomes marketing-qualified.

Everything is set-based on the :class:`~leadscore.store.bulk.BulkSession` (SQL in
:mod:`leadscore.store.bulk_accounts`, numbers in :mod:`leadscore.core.account_scoring`).
A model without an ``accounts`` section costs nothing here.

``qualified_at`` is when the account's current qualification began: set when it first meets
``qualified``, kept while it does, cleared when it no longer does (decay cools accounts down as
it does contacts); a notification is queued each time it becomes qualified, once.
"""

from __future__ import annotations

import math
import time

import polars as pl

from leadscore.core import account_scoring, vectorized
from leadscore.core.account_scoring import Accounts
from leadscore.core.types import ScoringModel
from leadscore.services.alerts import iso_expr, outbox_rows
from leadscore.services.traits import refresh_fit
from leadscore.store import bulk_accounts, bulk_alerts
from leadscore.store.bulk import BulkSession

QUALIFIED = "account.qualified"
REFRESH_SPAN = 20_000
"""Accounts recomputed per pass (bounds the contacts and state held in memory)."""


def scores_written(
    bulk: BulkSession, model: ScoringModel, state: pl.DataFrame, contact_ids: pl.Series, *, now: float | None = None
) -> int:
    """Hook after score state was written for ``contact_ids`` (next to
    :func:`leadscore.services.alerts.scores_written`): attach those without an account by domain,
    then refresh their accounts. Returns the number of accounts refreshed; returns at once when
    the model has no ``accounts`` section. ``state`` is not needed: the accounts' other
    contacts count too, so their stored state is read."""
    del state
    if model.accounts is None or contact_ids.is_empty():
        return 0
    moment = time.time() if now is None else now
    attach(bulk, model, contact_ids, now=moment)
    return refresh(bulk, model, contact_ids, now=moment)


def attach(bulk: BulkSession, model: ScoringModel, contact_ids: pl.Series | None, *, now: float) -> int:
    """Attach the contacts among ``contact_ids`` (every contact when None) that have an e-mail
    and no account to the account of their e-mail's domain, creating it (key and domain = the
    domain) when none has it; free-mail and own domains never. Their fit is recomputed (account
    fit rules now apply). Returns the number of contacts attached."""
    accounts = model.accounts
    if accounts is None or not accounts.attach_by_domain:
        return 0
    writer = bulk.writer
    if contact_ids is None:
        candidates = bulk_accounts.all_unattached(writer)
    elif contact_ids.is_empty():
        return 0
    else:
        candidates = bulk_accounts.unattached(writer, contact_ids)
    wanted = account_scoring.attachable_domains(accounts, candidates)
    if wanted.is_empty():
        return 0
    at_ms = math.floor(now * 1000)
    domains = wanted.get_column("domain").unique()
    found = bulk_accounts.accounts_of_domains(writer, domains)
    missing = domains.filter(~domains.is_in(found.get_column("domain").implode())).sort()
    if not missing.is_empty():
        created = bulk.upsert_accounts(
            pl.DataFrame({"key": missing, "domain": missing}, schema={"key": pl.String, "domain": pl.String}), at_ms=at_ms
        )
        found = pl.concat([found, created.select("domain", "account_id")])
    attached = wanted.join(found, on="domain").select("contact_id", "account_id")
    bulk.upsert_contacts(attached, at_ms=at_ms)
    _refresh_contact_fit(bulk, model, attached)
    return attached.height


def refresh(bulk: BulkSession, model: ScoringModel, contact_ids: pl.Series, *, now: float) -> int:
    """Recompute, store and notify the accounts of these contacts at ``now``; returns how many."""
    if model.accounts is None or contact_ids.is_empty():
        return 0
    return refresh_accounts(bulk, model, bulk_accounts.account_ids_of(bulk.writer, contact_ids), now=now)


def rescored(bulk: BulkSession, model: ScoringModel, *, now: float) -> int:
    """After a full rescore: attach every contact that can be, then refresh every account."""
    if model.accounts is None:
        return 0
    attach(bulk, model, None, now=now)
    return refresh_accounts(bulk, model, bulk_accounts.all_account_ids(bulk.writer), now=now)


def refresh_accounts(bulk: BulkSession, model: ScoringModel, account_ids: pl.Series, *, now: float) -> int:
    """Recompute and store the scores of these accounts at ``now`` (in spans of
    :data:`REFRESH_SPAN`) and queue ``account.qualified`` for those that just qualified."""
    accounts = model.accounts
    if accounts is None or account_ids.is_empty():
        return 0
    ids = account_ids.unique().sort()
    for offset in range(0, ids.len(), REFRESH_SPAN):
        _refresh_span(bulk, model, accounts, ids.slice(offset, REFRESH_SPAN), now)
    return ids.len()


def _refresh_span(bulk: BulkSession, model: ScoringModel, accounts: Accounts, account_ids: pl.Series, now: float) -> None:
    writer = bulk.writer
    stored = bulk.read_accounts(None, account_ids)
    frame = stored.select("account_id", pl.col("traits").alias("account"))
    members = bulk_accounts.members(writer, account_ids)
    latest = members.get_column("last_event_at").max()
    at = max(now, float(latest)) if isinstance(latest, int | float) else now  # state holds nothing later
    state = bulk.load_state(members.get_column("contact_id"))
    engagement = vectorized.score_frame(model, members.select("contact_id", "fit_raw", "excluded"), state, at)
    scored_members = (
        members.select("contact_id", "account_id", "traits", "excluded")
        .join(engagement.select("contact_id", "engagement"), on="contact_id", how="left")
        .join(frame, on="account_id", how="left")
    )
    scores = account_scoring.score_accounts(accounts, frame, scored_members)
    now_ms = math.floor(now * 1000)
    earlier = bulk_accounts.previous(writer, account_ids).rename({"qualified_at": "_was"})
    rows = scores.join(earlier, on="account_id", how="left").with_columns(
        pl.when(pl.col("qualified")).then(pl.coalesce("_was", pl.lit(now_ms))).alias("qualified_at"),
        pl.lit(now_ms).alias("updated_at"),
    )
    bulk_accounts.upsert_scores(writer, rows)
    newly = rows.filter(pl.col("qualified") & pl.col("_was").is_null())
    if not newly.is_empty():
        _notify_qualified(bulk, accounts, newly.join(stored, on="account_id", how="left"), now_ms)


def _notify_qualified(bulk: BulkSession, accounts: Accounts, qualified: pl.DataFrame, now_ms: int) -> int:
    """Queue ``account.qualified`` to every active webhook listening to it."""
    listeners = bulk_alerts.subscriptions(bulk.writer).filter(pl.col("events").str.contains(f'"{QUALIFIED}"', literal=True))
    if listeners.is_empty():
        return 0
    notices = qualified.join(listeners.select("webhook_id"), how="cross").with_columns(pl.lit(QUALIFIED).alias("kind"))
    coverage = (
        pl.col("coverage").str.json_decode(coverage_dtype(accounts)) if accounts.roles else pl.lit(None, dtype=pl.String)
    )
    data = pl.struct(
        pl.struct(pl.col("account_id").alias("id"), "key", "name", "domain").alias("account"),
        "score", "fit", "engagement", "grade", "temperature", "contacts",
        coverage.alias("coverage"),
        iso_expr(pl.col("qualified_at") / 1000.0).alias("qualified_at"),
    )
    bulk_alerts.enqueue(bulk.writer, outbox_rows(notices, data, now_ms))
    return notices.height


def coverage_dtype(accounts: Accounts) -> pl.Struct:
    """The polars type of the stored coverage JSON of this model's committee roles."""
    role = pl.Struct({"present": pl.Int64(), "engaged": pl.Int64(), "contacts": pl.List(pl.Int64())})
    return pl.Struct({item.id: role for item in accounts.roles})


def _refresh_contact_fit(bulk: BulkSession, model: ScoringModel, attached: pl.DataFrame) -> None:
    """Fit and exclusion of contacts that just joined an account (its traits count for fit)."""
    if attached.is_empty():
        return
    contacts = bulk.read_contacts(["traits", "account_id"], attached.get_column("contact_id"))
    traits = bulk.read_accounts(None, attached.get_column("account_id").unique()).select(
        "account_id", pl.col("traits").alias("account")
    )
    fit = refresh_fit(model, contacts.join(traits, on="account_id", how="left"))
    bulk.upsert_contacts(fit.select("contact_id", "fit_raw", "excluded"))
