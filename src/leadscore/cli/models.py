"""``leadscore model validate|publish|show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli.common import console, database_url, handle_errors, progress_bar
from leadscore.services import models, rescoring
from leadscore.store.engine import make_engine
from leadscore.store.uow import UnitOfWork

app = typer.Typer(help="Validate, publish and list scoring models.\n\nExample: leadscore model validate examples/b2b-saas.yml", no_args_is_help=True)


@app.command("validate")
@handle_errors
def validate(path: Annotated[Path, typer.Argument(help="model file (YAML)")]) -> None:
    """Check a model file; errors name the file, the key path and the reason.

    Example: leadscore model validate examples/b2b-saas.yml
    """
    model = models.validate_file(path)
    console.print(
        f"[green]valid[/green]: {model.name} — {len(model.fit_rules)} fit rules, "
        f"{len(model.engagement_rules)} engagement rules, {len(model.exclude)} exclusions"
    )


@app.command("publish")
@handle_errors
def publish(
    path: Annotated[Path, typer.Argument(help="model file (YAML)")],
    no_rescore: Annotated[bool, typer.Option("--no-rescore", help="do not rebuild scores now")] = False,
) -> None:
    """Publish a model file as the new scoring model, then rescore everyone with it.

    Example: leadscore model publish examples/b2b-saas.yml
    """
    url = database_url()
    engine = make_engine(url)
    try:
        with UnitOfWork(engine) as uow:
            result = models.publish_file(uow, path)
            uow.commit()
    finally:
        engine.dispose()
    if not result.changed:
        console.print(f"model {result.name!r} is already published as revision {result.revision}")
        return
    console.print(f"[green]published[/green] {result.name!r} as revision {result.revision}")
    if not no_rescore:
        with progress_bar("rescoring", unit="contacts") as update:
            report = rescoring.rescore(url, progress=update)
        console.print(f"rescored {report.contacts:,} contacts from {report.events:,} events")


@app.command("list")
@handle_errors
def list_revisions() -> None:
    """List model revisions, newest first.

    Example: leadscore model list
    """
    engine = make_engine(database_url())
    try:
        with UnitOfWork(engine) as uow:
            revisions = uow.models.list_revisions()
    finally:
        engine.dispose()
    for record in revisions:
        console.print(f"{record.revision:>4}  {record.status:<9}  {record.name}  {record.checksum[:12]}")
