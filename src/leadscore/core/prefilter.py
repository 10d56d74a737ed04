"""Cheap necessary conditions on the raw JSON text, to skip JSON parsing where it cannot matter.

Reading a field out of JSON text (``json_path_match``) costs about a microsecond per row; a
substring test on the same text costs a small fraction of that. For a condition ``C`` this
module derives, when it can, an expression ``N`` over the raw columns with ``C ⇒ N``: rows
where ``N`` is false are known not to match, and only the others need the exact evaluation.

What is used (all sound for the compact JSON objects the intake writes, whose key names need no
escaping):

- a comparison on ``root.a.b`` other than ``exists: false`` can only hold when the key text
  ``"b"`` occurs in the ``root`` column;
- ``matches`` with a pattern made only of letters, digits, spaces, ``-``, ``_``, ``|``, ``(``,
  ``)`` and a leading ``(?i)`` can only hold when the pattern is found in the raw text too (the
  value appears there verbatim: JSON escaping never splits such characters);
- ``any`` needs one of its items' conditions; ``all`` needs all of those available; ``not`` and
  anything else give no prefilter.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from leadscore.core.conditions import JSON_ROOTS, to_expr
from leadscore.core.types import AllOf, AnyOf, Comparison, Condition, Not

_LITERAL_PATTERN = re.compile(r"^(\(\?i\))?[A-Za-z0-9 _|()-]+$")


def necessary_expr(condition: Condition) -> pl.Expr | None:
    """An expression true wherever ``condition`` may hold (None when none can be derived)."""
    if isinstance(condition, Comparison):
        return _comparison(condition)
    if isinstance(condition, AnyOf):
        parts = [necessary_expr(item) for item in condition.items]
        if not parts or any(part is None for part in parts):
            return None
        return pl.any_horizontal(parts)
    if isinstance(condition, AllOf):
        found = [part for part in (necessary_expr(item) for item in condition.items) if part is not None]
        return pl.all_horizontal(found) if found else None
    if isinstance(condition, Not):
        return None
    return None


def _comparison(condition: Comparison) -> pl.Expr | None:
    root, _, rest = condition.field.partition(".")
    if root not in JSON_ROOTS or not rest or (condition.op == "exists" and condition.value is False):
        return None
    if root == "traits" and rest == "email_domain":
        return None  # derived from traits.email when absent
    raw = pl.col(root)
    needed = raw.str.contains(f'"{rest.rsplit(".", 1)[-1]}"', literal=True)
    if condition.op == "matches" and isinstance(condition.value, str) and _LITERAL_PATTERN.match(condition.value):
        needed = needed & raw.str.contains(condition.value)
    return needed.fill_null(False)


def evaluate_sparse(frame: pl.DataFrame, condition: Condition) -> pl.Series:
    """``to_expr(condition)`` over ``frame`` as a boolean series, evaluating the exact (JSON)
    expression only on the rows that pass :func:`necessary_expr`."""
    exact = to_expr(condition).fill_null(False)
    needed = necessary_expr(condition)
    if needed is None:
        return frame.select(exact.alias("hit"))["hit"]
    marked = frame.with_row_index("_row").filter(needed)
    hits = marked.select("_row", exact.alias("hit")).filter(pl.col("hit"))["_row"]
    flags = pl.Series("hit", np.zeros(frame.height, dtype=bool))
    return flags.scatter(hits, True) if hits.len() else flags
