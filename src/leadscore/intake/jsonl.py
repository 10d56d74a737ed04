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

import gc
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    sizes = [len(line.rstrip(b"\r\n")) for line in lines]
    with _collector_paused():
        decoded, reasons = _decode(lines)
        return messages_from_objects(decoded, numbers, kind=kind, sizes=sizes, reasons=reasons)


def _decode(lines: list[bytes]) -> tuple[list[object], list[str | None]]:
    decoded: list[object] = []
    reasons: list[str | None] = []
    for line in lines:
        try:
            decoded.append(orjson.loads(line))
            reasons.append(None)
        except orjson.JSONDecodeError as error:
            decoded.append(None)
            reasons.append(f"invalid JSON: {error}")
    return decoded, reasons


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small containers.

    Decoding a chunk allocates hundreds of thousands of dicts that all stay alive until the
    chunk is done; each automatic collection would rescan them all, making decoding
    quadratic-looking (10 µs a line instead of 2). Nothing here creates reference cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
    object_names = _OBJECTS[kind]
    extra = ("account", "account_key") if kind == "contacts" else ()
    names = [column for _, column in _FIELDS] + list(object_names) + list(extra)
    rows: list[tuple[Any, ...]] = []
    empty = (None,) * len(names)
    pre_reason = list(reasons) if reasons is not None else [None] * height
    size = list(sizes) if sizes is not None else [0] * height
    for row, message in enumerate(objects):
        if pre_reason[row] is None and type(message) is not dict:
            pre_reason[row] = "not a JSON object"
        if pre_reason[row] is not None:
            rows.append(empty)
            continue
        assert isinstance(message, dict)
        if sizes is None:
            size[row] = len(orjson.dumps(message))
        split = _split_message(message, object_names, kind)
        if isinstance(split, str):
            pre_reason[row] = split
            rows.append(empty)
        else:
            rows.append(split)
    columns: dict[str, Any] = dict(zip(names, zip(*rows, strict=True), strict=True)) if rows else {}
    columns["_row"] = range(height)
    columns["line"] = numbers
    columns["size"] = size
    columns["pre_reason"] = pre_reason
    return message_frame({k: list(v) for k, v in columns.items()}, height)


_FIELD_KEYS = tuple(key for key, _ in _FIELDS)


def _split_message(message: dict[str, Any], object_names: tuple[str, ...], kind: Kind) -> tuple[Any, ...] | str:
    """The message-frame values of one message, or the reason it is unusable."""
    get = message.get
    values: list[Any] = [get(key) for key in _FIELD_KEYS]
    if not all(value is None or value.__class__ is str for value in values):
        coerced = _coerce_fields(values)
        if isinstance(coerced, str):
            return coerced
        values = coerced
    objects = [get(name) for name in object_names]
    for name, value in zip(object_names, objects, strict=True):
        if value is not None and value.__class__ is not dict:
            return f"{name} must be an object, not {type(value).__name__}"
    tail: list[Any] = []
    if kind == "events":
        if "name" in message or "previousId" in message:
            objects[0] = _with_moved_fields(message, objects[0])
    else:
        account = _account(message, objects[0])
        if isinstance(account, str):
            return account
        if account:
            key = next((str(account[k]) for k in _ACCOUNT_KEY_ORDER if account.get(k) not in (None, "")), None)
            tail = [orjson.dumps(account).decode(), key]
        else:
            tail = [None, None]
    dumps = orjson.dumps
    encoded = [dumps(value).decode() if value else None for value in objects]
    return (*values, *encoded, *tail)


def _coerce_fields(values: list[Any]) -> list[Any] | str:
    """Top-level fields given as JSON numbers become text; other non-strings are a reason."""
    coerced = list(values)
    for index, value in enumerate(values):
        if value is None or isinstance(value, str):
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            coerced[index] = str(value)
        else:
            return f"{_FIELD_KEYS[index]} must be a string, not {type(value).__name__}"
    return coerced


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
