"""``leadscore accounts``: the best-scored accounts (B2B, account-based scoring)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from leadscore.cli.common import console, database_url, echo_json, handle_errors
from leadscore.services import accounts as account_service
from leadscore.services.scoring import iso_utc
from leadscore.store.account_scores import ScoredAccount

TEMPERATURE_STYLE = {"hot": "bold red", "warm": "yellow", "cold": "blue"}


class Output(str, Enum):
    table = "table"
    json = "json"


@handle_errors
def accounts(
    top: Annotated[int, typer.Option("--top", "-n", min=1, help="how many accounts")] = 20,
    qualified: Annotated[bool, typer.Option("--qualified", help="only marketing-qualified accounts (MQA)")] = False,
    output: Annotated[Output, typer.Option("--output", "-o", help="table or json")] = Output.table,
) -> None:
    """The best accounts by account score: fit, engagement rolled up from their contacts,
    grade, temperature and buying-committee coverage (needs an `accounts:` section in the model).

    Example: leadscore accounts --top 10 --qualified
    """
    found = account_service.top(database_url(), limit=top, qualified=True if qualified else None)
    rows = [_row(account) for account in found]
    if output is Output.json:
        echo_json(orjson.dumps(rows).decode())
        return
    if not rows:
        console.print("no scored accounts yet (account scores need an `accounts:` section in the published model)")
        return
    title = f"Top {top} {'marketing-qualified ' if qualified else ''}accounts"
    table = Table(title=title)
    for name in ["#", "account", "domain", "score", "fit", "engagement", "grade", "temperature", "contacts", "committee",
                 "qualified"]:
        table.add_column(name, justify="right" if name in {"#", "score", "fit", "engagement", "contacts"} else "left")
    for rank, row in enumerate(rows, start=1):
        style = TEMPERATURE_STYLE.get(row["temperature"] or "", "")
        committee = ", ".join(f"{role} {cover['engaged']}/{cover['present']}" for role, cover in row["coverage"].items())
        table.add_row(str(rank), row["key"], row["domain"] or "", f"{row['score']:.1f}", f"{row['fit']:.1f}",
                      f"{row['engagement']:.1f}", row["grade"] or "",
                      f"[{style}]{row['temperature']}[/]" if style else str(row["temperature"]), str(row["contacts"]),
                      committee, row["qualified_at"] or "")
    console.print(table)


def _row(scored: ScoredAccount) -> dict[str, Any]:
    account, scores = scored
    assert scores is not None  # ranked accounts are scored ones
    return {
        "key": account.key, "name": account.name, "domain": account.domain,
        "score": round(scores.score, 6), "fit": round(scores.fit, 6), "engagement": round(scores.engagement, 6),
        "grade": scores.grade, "temperature": scores.temperature, "contacts": scores.contacts,
        "coverage": scores.coverage,
        "qualified_at": None if scores.qualified_at is None else iso_utc(scores.qualified_at / 1000),
        "owner": None if scores.owner is None else scores.owner.key,
    }
