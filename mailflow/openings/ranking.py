"""Ranking the pool for an opening (pure): who may be proposed, and each one's score as the sum
of its parts.

Who is left out, with the reason: a candidate without `rescout` consent (`pool.consent`: the
purpose is neither notified nor granted) or who withdrew it (opted out: the unsubscribe link,
the consent page, a reply), one HR marked `rescout_ok = false`, and one hired here now.

The score is `Σ weight × feature / Σ |weight|` over the features below, each in [0, 1] (intent
in [-1, 1]); every part (`weight × feature / Σ |weight|`) is shown, so the parts add up to the
score. Skills and qualifications are compared NFKC-normalised and case-folded. `role` is the
Japanese-aware text match of the opening's title and description against the candidate's
desired role, career and positions applied for (`openings/text.py` gives the terms).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailflow.clock import parse_iso
from mailflow.pool import consent
from mailflow.pool.facts import FactCondition, Facts, parse_when

FEATURES = ("required_skills", "preferred_skills", "required_qualifications",
            "preferred_qualifications", "role", "stage", "rating", "recency", "intent")

# The documented default weights (docs/reference.md, "openings"): what `match` uses until
# `opening model` learns better ones from this company's outcomes.
DEFAULT_WEIGHTS: dict[str, float] = {
    "required_skills": 3.0, "preferred_skills": 1.0, "required_qualifications": 2.0,
    "preferred_qualifications": 0.5, "role": 2.0, "stage": 1.0, "rating": 1.0, "recency": 0.5,
    "intent": 1.0,
}
PURPOSE = "rescout"
RECENCY_HALF_LIFE_DAYS = 365.0

Terms = Callable[[str], frozenset[str]]


def fold(text: str) -> str:
    """NFKC, case-folded, trimmed: ＪＡＶＡ, java and Java are one skill."""
    return unicodedata.normalize("NFKC", text).casefold().strip()


@dataclass(frozen=True)
class Want:
    """What an opening asks for, as ranking needs it."""

    title: str
    description: str = ""
    required_skills: tuple[str, ...] = ()
    preferred_skills: tuple[str, ...] = ()
    required_qualifications: tuple[str, ...] = ()
    preferred_qualifications: tuple[str, ...] = ()
    conditions: tuple[FactCondition, ...] = ()  # openings.toml's `when` (pool.facts)

    @classmethod
    def of(cls, opening: Mapping[str, Any]) -> Want:
        def listed(key: str) -> tuple[str, ...]:
            return tuple(str(v) for v in opening.get(key) or ())

        return cls(str(opening.get("title") or ""), str(opening.get("description") or ""),
                   listed("required_skills"), listed("preferred_skills"),
                   listed("required_qualifications"), listed("preferred_qualifications"),
                   tuple(parse_when(opening.get("when") or {})[0]))


@dataclass(frozen=True)
class Match:
    """One candidate's place: the score, its parts, and the features they came from."""

    candidate_id: str
    email: str
    name: str
    score: float
    parts: dict[str, float]
    features: dict[str, float]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.candidate_id, "email": self.email, "name": self.name,
                "score": round(self.score, 4),
                "parts": {k: round(v, 4) for k, v in self.parts.items()},
                "features": {k: round(v, 4) for k, v in self.features.items()}}


@dataclass
class Ranking:
    matches: list[Match] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)  # reason -> how many


# -- who may be proposed ---------------------------------------------------------------------


def _unmet(want: Want, candidate: Mapping[str, Any], notified: frozenset[str]) -> str | None:
    facts = Facts(candidate, notified)  # type: ignore[arg-type]
    failed = next((c for c in want.conditions if c.fails(facts) is not None), None)
    return None if failed is None else f"not {failed.description}"


def left_out_because(candidate: Mapping[str, Any], notified: Iterable[str]) -> str | None:
    """Why the candidate is not ranked for any opening, or None."""
    held = consent.state(candidate, PURPOSE, notified)  # type: ignore[arg-type]
    if not held.holds:
        explicit = consent.explicit(candidate, PURPOSE)  # type: ignore[arg-type]
        return "opted out of rescout" if explicit else "no rescout consent"
    if candidate.get("rescout_ok") is False:
        return "HR marked rescout_ok = false"
    if any(not hire.get("left_on") for hire in candidate.get("hires") or []):
        return "hired here now"
    return None


# -- the features ----------------------------------------------------------------------------


def names(values: Any) -> set[str]:
    """Folded names from a list of names or of `{name: …}` records (with provenance)."""
    found = set()
    for value in values or ():
        name = value.get("name") or value.get("value") if isinstance(value, dict) else value
        if name:
            found.add(fold(str(name)))
    return found


def texts(value: Any) -> list[str]:
    """Every string in a field that may be text, a list, or records with provenance."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [str(value[k]) for k in ("value", "text", "name", "role", "title")
                if isinstance(value.get(k), str)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in texts(item)]
    return []


def covered(wanted: tuple[str, ...], have: set[str]) -> float:
    """The share of `wanted` the candidate has (0 when nothing is wanted)."""
    want = {fold(w) for w in wanted if w.strip()}
    return len(want & have) / len(want) if want else 0.0


def role_match(want: Want, candidate: Mapping[str, Any], terms: Terms) -> float:
    """How much of the opening's title (70 %) and description (30 %) the candidate's desired
    role, career and positions applied for say."""
    mine = " ".join(texts(candidate.get("desired_role")) + texts(candidate.get("career"))
                    + [str(a.get("position") or "") for a in candidate.get("applications") or []])
    have = terms(mine)
    title, body = terms(want.title), terms(want.description)
    share = [len(t & have) / len(t) if t else None for t in (title, body)]
    if share[0] is None and share[1] is None:
        return 0.0
    if share[0] is None or share[1] is None:
        return share[0] if share[1] is None else share[1]  # type: ignore[return-value]
    return 0.7 * share[0] + 0.3 * share[1]


_STAGE_DEPTH = ((("内定", "offer", "採用"), 1.0), (("最終",), 0.8), (("三次", "3次"), 0.7),
                (("二次", "2次"), 0.6), (("一次", "1次", "面接", "interview"), 0.4),
                (("書類", "screening", "適性"), 0.2))


def stage_depth(stage: str) -> float:
    folded = fold(stage)
    return next((depth for words, depth in _STAGE_DEPTH if any(w in folded for w in words)),
                0.1 if folded else 0.0)


def stage_reached(candidate: Mapping[str, Any]) -> float:
    """How far the candidate got in earlier selections (書類 0.2 … 最終 0.8, 内定 1)."""
    stages = [str(s.get("stage") or "") for s in candidate.get("stages") or []]
    rejection = candidate.get("rejection") or {}
    stages.append(str(rejection.get("stage") or ""))
    return max((stage_depth(s) for s in stages), default=0.0)


_RATING_MARKS = {"◎": 1.0, "○": 0.75, "〇": 0.75, "△": 0.4, "×": 0.0, "✕": 0.0,
                 "s": 1.0, "a": 1.0, "b": 0.75, "c": 0.5, "d": 0.25, "e": 0.0,
                 "高": 1.0, "中": 0.5, "低": 0.0}


def rating_value(rating: str) -> float | None:
    """A rating as interviewers write it (4/5, 4, A–E, ◎○△×, 高中低), in [0, 1]."""
    text = fold(rating)
    number = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:/\s*(\d+))?", text)
    if number:
        top = float(number.group(2) or 5)
        return max(0.0, min(1.0, float(number.group(1)) / top)) if top else None
    return _RATING_MARKS.get(text[:1]) if text else None


def best_rating(candidate: Mapping[str, Any]) -> float:
    found = [rating_value(str(s.get("rating") or "")) for s in candidate.get("stages") or []]
    return max((r for r in found if r is not None), default=0.0)


def last_seen(candidate: Mapping[str, Any]) -> datetime | None:
    times = [a.get("applied_at") for a in candidate.get("applications") or []]
    times += [(candidate.get("rejection") or {}).get("at"), candidate.get("created_at")]
    times += [s.get("at") for s in candidate.get("stages") or []]
    parsed = []
    for value in filter(None, times):
        try:
            parsed.append(parse_iso(str(value)))
        except ValueError:
            continue
    return max(parsed, default=None)


def recency(candidate: Mapping[str, Any], now: datetime) -> float:
    """1 for someone seen today, halving each year since their last application or stage."""
    seen = last_seen(candidate)
    if seen is None:
        return 0.0
    days = max(0.0, (now - seen).total_seconds() / 86400)
    return math.pow(0.5, days / RECENCY_HALF_LIFE_DAYS)


def intent(candidate: Mapping[str, Any]) -> float:
    """The candidate's own wish to hear of openings (`reapply_intent`): 1 yes, -1 no, 0 unsaid."""
    said = candidate.get("reapply_intent")
    wish = said.get("wish") if isinstance(said, dict) else None
    return 1.0 if wish is True else -1.0 if wish is False else 0.0


def features(want: Want, candidate: Mapping[str, Any], terms: Terms,
             now: datetime) -> dict[str, float]:
    skills, qualifications = names(candidate.get("skills")), names(
        candidate.get("qualifications"))
    return {
        "required_skills": covered(want.required_skills, skills),
        "preferred_skills": covered(want.preferred_skills, skills),
        "required_qualifications": covered(want.required_qualifications, qualifications),
        "preferred_qualifications": covered(want.preferred_qualifications, qualifications),
        "role": role_match(want, candidate, terms),
        "stage": stage_reached(candidate),
        "rating": best_rating(candidate),
        "recency": recency(candidate, now),
        "intent": intent(candidate),
    }


def score(values: Mapping[str, float], weights: Mapping[str, float]) -> tuple[float,
                                                                            dict[str, float]]:
    """The score and its parts (they add up to it)."""
    total = sum(abs(weights.get(f, 0.0)) for f in FEATURES) or 1.0
    parts = {f: weights.get(f, 0.0) * values.get(f, 0.0) / total for f in FEATURES}
    return sum(parts.values()), parts


def rank(want: Want, candidates: Iterable[Mapping[str, Any]], notified: Iterable[str],
         terms: Terms, now: datetime,
         weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> Ranking:
    """Every candidate who may be proposed, best first (ties: the candidate id)."""
    notified = frozenset(notified)
    ranking = Ranking()
    for candidate in candidates:
        why = left_out_because(candidate, notified) or _unmet(want, candidate, notified)
        if why is not None:
            ranking.left_out[why] = ranking.left_out.get(why, 0) + 1
            continue
        values = features(want, candidate, terms, now)
        total, parts = score(values, weights)
        emails = candidate.get("emails") or []
        ranking.matches.append(Match(str(candidate["id"]), str(emails[0]) if emails else "",
                                     str(candidate.get("name") or ""), total, parts, values))
    ranking.matches.sort(key=lambda m: (-m.score, m.candidate_id))
    return ranking
