"""The ``accounts`` section of the model file (B2B, account-based scoring) as a pydantic schema.

```yaml
accounts:
  attach_by_domain: true          # a contact without an account joins the account of its
                                  # e-mail's domain (created if missing); never for free mail
  free_email: [example-free.net]  # added to the shipped list of free and disposable providers
  own_domains: [ourcompany.com]   # our employees: excluded from scoring, automation, reports
  fit:                            # account fit, from the account's traits (account.* fields)
    max: 50
    rules:
      - {id: target-industry, where: {field: account.industry, in: [software, fintech]}, points: 20}
      - {id: mid-market, where: {field: account.employees, gte: 50}, points: 30}
  engagement: {rollup: top, n: 3}  # top: sum of the n best contacts (capped at 100); max; average
  committee:                      # buying-committee roles, by contact fields
    decision_maker: {field: traits.title, matches: "(?i)\\b(ceo|cto|vp|head|director)\\b"}
    champion: {field: traits.title, matches: "(?i)manager"}
  engaged: 25                     # a contact is engaged at an engagement score >= 25
  combined: {fit: 0.5, engagement: 0.5}
  grades: {A: 75, B: 50, C: 25}   # on the account fit (0..100); below C is D
  temperature: {hot: 70, warm: 40}  # on the account score; below warm is cold
  qualified: {score: 60, roles: 2}  # marketing-qualified account (MQA)
```

Conditions stay raw mappings here; :mod:`leadscore.core.model` compiles them (with the key
path of any error) into :class:`leadscore.core.account_scoring.Accounts`. The shipped list of
free-mail domains is package data (``leadscore/data/free_email_domains.txt``).
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

ROLE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
RULE_ID = r"^[a-z0-9][a-z0-9_.-]*$"

Threshold = Annotated[float, Field(ge=0, le=100)]


@functools.cache
def shipped_free_email_domains() -> frozenset[str]:
    """The free and disposable mail providers shipped with leadscore (package data, read once)."""
    text = resources.files("leadscore").joinpath("data/free_email_domains.txt").read_text(encoding="utf-8")
    lines = (line.split("#", 1)[0].strip().lower() for line in text.splitlines())
    return frozenset(line for line in lines if line)


def _domains(values: list[str]) -> list[str]:
    cleaned = []
    for value in values:
        domain = value.strip().lower().removeprefix("@")
        if not DOMAIN.fullmatch(domain):
            raise ValueError(f"'{value}' is not a domain name (write it like example.com, without @ or scheme)")
        cleaned.append(domain)
    return cleaned


Domains = Annotated[list[str], AfterValidator(_domains)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AccountFitRuleDoc(Section):
    id: Annotated[str, Field(pattern=RULE_ID)]
    where: Any
    points: float
    description: str = ""

    @model_validator(mode="after")
    def _non_zero(self) -> AccountFitRuleDoc:
        if self.points == 0:
            raise ValueError("points must not be zero (remove the rule instead)")
        return self


class AccountFitDoc(Section):
    max: Annotated[float, Field(gt=0)] = 100.0
    rules: list[AccountFitRuleDoc] = Field(default_factory=list)


class RollupDoc(Section):
    rollup: Literal["top", "max", "average"] = "top"
    n: Annotated[int, Field(ge=1)] = 3


class AccountCombinedDoc(Section):
    fit: Annotated[float, Field(ge=0)]
    engagement: Annotated[float, Field(ge=0)]

    @model_validator(mode="after")
    def _not_both_zero(self) -> AccountCombinedDoc:
        if self.fit == 0 and self.engagement == 0:
            raise ValueError("fit and engagement weights cannot both be zero")
        return self


class AccountGradesDoc(Section):
    A: Threshold
    B: Threshold
    C: Threshold

    @model_validator(mode="after")
    def _ordered(self) -> AccountGradesDoc:
        if not self.A > self.B > self.C:
            raise ValueError(f"thresholds must decrease strictly, A > B > C (got A={self.A:g}, B={self.B:g}, C={self.C:g})")
        return self


class AccountTemperatureDoc(Section):
    hot: Threshold
    warm: Threshold

    @model_validator(mode="after")
    def _ordered(self) -> AccountTemperatureDoc:
        if self.hot <= self.warm:
            raise ValueError(f"hot must be above warm (got hot={self.hot:g}, warm={self.warm:g})")
        return self


class QualifiedDoc(Section):
    score: Threshold
    roles: Annotated[int, Field(ge=0)] = 0
    require: list[str] = Field(default_factory=list)


class AccountsDoc(Section):
    """Every key is optional; a model without this section scores no accounts. Checks across
    keys (role names, ``qualified`` against ``committee``) are made when the section is
    compiled, so that they name the exact key path."""

    attach_by_domain: bool = False
    free_email: Domains = Field(default_factory=list)
    own_domains: Domains = Field(default_factory=list)
    fit: AccountFitDoc = Field(default_factory=AccountFitDoc)
    engagement: RollupDoc = Field(default_factory=RollupDoc)
    committee: dict[str, Any] = Field(default_factory=dict)
    engaged: Threshold = 25.0
    combined: AccountCombinedDoc = Field(default_factory=lambda: AccountCombinedDoc(fit=0.5, engagement=0.5))
    grades: AccountGradesDoc = Field(default_factory=lambda: AccountGradesDoc(A=75, B=50, C=25))
    temperature: AccountTemperatureDoc = Field(default_factory=lambda: AccountTemperatureDoc(hot=70, warm=40))
    qualified: QualifiedDoc | None = None
