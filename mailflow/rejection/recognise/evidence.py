"""Weighing the evidence that a mail to a candidate is a rejection (pure, explainable).

Each sentence of the Subject and of HR's own text (never the quoted original) is read against
the cues in `cues`; every cue that counts becomes one ``Evidence`` (what, where, the sentence,
its weight). The context adds one more: the mail is a reply in the candidate's own thread. Then:

- ``rejection``: a rejection statement, no strong counter-evidence (weight -4 or less), and a
  score (the sum of all weights) of 3 or more; or, without a statement, regrets and a result
  notice that add up to 4 or more with no counter-evidence at all;
- ``not_rejection``: strong counter-evidence and no rejection statement, or nothing that reads
  like a result;
- ``uncertain``: everything between — a statement beside strong counter-evidence (a rejection
  that also invites to the next round?), or a result notice with regrets but no statement.
  Uncertain mails are left alone and HR is asked (see `mailflow.rejection.recognise` and `notices`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from mailflow.rejection.recognise.cues import (
    CONDITIONAL,
    CUES,
    EARLIER,
    ENGLISH_NOT,
    NEGATION_AFTER,
    REPLY_SUBJECT,
    Cue,
    Where,
)
from mailflow.rejection.recognise.wording import sentences

Verdict = Literal["rejection", "not_rejection", "uncertain"]
STRONG_COUNTER = -4
REJECTION_SCORE = 3
REGRETS_ONLY_SCORE = 4
STATEMENT = 3  # the weight of a rejection statement
OTHERS_CHOSEN = "他の方に決定"
_SHOWN = 60  # characters of a sentence shown in an explanation
_YOU = re.compile(r"\byou(?:r)?\b", re.IGNORECASE)


@dataclass(frozen=True)
class Evidence:
    """One thing that counted: the cue, where it was found, the sentence, its weight."""

    cue: str
    kind: str  # rejection | regret | counter | notice | process | context
    where: str  # subject | body | context
    weight: int
    text: str
    matched: str = ""  # the words the cue found

    def describe(self) -> str:
        return f"{self.where} {self.kind} {self.cue!r} ({self.weight:+d}): {self.text}"


@dataclass(frozen=True)
class Assessment:
    verdict: Verdict
    score: int
    evidence: tuple[Evidence, ...]

    @property
    def statement(self) -> Evidence | None:
        """The first rejection statement found, if any."""
        return next((e for e in self.evidence if e.kind == "rejection" and e.weight >= STATEMENT),
                    None)

    def describe(self) -> str:
        if not self.evidence:
            return "no evidence of a selection result"
        counted = "; ".join(e.describe() for e in self.evidence)
        return f"{self.verdict}, score {self.score:+d}: {counted}"


def _shown(sentence: str) -> str:
    return sentence if len(sentence) <= _SHOWN else sentence[: _SHOWN - 1] + "…"


def _negated(sentence: str, found: re.Match[str]) -> bool:
    """通過とはなりませんでした, or in English a "not" close before that concerns the candidate
    ("cannot offer you the role"; not "our CTO will not be able to join the interview")."""
    if NEGATION_AFTER.match(sentence[found.end():]):
        return True
    if not found.group(0).isascii():
        return False
    before = ENGLISH_NOT.search(sentence, max(0, found.start() - 30), found.start())
    return before is not None and bool(
        _YOU.search(sentence[before.start():found.end()]))


def _read(cue: Cue, sentence: str, where: Where) -> Evidence | None:
    found = cue.search(sentence)
    if found is None:
        return None
    text = _shown(sentence)
    if cue.kind == "counter" and cue.negated_is_rejection and _negated(sentence, found):
        return Evidence(f"{cue.name}(否定)", "rejection", where, 3, text, found.group(0))
    if cue.kind in ("rejection", "regret") and CONDITIONAL.search(sentence):
        return Evidence(cue.name, "process", where, -2, text, found.group(0))
    if cue.kind == "rejection" and EARLIER.search(sentence, 0, found.start()):
        return Evidence(cue.name, "earlier", where, 0, text, found.group(0))
    return Evidence(cue.name, cue.kind, where, cue.weight, text, found.group(0))


def _sentence_evidence(sentence: str, where: Where, reply: bool = False) -> list[Evidence]:
    """The evidence in one sentence; a reply's subject (Re: …) names the earlier mail, so only
    its notice counts."""
    found: list[Evidence] = []
    for cue in CUES:
        if where in cue.where and not (reply and cue.kind != "notice"):
            evidence = _read(cue, sentence, where)
            if evidence is not None:
                found.append(evidence)
    if any(e.kind == "rejection" and e.cue == OTHERS_CHOSEN for e in found):
        found = [e for e in found if e.kind != "counter"]  # the offer went to someone else
    elif any(e.kind == "rejection" for e in found):  # a statement says more than its regrets
        found = [e for e in found if not (e.kind == "counter" and e.weight > STRONG_COUNTER)]
    return found


def _once(evidence: Iterable[Evidence]) -> list[Evidence]:
    """One piece of evidence per cue and kind (the first): repetition proves nothing more."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for item in evidence:
        if (item.cue, item.kind) not in seen:
            seen.add((item.cue, item.kind))
            kept.append(item)
    return kept


def assess(subject: str, body: str, in_thread: bool = False) -> Assessment:
    """The verdict on a mail with this Subject and HR's own text (both as written)."""
    found: list[Evidence] = []
    reply = bool(REPLY_SUBJECT.match(subject))
    for sentence in sentences(subject):
        found += _sentence_evidence(sentence, "subject", reply)
    for sentence in sentences(body):
        found += _sentence_evidence(sentence, "body")
    evidence = _once(found)
    if in_thread and evidence:
        evidence.append(Evidence("返信", "context", "context", 1,
                                 "a reply in the candidate's own thread"))
    return Assessment(_verdict(evidence), sum(e.weight for e in evidence), tuple(evidence))


def _verdict(evidence: list[Evidence]) -> Verdict:
    score = sum(e.weight for e in evidence)
    statement = any(e.kind == "rejection" and e.weight >= STATEMENT for e in evidence)
    strong_counter = any(e.kind == "counter" and e.weight <= STRONG_COUNTER for e in evidence)
    counter = any(e.kind in ("counter", "process") for e in evidence)
    regret = any(e.kind in ("regret", "rejection") and e.weight < STATEMENT for e in evidence)
    notice = any(e.kind == "notice" for e in evidence)
    if statement and not strong_counter and score >= REJECTION_SCORE:
        return "rejection"
    if statement or (regret and notice and counter is False and score >= REGRETS_ONLY_SCORE):
        return "rejection" if not statement else "uncertain"
    if strong_counter:
        return "not_rejection"
    if regret and (notice or score >= 2):
        return "uncertain"
    return "not_rejection"
