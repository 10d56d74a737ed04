"""What follows a trait change made outside the bulk paths (the REST API's create and update
of a contact): the contact may join an account by its e-mail domain, cross an alert level, or
meet a lifecycle rule (an e-mail makes a visitor a subscriber).

Bulk imports and the live intake run these hooks inside their own transaction. The REST routes
change traits through the unit of work (one SQLAlchemy connection); the hooks then run here,
in a second, short transaction of their own. Should it fail, the trait change stays committed
and the same hooks run again at the contact's next event or at a rescore: they re-evaluate,
they do not count.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import polars as pl

from leadscore.core.types import ScoringModel
from leadscore.services import account_scores, alerts, lifecycle
from leadscore.store.bulk import BulkSession


def traits_changed(database_url: str, model: ScoringModel, contact_ids: Iterable[int], *, now: float | None = None) -> None:
    """Run the account, alert and lifecycle hooks for these contacts at ``now`` and commit."""
    moment = time.time() if now is None else now
    ids = pl.Series("contact_id", sorted(set(contact_ids)), dtype=pl.Int64)
    if ids.is_empty():
        return
    with BulkSession.open(database_url) as bulk:
        account_scores.scores_written(bulk, model, None, ids, now=moment)
        alerts.check(bulk, model, ids, now=moment)
        lifecycle.scores_written(bulk, model, None, ids, now=moment)
        bulk.commit()
