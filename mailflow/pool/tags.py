"""`rules/tags.toml`: tags that classify candidates from their facts (pure).

A rule names a tag and a `when` table over the candidate's facts (`pool.facts`); a candidate has
the tag while any rule giving it holds. Rules are evaluated again whenever the candidate's record
is written (`pool.tagging.TaggingStore`), so a tag follows its facts: a consent withdrawn removes
スカウト対象 at once.

The effective `tags` keep HR's and the import's tags apart from the rules': `rule_tags` lists
those the rules gave, and only those are taken away when their rule no longer holds. A tag HR
adds is HR's from then on; a rule tag HR removes goes into `tags_withheld`, and the rules do not
give it again until HR adds it back (`retag`, `change_by_hr`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mailflow.errors import Problem, ProblemsError
from mailflow.pool.facts import FactCondition, Facts, parse_when
from mailflow.pool.records import Candidate
from mailflow.settings import tomlpos
from mailflow.settings.tomlpos import line_of
from mailflow.settings.validation import problems_from

FILE = "tags.toml"


class _TagSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tag: str = Field(min_length=1, max_length=60)
    description: str = ""
    when: dict[str, Any]


class _TagsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tag: list[_TagSpec] = []


@dataclass(frozen=True)
class TagRule:
    tag: str
    description: str
    conditions: tuple[FactCondition, ...]

    def fails(self, facts: Facts) -> str | None:
        """The first condition that does not hold (file order), or None."""
        for condition in self.conditions:
            why = condition.fails(facts)
            if why is not None:
                return why
        return None

    def holds(self, facts: Facts) -> bool:
        return all(condition.met(facts) for condition in self.conditions)


@dataclass(frozen=True)
class TagRules:
    """The rules of `tags.toml`, compiled, in file order."""

    rules: tuple[TagRule, ...] = ()
    path: str = ""

    @property
    def tags(self) -> list[str]:
        return list(dict.fromkeys(rule.tag for rule in self.rules))

    def given(self, facts: Facts) -> list[str]:
        """The tags whose rules hold for the candidate, in file order."""
        held: set[str] = set()
        for rule in self.rules:  # once a tag is given its other rules need not be read
            if rule.tag not in held and rule.holds(facts):
                held.add(rule.tag)
        return [tag for tag in self.tags if tag in held]


def load_tags(rules_dir: Path, purposes: Collection[str] | None = None) -> TagRules:
    """Load and validate `tags.toml` (none: no rule tags); every problem at once, positioned.
    `purposes`: the declared purposes a `consent` or `withdrawn` condition must name."""
    path = rules_dir / FILE
    if not path.exists():
        return TagRules((), str(path))
    data, positions = tomlpos.load(path)
    problems: list[Problem] = []
    try:
        parsed: _TagsFile | None = _TagsFile.model_validate(data)
    except ValidationError as exc:
        parsed, problems = None, problems_from(exc, _TagsFile, positions, path)
    listed = data.get("tag")
    entries: list[Any] = listed if isinstance(listed, list) else []
    rules = []
    for index, entry in enumerate(entries):  # the conditions too, whatever else is wrong
        when = entry.get("when") if isinstance(entry, dict) else None
        if not isinstance(when, dict):
            continue
        where = ("tag", index, "when")
        conditions, wrong = parse_when(when)
        wrong += _undeclared(conditions, purposes)
        problems += [Problem(str(path), line_of(positions, (*where, *key)),
                             f"tag[{index}].when.{'.'.join(key)}: {message}")
                     for key, message in wrong]
        if not when:
            problems.append(Problem(str(path), line_of(positions, where),
                                    f"tag[{index}].when: give at least one condition"))
        if parsed is not None:
            spec = parsed.tag[index]
            rules.append(TagRule(spec.tag, spec.description, tuple(conditions)))
    if problems or parsed is None:
        raise ProblemsError(sorted(problems, key=lambda p: (p.line or 0, p.message)))
    return TagRules(tuple(rules), str(path))


def _undeclared(conditions: Sequence[FactCondition],
                purposes: Collection[str] | None) -> list[tuple[tuple[str, ...], str]]:
    if purposes is None:
        return []
    return [((c.fact, c.op), f"unknown purpose {p!r}; known: {', '.join(purposes)}")
            for c in conditions if c.fact in ("consent", "granted", "withdrawn")
            and isinstance(c.operand, tuple) for p in c.operand if p not in purposes]


def check(rules_dir: Path, purposes: Collection[str] | None = None) -> list[Problem]:
    """Every problem of `tags.toml` (for `mailflow check` and `rules check`)."""
    try:
        load_tags(rules_dir, purposes)
    except ProblemsError as exc:
        return list(exc.problems)
    return []


# -- the candidate's tags ---------------------------------------------------------------------


@dataclass(frozen=True)
class Retagged:
    added: tuple[str, ...]
    removed: tuple[str, ...]


def retag(candidate: Candidate, rules: TagRules, notified: frozenset[str]) -> Retagged:
    """Evaluate the rules on the candidate and set its rule tags (HR's are never touched);
    what it added and removed."""
    tags = list(candidate.get("tags") or [])
    before = list(candidate.get("rule_tags") or [])
    withheld = set(candidate.get("tags_withheld") or [])
    others = [t for t in tags if t not in before]  # HR's, the import's and automatic ones
    given = [t for t in rules.given(Facts(candidate, notified))
             if t not in others and t not in withheld]
    removed = tuple(t for t in before if t not in given)
    added = tuple(t for t in given if t not in tags)
    if removed or added or before != given:
        candidate["tags"] = [t for t in tags if t not in removed] + list(added)
        candidate["rule_tags"] = given
    return Retagged(added, removed)


def change_by_hr(candidate: Candidate, tag: str, add: bool) -> bool:
    """HR adds or removes a tag: an added one is HR's (a rule no longer takes it away), a
    removed rule tag is withheld from the rules until HR adds it again. False: no change."""
    tags = candidate["tags"]
    rule_tags = candidate.setdefault("rule_tags", [])
    withheld = candidate.setdefault("tags_withheld", [])
    if add:
        changed = tag not in tags or tag in rule_tags or tag in withheld
        if tag not in tags:
            tags.append(tag)
        candidate["rule_tags"] = [t for t in rule_tags if t != tag]
        candidate["tags_withheld"] = [t for t in withheld if t != tag]
        return changed
    if tag not in tags:
        return False
    tags.remove(tag)
    if tag in rule_tags:
        rule_tags.remove(tag)
        withheld.append(tag)
    return True
