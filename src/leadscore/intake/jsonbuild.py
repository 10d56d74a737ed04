"""Building JSON object text from dotted columns, vectorially.

A CSV header ``context.campaign.source`` names the key path ``campaign`` → ``source`` inside the
``context`` object. :func:`with_objects` turns trees of such paths into columns
holding, per row, the JSON text of the object: empty cells are absent keys, objects whose
keys are all absent are absent themselves, and a row with no key at all gives null.

Cell values stay strings, except cells that are valid JSON numbers (at most 15 integer digits
and a two-digit exponent, so identifiers such as ``0612345678`` or long numeric ids stay
strings) and the words ``true`` / ``false``, which become JSON numbers and booleans.
"""

from __future__ import annotations

from typing import Union

import orjson
import polars as pl

JSON_SCALAR = r"^(?:-?(?:0|[1-9]\d{0,14})(?:\.\d+)?(?:[eE][+-]?\d{1,2})?|true|false)$"
_NEEDS_ESCAPE = r'["\\\x00-\x1f\x7f]'

KeyTree = dict[str, Union[str, "KeyTree"]]
"""Key → column name (a leaf) or a nested :data:`KeyTree`."""


def leaf_fragment(frame: pl.DataFrame, column: str, *, needs_escape: bool = True) -> pl.Expr:
    """The JSON value text of ``column`` per row (null for empty cells).

    ``needs_escape=False`` promises that no cell holds a quote, a backslash or a control
    character, so cells can be quoted without the (slower) JSON encoder.
    """
    cell = pl.col(column)
    dtype = frame.schema[column]
    if dtype != pl.String:
        encoded = pl.struct(cell.alias("v")).struct.json_encode()
        return pl.when(cell.is_not_null()).then(encoded.str.slice(5, encoded.str.len_bytes() - 6))
    if needs_escape:
        encoded = pl.struct(cell.alias("v")).struct.json_encode()
        quoted = encoded.str.slice(5, encoded.str.len_bytes() - 6)
    else:
        quoted = pl.lit('"') + cell + pl.lit('"')
    return pl.when(cell.str.len_bytes() > 0).then(
        pl.when(cell.str.contains(JSON_SCALAR)).then(cell).otherwise(quoted)
    )


def object_column(root: str) -> str:
    """The name of the column :func:`with_objects` adds for the object ``root``."""
    return f"\x00object:{root}"


def with_objects(frame: pl.DataFrame, objects: dict[str, KeyTree]) -> pl.DataFrame:
    """``frame`` plus one JSON-object text column per entry of ``objects`` (see :func:`object_column`).

    Leaves and nested objects are materialised level by level, so every expression refers to
    columns by name: a tree of any depth costs one pass per level, not an expression that
    doubles with each level of nesting.
    """
    levels: list[list[tuple[str, KeyTree]]] = []

    def visit(name: str, tree: KeyTree, depth: int) -> None:
        while len(levels) <= depth:
            levels.append([])
        levels[depth].append((name, tree))
        for key, node in tree.items():
            if not isinstance(node, str):
                visit(f"{name}.{key}", node, depth + 1)

    for root, tree in objects.items():
        visit(root, tree, 0)
    leaves = sorted({node for level in levels for _, tree in level for node in tree.values() if isinstance(node, str)})
    text_leaves = [leaf for leaf in leaves if frame.schema[leaf] == pl.String]
    escaping = frame.select(pl.col(leaf).str.contains(_NEEDS_ESCAPE).any() for leaf in text_leaves).row(0) if text_leaves and frame.height else ()
    needs_escape = dict(zip(text_leaves, escaping, strict=True))
    result = frame.with_columns(
        leaf_fragment(frame, leaf, needs_escape=bool(needs_escape.get(leaf, True))).alias(_leaf_column(leaf))
        for leaf in leaves
    )
    for level in reversed(levels):
        result = result.with_columns(_object(name, tree).alias(object_column(name)) for name, tree in level)
    temporary = [_leaf_column(leaf) for leaf in leaves] + [
        object_column(name) for level in levels[1:] for name, _ in level
    ]
    return result.drop(temporary)


def _leaf_column(column: str) -> str:
    return f"\x00leaf:{column}"


def _object(name: str, tree: KeyTree) -> pl.Expr:
    """The object ``name`` from its members' columns; null when no member is present."""
    members = [
        pl.col(_leaf_column(node) if isinstance(node, str) else object_column(f"{name}.{key}"))
        for key, node in tree.items()
    ]
    if not members:
        return pl.lit(None, dtype=pl.String)
    pairs = [pl.lit(orjson.dumps(key).decode() + ":") + member for key, member in zip(tree, members, strict=True)]
    body = pl.concat_str(pairs, separator=",", ignore_nulls=True)
    return pl.when(pl.any_horizontal(member.is_not_null() for member in members)).then(
        pl.lit("{") + body + pl.lit("}")
    )
