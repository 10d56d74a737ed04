"""``leadscore lead accept|reject|opportunity|won|lost|stage|bant|history``: sales' work on one
lead from the command line (the same service as the REST API)."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from leadscore.cli.common import console, database_url, echo_json, handle_errors, parse_time
from leadscore.core.types import ScoringModel
from leadscore.services import qualification, scoring
from leadscore.services.models import load_published_model
from leadscore.store.bulk import BulkSession

app = typer.Typer(
    help="Sales' actions on a lead: accept, reject, open an opportunity, won, lost; manual stage moves, BANT and "
    "the stage history.\n\nExample: leadscore lead accept u-42 --as alice",
    no_args_is_help=True,
)

T = TypeVar("T")
User = Annotated[str, typer.Argument(metavar="CONTACT", help="the contact: user id, anonymous id, e-mail or #ID")]
As = Annotated[str | None, typer.Option("--as", help="who does it, recorded in the history (default: $USER)")]
At = Annotated[str | None, typer.Option("--at", help="when, ISO 8601 (default: now; for simulated time)")]
Reason = Annotated[str | None, typer.Option("--reason", help="why (kept in the stage history)")]
ANSWERS = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False, "false": False, "0": False,
           "unknown": None, "?": None}


class HistoryFormat(str, Enum):
    table = "table"
    json = "json"


def _user(name: str | None) -> str:
    if name is not None and name.strip():
        return name.strip()
    return os.environ.get("USER") or getpass.getuser()


def _write(contact: str, work: Callable[[BulkSession, ScoringModel, int], T]) -> T:
    url = database_url()
    model = load_published_model(url)
    with BulkSession.open(url) as bulk:
        result = work(bulk, model, qualification.resolve(bulk, contact))
        bulk.commit()
    return result


def _act(contact: str, action: Any, by: str | None, at: str | None, **details: Any) -> None:
    now, user = parse_time(at), _user(by)
    change = _write(contact, lambda bulk, model, contact_id: qualification.act(
        bulk, model, contact_id, action, now=now, user=user, **details))
    _print_change(change)


def _print_change(change: qualification.StageChange) -> None:
    line = f"{change.contact}: {change.from_stage} -> {change.to_stage} (by {change.by} at {scoring.iso_utc(change.at)})"
    if change.opportunity is not None:
        deal = change.opportunity
        status = f", {deal.outcome}" if deal.outcome else ""
        line += f"; opportunity #{deal.id}: {deal.amount:,.2f} {deal.currency}{status}"
    console.print(line, highlight=False)


@app.command("accept")
@handle_errors
def accept(contact: User, by: As = None, at: At = None, reason: Reason = None) -> None:
    """Accept an MQL: it becomes a sales qualified lead (SQL). The model may require a BANT
    qualification first (lifecycle.bant.gate).

    Example: leadscore lead accept u-42 --as alice
    """
    _act(contact, "accept", by, at, reason=reason)


@app.command("reject")
@handle_errors
def reject(
    contact: User,
    reason: Annotated[str, typer.Option("--reason", help="why sales rejects the lead")],
    disqualify: Annotated[bool, typer.Option("--disqualify", help="disqualify it instead of sending it to nurturing")] = False,
    by: As = None,
    at: At = None,
) -> None:
    """Reject an MQL or SQL: back to nurturing, or disqualified.

    Example: leadscore lead reject u-42 --reason "no budget before 2027"
    """
    _act(contact, "reject", by, at, reason=reason, reject_to="disqualified" if disqualify else "nurturing")


@app.command("opportunity")
@handle_errors
def opportunity(
    contact: User,
    amount: Annotated[float, typer.Option("--amount", min=0, help="expected deal value")],
    currency: Annotated[str, typer.Option("--currency", help="ISO 4217 code")] = qualification.DEFAULT_CURRENCY,
    by: As = None,
    at: At = None,
) -> None:
    """Open an opportunity with an amount for an MQL or SQL: it becomes an opportunity.

    Example: leadscore lead opportunity u-42 --amount 48000 --currency EUR
    """
    _act(contact, "open_opportunity", by, at, amount=amount, currency=currency)


@app.command("won")
@handle_errors
def won(contact: User, by: As = None, at: At = None) -> None:
    """The deal is signed: the opportunity closes as won and the contact becomes a customer.

    Example: leadscore lead won u-42
    """
    _act(contact, "won", by, at)


@app.command("lost")
@handle_errors
def lost(
    contact: User,
    reason: Annotated[str, typer.Option("--reason", help="why the deal was lost")],
    by: As = None,
    at: At = None,
) -> None:
    """The deal is lost: the opportunity closes as lost and the contact goes back to nurturing.

    Example: leadscore lead lost u-42 --reason "chose a competitor"
    """
    _act(contact, "lost", by, at, reason=reason)


@app.command("stage")
@handle_errors
def stage(
    contact: User,
    to: Annotated[str, typer.Argument(metavar="STAGE", help="the stage to move to")],
    reason: Reason = None,
    by: As = None,
    at: At = None,
) -> None:
    """Move a contact to a stage by hand: forward, or a move the model allows (lifecycle.allow).

    Example: leadscore lead stage u-42 mql --reason "met at the trade fair"
    """
    now, user = parse_time(at), _user(by)
    change = _write(contact, lambda bulk, model, contact_id: qualification.move(
        bulk, model, contact_id, to, now=now, user=user, reason=reason))
    _print_change(change)


def _answer(value: str, name: str) -> bool | None:
    key = value.strip().lower()
    if key not in ANSWERS:
        raise typer.BadParameter(f"--{name} takes yes, no or unknown, not {value!r}")
    return ANSWERS[key]


Answer = Annotated[str | None, typer.Option(help="yes, no or unknown (left out: keeps the recorded answer)")]


@app.command("bant")
@handle_errors
def bant(
    contact: User,
    budget: Answer = None,
    authority: Answer = None,
    need: Answer = None,
    timeline: Answer = None,
    notes: Annotated[str | None, typer.Option("--notes", help="replaces the notes (\"\" clears them)")] = None,
    by: As = None,
    at: At = None,
) -> None:
    """Record BANT answers (budget, authority, need, timeline) and show the qualification
    temperature; with no answer given, show what is recorded.

    Example: leadscore lead bant u-42 --budget yes --authority no --need yes --timeline yes
    """
    given = {"budget": budget, "authority": authority, "need": need, "timeline": timeline}
    answers = {name: _answer(value, name) for name, value in given.items() if value is not None}
    if not answers and notes is None:
        url = database_url()
        model = load_published_model(url)
        with BulkSession.open_reader(url) as bulk:
            view = qualification.bant_of(bulk, model, qualification.resolve(bulk, contact))
    else:
        now, user = parse_time(at), _user(by)
        view = _write(contact, lambda bulk, model, contact_id: qualification.record_bant(
            bulk, model, contact_id, answers, now=now, user=user, notes=notes))
    shown = "  ".join(f"{name} {_shown(view.answers[name])}" for name in qualification.BANT_FIELDS)
    console.print(f"{view.contact}: {shown}  ->  {view.temperature or 'not recorded'}", highlight=False)
    if view.notes:
        console.print(f"    notes: {view.notes}", highlight=False)


def _shown(answer: bool | None) -> str:
    return "unknown" if answer is None else "yes" if answer else "no"


@app.command("history")
@handle_errors
def history(
    contact: User,
    format: Annotated[HistoryFormat, typer.Option("--format", "-f", help="table or json")] = HistoryFormat.table,
) -> None:
    """A contact's current stage, owner, and every stage change with its cause and scores.

    Example: leadscore lead history u-42 --format json
    """
    url = database_url()
    model = load_published_model(url)
    with BulkSession.open_reader(url) as bulk:
        view = qualification.history(bulk, model, qualification.resolve(bulk, contact))
    if format is HistoryFormat.json:
        echo_json(scoring.dumps(history_json(view)))
        return
    owner = "unassigned" if view.owner is None else view.owner[0]
    since = "" if view.entered_at is None else f" since {scoring.iso_utc(view.entered_at / 1000)}"
    console.print(f"[bold]{view.contact}[/bold] is {view.label} ({view.stage}){since}, owner {owner}", highlight=False)
    table = Table()
    for name in ("at", "from", "to", "cause", "by", "reason", "score", "temperature"):
        table.add_column(name, justify="right" if name == "score" else "left")
    for row in view.history:
        table.add_row(scoring.iso_utc(row["at"] / 1000), row["from_stage"] or "", row["to_stage"], row["cause_kind"],
                      row["cause"] or "", row["reason"] or "", "" if row["score"] is None else f"{row['score']:.1f}",
                      row["temperature"] or "")
    console.print(table)


def history_json(view: qualification.StageView) -> dict[str, Any]:
    """The document ``GET /api/contacts/{contact}/stages`` answers."""
    def iso(ms: int | None) -> str | None:
        return None if ms is None else scoring.iso_utc(ms / 1000)

    return {
        "contact": view.contact, "stage": view.stage, "label": view.label, "entered_at": iso(view.entered_at),
        "owner": None if view.owner is None else {"key": view.owner[0], "name": view.owner[1]},
        "history": [{**{k: v for k, v in row.items() if k != "id"}, "at": iso(row["at"])} for row in view.history],
    }
