"""The raw-text prefilter never changes an answer: sparse evaluation equals full evaluation."""

from __future__ import annotations

import orjson
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.core.conditions import parse_condition, to_expr
from leadscore.core.prefilter import evaluate_sparse, necessary_expr

AGENTS = ["Mozilla/5.0 Chrome", "Googlebot/2.1", "HeadlessChrome", "curl/8", "BOT scanner", "Préview\\\"x"]
CONDITIONS = [
    {"any": [{"field": "context.userAgent", "matches": "(?i)(bot|crawler|spider|headless|preview|scanner)"},
             {"field": "properties.machine_activity", "equals": True}]},
    {"field": "context.userAgent", "matches": "^Mozilla"},
    {"field": "properties.machine_activity", "exists": False},
    {"not": {"field": "context.userAgent", "matches": "bot"}},
    {"all": [{"field": "properties.path", "matches": "pricing"}, {"field": "context.userAgent", "exists": True}]},
]

contexts = st.one_of(st.none(), st.fixed_dictionaries({}, optional={"userAgent": st.one_of(st.sampled_from(AGENTS), st.text(max_size=12))}))
properties = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={"machine_activity": st.one_of(st.booleans(), st.sampled_from(["true", "no"])),
                                        "path": st.sampled_from(["/pricing", "/blog", "/x-pricing"])}),
)


def frame_of(rows: list[tuple[dict | None, dict | None]]) -> pl.DataFrame:
    def text(value: dict | None) -> str | None:
        return None if value is None else orjson.dumps(value).decode()

    return pl.DataFrame(
        {"context": [text(c) for c, _ in rows], "properties": [text(p) for _, p in rows]},
        schema={"context": pl.String, "properties": pl.String},
    )


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.tuples(contexts, properties), min_size=1, max_size=30), which=st.integers(0, len(CONDITIONS) - 1))
def test_sparse_evaluation_equals_full_evaluation(rows: list[tuple[dict | None, dict | None]], which: int) -> None:
    condition = parse_condition(CONDITIONS[which], {}, "machine")
    frame = frame_of(rows)
    full = frame.select(to_expr(condition).fill_null(False).alias("hit"))["hit"]
    assert evaluate_sparse(frame, condition).to_list() == full.to_list()


def test_negations_and_absence_get_no_prefilter() -> None:
    assert necessary_expr(parse_condition(CONDITIONS[2], {}, "x")) is None
    assert necessary_expr(parse_condition(CONDITIONS[3], {}, "x")) is None
    assert necessary_expr(parse_condition(CONDITIONS[0], {}, "x")) is not None
