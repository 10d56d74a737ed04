"""Routing decisions (pure core): the model file's routing section, team selection (Python and
polars agree), owner choice by strategy, capacity, account owners; properties of fairness."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.core import routing as core
from leadscore.core.model import ModelError, parse_model
from leadscore.core.routing import Lead, Seat

EXAMPLE = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"

BASE = """\
version: 1
name: routing-test
fit: {max: 10, rules: [{id: t, where: {field: traits.title, exists: true}, points: 10}]}
engagement: {max: 10, half_life: 30d, rules: [{id: demo, on: Demo Requested, points: 10}]}
"""
ROUTING = """\
routing:
  rules:
    - id: enterprise
      when: {field: account.employees, gte: 200}
      team: enterprise
    - id: smb-france
      when: {field: account.country, in: [FR, BE, CH]}
      team: smb-fr
    - id: smb
      team: smb
  teams:
    enterprise: {strategy: least-loaded}
    smb-fr: {strategy: round-robin}
    smb: {strategy: weighted}
"""


def routing_of(text: str = ROUTING) -> core.Routing:
    return parse_model(BASE + text).routing


def problems(text: str) -> list[str]:
    with pytest.raises(ModelError) as caught:
        parse_model(BASE + text)
    return [str(issue) for issue in caught.value.issues]


# --------------------------------------------------------------------------- the model file


def test_defaults_without_a_routing_section() -> None:
    routing = parse_model(BASE).routing
    assert routing == core.DEFAULT_ROUTING
    assert routing.account_owner_first and routing.open_stages == ("mql", "sql", "opportunity") and routing.rules == ()


def test_the_section_compiles_with_strategies_and_a_catch_all() -> None:
    routing = routing_of()
    assert [(rule.id, rule.team) for rule in routing.rules] == [("enterprise", "enterprise"), ("smb-france", "smb-fr"), ("smb", "smb")]
    assert routing.rules[2].when is None
    assert routing.strategy("enterprise") == "least-loaded" and routing.strategy("smb") == "weighted"
    assert routing.strategy("undeclared") == "round-robin"


def test_the_example_model_routes_by_size_then_territory() -> None:
    routing = parse_model(EXAMPLE.read_text(encoding="utf-8")).routing
    assert core.route(routing, {"account": {"employees": 500, "country": "FR"}}).team == "enterprise"  # type: ignore[union-attr]
    assert core.route(routing, {"account": {"employees": 20, "country": "BE"}}).team == "smb-fr"  # type: ignore[union-attr]
    assert core.route(routing, {"account": {"employees": 20, "country": "US"}}).team == "smb"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("routing:\n  rules: [{id: a, team: nowhere}]\n  teams: {smb: {}}\n",
         "routing.rules[0].team: unknown team 'nowhere' (routing.teams: smb); declare it under routing.teams (line 6)"),
        ("routing:\n  rules: [{id: a, team: smb}, {id: b, when: {field: traits.x, exists: true}, team: smb}]\n  teams: {smb: {}}\n",
         "routing.rules[1]: this rule can never match: routing.rules[0] ('a') has no 'when' and takes every lead"),
        ("routing:\n  rules: [{id: a, when: {any: [{field: traits.x, exists: true}, {field: properties.path, equals: /x}]}, team: smb}]\n"
         "  teams: {smb: {}}\n",
         "routing.rules[0].when.any[1].field: routing conditions read traits.* and account.* only, got 'properties.path'"),
        ("routing:\n  open_stages: [mql, won]\n",
         "routing.open_stages[1]: unknown stage 'won'"),
        ("routing:\n  rules: [{id: a, when: {field: traits.x, exists: true}, team: smb}, {id: a, team: smb}]\n  teams: {smb: {}}\n",
         "routing.rules[1].id: duplicate routing rule id 'a' (first used at routing.rules[0].id)"),
        ("routing:\n  teams:\n    smb: {strategy: random}\n",
         "routing.teams.smb.strategy: must be 'round-robin', 'weighted' or 'least-loaded'"),
        ("routing:\n  teams:\n    smb: {strategy: weighted}\n    smb: {strategy: round-robin}\n",
         "routing.teams.smb: 'smb' is declared twice (line 8)"),
        ("routing:\n  rules: [{id: a, when: {field: account.size, gte: big}, team: smb}]\n  teams: {smb: {}}\n",
         "routing.rules[0].when.gte"),
        ("routing:\n  rule: []\n", "routing.rule: unknown key 'rule' (allowed: account_owner_first, open_stages, rules, teams)"),
    ],
)
def test_mistakes_are_reported_with_their_key_path(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in problem for problem in found), found


# --------------------------------------------------------------------------- team selection


def test_first_matching_rule_wins_and_no_match_is_none() -> None:
    routing = routing_of(ROUTING.replace("    - id: smb\n      team: smb\n", ""))
    assert core.route(routing, {"account": {"employees": 300, "country": "FR"}}).id == "enterprise"  # type: ignore[union-attr]
    assert core.route(routing, {"account": {"employees": 30, "country": "CH"}}).id == "smb-france"  # type: ignore[union-attr]
    assert core.route(routing, {"account": {"employees": 30, "country": "DE"}}) is None
    assert core.route(routing, {}) is None


RECORDS = st.fixed_dictionaries({
    "traits": st.dictionaries(st.sampled_from(["title", "email"]), st.text(max_size=5), max_size=2),
    "account": st.one_of(st.none(), st.fixed_dictionaries({
        "employees": st.one_of(st.none(), st.integers(0, 1000), st.sampled_from(["200", "12", "many"])),
        "country": st.one_of(st.none(), st.sampled_from(["FR", "BE", "CH", "US", "fr"])),
    })),
})


@settings(max_examples=80, deadline=None)
@given(st.lists(RECORDS, min_size=1, max_size=20), st.booleans())
def test_polars_rule_choice_equals_the_python_one(records: list[dict[str, Any]], catch_all: bool) -> None:
    text = ROUTING if catch_all else ROUTING.replace("    - id: smb\n      team: smb\n", "")
    routing = routing_of(text)
    frame = pl.DataFrame({
        "traits": [orjson.dumps(r["traits"]).decode() for r in records],
        "account": [None if r["account"] is None else orjson.dumps(r["account"]).decode() for r in records],
    }, schema={"traits": pl.String, "account": pl.String})
    chosen = frame.select(core.rule_expr(routing).alias("rule"))["rule"].to_list()
    expected = [getattr(core.route(routing, {k: v for k, v in r.items() if v is not None}), "id", None) for r in records]
    assert chosen == expected


# --------------------------------------------------------------------------- owner choice

RR = core.Routing(True, ("mql",), (), {"t": "round-robin"})
WEIGHTED = core.Routing(True, ("mql",), (), {"t": "weighted"})
LEAST = core.Routing(True, ("mql",), (), {"t": "least-loaded"})


def owners_of(placements: list[core.Placement]) -> list[int | None]:
    return [placement.owner_id for placement in placements]


def leads(n: int, *, team: str | None = "t", start: int = 1) -> list[Lead]:
    return [Lead(contact_id=start + i, team=team) for i in range(n)]


def test_round_robin_continues_after_the_cursor_and_wraps() -> None:
    seats = [Seat(10, "t"), Seat(20, "t"), Seat(30, "t")]
    placed, cursors, _ = core.assign_batch(RR, leads(5), seats, cursors={"t": 20})
    assert owners_of(placed) == [30, 10, 20, 30, 10]
    assert cursors["t"] == 10


def test_round_robin_skips_full_and_inactive_owners() -> None:
    seats = [Seat(10, "t", load=2, capacity=2), Seat(20, "t", active=False), Seat(30, "t", load=0, capacity=2), Seat(40, "t")]
    placed, _, _ = core.assign_batch(RR, leads(5), seats)
    assert owners_of(placed) == [30, 40, 30, 40, 40]


def test_least_loaded_takes_the_fewest_open_leads_ties_by_id() -> None:
    seats = [Seat(1, "t", load=3), Seat(2, "t", load=1), Seat(3, "t", load=1)]
    placed, _, _ = core.assign_batch(LEAST, leads(6), seats)
    assert owners_of(placed) == [2, 3, 2, 3, 1, 2]


def test_weighted_is_dhondt_on_open_leads() -> None:
    seats = [Seat(1, "t", weight=2.0), Seat(2, "t", weight=1.0), Seat(3, "t", weight=0.0)]
    placed, _, _ = core.assign_batch(WEIGHTED, leads(6), seats)
    # (load + 1) / weight: 1/2 < 1/1 -> 1; 2/2 = 1/1 -> 1 (id); 3/2 > 1/1 -> 2; 3/2 < 2/1 -> 1; 4/2 = 2/1 -> 1; 5/2 > 2 -> 2
    assert owners_of(placed) == [1, 1, 2, 1, 1, 2]


def test_all_full_leaves_the_lead_on_the_team_without_owner() -> None:
    seats = [Seat(1, "t", load=1, capacity=1), Seat(2, "t", capacity=0)]
    for routing in (RR, WEIGHTED, LEAST):
        placed, _, _ = core.assign_batch(routing, leads(2), seats)
        assert [(p.team, p.owner_id) for p in placed] == [("t", None), ("t", None)]


def test_no_team_no_owner() -> None:
    placed, _, _ = core.assign_batch(RR, leads(1, team=None), [Seat(1, "t")])
    assert (placed[0].team, placed[0].owner_id) == (None, None)


def test_account_owner_first_even_when_full_and_the_first_owner_becomes_the_accounts() -> None:
    seats = [Seat(1, "t", load=5, capacity=5), Seat(2, "t"), Seat(3, "other")]
    batch = [Lead(1, "t", account_id=7), Lead(2, "t", account_id=8), Lead(3, "t", account_id=8), Lead(4, "t", account_id=None)]
    placed, _, new_accounts = core.assign_batch(RR, batch, seats, account_owners={7: 3})
    assert [(p.owner_id, p.team, p.by_account) for p in placed] == [(3, "other", True), (2, "t", False), (2, "t", True), (2, "t", False)]
    assert new_accounts == {8: 2}


def test_inactive_account_owner_is_replaced() -> None:
    seats = [Seat(1, "t", active=False), Seat(2, "t")]
    placed, _, new_accounts = core.assign_batch(RR, [Lead(1, "t", account_id=7)], seats, account_owners={7: 1})
    assert (placed[0].owner_id, placed[0].by_account) == (2, False) and new_accounts == {7: 2}


def test_account_owner_first_can_be_turned_off() -> None:
    routing = core.Routing(False, ("mql",), (), {"t": "round-robin"})
    placed, _, _ = core.assign_batch(routing, [Lead(1, "t", account_id=7)], [Seat(1, "t"), Seat(2, "t")], account_owners={7: 2})
    assert placed[0].owner_id == 1


def test_reassignment_avoids_the_current_owner_and_frees_their_slot() -> None:
    seats = [Seat(1, "t", load=1, capacity=1), Seat(2, "t", load=1, capacity=1), Seat(3, "t", capacity=1)]
    batch = [Lead(1, "t", avoid=1, leaves=1), Lead(2, "t", avoid=2, leaves=2)]
    placed, _, _ = core.assign_batch(LEAST, batch, seats)
    assert owners_of(placed) == [3, 1]  # lead 1 -> 3 (1 is avoided); lead 2 -> 1, whose slot lead 1 freed


# --------------------------------------------------------------------------- properties

SEATS = st.lists(
    st.tuples(st.integers(0, 4), st.one_of(st.none(), st.integers(0, 6)), st.booleans(), st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0])),
    min_size=1, max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(SEATS, st.integers(0, 40), st.sampled_from(["round-robin", "weighted", "least-loaded"]))
def test_capacity_is_never_exceeded_and_a_lead_waits_only_when_everyone_is_full(
    raw: list[tuple[int, int | None, bool, float]], n: int, strategy: str
) -> None:
    seats = [Seat(i + 1, "t", load=min(load, cap) if cap is not None else load, weight=w, capacity=cap, active=active)
             for i, (load, cap, active, w) in enumerate(raw)]
    routing = core.Routing(True, ("mql",), (), {"t": strategy})
    placed, _, _ = core.assign_batch(routing, leads(n), seats)
    final = Counter(p.owner_id for p in placed if p.owner_id is not None)
    eligible = [s for s in seats if s.active and (strategy != "weighted" or s.weight > 0)]
    for seat in seats:
        assert seat.active or final[seat.owner_id] == 0
        if seat.capacity is not None:
            assert seat.load + final[seat.owner_id] <= seat.capacity
    waited = [p for p in placed if p.owner_id is None]
    if waited:  # from the first lead left waiting on, every eligible owner was full
        room = sum(math.inf if s.capacity is None else s.capacity - s.load for s in eligible)
        assert room == sum(final[s.owner_id] for s in eligible)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 8), st.integers(0, 60), st.integers(0, 10))
def test_round_robin_spreads_evenly(owners: int, n: int, start: int) -> None:
    seats = [Seat(i + 1, "t") for i in range(owners)]
    placed, _, _ = core.assign_batch(RR, leads(n), seats, cursors={"t": start if start <= owners else None})
    counts = Counter(p.owner_id for p in placed)
    shares = [counts[s.owner_id] for s in seats]
    assert sum(shares) == n and max(shares) - min(shares) <= 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=6), st.integers(0, 80))
def test_weighted_spread_is_proportional(weights: list[int], n: int) -> None:
    seats = [Seat(i + 1, "t", weight=float(w)) for i, w in enumerate(weights)]
    placed, _, _ = core.assign_batch(WEIGHTED, leads(n), seats)
    counts = Counter(p.owner_id for p in placed)
    total = sum(weights)
    for seat in seats:  # D'Hondt: lower quota, and no owner is ahead of another by a whole lead per weight
        assert counts[seat.owner_id] >= math.floor(n * seat.weight / total)
        for other in seats:
            assert counts[seat.owner_id] / seat.weight <= (counts[other.owner_id] + 1) / other.weight + 1e-12
