"""Building JSON object text from dotted columns, vectorially.

A CSV header ``context.campaign.source`` names the key path ``campaign`` → ``source`` inside the
``context`` object. :func:`with_objects` turns trees of such paths into columns
holding, per row, the JSON text of the object: empty cells are absent keys, objects whose
keys are all absent are absent themselves, and a row with no key at all gives null.

Cell values stay strings, except cells that are valid JSON numbers (at most 15 integer digits
and a two-digit exponent, so identifiers such as ``0612345678`` or long numeric ids stay
strings) and the words ``true`` / ``false``, which become JSON numbers and booleans.

Speed: an object is built by a single string concatenation per row (see :func:`with_objects`).
The slower steps (choosing number or string per cell, JSON-escaping, dropping empty cells)
only run on the columns that need them, found by one scan of the leaf columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

JSON_SCALAR = r"^(?:-?(?:0|[1-9]\d{0,14})(?:\.\d+)?(?:[eE][+-]?\d{1,2})?|true|false)$"
_NEEDS_ESCAPE = r'["\\\x00-\x1f\x7f]'
_SCALAR_FIRST_BYTES = np.isin(np.arange(256), np.frombuffer(b"-0123456789tf", dtype=np.uint8))

KeyTree = dict[str, Union[str, "KeyTree"]]
"""Key → column name (a leaf) or a nested :data:`KeyTree`."""


@dataclass(frozen=True, slots=True)
class _Member:
    """One member of an object being built: whether it is there, and the parts of its value.

    ``quoted`` members are text whose JSON literal is the cell between double quotes; the
    quotes then come from the joining text around the value, not from extra parts.
    """

    present: pl.Expr
    parts: list[pl.Expr]
    quoted: bool


def object_column(root: str) -> str:
    """The name of the column :func:`with_objects` adds for the object ``root``."""
    return f"\x00object:{root}"


def with_objects(frame: pl.DataFrame, objects: dict[str, KeyTree], *, clean_text: bool = False) -> pl.DataFrame:
    """``frame`` plus one JSON-object text column per entry of ``objects`` (see :func:`object_column`).

    ``clean_text=True`` promises that no text cell holds a quote, a backslash or a control
    character (the CSV reader knows it from the raw bytes), which spares a scan per column.

    Each object, nested objects included, is one string concatenation per row: the leaf values
    in key order, each preceded by the text that joins it to the previous present leaf
    (``{"key":"``, ``","key":"``, ``"},"key":{"key":"``…) and followed at the end by the text
    that closes the last one (``"}}``). Which text joins two leaves depends only on which earlier
    leaf is present, so it is chosen per row from a handful of literals.
    """
    leaves = sorted({column for tree in objects.values() for _, column in _flatten(tree)})
    facts = _column_facts(frame, leaves, clean_text=clean_text)
    return frame.with_columns(_object(tree, facts).alias(object_column(root)) for root, tree in objects.items())


def _flatten(tree: KeyTree, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """The leaves of ``tree`` in key order, each as (key path, column)."""
    leaves: list[tuple[tuple[str, ...], str]] = []
    for key, node in tree.items():
        if isinstance(node, str):
            leaves.append(((*path, key), node))
        else:
            leaves.extend(_flatten(node, (*path, key)))
    return leaves


def _leaf(column: str, facts: dict[str, bool] | None) -> _Member:
    """The member for a cell column: absent when null or empty, else its JSON value."""
    cell = pl.col(column)
    if facts is None:  # not text: lists, structs, numbers… encoded by polars
        encoded = pl.struct(cell.alias("v")).struct.json_encode()
        value = pl.when(cell.is_not_null()).then(encoded.str.slice(5, encoded.str.len_chars() - 6))
        return _Member(cell.is_not_null(), [value], quoted=False)
    present = cell.is_not_null() & (cell.str.len_bytes() > 0) if facts["has_empty"] else cell.is_not_null()
    value = pl.when(present).then(cell) if facts["has_empty"] else cell
    if facts["needs_escape"]:
        encoded = pl.struct(cell.alias("v")).struct.json_encode()
        literal = encoded.str.slice(5, encoded.str.len_chars() - 6)
        if facts["has_scalars"]:
            literal = pl.when(cell.str.contains(JSON_SCALAR)).then(cell).otherwise(literal)
        return _Member(present, [pl.when(present).then(literal)], quoted=False)
    if facts["has_scalars"]:
        quote = pl.when(present & ~cell.str.contains(JSON_SCALAR)).then(pl.lit('"'))
        return _Member(present, [quote, value, quote], quoted=False)
    return _Member(present, [value], quoted=True)


def _object(tree: KeyTree, facts: dict[str, dict[str, bool]]) -> pl.Expr:
    """The JSON text of the object ``tree``, null when none of its leaves is present."""
    leaves = _flatten(tree)
    if not leaves:
        return pl.lit(None, dtype=pl.String)
    paths = [path for path, _ in leaves]
    members = [_leaf(column, facts.get(column)) for _, column in leaves]
    quoted = [member.quoted for member in members]
    parts: list[pl.Expr] = []
    for index, member in enumerate(members):
        chosen = _joining_text(paths, quoted, members, index)
        parts.append(pl.when(~member.present).then(pl.lit(None, dtype=pl.String)).otherwise(chosen))
        parts.extend(member.parts)
    parts.append(_joining_text(paths, quoted, members, None))
    present = pl.any_horizontal(member.present for member in members)
    return pl.when(present).then(pl.concat_str(parts, separator="", ignore_nulls=True))


def _joining_text(paths: list[tuple[str, ...]], quoted: list[bool], members: list[_Member], to: int | None) -> pl.Expr:
    """Per row, the text between the last present leaf before ``to`` and the leaf ``to`` (or the
    end of the object when ``to`` is None); the opening text when no leaf is present before."""
    nearest_first = range(len(members) - 1 if to is None else to - 1, -1, -1)
    runs: list[tuple[list[int], str]] = []  # earlier leaves, nearest first, grouped by joining text
    for index in nearest_first:
        text = _text_between(paths, quoted, index, to)
        if runs and runs[-1][1] == text:
            runs[-1][0].append(index)
        else:
            runs.append(([index], text))
    chosen = pl.lit(None if to is None else _text_between(paths, quoted, None, to), dtype=pl.String)
    for leaves, text in reversed(runs):
        present = pl.any_horizontal(members[leaf].present for leaf in leaves)
        chosen = pl.when(present).then(pl.lit(text)).otherwise(chosen)
    return chosen


def _text_between(paths: list[tuple[str, ...]], quoted: list[bool], after: int | None, to: int | None) -> str:
    """The JSON text between leaf ``after`` (None: the start) and leaf ``to`` (None: the end)."""
    left = paths[after][:-1] if after is not None else ()
    right = paths[to][:-1] if to is not None else ()
    common = 0
    while common < min(len(left), len(right)) and left[common] == right[common]:
        common += 1
    if after is None:
        text = "{"
    else:
        text = ('"' if quoted[after] else "") + "}" * (len(left) - common)
        text += "," if to is not None else ""
    if to is None:
        return text + "}"
    opened = "".join(_key(key) + "{" for key in right[common:])
    return text + opened + _key(paths[to][-1]) + ('"' if quoted[to] else "")


def _column_facts(frame: pl.DataFrame, columns: list[str], *, clean_text: bool) -> dict[str, dict[str, bool]]:
    """For each text column: whether it needs escaping, holds number-like cells, holds ``""``.

    Columns that are not text are left out.
    """
    texts = [column for column in columns if frame.schema[column] == pl.String]
    if not texts:
        return {}
    if not frame.height:
        return {column: {"needs_escape": False, "has_scalars": False, "has_empty": False} for column in texts}
    exprs: list[pl.Expr] = []
    for index, column in enumerate(texts):
        cell = pl.col(column)
        exprs.append((cell.str.len_bytes() == 0).any().alias(f"e{index}"))
        if not clean_text:
            exprs.append(cell.str.contains(_NEEDS_ESCAPE).any().alias(f"x{index}"))
    found = frame.select(exprs).row(0, named=True)
    return {
        column: {
            "needs_escape": bool(found.get(f"x{index}", False)),
            "has_scalars": _has_scalars(frame.get_column(column)),
            "has_empty": bool(found[f"e{index}"]),
        }
        for index, column in enumerate(texts)
    }


def _has_scalars(column: pl.Series) -> bool:
    """Whether some cell of a text column is a JSON number or ``true`` / ``false``.

    Only the cells whose first byte can start one (``-``, a digit, ``t``, ``f``) are matched
    against :data:`JSON_SCALAR`. In Arrow's string-view layout every string has a 16-byte view
    holding its length (4 bytes) then its first bytes, so the first byte of every cell is read
    from the views alone, without touching the strings.
    """
    array = column.to_arrow(compat_level=pl.CompatLevel.newest())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.string_view():
        return bool(column.str.contains(JSON_SCALAR).any())
    views = np.frombuffer(array.buffers()[1], dtype=np.uint8).reshape(-1, 16)[array.offset : array.offset + len(array)]
    candidates = _SCALAR_FIRST_BYTES[views[:, 4]]  # empty strings have zeros there
    if not candidates.any():
        return False
    return bool(column.filter(pl.Series(candidates)).str.contains(JSON_SCALAR).any())


def _key(key: str) -> str:
    return orjson.dumps(key).decode() + ":"
