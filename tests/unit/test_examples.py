"""The example model files load, and their rules mean what their comments say."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadscore.core.conditions import evaluate
from leadscore.core.model import load_model
from leadscore.core.records import contact_record, event_record
from leadscore.core.types import ScoringModel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def fit_rules_met(model: ScoringModel, *, traits: dict[str, object], account: dict[str, object]) -> set[str]:
    record = contact_record(traits, account)
    return {rule.id for rule in model.fit_rules if evaluate(rule.where, record)}


@pytest.mark.parametrize("name", ["b2b-saas.yml", "b2c-education.yml"])
def test_example_loads(name: str) -> None:
    model = load_model(EXAMPLES / name)
    assert model.name == name.removesuffix(".yml")
    assert model.fit_rules and model.engagement_rules and model.exclude
    assert any(rule.half_life is None and rule.points < 0 for rule in model.engagement_rules)


def test_b2b_fit_rules() -> None:
    model = load_model(EXAMPLES / "b2b-saas.yml")
    buyer = fit_rules_met(
        model,
        traits={"title": "VP Engineering", "email": "ana@acme.io"},
        account={"industry": "software", "employees": 240, "country": "FR"},
    )
    assert buyer == {"decision-maker", "target-industry", "mid-market", "target-country"}
    student = fit_rules_met(model, traits={"title": "Étudiant en master", "email": "x@GMAIL.com"}, account={})
    assert student == {"student", "free-email"}
    rival = fit_rules_met(model, traits={"title": "Sales Manager", "email": "spy@pipeflow.com"}, account={})
    assert rival == {"manager", "competitor"}


def test_b2b_engagement_and_machine_activity() -> None:
    model = load_model(EXAMPLES / "b2b-saas.yml")
    rules = {rule.id: rule for rule in model.engagement_rules}
    assert rules["email-open"].group == rules["email-click"].group == "email"
    assert model.group_caps == {"email": 12}
    assert rules["pricing-page"].limit is not None and rules["pricing-page"].limit.count == 3
    assert rules["demo-request"].half_life == 60 * 86_400
    pricing = event_record(type="page", properties={"path": "/fr/tarifs"})
    blog = event_record(type="page", properties={"path": "/blog/decay"})
    assert rules["pricing-page"].where is not None and evaluate(rules["pricing-page"].where, pricing)
    assert not evaluate(rules["pricing-page"].where, blog)
    assert model.machine is not None
    scanner = event_record(type="track", event="Email Link Clicked", properties={"seconds_since_delivery": 2})
    person = event_record(type="track", event="Email Link Clicked", properties={"seconds_since_delivery": 3600})
    assert evaluate(model.machine, scanner) and not evaluate(model.machine, person)


def test_b2b_excludes_staff_and_test_contacts() -> None:
    model = load_model(EXAMPLES / "b2b-saas.yml")

    def excluded(traits: dict[str, object]) -> bool:
        return any(evaluate(c, contact_record(traits, None)) for c in model.exclude)

    assert excluded({"email": "me@OurCompany.com"})
    assert excluded({"email": "test+1@acme.io"})
    assert excluded({"email": "ana@acme.io", "test_contact": True})
    assert not excluded({"email": "ana@acme.io"})


def test_b2c_fit_rules_use_x_education_fields() -> None:
    model = load_model(EXAMPLES / "b2c-education.yml")
    lead = fit_rules_met(
        model,
        traits={
            "occupation": "Working Professional",
            "lead_origin": "Lead Add Form",
            "lead_source": "Reference",
            "specialization": "Banking, Investment And Insurance",
            "city": "Mumbai",
            "do_not_email": "Yes",
        },
        account={},
    )
    assert lead == {"working-professional", "sales-team-form", "referral", "business-specialization", "metro-city", "do-not-email"}
    assert fit_rules_met(model, traits={"occupation": "Student", "city": "Select"}, account={}) == {"student"}
