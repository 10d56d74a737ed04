"""Intake: import files (CSV, JSON lines, Parquet) read into canonical polars frames.

Rows are validated vectorially; bad rows become rejects with their line number and reason.
:mod:`leadscore.intake.generate` makes deterministic synthetic B2B data for demos and benchmarks.
"""

from __future__ import annotations

from leadscore.intake.frames import (
    CONTACTS_SCHEMA,
    EVENT_TYPES,
    EVENTS_SCHEMA,
    MAX_MESSAGE_BYTES,
    REJECTS_SCHEMA,
    IntakeError,
    ReadChunk,
)
from leadscore.intake.jsonl import messages_from_objects
from leadscore.intake.readers import FORMATS, detect_format, read_contacts, read_events
from leadscore.intake.validate import validate_contacts, validate_events

__all__ = [
    "CONTACTS_SCHEMA",
    "EVENTS_SCHEMA",
    "EVENT_TYPES",
    "FORMATS",
    "MAX_MESSAGE_BYTES",
    "REJECTS_SCHEMA",
    "IntakeError",
    "ReadChunk",
    "detect_format",
    "messages_from_objects",
    "read_contacts",
    "read_events",
    "validate_contacts",
    "validate_events",
]
