"""The conditions of a follow-up rule (pure): small classes, each with a `name`, a one-line
`description` and `fails`, which answers None when the condition holds, else why it does not.
`Facts` is what they look at; `Rule.fails` asks them in file order, then the guards.

Besides these, a rule's `when` may name any fact of the candidate (`pool.facts`: `skills`,
`reapply_intent`, `tags`, `rejection_stage` …), as `rules/tags.toml` does; those conditions are
`pool.facts.FactCondition`s, with the same `name`, `description` and `fails`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mailflow.pool import consent
from mailflow.pool.facts import Facts
from mailflow.pool.records import Candidate

__all__ = ["Condition", "Consent", "Deliverable", "Facts", "FieldIn", "Flag", "Tags",
           "deliverable_address"]

# -- conditions: each says why it does not hold, or None ----------------------------------------


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


def deliverable_address(candidate: Candidate) -> str | None:
    gone = set(candidate.get("undeliverable") or [])
    return next((e for e in candidate.get("emails") or [] if e not in gone), None)
