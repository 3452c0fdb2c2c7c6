"""`rules/rejection.toml`: the admin's rules, tried in file order, first match wins (pure).

A rule's conditions (all that are given must hold) look at HR's `#mailflow` line, the recipients
(is one a known candidate?), and phrases or patterns in the Subject and HR's own text. The rule
then decides: ``rejection``, ``not_rejection``, or ``evidence`` — the evidence in the mail decides
(`recognise.evidence`: rejection, not, or uncertain). The shipped file lets HR's markers
and the recipients speak first, then the evidence; an admin adds phrase rules before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from mailflow.errors import Problem, ProblemsError
from mailflow.rejection.recognise.wording import normalise
from mailflow.settings import tomlpos
from mailflow.settings.validation import Pattern, names_used_twice, validate

if TYPE_CHECKING:  # facts imports the mail parser: not needed to check the rule file
    from mailflow.rejection.recognise.facts import Outgoing

FILE = "rejection.toml"
NO_RULE = "no-rule"
Decide = Literal["rejection", "not_rejection", "evidence"]


# -- the rule file ---------------------------------------------------------------------------

Phrase = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleSpec(_Strict):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9_\-]+$")
    description: str = ""
    decide: Decide = "rejection"
    marker: Literal["force", "forbid"] | None = None
    recipient: Literal["candidate", "not_candidate"] | None = None
    subject_phrases: list[Phrase] = []
    body_phrases: list[Phrase] = []
    subject_patterns: list[Pattern] = []
    body_patterns: list[Pattern] = []


class RejectionFile(_Strict):
    rule: list[RuleSpec] = Field(min_length=1)


_CONDITION_KEYS = ("marker", "recipient", "subject_phrases", "body_phrases",
                   "subject_patterns", "body_patterns")


# -- conditions: each answers with what hit, or None -------------------------------------------

@dataclass(frozen=True)
class Hit:
    why: str
    phrase: str | None = None


class Condition(Protocol):
    @property
    def name(self) -> str: ...

    def test(self, mail: Outgoing) -> Hit | None: ...


@dataclass(frozen=True)
class Marker:
    want: Literal["force", "forbid"]
    name: str = "marker"

    def test(self, mail: Outgoing) -> Hit | None:
        note = mail.note
        if self.want == "forbid":
            return Hit("#mailflow rejection=no") if note.forbids else None
        if not note.forces:
            return None
        said = " ".join(f"{k}={v}" for k, v in note.fields.items()
                        if k in ("rejection", "reason", "rescout"))
        return Hit(f"#mailflow {said}")


@dataclass(frozen=True)
class Recipient:
    want: Literal["candidate", "not_candidate"]
    name: str = "recipient"

    def test(self, mail: Outgoing) -> Hit | None:
        if self.want == "candidate":
            return Hit(f"recipient {mail.candidate} is a candidate") if mail.candidate else None
        if mail.candidate:
            return None
        shown = ", ".join(mail.recipients) or "none"
        return Hit(f"no recipient is a known candidate ({shown})")


@dataclass(frozen=True)
class Phrases:
    where: Literal["subject", "body"]
    phrases: tuple[str, ...]
    name: str = "phrases"

    def test(self, mail: Outgoing) -> Hit | None:
        text = getattr(mail, self.where).casefold()
        for phrase in self.phrases:
            if normalise(phrase).casefold() in text:
                return Hit(f"{self.where} has {phrase!r}", phrase)
        return None


@dataclass(frozen=True)
class Patterns:
    where: Literal["subject", "body"]
    patterns: tuple[re.Pattern[str], ...]
    name: str = "patterns"

    def test(self, mail: Outgoing) -> Hit | None:
        for pattern in self.patterns:
            found = pattern.search(getattr(mail, self.where))
            if found:
                return Hit(f"{self.where} matches {pattern.pattern!r}", found.group(0))
        return None


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    decide: Decide
    conditions: tuple[Condition, ...]

    def test(self, mail: Outgoing) -> list[Hit] | None:
        """Every condition's hit, or None when one of them does not hold."""
        hits = []
        for condition in self.conditions:
            hit = condition.test(mail)
            if hit is None:
                return None
            hits.append(hit)
        return hits


_WHERE: tuple[Literal["subject", "body"], ...] = ("subject", "body")


def _rule(spec: RuleSpec) -> Rule:
    conditions: list[Condition] = []
    if spec.marker:
        conditions.append(Marker(spec.marker))
    if spec.recipient:
        conditions.append(Recipient(spec.recipient))
    for where in _WHERE:
        phrases = tuple(getattr(spec, f"{where}_phrases"))
        patterns = tuple(re.compile(p, re.IGNORECASE) for p in getattr(spec, f"{where}_patterns"))
        if phrases:
            conditions.append(Phrases(where, phrases))
        if patterns:
            conditions.append(Patterns(where, patterns))
    return Rule(spec.name, spec.description, spec.decide, tuple(conditions))


@dataclass(frozen=True)
class RejectionRules:
    """The rules of `rejection.toml`, compiled, in file order."""

    rules: tuple[Rule, ...]
    path: str = ""


def load_rejection_rules(rules_dir: Path) -> RejectionRules:
    """Load and validate `rejection.toml`; every problem at once as `PATH:LINE: message`."""
    path = rules_dir / FILE
    data, positions = tomlpos.load(path)
    parsed = validate(RejectionFile, data, positions, path)
    problems = []
    for index, spec in enumerate(parsed.rule):
        if spec.decide != "evidence" and not any(getattr(spec, key) for key in _CONDITION_KEYS):
            line = tomlpos.line_of(positions, ("rule", index))
            message = (f"rule[{index}] ({spec.name}): needs a condition: "
                       f"{', '.join(_CONDITION_KEYS)}")
            problems.append(Problem(str(path), line, message))
    problems += names_used_twice([spec.name for spec in parsed.rule], "rule", "rule",
                                 positions, path)
    if problems:
        raise ProblemsError(problems)
    return RejectionRules(tuple(_rule(spec) for spec in parsed.rule), str(path))


def check(rules_dir: Path) -> list[Problem]:
    try:
        load_rejection_rules(rules_dir)
    except ProblemsError as exc:
        return exc.problems
    return []


