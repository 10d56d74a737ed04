"""JSON lines and Parquet imports: nulls, nested objects, gzip, identify messages."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import polars as pl

from leadscore.intake import messages_from_objects, read_contacts, read_events, validate_events

ARRIVAL = 1_800_000_000_000
T = 1_767_225_600_000


def test_nulls_and_nested_objects_survive(tmp_path: Path) -> None:
    message = {
        "type": "track",
        "event": "Webinar Attended",
        "userId": None,
        "anonymousId": "anon-1",
        "messageId": "m-1",
        "timestamp": "2026-01-01T00:00:00.000Z",
        "sentAt": None,
        "properties": {"webinar": {"id": 7, "tags": ["a", "b"]}, "live": True, "note": None},
        "context": {"campaign": {"source": "newsletter"}, "userAgent": 'Agent "quoted"'},
        "traits": None,
        "integrations": {"All": True},
    }
    path = tmp_path / "events.jsonl"
    path.write_text("\n" + orjson.dumps(message).decode() + "\n\n", encoding="utf-8")
    chunks = list(read_events(path, received_at_ms=ARRIVAL))
    frame = pl.concat([c.frame for c in chunks])
    row = frame.row(0, named=True)
    assert row["line"] == 2
    assert (row["user_id"], row["anonymous_id"], row["ts"], row["traits"]) == (None, "anon-1", T, None)
    assert orjson.loads(row["properties"]) == message["properties"]
    assert orjson.loads(row["context"]) == message["context"]
    assert sum(c.rows_read for c in chunks) == 1


def test_gzip_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson.gz"
    lines = [{"type": "page", "userId": f"u-{i}", "timestamp": T, "messageId": f"m-{i}"} for i in range(5)]
    path.write_bytes(gzip.compress(b"\n".join(orjson.dumps(line) for line in lines)))
    chunks = list(read_events(path, received_at_ms=ARRIVAL, chunk_rows=2))
    assert [c.rows_read for c in chunks] == [2, 2, 1]
    frame = pl.concat([c.frame for c in chunks])
    assert frame.get_column("line").to_list() == [1, 2, 3, 4, 5]
    assert chunks[-1].bytes_read == path.stat().st_size


def test_identify_messages_as_contacts(tmp_path: Path) -> None:
    lines = [
        {"type": "identify", "userId": "u-1", "traits": {"email": "a@acme.com"}, "account": {"id": "acc-1"}},
        {"userId": "u-2", "traits": {"email": "b@x.com", "company": {"name": "X", "employee_count": 30}}},
        {"type": "identify", "anonymousId": "a-3", "timestamp": "2026-01-01T00:00:00Z"},
        {"type": "track", "userId": "u-4", "event": "E"},
    ]
    path = tmp_path / "contacts.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    chunks = list(read_contacts(path))
    frame = pl.concat([c.frame for c in chunks])
    assert frame.select("user_id", "anonymous_id", "ts", "account_key").rows() == [
        ("u-1", None, None, "acc-1"),
        ("u-2", None, None, "X"),
        (None, "a-3", T, None),
    ]
    assert orjson.loads(frame.get_column("account").to_list()[1]) == {"name": "X", "employee_count": 30, "employees": 30}
    assert frame.get_column("traits").to_list()[2] == "{}"
    rejects = pl.concat([c.rejects for c in chunks])
    assert rejects.select("line", "reason").rows() == [(4, "expected an identify message, got 'track'")]


def test_parquet_with_typed_and_dotted_columns(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    pl.DataFrame(
        {
            "type": ["track", "page"],
            "event": ["Video Watched", None],
            "userId": [1, 2],
            "timestamp": pl.Series([T, T + 1_000]).cast(pl.Datetime("ms", "UTC")),
            "properties.seconds": [12.5, None],
            "properties.ok": [True, None],
            "properties.tags": [["a"], None],
        }
    ).write_parquet(path)
    chunks = list(read_events(path, received_at_ms=ARRIVAL))
    frame = pl.concat([c.frame for c in chunks])
    assert frame.select("line", "user_id", "ts", "properties").rows() == [
        (1, "1", T, '{"seconds":12.5,"ok":true,"tags":["a"]}'),
        (2, "2", T + 1_000, None),
    ]


def test_messages_from_objects_for_http_batches() -> None:
    batch = [{"type": "track", "event": "E", "userId": "u-1", "timestamp": T, "messageId": "m"}, "oops"]
    frame, rejects = validate_events(messages_from_objects(batch, [1, 2], kind="events"), received_at_ms=ARRIVAL)
    assert frame.get_column("message_id").to_list() == ["m"]
    assert rejects.select("line", "reason").rows() == [(2, "not a JSON object")]
