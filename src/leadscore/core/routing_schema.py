"""The ``routing`` section of the model file as a pydantic schema (every key optional).

```yaml
routing:
  account_owner_first: true            # a contact whose account has an owner goes to that owner
  open_stages: [mql, sql, opportunity] # the leads that count toward an owner's load and capacity
  rules:                               # first match wins; conditions over traits.* and account.*
    - id: enterprise
      when: {field: account.employees, gte: 200}
      team: enterprise
    - id: smb-france
      when: {field: account.country, in: [FR, BE, CH]}
      team: smb-fr
    - id: smb
      team: smb                        # no `when`: catch-all (must be the last rule)
  teams:
    enterprise: {strategy: least-loaded}
    smb-fr: {strategy: round-robin}
    smb: {strategy: weighted}
```

Conditions (``when``) stay raw mappings here; :mod:`leadscore.core.model` compiles them and
checks what needs the whole file (declared teams, known stages, unique rule ids).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

STRATEGIES = ("round-robin", "weighted", "least-loaded")
TEAM_KEY = r"^[a-z0-9][a-z0-9_.-]*$"
DEFAULT_OPEN_STAGES = ("mql", "sql", "opportunity")

Strategy = Literal["round-robin", "weighted", "least-loaded"]
TeamKey = Annotated[str, Field(pattern=TEAM_KEY)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RoutingRuleDoc(Section):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    when: Any = None
    team: TeamKey
    description: str = ""


class TeamDoc(Section):
    strategy: Strategy = "round-robin"
    name: str = ""


class RoutingDoc(Section):
    account_owner_first: bool = True
    open_stages: list[str] = Field(default_factory=lambda: list(DEFAULT_OPEN_STAGES))
    rules: list[RoutingRuleDoc] = Field(default_factory=list)
    teams: dict[TeamKey, TeamDoc] = Field(default_factory=dict)
