"""`rules/stages.toml`: mail HR sends (the Sent folder) that moves a candidate to a stage.

Rules are tried in file order; the first whose subject (and body, when given) pattern matches
names the stage. A `#mailflow stage=… interviewer=… rating=… note=…` line in the mail wins over
the rules and adds the interviewer and rating.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from mailflow.errors import Problem, ProblemsError
from mailflow.mail.rewrite.markers import strip_html, strip_plain

if TYPE_CHECKING:  # the parser is not needed to check the rule file (`mailflow check`)
    from mailflow.mail.parse import Mail
from mailflow.settings import tomlpos
from mailflow.settings.validation import Pattern, validate

FILE = "stages.toml"


class StageRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    stage: str = Field(min_length=1)
    subject: Pattern
    body: Pattern | None = None


class StageRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: list[StageRule] = []


@dataclass(frozen=True)
class StageChange:
    stage: str
    rule: str
    interviewer: str = ""
    rating: str = ""
    note: str = ""


def load_stages(rules_dir: Path) -> StageRules:
    path = rules_dir / FILE
    data, positions = tomlpos.load(path)
    return validate(StageRules, data, positions, path)


def check(rules_dir: Path) -> list[Problem]:
    try:
        load_stages(rules_dir)
    except ProblemsError as exc:
        return exc.problems
    return []


def marker_fields(mail: Mail) -> dict[str, str]:
    """The fields of `#mailflow` lines in the mail's plain and HTML parts (plain wins)."""
    fields = dict(strip_html(mail.html).fields) if mail.html else {}
    fields.update(strip_plain(mail.text).fields if mail.text else {})
    return fields


def stage_change(mail: Mail, rules: StageRules) -> StageChange | None:
    """What stage this sent mail moves its recipient to, if any, and which rule said so."""
    fields = marker_fields(mail)
    extra = {k: fields.get(k, "") for k in ("interviewer", "rating", "note")}
    if fields.get("stage"):
        return StageChange(fields["stage"], "#mailflow line", **extra)
    body = mail.readable_text
    for rule in rules.rule:
        if re.search(rule.subject, mail.subject) and (
                rule.body is None or re.search(rule.body, body)):
            return StageChange(rule.stage, rule.name, **extra)
    return None
