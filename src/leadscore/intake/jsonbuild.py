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

import orjson
import polars as pl

JSON_SCALAR = r"^(?:-?(?:0|[1-9]\d{0,14})(?:\.\d+)?(?:[eE][+-]?\d{1,2})?|true|false)$"
_NEEDS_ESCAPE = r'["\\\x00-\x1f\x7f]'

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
    before = range(len(members) - 1 if to is None else to - 1, -1, -1)
    chain: pl.Expr | None = None
    group: list[int] = []
    for index in [*before, None]:
        text = None if index is None else _text_between(paths, quoted, index, to)
        if group and (index is None or text != _text_between(paths, quoted, group[0], to)):
            condition = pl.any_horizontal(members[other].present for other in group)
            literal = pl.lit(_text_between(paths, quoted, group[0], to))
            chain = pl.when(condition).then(literal) if chain is None else chain.when(condition).then(literal)  # type: ignore[attr-defined]
            group = []
        if index is not None:
            group.append(index)
    if to is None:
        return chain.otherwise(pl.lit(None, dtype=pl.String)) if chain is not None else pl.lit(None, dtype=pl.String)  # type: ignore[attr-defined]
    opening = pl.lit(_text_between(paths, quoted, None, to))
    return chain.otherwise(opening) if chain is not None else opening  # type: ignore[attr-defined]


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
        exprs.append(cell.str.contains(JSON_SCALAR).any().alias(f"s{index}"))
        exprs.append((cell.str.len_bytes() == 0).any().alias(f"e{index}"))
        if not clean_text:
            exprs.append(cell.str.contains(_NEEDS_ESCAPE).any().alias(f"x{index}"))
    found = frame.select(exprs).row(0, named=True)
    return {
        column: {
            "needs_escape": bool(found.get(f"x{index}", False)),
            "has_scalars": bool(found[f"s{index}"]),
            "has_empty": bool(found[f"e{index}"]),
        }
        for index, column in enumerate(texts)
    }


def _key(key: str) -> str:
    return orjson.dumps(key).decode() + ":"
