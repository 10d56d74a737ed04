"""JSON lines imports: one Segment message per line, decoded with orjson.

Polars' own NDJSON reader infers one schema for the whole file, which breaks on what Segment
traffic looks like (``properties`` differing per event, a field that is a number on one line and
a string on the next) and fails the whole file on one bad line. So each line is decoded by
orjson and split into the message frame's text columns; nested objects are re-encoded as JSON
text. Everything after that (types, identities, timestamps) is checked vectorially by
:mod:`leadscore.intake.validate`. Blank lines are skipped; JSON ``null`` means absent.

For contacts, the identify's ``traits`` are the contact's traits; the account comes from a
top-level ``account`` object if there is one, else from Segment's ``traits.company`` object
(whose ``employee_count`` is also given as ``employees``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import orjson
import polars as pl

from leadscore.intake.columns import Kind
from leadscore.intake.frames import SourceChunk, message_frame

_FIELDS = (
    ("type", "type"),
    ("event", "event"),
    ("userId", "user_id"),
    ("anonymousId", "anonymous_id"),
    ("messageId", "message_id"),
    ("timestamp", "timestamp"),
    ("sentAt", "sent_at"),
    ("receivedAt", "received_at"),
    ("originalTimestamp", "original_timestamp"),
    ("groupId", "group_id"),
)
_OBJECTS: dict[Kind, tuple[str, ...]] = {"events": ("properties", "context", "traits"), "contacts": ("traits",)}
_ACCOUNT_KEY_ORDER = ("id", "domain", "name")


def read_jsonl_chunks(
    stream: BinaryIO, position: Callable[[], int], *, kind: Kind, chunk_rows: int
) -> Iterator[SourceChunk]:
    """Message frames of up to ``chunk_rows`` messages from a JSON lines byte stream."""
    numbered = ((number, line) for number, line in enumerate(stream, start=1) if line.strip())
    while batch := list(itertools.islice(numbered, chunk_rows)):
        lines = [line for _, line in batch]
        messages = messages_from_lines(lines, [number for number, _ in batch], kind=kind)

        def raw_rows(rows: list[int], lines: list[bytes] = lines) -> list[str]:
            return [lines[row].decode("utf-8", "replace").rstrip("\r\n") for row in rows]

        yield SourceChunk(messages=messages, raw_rows=raw_rows, bytes_read=position())


def messages_from_lines(lines: list[bytes], numbers: list[int], *, kind: Kind) -> pl.DataFrame:
    """The message frame of JSON text lines (``numbers`` are their line numbers)."""
    decoded: list[object] = []
    reasons: list[str | None] = []
    for line in lines:
        try:
            decoded.append(orjson.loads(line))
            reasons.append(None)
        except orjson.JSONDecodeError as error:
            decoded.append(None)
            reasons.append(f"invalid JSON: {error}")
    sizes = [len(line.rstrip(b"\r\n")) for line in lines]
    return messages_from_objects(decoded, numbers, kind=kind, sizes=sizes, reasons=reasons)


def messages_from_objects(
    objects: list[object],
    numbers: list[int],
    *,
    kind: Kind,
    sizes: list[int] | None = None,
    reasons: list[str | None] | None = None,
) -> pl.DataFrame:
    """The message frame of decoded Segment messages (for files and for HTTP batches alike).

    ``sizes`` are the encoded sizes of the messages (measured here when not given);
    ``reasons`` are problems already found (such as invalid JSON), kept as the row's reason.
    """
    height = len(objects)
    columns: dict[str, list[Any]] = {column: [None] * height for _, column in _FIELDS}
    object_names = _OBJECTS[kind]
    for name in object_names:
        columns[name] = [None] * height
    if kind == "contacts":
        columns["account"] = [None] * height
        columns["account_key"] = [None] * height
    pre_reason = list(reasons) if reasons is not None else [None] * height
    size = list(sizes) if sizes is not None else [0] * height
    for row, message in enumerate(objects):
        if pre_reason[row] is not None:
            continue
        if not isinstance(message, dict):
            pre_reason[row] = "not a JSON object"
            continue
        if sizes is None:
            size[row] = len(orjson.dumps(message))
        pre_reason[row] = _split_message(message, row, columns, object_names, kind)
    columns["_row"] = list(range(height))
    columns["line"] = numbers
    columns["size"] = size
    columns["pre_reason"] = pre_reason
    return message_frame(columns, height)


def _split_message(
    message: dict[str, Any], row: int, columns: dict[str, list[Any]], object_names: tuple[str, ...], kind: Kind
) -> str | None:
    """Fill ``columns[...][row]`` from one message; the reason it is unusable, if any."""
    for key, column in _FIELDS:
        value = message.get(key)
        if value is None or isinstance(value, str):
            columns[column][row] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            columns[column][row] = str(value)
        else:
            return f"{key} must be a string, not {type(value).__name__}"
    objects = {name: message.get(name) for name in object_names}
    for name, value in objects.items():
        if value is not None and not isinstance(value, dict):
            return f"{name} must be an object, not {type(value).__name__}"
    if kind == "events":
        objects["properties"] = _with_moved_fields(message, objects["properties"])
    else:
        account = _account(message, objects["traits"])
        if isinstance(account, str):
            return account
        if account:
            columns["account"][row] = orjson.dumps(account).decode()
            columns["account_key"][row] = next(
                (str(account[k]) for k in _ACCOUNT_KEY_ORDER if account.get(k) not in (None, "")), None
            )
    for name, value in objects.items():
        if value:
            columns[name][row] = orjson.dumps(value).decode()
    return None


def _with_moved_fields(message: dict[str, Any], properties: Any) -> Any:
    """``name`` (page, screen) and ``previousId`` (alias) kept as properties when not there."""
    moved = {key: message[key] for key in ("name", "previousId") if message.get(key) is not None}
    if not moved:
        return properties
    merged = dict(properties or {})
    for key, value in moved.items():
        merged.setdefault(key, value)
    return merged


def _account(message: dict[str, Any], traits: Any) -> dict[str, Any] | str | None:
    """The account object of an identify, or a reason when it is not an object."""
    account = message.get("account")
    if account is not None:
        return account if isinstance(account, dict) else f"account must be an object, not {type(account).__name__}"
    company = (traits or {}).get("company")
    if not isinstance(company, dict):
        return None
    account = dict(company)
    if "employees" not in account and account.get("employee_count") is not None:
        account["employees"] = account["employee_count"]
    return account
