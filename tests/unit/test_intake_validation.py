"""Row validation: every reject reason, timestamps, clock-skew correction, message ids."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
import pytest

from leadscore.intake import MAX_MESSAGE_BYTES, read_events

ARRIVAL = 1_800_000_000_000
T = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


def write_jsonl(tmp_path: Path, *lines: object, name: str = "events.jsonl") -> Path:
    path = tmp_path / name
    text = "\n".join(line if isinstance(line, str) else orjson.dumps(line).decode() for line in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def read(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    chunks = list(read_events(path, received_at_ms=ARRIVAL))
    return pl.concat([c.frame for c in chunks]), pl.concat([c.rejects for c in chunks])


def track(**fields: object) -> dict[str, object]:
    message: dict[str, object] = {"type": "track", "event": "Signed Up", "userId": "u-1", "timestamp": T}
    message.update(fields)
    return message


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (track(userId=None), "missing userId and anonymousId"),
        (track(userId="", anonymousId="  "), "missing userId and anonymousId"),
        (track(timestamp="yesterday"), "bad timestamp 'yesterday'"),
        (track(sentAt="soon"), "bad sentAt 'soon'"),
        (track(receivedAt="later"), "bad receivedAt 'later'"),
        (track(timestamp=None, originalTimestamp="nope"), "bad originalTimestamp 'nope'"),
        (track(type="foo"), "unknown type 'foo'"),
        (track(type=None, event=None), "missing type"),
        (track(event=None), "track without event name"),
        (track(event="   "), "track without event name"),
        ({"type": "group", "userId": "u-1"}, "group without groupId"),
        (track(properties={"blob": "x" * MAX_MESSAGE_BYTES}), "message larger than 32 KB"),
        ('{"type": "track", ', "invalid JSON: "),
        ("[1, 2]", "not a JSON object"),
        (track(userId={"id": 1}), "userId must be a string, not dict"),
        (track(properties=[1]), "properties must be an object, not list"),
    ],
)
def test_each_reject_reason(tmp_path: Path, line: object, reason: str) -> None:
    path = write_jsonl(tmp_path, track(messageId="ok"), line)
    frame, rejects = read(path)
    assert frame.get_column("message_id").to_list() == ["ok"]
    assert rejects.get_column("line").to_list() == [2]
    assert rejects.get_column("reason").item().startswith(reason)
    raw = rejects.get_column("raw").item()
    assert raw == (line if isinstance(line, str) else orjson.dumps(line).decode())[:2000]


def test_clock_skew_is_corrected_with_sent_at_and_received_at(tmp_path: Path) -> None:
    device_clock_ahead = 5 * 60_000  # the device clock is 5 minutes fast
    sent = T + device_clock_ahead
    path = write_jsonl(
        tmp_path,
        track(messageId="a", timestamp=sent - 2_000, sentAt=sent, receivedAt=T + 1_000),
        track(messageId="b", timestamp=sent - 2_000, sentAt=sent),
        track(messageId="c", timestamp=T),
    )
    frame, _ = read(path)
    assert frame.select("message_id", "ts", "received_at").rows() == [
        ("a", T + 1_000 - 2_000, T + 1_000),
        ("b", ARRIVAL - 2_000, ARRIVAL),  # no receivedAt: the import moment is the arrival
        ("c", T, ARRIVAL),
    ]


def test_missing_timestamp_uses_received_at_then_the_import_moment(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path,
        track(messageId="a", timestamp=None, receivedAt="2026-01-01T00:00:01Z"),
        track(messageId="b", timestamp=None),
        track(messageId="c", timestamp=None, originalTimestamp="2026-01-01T00:00:02.5Z"),
    )
    frame, _ = read(path)
    assert frame.get_column("ts").to_list() == [T + 1_000, ARRIVAL, T + 2_500]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:00Z", T),
        ("2026-01-01T01:00:00+01:00", T),
        ("2026-01-01T01:00:00.250+0100", T + 250),
        ("2026-01-01 00:00:00", T),
        ("2026-01-01", T),
        ("1767225600", T),
        ("1767225600250", T + 250),
        ("1767225600.5", T + 500),
    ],
)
def test_timestamp_forms(tmp_path: Path, text: str, expected: int) -> None:
    path = tmp_path / "events.csv"
    path.write_text(f"event,userId,timestamp\nA,u-1,{text}\n", encoding="utf-8")
    frame, rejects = read(path)
    assert rejects.height == 0
    assert frame.get_column("ts").item() == expected


def test_json_numbers_for_timestamps_and_ids(tmp_path: Path) -> None:
    frame, rejects = read(write_jsonl(tmp_path, track(messageId="a", userId=42, timestamp=1767225600)))
    assert rejects.height == 0
    assert frame.select("user_id", "ts").row(0) == ("42", T)


def test_missing_message_ids_are_deterministic_content_hashes(tmp_path: Path) -> None:
    lines = [track(), track(messageId=""), track(event="Other"), track(messageId="given")]
    first, _ = read(write_jsonl(tmp_path, *lines, name="a.jsonl"))
    again, _ = read(write_jsonl(tmp_path, *lines, name="b.jsonl"))
    ids = first.get_column("message_id").to_list()
    assert ids == again.get_column("message_id").to_list()
    assert ids[0] == ids[1]  # an empty messageId is a missing one: same content, same id
    assert ids[0] != ids[2]
    assert ids[3] == "given"
    assert all(len(i) == len("auto-") + 32 and i.startswith("auto-") for i in ids[:3])


def test_auto_ids_are_stable_across_two_reads_of_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("event,userId,timestamp,properties.path\nA,u-1,2026-01-01T00:00:00Z,/x\nB,u-1,,\n")
    first, _ = read(path)
    second = pl.concat([c.frame for c in read_events(path, received_at_ms=ARRIVAL + 1)])
    assert first.get_column("message_id").to_list() == second.get_column("message_id").to_list()


def test_non_track_types_drop_event_and_non_group_types_drop_group_id(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path,
        {"type": "Page", "event": "ignored", "userId": "u-1", "name": "Pricing", "groupId": "g", "timestamp": T},
        {"type": "group", "groupId": "g-1", "anonymousId": "a-1", "traits": {"name": "Acme"}, "timestamp": T},
        {"type": "alias", "userId": "u-1", "previousId": "a-1", "timestamp": T},
    )
    frame, rejects = read(path)
    assert rejects.height == 0
    assert frame.select("type", "event", "group_id", "properties").rows() == [
        ("page", None, None, '{"name":"Pricing"}'),
        ("group", None, "g-1", None),
        ("alias", None, None, '{"previousId":"a-1"}'),
    ]
