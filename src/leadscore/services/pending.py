"""Score updates of a bulk import, kept in memory between chunks and written once per flush.

A file is read in chunks; each chunk's events are stored and matched against the rules at once,
but folding them into the stored score state is deferred: the matches are kept, accumulated in
one pass at the flush, and merged with the stored accumulators in O(1) per (contact, rule), so
the state of every touched contact is read and written once per flush instead of once per chunk.

Rules with a frequency limit cannot be merged blindly (the N earliest events of a window must
win, whichever chunk they came in), so their matches are kept until the flush, the limits are
applied over all of them, and a (contact, rule) whose new events fall in a window that may
already hold stored events is recomputed from the contact's log (the rare path: a late event, or
a window spanning two imports). See docs/architecture.md.
"""

from __future__ import annotations

import math

import polars as pl

from leadscore.core import vectorized
from leadscore.core.types import ScoringModel
from leadscore.services import account_scores, alerts, lifecycle
from leadscore.store.bulk import BulkSession

STATE_SCHEMA = {"contact_id": pl.Int64, "rule_id": pl.String, "s": pl.Float64, "t_ref": pl.Float64}
MATCH_SCHEMA = {"contact_id": pl.Int64, "message_id": pl.String, "ts": pl.Float64, "rule_id": pl.String}


class PendingScores:
    """What the events stored since the last flush add to the score state."""

    def __init__(self, model: ScoringModel, *, now: float | None = None) -> None:
        self.model = model
        self.now = now  # the moment hooks act at (None: the clock at each flush)
        self.limits = {rule.id: rule.limit for rule in model.engagement_rules if rule.limit is not None}
        self._limited_ids = list(self.limits)
        self._reset()

    def _reset(self) -> None:
        self._unlimited: list[pl.DataFrame] = []
        self._limited: list[pl.DataFrame] = []
        self._latest: list[pl.DataFrame] = []
        self.rows = 0

    def add(self, events: pl.DataFrame) -> None:
        """Fold new events in: a scoring frame (``ts`` in seconds, ``contact_id`` set) whose
        ``machine`` column was computed with this model by ``vectorized.flag_machine``."""
        matches = vectorized.match_events(self.model, events, flagged=True)
        is_limited = pl.col("rule_id").is_in(self._limited_ids)
        self._unlimited.append(matches.filter(~is_limited))
        if self._limited_ids:
            self._limited.append(matches.filter(is_limited))
        self._latest.append(
            events.group_by("contact_id").agg(pl.col("ts").min().alias("batch_first"), pl.col("ts").max().alias("batch_last"))
        )
        self.rows += events.height

    def flush(self, bulk: BulkSession) -> int:
        """Write the merged state of every touched contact; returns the number of contacts."""
        if not self._latest:
            return 0
        latest = pl.concat(self._latest).group_by("contact_id").agg(pl.col("batch_first").min(), pl.col("batch_last").max())
        touched = latest["contact_id"]
        bulk.lock_contacts(touched)  # concurrent writers merge one after the other
        stored = bulk.load_state(touched)
        known = bulk.read_contacts(["first_seen_at", "last_event_at"], touched)
        unlimited = pl.concat(self._unlimited) if self._unlimited else pl.DataFrame(schema=MATCH_SCHEMA)
        added = vectorized.accumulate_matches(self.model, unlimited)
        state = vectorized.merge_state(self.model, stored.filter(~pl.col("rule_id").is_in(self._limited_ids)), added)
        # only the accumulators that changed are written: those with new matches, and the
        # limited rules' (merged or replayed); the others keep their stored (s, t_ref)
        changed = state.join(added.select("contact_id", "rule_id"), on=["contact_id", "rule_id"], how="semi")
        if self._limited_ids:
            limited = self._limited_state(bulk, stored, known)
            state = pl.concat([state, limited], how="vertical_relaxed")
            changed = pl.concat([changed, limited], how="vertical_relaxed")
        bulk.upsert_state(changed.cast(STATE_SCHEMA))
        bulk.upsert_contacts(
            known.join(latest, on="contact_id").select(
                "contact_id",
                # the first event's time (ms): reports measure a visitor's time in stage from it
                pl.min_horizontal("first_seen_at", (pl.col("batch_first") * 1000.0).floor().cast(pl.Int64)).alias("first_seen_at"),
                pl.max_horizontal("last_event_at", "batch_last").alias("last_event_at"),
            )
        )
        account_scores.scores_written(bulk, self.model, state, touched, now=self.now)  # attach by domain, account scores
        alerts.scores_written(bulk, self.model, state, touched, now=self.now)  # webhook notices, same transaction
        lifecycle.scores_written(bulk, self.model, state, touched, now=self.now)  # automatic stage changes, timers
        self._reset()
        return touched.len()

    def _limited_state(self, bulk: BulkSession, stored: pl.DataFrame, known: pl.DataFrame) -> pl.DataFrame:
        matches = pl.concat(self._limited) if self._limited else pl.DataFrame(schema=MATCH_SCHEMA)
        stored_limited = stored.filter(pl.col("rule_id").is_in(self._limited_ids))
        overlap = self._overlapping(matches, stored_limited, known)
        fresh = matches.join(overlap, on=["contact_id", "rule_id"], how="anti")
        merged = vectorized.merge_state(
            self.model,
            stored_limited.join(overlap, on=["contact_id", "rule_id"], how="anti"),
            vectorized.accumulate_matches(self.model, vectorized.apply_limits(self.model, fresh)),
        )
        if overlap.is_empty():
            return merged
        return pl.concat([merged, self._replayed(bulk, overlap)], how="vertical_relaxed")

    def _overlapping(self, matches: pl.DataFrame, stored: pl.DataFrame, known: pl.DataFrame) -> pl.DataFrame:
        """``[contact_id, rule_id]`` whose new matches may share a window with stored events.

        A window later than the window of the contact's last stored event holds no stored event;
        a rule limited over all time (``once``) overlaps when something was already counted.
        """
        if matches.is_empty():
            return pl.DataFrame(schema={"contact_id": pl.Int64, "rule_id": pl.String})
        per = pl.col("rule_id").replace_strict(
            {rule_id: (limit.per if limit.per is not None else math.inf) for rule_id, limit in self.limits.items()},
            return_dtype=pl.Float64,
        )
        first = matches.group_by("contact_id", "rule_id").agg(pl.col("ts").min().alias("first_ts"))
        windowed = first.join(known.select("contact_id", "last_event_at"), on="contact_id", how="left").with_columns(
            per.alias("per")
        )
        ever = pl.col("per").is_infinite()
        same_or_earlier_window = (pl.col("first_ts") / pl.col("per")).floor() <= (pl.col("last_event_at") / pl.col("per")).floor()
        window_overlap = windowed.filter(~ever & pl.col("last_event_at").is_not_null() & same_or_earlier_window)
        ever_overlap = windowed.filter(ever).join(stored.select("contact_id", "rule_id"), on=["contact_id", "rule_id"], how="semi")
        return pl.concat([window_overlap, ever_overlap]).select("contact_id", "rule_id").unique()

    def _replayed(self, bulk: BulkSession, overlap: pl.DataFrame) -> pl.DataFrame:
        """Exact state of the overlapping (contact, limited rule) pairs, from the stored log
        (which already holds this import's events: they are written before the flush)."""
        names = sorted({rule.on for rule in self.model.engagement_rules if rule.id in set(overlap["rule_id"])})
        specials = {"page", "screen", "identify", "group", "alias"}
        log = bulk.read_events(
            overlap["contact_id"].unique(),
            types=[n for n in names if n in specials],
            event_names=[n for n in names if n not in specials],
        )
        matches = vectorized.match_events(self.model, log.with_columns((pl.col("ts") / 1000.0).alias("ts")))
        mine = matches.join(overlap, on=["contact_id", "rule_id"], how="semi")
        return vectorized.accumulate_matches(self.model, vectorized.apply_limits(self.model, mine))
