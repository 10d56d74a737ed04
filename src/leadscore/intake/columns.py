"""Column headers of CSV and Parquet imports: Segment field paths, checked and planned.

A header is either a top-level message field (``type``, ``event``, ``userId``, ``anonymousId``,
``messageId``, ``timestamp``, ``sentAt``, ``receivedAt``, ``originalTimestamp``, ``groupId``;
snake_case spellings such as ``user_id`` are accepted too) or a dotted path into one of the
message's objects (``properties.path``, ``context.campaign.source``, ``traits.email``; for
contacts ``traits.*`` and ``account.*``). A page or screen ``name`` column becomes
``properties.name``, an alias ``previousId`` column ``properties.previousId``. Any other header
is an error, reported before a single row is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from leadscore.intake.frames import MESSAGE_SCHEMA, IntakeError
from leadscore.intake.jsonbuild import KeyTree, object_column, with_objects

Kind = Literal["events", "contacts"]

_FIELD_COLUMNS = {
    "type": "type",
    "event": "event",
    "userId": "user_id",
    "anonymousId": "anonymous_id",
    "messageId": "message_id",
    "timestamp": "timestamp",
    "sentAt": "sent_at",
    "receivedAt": "received_at",
    "originalTimestamp": "original_timestamp",
    "groupId": "group_id",
}
_ALIASES = {
    "user_id": "userId",
    "anonymous_id": "anonymousId",
    "message_id": "messageId",
    "sent_at": "sentAt",
    "received_at": "receivedAt",
    "original_timestamp": "originalTimestamp",
    "group_id": "groupId",
    "previous_id": "previousId",
}
_EVENT_FIELDS = frozenset(_FIELD_COLUMNS)
_CONTACT_FIELDS = frozenset(
    {"type", "userId", "anonymousId", "messageId", "timestamp", "sentAt", "receivedAt", "originalTimestamp"}
)
_OBJECTS: dict[Kind, tuple[str, ...]] = {"events": ("properties", "context", "traits"), "contacts": ("traits", "account")}
_MOVED_INTO_PROPERTIES = {"name": "name", "previousId": "previousId"}
_ACCOUNT_KEY_ORDER = ("id", "domain", "name")
_TIME_COLUMNS = frozenset({"timestamp", "sent_at", "received_at", "original_timestamp"})


@dataclass(slots=True)
class ColumnPlan:
    """Where each source column goes in the message frame."""

    fields: dict[str, str] = field(default_factory=dict)  # message column -> source column
    objects: dict[str, KeyTree] = field(default_factory=dict)  # properties/context/... -> key tree
    account_key_columns: list[str] = field(default_factory=list)  # account.id, .domain, .name present

    @property
    def source_columns(self) -> list[str]:
        """Every source column the plan reads."""
        names = list(self.fields.values())
        stack = list(self.objects.values())
        while stack:
            for node in stack.pop().values():
                if isinstance(node, str):
                    names.append(node)
                else:
                    stack.append(node)
        return names


def plan_columns(headers: list[str], kind: Kind) -> ColumnPlan:
    """Check ``headers`` and say where each goes; :class:`IntakeError` on any unusable header."""
    plan = ColumnPlan()
    allowed = _EVENT_FIELDS if kind == "events" else _CONTACT_FIELDS
    objects = _OBJECTS[kind]
    seen: set[str] = set()
    for header in headers:
        name = _ALIASES.get(header.strip(), header.strip())
        if name in seen:
            raise IntakeError(f"column {header!r} appears twice")
        seen.add(name)
        if name in allowed:
            plan.fields[_FIELD_COLUMNS[name]] = header
            continue
        if kind == "events" and name in _MOVED_INTO_PROPERTIES:
            _add_path(plan, "properties", [_MOVED_INTO_PROPERTIES[name]], header)
            continue
        root, _, rest = name.partition(".")
        if root in objects and rest:
            keys = rest.split(".")
            if any(not key for key in keys):
                raise IntakeError(f"column {header!r} has an empty key in its path")
            _add_path(plan, root, keys, header)
            continue
        expected = ", ".join(sorted(allowed)) + ", " + ", ".join(f"{root}.*" for root in objects)
        raise IntakeError(f"unknown column {header!r} in a {kind} file; expected Segment field paths: {expected}")
    if kind == "contacts":
        account = plan.objects.get("account", {})
        plan.account_key_columns = [
            node for key in _ACCOUNT_KEY_ORDER if isinstance(node := account.get(key), str)
        ]
    return plan


def _add_path(plan: ColumnPlan, root: str, keys: list[str], header: str) -> None:
    node = plan.objects.setdefault(root, {})
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        existing = node.get(key)
        if last:
            if existing is not None:
                raise IntakeError(f"column {header!r} clashes with another column for {root}.{'.'.join(keys)}")
            node[key] = header
        else:
            if isinstance(existing, str):
                raise IntakeError(f"column {header!r} nests under {existing!r}, which is a value")
            if existing is None:
                existing = {}
                node[key] = existing
            node = existing


def message_columns(
    wide: pl.DataFrame, plan: ColumnPlan, extra: list[pl.Expr], *, clean_text: bool = False
) -> pl.DataFrame:
    """The message frame of a wide frame: ``extra`` (``_row``, ``line``…), fields and objects.

    ``clean_text=True`` promises that no text cell holds a quote, a backslash or a control
    character (see :func:`~leadscore.intake.jsonbuild.with_objects`).
    """
    wide = with_objects(wide, plan.objects, clean_text=clean_text)
    exprs: list[pl.Expr] = list(extra)
    for name, dtype in MESSAGE_SCHEMA.items():
        if name in ("_row", "line", "size", "pre_reason"):
            continue
        if name in plan.fields and name in _TIME_COLUMNS:
            exprs.append(_text(pl.col(plan.fields[name])).alias(name))
        elif name in plan.fields:  # blank cells are made absent by the validator
            exprs.append(pl.col(plan.fields[name]).cast(pl.String).alias(name))
        elif name in plan.objects:
            exprs.append(pl.col(object_column(name)).alias(name))
        elif name == "account_key" and plan.account_key_columns:
            exprs.append(pl.coalesce([_text(pl.col(c)) for c in plan.account_key_columns]).alias(name))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return wide.select(exprs)


def _text(cell: pl.Expr) -> pl.Expr:
    """A top-level field as text; empty or blank cells are absent."""
    text = cell.cast(pl.String)
    return pl.when(text.str.strip_chars().str.len_bytes() > 0).then(text)
