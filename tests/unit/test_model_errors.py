"""Model files that must be rejected, each with the key path and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadscore.core.model import ModelError, ModelIssue, load_model, parse_model

from test_model import REFERENCE, minimal


def issues_of(text: str) -> list[ModelIssue]:
    with pytest.raises(ModelError) as caught:
        parse_model(text, source="bad.yml")
    assert caught.value.source == "bad.yml"
    return caught.value.issues


def single_issue(text: str) -> ModelIssue:
    issues = issues_of(text)
    assert len(issues) == 1, issues
    return issues[0]


def assert_issue(text: str, path: str, reason: str) -> ModelIssue:
    issue = single_issue(text)
    assert issue.path == path
    assert reason in issue.reason, issue.reason
    return issue


def test_error_message_names_file_path_reason_and_line() -> None:
    text = REFERENCE.replace("half_life: 60d", "half_life: 3 days")
    with pytest.raises(ModelError) as caught:
        parse_model(text, source="examples/x.yml")
    message = str(caught.value)
    assert message.startswith(
        "examples/x.yml: engagement.rules[2].half_life: bad duration '3 days' (use Ns, Nm, Nh, Nd, Nw or never)"
    )
    line = text.splitlines().index("      half_life: 3 days") + 1
    assert caught.value.issues[0].line == line
    assert message.endswith(f"(line {line})")


def test_unknown_key_is_named_with_the_allowed_keys() -> None:
    issue = assert_issue(REFERENCE.replace("cap: 15 ", "capp: 15 "), "engagement.rules[0].capp", "unknown key 'capp'")
    assert "allowed: id, on, where, points, cap, limit, half_life, group, machine, description" in issue.reason


def test_unknown_top_level_key_and_group_key() -> None:
    assert_issue(minimal(scoring="{}"), "scoring", "unknown key 'scoring' (allowed: version, name, description")
    text = minimal(engagement="{max: 5, half_life: 1d, groups: {email: {cap: 3, limt: 2}}, rules: []}")
    assert_issue(text, "engagement.groups.email.limt", "unknown key 'limt' (allowed: cap, description)")


def test_wrong_type() -> None:
    assert_issue(REFERENCE.replace("points: 20", "points: twenty"), "fit.rules[0].points", "expected a number, got 'twenty'")
    assert_issue(minimal(name="[a, b]"), "name", "expected a text")


def test_several_errors_are_reported_together() -> None:
    text = REFERENCE.replace("points: 20", "points: twenty").replace("max: 100 ", "max: 0 ").replace("A: 75", "A: 10")
    paths = {issue.path for issue in issues_of(text)}
    assert paths == {"fit.rules[0].points", "engagement.max", "grades.fit"}


def test_bad_regex() -> None:
    text = REFERENCE.replace('matches: "^/pricing"', 'matches: "^/(pricing"')
    assert_issue(text, "engagement.rules[1].where.matches", "bad regular expression '^/(pricing'")


def test_bad_duration_in_a_limit_and_as_a_bare_number() -> None:
    assert_issue(REFERENCE.replace("per: 1d", "per: 1 day"), "engagement.rules[1].limit.per", "bad duration '1 day'")
    assert_issue(REFERENCE.replace("half_life: 30d", "half_life: 30"), "engagement.half_life", "bad duration 30")


def test_unknown_list_name() -> None:
    text = REFERENCE.replace("in: free_email", "in: free_mail")
    assert_issue(text, "fit.rules[3].where.in", "unknown list 'free_mail' (lists: free_email)")


def test_duplicate_rule_id_across_fit_and_engagement() -> None:
    text = REFERENCE.replace("id: demo-request", "id: mid-market")
    issue = assert_issue(text, "engagement.rules[2].id", "duplicate rule id 'mid-market'")
    assert "fit.rules[2].id" in issue.reason


def test_bad_rule_id_explains_the_allowed_form() -> None:
    assert_issue(REFERENCE.replace("id: email-click", "id: Email Click"), "engagement.rules[0].id", "lower-case letters")


def test_unknown_group() -> None:
    text = REFERENCE.replace("      cap: 15 ", "      group: email\n      cap: 15 ")
    assert_issue(text, "engagement.rules[0].group", "unknown group 'email'")


@pytest.mark.parametrize(
    ("grades", "path"),
    [
        ("{fit: {A: 50, B: 50, C: 25}}", "grades.fit"),
        ("{fit: {A: 75, B: 20, C: 25}}", "grades.fit"),
        ("{engagement: {1: 75, 2: 80, 3: 25}}", "grades.engagement"),
        ("{engagement: {'1': 30, '2': 20, '3': 25}}", "grades.engagement"),
    ],
)
def test_grades_must_decrease_strictly(grades: str, path: str) -> None:
    assert_issue(minimal(grades=grades), path, "thresholds must decrease strictly")


@pytest.mark.parametrize(
    ("grades", "path"),
    [("{fit: {A: 120, B: 50, C: 25}}", "grades.fit.A"), ("{engagement: {1: 75, 2: 50, 3: -1}}", "grades.engagement.3")],
)
def test_grade_thresholds_stay_within_0_and_100(grades: str, path: str) -> None:
    assert_issue(minimal(grades=grades), path, "100" if "120" in grades else "0")


def test_temperature_hot_must_be_above_warm() -> None:
    assert_issue(minimal(temperature="{hot: 40, warm: 40}"), "temperature", "hot must be above warm")


@pytest.mark.parametrize("section", ["fit", "engagement"])
def test_max_must_be_positive(section: str) -> None:
    text = REFERENCE.replace("max: 60 ", "max: 0 ") if section == "fit" else REFERENCE.replace("max: 100 ", "max: -5 ")
    assert_issue(text, f"{section}.max", "greater than 0")


def test_combined_weights() -> None:
    assert_issue(minimal(combined="{fit: -1, engagement: 1}"), "combined.fit", "greater than or equal to 0")
    assert_issue(minimal(combined="{fit: 0, engagement: 0}"), "combined", "cannot both be zero")


def test_yaml_syntax_error_has_a_line() -> None:
    text = REFERENCE.replace("  max: 60 ", "  max: [60 ")
    issue = single_issue(text)
    assert issue.reason.startswith("YAML syntax error")
    assert issue.line is not None and issue.line > 5


@pytest.mark.parametrize(("text", "reason"), [("", "the file is empty"), ("# only a comment\n", "the file is empty"), ("- a\n- b\n", "expected a mapping")])
def test_empty_file_or_not_a_mapping(text: str, reason: str) -> None:
    assert_issue(text, "", reason)


def test_version_missing_or_unsupported() -> None:
    assert_issue(REFERENCE.replace("version: 1\n", ""), "version", "required key missing (supported versions: 1)")
    assert_issue(REFERENCE.replace("version: 1", "version: 2"), "version", "unsupported version 2 (supported versions: 1)")


def test_operator_missing_or_doubled() -> None:
    text = REFERENCE.replace("in: [software, fintech]", "is: software")
    assert_issue(text, "fit.rules[1].where", "unknown key 'is'")
    text = REFERENCE.replace("{field: account.industry, in: [software, fintech]}", "{field: account.industry}")
    assert_issue(text, "fit.rules[1].where", "operator missing")
    text = REFERENCE.replace("{field: account.employees, gte: 50}", "{field: account.employees, gte: 50, lte: 1000}")
    assert_issue(text, "fit.rules[2].where.all[0]", "one operator per comparison")


@pytest.mark.parametrize(
    ("between", "reason"), [("[1000, 50]", "low bound 1000 is above high bound 50"), ("[50]", "pair of numbers"), ("[a, 5]", "pair of numbers")]
)
def test_between_needs_an_ordered_pair_of_numbers(between: str, reason: str) -> None:
    text = REFERENCE.replace(
        "{all: [{field: account.employees, gte: 50}, {field: account.employees, lte: 1000}]}",
        f"{{field: account.employees, between: {between}}}",
    )
    assert_issue(text, "fit.rules[2].where.between", reason)


def test_limit_count_must_be_at_least_one() -> None:
    assert_issue(REFERENCE.replace("count: 3", "count: 0"), "engagement.rules[1].limit.count", "greater than or equal to 1")
    assert_issue(REFERENCE.replace("limit: {count: 3, per: 1d}", "limit: twice"), "engagement.rules[1].limit", "bad limit 'twice'")


def test_points_must_not_be_zero_and_cap_positive() -> None:
    assert_issue(REFERENCE.replace("points: 3\n", "points: 0\n"), "engagement.rules[0].points", "must not be zero")
    assert_issue(REFERENCE.replace("cap: 15 ", "cap: 0 "), "engagement.rules[0].cap", "greater than 0")


def test_errors_in_exclude_and_machine_conditions() -> None:
    assert_issue(minimal(exclude="[{field: traits.email, matches: '('}]"), "exclude[0].matches", "bad regular expression")
    assert_issue(minimal(machine="{field: useragent, matches: bot}"), "machine.field", "unknown field 'useragent'")


def test_missing_required_section() -> None:
    text = minimal()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("fit:"))
    assert_issue(text, "fit", "required key missing")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as caught:
        load_model(tmp_path / "absent.yml")
    assert "cannot read the file" in str(caught.value)
