"""The scoring model file: read the YAML, validate it, compile it into a :class:`ScoringModel`.

Errors name the file, the key path (``engagement.rules[2].half_life``), the reason and, when the
YAML position is known, the line; all problems pydantic finds are reported together. The YAML
is read with the 1.2 rule for booleans (only ``true``/``false``), so ``on: Demo Requested`` is a
key named ``on`` and ``equals: yes`` is the text ``yes``.

Semantics not visible in the schema:

- ``machine`` absent: :data:`~leadscore.core.model_schema.DEFAULT_MACHINE` flags machine
  activity (bots, crawlers, headless browsers, link previews, mail scanners by user agent, or
  ``properties.machine_activity == true``); ``machine: null`` turns detection off.
- ``limit: once`` is ``{count: 1}``; ``{count: N}`` without ``per`` counts N events ever.
- ``accounts.own_domains`` adds ``{field: traits.email_domain, in: own_domains}`` to
  ``exclude``: our own staff score 0 and no automation acts on them. Without an ``accounts``
  section, ``ScoringModel.accounts`` is None and no account is scored.
- ``combined`` weights are normalised to sum 1; grades, levels and temperatures are kept
  ordered from the highest threshold to the lowest.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from leadscore.core.account_scoring import compile_accounts
from leadscore.core.conditions import ConditionError, parse_condition
from leadscore.core.durations import parse_duration
from leadscore.core.lifecycle import Lifecycle, compile_lifecycle
from leadscore.core.lifecycle_schema import LifecycleDoc
from leadscore.core.stage_conditions import DEFAULT_RULES, compile_rules
from leadscore.core.model_schema import DEFAULT_MACHINE, SUPPORTED_VERSIONS, ModelDoc, allowed_keys
from leadscore.core.routing import build_routing
from leadscore.core.types import Condition, EngagementRule, FitRule, Limit, ScoringModel

_PATH_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


@dataclass(frozen=True, slots=True)
class ModelIssue:
    """One problem in a model file: where (key path, line) and why."""

    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        line = f" (line {self.line})" if self.line is not None else ""
        return f"{where}{self.reason}{line}"


class ModelError(Exception):
    """A model file that cannot be used; ``issues`` lists every problem found."""

    def __init__(self, source: str, issues: Iterable[ModelIssue]) -> None:
        self.source = source
        self.issues = list(issues)
        super().__init__("\n".join(f"{source}: {issue}" for issue in self.issues))


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans: ``on``, ``off``, ``yes``, ``no`` stay text."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_model(path: str | Path) -> ScoringModel:
    """Read and compile the model file at ``path``; raise :class:`ModelError` if it is invalid."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(str(path), [ModelIssue("", f"cannot read the file: {exc}")]) from None
    return parse_model(text, source=str(path))


def parse_model(text: str, source: str = "<string>") -> ScoringModel:
    """Compile a model file's text; raise :class:`ModelError` listing every problem found."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader subclass
        tree = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ModelError(source, [ModelIssue("", f"YAML syntax error: {problem}", line)]) from None
    if data is None:
        raise ModelError(source, [ModelIssue("", "the file is empty: expected a scoring model mapping")])
    if not isinstance(data, dict):
        raise ModelError(source, [ModelIssue("", f"expected a mapping at the top level, got {type(data).__name__}")])
    _check_version(data, source, tree)
    try:
        doc = ModelDoc.model_validate(data)
    except ValidationError as exc:
        raise ModelError(source, [_issue_from_pydantic(error, tree) for error in exc.errors()]) from None
    issues: list[ModelIssue] = _duplicate_keys(tree, ("routing", "teams"))
    model = _compile(doc, source, issues)
    if issues:
        raise ModelError(source, [_with_line(issue, tree) for issue in issues])
    return model


def _check_version(data: Mapping[Any, Any], source: str, tree: yaml.Node | None) -> None:
    supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
    if "version" not in data:
        raise ModelError(source, [ModelIssue("version", f"required key missing (supported versions: {supported})")])
    version = data["version"]
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        issue = ModelIssue("version", f"unsupported version {version!r} (supported versions: {supported})")
        raise ModelError(source, [_with_line(issue, tree)])


# --------------------------------------------------------------------------- compilation


def _compile(doc: ModelDoc, source: str, issues: list[ModelIssue]) -> ScoringModel:
    lists = {name: tuple(values) for name, values in doc.lists.items()}

    def condition(raw: Any, path: str) -> Condition | None:
        try:
            return parse_condition(raw, lists, path)
        except ConditionError as exc:
            issues.append(ModelIssue(exc.path, exc.reason))
            return None

    seen: dict[str, str] = {}

    def unique(rule_id: str, path: str) -> None:
        if rule_id in seen:
            issues.append(ModelIssue(f"{path}.id", f"duplicate rule id '{rule_id}' (first used at {seen[rule_id]})"))
        else:
            seen[rule_id] = f"{path}.id"

    fit_rules = []
    for i, fit_doc in enumerate(doc.fit.rules):
        path = f"fit.rules[{i}]"
        unique(fit_doc.id, path)
        where = condition(fit_doc.where, f"{path}.where")
        if where is not None:
            fit_rules.append(FitRule(fit_doc.id, where, fit_doc.points, fit_doc.description))

    default_half_life = parse_duration(doc.engagement.half_life)
    engagement_rules = []
    for i, rule_doc in enumerate(doc.engagement.rules):
        path = f"engagement.rules[{i}]"
        unique(rule_doc.id, path)
        where = None if rule_doc.where is None else condition(rule_doc.where, f"{path}.where")
        if rule_doc.group is not None and rule_doc.group not in doc.engagement.groups:
            known = ", ".join(sorted(doc.engagement.groups)) or "none defined under engagement.groups"
            issues.append(ModelIssue(f"{path}.group", f"unknown group '{rule_doc.group}' (groups: {known})"))
        limit = None
        if rule_doc.limit is not None:
            per = None if rule_doc.limit.per is None else parse_duration(rule_doc.limit.per)
            limit = Limit(count=rule_doc.limit.count, per=per)
        half_life = default_half_life if rule_doc.half_life is None else parse_duration(rule_doc.half_life)
        engagement_rules.append(
            EngagementRule(
                id=rule_doc.id,
                on=rule_doc.on,
                points=rule_doc.points,
                half_life=half_life,
                where=where,
                cap=rule_doc.cap,
                limit=limit,
                group=rule_doc.group,
                machine=rule_doc.machine,
                description=rule_doc.description,
            )
        )

    if "machine" in doc.model_fields_set:
        machine = None if doc.machine is None else condition(doc.machine, "machine")
    else:
        machine = parse_condition(DEFAULT_MACHINE, lists, "machine")
    exclude = [condition(raw, f"exclude[{i}]") for i, raw in enumerate(doc.exclude)]
    accounts = None
    if "accounts" in doc.model_fields_set:
        accounts = compile_accounts(doc.accounts, condition, lambda path, reason: issues.append(ModelIssue(path, reason)))
        exclude.append(accounts.own_domain_exclusion())  # our own staff: never scored nor automated

    total_weight = doc.combined.fit + doc.combined.engagement
    levels = doc.grades.engagement
    return ScoringModel(
        version=doc.version,
        name=doc.name,
        fit_max=doc.fit.max,
        fit_rules=tuple(fit_rules),
        engagement_max=doc.engagement.max,
        default_half_life=default_half_life,
        engagement_rules=tuple(engagement_rules),
        group_caps={name: group.cap for name, group in doc.engagement.groups.items()},
        machine=machine,
        exclude=tuple(c for c in exclude if c is not None),
        weight_fit=doc.combined.fit / total_weight,
        weight_engagement=doc.combined.engagement / total_weight,
        fit_grades=(("A", doc.grades.fit.A), ("B", doc.grades.fit.B), ("C", doc.grades.fit.C)),
        engagement_levels=(("1", levels.level_1), ("2", levels.level_2), ("3", levels.level_3)),
        temperature=(("hot", doc.temperature.hot), ("warm", doc.temperature.warm)),
        source=source,
        raw=doc.model_dump(mode="json", by_alias=True, exclude_unset=True),
        lifecycle=_lifecycle(doc.lifecycle, lists, [rule.id for rule in engagement_rules], issues),
        accounts=accounts,
        routing=build_routing(
            doc.routing, compile_condition=condition, stages=compile_lifecycle(doc.lifecycle).all_stages,
            report=lambda path, reason: issues.append(ModelIssue(path, reason)),
        ),
    )


def _lifecycle(doc: LifecycleDoc, lists: Mapping[str, Any], rule_ids: list[str], issues: list[ModelIssue]) -> Lifecycle:
    """The lifecycle with its automatic rules compiled (the built-in ``known`` rule when the
    section gives no ``rules``; see :data:`~leadscore.core.stage_conditions.DEFAULT_RULES`)."""
    lifecycle = compile_lifecycle(doc)
    given = "rules" in doc.model_fields_set
    raw_rules = [rule.model_dump() for rule in doc.rules] if given else list(DEFAULT_RULES)
    rules, problems = compile_rules(raw_rules, lists, rule_ids, lifecycle)
    issues.extend(ModelIssue(problem.path, problem.reason) for problem in problems)
    return dataclasses.replace(lifecycle, rules=rules)


def _duplicate_keys(tree: yaml.Node | None, path: tuple[str, ...]) -> list[ModelIssue]:
    """A key written twice in the mapping at ``path`` (YAML keeps the last one silently)."""
    node = tree
    for key in path:
        if not isinstance(node, yaml.MappingNode):
            return []
        node = next((value for name, value in node.value if str(name.value) == key), None)
    if not isinstance(node, yaml.MappingNode):
        return []
    seen: set[str] = set()
    issues = []
    for name, _value in node.value:
        key = str(name.value)
        if key in seen:
            issues.append(ModelIssue(f"{'.'.join(path)}.{key}", f"'{key}' is declared twice", name.start_mark.line + 1))
        seen.add(key)
    return issues


# --------------------------------------------------------------------------- error reporting

_TYPE_REASONS = {
    "float_type": "expected a number",
    "int_type": "expected a whole number",
    "string_type": "expected a text",
    "bool_type": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
}


def _issue_from_pydantic(error: Mapping[str, Any], tree: yaml.Node | None) -> ModelIssue:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = allowed_keys(loc[:-1])
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        reason = f"unknown key '{loc[-1]}'{hint}"
    elif kind == "missing":
        reason = "required key missing"
    elif kind in _TYPE_REASONS:
        reason = f"{_TYPE_REASONS[kind]}, got {_describe(error.get('input'))}"
    elif kind == "value_error":
        reason = str(error["msg"]).removeprefix("Value error, ")
    else:
        message = str(error["msg"]).replace("Input should be", "must be")
        reason = f"{message} (got {_describe(error.get('input'))})"
    return _with_line(ModelIssue(_path(loc), reason), tree)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _path(loc: Iterable[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _with_line(issue: ModelIssue, tree: yaml.Node | None) -> ModelIssue:
    if tree is None or issue.line is not None:
        return issue
    node: yaml.Node = tree
    line = None
    for index, key in _PATH_PART.findall(issue.path):
        child = None
        if index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            child = node.value[int(index)]
            line = child.start_mark.line + 1
        elif key and isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == key:
                    child, line = value_node, key_node.start_mark.line + 1
                    break
        if child is None:
            break
        node = child
    return ModelIssue(issue.path, issue.reason, line)
