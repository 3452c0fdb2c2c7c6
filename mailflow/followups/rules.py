"""`rules/followups.toml`: re-scouts, reminders and late invitations, as rules (pure).

A rule names a trigger (an event on the candidate's timeline, or a date field of the candidate),
a delay, conditions, what to do, and for mail the purpose it serves. The scheduler
(`mailflow/scheduler.py`) turns triggers into rows with a due time and, at that time, asks the
rule again: every condition is re-checked before anything is sent. Conditions are small classes
that answer with the reason they do not hold; the file is validated at once, every problem as
`PATH:LINE: message`, with a did-you-mean for unknown keys, events, templates and delays.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import jinja2
from jinja2 import meta
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mailflow.clock import iso
from mailflow.errors import Problem, ProblemsError
from mailflow.pool import consent
from mailflow.pool.talent import RELAY_STATUSES
from mailflow.settings import tomlpos
from mailflow.settings.durations import Delay, parse_delay
from mailflow.settings.validation import names_used_twice, problems_from
from mailflow.store.base import Doc, Store

FILE = "followups.toml"

# trigger name -> the timeline event types it stands for
TRIGGERS: dict[str, tuple[str, ...]] = {
    "rejected": ("rejected",),
    "invited": ("invited",),
    "clicked": ("clicked", "relay_clicked"),  # a person's click only (see `is_human_click`)
    "registered": ("relay_registered", "registered"),
    "applied": ("applied",),
    "reapplied": ("reapplied",),
}
DATE_FIELDS = ("rejection.at", "created_at", "last_applied_at")
STATUSES = ("applied", "screening", "interviewing", "offered", "hired", "rejected", "withdrawn")
VARIABLES = ("candidate_name", "company_name", "position", "rejected_at", "relay_link",
             "apply_url", "unsubscribe_link")
ROW_STATES = ("planned", "sent", "skipped", "cancelled")


def _guess(value: str, known: Iterable[str]) -> str:
    options = list(known)
    found = difflib.get_close_matches(value, options, n=1, cutoff=0.5)
    return f"; did you mean {found[0]!r}?" if found else f"; known: {', '.join(options)}"


# -- the rule file ----------------------------------------------------------------------------

_SUBJECT_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AfterSpec(_Strict):
    event: str | None = None
    field: str | None = None
    delay: str

    @field_validator("event")
    @classmethod
    def _event(cls, value: str | None) -> str | None:
        if value is not None and value not in TRIGGERS:
            raise ValueError(f"unknown event {value!r}{_guess(value, TRIGGERS)}")
        return value

    @field_validator("field")
    @classmethod
    def _field(cls, value: str | None) -> str | None:
        if value is not None and value not in DATE_FIELDS:
            raise ValueError(f"unknown date field {value!r}{_guess(value, DATE_FIELDS)}")
        return value

    @field_validator("delay")
    @classmethod
    def _delay(cls, value: str) -> str:
        parse_delay(value)
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> AfterSpec:
        if (self.event is None) == (self.field is None):
            raise ValueError("give `event` or `field` (one of them)")
        return self


def _one_of(values: list[str], known: tuple[str, ...], what: str) -> list[str]:
    for value in values:
        if value not in known:
            raise ValueError(f"unknown {what} {value!r}{_guess(value, known)}")
    return values


class WhenSpec(_Strict):
    tags_all: list[str] = []
    tags_any: list[str] = []
    tags_none: list[str] = []
    status: list[str] = []
    status_not: list[str] = []
    relay_status: list[str] = []
    relay_status_not: list[str] = []
    reapplied: bool | None = None
    rescout_ok: bool | None = None
    consent: list[str] = []

    @field_validator("consent", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("status", "status_not")
    @classmethod
    def _status(cls, value: list[str]) -> list[str]:
        return _one_of(value, STATUSES, "status")

    @field_validator("relay_status", "relay_status_not")
    @classmethod
    def _relay(cls, value: list[str]) -> list[str]:
        return _one_of(value, RELAY_STATUSES, "relay status")


class RuleSpec(_Strict):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9_\-]+$")
    description: str = ""
    after: AfterSpec
    when: WhenSpec = WhenSpec()
    send: str | None = None
    subject: str = ""
    tag_add: list[str] = []
    tag_remove: list[str] = []
    notify_hr: str | None = None
    stop_followups: bool = False
    purpose: str | None = Field(None, min_length=1)
    once: bool = True
    catch_up: str = "7d"

    @field_validator("send")
    @classmethod
    def _template(cls, value: str | None, info: ValidationInfo) -> str | None:
        known: tuple[str, ...] = (info.context or {}).get("templates", ())
        if value is not None and value not in known:
            raise ValueError(f"unknown template {value!r}{_guess(value, known)}")
        return value

    @field_validator("catch_up")
    @classmethod
    def _catch_up(cls, value: str) -> str:
        parse_delay(value)
        return value

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        try:
            tree = _SUBJECT_ENV.parse(value)
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"subject: template syntax error: {exc.message}") from exc
        unknown = sorted(meta.find_undeclared_variables(tree) - set(VARIABLES))
        if unknown:
            raise ValueError(f"subject: unknown variable {unknown[0]!r}"
                             f"{_guess(unknown[0], VARIABLES)}")
        return value

    @model_validator(mode="after")
    def _actions(self) -> RuleSpec:
        if not (self.send or self.tag_add or self.tag_remove or self.notify_hr
                or self.stop_followups):
            raise ValueError("needs an action: send, tag_add, tag_remove, notify_hr or "
                             "stop_followups")
        if self.send and not self.subject:
            raise ValueError("a rule that sends needs a `subject`")
        if self.send and not self.purpose:
            raise ValueError("a rule that sends needs a `purpose` (consent and unsubscribe "
                             "are per purpose)")
        return self


class FollowupsFile(_Strict):
    followup: list[RuleSpec] = []


# -- conditions: each says why it does not hold, or None ----------------------------------------


@dataclass(frozen=True)
class Facts:
    """What a condition looks at: the candidate as stored, and the notified purposes."""

    candidate: Doc
    notified: frozenset[str]


class Condition(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    def fails(self, facts: Facts) -> str | None:
        """None when the condition holds, else why not."""
        ...


@dataclass(frozen=True)
class Tags:
    mode: str  # "all" | "any" | "none"
    tags: tuple[str, ...]
    name: str = "tags"

    @property
    def description(self) -> str:
        return f"tags_{self.mode} {list(self.tags)}"

    def fails(self, facts: Facts) -> str | None:
        have = set(facts.candidate.get("tags") or [])
        ok = {"all": have >= set(self.tags), "any": bool(have & set(self.tags)),
              "none": not have & set(self.tags)}[self.mode]
        return None if ok else f"{self.description} does not hold (tags: {sorted(have)})"


@dataclass(frozen=True)
class FieldIn:
    field: str
    values: tuple[str, ...]
    negate: bool = False
    name: str = "field"

    @property
    def description(self) -> str:
        return f"{self.field}{'_not' if self.negate else ''} {list(self.values)}"

    def fails(self, facts: Facts) -> str | None:
        value = str(facts.candidate.get(self.field))
        if (value in self.values) != self.negate:
            return None
        return f"{self.field} is {value}"


@dataclass(frozen=True)
class Flag:
    field: str
    want: bool
    name: str = "flag"

    @property
    def description(self) -> str:
        return f"{self.field} = {str(self.want).lower()}"

    def fails(self, facts: Facts) -> str | None:
        have = facts.candidate.get(self.field) is True
        return None if have == self.want else f"{self.field} is {str(have).lower()}"


@dataclass(frozen=True)
class Consent:
    purpose: str
    name: str = "consent"

    @property
    def description(self) -> str:
        return f"consent for {self.purpose!r} holds"

    def fails(self, facts: Facts) -> str | None:
        held = consent.state(facts.candidate, self.purpose, facts.notified)
        return None if held.holds else f"no consent for {self.purpose!r} ({held.why})"


@dataclass(frozen=True)
class Deliverable:
    name: str = "deliverable"
    description: str = "the candidate has an address that is not undeliverable"

    def fails(self, facts: Facts) -> str | None:
        return None if deliverable_address(facts.candidate) else "no deliverable address"


def deliverable_address(candidate: Doc) -> str | None:
    gone = set(candidate.get("undeliverable") or [])
    return next((e for e in candidate.get("emails") or [] if e not in gone), None)


# -- the compiled rules -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    trigger: str  # "event:rejected" or "field:rejection.at"
    delay: Delay
    conditions: tuple[Condition, ...]
    send: str | None
    subject: str
    tag_add: tuple[str, ...]
    tag_remove: tuple[str, ...]
    notify_hr: str | None
    stop_followups: bool
    purpose: str | None
    once: bool
    catch_up: Delay

    def fails(self, facts: Facts) -> str | None:
        """The first condition that does not hold (file order, then the guards), or None."""
        for condition in self.conditions:
            why = condition.fails(facts)
            if why is not None:
                return why
        return None

    def actions(self) -> list[str]:
        """What the rule does, for dry runs: `send rescout.txt.j2`, `tag_add x` …"""
        done = [f"send {self.send}"] if self.send else []
        done += [f"tag_add {t}" for t in self.tag_add] + [f"tag_remove {t}" for t in
                                                           self.tag_remove]
        done += ["notify_hr"] if self.notify_hr else []
        return done + (["stop_followups"] if self.stop_followups else [])


def _conditions(spec: RuleSpec) -> tuple[Condition, ...]:
    w = spec.when
    found: list[Condition] = [Tags(mode, tuple(getattr(w, f"tags_{mode}")))
                              for mode in ("all", "any", "none") if getattr(w, f"tags_{mode}")]
    for key, field, negate in (("status", "status", False), ("status_not", "status", True),
                               ("relay_status", "relay_status", False),
                               ("relay_status_not", "relay_status", True)):
        if getattr(w, key):
            found.append(FieldIn(field, tuple(getattr(w, key)), negate))
    found += [Flag(key, getattr(w, key)) for key in ("reapplied", "rescout_ok")
              if getattr(w, key) is not None]
    purposes = dict.fromkeys([*w.consent, *([spec.purpose] if spec.purpose else [])])
    found += [Consent(purpose) for purpose in purposes]
    if spec.send:
        found.append(Deliverable())
    return tuple(found)


def _rule(spec: RuleSpec) -> Rule:
    a = spec.after
    trigger = f"event:{a.event}" if a.event else f"field:{a.field}"
    return Rule(spec.name, spec.description, trigger, parse_delay(a.delay), _conditions(spec),
                spec.send, spec.subject, tuple(spec.tag_add), tuple(spec.tag_remove),
                spec.notify_hr, spec.stop_followups, spec.purpose, spec.once,
                parse_delay(spec.catch_up))


@dataclass(frozen=True)
class FollowupRules:
    """The rules of `followups.toml`, compiled, in file order."""

    rules: tuple[Rule, ...] = ()
    path: str = ""

    def get(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    def for_event(self, event_type: str) -> list[Rule]:
        return [r for r in self.rules if r.trigger.startswith("event:")
                and event_type in TRIGGERS[r.trigger[6:]]]

    @property
    def field_rules(self) -> list[Rule]:
        return [r for r in self.rules if r.trigger.startswith("field:")]


# The templates shipped beside the package (a source checkout): a follow-up template missing
# from the configured folder is taken from here, so a templates folder made before follow-ups
# existed keeps working with the shipped rules. The configured folder always wins.
SHIPPED_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def template_dirs(templates_dir: Path) -> list[Path]:
    dirs = [templates_dir]
    if SHIPPED_TEMPLATES.is_dir() and templates_dir.resolve() != SHIPPED_TEMPLATES:
        dirs.append(SHIPPED_TEMPLATES)
    return dirs


def template_names(templates_dir: Path) -> tuple[str, ...]:
    return tuple(sorted({p.name for d in template_dirs(templates_dir) if d.is_dir()
                         for p in d.glob("*.j2")}))


def template_environment(templates_dir: Path) -> jinja2.Environment:
    """The rendering environment of `rewrite.render`, over `template_dirs`."""
    from mailflow.mail.rewrite.render import make_environment

    env = make_environment(templates_dir)
    env.loader = jinja2.FileSystemLoader([str(d) for d in template_dirs(templates_dir)])
    return env


def load_followups(rules_dir: Path, templates_dir: Path) -> FollowupRules:
    """Load and validate `followups.toml` (none: no follow-ups); every problem at once."""
    path = rules_dir / FILE
    if not path.exists():
        return FollowupRules((), str(path))
    data, positions = tomlpos.load(path)
    try:
        parsed = FollowupsFile.model_validate(
            data, context={"templates": template_names(templates_dir)})
    except ValidationError as exc:
        raise ProblemsError(problems_from(exc, FollowupsFile, positions, path)) from exc
    problems = names_used_twice([spec.name for spec in parsed.followup], "followup",
                                "followup", positions, path)
    if problems:
        raise ProblemsError(problems)
    return FollowupRules(tuple(_rule(spec) for spec in parsed.followup), str(path))


def check(rules_dir: Path, templates_dir: Path) -> list[Problem]:
    try:
        load_followups(rules_dir, templates_dir)
    except ProblemsError as exc:
        return exc.problems
    return []


_SAMPLES = (
    {"candidate_name": "山田 花子", "company_name": "株式会社サンプル", "position": "営業",
     "rejected_at": "2025年4月1日", "relay_link": "https://jobs.example.co.jp/r/SAMPLE",
     "apply_url": "https://www.example.co.jp/careers",
     "unsubscribe_link": "https://jobs.example.co.jp/u/SAMPLE"},
    {"candidate_name": "", "company_name": "株式会社サンプル", "position": "", "rejected_at": "",
     "relay_link": "", "apply_url": "", "unsubscribe_link": "https://jobs.example.co.jp/u/S"},
)


def _template_problems(env: jinja2.Environment, templates_dir: Path, name: str) -> list[Problem]:
    found = next((d / name for d in template_dirs(templates_dir) if (d / name).is_file()),
                 templates_dir / name)
    path = str(found)
    try:
        source = found.read_text(encoding="utf-8")
        tree = env.parse(source)
        template = env.get_template(name)
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(path, None, f"cannot read template: {exc}")]
    except jinja2.TemplateSyntaxError as exc:
        return [Problem(path, exc.lineno, f"syntax error: {exc.message}")]
    problems = []
    for unknown in sorted(meta.find_undeclared_variables(tree) - set(VARIABLES)):
        line = min((n.lineno for n in tree.find_all(jinja2.nodes.Name) if n.name == unknown),
                   default=None)
        problems.append(Problem(path, line, f"unknown variable {unknown!r}"
                                            f"{_guess(unknown, VARIABLES)}"))
    for sample in _SAMPLES if not problems else ():
        try:
            template.render(sample)
        except Exception as exc:  # any runtime error of the template is a problem to report
            line = getattr(exc, "lineno", None)
            return [Problem(path, line, getattr(exc, "message", None) or str(exc))]
    return problems


def check_templates(rules_dir: Path, templates_dir: Path) -> list[Problem]:
    """Every problem in the templates the follow-up rules send (syntax, unknown variables,
    runtime errors with sample values), each with file and line. A broken rule file is
    reported by `check`, not here."""
    try:
        rules = load_followups(rules_dir, templates_dir)
    except ProblemsError:
        return []
    env = template_environment(templates_dir)
    names = sorted({rule.send for rule in rules.rules if rule.send})
    return [problem for name in names for problem in _template_problems(env, templates_dir, name)]


# -- planning: which rows an event creates (pure) -----------------------------------------------


def is_human_click(event: Doc) -> bool:
    data = event.get("data") or {}
    verdict = data.get("verdict", data.get("kind", "human"))
    return verdict != "scanner" and data.get("human", True) is not False


def field_value(candidate: Doc, field: str) -> str | None:
    if field == "rejection.at":
        return (candidate.get("rejection") or {}).get("at")
    if field == "last_applied_at":
        applications = candidate.get("applications") or []
        return applications[-1].get("applied_at") if applications else None
    value = candidate.get(field)
    return str(value) if value else None


def row_id(rule: Rule, candidate_id: str, instance: str) -> str:
    """`once` rules have one row per candidate ever; others one per triggering instance."""
    return f"{rule.name}:{candidate_id}" if rule.once else f"{rule.name}:{candidate_id}:{instance}"


def new_row(rule: Rule, candidate_id: str, instance: str, base: datetime, zone: ZoneInfo,
            now: str, trigger: Doc) -> Doc:
    due = iso(rule.delay.after(base, zone))
    return {"id": row_id(rule, candidate_id, instance), "rule": rule.name,
            "candidate_id": candidate_id, "due_at": due, "planned_due_at": due,
            "state": "planned", "reason": "", "trigger": trigger, "created_at": now,
            "updated_at": now}


def finish(store: Store, row: Doc, state: str, reason: str, now: str, **more: Any) -> Doc:
    """A row leaves the schedule: its due time leaves the `due_at` index (kept as
    `was_due_at`), so a tick never meets it again."""
    row.update(state=state, reason=reason, was_due_at=row.get("due_at"), due_at=None,
               updated_at=now, **more)
    store.put("followups", row["id"], row)
    return row


def cancel_planned(store: Store, candidate_id: str, reason: str, now: str,
                   keep: str | None = None) -> int:
    """Cancel every planned follow-up of a candidate (all but `keep`); how many."""
    cancelled = 0
    for row in store.find("followups", "candidate_id", candidate_id):
        if row["state"] == "planned" and row["id"] != keep:
            finish(store, row, "cancelled", reason, now)
            cancelled += 1
    return cancelled
