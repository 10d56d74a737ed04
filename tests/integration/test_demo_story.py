"""The demo story (``leadscore demo``): 120 days played week by week through the services leave
leads in every stage, with a history that only moves forward in time, the same on both
databases, and a second run changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from leadscore.services import demo_story
from leadscore.store.bulk import BulkSession
from publishing import publish_model

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
HISTORY = {"contact_id": pl.Int64, "at": pl.Int64, "from_stage": pl.String, "to_stage": pl.String, "cause_kind": pl.String}


def test_the_story_leaves_leads_in_every_stage_with_an_ordered_history(migrated_url: str, tmp_path: Path) -> None:
    publish_model(migrated_url, ROOT / "examples" / "b2b-saas.yml")

    story = demo_story.run(migrated_url, tmp_path / "demo", contacts=800, events=24_000, seed=7, now=NOW)

    stages = ("visitor", "subscriber", "lead", "mql", "sql", "opportunity", "customer", "nurturing", "disqualified")
    assert all(story.stages.get(stage, 0) > 0 for stage in stages), story.stages
    assert story.weeks == 18 and story.events == 24_000
    assert {"accept", "reject", "open_opportunity", "won", "lost"} <= set(story.actions)
    with BulkSession.open(migrated_url) as bulk:
        history = bulk.writer.query(
            "SELECT contact_id, at, from_stage, to_stage, cause_kind FROM stage_history ORDER BY id", HISTORY
        )
        owned = bulk.writer.scalar("SELECT COUNT(*) FROM contact_stages WHERE stage IN ('sql', 'opportunity') AND owner_id IS NULL")
    # each contact's history is a chain: it leaves the stage it last entered, never earlier than it entered it
    chained = history.with_columns(
        pl.col("to_stage").shift(1).over("contact_id").alias("previous_to"), pl.col("at").shift(1).over("contact_id").alias("previous_at")
    ).filter(pl.col("previous_to").is_not_null())
    assert chained.filter(pl.col("from_stage") != pl.col("previous_to")).is_empty()
    assert chained.filter(pl.col("at") < pl.col("previous_at")).is_empty()
    assert set(history["cause_kind"]) >= {"rule", "user"}
    assert history["at"].max() <= NOW.timestamp() * 1000
    assert owned == 0  # every lead sales accepted had been routed to a salesperson

    again = demo_story.run(migrated_url, tmp_path / "demo", contacts=800, events=24_000, seed=7, now=NOW)
    assert again.played_at == NOW.isoformat(timespec="seconds") and again.events == 0
