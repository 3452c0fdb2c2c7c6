"""`rules/followups.toml`: re-scouts, reminders and late invitations, as rules (pure).

A rule names a trigger (an event on the candidate's timeline, or a date field of the candidate),
a delay, conditions, what to do, and for mail the purpose it serves; it may repeat (`every`, with
an end: `until`, `times`) and carry posts (`content`: a folder of Markdown posts, whose every
post is validated here too, or a feed URL). The scheduler
(`followups/scheduler.py`) turns triggers into rows with a due time and, at that time, asks the
rule again: every condition is re-checked before anything is sent. Conditions are small classes
(`followups/conditions.py`) that answer with the reason they do not hold; the file is validated
at once, every problem as `PATH:LINE: message`, with a did-you-mean for unknown keys, events,
templates and delays. This module owns the file's models, the compiled `Rule` and the loading.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
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

from mailflow.errors import Problem, ProblemsError
from mailflow.followups.conditions import (
    Condition,
    Consent,
    Deliverable,
    Facts,
    FieldIn,
    Flag,
    Tags,
)
from mailflow.followups.posts import read_folder
from mailflow.followups.templates import template_names
from mailflow.followups.vocabulary import (
    DATE_FIELDS,
    STATUSES,
    TRIGGERS,
    VARIABLES,
    did_you_mean,
    unknown_purpose,
)
from mailflow.pool.facts import FACTS, FactCondition, parse_when
from mailflow.pool.records import RELAY_STATUSES
from mailflow.settings import tomlpos
from mailflow.settings.durations import Delay, DelayText, parse_delay
from mailflow.settings.validation import names_used_twice, problems_from

FILE = "followups.toml"


# -- the rule file ----------------------------------------------------------------------------

_SUBJECT_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AfterSpec(_Strict):
    event: str | None = None
    field: str | None = None
    delay: DelayText

    @field_validator("event")
    @classmethod
    def _event(cls, value: str | None) -> str | None:
        if value is not None and value not in TRIGGERS:
            raise ValueError(f"unknown event {value!r}{did_you_mean(value, TRIGGERS)}")
        return value

    @field_validator("field")
    @classmethod
    def _field(cls, value: str | None) -> str | None:
        if value is not None and value not in DATE_FIELDS:
            raise ValueError(f"unknown date field {value!r}{did_you_mean(value, DATE_FIELDS)}")
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> AfterSpec:
        if (self.event is None) == (self.field is None):
            raise ValueError("give `event` or `field` (one of them)")
        return self


def _declared(values: list[str], info: ValidationInfo) -> list[str]:
    """Each purpose must be one the config declares (`[privacy.purposes]`), when the loader
    was given them."""
    known: tuple[str, ...] | None = (info.context or {}).get("purposes")
    if known is None:
        return values
    for value in values:
        if value not in known:
            raise ValueError(unknown_purpose(value, known))
    return values


def _one_of(values: list[str], known: tuple[str, ...], what: str) -> list[str]:
    for value in values:
        if value not in known:
            raise ValueError(f"unknown {what} {value!r}{did_you_mean(value, known)}")
    return values


class WhenSpec(_Strict):
    """The keys below, and any fact of the candidate (`pool.facts`: `skills`, `tags`,
    `reapply_intent` …), checked as `parse_when` reads them."""

    model_config = ConfigDict(extra="allow", frozen=True)

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

    @field_validator("consent")
    @classmethod
    def _purposes(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return _declared(value, info)

    @field_validator("status", "status_not")
    @classmethod
    def _status(cls, value: list[str]) -> list[str]:
        return _one_of(value, STATUSES, "status")

    @field_validator("relay_status", "relay_status_not")
    @classmethod
    def _relay(cls, value: list[str]) -> list[str]:
        return _one_of(value, RELAY_STATUSES, "relay status")

    @model_validator(mode="after")
    def _facts(self) -> WhenSpec:
        _, problems = parse_when(self.model_extra or {})
        unknown = [key for (key, *_), _m in problems if key not in FACTS]
        if unknown:  # the keys above are known too: the did-you-mean names them all
            known = [*type(self).model_fields, *FACTS]
            raise ValueError(f"unknown key {unknown[0]!r}{did_you_mean(unknown[0], known)}")
        if problems:
            raise ValueError("; ".join(message for _path, message in problems))
        return self

    def fact_conditions(self) -> list[FactCondition]:
        return parse_when(self.model_extra or {})[0]


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
    every: DelayText | None = None
    until: date | None = None
    times: int | None = Field(None, ge=1)
    content: str | None = Field(None, min_length=1)

    @field_validator("content")
    @classmethod
    def _content(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or is_feed(value):
            return value
        if "://" in value:
            raise ValueError("expected a folder of posts or an http(s):// feed URL")
        rules_dir: Path | None = (info.context or {}).get("rules_dir")
        if rules_dir is not None and not (rules_dir / value).is_dir():
            raise ValueError(f"no folder {value!r} in {rules_dir}")
        return value

    @field_validator("send")
    @classmethod
    def _template(cls, value: str | None, info: ValidationInfo) -> str | None:
        known: tuple[str, ...] = (info.context or {}).get("templates", ())
        if value is not None and value not in known:
            raise ValueError(f"unknown template {value!r}{did_you_mean(value, known)}")
        return value

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, value: str | None, info: ValidationInfo) -> str | None:
        return value if value is None else _declared([value], info)[0]

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
                             f"{did_you_mean(unknown[0], VARIABLES)}")
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
        if self.every is not None and self.until is None and self.times is None:
            raise ValueError("a repeating rule (`every`) needs an end: `until = DATE` and/or "
                             "`times = N`")
        if self.every is None and (self.until is not None or self.times is not None):
            raise ValueError("`until` and `times` end a repeating rule: give `every` too")
        if self.content is not None and not self.send:
            raise ValueError("`content` gives the posts a mail carries: give `send` too")
        return self


class FollowupsFile(_Strict):
    followup: list[RuleSpec] = []


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
    every: Delay | None = None  # repeating (`followups.repeat`), until `until` / `times`
    until: date | None = None
    times: int | None = None
    content: str | None = None  # a posts folder (absolute) or a feed URL (`followups.mailing`)

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
        done += ["with the newest post not sent yet"] if self.content else []
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
    found += w.fact_conditions()
    purposes = dict.fromkeys([*w.consent, *([spec.purpose] if spec.purpose else [])])
    found += [Consent(purpose) for purpose in purposes]
    if spec.send:
        found.append(Deliverable())
    return tuple(found)


def is_feed(content: str) -> bool:
    """Whether a rule's `content` names a feed URL (else a folder of Markdown posts)."""
    return content.startswith(("https://", "http://"))


def _content(spec: RuleSpec, rules_dir: Path) -> str | None:
    if spec.content is None or is_feed(spec.content):
        return spec.content
    return str((rules_dir / spec.content).resolve())


def _rule(spec: RuleSpec, rules_dir: Path) -> Rule:
    a = spec.after
    trigger = f"event:{a.event}" if a.event else f"field:{a.field}"
    return Rule(spec.name, spec.description, trigger, parse_delay(a.delay), _conditions(spec),
                spec.send, spec.subject, tuple(spec.tag_add), tuple(spec.tag_remove),
                spec.notify_hr, spec.stop_followups, spec.purpose, spec.once,
                parse_delay(spec.catch_up), parse_delay(spec.every) if spec.every else None,
                spec.until, spec.times, _content(spec, rules_dir))


def _post_problems(specs: list[RuleSpec], rules_dir: Path) -> list[Problem]:
    """Every post of every posts folder the rules name that is not one (file and line)."""
    folders = dict.fromkeys(_content(s, rules_dir) for s in specs
                            if s.content and not is_feed(s.content))
    # the zone only dates posts; their problems do not depend on it
    return [p for f in folders if f for p in read_folder(Path(f), ZoneInfo("UTC"))[1]]


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


def load_followups(rules_dir: Path, templates_dir: Path,
                   purposes: Collection[str] | None = None) -> FollowupRules:
    """Load and validate `followups.toml` (none: no follow-ups); every problem at once.
    `purposes`: the declared purposes of use (`[privacy.purposes]`) a rule's `purpose` and
    `when.consent` must name (None: not checked)."""
    path = rules_dir / FILE
    if not path.exists():
        return FollowupRules((), str(path))
    data, positions = tomlpos.load(path)
    context: dict[str, Any] = {"templates": template_names(templates_dir), "rules_dir": rules_dir}
    if purposes is not None:
        context["purposes"] = tuple(purposes)
    try:
        parsed = FollowupsFile.model_validate(data, context=context)
    except ValidationError as exc:
        raise ProblemsError(problems_from(exc, FollowupsFile, positions, path)) from exc
    problems = names_used_twice([spec.name for spec in parsed.followup], "followup",
                                "followup", positions, path)
    problems += _post_problems(parsed.followup, rules_dir)
    if problems:
        raise ProblemsError(problems)
    return FollowupRules(tuple(_rule(spec, rules_dir) for spec in parsed.followup), str(path))
