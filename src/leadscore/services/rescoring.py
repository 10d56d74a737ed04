"""Full rescore: rebuild every contact's fit and score state from traits and the event log.

Run after publishing a model (or any time: the stored state is only a cache of the log). The
work is chunked by contact so memory stays bounded, set-based inside each chunk, and done in one
transaction: readers see the old scores until the new ones are complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from leadscore.core import vectorized
from leadscore.core.types import ScoringModel
from leadscore.services.importing import load_published_model, to_scoring_frame
from leadscore.services.traits import refresh_fit
from leadscore.store.bulk import BulkSession

Progress = Callable[[int, int], None]
"""``progress(contacts_done, contacts_total)``."""


@dataclass(frozen=True, slots=True)
class RescoreReport:
    contacts: int
    events: int
    state_rows: int


def rescore(database_url: str, *, chunk_contacts: int = 50_000, progress: Progress | None = None) -> RescoreReport:
    model = load_published_model(database_url)
    with BulkSession.open(database_url) as bulk:
        contacts = bulk.read_contacts(["traits", "account_id", "last_event_at"])
        accounts = bulk.read_accounts().select("account_id", pl.col("traits").alias("account"))
        fit = refresh_fit(model, contacts.join(accounts, on="account_id", how="left"))
        bulk.upsert_contacts(fit.select("contact_id", "fit_raw", "excluded"))
        bulk.replace_state(pl.DataFrame(schema={"contact_id": pl.Int64, "rule_id": pl.String, "s": pl.Float64, "t_ref": pl.Float64}))
        types, names = scored_event_kinds(model)
        ids = contacts["contact_id"].sort()
        events = rows = 0
        for offset in range(0, max(ids.len(), 1), chunk_contacts):
            chunk_ids = ids.slice(offset, chunk_contacts)
            if chunk_ids.is_empty():
                break
            log = bulk.read_events(chunk_ids, types=types, event_names=names)
            state = vectorized.accumulate(model, to_scoring_frame(log))
            rows += bulk.replace_state(state, chunk_ids)
            events += log.height
            if progress is not None:
                progress(min(offset + chunk_contacts, ids.len()), ids.len())
        last = _last_event_at(bulk, ids)
        bulk.upsert_contacts(last)
        bulk.commit()
    return RescoreReport(contacts=ids.len(), events=events, state_rows=rows)


def scored_event_kinds(model: ScoringModel) -> tuple[list[str], list[str]]:
    """The event types and track names some engagement rule can match (others need no reading)."""
    special = {"page", "screen", "identify", "group", "alias"}
    types = sorted({rule.on for rule in model.engagement_rules if rule.on in special})
    names = sorted({rule.on for rule in model.engagement_rules if rule.on not in special})
    return types, names


def _last_event_at(bulk: BulkSession, ids: pl.Series) -> pl.DataFrame:
    """Latest counted-event time per contact, from the rebuilt state (``t_ref`` is the latest
    counted event of each rule)."""
    state = bulk.load_state()
    latest = state.group_by("contact_id").agg(pl.col("t_ref").max().alias("last_event_at"))
    return pl.DataFrame({"contact_id": ids}).join(latest, on="contact_id", how="left")
