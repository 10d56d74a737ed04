"""Repositories of the small (row at a time) paths: all their SQL lives here and in
:mod:`leadscore.store.contacts`. They work inside the caller's transaction and never commit;
:class:`leadscore.store.uow.UnitOfWork` owns the transaction. Bulk paths use
:mod:`leadscore.store.bulk` instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from sqlalchemy import Connection, delete, func, select, update

from leadscore.store.contacts import AccountRepository, ContactRepository
from leadscore.store.records import EventRecord, ModelRecord, dialect_insert, now_ms
from leadscore.store.contexts import digest
from leadscore.store.tables import contexts, events, meta, models, score_state

__all__ = [
    "AccountRepository",
    "ContactRepository",
    "EventRepository",
    "MetaRepository",
    "ModelRepository",
    "ScoreStateRepository",
]


class ModelRepository:
    """Revisions of the scoring model file: drafts, the one published revision, retired ones."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add_draft(self, *, name: str, version: int, yaml: str, at_ms: int | None = None) -> ModelRecord:
        """Store a model file as a new draft revision (the next revision number)."""
        latest = self._connection.execute(select(func.max(models.c.revision))).scalar_one_or_none()
        revision = (latest or 0) + 1
        self._connection.execute(
            models.insert().values(
                name=name,
                version=version,
                revision=revision,
                yaml=yaml,
                checksum=hashlib.sha256(yaml.encode()).hexdigest(),
                status="draft",
                created_at=now_ms() if at_ms is None else at_ms,
                published_at=None,
            )
        )
        return self._require(revision)

    def publish(self, revision: int, *, at_ms: int | None = None) -> ModelRecord:
        """Make ``revision`` the published model; the previously published one is retired."""
        target = self.get(revision)
        if target is None:
            raise LookupError(f"no model revision {revision}")
        if target.status == "published":
            return target
        self._connection.execute(update(models).where(models.c.status == "published").values(status="retired"))
        self._connection.execute(
            update(models)
            .where(models.c.revision == revision)
            .values(status="published", published_at=now_ms() if at_ms is None else at_ms)
        )
        return self._require(revision)

    def get(self, revision: int) -> ModelRecord | None:
        row = self._connection.execute(select(models).where(models.c.revision == revision)).mappings().first()
        return None if row is None else ModelRecord.from_row(row)

    def get_published(self) -> ModelRecord | None:
        row = self._connection.execute(select(models).where(models.c.status == "published")).mappings().first()
        return None if row is None else ModelRecord.from_row(row)

    def list_revisions(self) -> list[ModelRecord]:
        """Every revision, oldest first."""
        rows = self._connection.execute(select(models).order_by(models.c.revision)).mappings()
        return [ModelRecord.from_row(row) for row in rows]

    def _require(self, revision: int) -> ModelRecord:
        record = self.get(revision)
        if record is None:
            raise LookupError(f"no model revision {revision}")
        return record


class ScoreStateRepository:
    """The decayed accumulators ``(s, t_ref)`` of one contact, per engagement rule."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def load(self, contact_id: int) -> dict[str, tuple[float, float]]:
        query = select(score_state.c.rule_id, score_state.c.s, score_state.c.t_ref).where(
            score_state.c.contact_id == contact_id
        )
        return {rule_id: (float(s), float(t_ref)) for rule_id, s, t_ref in self._connection.execute(query)}

    def replace(self, contact_id: int, state: Mapping[str, tuple[float, float]]) -> None:
        """Replace all accumulators of the contact with ``state`` (rule_id -> (s, t_ref))."""
        self._connection.execute(delete(score_state).where(score_state.c.contact_id == contact_id))
        if state:
            rows = [
                {"contact_id": contact_id, "rule_id": rule_id, "s": s, "t_ref": t_ref}
                for rule_id, (s, t_ref) in sorted(state.items())
            ]
            self._connection.execute(score_state.insert(), rows)


class EventRepository:
    """The event log, one contact at a time."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, record: EventRecord) -> bool:
        """Append one event; False (and nothing written) when its message id is already stored
        for that contact."""
        row = record.to_row()
        if row["context"] is not None:  # stored once per distinct document
            row["context_id"], row["context"] = self._context_id(row["context"]), None
        statement = dialect_insert(self._connection, events).values(**row)
        statement = statement.on_conflict_do_nothing(index_elements=["contact_id", "message_id"])
        return self._connection.execute(statement.returning(events.c.message_id)).first() is not None

    def _context_id(self, body: str) -> int:
        key = digest(body)
        insert = dialect_insert(self._connection, contexts).values(digest=key, body=body)
        self._connection.execute(insert.on_conflict_do_nothing(index_elements=["digest"]))
        return int(self._connection.execute(select(contexts.c.id).where(contexts.c.digest == key)).scalar_one())

    def of_contact(self, contact_id: int, *, until_ms: int | None = None) -> list[EventRecord]:
        """The contact's events ordered by time (then message id), up to ``until_ms`` inclusive."""
        context = func.coalesce(events.c.context, contexts.c.body).label("context")
        columns = [column for column in events.c if column.name not in {"context", "context_id"}]
        query = (
            select(*columns, context)
            .select_from(events.outerjoin(contexts, contexts.c.id == events.c.context_id))
            .where(events.c.contact_id == contact_id)
        )
        if until_ms is not None:
            query = query.where(events.c.ts <= until_ms)
        rows = self._connection.execute(query.order_by(events.c.ts, events.c.message_id)).mappings()
        return [EventRecord.from_row(row) for row in rows]

    def count(self, contact_id: int | None = None) -> int:
        query = select(func.count()).select_from(events)
        if contact_id is not None:
            query = query.where(events.c.contact_id == contact_id)
        return int(self._connection.execute(query).scalar_one())


class MetaRepository:
    """Small key/value settings of the database."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, key: str, default: str | None = None) -> str | None:
        row = self._connection.execute(select(meta.c.value).where(meta.c.key == key)).first()
        return default if row is None else row[0]

    def replace(self, key: str, expected: str | None, value: str) -> bool:
        """Set ``key`` to ``value`` only if it still holds ``expected`` (None: absent) — a claim
        that one of several concurrent processes wins. True when this call won."""
        if expected is None:
            statement = dialect_insert(self._connection, meta).values(key=key, value=value).on_conflict_do_nothing()
        else:
            statement = update(meta).where(meta.c.key == key, meta.c.value == expected).values(value=value)
        # RETURNING rather than rowcount: psycopg reports -1 for an INSERT … ON CONFLICT
        return self._connection.execute(statement.returning(meta.c.key)).first() is not None

    def set(self, key: str, value: str | None) -> None:
        statement = dialect_insert(self._connection, meta).values(key=key, value=value)
        self._connection.execute(
            statement.on_conflict_do_update(index_elements=["key"], set_={"value": statement.excluded.value})
        )
