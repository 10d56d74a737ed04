"""Field values of a record as the scoring conditions see them: lookup, text and number.

A record is a Segment message or a contact as a nested mapping. A field that is absent, null or
a non-finite float is *missing*. A present value has a *text* — exactly what polars'
``str.json_path_match`` returns for it, so that the Python and the polars evaluators of
:mod:`leadscore.core.conditions` read the same thing: a string is itself, booleans are
``true``/``false``, numbers are their JSON spelling (``3``, ``2.5``, ``1e+20``, ``1e-7``,
``0.00001``), objects and lists are compact JSON. Its *number* is the text read as a decimal
number when the text is one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

EMAIL_DOMAIN: Final = "traits.email_domain"
NUMBER_PATTERN: Final = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"
_NUMBER_RE = re.compile(NUMBER_PATTERN)
_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_JSON_ESCAPE_RE = re.compile(r'["\\\x00-\x1f]')


class _Missing:
    """The value of a field that a record does not have."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


def is_number(value: object) -> bool:
    """Whether a value is a finite int or float (booleans are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def field_value(record: Mapping[str, Any], path: str) -> object:
    """The value at a dotted ``path`` of a nested record, or :data:`MISSING`.

    ``traits.email_domain`` falls back to the domain of ``traits.email`` (see module doc).
    """
    value: object = record
    for segment in path.split("."):
        if not isinstance(value, Mapping) or segment not in value:
            value = MISSING
            break
        value = value[segment]
    if path == EMAIL_DOMAIN and (value is MISSING or value is None or is_non_finite(value)):
        return email_domain(field_value(record, "traits.email"))
    return value


def email_domain(email: object) -> object:
    """The lower-cased text after the last ``@`` of an e-mail address, or :data:`MISSING`."""
    if email is MISSING or email is None or is_non_finite(email):
        return MISSING
    text = value_text(email)
    if "@" not in text:
        return MISSING
    return text.rsplit("@", 1)[1].lower()


def is_non_finite(value: object) -> bool:
    """Whether a value is an infinite or NaN float (JSON has no such number: it reads as null)."""
    return isinstance(value, float) and not math.isfinite(value)


def value_text(value: object) -> str:
    """The text of a present JSON value, exactly as polars' ``json_path_match`` spells it."""
    if isinstance(value, str):
        return value
    return _json_text(value)


def _json_text(value: object) -> str:
    if value is None or is_non_finite(value):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if -(2**63) <= value < 2**64 else _float_text(float(value))
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, str):
        return '"' + _JSON_ESCAPE_RE.sub(_escape_char, value) + '"'
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_json_text(str(k))}:{_json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    return _json_text(str(value))


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    return _JSON_ESCAPES.get(char) or f"\\u{ord(char):04x}"


def _float_text(value: float) -> str:
    """Python's ``repr`` adjusted to polars' float spelling (``1e-7``, ``0.00001``)."""
    text = repr(value)
    if "e-" not in text:
        return text
    mantissa, exponent = text.split("e-")
    if int(exponent) > 5:
        return f"{mantissa}e-{int(exponent)}"
    sign = "-" if mantissa.startswith("-") else ""
    digits = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    return f"{sign}0.{'0' * (int(exponent) - 1)}{digits}"


def text_number(text: str) -> float | None:
    """The number a text spells (``"42"``, ``"-3.5"``, ``"1e3"``), else ``None``."""
    return float(text) if _NUMBER_RE.match(text) else None


def text_equals(text: str, expected: object) -> bool:
    """``equals`` on a present value's text: by truth, by number, or as text (see conditions)."""
    if isinstance(expected, bool):
        return text.lower() == ("true" if expected else "false")
    if is_number(expected):
        return text_number(text) == expected
    return text == expected


_ASCII_CLASSES = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}


def polars_pattern(pattern: str) -> str:
    """The RE2 ``pattern`` spelled for polars (Rust regex) so that both match the same texts.

    RE2's ``\\d \\w \\s \\b`` (and their negations) are ASCII; Rust's are Unicode. They are
    rewritten as explicit ASCII classes and ``(?-u:\\b)``, so ``\\bétudiant`` means the same
    in both engines. Everything else is common syntax and left alone.
    """
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]
            body = _ASCII_CLASSES.get(escaped.lower())
            if body is not None:
                out.append(body if in_class and escaped.islower() else f"[{'' if escaped.islower() else '^'}{body}]")
            elif escaped in "bB" and not in_class:
                out.append(f"(?-u:\\{escaped})")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
            end = i + 1
            end += pattern.startswith("^", end)
            end += pattern.startswith("]", end)  # a leading ] is a literal
            out.append(pattern[i:end])
            i = end
            continue
        if char == "[" and in_class and pattern.startswith("[:", i):
            close = pattern.find(":]", i + 2)
            end = close + 2 if close != -1 else i + 1
            out.append(pattern[i:end])
            i = end
            continue
        if char == "]" and in_class:
            in_class = False
        out.append(char)
        i += 1
    return "".join(out)
