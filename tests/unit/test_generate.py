"""The synthetic data generator: deterministic, realistic enough, and readable without rejects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from leadscore.intake import read_contacts, read_events
from leadscore.intake.generate import generate_contacts, generate_events, main, write_demo

NOW = datetime(2026, 1, 31, tzinfo=UTC)
ARRIVAL = int(NOW.timestamp() * 1000)


def test_same_seed_same_data_other_seed_other_data() -> None:
    contacts = generate_contacts(300, seed=3)
    assert contacts.equals(generate_contacts(300, seed=3))
    assert not contacts.equals(generate_contacts(300, seed=4))
    start = NOW - timedelta(days=30)
    events = generate_events(contacts, 2_000, seed=3, start=start, end=NOW)
    assert events.equals(generate_events(contacts, 2_000, seed=3, start=start, end=NOW))


def test_contacts_shape_and_mix() -> None:
    contacts = generate_contacts(2_000, seed=1)
    assert contacts.columns[:5] == ["userId", "traits.email", "traits.first_name", "traits.last_name", "traits.title"]
    assert {"account.id", "account.name", "account.domain", "account.industry", "account.employees", "account.country"} <= set(contacts.columns)
    assert contacts.get_column("userId").n_unique() == 2_000
    assert contacts.get_column("traits.email").n_unique() == 2_000
    free = contacts.get_column("traits.email").str.contains(r"@(gmail|yahoo|hotmail|outlook)\.com$|@orange\.fr$|@gmx\.de$")
    assert 0.15 < free.sum() / free.len() < 0.35
    titles = set(contacts.get_column("traits.title").to_list())
    assert {"CEO", "CTO", "Student", "Intern"} <= titles
    assert any(title.startswith("Directeur") for title in titles)
    assert set(contacts.get_column("account.country").unique().to_list()) >= {"FR", "DE", "US", "GB", "ES"}


def test_events_shape_skew_and_machine_activity() -> None:
    contacts = generate_contacts(1_000, seed=2)
    events = generate_events(contacts, 20_000, seed=2, start=NOW - timedelta(days=120), end=NOW)
    assert events.height == 20_000
    assert events.get_column("messageId").n_unique() == 20_000
    assert events.get_column("timestamp").is_sorted()
    names = set(events.get_column("event").drop_nulls().to_list())
    assert {"Email Opened", "Email Link Clicked", "Form Submitted", "Demo Requested", "Unsubscribed"} <= names
    pages = events.filter(pl.col("type") == "page")
    assert pages.get_column("properties.path").null_count() == 0
    assert events.filter(pl.col("type") == "track").get_column("properties.path").null_count() > 0
    anonymous = events.filter(pl.col("userId").is_null())
    assert anonymous.height > 0 and anonymous.get_column("anonymousId").null_count() == 0
    per_contact = events.drop_nulls("userId").group_by("userId").len().get_column("len").sort(descending=True)
    top_decile = per_contact.head(per_contact.len() // 10).sum()
    assert top_decile > 0.3 * per_contact.sum()  # a minority of contacts does much of the activity
    machine = events.filter(pl.col("properties.machine_activity") == "true")
    assert 0 < machine.height < 0.1 * events.height
    assert set(machine.get_column("event").unique().to_list()) == {"Email Opened"}
    bots = events.get_column("context.userAgent").str.contains(r"(?i)bot|python-requests|headless")
    assert 0.005 < bots.sum() / bots.len() < 0.1


def test_demo_files_read_back_without_rejects(tmp_path: Path) -> None:
    contacts_path, events_path = write_demo(tmp_path, contacts=300, events=3_000, seed=7, now=NOW)
    contact_chunks = list(read_contacts(contacts_path))
    event_chunks = list(read_events(events_path, received_at_ms=ARRIVAL))
    assert sum(c.rejects.height for c in contact_chunks + event_chunks) == 0
    assert sum(c.frame.height for c in contact_chunks) == 300
    events = pl.concat([c.frame for c in event_chunks])
    assert events.height == 3_000
    times = events.get_column("ts")
    assert times.filter((times < ARRIVAL - 120 * 86_400_000) | (times > ARRIVAL)).len() == 0


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_command_line_writes_every_format_readably(tmp_path: Path, fmt: str) -> None:
    assert main(["--contacts", "200", "--events", "1000", "--out", str(tmp_path), "--format", fmt]) == 0
    contacts = list(read_contacts(tmp_path / f"contacts.{fmt}"))
    events = list(read_events(tmp_path / f"events.{fmt}", received_at_ms=ARRIVAL))
    assert sum(c.rejects.height for c in contacts + events) == 0
    assert sum(c.frame.height for c in contacts) == 200
    frame = pl.concat([c.frame for c in events])
    assert frame.height == 1000
    csv_run = tmp_path / "csv"
    main(["--contacts", "200", "--events", "1000", "--out", str(csv_run), "--format", "csv"])
    from_csv = pl.concat([c.frame for c in read_events(csv_run / "events.csv", received_at_ms=ARRIVAL)])
    assert frame.select("message_id", "type", "event", "user_id", "ts").equals(
        from_csv.select("message_id", "type", "event", "user_id", "ts")
    )
