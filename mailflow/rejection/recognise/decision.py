"""The decision on one outgoing mail: the first rule that matches, and the evidence (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailflow.mail.parse import Mail
from mailflow.rejection.recognise.evidence import Assessment, Verdict, assess
from mailflow.rejection.recognise.facts import HrNote, Lookup, Outgoing, read_outgoing
from mailflow.rejection.recognise.rules import FILE, NO_RULE, RejectionRules


@dataclass(frozen=True)
class Decision:
    """Whether a mail is a rejection, the rule that decided it, and why.

    ``verdict`` is ``rejection``, ``not_rejection`` or ``uncertain`` (left alone; HR is asked);
    ``rejection`` is True only for the first. ``phrase`` is the first phrase (or matched text)
    that hit, if the rule looked at text; ``tried`` names the rules that did not match before
    it; ``candidate`` is the To address that is a known candidate (None when none is);
    ``assessment`` is the evidence, when the rule let the evidence decide.
    """

    rejection: bool
    rule: str
    why: str
    phrase: str | None
    hits: tuple[str, ...]
    tried: tuple[str, ...]
    candidate: str | None
    note: HrNote
    verdict: Verdict = "not_rejection"
    assessment: Assessment | None = None
    in_selection: bool = False

    @property
    def uncertain(self) -> bool:
        return self.verdict == "uncertain"

    def describe(self) -> str:
        shown = {"rejection": "rejection", "not_rejection": "not a rejection",
                 "uncertain": "uncertain"}[self.verdict]
        return f"{shown} (rule {self.rule}: {self.why})"

    def as_json(self) -> dict[str, Any]:
        """The decision as `explain`/`rewrite --json` show it."""
        evidence = self.assessment.evidence if self.assessment else ()
        return {"rejection": self.rejection, "verdict": self.verdict, "rule": self.rule,
                "why": self.why, "phrase": self.phrase, "hits": list(self.hits),
                "tried": list(self.tried), "candidate": self.candidate,
                "score": self.assessment.score if self.assessment else None,
                "evidence": [{"cue": e.cue, "kind": e.kind, "where": e.where,
                              "weight": e.weight, "text": e.text} for e in evidence]}


def decide_outgoing(facts: Outgoing, rules: RejectionRules) -> Decision:
    """The first rule whose conditions all hold decides; no rule: not a rejection."""
    tried: list[str] = []
    in_selection = bool(facts.known and facts.known.in_selection)
    for rule in rules.rules:
        hits = rule.test(facts)
        if hits is None:
            tried.append(rule.name)
            continue
        phrase = next((hit.phrase for hit in hits if hit.phrase is not None), None)
        whys = [h.why for h in hits]
        if rule.decide == "evidence":
            assessment = assess(facts.subject, facts.body, facts.in_thread)
            verdict = assessment.verdict
            statement = assessment.statement
            phrase = phrase or (statement.matched if statement else None)
            if verdict == "uncertain" and not in_selection:
                verdict = "not_rejection"  # only a candidate in selection is waiting for a result
            return Decision(verdict == "rejection", rule.name,
                            "; ".join([*whys, assessment.describe()]), phrase, tuple(whys),
                            tuple(tried), facts.candidate, facts.note, verdict, assessment,
                            in_selection)
        verdict = "rejection" if rule.decide == "rejection" else "not_rejection"
        return Decision(verdict == "rejection", rule.name, "; ".join(whys), phrase, tuple(whys),
                        tuple(tried), facts.candidate, facts.note, verdict, None, in_selection)
    return Decision(False, NO_RULE, f"no rule in {FILE} matched", None, (), tuple(tried),
                    facts.candidate, facts.note, "not_rejection", None, in_selection)


def decide(mail: Mail, rules: RejectionRules, lookup: Lookup,
           recipients: Sequence[str] | None = None) -> Decision:
    """Is the outgoing ``mail`` a rejection? ``lookup`` answers for an email address: the
    candidate's record (or ``KnownCandidate``), True for "a candidate", None when unknown."""
    return decide_outgoing(read_outgoing(mail, lookup, recipients), rules)
