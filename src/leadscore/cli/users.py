"""``leadscore users``: the people who sign in to the dashboard."""

from __future__ import annotations

import os
import sys
from enum import Enum
from typing import Annotated

import typer
from rich.table import Table

from leadscore.cli.common import UsageError, console, handle_errors, in_uow
from leadscore.services import users as service

app = typer.Typer(help="Dashboard users (sign-in with a role: admin, marketing, sales).\n\n"
                  "Example: leadscore users add ada@example.com --role marketing", no_args_is_help=True)


class Role(str, Enum):
    admin = "admin"
    marketing = "marketing"
    sales = "sales"


class Language(str, Enum):
    en = "en"
    fr = "fr"


@app.command("add")
@handle_errors
def add(
    email: Annotated[str, typer.Argument(help="the e-mail the user signs in with")],
    role: Annotated[Role, typer.Option("--role", help="admin, marketing or sales")],
    name: Annotated[str | None, typer.Option("--name", help="shown in the dashboard")] = None,
    language: Annotated[Language | None, typer.Option("--language", help="en or fr (default: the browser's)")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from standard input")] = False,
) -> None:
    """Add a dashboard user. The password is asked for (twice), read from standard input with
    --password-stdin, or taken from LEADSCORE_NEW_USER_PASSWORD; never from the command line.

    Example: leadscore users add ada@example.com --role marketing --name "Ada Lovelace"
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif os.environ.get("LEADSCORE_NEW_USER_PASSWORD"):
        password = os.environ["LEADSCORE_NEW_USER_PASSWORD"]
    elif sys.stdin.isatty():
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        raise UsageError("give the password with --password-stdin or LEADSCORE_NEW_USER_PASSWORD")
    user = in_uow(lambda uow: service.create_user(uow.connection, email, password, role.value, name=name,
                                                  language=None if language is None else language.value))
    console.print(f"user {user.email} added ({user.role})", highlight=False)


@app.command("list")
@handle_errors
def list_users() -> None:
    """List the dashboard users.

    Example: leadscore users list
    """
    found = in_uow(lambda uow: service.list_users(uow.connection))
    table = Table(title="Dashboard users")
    for column in ("e-mail", "name", "role", "language", "active"):
        table.add_column(column)
    for user in found:
        table.add_row(user.email, user.name or "—", user.role, user.language or "browser", "no" if user.disabled else "yes")
    console.print(table)


@app.command("demo")
@handle_errors
def demo_login() -> None:
    """Create (or reset) the demo's admin sign-in, demo@leadscore.local, with a new random
    password, and print both. For demo databases: `make run` does it before serving.

    Example: leadscore users demo
    """
    email, password = in_uow(lambda uow: service.demo_login(uow.connection))
    console.print(f"dashboard sign-in: {email} / {password}", highlight=False)
