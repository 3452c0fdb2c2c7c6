"""Which outgoing mails are rejections (pure): `rules/rejection.toml`, first match wins.

HR writes rejections in their own mail client. A draft, outbox or Sent mail is a rejection when
the first rule (in file order) whose conditions all hold says so; every decision names that rule,
what hit (the phrase, the marker, the recipient) and the rules tried before it. A rule looks at
the Subject, HR's own text (above any quoted original, without `#mailflow` lines), the To
addresses (is one a known candidate? the caller answers) and HR's `#mailflow` line:
`#mailflow rejection` (or `reason=… rescout=yes`) forces a rejection, `#mailflow rejection=no`
forbids one, when the shipped rules are in force.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from mailflow import tomlpos
from mailflow.errors import Problem, ProblemsError
from mailflow.parse import Mail
from mailflow.people import normalise_email
from mailflow.rewrite.markers import strip_html, strip_plain
from mailflow.rewrite.placement import own_text_end
from mailflow.validation import Pattern, names_used_twice, validate

FILE = "rejection.toml"
NO_RULE = "no-rule"
YES = frozenset({"yes", "y", "true", "on", "1", "ok", "はい", "可"})
NO = frozenset({"no", "n", "false", "off", "0", "いいえ", "不可"})


# -- the rule file ---------------------------------------------------------------------------

Phrase = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleSpec(_Strict):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9_\-]+$")
    description: str = ""
    decide: Literal["rejection", "not_rejection"] = "rejection"
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


# -- what a rule looks at --------------------------------------------------------------------

@dataclass(frozen=True)
class HrNote:
    """What HR wrote on `#mailflow` lines, read for a rejection.

    ``rejection``/``rescout`` are None when HR said nothing (or something unreadable, which is
    listed in ``problems``).
    """

    rejection: bool | None = None
    reason: str = ""
    stage: str = ""
    rescout: bool | None = None
    fields: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def forces(self) -> bool:
        if self.rejection is not None:
            return self.rejection
        return "reason" in self.fields or "rescout" in self.fields

    @property
    def forbids(self) -> bool:
        return self.rejection is False


@dataclass(frozen=True)
class Outgoing:
    """The facts the rules look at, normalised once (see ``normalise``)."""

    subject: str
    body: str
    recipients: tuple[str, ...]
    candidate: str | None  # the first recipient that is a known candidate
    note: HrNote


_BREAK = re.compile(r"[ \t]*\r?\n[ \t]*")


def normalise(text: str) -> str:
    """NFKC, and line breaks joined: away between non-ASCII characters, else one space."""

    def join(match: re.Match[str]) -> str:
        text, start, end = match.string, match.start(), match.end()
        left = text[start - 1] if start else " "
        right = text[end] if end < len(text) else " "
        return "" if not left.isascii() or not right.isascii() else " "

    return _BREAK.sub(join, unicodedata.normalize("NFKC", text))


def _flag(fields: dict[str, str], key: str, problems: list[str]) -> bool | None:
    if key not in fields:
        return None
    value = unicodedata.normalize("NFKC", fields[key]).strip().lower()
    if value in YES:
        return True
    if value in NO:
        return False
    problems.append(f"#mailflow {key}={fields[key]}: expected yes or no; ignored")
    return None


def read_note(mail: Mail) -> HrNote:
    """HR's `#mailflow` fields from the plain and HTML parts (plain wins for a key in both)."""
    plain, html = strip_plain(mail.text), strip_html(mail.html)
    fields = {**html.fields, **plain.fields}
    problems = list(dict.fromkeys((*plain.problems, *html.problems)))
    rejection = _flag(fields, "rejection", problems)
    rescout = _flag(fields, "rescout", problems)
    return HrNote(rejection, fields.get("reason", "").strip(), fields.get("stage", "").strip(),
                  rescout, fields, tuple(problems))


def own_text(mail: Mail) -> str:
    """HR's own text: the readable body above any quoted original, without `#mailflow` lines."""
    lines = strip_plain(mail.readable_text).text.replace("\r\n", "\n").split("\n")
    return "\n".join(lines[: own_text_end(lines)])


def read_outgoing(mail: Mail, is_candidate: Callable[[str], bool],
                  recipients: Sequence[str] | None = None) -> Outgoing:
    """The rules' view of ``mail``; ``recipients`` default to its To addresses."""
    found = recipients if recipients is not None else [a.email for a in mail.to if a.email]
    emails = tuple(dict.fromkeys(normalise_email(e) for e in found))
    candidate = next((e for e in emails if is_candidate(e)), None)
    return Outgoing(normalise(mail.subject), normalise(own_text(mail)), emails, candidate,
                    read_note(mail))


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
    decide: Literal["rejection", "not_rejection"]
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
        if not any(getattr(spec, key) for key in _CONDITION_KEYS):
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


# -- deciding --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """Whether a mail is a rejection, the rule that decided it, and why.

    ``phrase`` is the first phrase (or matched text) that hit, if the rule looked at text;
    ``tried`` names the rules that did not match before it; ``candidate`` is the To address
    that is a known candidate (None when none is).
    """

    rejection: bool
    rule: str
    why: str
    phrase: str | None
    hits: tuple[str, ...]
    tried: tuple[str, ...]
    candidate: str | None
    note: HrNote

    def describe(self) -> str:
        verdict = "rejection" if self.rejection else "not a rejection"
        return f"{verdict} (rule {self.rule}: {self.why})"


def decide_outgoing(facts: Outgoing, rules: RejectionRules) -> Decision:
    """The first rule whose conditions all hold decides; no rule: not a rejection."""
    tried: list[str] = []
    for rule in rules.rules:
        hits = rule.test(facts)
        if hits is None:
            tried.append(rule.name)
            continue
        phrase = next((hit.phrase for hit in hits if hit.phrase is not None), None)
        return Decision(rule.decide == "rejection", rule.name, "; ".join(h.why for h in hits),
                        phrase, tuple(h.why for h in hits), tuple(tried), facts.candidate,
                        facts.note)
    return Decision(False, NO_RULE, f"no rule in {FILE} matched", None, (), tuple(tried),
                    facts.candidate, facts.note)


def decide(mail: Mail, rules: RejectionRules, is_candidate: Callable[[str], bool],
           recipients: Sequence[str] | None = None) -> Decision:
    """Is the outgoing ``mail`` a rejection? ``is_candidate`` answers for an email address."""
    return decide_outgoing(read_outgoing(mail, is_candidate, recipients), rules)
