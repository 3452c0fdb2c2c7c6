"""Issue 11: follow-up rule files (validation, delays), the sending window, consent (pure)."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from harness import MAILFLOW, PROJECT

from mailflow.errors import ProblemsError
from mailflow.followups.checks import check_templates
from mailflow.followups.conditions import Facts
from mailflow.followups.rows import rows_for
from mailflow.followups.rules import AfterSpec, RuleSpec, WhenSpec, load_followups
from mailflow.followups.vocabulary import VARIABLES
from mailflow.followups.window import Window
from mailflow.pool import consent
from mailflow.settings.durations import Delay, parse_delay
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES

TOKYO = ZoneInfo("Asia/Tokyo")

THREE_MISTAKES = """\
[[followup]]
name = "rescout"
after = { event = "rejected", delay = "6months" }
send = "rescout.txt"
subject = "ご案内"
purpose = "rescout"
oncee = true
"""


def _rules_dir(tmp_path: Path, text: str) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "followups.toml").write_text(text, encoding="utf-8")
    return rules


def test_shipped_rules_and_their_templates_have_no_problems() -> None:
    rules = load_followups(SHIPPED_RULES, SHIPPED_TEMPLATES)
    assert [r.name for r in rules.rules] == ["rescout-6-months", "rescout-1-year",
                                             "relay-reminder-7-days", "relay-invitation-late",
                                             "opening-match"]
    assert check_templates(SHIPPED_RULES, SHIPPED_TEMPLATES) == []


def test_typo_key_bad_delay_and_unknown_template_reported_at_once_with_lines(
        tmp_path: Path) -> None:
    rules = _rules_dir(tmp_path, THREE_MISTAKES)
    with pytest.raises(ProblemsError) as caught:
        load_followups(rules, SHIPPED_TEMPLATES)
    lines = [str(p) for p in caught.value.problems]
    path = rules / "followups.toml"
    assert len(lines) == 3, lines
    assert lines[0].startswith(f"{path}:3: followup[0].after.delay: bad delay; "
                               "did you mean '6mo'?")
    assert lines[1].startswith(f"{path}:4: followup[0].send: unknown template 'rescout.txt'; "
                               "did you mean 'rescout.txt.j2'?")
    assert lines[2] == f"{path}:7: followup[0].oncee: unknown key; did you mean 'once'?"


def test_cli_rules_check_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, rules)
    (rules / "followups.toml").write_text(THREE_MISTAKES, encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(f'[rules]\ndir = "{rules}"\ntemplates_dir = "{SHIPPED_TEMPLATES}"\n')
    for command in (["rules", "check"], ["check"]):
        done = subprocess.run([*MAILFLOW, *command, "-c", str(config)], capture_output=True,
                              text=True)
        assert done.returncode == 2, done.stderr
        errors = done.stderr.strip().splitlines()
        assert len(errors) == 3, errors
        assert all(re.match(rf"mailflow: error: {re.escape(str(rules))}/followups.toml:\d+: ", e)
                   for e in errors)
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("text", "hint"), [
    ('after = { event = "rejeted", delay = "7d" }', "did you mean 'rejected'?"),
    ('after = { field = "rejection_at", delay = "7d" }', "did you mean 'rejection.at'?"),
    ('after = { event = "rejected", field = "created_at", delay = "7d" }', "give `event` or"),
    ('after = { event = "rejected", delay = "7days" }', "did you mean '7d'?"),
    ('after = { event = "rejected", delay = "2 weeks" }', "did you mean '2w'?"),
    ('after = { event = "rejected", delay = "1year" }', "did you mean '1y'?"),
    ('after = { event = "rejected", delay = "6m" }', "did you mean '6mo'?"),
    ('after = { event = "rejected", delay = "soon" }', "expected a number and a unit"),
])
def test_bad_triggers_and_delays_say_what_was_meant(tmp_path: Path, text: str,
                                                    hint: str) -> None:
    rules = _rules_dir(tmp_path, f'[[followup]]\nname = "x"\n{text}\ntag_add = ["t"]\n')
    with pytest.raises(ProblemsError) as caught:
        load_followups(rules, SHIPPED_TEMPLATES)
    assert hint in str(caught.value)
    assert caught.value.problems[0].line == 3


@pytest.mark.parametrize(("body", "message"), [
    ('after = { event = "rejected", delay = "7d" }\n', "needs an action"),
    ('after = { event = "rejected", delay = "7d" }\nsend = "rescout.txt.j2"\nsubject = "x"\n',
     "needs a `purpose`"),
    ('after = { event = "rejected", delay = "7d" }\ntag_add = ["a"]\n'
     'when = { relay_status = ["clickd"] }\n', "did you mean 'clicked'?"),
    ('after = { event = "rejected", delay = "7d" }\nsend = "rescout.txt.j2"\n'
     'purpose = "rescout"\nsubject = "{{ compnay_name }}"\n', "did you mean 'company_name'?"),
    ('after = { event = "rejected", delay = "7d" }\ntag_add = ["a"]\ncatch_up = "3 days"\n',
     "did you mean '3d'?"),
])
def test_rule_level_problems(tmp_path: Path, body: str, message: str) -> None:
    rules = _rules_dir(tmp_path, f'[[followup]]\nname = "x"\n{body}')
    with pytest.raises(ProblemsError, match=re.escape(message)):
        load_followups(rules, SHIPPED_TEMPLATES)


def test_duplicate_names_and_a_missing_file(tmp_path: Path) -> None:
    rule = ('[[followup]]\nname = "x"\nafter = { event = "applied", delay = "1d" }\n'
            'tag_add = ["a"]\n')
    rules = _rules_dir(tmp_path, rule + "\n" + rule)
    with pytest.raises(ProblemsError, match=r"followups.toml:7: followup name 'x' used twice"):
        load_followups(rules, SHIPPED_TEMPLATES)
    assert load_followups(tmp_path / "nowhere", SHIPPED_TEMPLATES).rules == ()


def test_a_broken_template_is_reported_with_its_line(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "mine.txt.j2").write_text("{{ candidate_name }}様\n\n{{ relay_lnk }}\n")
    rules = _rules_dir(tmp_path, '[[followup]]\nname = "x"\n'
                       'after = { event = "applied", delay = "1d" }\nsend = "mine.txt.j2"\n'
                       'subject = "s"\npurpose = "p"\n')
    problems = [str(p) for p in check_templates(rules, templates)]
    assert problems == [f"{templates}/mine.txt.j2:3: unknown variable 'relay_lnk'; "
                        "did you mean 'relay_link'?"]


def test_every_template_variable_is_documented() -> None:
    readme = (SHIPPED_TEMPLATES / "README.md").read_text(encoding="utf-8")
    for name in VARIABLES:
        assert f"`{name}`" in readme, name


def test_every_rule_key_is_documented_in_the_readme_and_the_shipped_file() -> None:
    reference = (PROJECT / "docs" / "reference.md").read_text(encoding="utf-8")
    section = reference[reference.index("### `followups.toml`"):]
    shipped = (SHIPPED_RULES / "followups.toml").read_text(encoding="utf-8")
    keys = [*RuleSpec.model_fields, *(f"after.{k}" for k in AfterSpec.model_fields),
            *(f"when.{k}" for k in WhenSpec.model_fields)]
    for key in keys:
        assert f"`{key}`" in section, key
        assert key.rpartition(".")[2] in shipped, key


# -- delays -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "delay"), [("12h", Delay(12, "h")), ("7d", Delay(7, "d")),
                                             ("2w", Delay(2, "w")), ("6mo", Delay(6, "mo")),
                                             ("1y", Delay(1, "y"))])
def test_delays(text: str, delay: Delay) -> None:
    assert parse_delay(text) == delay


def test_months_count_on_the_local_calendar() -> None:
    end_of_august = datetime(2025, 8, 31, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
    assert Delay(6, "mo").after(end_of_august, TOKYO) == datetime(2026, 2, 28, 10, 0,
                                                                  tzinfo=TOKYO)
    assert Delay(1, "y").after(datetime(2024, 2, 29, 3, tzinfo=UTC), TOKYO).day == 28
    assert Delay(7, "d").before(datetime(2025, 1, 8, tzinfo=UTC), TOKYO) == datetime(
        2025, 1, 1, tzinfo=UTC)


# -- the sending window -----------------------------------------------------------------------

WINDOW = Window(["mon", "tue", "wed", "thu", "fri"], "10:00", "18:00", TOKYO, "JP")


def tokyo(*args: int) -> datetime:
    return datetime(*args, tzinfo=TOKYO)  # type: ignore[misc]


def test_window_skips_japanese_holidays_weekends_and_nights() -> None:
    culture_day = tokyo(2025, 11, 3, 11, 0)  # 文化の日, a Monday
    assert WINDOW.opening(culture_day) == tokyo(2025, 11, 4, 10, 0)
    assert WINDOW.opening(tokyo(2025, 11, 7, 19, 0)) == tokyo(2025, 11, 10, 10, 0)
    assert WINDOW.opening(tokyo(2025, 11, 5, 7, 30)) == tokyo(2025, 11, 5, 10, 0)
    inside = tokyo(2025, 11, 5, 15, 0)
    assert WINDOW.opening(inside) == inside
    golden_week = tokyo(2025, 5, 2, 18, 30)  # Friday evening before 5/3-5/6
    assert WINDOW.opening(golden_week) == tokyo(2025, 5, 7, 10, 0)
    new_year = tokyo(2026, 1, 1, 12, 0)
    assert WINDOW.opening(new_year) == tokyo(2026, 1, 2, 10, 0)


# -- consent ----------------------------------------------------------------------------------

def test_notified_purposes_hold_unless_withdrawn_and_a_grant_opens_one() -> None:
    candidate: dict[str, object] = {"consents": {}}
    notified = ["selection", "rescout"]
    assert consent.state(candidate, "rescout", notified).holds
    assert not consent.state(candidate, "career_relay", notified).holds
    consent.record(candidate, "rescout", False, "2025-06-01T00:00:00.000000Z", "mail")
    held = consent.state(candidate, "rescout", notified)
    assert not held.holds and "withdrawn 2025-06-01 (mail)" in held.why
    consent.record(candidate, "career_relay", True, "2025-06-01T00:00:00.000000Z", "form")
    assert consent.state(candidate, "career_relay", notified).holds


# -- planning ---------------------------------------------------------------------------------

def test_only_a_human_click_plans_the_reminder() -> None:
    rules = load_followups(SHIPPED_RULES, SHIPPED_TEMPLATES)
    human = {"candidate_id": "c1", "type": "clicked", "at": "2025-06-02T01:00:00.000000Z",
             "data": {"verdict": "human"}}
    scanner = {**human, "data": {"verdict": "scanner"}}
    now = "2025-06-02T01:00:00.000000Z"
    rows = rows_for(rules, human, None, TOKYO, now)
    assert [(r["rule"], r["due_at"]) for r in rows] == [
        ("relay-reminder-7-days", "2025-06-09T01:00:00.000000Z")]
    assert rows_for(rules, scanner, None, TOKYO, now) == []


def test_conditions_say_why_they_do_not_hold() -> None:
    rule = load_followups(SHIPPED_RULES, SHIPPED_TEMPLATES).get("rescout-6-months")
    assert rule is not None
    candidate = {"status": "rejected", "rescout_ok": True, "reapplied": False,
                 "relay_status": "invited", "emails": ["a@example.net"], "consents": {}}
    assert rule.fails(Facts(candidate, frozenset({"rescout"}))) is None
    assert "no consent for 'rescout'" in str(rule.fails(Facts(candidate, frozenset())))
    assert rule.fails(Facts({**candidate, "relay_status": "hired_elsewhere"},
                            frozenset({"rescout"}))) == "relay_status is hired_elsewhere"
    gone = {**candidate, "undeliverable": ["a@example.net"]}
    assert rule.fails(Facts(gone, frozenset({"rescout"}))) == "no deliverable address"
