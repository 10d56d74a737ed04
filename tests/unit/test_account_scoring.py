"""Account-based scoring, pure: the ``accounts`` section compiled (with key-path errors), domain
attachment candidates, account fit, each engagement rollup, committee coverage, grade,
temperature and marketing qualification."""

from __future__ import annotations

from typing import Any

import orjson
import polars as pl
import pytest

from leadscore.core import vectorized
from leadscore.core.account_scoring import Accounts, attachable_domains, score_accounts
from leadscore.core.accounts_schema import shipped_free_email_domains
from leadscore.core.model import ModelError, parse_model

from test_model import minimal

SECTION = """
  attach_by_domain: true
  free_email: [example-free.net]
  own_domains: [ourcompany.com]
  fit:
    max: 50
    rules:
      - {id: target-industry, where: {field: account.industry, in: [software, fintech]}, points: 20}
      - {id: mid-market, where: {field: account.employees, gte: 50}, points: 30}
  engagement: {rollup: ROLLUP, n: 2}
  committee:
    decision_maker: {field: traits.title, matches: "(?i)\\\\b(ceo|cto|vp|head|director)\\\\b"}
    champion: {field: traits.title, matches: "(?i)manager"}
    user: {field: traits.role, equals: user}
    finance: {field: traits.department, equals: finance}
  engaged: 25
  combined: {fit: 0.5, engagement: 0.5}
  grades: {A: 75, B: 50, C: 25}
  temperature: {hot: 70, warm: 40}
  qualified: {score: 60, roles: 2}
"""


def accounts_section(rollup: str = "top") -> Accounts:
    model = parse_model(minimal(accounts="\n" + SECTION.replace("ROLLUP", rollup)))
    assert model.accounts is not None
    return model.accounts


def account_frame(traits: dict[int, dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"account_id": list(traits), "account": [orjson.dumps(t).decode() for t in traits.values()]},
        schema={"account_id": pl.Int64, "account": pl.String},
    )


def make_members(*rows: tuple[int, int, dict[str, Any], float, bool]) -> pl.DataFrame:
    """``(contact_id, account_id, traits, engagement, excluded)`` rows."""
    return pl.DataFrame(
        {
            "contact_id": [r[0] for r in rows],
            "account_id": [r[1] for r in rows],
            "traits": [orjson.dumps(r[2]).decode() for r in rows],
            "engagement": [r[3] for r in rows],
            "excluded": [r[4] for r in rows],
        },
        schema={"contact_id": pl.Int64, "account_id": pl.Int64, "traits": pl.String, "engagement": pl.Float64,
                "excluded": pl.Boolean},
    )


MEMBERS = make_members(
    (1, 10, {"title": "CEO"}, 40.0, False),
    (2, 10, {"title": "Marketing Manager"}, 30.0, False),
    (3, 10, {"role": "user"}, 10.0, False),
    (4, 10, {"title": "VP Sales"}, 90.0, True),  # excluded: never counts
    (5, 20, {"department": "finance"}, 5.0, False),
)
ACCOUNTS = account_frame({10: {"industry": "software", "employees": 300}, 20: {"industry": "retail"}, 30: {}})


def scored(rollup: str) -> dict[int, dict[str, Any]]:
    result = score_accounts(accounts_section(rollup), ACCOUNTS, MEMBERS)
    return {row["account_id"]: row for row in result.iter_rows(named=True)}


def test_no_section_means_no_account_scoring() -> None:
    assert parse_model(minimal()).accounts is None


def test_own_domains_become_an_exclusion_of_contacts() -> None:
    model = parse_model(minimal(accounts="{own_domains: [OurCompany.com]}"))
    contacts = pl.DataFrame({"contact_id": [1, 2, 3], "traits": ['{"email":"ann@ourcompany.com"}',
                                                                '{"email":"bob@OURCOMPANY.COM"}', '{"email":"c@acme.io"}']})
    assert vectorized.fit_frame(model, contacts)["excluded"].to_list() == [True, True, False]


def test_shipped_free_mail_list_is_large_and_model_adds_to_it() -> None:
    shipped = shipped_free_email_domains()
    assert len(shipped) >= 150
    assert {"gmail.com", "yahoo.fr", "orange.fr", "web.de", "qq.com", "proton.me", "mail.ru"} <= shipped
    section = accounts_section()
    assert "example-free.net" in section.free_email and shipped <= section.free_email


def test_attachable_domains_skip_free_mail_and_own_domains() -> None:
    contacts = pl.DataFrame({"contact_id": [1, 2, 3, 4, 5, 6],
                             "email": ["ann@Acme.io", "bob@gmail.com", "cy@ourcompany.com", "no-at-sign",
                                       "dee@example-free.net", " eve@beta.co "]})
    found = attachable_domains(accounts_section(), contacts)
    assert found.rows() == [(1, "acme.io"), (6, "beta.co")]


def test_fit_grade_and_temperature() -> None:
    top = scored("top")
    assert top[10]["fit"] == pytest.approx(100.0)  # 20 + 30 = 50 = max
    assert top[10]["grade"] == "A"
    assert top[20]["fit"] == 0.0 and top[20]["grade"] == "D"
    assert top[30]["contacts"] == 0 and top[30]["engagement"] == 0.0 and top[30]["temperature"] == "cold"


@pytest.mark.parametrize(("rollup", "engagement"), [("top", 70.0), ("max", 40.0), ("average", 80.0 / 3)])
def test_each_rollup(rollup: str, engagement: float) -> None:
    account = scored(rollup)[10]
    assert account["engagement"] == pytest.approx(engagement)  # contact 4 (excluded, 90) never counts
    assert account["score"] == pytest.approx(0.5 * 100.0 + 0.5 * engagement)
    assert account["contacts"] == 3


def test_top_rollup_is_capped_at_100() -> None:
    members = make_members((1, 10, {}, 80.0, False), (2, 10, {}, 70.0, False))
    result = score_accounts(accounts_section("top"), ACCOUNTS.filter(pl.col("account_id") == 10), members)
    assert result["engagement"].to_list() == [100.0]
    assert result["temperature"].to_list() == ["hot"]


def test_committee_coverage_present_and_engaged() -> None:
    account = scored("top")[10]
    coverage = orjson.loads(account["coverage"])
    assert coverage == {
        "decision_maker": {"present": 1, "engaged": 1, "contacts": [1]},
        "champion": {"present": 1, "engaged": 1, "contacts": [2]},
        "user": {"present": 1, "engaged": 0, "contacts": [3]},
        "finance": {"present": 0, "engaged": 0, "contacts": []},
    }
    assert account["roles_engaged"] == 2
    assert orjson.loads(scored("top")[30]["coverage"])["finance"] == {"present": 0, "engaged": 0, "contacts": []}


def test_marketing_qualified_account_needs_score_and_roles() -> None:
    result = scored("top")
    assert result[10]["qualified"]  # score 85, two roles engaged
    assert not result[20]["qualified"]
    weaker = make_members((1, 10, {"title": "CEO"}, 40.0, False), (2, 10, {"role": "user"}, 40.0, False))
    alone = score_accounts(accounts_section("top"), ACCOUNTS.filter(pl.col("account_id") == 10), weaker)
    assert alone["score"][0] >= 60 and alone["roles_engaged"][0] == 2 and alone["qualified"][0]
    one_role = make_members((1, 10, {"title": "CEO"}, 90.0, False))
    single = score_accounts(accounts_section("top"), ACCOUNTS.filter(pl.col("account_id") == 10), one_role)
    assert single["score"][0] >= 60 and not single["qualified"][0]


def test_required_role() -> None:
    section = SECTION.replace("ROLLUP", "max").replace("{score: 60, roles: 2}", "{score: 10, require: [finance]}")
    accounts = parse_model(minimal(accounts="\n" + section)).accounts
    assert accounts is not None
    result = score_accounts(accounts, ACCOUNTS, MEMBERS.with_columns(pl.lit(50.0).alias("engagement")))
    assert dict(result.select("account_id", "qualified").iter_rows()) == {10: False, 20: True, 30: False}


@pytest.mark.parametrize(
    ("section", "path", "reason"),
    [
        ("{fit: {rules: [{id: r, where: {field: traits.title, exists: true}, points: 5}]}}",
         "accounts.fit.rules[0].where", "account.*"),
        ("{committee: {buyer: {field: properties.path, equals: x}}}", "accounts.committee.buyer", "contact fields"),
        ("{committee: {Buyer: {field: traits.title, equals: x}}}", "accounts.committee.Buyer", "bad role name"),
        ("{committee: {buyer: {field: traits.title, equals: x}}, qualified: {score: 50, roles: 2}}",
         "accounts.qualified.roles", "1 are declared"),
        ("{qualified: {score: 50, require: [cfo]}}", "accounts.qualified.require[0]", "unknown role 'cfo'"),
        ("{own_domains: [gmail.com]}", "accounts.own_domains[0]", "free e-mail provider"),
        ("{own_domains: ['http://x']}", "accounts.own_domains", "not a domain name"),
        ("{engagement: {rollup: median}}", "accounts.engagement.rollup", "top"),
        ("{grades: {A: 20, B: 50, C: 10}}", "accounts.grades", "decrease"),
        ("{qualified: {score: 150}}", "accounts.qualified.score", "100"),
        ("{enabled: true}", "accounts.enabled", "unknown key"),
        ("{committee: {buyer: {field: traits.title, matches: '('}}}", "accounts.committee.buyer.matches", "regular"),
    ],
)
def test_bad_sections_name_the_key_path(section: str, path: str, reason: str) -> None:
    with pytest.raises(ModelError) as caught:
        parse_model(minimal(accounts=section))
    issues = caught.value.issues
    assert [issue.path for issue in issues] == [path], issues
    assert reason in issues[0].reason, issues[0].reason
