"""Event contexts stored once per distinct JSON document (the ``contexts`` table).

A web event's Segment ``context`` (user agent, library, locale, campaign…) is most of its bytes
and repeats from one event of a visitor to the next, so the log stores it once and events refer
to it by ``context_id``. Documents are keyed by a digest of their exact text, so the text read
back is the text written. Rows are never updated; ids are stable.
"""

from __future__ import annotations

import hashlib

import polars as pl

from leadscore.store.adbc import AdbcWriter

_DIGESTS = {"digest": pl.String(), "context": pl.String()}
_CACHE_LIMIT = 200_000
"""Documents cached per connection; past it the cache starts again (lookups go to the table)."""


def digest(body: str) -> str:
    """The key of a context document: BLAKE2b (128 bits) of its UTF-8 text, in hex."""
    return hashlib.blake2b(body.encode("utf-8"), digest_size=16).hexdigest()


class ContextDictionary:
    """Context text <-> id for one connection, with what it has seen cached.

    Ids written in the open transaction are cached only once it commits (a rollback takes the
    rows back), so the cache never names a row that does not exist.
    """

    def __init__(self, writer: AdbcWriter) -> None:
        self._writer = writer
        self._known = pl.DataFrame(schema={"context": pl.String(), "context_id": pl.Int64()})
        self._uncommitted: list[pl.DataFrame] = []

    def ids(self, texts: pl.Series) -> pl.Series:
        """``context_id`` for each text (null for null), adding unknown documents."""
        frame = texts.rename("context").to_frame()
        wanted = frame.drop_nulls().unique()
        missing = wanted.join(self._known, on="context", how="anti")
        for part in self._uncommitted:
            missing = missing.join(part, on="context", how="anti")
        if not missing.is_empty():
            self._uncommitted.append(self._store(missing))
        mapping = pl.concat([self._known, *self._uncommitted])
        joined = frame.join(mapping, on="context", how="left", maintain_order="left")
        return joined.get_column("context_id")

    def bodies(self, ids: pl.Series) -> pl.DataFrame:
        """``[context_id, context]`` of the given ids (the documents they name)."""
        wanted = ids.drop_nulls().unique().rename("context_id").to_frame()
        mapping = pl.concat([self._known, *self._uncommitted]).select("context_id", "context")
        missing = wanted.join(mapping, on="context_id", how="anti")
        if not missing.is_empty():
            self._writer.ingest("_bulk_context_ids", missing, {"context_id": pl.Int64()}, temporary=True)
            found = self._writer.query(
                "SELECT c.id AS context_id, c.body AS context FROM contexts c"
                " JOIN _bulk_context_ids i ON i.context_id = c.id",
                {"context_id": pl.Int64(), "context": pl.String()},
            )
            self._known = pl.concat([self._known, found.select("context", "context_id")])
            mapping = pl.concat([mapping, found])
        return wanted.join(mapping, on="context_id", how="left")

    def committed(self) -> None:
        """The transaction committed: what it added is now known for good."""
        if self._uncommitted:
            self._known = pl.concat([self._known, *self._uncommitted])
            self._uncommitted = []
        if self._known.height > _CACHE_LIMIT:  # contexts that never repeat: keep memory bounded
            self._known = self._known.clear()

    def rolled_back(self) -> None:
        self._uncommitted = []

    def _store(self, missing: pl.DataFrame) -> pl.DataFrame:
        """Ids of documents not cached: found by digest, or inserted (``[context, context_id]``)."""
        keyed = missing.with_columns(
            pl.col("context").map_elements(digest, return_dtype=pl.String()).alias("digest")
        ).select("digest", "context")
        self._writer.ingest("_bulk_contexts", keyed, _DIGESTS, temporary=True)
        self._writer.execute(
            "INSERT INTO contexts (digest, body) SELECT b.digest, b.context FROM _bulk_contexts b WHERE true"
            " ON CONFLICT (digest) DO NOTHING"
        )
        found = self._writer.query(
            "SELECT c.id AS context_id, b.context AS context FROM _bulk_contexts b JOIN contexts c ON c.digest = b.digest",
            {"context_id": pl.Int64(), "context": pl.String()},
        )
        return found.select("context", "context_id")
