"""Labels in English and French: JSON catalogues per language (``locales/en.json`` and one
``locales/en.GROUP.json`` per group of pages; the same in French), the same keys in both (a test checks it, and that every key a template
uses exists). A user's language is their own setting, else the browser's ``Accept-Language``."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("en", "fr")
DEFAULT = "en"


@cache
def catalogue(language: str) -> dict[str, str]:
    """Every label of ``language``: ``locales/LANG.json`` and the page groups' ``LANG.*.json``
    (a key defined twice is an error)."""
    folder = resources.files("leadscore.dashboard").joinpath("locales")
    labels: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.name == f"{language}.json" or (entry.name.startswith(f"{language}.") and entry.name.endswith(".json")):
            part: dict[str, str] = json.loads(entry.read_text(encoding="utf-8"))
            twice = set(part) & set(labels)
            if twice:
                raise ValueError(f"labels defined twice in {entry.name}: {', '.join(sorted(twice))}")
            labels.update(part)
    return labels


def translator(language: str) -> Callable[..., str]:
    """``t(key, **values)``: the label in ``language`` with ``{name}`` placeholders filled."""
    labels = catalogue(language if language in LANGUAGES else DEFAULT)

    def t(key: str, **values: Any) -> str:
        text = labels.get(key)
        if text is None:
            raise KeyError(f"no label {key!r} in the {language} catalogue")
        return text.format(**values) if values else text

    return t


def from_header(accept_language: str | None) -> str:
    """The first supported language of an ``Accept-Language`` header, by quality."""
    choices = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            weight = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and weight > 0:
            choices.append((-weight, position, primary))
    return min(choices)[2] if choices else DEFAULT


def number(value: float | int | None, language: str, digits: int = 0) -> str:
    """A number as each language writes it (1,234.5 / 1 234,5)."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}"
    if language == "fr":
        text = text.replace(",", "\u202f").replace(".", ",")
    return text
