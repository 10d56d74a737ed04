"""The Alembic migrations build exactly the schema declared in ``leadscore.store.tables``."""

from __future__ import annotations

import pytest
from sqlalchemy import UniqueConstraint, inspect
from sqlalchemy.exc import IntegrityError

from leadscore.store.engine import make_engine
from leadscore.store.migrate import current_revision, head_revision, upgrade
from leadscore.store.tables import metadata


def test_migrating_an_empty_database_reaches_head(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision() == "0008"
        upgrade(engine)  # a second run is a no-op
        assert current_revision(engine) == "0008"
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_declared_tables(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    try:
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) == set(metadata.tables) | {"alembic_version"}
        for name, table in metadata.tables.items():
            columns = {column["name"]: column for column in inspector.get_columns(name)}
            assert list(columns) == [column.name for column in table.columns], name
            for column in table.columns:
                assert columns[column.name]["nullable"] == column.nullable, (name, column.name)
            primary_key = inspector.get_pk_constraint(name)["constrained_columns"]
            assert primary_key == [column.name for column in table.primary_key.columns], name
            indexed = {tuple(index["column_names"]) for index in inspector.get_indexes(name)}
            declared = {tuple(column.name for column in index.columns) for index in table.indexes}
            assert declared <= indexed, name
            unique = {tuple(constraint["column_names"]) for constraint in inspector.get_unique_constraints(name)}
            unique |= {tuple(index["column_names"]) for index in inspector.get_indexes(name) if index["unique"]}
            declared_unique = {
                tuple(column.name for column in constraint.columns)
                for constraint in table.constraints
                if isinstance(constraint, UniqueConstraint)
            }
            assert declared_unique <= unique, name
            foreign = {
                (tuple(key["constrained_columns"]), key["referred_table"]) for key in inspector.get_foreign_keys(name)
            }
            assert foreign == {
                ((key.parent.name,), key.column.table.name) for key in table.foreign_keys
            }, name
    finally:
        engine.dispose()


def test_events_and_score_state_have_no_secondary_index(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    try:
        inspector = inspect(engine)
        assert inspector.get_indexes("events") == []
        assert inspector.get_indexes("score_state") == []
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                sql = connection.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name IN ('events', 'score_state')"
                ).scalars()
                assert all("WITHOUT ROWID" in text for text in sql)
    finally:
        engine.dispose()


def test_upgrading_a_populated_database_keeps_contacts_and_never_reuses_their_ids(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0005")
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO accounts (id, key, created_at, updated_at) VALUES (1, 'acme', 0, 0)")
            connection.exec_driver_sql(
                "INSERT INTO contacts (id, user_id, email, traits, account_id, created_at, updated_at)"
                " VALUES (3, 'u-3', 'a@acme.example', '{\"title\": \"CEO\"}', 1, 0, 0), (7, 'u-7', NULL, '{}', NULL, 0, 0)"
            )
            connection.exec_driver_sql(
                "INSERT INTO identities (kind, value, contact_id) VALUES ('user_id', 'u-3', 3), ('user_id', 'u-7', 7)"
            )
            connection.exec_driver_sql(  # contact 9 was merged into 3 before the upgrade
                "INSERT INTO merges (survivor_id, merged_id, cause, events_moved, merged_at) VALUES (3, 9, 'alias', 0, 0)"
            )
        upgrade(engine)
        with engine.begin() as connection:
            rows = connection.exec_driver_sql("SELECT id, user_id, email, traits, account_id FROM contacts ORDER BY id").all()
            assert [tuple(row) for row in rows] == [(3, "u-3", "a@acme.example", '{"title": "CEO"}', 1), (7, "u-7", None, "{}", None)]
            fresh = connection.exec_driver_sql(
                "INSERT INTO contacts (user_id, created_at, updated_at) VALUES ('u-new', 0, 0) RETURNING id"
            ).scalar_one()
            assert fresh > 9  # above every id ever handed out, the merged-away one included
        with pytest.raises(IntegrityError), engine.begin() as connection:  # references are enforced again
            connection.exec_driver_sql("INSERT INTO identities (kind, value, contact_id) VALUES ('user_id', 'ghost', 999)")
    finally:
        engine.dispose()
