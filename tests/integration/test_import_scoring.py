"""Bulk import keeps the score state equal to a full rescore from the event log — whatever the
chunking, the flushes, re-imports and late events — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from publishing import publish_model

from leadscore.intake.generate import generate_contacts, generate_events
from leadscore.services import importing, rescoring
from leadscore.store.bulk import BulkSession

MODEL = Path(__file__).parents[2] / "benchmarks" / "model.yml"
END = datetime(2026, 1, 31, tzinfo=UTC)


def publish(url: str, model: Path = MODEL) -> None:
    publish_model(url, model)


def write_data(folder: Path, *, contacts: int = 150, events: int = 4_000, seed: int = 3) -> tuple[Path, Path, pl.DataFrame]:
    people = generate_contacts(contacts, seed=seed)
    activity = generate_events(people, events, seed=seed, start=datetime(2025, 10, 1, tzinfo=UTC), end=END)
    contacts_file, events_file = folder / "contacts.csv", folder / "events.csv"
    people.write_csv(contacts_file)
    activity.write_csv(events_file)
    return contacts_file, events_file, activity


def stored_state(url: str) -> pl.DataFrame:
    with BulkSession.open(url) as bulk:
        return bulk.load_state().sort("contact_id", "rule_id")


def assert_same_state(left: pl.DataFrame, right: pl.DataFrame) -> None:
    assert left.height == right.height
    assert_frame_equal(left, right, check_exact=False, rel_tol=1e-12, abs_tol=1e-9)


def test_chunked_import_equals_rescore(migrated_url: str, tmp_path: Path) -> None:
    publish(migrated_url)
    contacts_file, events_file, activity = write_data(tmp_path)
    importing.import_contacts(migrated_url, contacts_file)
    report = importing.import_events(migrated_url, events_file, chunk_rows=700, flush_rows=1_500)
    assert report.imported == activity.height
    assert report.rejected == 0
    imported = stored_state(migrated_url)
    assert imported.height > 0
    rescoring.rescore(migrated_url)
    assert_same_state(imported, stored_state(migrated_url))


def test_reimport_adds_nothing(migrated_url: str, tmp_path: Path) -> None:
    publish(migrated_url)
    contacts_file, events_file, activity = write_data(tmp_path, events=1_500)
    importing.import_contacts(migrated_url, contacts_file)
    importing.import_events(migrated_url, events_file, chunk_rows=400)
    before = stored_state(migrated_url)
    again = importing.import_events(migrated_url, events_file, chunk_rows=400)
    assert again.imported == 0
    assert again.duplicates == activity.height
    assert_same_state(before, stored_state(migrated_url))


def test_late_events_in_any_order_give_the_rescore_state(migrated_url: str, tmp_path: Path) -> None:
    """Two files that interleave in time (the second full of events older than the first's):
    the limited rules' windows overlap across imports, the rare path must stay exact."""
    publish(migrated_url)
    contacts_file, _, activity = write_data(tmp_path, events=5_000, seed=11)
    shuffled = activity.sample(fraction=1.0, shuffle=True, seed=5)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    shuffled.head(2_500).sort("timestamp").write_csv(first)
    shuffled.tail(2_500).write_csv(second)
    importing.import_contacts(migrated_url, contacts_file)
    importing.import_events(migrated_url, first, chunk_rows=600, flush_rows=1_000)
    importing.import_events(migrated_url, second, chunk_rows=600, flush_rows=1_000)
    incremental = stored_state(migrated_url)
    rescoring.rescore(migrated_url)
    assert_same_state(incremental, stored_state(migrated_url))


def test_bad_rows_are_rejected_with_their_line_and_good_rows_kept(migrated_url: str, tmp_path: Path) -> None:
    publish(migrated_url)
    events_file = tmp_path / "events.csv"
    events_file.write_text(
        "type,event,userId,messageId,timestamp\n"
        "track,Demo Requested,u-1,m-1,2026-01-10T00:00:00Z\n"
        "track,Demo Requested,,m-2,2026-01-10T00:00:00Z\n"
        "track,Demo Requested,u-2,m-3,yesterday\n"
        "track,Form Submitted,u-2,m-4,2026-01-11T00:00:00Z\n",
        encoding="utf-8",
    )
    report = importing.import_events(migrated_url, events_file)
    assert (report.imported, report.rejected) == (2, 2)
    assert report.reject_file is not None
    rejects = pl.read_csv(report.reject_file)
    assert rejects["line"].to_list() == [3, 4]
    assert "userId" in rejects["reason"][0] and "timestamp" in rejects["reason"][1]


@pytest.mark.parametrize("limit_rule", ["pricing-page", "careers-page"])
def test_limited_rule_counts_earliest_events_across_imports(migrated_url: str, tmp_path: Path, limit_rule: str) -> None:
    """A later import bringing earlier events of a full window displaces the counted ones."""
    publish(migrated_url)
    path = {"pricing-page": "/pricing", "careers-page": "/careers"}[limit_rule]
    late, early = tmp_path / "late.csv", tmp_path / "early.csv"
    header = "type,userId,messageId,timestamp,properties.path\n"
    late.write_text(header + "".join(f"page,u-9,late-{h},2026-01-10T{h:02d}:00:00Z,{path}\n" for h in range(12, 18)))
    early.write_text(header + "".join(f"page,u-9,early-{h},2026-01-10T{h:02d}:00:00Z,{path}\n" for h in range(1, 3)))
    importing.import_events(migrated_url, late)
    importing.import_events(migrated_url, early)
    incremental = stored_state(migrated_url)
    rescoring.rescore(migrated_url)
    assert_same_state(incremental, stored_state(migrated_url))
    assert incremental.filter(pl.col("rule_id") == limit_rule)["t_ref"].item() < datetime(2026, 1, 10, 13, tzinfo=UTC).timestamp()
