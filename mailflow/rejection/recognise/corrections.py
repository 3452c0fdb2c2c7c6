"""HR's corrections as labelled examples, and the rule changes they suggest (pure).

When HR settles a mail with a `#mailflow rejection` or `#mailflow rejection=no` line, the mail
becomes an example: its label (HR's word), what the evidence alone would have said, the cues that
counted, and HR's own sentences with what identifies a person taken out (names before 様/さん/殿
and the candidate's own name become 〇〇; addresses, phone numbers and URLs are dropped;
signature and contact lines are left out). The pool keeps nothing more about the person than it
already held.

``suggest`` reads the examples the evidence got wrong and proposes, for each label, one rule for
`rules/rejection.toml` with the clauses (between 、 and 。) that those examples share and no
example of the other label contains, each suggestion naming the examples it would have decided.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mailflow.rejection.recognise.evidence import Assessment
from mailflow.rejection.recognise.wording import normalise, sentences

Label = Literal["rejection", "not_rejection"]

_HONORIFIC = re.compile(r"[^\s、。「」()（）]{1,8}?(?=様|さん|殿|くん|君)")
_CONTACT = re.compile(r"@|https?://|www\.|〒|TEL|FAX|電話|携帯|株式会社|有限会社|\d{2,4}-\d{2,4}-\d{3,4}",
                      re.IGNORECASE)
_DIGITS = re.compile(r"\d{5,}")
_CLAUSE = re.compile(r"[、。!?]")
_MIN_CLAUSE, _MAX_CLAUSE = 5, 40
_MASK = "〇〇"


def mask(sentence: str, names: Iterable[str] = ()) -> str | None:
    """The sentence with people's names masked, or None when it is a contact line."""
    if _CONTACT.search(sentence) or _DIGITS.search(sentence):
        return None
    for name in names:
        if len(name) >= 2:
            sentence = sentence.replace(name, _MASK)
    return _HONORIFIC.sub(_MASK, sentence)


def example(label: Label, subject: str, body: str, assessment: Assessment,
            names: Sequence[str] = ()) -> dict[str, Any]:
    """The stored form of one settled case (see the module's docstring)."""
    parts = [p for name in names for p in normalise(name).split() if p]
    kept = [m for s in sentences(body) if (m := mask(s, parts)) is not None]
    shown_subject = mask(normalise(subject), parts) or ""
    return {"label": label, "evidence_verdict": assessment.verdict, "score": assessment.score,
            "cues": sorted({e.cue for e in assessment.evidence}), "subject": shown_subject,
            "sentences": kept}


@dataclass(frozen=True)
class Suggestion:
    """One rule to add before the `recognised` rule, and the examples it would have decided."""

    decide: Label
    phrases: tuple[str, ...]
    decides: tuple[str, ...]  # example ids
    name: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def toml(self) -> str:
        listed = ", ".join(f'"{p}"' for p in self.phrases)
        lines = ["[[rule]]", f'name = "{self.name}"',
                 f'description = "learned from {len(self.decides)} case(s) HR settled"']
        if self.decide == "not_rejection":
            lines.append('decide = "not_rejection"')
        lines.append(f"body_phrases = [{listed}]")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "decide": self.decide, "body_phrases": list(self.phrases),
                "decides": list(self.decides), "toml": self.toml()}


def _clauses(doc: dict[str, Any]) -> list[str]:
    found = []
    for sentence in doc.get("sentences") or []:
        for clause in _CLAUSE.split(sentence):
            clause = clause.strip()
            if _MIN_CLAUSE <= len(clause) <= _MAX_CLAUSE and _MASK not in clause:
                found.append(clause)
    return found


def _text(doc: dict[str, Any]) -> str:
    return "\n".join(doc.get("sentences") or [])


def _wrong(doc: dict[str, Any]) -> bool:
    said = doc.get("evidence_verdict")
    return (said == "rejection") != (doc.get("label") == "rejection") or said == "uncertain"


def _one(label: Label, examples: Sequence[dict[str, Any]]) -> Suggestion | None:
    missed = [d for d in examples if d.get("label") == label and _wrong(d)]
    others = [_text(d) for d in examples if d.get("label") != label]
    if not missed:
        return None
    chosen: list[str] = []
    covered: list[str] = []
    for doc in missed:
        if any(phrase in _text(doc) for phrase in chosen):
            covered.append(str(doc["id"]))
            continue
        usable = [c for c in _clauses(doc) if not any(c in text for text in others)]
        if not usable:
            continue
        best = max(usable, key=lambda c: (sum(c in _text(d) for d in missed), len(c)))
        chosen.append(best)
        covered.append(str(doc["id"]))
    if not chosen:
        return None
    kind = "rejection" if label == "rejection" else "not-rejection"
    return Suggestion(label, tuple(chosen), tuple(covered), f"learned-{kind}")


def suggest(examples: Sequence[dict[str, Any]]) -> list[Suggestion]:
    """Rules that would have decided the examples the evidence got wrong (see the docstring)."""
    labels: tuple[Label, ...] = ("not_rejection", "rejection")  # the careful rule first
    return [s for s in (_one(label, examples) for label in labels) if s is not None]
