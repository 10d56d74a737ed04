"""The scoring model file: the reference shape from DESIGN.md and what it compiles to."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadscore.core.conditions import evaluate
from leadscore.core.model import load_model, parse_model
from leadscore.core.types import AllOf, Comparison, Limit

REFERENCE = (Path(__file__).parents[1] / "data" / "reference-model.yml").read_text(encoding="utf-8")
"""The model file of DESIGN.md "Reference shapes", verbatim (shared with the end-to-end tests)."""

DAY = 86_400.0


def minimal(**sections: str) -> str:
    """A small valid model; keyword arguments replace or add top-level sections (YAML text)."""
    parts = {
        "version": "1",
        "name": "t",
        "fit": "{max: 10, rules: [{id: f1, where: {field: traits.x, exists: true}, points: 5}]}",
        "engagement": "{max: 10, half_life: 7d, rules: [{id: e1, on: Clicked, points: 2}]}",
    }
    parts.update(sections)
    return "\n".join(f"{key}: {value}" for key, value in parts.items()) + "\n"


def test_reference_model_compiles_as_written() -> None:
    model = parse_model(REFERENCE, source="reference.yml")
    assert (model.version, model.name, model.source) == (1, "b2b-saas", "reference.yml")
    assert model.fit_max == 60 and model.engagement_max == 100
    assert [r.id for r in model.fit_rules] == ["decision-maker", "target-industry", "mid-market", "free-email"]
    assert [r.points for r in model.fit_rules] == [20, 15, 25, -10]
    assert model.fit_rules[3].where == Comparison(
        "traits.email_domain", "in", ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com")
    )
    assert model.fit_rules[2].where == AllOf(
        (Comparison("account.employees", "gte", 50), Comparison("account.employees", "lte", 1000))
    )
    click, pricing, demo, unsubscribe = model.engagement_rules
    assert (click.on, click.cap, click.half_life) == ("Email Link Clicked", 15, 30 * DAY)
    assert pricing.on == "page" and pricing.limit == Limit(count=3, per=DAY)
    assert pricing.where == Comparison("properties.path", "matches", "^/pricing")
    assert demo.half_life == 60 * DAY
    assert unsubscribe.half_life is None and unsubscribe.points == -25
    assert model.default_half_life == 30 * DAY
    assert model.exclude == (Comparison("traits.email", "matches", "@ourcompany\\.com$"),)
    assert model.weight_fit == pytest.approx(0.4) and model.weight_engagement == pytest.approx(0.6)
    assert model.fit_grades == (("A", 75), ("B", 50), ("C", 25))
    assert model.engagement_levels == (("1", 75), ("2", 50), ("3", 25))
    assert model.temperature == (("hot", 70), ("warm", 40))
    assert model.raw["engagement"]["rules"][3]["half_life"] == "never"


def test_reference_conditions_read_contacts() -> None:
    model = parse_model(REFERENCE)
    decision_maker, industry, _, free_email = (rule.where for rule in model.fit_rules)
    assert evaluate(decision_maker, {"traits": {"title": "Directeur Marketing"}})
    assert not evaluate(decision_maker, {"traits": {"title": "Headhunter"}})
    assert evaluate(industry, {"account": {"industry": "fintech"}})
    assert evaluate(free_email, {"traits": {"email": "Jo@Gmail.com"}})
    assert evaluate(model.exclude[0], {"traits": {"email": "me@ourcompany.com"}})


def test_load_model_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "model.yml"
    path.write_text(REFERENCE, encoding="utf-8")
    model = load_model(path)
    assert model.source == str(path) and model.name == "b2b-saas"


def test_groups_limits_machine_flag_and_descriptions() -> None:
    text = minimal(
        description="'Demo model'",
        engagement="""
  max: 50
  half_life: 2w
  groups: {email: {cap: 10}}
  rules:
    - {id: open, on: Email Opened, points: 1, group: email, machine: true, description: opens}
    - {id: webinar, on: Webinar Attended, points: 15, limit: once}
    - {id: form, on: Form Submitted, points: 5, limit: {count: 2}}
    - {id: visit, on: page, points: 1.5, half_life: 12h, limit: {count: 1, per: 1d}}""",
    )
    model = parse_model(text)
    opened, webinar, form, visit = model.engagement_rules
    assert model.group_caps == {"email": 10}
    assert (opened.group, opened.machine, opened.description, opened.half_life) == ("email", True, "opens", 14 * DAY)
    assert webinar.limit == Limit(count=1, per=None)
    assert form.limit == Limit(count=2, per=None)
    assert visit.limit == Limit(count=1, per=DAY) and visit.half_life == 12 * 3600 and visit.points == 1.5


def test_yaml_on_key_and_yes_stay_text() -> None:
    model = parse_model(minimal(fit="{max: 10, rules: [{id: f, where: {field: traits.ok, equals: yes}, points: 1}]}"))
    assert model.engagement_rules[0].on == "Clicked"
    assert model.fit_rules[0].where == Comparison("traits.ok", "equals", "yes")


def test_defaults_for_machine_weights_grades_and_temperature() -> None:
    model = parse_model(minimal())
    assert model.machine is not None
    assert evaluate(model.machine, {"context": {"userAgent": "Mozilla/5.0 (compatible; Googlebot/2.1)"}})
    assert evaluate(model.machine, {"properties": {"machine_activity": True}})
    assert not evaluate(model.machine, {"context": {"userAgent": "Mozilla/5.0 (Macintosh) Safari/605.1"}})
    assert (model.weight_fit, model.weight_engagement) == (0.5, 0.5)
    assert model.fit_grades == (("A", 75), ("B", 50), ("C", 25))
    assert model.temperature == (("hot", 70), ("warm", 40))


def test_machine_can_be_replaced_or_turned_off() -> None:
    custom = parse_model(minimal(machine="{field: properties.proxy, equals: true}"))
    assert custom.machine == Comparison("properties.proxy", "equals", True)
    assert parse_model(minimal(machine="null")).machine is None


def test_weights_are_normalised_and_integer_level_keys_accepted() -> None:
    model = parse_model(
        minimal(combined="{fit: 1, engagement: 3}", grades="{fit: {A: 90, B: 60, C: 30}, engagement: {1: 80, 2: 40, 3: 10}}")
    )
    assert (model.weight_fit, model.weight_engagement) == (0.25, 0.75)
    assert model.engagement_levels == (("1", 80), ("2", 40), ("3", 10))
    assert parse_model(minimal(combined="{fit: 0, engagement: 2}")).weight_engagement == 1.0
