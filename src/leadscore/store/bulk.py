"""The bulk layer: set-based reads and writes of whole batches, one ADBC implementation for
SQLite and PostgreSQL, polars frames in and out and no per-row Python.

Imports and rescores use it; the row-at-a-time paths use the repositories. Example::

    with BulkSession.open(url) as bulk:
        contacts = bulk.resolve_contacts(keys)          # user_id, anonymous_id -> contact_id
        fresh = events.join(bulk.existing_message_ids(events), on=[...], how="anti")
        bulk.insert_events(fresh)
        bulk.commit()

A session is one write transaction (SQLite: ``BEGIN IMMEDIATE``, so concurrent writers queue
on the busy timeout); leaving the ``with`` block rolls back whatever was not committed. After
:meth:`BulkSession.commit` the next call opens a new transaction.

JSON columns (``traits``, ``properties``, ``context``) travel as JSON text, as stored.
Batches are passed through temporary tables (``_bulk_*``) and joined in SQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import polars as pl

from leadscore.store import bulk_contacts, bulk_merges
from leadscore.store.adbc import AdbcWriter
from leadscore.store.contexts import ContextDictionary
from leadscore.store.schemas import EVENT_SCHEMA, IDS_SCHEMA, MESSAGE_KEY_SCHEMA, STATE_SCHEMA, STORED_EVENT_SCHEMA


class BulkSession:
    """A write transaction on the store for batch work (see the module docstring)."""

    def __init__(self, writer: AdbcWriter) -> None:
        self._writer = writer
        self._contexts = ContextDictionary(writer)

    @classmethod
    @contextmanager
    def open(cls, url: str) -> Iterator[BulkSession]:
        """Connect to ``url`` (a leadscore database URL) and start the write transaction."""
        writer = AdbcWriter.connect(url)
        try:
            writer.begin()
            yield cls(writer)
        finally:
            writer.close()

    @classmethod
    @contextmanager
    def open_reader(cls, url: str) -> Iterator[BulkSession]:
        """A second connection for reads only, outside the write transaction: it sees what is
        committed. Rescore reads the (unchanging) event log on such connections in parallel."""
        writer = AdbcWriter.connect(url, read_only=True)
        try:
            yield cls(writer)
        finally:
            writer.close()

    def close(self) -> None:
        """Roll back what is not committed and close the connection (for sessions built
        directly on an :class:`AdbcWriter` rather than with :meth:`open`)."""
        self._writer.close()

    def serialize_writers(self) -> None:
        """Take the event writers' lock for this transaction: writers of events and scores take
        turns, like SQLite's single writer (PostgreSQL: a transaction advisory lock, released at
        commit or rollback). Without it two writers resolving, merging and scoring the same
        people in different orders could deadlock or interleave a merge with a scoring."""
        if self.dialect == "postgresql":
            self._writer.query("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(?)) AS l", {"locked": pl.Int32()},
                               [_WRITERS_LOCK_KEY])

    def lock_contacts(self, contact_ids: pl.Series) -> pl.Series:
        """The ids among these that still exist (a contact merged away by a writer that committed
        meanwhile is missing). PostgreSQL: their rows are also locked until commit, in id order,
        so concurrent writers scoring (or merging) the same contact take turns; SQLite's write
        lock already serialises writers."""
        if contact_ids.is_empty():
            return contact_ids.unique()
        self._load_ids(contact_ids)
        if self.dialect != "postgresql":
            return self._writer.query(
                "SELECT c.id AS contact_id FROM contacts c JOIN _bulk_ids i ON i.contact_id = c.id", IDS_SCHEMA
            ).get_column("contact_id")
        locked = self._writer.query(
            "SELECT c.id AS contact_id FROM contacts c JOIN _bulk_ids i ON i.contact_id = c.id"
            " ORDER BY c.id FOR UPDATE OF c",
            IDS_SCHEMA,
        )
        return locked.get_column("contact_id")

    @property
    def writer(self) -> AdbcWriter:
        """The session's connection, for store modules with set-based SQL of their own (they
        run in this session's transaction)."""
        return self._writer

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._writer.dialect

    def commit(self) -> None:
        """Make everything written so far durable."""
        self._writer.commit()
        self._contexts.committed()

    def rollback(self) -> None:
        """Discard everything written since the last commit."""
        self._writer.rollback()
        self._contexts.rolled_back()

    # contacts and accounts ------------------------------------------------------------------

    def resolve_contacts(self, keys: pl.DataFrame, *, at_ms: int | None = None) -> pl.DataFrame:
        """Map each ``(user_id, anonymous_id)`` row to its contact, creating missing contacts.

        Returns the rows in input order with ``contact_id`` and ``created`` (the contact was
        made by this call). See :func:`leadscore.store.bulk_contacts.resolve_contacts` for the
        identity rule.
        """
        return bulk_contacts.resolve_contacts(self._writer, keys, at_ms=at_ms)

    def upsert_contacts(self, frame: pl.DataFrame, *, at_ms: int | None = None) -> int:
        """Update the given columns of existing contacts (``contact_id`` plus any of
        traits, email, account_id, excluded, fit_raw, first_seen_at, last_event_at); a null
        keeps the stored value. Returns the number of contacts updated."""
        return bulk_contacts.upsert_contacts(self._writer, frame, at_ms=at_ms)

    def read_contacts(
        self, columns: Sequence[str] | None = None, contact_ids: pl.Series | None = None
    ) -> pl.DataFrame:
        """``contact_id`` plus the requested contact columns (all when None), by contact id."""
        return bulk_contacts.read_contacts(self._writer, columns, contact_ids)

    def upsert_accounts(self, frame: pl.DataFrame, *, at_ms: int | None = None) -> pl.DataFrame:
        """Create or update accounts by ``key`` (plus any of name, domain, traits; a null keeps
        the stored value) and return the input rows with ``account_id``."""
        return bulk_contacts.upsert_accounts(self._writer, frame, at_ms=at_ms)

    def read_accounts(self, keys: pl.Series | None = None, account_ids: pl.Series | None = None) -> pl.DataFrame:
        """Accounts ``[account_id, key, name, domain, traits]`` with one of ``keys`` or
        ``account_ids`` (every account when both are None)."""
        return bulk_contacts.read_accounts(self._writer, keys, account_ids)

    # events ---------------------------------------------------------------------------------

    def contacts_with_events(self, contact_ids: pl.Series) -> pl.Series:
        """The contacts among ``contact_ids`` that have at least one stored event."""
        if contact_ids.is_empty():
            return pl.Series("contact_id", [], dtype=pl.Int64())
        self._load_ids(contact_ids)
        found = self._writer.query(
            "SELECT i.contact_id FROM _bulk_ids i"
            " WHERE EXISTS (SELECT 1 FROM events e WHERE e.contact_id = i.contact_id)",
            IDS_SCHEMA,
        )
        return found.get_column("contact_id")

    def existing_message_ids(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The rows of ``frame`` whose ``(contact_id, message_id)`` is already stored.

        Contacts are checked first, so a batch of contacts without events costs one probe per
        contact and the message ids are not even sent to the database.
        """
        empty = frame.clear()
        if frame.is_empty():
            return empty
        contact_ids = frame.select(pl.col("contact_id").unique().sort())
        self._writer.ingest("_bulk_ids", contact_ids, IDS_SCHEMA, temporary=True)
        with_events = self._writer.query(
            "SELECT i.contact_id FROM _bulk_ids i"
            " WHERE EXISTS (SELECT 1 FROM events e WHERE e.contact_id = i.contact_id)",
            IDS_SCHEMA,
        )
        if with_events.is_empty():
            return empty
        # probing in clustered-key order keeps the B-tree pages hot: ~10x faster than random order
        candidates = (
            frame.select("contact_id", "message_id")
            .join(with_events, on="contact_id", how="semi")
            .sort("contact_id", "message_id")
        )
        self._writer.ingest("_bulk_messages", candidates, MESSAGE_KEY_SCHEMA, temporary=True)
        stored = self._writer.query(
            "SELECT m.contact_id, m.message_id FROM _bulk_messages m WHERE EXISTS"
            " (SELECT 1 FROM events e WHERE e.contact_id = m.contact_id AND e.message_id = m.message_id)",
            MESSAGE_KEY_SCHEMA,
        )
        keys = stored.cast({"contact_id": frame.schema["contact_id"], "message_id": frame.schema["message_id"]})
        return frame.join(keys, on=["contact_id", "message_id"], how="semi", maintain_order="left")

    def insert_events(self, frame: pl.DataFrame) -> int:
        """Append events (columns of the ``events`` table; absent optional ones are null,
        ``machine`` false), written in clustered-key order. Returns the number of rows.

        Duplicates of stored ``(contact_id, message_id)`` pairs make the whole call fail:
        remove them first with :meth:`existing_message_ids`.
        """
        if frame.is_empty():
            return 0
        missing = [name for name in ("contact_id", "message_id", "type", "ts", "received_at") if name not in frame]
        if missing:
            raise ValueError(f"events frame lacks required columns: {', '.join(missing)}")
        filled = frame.with_columns(
            [pl.lit(False).alias(name) if name == "machine" else pl.lit(None).alias(name)
             for name in EVENT_SCHEMA if name not in frame]
        ).with_columns(pl.col("machine").fill_null(False))
        # each distinct context document is stored once (see leadscore.store.contexts)
        context_ids = self._contexts.ids(filled.get_column("context").cast(pl.String))
        stored = filled.with_columns(context_id=context_ids, context=pl.lit(None, dtype=pl.String))
        ordered = stored.select(list(STORED_EVENT_SCHEMA)).sort("contact_id", "message_id")
        self._writer.ingest("events", ordered, STORED_EVENT_SCHEMA)
        return ordered.height

    def read_events(
        self,
        contact_ids: pl.Series | None = None,
        *,
        types: Sequence[str] | None = None,
        event_names: Sequence[str] | None = None,
        until_ms: int | None = None,
        columns: Sequence[str] | None = None,
        contact_range: tuple[int, int] | None = None,
        ordered: bool = True,
    ) -> pl.DataFrame:
        """Stored events, ordered by ``(contact_id, ts, message_id)`` unless ``ordered=False``
        (then in clustered-key order, which is cheaper for whole-log passes).

        ``contact_ids`` restricts to those contacts, ``contact_range`` to the ids ``lo..hi``
        inclusive (a range scan of the clustered key); ``types`` and ``event_names`` keep the
        events whose type is in ``types`` or whose track name is in ``event_names`` (what a
        set of rules can match); ``until_ms`` keeps events with ``ts <= until_ms``;
        ``columns`` reads only those columns (all when None).
        """
        names = list(EVENT_SCHEMA) if columns is None else [name for name in EVENT_SCHEMA if name in set(columns)]
        selected = [*names, "context_id"] if "context" in names else names
        sql = f"SELECT {', '.join('e.' + name for name in selected)} FROM events e"
        conditions: list[str] = []
        parameters: list[object] = []
        if contact_ids is not None:
            sql += self._join_ids(contact_ids, "e")
        if contact_range is not None:
            conditions.append("e.contact_id BETWEEN ? AND ?")
            parameters.extend(int(bound) for bound in contact_range)
        if types is not None or event_names is not None:
            alternatives = []
            if types:
                alternatives.append(f"e.type IN ({', '.join('?' for _ in types)})")
                parameters.extend(types)
            if event_names:
                alternatives.append(f"e.event IN ({', '.join('?' for _ in event_names)})")
                parameters.extend(event_names)
            conditions.append(f"({' OR '.join(alternatives)})" if alternatives else "1 = 0")
        if until_ms is not None:
            conditions.append("e.ts <= ?")
            parameters.append(int(until_ms))
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        frame = self._writer.query(sql, {name: STORED_EVENT_SCHEMA[name] for name in selected}, parameters)
        if "context" in names:
            bodies = self._contexts.bodies(frame.get_column("context_id"))
            frame = (
                frame.join(bodies.rename({"context": "_body"}), on="context_id", how="left", maintain_order="left")
                .with_columns(pl.coalesce("context", "_body").alias("context"))
                .select(names)
            )
        if not ordered:
            return frame
        return frame.sort([name for name in ("contact_id", "ts", "message_id") if name in names])

    # score state ----------------------------------------------------------------------------

    def load_state(self, contact_ids: pl.Series | None = None) -> pl.DataFrame:
        """The accumulators ``[contact_id, rule_id, s, t_ref]`` of these contacts (all when None)."""
        sql = "SELECT st.contact_id, st.rule_id, st.s, st.t_ref FROM score_state st"
        if contact_ids is not None:
            sql += self._join_ids(contact_ids, "st")
        return self._writer.query(sql, STATE_SCHEMA).sort("contact_id", "rule_id")

    def append_state(self, frame: pl.DataFrame) -> int:
        """Write accumulators of contacts that have none yet (after a ``replace_state`` that
        cleared them); returns the number of rows."""
        if frame.is_empty():
            return 0
        ordered = frame.select(list(STATE_SCHEMA)).sort("contact_id", "rule_id")
        self._writer.ingest("score_state", ordered, STATE_SCHEMA)
        return ordered.height

    def upsert_state(self, frame: pl.DataFrame) -> int:
        """Write these accumulators ``[contact_id, rule_id, s, t_ref]`` over the stored ones of
        the same keys (other rows untouched); returns the number of rows."""
        if frame.is_empty():
            return 0
        ordered = frame.select(list(STATE_SCHEMA)).sort("contact_id", "rule_id")
        self._writer.ingest("_bulk_state", ordered, STATE_SCHEMA, temporary=True)
        self._writer.execute(
            "INSERT INTO score_state (contact_id, rule_id, s, t_ref)"
            " SELECT contact_id, rule_id, s, t_ref FROM _bulk_state WHERE true"
            " ON CONFLICT (contact_id, rule_id) DO UPDATE SET s = excluded.s, t_ref = excluded.t_ref"
        )
        return ordered.height

    def replace_state(self, frame: pl.DataFrame, contact_ids: pl.Series | None = None) -> int:
        """Delete the accumulators of ``contact_ids`` (of everyone when None) and write ``frame``
        ``[contact_id, rule_id, s, t_ref]``. Returns the number of rows written."""
        if contact_ids is None:
            self._writer.execute("DELETE FROM score_state")
        else:
            self._load_ids(contact_ids)
            self._writer.execute("DELETE FROM score_state WHERE contact_id IN (SELECT contact_id FROM _bulk_ids)")
        if frame.is_empty():
            return 0
        ordered = frame.select(list(STATE_SCHEMA)).sort("contact_id", "rule_id")
        self._writer.ingest("score_state", ordered, STATE_SCHEMA)
        return ordered.height

    # helpers --------------------------------------------------------------------------------

    def _load_ids(self, contact_ids: pl.Series) -> None:
        ids = pl.DataFrame({"contact_id": contact_ids.unique().sort()})
        self._writer.ingest("_bulk_ids", ids, IDS_SCHEMA, temporary=True)

    def _join_ids(self, contact_ids: pl.Series, alias: str) -> str:
        self._load_ids(contact_ids)
        return f" JOIN _bulk_ids i ON i.contact_id = {alias}.contact_id"

    # merges (identity resolution; see leadscore.services.merging) ----------------------------

    def merge_candidates(self, links: pl.DataFrame) -> pl.DataFrame:
        """Merges that identity links ``[user_id, linked_id, cause, ts]`` call for; see
        :func:`leadscore.store.bulk_merges.identity_candidates`."""
        return bulk_merges.identity_candidates(self._writer, links)

    def email_merge_candidates(self, contact_ids: pl.Series) -> pl.DataFrame:
        """Contacts sharing the e-mail of one of ``contact_ids``, each with its survivor; see
        :func:`leadscore.store.bulk_merges.email_candidates`."""
        return bulk_merges.email_candidates(self._writer, contact_ids)

    def merge_contacts(self, plan: pl.DataFrame, *, at_ms: int | None = None) -> pl.DataFrame:
        """Merge each ``merged_id`` of ``plan`` into its ``survivor_id`` (events, identities,
        traits, contact columns; merges recorded). Score state is left to the caller; see
        :func:`leadscore.store.bulk_merges.merge_contacts`."""
        return bulk_merges.merge_contacts(self._writer, plan, at_ms=at_ms)

    def last_event_times(self, contact_ids: pl.Series) -> pl.DataFrame:
        """``[contact_id, last_event_at]``: the latest event time (seconds) of each contact
        among ``contact_ids`` that has events."""
        sql = "SELECT e.contact_id, MAX(e.ts) AS ts FROM events e" + self._join_ids(contact_ids, "e")
        latest = self._writer.query(sql + " GROUP BY e.contact_id", {"contact_id": pl.Int64(), "ts": pl.Int64()})
        return latest.select("contact_id", (pl.col("ts") / 1000.0).alias("last_event_at"))


_WRITERS_LOCK_KEY = 0x1EAD5C0F
"""The PostgreSQL advisory lock key that event writers take per transaction."""
