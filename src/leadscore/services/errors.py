"""Domain errors raised by the services; the CLI maps them to exit codes, the API to statuses."""

from __future__ import annotations


class LeadscoreError(Exception):
    """Base of every error a user can cause and fix; ``str(err)`` is the message to show."""

    exit_code = 1


class NotFound(LeadscoreError):
    """A contact, model revision or file that does not exist."""

    exit_code = 3


class NoPublishedModel(LeadscoreError):
    """Scoring needs a published model and there is none yet."""

    exit_code = 4

    def __init__(self) -> None:
        super().__init__(
            "no scoring model is published yet: run `leadscore model publish examples/b2b-saas.yml`"
        )
