"""``leadscore keys create|list|revoke``: REST API keys and Segment write keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from leadscore.cli.common import console, database_url, handle_errors, in_uow
from leadscore.services.errors import LeadscoreError, NotFound
from leadscore.store.tables import API_ROLES

app = typer.Typer(
    help="Create, list and revoke API keys and Segment write keys.\n\nExample: leadscore keys create --role sales",
    no_args_is_help=True,
)


@app.command("create")
@handle_errors
def create(
    role: Annotated[str | None, typer.Option("--role", help=f"REST API key role: {', '.join(API_ROLES)}")] = None,
    write_key: Annotated[bool, typer.Option("--write-key", help="a Segment write key instead of an API key")] = False,
    origin: Annotated[list[str] | None, typer.Option("--origin", help="web site allowed to send with the write key from a browser (repeatable)")] = None,
    name: Annotated[str | None, typer.Option("--name", help="a label to recognise the key by")] = None,
) -> None:
    """Create a key and print its secret, once, on the last line of stdout.

    Example: leadscore keys create --write-key --origin https://www.example.com
    Example: leadscore keys create --role marketing --name "Marketing team"
    """
    if write_key == (role is not None):
        raise LeadscoreError("give either --role ROLE (an API key) or --write-key (a Segment write key)")
    if role is not None and role not in API_ROLES:
        raise LeadscoreError(f"unknown role {role!r}: expected one of {', '.join(API_ROLES)}")
    if origin and not write_key:
        raise LeadscoreError("--origin only applies to --write-key")
    origins = tuple(_origin(value) for value in origin or ())
    if write_key:
        record, secret = in_uow(lambda uow: uow.keys.create_write_key(origins, name))
        allowed = ", ".join(record.origins) or "no browser origin (server-side only)"
        console.print(f"write key #{record.id} created ({allowed}); it is shown only now:", highlight=False)
    else:
        assert role is not None
        api_key, secret = in_uow(lambda uow: uow.keys.create_api_key(role, name))
        console.print(f"API key #{api_key.id} ({api_key.role}) created; it is shown only now:", highlight=False)
    print(secret)


@app.command("list")
@handle_errors
def list_keys() -> None:
    """List keys (their first characters only: secrets are not stored).

    Example: leadscore keys list
    """
    api, write = in_uow(lambda uow: (uow.keys.list_api_keys(), uow.keys.list_write_keys()))
    table = Table("kind", "id", "prefix", "role / origins", "name", "created", "status")
    for key in api:
        table.add_row("api", str(key.id), key.prefix + "…", key.role, key.name or "", _day(key.created_at),
                      "revoked" if key.revoked_at else "active")
    for wkey in write:
        table.add_row("write", str(wkey.id), wkey.prefix + "…", " ".join(wkey.origins) or "-", wkey.name or "",
                      _day(wkey.created_at), "revoked" if wkey.revoked_at else "active")
    console.print(table)


@app.command("revoke")
@handle_errors
def revoke(
    key_id: Annotated[int, typer.Argument(help="the key's id (see `leadscore keys list`)")],
    write_key: Annotated[bool, typer.Option("--write-key", help="revoke a write key, not an API key")] = False,
) -> None:
    """Revoke a key: requests using it are refused from now on.

    Example: leadscore keys revoke 3
    """
    kind = "write key" if write_key else "API key"
    done = in_uow(lambda uow: uow.keys.revoke_write_key(key_id) if write_key else uow.keys.revoke_api_key(key_id))
    if not done:
        raise NotFound(f"no active {kind} #{key_id}")
    console.print(f"{kind} #{key_id} revoked")


def _origin(value: str) -> str:
    text = value.strip().rstrip("/")
    scheme, _, host = text.partition("://")
    if scheme not in {"http", "https"} or not host or "/" in host:
        raise LeadscoreError(f"--origin {value!r} is not a web site origin such as https://www.example.com")
    return text.lower()


def _day(stamp_ms: int) -> str:
    return datetime.fromtimestamp(stamp_ms / 1000, tz=UTC).strftime("%Y-%m-%d")
