"""The unit of work: one connection, one transaction, the repositories bound to it.

It rolls back unless :meth:`UnitOfWork.commit` is called, so a failing use case leaves the
database untouched. Services receive it; only the entry point (request, CLI command) commits.

Example::

    with UnitOfWork(engine) as uow:
        contact, created = uow.contacts.get_or_create(user_id="u-42")
        uow.commit()
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine, RootTransaction

from leadscore.store.keys import KeyRepository
from leadscore.store.repositories import (
    AccountRepository,
    ContactRepository,
    EventRepository,
    MetaRepository,
    ModelRepository,
    ScoreStateRepository,
)


class UnitOfWork:
    """A transaction on ``engine`` exposing ``contacts``, ``accounts``, ``models``,
    ``score_state``, ``events`` and ``meta`` repositories (usable inside ``with`` only)."""

    contacts: ContactRepository
    accounts: AccountRepository
    models: ModelRepository
    score_state: ScoreStateRepository
    events: EventRepository
    meta: MetaRepository

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._transaction: RootTransaction | None = None

    @property
    def connection(self) -> Connection:
        """The connection of the open unit of work (for the rare query that has no repository yet)."""
        if self._connection is None:
            raise RuntimeError("the unit of work is not open: use it in a `with` block")
        return self._connection

    def __enter__(self) -> UnitOfWork:
        connection = self._engine.connect()
        self._connection = connection
        self._transaction = connection.begin()
        self.contacts = ContactRepository(connection)
        self.accounts = AccountRepository(connection)
        self.models = ModelRepository(connection)
        self.score_state = ScoreStateRepository(connection)
        self.events = EventRepository(connection)
        self.meta = MetaRepository(connection)
        self.keys = KeyRepository(connection)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.rollback()
        finally:
            self.connection.close()
            self._connection = None
            self._transaction = None

    def commit(self) -> None:
        """Make the work done so far durable; the unit of work stays open for more work."""
        if self._transaction is not None and self._transaction.is_active:
            self._transaction.commit()
        self._transaction = self.connection.begin()

    def rollback(self) -> None:
        """Discard everything not committed yet."""
        if self._transaction is not None and self._transaction.is_active:
            self._transaction.rollback()
        self._transaction = None
