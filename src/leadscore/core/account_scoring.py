"""Account-based scoring (B2B): the compiled ``accounts`` section and the pure, vectorised
account scores. No I/O, no clock: the contacts' engagement at the moment of reading comes in.

An account's numbers, all on 0..100:

- ``fit``: the account fit rules (``account.*`` fields) summed, clipped to ``0..fit.max`` and
  scaled to 0..100, like a contact's fit;
- ``engagement``: rolled up from the engagement scores of its contacts (excluded contacts never
  count): ``top`` sums the ``n`` highest and caps the sum at 100, ``max`` takes the highest,
  ``average`` the mean over all its contacts;
- ``score = w_fit · fit + w_engagement · engagement`` (weights normalised to sum 1);
- ``grade`` (A–D) from the fit, ``temperature`` (hot / warm / cold) from the score;
- ``coverage``: per buying-committee role, how many contacts hold it (``present``), how many of
  those are engaged (engagement ≥ ``engaged``), and the ids of up to 25 of them, most engaged
  first;
- ``qualified`` (marketing-qualified account): score ≥ ``qualified.score``, at least
  ``qualified.roles`` roles with an engaged contact, and every ``qualified.require`` role engaged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from leadscore.core import grading
from leadscore.core.accounts_schema import ROLE_ID, AccountsDoc, shipped_free_email_domains
from leadscore.core.conditions import referenced_fields
from leadscore.core.types import Comparison, Condition, FitRule
from leadscore.core.vectorized import condition_expr, with_optional_columns

Rollup = Literal["top", "max", "average"]
COVERAGE_IDS = 25
"""How many contact ids a role's coverage lists (the most engaged first)."""

SCORE_SCHEMA: dict[str, pl.DataType] = {
    "account_id": pl.Int64(),
    "fit": pl.Float64(),
    "engagement": pl.Float64(),
    "score": pl.Float64(),
    "grade": pl.String(),
    "temperature": pl.String(),
    "coverage": pl.String(),
    "contacts": pl.Int64(),
    "roles_engaged": pl.Int64(),
    "qualified": pl.Boolean(),
}
"""What :func:`score_accounts` returns (``coverage`` as JSON text)."""


@dataclass(frozen=True, slots=True)
class Role:
    """A buying-committee role: the contacts for whom ``where`` holds."""

    id: str
    where: Condition


@dataclass(frozen=True, slots=True)
class Qualification:
    score: float
    roles: int
    require: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Accounts:
    """The compiled ``accounts`` section (see :mod:`leadscore.core.accounts_schema`)."""

    attach_by_domain: bool
    free_email: frozenset[str]  # the shipped list and the model's additions
    own_domains: tuple[str, ...]
    fit_max: float
    fit_rules: tuple[FitRule, ...]
    rollup: Rollup
    top_n: int
    roles: tuple[Role, ...]
    engaged: float
    weight_fit: float
    weight_engagement: float
    grades: tuple[tuple[str, float], ...]
    temperature: tuple[tuple[str, float], ...]
    qualified: Qualification | None

    def own_domain_exclusion(self) -> Condition | None:
        """``{field: traits.email_domain, in: own_domains}``: our staff are never scored."""
        return Comparison("traits.email_domain", "in", self.own_domains) if self.own_domains else None


ConditionParser = Callable[[Any, str], Condition | None]
IssueSink = Callable[[str, str], None]

_CONTACT_ROOTS = ("traits.", "account.")


def compile_accounts(doc: AccountsDoc, condition: ConditionParser, issue: IssueSink) -> Accounts:
    """The section compiled; ``condition(raw, path)`` parses a condition (None when it is
    malformed, the parser having reported it) and ``issue(path, reason)`` reports a problem."""
    fit_rules = []
    seen: dict[str, int] = {}
    for i, rule in enumerate(doc.fit.rules):
        path = f"accounts.fit.rules[{i}]"
        if rule.id in seen:
            issue(f"{path}.id", f"duplicate rule id '{rule.id}' (first used at accounts.fit.rules[{seen[rule.id]}].id)")
        seen.setdefault(rule.id, i)
        where = condition(rule.where, f"{path}.where")
        if where is None:
            continue
        outside = sorted(field for field in referenced_fields(where) if not field.startswith("account."))
        if outside:
            issue(f"{path}.where", f"account fit rules read the account's fields (account.*), not '{outside[0]}'")
            continue
        fit_rules.append(FitRule(rule.id, where, rule.points, rule.description))
    roles = []
    for role_id, raw in doc.committee.items():
        path = f"accounts.committee.{role_id}"
        if not ROLE_ID.fullmatch(role_id):
            issue(path, f"bad role name '{role_id}': use lower-case letters, digits and _ (e.g. decision_maker)")
            continue
        where = condition(raw, path)
        if where is None:
            continue
        outside = sorted(field for field in referenced_fields(where) if not field.startswith(_CONTACT_ROOTS))
        if outside:
            issue(path, f"committee roles read contact fields (traits.*, account.*), not '{outside[0]}'")
            continue
        roles.append(Role(role_id, where))
    qualified = None
    if doc.qualified is not None:
        declared = ", ".join(doc.committee) or "none declared under accounts.committee"
        if doc.qualified.roles > len(doc.committee):
            issue("accounts.qualified.roles",
                  f"asks for {doc.qualified.roles} engaged roles but {len(doc.committee)} are declared ({declared})")
        for i, role_id in enumerate(doc.qualified.require):
            if role_id not in doc.committee:
                issue(f"accounts.qualified.require[{i}]", f"unknown role '{role_id}' (roles: {declared})")
        qualified = Qualification(doc.qualified.score, doc.qualified.roles, tuple(doc.qualified.require))
    for i, domain in enumerate(doc.own_domains):
        if domain in doc.free_email or domain in shipped_free_email_domains():
            issue(f"accounts.own_domains[{i}]", f"{domain} is a free e-mail provider, not a company domain")
    total = doc.combined.fit + doc.combined.engagement
    return Accounts(
        attach_by_domain=doc.attach_by_domain,
        free_email=shipped_free_email_domains() | frozenset(doc.free_email),
        own_domains=tuple(doc.own_domains),
        fit_max=doc.fit.max,
        fit_rules=tuple(fit_rules),
        rollup=doc.engagement.rollup,
        top_n=doc.engagement.n,
        roles=tuple(roles),
        engaged=doc.engaged,
        weight_fit=doc.combined.fit / total,
        weight_engagement=doc.combined.engagement / total,
        grades=(("A", doc.grades.A), ("B", doc.grades.B), ("C", doc.grades.C)),
        temperature=(("hot", doc.temperature.hot), ("warm", doc.temperature.warm)),
        qualified=qualified,
    )


# --------------------------------------------------------------------------- attachment


def domain_of_email(email: pl.Expr) -> pl.Expr:
    """The lower-cased text after the last ``@`` (null without one), as ``traits.email_domain``."""
    return email.str.strip_chars().str.extract(r"@([^@]*)$", 1).str.to_lowercase()


def attachable_domains(accounts: Accounts, contacts: pl.DataFrame) -> pl.DataFrame:
    """``[contact_id, domain]`` of the contacts of a ``[contact_id, email]`` frame that may join
    an account by their e-mail's domain: neither a free-mail provider nor one of ours."""
    blocked = sorted(accounts.free_email | frozenset(accounts.own_domains))
    domain = domain_of_email(pl.col("email"))
    return (
        contacts.select(pl.col("contact_id").cast(pl.Int64), domain.alias("domain"))
        .filter(pl.col("domain").is_not_null() & (pl.col("domain") != "") & ~pl.col("domain").is_in(blocked))
    )


# --------------------------------------------------------------------------- scoring


def account_fit(accounts: Accounts, frame: pl.DataFrame) -> pl.DataFrame:
    """``[account_id, fit_raw, fit]`` of an ``[account_id, account]`` frame (traits JSON)."""
    terms = [pl.when(condition_expr(rule.where)).then(float(rule.points)).otherwise(0.0) for rule in accounts.fit_rules]
    raw = pl.sum_horizontal(terms) if terms else pl.lit(0.0)
    return (
        with_optional_columns(frame, ("traits", "account"))
        .lazy()
        .select(pl.col("account_id").cast(pl.Int64), raw.cast(pl.Float64).alias("fit_raw"))
        .with_columns(grading.normalise_expr(pl.col("fit_raw"), accounts.fit_max).alias("fit"))
        .collect()
    )


def _rollup(accounts: Accounts) -> pl.Expr:
    engagement = pl.col("engagement")
    if accounts.rollup == "max":
        return engagement.max()
    if accounts.rollup == "average":
        return engagement.mean()
    return engagement.head(accounts.top_n).sum().clip(0.0, 100.0)  # members sorted most engaged first


def score_accounts(accounts: Accounts, frame: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """Scores (:data:`SCORE_SCHEMA`) of every account of ``frame`` (``[account_id, account]``).

    ``members``: ``[contact_id, account_id, traits, account, engagement, excluded]``, the
    contacts of these accounts with their engagement score (0..100) at the moment of reading;
    excluded contacts are left out of every figure.
    """
    roles = accounts.roles
    flags = [(condition_expr(role.where)).alias(f"_role_{i}") for i, role in enumerate(roles)]
    counted = (
        with_optional_columns(members, ("traits", "account"))
        .lazy()
        .filter(~pl.col("excluded").fill_null(False))
        .with_columns(pl.col("engagement").fill_null(0.0).cast(pl.Float64), *flags)
        .sort(["account_id", "engagement", "contact_id"], descending=[False, True, False])
    )
    engaged = pl.col("engagement") >= accounts.engaged
    per_role = []
    for i in range(len(roles)):
        holds = pl.col(f"_role_{i}")
        per_role += [
            holds.sum().cast(pl.Int64).alias(f"_present_{i}"),
            (holds & engaged).sum().cast(pl.Int64).alias(f"_engaged_{i}"),
            pl.col("contact_id").filter(holds).head(COVERAGE_IDS).alias(f"_contacts_{i}"),
        ]
    rolled = counted.group_by("account_id", maintain_order=True).agg(
        _rollup(accounts).alias("engagement"), pl.len().cast(pl.Int64).alias("contacts"), *per_role
    )
    fit = account_fit(accounts, frame).lazy()
    with_members = fit.join(rolled, on="account_id", how="left").with_columns(
        pl.col("engagement").fill_null(0.0), pl.col("contacts").fill_null(0)
    )
    role_engaged = [pl.col(f"_engaged_{i}").fill_null(0) > 0 for i in range(len(roles))]
    roles_engaged = pl.sum_horizontal([flag.cast(pl.Int64) for flag in role_engaged]) if roles else pl.lit(0)
    coverage = _coverage_json(roles)
    score = accounts.weight_fit * pl.col("fit") + accounts.weight_engagement * pl.col("engagement")
    scored = with_members.with_columns(score.alias("score"), roles_engaged.cast(pl.Int64).alias("roles_engaged"))
    qualification = accounts.qualified
    if qualification is None:
        qualified: pl.Expr = pl.lit(False)
    else:
        required = [flag for role, flag in zip(roles, role_engaged, strict=True) if role.id in qualification.require]
        qualified = (pl.col("score") >= qualification.score) & (pl.col("roles_engaged") >= qualification.roles)
        if required:
            qualified = qualified & pl.all_horizontal(required)
    return (
        scored.select(
            "account_id",
            "fit",
            "engagement",
            "score",
            grading.label_expr(pl.col("fit"), accounts.grades, grading.BELOW_FIT_GRADES).alias("grade"),
            grading.label_expr(pl.col("score"), accounts.temperature, grading.BELOW_TEMPERATURE).alias("temperature"),
            coverage.alias("coverage"),
            "contacts",
            "roles_engaged",
            qualified.fill_null(False).alias("qualified"),
        )
        .collect()
        .cast(SCORE_SCHEMA)
    )


def _coverage_json(roles: tuple[Role, ...]) -> pl.Expr:
    """``{"role": {"present": n, "engaged": n, "contacts": [ids]}, ...}`` as JSON text."""
    if not roles:
        return pl.lit("{}", dtype=pl.String)
    per_role = [
        pl.struct(
            pl.col(f"_present_{i}").fill_null(0).alias("present"),
            pl.col(f"_engaged_{i}").fill_null(0).alias("engaged"),
            pl.col(f"_contacts_{i}").fill_null(pl.lit([], dtype=pl.List(pl.Int64))).alias("contacts"),
        ).alias(role.id)
        for i, role in enumerate(roles)
    ]
    return pl.struct(per_role).struct.json_encode()
