"""Sales' actions on both databases, in simulated time: accept, reject, open an opportunity,
won and lost from each stage they allow (and refused from the others), manual moves, the BANT
record and its temperature (thresholds from the model file) gating MQL -> SQL, opportunities
opened and closed, history rows caused by the user, and the leads list filtered by stage and
owner in SQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import insert, select

from publishing import publish_model

from leadscore.services import qualification, scoring
from leadscore.services.errors import NotFound
from leadscore.services.models import load_published_model
from leadscore.store.bulk import BulkSession
from leadscore.store.engine import make_engine
from leadscore.store.tables import contact_stages, opportunities, owners, stage_history, teams

EXAMPLE = Path(__file__).parents[2] / "examples" / "b2b-saas.yml"
T0 = 1_798_761_600.0  # 2027-01-01T00:00:00Z
DAY = 86_400.0
MAIN = ("visitor", "subscriber", "lead", "mql", "sql", "opportunity", "customer")
ALLOWED = {
    "accept": {"mql": "sql"},
    "reject": {"mql": "nurturing", "sql": "nurturing"},
    "open_opportunity": {"mql": "opportunity", "sql": "opportunity"},
    "won": {"opportunity": "customer"},
    "lost": {"opportunity": "nurturing"},
}


def write_model(tmp_path: Path, lifecycle: dict[str, Any]) -> Path:
    """The example model with this ``lifecycle`` section (replacing one it may have)."""
    kept, skipping = [], False
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\S", line):
            skipping = line.startswith("lifecycle:")
        if not skipping:
            kept.append(line)
    path = tmp_path / "model.yml"
    path.write_text("\n".join([*kept, f"lifecycle: {json.dumps(lifecycle)}", ""]), encoding="utf-8")
    return path


@dataclass
class Crm:
    url: str

    def session(self) -> Any:
        return BulkSession.open(self.url)

    def add(self, *users: str, account: str | None = None) -> list[int]:
        """Contacts with these user ids (optionally of one account), committed."""
        with BulkSession.open(self.url) as bulk:
            ids = bulk.resolve_contacts(pl.DataFrame({"user_id": list(users), "anonymous_id": [None] * len(users)},
                                                     schema={"user_id": pl.String, "anonymous_id": pl.String}))
            if account is not None:
                account_id = bulk.upsert_accounts(pl.DataFrame({"key": [account], "name": [account.title()]}))["account_id"][0]
                bulk.upsert_contacts(ids.select("contact_id", pl.lit(account_id, dtype=pl.Int64).alias("account_id")))
            bulk.commit()
        return ids["contact_id"].to_list()

    def act(self, user: str, action: Any, at: float, **options: Any) -> qualification.StageChange:
        model = load_published_model(self.url)
        with BulkSession.open(self.url) as bulk:
            change = qualification.act(bulk, model, qualification.resolve(bulk, user), action, now=at,
                                       user=options.pop("by", "alice"), **options)
            bulk.commit()
        return change

    def move(self, user: str, stage: str, at: float, by: str = "marketing-ops", reason: str | None = None) -> qualification.StageChange:
        model = load_published_model(self.url)
        with BulkSession.open(self.url) as bulk:
            change = qualification.move(bulk, model, qualification.resolve(bulk, user), stage, now=at, user=by, reason=reason)
            bulk.commit()
        return change

    def bant(self, user: str, at: float = T0, notes: str | None = None, **answers: bool | None) -> qualification.BantView:
        model = load_published_model(self.url)
        with BulkSession.open(self.url) as bulk:
            view = qualification.record_bant(bulk, model, qualification.resolve(bulk, user), answers, now=at, user="alice",
                                             notes=notes)
            bulk.commit()
        return view

    def history(self, user: str) -> qualification.StageView:
        model = load_published_model(self.url)
        with BulkSession.open_reader(self.url) as bulk:
            return qualification.history(bulk, model, qualification.resolve(bulk, user))

    def rows(self, table: Any, *where: Any) -> list[dict[str, Any]]:
        engine = make_engine(self.url)
        try:
            with engine.connect() as connection:
                return [dict(row) for row in connection.execute(select(table).where(*where)).mappings()]
        finally:
            engine.dispose()


@pytest.fixture
def crm(migrated_url: str, tmp_path: Path) -> Iterator[Crm]:
    publish_model(migrated_url, write_model(tmp_path, {"bant": {"hot": {"met": 4}, "warm": {"met": 2, "require": ["need"]}}}))
    yield Crm(migrated_url)


def put_in(crm: Crm, user: str, stage: str, at: float = T0) -> None:
    """Walk the contact to ``stage``: manual moves forward, then a rejection for the side stages."""
    if stage in MAIN[1:]:
        crm.move(user, stage, at)
    elif stage == "nurturing":
        crm.move(user, "mql", at)
        crm.act(user, "reject", at, reason="no budget this year")
    elif stage == "disqualified":
        crm.move(user, "mql", at)
        crm.act(user, "reject", at, reason="competitor", reject_to="disqualified")


# ------------------------------------------------------------------------------ BANT (no stage change)


def test_bant_is_recorded_partially_and_its_temperature_follows_the_model(crm: Crm, tmp_path: Path) -> None:
    crm.add("u-1")
    model = load_published_model(crm.url)
    with BulkSession.open_reader(crm.url) as bulk:
        empty = qualification.bant_of(bulk, model, qualification.resolve(bulk, "u-1"))
    assert (empty.answers, empty.temperature, empty.updated_by) == (dict.fromkeys(("budget", "authority", "need", "timeline")), None, None)
    first = crm.bant("u-1", budget=True, timeline=True, notes="  call back in March ")
    assert first.answers == {"budget": True, "authority": None, "need": None, "timeline": True}
    assert (first.temperature, first.notes, first.updated_by, first.updated_at) == ("cold", "call back in March", "alice", T0 * 1000)
    warm = crm.bant("u-1", at=T0 + DAY, need=True)  # the others keep their value
    assert warm.answers == {"budget": True, "authority": None, "need": True, "timeline": True}
    assert (warm.temperature, warm.notes) == ("warm", "call back in March")
    hot = crm.bant("u-1", authority=True, notes="")
    assert (hot.temperature, hot.notes) == ("hot", None)
    unset = crm.bant("u-1", authority=None, need=False)
    assert (unset.answers["authority"], unset.answers["need"], unset.temperature) == (None, False, "cold")
    with pytest.raises(qualification.InvalidAction, match="unknown BANT criteria money"):
        crm.bant("u-1", money=True)
    with pytest.raises(NotFound):
        crm.bant("nobody", budget=True)
    # thresholds come from the model file: warm with any one criterion, hot with three
    publish_model(crm.url, write_model(tmp_path, {"bant": {"hot": {"met": 3}, "warm": {"met": 1}}}))
    assert crm.bant("u-1", budget=False, need=False, timeline=True).temperature == "warm"
    assert crm.bant("u-1", budget=True, need=True).temperature == "hot"


def test_refusals_before_any_stage_change(crm: Crm) -> None:
    crm.add("u-1")
    for action in ("accept", "reject", "open_opportunity", "won", "lost"):
        with pytest.raises(qualification.Refused, match="stage 'visitor'"):
            crm.act("u-1", action, T0, reason="because", amount=10.0)
    with pytest.raises(qualification.InvalidAction, match="needs a reason"):
        crm.act("u-1", "reject", T0, reason="  ")
    with pytest.raises(qualification.InvalidAction, match="needs an amount"):
        crm.act("u-1", "open_opportunity", T0)
    with pytest.raises(qualification.InvalidAction, match="currency"):
        crm.act("u-1", "open_opportunity", T0, amount=5.0, currency="euros")
    with pytest.raises(qualification.InvalidAction, match="at least 0"):
        crm.act("u-1", "open_opportunity", T0, amount=-5.0)
    with pytest.raises(qualification.InvalidAction, match="unknown stage 'won'"):
        crm.move("u-1", "won", T0)
    with pytest.raises(qualification.Refused, match="already in stage 'visitor'"):
        crm.move("u-1", "visitor", T0)
    with pytest.raises(NotFound):
        crm.act("nobody", "accept", T0)
    assert crm.rows(stage_history) == [] and crm.rows(opportunities) == []
    view = crm.history("u-1")
    assert (view.stage, view.label, view.entered_at, view.owner, view.history) == ("visitor", "Anonymous visitor", None, None, [])


# ------------------------------------------------------------------------------ stage changes


@pytest.mark.parametrize("action", list(ALLOWED))
def test_each_action_from_each_stage(crm: Crm, action: str) -> None:
    stages = (*MAIN, "nurturing", "disqualified")
    crm.add(*(f"u-{stage}" for stage in stages), account="acme")
    for stage in stages:
        put_in(crm, f"u-{stage}", stage)
    for stage in stages:
        user = f"u-{stage}"
        options: dict[str, Any] = {"reason": "timing", "amount": 1200.0, "by": "bob"}
        if stage not in ALLOWED[action]:
            with pytest.raises(qualification.Refused):
                crm.act(user, action, T0 + DAY, **options)
            assert crm.history(user).stage == stage
            continue
        change = crm.act(user, action, T0 + DAY, **options)
        assert (change.from_stage, change.to_stage, change.by) == (stage, ALLOWED[action][stage], "bob")
        view = crm.history(user)
        assert view.stage == ALLOWED[action][stage] and view.entered_at == (T0 + DAY) * 1000
        newest = view.history[0]
        assert (newest["from_stage"], newest["to_stage"], newest["cause_kind"], newest["cause"]) == (
            stage, ALLOWED[action][stage], "user", "bob")
        assert newest["at"] == (T0 + DAY) * 1000
        assert newest["reason"] == "timing"  # any action may say why; reject and lost must
        assert newest["amount"] == (1200.0 if action == "open_opportunity" else None)


def test_accept_is_gated_by_bant_when_the_model_says_so(crm: Crm, tmp_path: Path) -> None:
    publish_model(crm.url, write_model(tmp_path, {"bant": {"gate": "warm"}}))
    crm.add("u-1")
    put_in(crm, "u-1", "mql")
    with pytest.raises(qualification.Refused, match="requires a warm BANT qualification .*not recorded"):
        crm.act("u-1", "accept", T0)
    crm.bant("u-1", budget=True, timeline=True)  # cold: the need is not identified
    with pytest.raises(qualification.Refused, match="this lead's is cold"):
        crm.act("u-1", "accept", T0)
    crm.bant("u-1", need=True)
    assert crm.act("u-1", "accept", T0 + 3600).to_stage == "sql"
    # a hot gate
    publish_model(crm.url, write_model(tmp_path, {"bant": {"gate": "hot"}}))
    crm.add("u-2")
    put_in(crm, "u-2", "mql")
    crm.bant("u-2", budget=True, need=True, timeline=True)
    with pytest.raises(qualification.Refused, match="requires a hot BANT"):
        crm.act("u-2", "accept", T0)
    crm.bant("u-2", authority=True)
    assert crm.act("u-2", "accept", T0).to_stage == "sql"


def test_opportunity_amount_is_stored_and_closed_on_won_and_lost(crm: Crm) -> None:
    ada, bob = crm.add("u-ada", "u-bob", account="acme")
    (eve,) = crm.add("u-eve")
    for user in ("u-ada", "u-bob", "u-eve"):
        put_in(crm, user, "sql")
    opened = crm.act("u-ada", "open_opportunity", T0 + DAY, amount=48_000.0, currency="usd", by="bob")
    assert opened.opportunity is not None
    assert (opened.opportunity.amount, opened.opportunity.currency, opened.opportunity.account) == (48_000.0, "USD", "acme")
    assert (opened.opportunity.opened_by, opened.opportunity.opened_at, opened.opportunity.outcome) == ("bob", (T0 + DAY) * 1000, None)
    won = crm.act("u-ada", "won", T0 + 30 * DAY)
    assert won.opportunity is not None and (won.opportunity.outcome, won.opportunity.closed_at) == ("won", (T0 + 30 * DAY) * 1000)
    crm.act("u-bob", "open_opportunity", T0, amount=9_900.0)
    lost = crm.act("u-bob", "lost", T0 + 10 * DAY, reason="went with a competitor")
    assert lost.to_stage == "nurturing" and lost.opportunity is not None
    assert (lost.opportunity.outcome, lost.opportunity.reason, lost.opportunity.currency) == ("lost", "went with a competitor", "EUR")
    crm.act("u-eve", "open_opportunity", T0, amount=0.0)
    stored = {row["contact_id"]: row for row in crm.rows(opportunities)}
    assert stored[ada]["account_id"] is not None and stored[eve]["account_id"] is None
    assert (stored[ada]["amount"], stored[ada]["outcome"], stored[bob]["outcome"], stored[eve]["outcome"]) == (48_000.0, "won", "lost", None)
    history = crm.history("u-ada").history
    assert [(h["to_stage"], h["amount"]) for h in history[:2]] == [("customer", 48_000.0), ("opportunity", 48_000.0)]
    model = load_published_model(crm.url)
    with BulkSession.open_reader(crm.url) as bulk:
        listed = qualification.opportunities_of(bulk, qualification.resolve(bulk, "u-bob"))
    assert [(o.amount, o.outcome) for o in listed] == [(9_900.0, "lost")]
    assert model.lifecycle.first == "visitor"


def test_manual_moves_are_forward_or_declared(crm: Crm, tmp_path: Path) -> None:
    crm.add("u-1")
    assert crm.move("u-1", "lead", T0, reason="met at a fair").to_stage == "lead"
    with pytest.raises(qualification.Refused, match="only move forward"):
        crm.move("u-1", "subscriber", T0)
    put_in(crm, "u-1", "customer")
    with pytest.raises(qualification.Refused):
        crm.move("u-1", "opportunity", T0)
    publish_model(crm.url, write_model(tmp_path, {"allow": [{"from": "customer", "to": "opportunity"}]}))
    change = crm.move("u-1", "opportunity", T0 + DAY, by="admin", reason="upsell")
    assert (change.from_stage, change.to_stage) == ("customer", "opportunity")
    newest = crm.history("u-1").history[0]
    assert (newest["cause_kind"], newest["cause"], newest["reason"]) == ("user", "admin", "upsell")
    assert crm.history("u-1").history[-1]["reason"] == "met at a fair"


def test_leads_filter_by_stage_and_owner_in_sql(crm: Crm) -> None:
    ids = dict(zip(("u-1", "u-2", "u-3", "u-4"), crm.add("u-1", "u-2", "u-3", "u-4"), strict=True))
    put_in(crm, "u-2", "mql")
    put_in(crm, "u-3", "sql")
    put_in(crm, "u-4", "mql")
    engine = make_engine(crm.url)
    with engine.begin() as connection:
        team = connection.execute(insert(teams).values(key="qa-team", created_at=0).returning(teams.c.id)).scalar_one()
        owner = connection.execute(insert(owners).values(key="zoe", name="Zoé", team_id=team, created_at=0)
                                   .returning(owners.c.id)).scalar_one()
        connection.execute(contact_stages.update().where(contact_stages.c.contact_id.in_([ids["u-3"], ids["u-4"]]))
                           .values(owner_id=owner))
    engine.dispose()

    def leads(**where: Any) -> list[str]:
        frame = scoring.leads(crm.url, T0, top=None, where=scoring.LeadFilter(**where))
        return sorted(frame["contact"].to_list())

    assert leads() == ["u-1", "u-2", "u-3", "u-4"]
    assert leads(stages=("visitor",)) == ["u-1"]
    assert leads(stages=("mql",)) == ["u-2", "u-4"]
    assert leads(stages=("mql", "visitor")) == ["u-1", "u-2", "u-4"]
    assert leads(owners=("zoe",)) == ["u-3", "u-4"]
    assert leads(owners=(str(owner),)) == ["u-3", "u-4"]
    assert leads(stages=("mql",), owners=("zoe",)) == ["u-4"]
    assert leads(stages=("visitor",), owners=("zoe",)) == []
    assert leads(owners=("nobody",)) == []
    frame = scoring.leads(crm.url, T0, top=None, where=scoring.LeadFilter(stages=("sql", "visitor")))
    assert dict(zip(frame["contact"], zip(frame["stage"], frame["owner"], strict=True), strict=True)) == {
        "u-1": ("visitor", None), "u-3": ("sql", "zoe")}
    rows, _ = scoring.leads_page(crm.url, T0, where=scoring.LeadFilter(owners=("zoe",)), limit=1)
    assert rows.height == 1 and rows["owner"].to_list() == ["zoe"]
    with pytest.raises(scoring.BadFilter, match="unknown stage 'hot'"):
        scoring.leads(crm.url, T0, where=scoring.LeadFilter(stages=("hot",)))


def test_rules_on_bant_are_tried_when_sales_record_it(crm: Crm, tmp_path: Path) -> None:
    publish_model(crm.url, write_model(tmp_path, {"rules": [{"id": "bant-qualified", "to": "mql",
                                                            "when": {"bant": {"at_least": "warm"}}}]}))
    crm.add("u-1")
    put_in(crm, "u-1", "lead")
    crm.bant("u-1", at=T0 + DAY, budget=True)  # cold: stays a lead
    assert crm.history("u-1").stage == "lead"
    crm.bant("u-1", at=T0 + 2 * DAY, need=True)  # warm
    view = crm.history("u-1")
    assert view.stage == "mql" and view.entered_at == (T0 + 2 * DAY) * 1000
    newest = view.history[0]
    assert (newest["from_stage"], newest["cause_kind"], newest["cause"]) == ("lead", "rule", "bant-qualified")
