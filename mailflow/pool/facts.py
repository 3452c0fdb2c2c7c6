"""The candidate's facts as rule conditions (pure): one vocabulary for every rule file that picks
candidates — `rules/tags.toml` (`pool.tags`), the `when` of `rules/followups.toml`, and any other
rule file that wants it (openings).

A fact is a name (`FACTS`) read from the stored candidate: text (`status`, `source`,
`rejection_reason` …), a list (`tags`, `skills`, `stages`, `consent` …) or a flag (`rescout_ok`,
`reapply_intent` …). A condition is `FACT = VALUE` or `FACT.OP = VALUE` in a `when` table:

    FACT = "x"            text: is "x"; list: has "x"; flag: — (use true/false)
    FACT = ["x", "y"]     text: is one of them; list: has every one of them
    FACT = true|false     flag: is (a flag never recorded counts as false)
    FACT.any = [...]      text: is one of them; list: has at least one of them
    FACT.all = [...]      list: has every one of them
    FACT.none = [...]     text: is none of them; list: has none of them
    FACT.matches = "re"   text, or any item of a list, matches the regular expression (search)
    FACT.set = true|false the fact has a value (a non-empty text or list; a recorded flag)
    FACT.not = true|false flag: is not (`rescout_ok.not = false`: HR did not say no)

Every condition of a table must hold. `parse_when` turns a table into conditions and names every
problem (an unknown fact or operator, with a did-you-mean; a value of the wrong shape).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mailflow.pool import consent
from mailflow.pool.records import Candidate


@dataclass(frozen=True)
class Facts:
    """What a condition looks at: the candidate as stored, and the notified purposes."""

    candidate: Candidate
    notified: frozenset[str]


# -- the vocabulary ---------------------------------------------------------------------------


def _names(values: Any) -> list[str]:
    """A list field's values as text; an extracted value kept as a record names itself."""
    found = []
    for value in values or []:
        if isinstance(value, Mapping):
            value = value.get("name") or value.get("canonical") or value.get("value") or ""
        if value not in (None, ""):
            found.append(str(value))
    return found


def _rejection(c: Candidate) -> dict[str, Any]:
    return dict(c.get("rejection") or {})


def _stages(c: Candidate) -> list[str]:
    reached = _names(s.get("stage") for s in c.get("stages") or [])
    rejection = _rejection(c)
    return reached + ([str(rejection["stage"])] if rejection.get("stage") else [])


def _rejection_stage(c: Candidate) -> str:
    rejection = _rejection(c)
    if rejection.get("stage"):
        return str(rejection["stage"])
    reached = _stages(c)
    return reached[-1] if rejection and reached else ""


def _held(f: Facts) -> list[str]:
    said = list(f.candidate.get("consents") or {})
    return [p for p in dict.fromkeys([*f.notified, *said])
            if consent.state(f.candidate, p, f.notified).holds]


def _said(c: Candidate, state: str) -> list[str]:
    return [p for p in c.get("consents") or {}
            if (said := consent.explicit(c, p)) is not None and said["state"] == state]


def _intent(c: Candidate) -> bool | None:
    intent = c.get("reapply_intent")
    return bool(intent["wish"]) if intent else None


def _deliverable(c: Candidate) -> bool:
    gone = set(c.get("undeliverable") or [])
    return any(e not in gone for e in c.get("emails") or [])


@dataclass(frozen=True)
class Fact:
    name: str
    kind: str  # "text" | "list" | "flag"
    description: str
    read: Callable[[Facts], Any]


def _on(read: Callable[[Candidate], Any]) -> Callable[[Facts], Any]:
    return lambda facts: read(facts.candidate)


FACTS: dict[str, Fact] = {fact.name: fact for fact in (
    Fact("status", "text", "the candidate's status (applied, rejected, hired …)",
         _on(lambda c: c.get("status") or "")),
    Fact("source", "text", "the channel the candidate first came through",
         _on(lambda c: c.get("source") or "")),
    Fact("sources", "list", "every channel the candidate came through",
         _on(lambda c: _names(c.get("sources")))),
    Fact("positions", "list", "the positions applied for",
         _on(lambda c: _names(a.get("position") for a in c.get("applications") or []))),
    Fact("desired_role", "text", "the desired role (希望職種)",
         _on(lambda c: c.get("desired_role") or "")),
    Fact("tags", "list", "the effective tags (HR's, the import's, automatic and rule tags)",
         _on(lambda c: _names(c.get("tags")))),
    Fact("skills", "list", "the skills (canonical names)", _on(lambda c: _names(c.get("skills")))),
    Fact("qualifications", "list", "the qualifications (canonical names)",
         _on(lambda c: _names(c.get("qualifications")))),
    Fact("stages", "list", "every stage reached in the selection, the rejection's too",
         _on(_stages)),
    Fact("rating", "list", "the ratings given at the stages (評価)",
         _on(lambda c: _names(s.get("rating") for s in c.get("stages") or []))),
    Fact("rejection_reason", "text", "the reason of the rejection",
         _on(lambda c: _rejection(c).get("reason") or "")),
    Fact("rejection_stage", "text", "the stage the candidate was rejected at (else the last "
         "stage reached, once rejected)", _on(_rejection_stage)),
    Fact("consent", "list", "the purposes whose consent holds (notified and not withdrawn, "
         "or granted)", _held),
    Fact("granted", "list", "the purposes the candidate granted in their own word",
         _on(lambda c: _said(c, "granted"))),
    Fact("withdrawn", "list", "the purposes the candidate withdrew (opted out of)",
         _on(lambda c: _said(c, "withdrawn"))),
    Fact("relay_status", "text", "the Career Relay status (not_invited, registered …)",
         _on(lambda c: c.get("relay_status") or "")),
    Fact("rescout_ok", "flag", "HR's view: the candidate may be scouted again",
         _on(lambda c: c.get("rescout_ok"))),
    Fact("reapplied", "flag", "the candidate applied again after a rejection",
         _on(lambda c: c.get("reapplied"))),
    Fact("reapply_intent", "flag", "the candidate's own wish to hear about future openings",
         _on(_intent)),
    Fact("hired", "flag", "hired here and not left", _on(
        lambda c: bool(c.get("hires")) and c["hires"][-1].get("left_on") is None)),
    Fact("deliverable", "flag", "the candidate has an address that is not undeliverable",
         _on(_deliverable)),
)}

OPERATORS = ("any", "all", "none", "matches", "set", "not")


# -- the condition ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FactCondition:
    """`fact.op = operand`; `fails` says why it does not hold, or None."""

    fact: str
    op: str  # "any" | "all" | "none" | "matches" | "set" | "is" | "not"
    operand: tuple[str, ...] | bool | str

    @property
    def name(self) -> str:
        return self.fact

    @property
    def description(self) -> str:
        operand = self.operand
        shown = (str(operand).lower() if isinstance(operand, bool)
                 else repr(list(operand) if isinstance(operand, tuple) else operand))
        return f"{self.fact}.{self.op} = {shown}"

    def holds(self, value: Any) -> bool:
        items = value if isinstance(value, list) else ([value] if value not in ("", None)
                                                       else [])
        want = self.operand
        if self.op == "set":
            return bool(items) == want
        if self.op == "is":
            return (value is True) == want
        if self.op == "not":
            return value is not want  # a flag never recorded is neither true nor false here
        if self.op == "matches":
            return any(re.search(str(want), str(item)) for item in items)
        wanted = set(want) if isinstance(want, tuple) else set()
        if self.op == "all":
            return wanted <= set(items)
        hit = bool(wanted & set(items))
        return hit if self.op == "any" else not hit

    def met(self, facts: Facts) -> bool:
        """Whether the condition holds (`fails` without writing down why not)."""
        return self.holds(FACTS[self.fact].read(facts))

    def fails(self, facts: Facts) -> str | None:
        value = FACTS[self.fact].read(facts)
        if self.holds(value):
            return None
        return f"{self.description} does not hold ({self.fact}: {value!r})"


# -- reading a `when` table -------------------------------------------------------------------


def did_you_mean(value: str, known: list[str]) -> str:
    found = difflib.get_close_matches(value, known, n=1, cutoff=0.5)
    return f"; did you mean {found[0]!r}?" if found else f"; known: {', '.join(known)}"


def _texts(value: Any) -> tuple[str, ...] | None:
    values = value if isinstance(value, list) else [value]
    if all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        return tuple(str(v) for v in values)
    return None


def _one(fact: Fact, op: str, value: Any) -> FactCondition | str:
    """The condition, or what is wrong with it."""
    if op in ("set", "is", "not"):
        if not isinstance(value, bool):
            return f"expected true or false, got {value!r}"
        if op != "set" and fact.kind != "flag":
            return (f"{fact.name} is a {fact.kind}: compare it with a text or a list"
                    if op == "is" else f"`not` is for flags; use `none` for a {fact.kind}")
        return FactCondition(fact.name, op, value)
    if fact.kind == "flag":
        return f"{fact.name} is a flag: use true/false, `not` or `set`"
    if op == "matches":
        if not isinstance(value, str):
            return f"expected a regular expression, got {value!r}"
        try:
            re.compile(value)
        except re.error as exc:
            return f"bad regular expression: {exc}"
        return FactCondition(fact.name, op, value)
    texts = _texts(value)
    if texts is None:
        return f"expected a text or a list of texts, got {value!r}"
    if op == "all" and fact.kind == "text" and len(texts) > 1:
        return f"{fact.name} is one text: use `any` for one of several"
    return FactCondition(fact.name, op, texts)


def _plain(fact: Fact, value: Any) -> FactCondition | str:
    if isinstance(value, bool):
        return _one(fact, "is", value)
    return _one(fact, "all" if fact.kind == "list" and isinstance(value, list) else "any", value)


def parse_when(table: Mapping[str, Any]) -> tuple[list[FactCondition],
                                                  list[tuple[tuple[str, ...], str]]]:
    """The conditions of a `when` table and its problems, each as (the key's path within the
    table, the message); all of them, in the table's order."""
    found: list[FactCondition] = []
    problems: list[tuple[tuple[str, ...], str]] = []
    for key, value in table.items():
        fact = FACTS.get(key)
        if fact is None:
            problems.append(((key,), f"unknown fact {key!r}{did_you_mean(key, list(FACTS))}"))
            continue
        tests = value.items() if isinstance(value, Mapping) else [(None, value)]
        for op, operand in tests:
            if op is not None and op not in OPERATORS:
                problems.append(((key, op), f"unknown operator {op!r}"
                                 f"{did_you_mean(op, list(OPERATORS))}"))
                continue
            made = _plain(fact, operand) if op is None else _one(fact, op, operand)
            if isinstance(made, str):
                problems.append(((key,) if op is None else (key, op), f"{key}: {made}"))
            else:
                found.append(made)
    return found, problems
