"""Learning the score's weights from this company's outcomes (`mailflow opening model`).

An example is one `opening_matched` event — a candidate proposed for an opening, with the
features they had then (recorded on the event) — and its outcome: positive when the candidate
applied again after it (a dated application later than the event) or was hired on or after its
day. Below `MIN_EXAMPLES` examples, or with fewer than `MIN_EACH` of either outcome, nothing is
fitted: the documented default weights stay. Otherwise a logistic regression (scikit-learn,
L2, balanced classes) is fitted on a stratified 70 % of the examples (seed `SEED`) and both the
learned and the default weights rank the held-out 30 %: the learned ones are used only when
their AUC there is higher; else the defaults stay, and the answer says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailflow.openings.ranking import DEFAULT_WEIGHTS, FEATURES, score

MIN_EXAMPLES = 60
MIN_EACH = 10
SEED = 20
HELD_OUT = 0.3


@dataclass(frozen=True)
class Example:
    features: dict[str, float]
    positive: bool


@dataclass
class Model:
    """What `opening model` found and which weights `match` uses."""

    used: str  # "learned" | "default"
    reason: str
    examples: int
    positives: int
    weights: dict[str, float]
    learned: dict[str, float] | None = None
    held_out: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> which -> v

    def as_json(self) -> dict[str, Any]:
        return {"used": self.used, "reason": self.reason, "examples": self.examples,
                "positives": self.positives, "min_examples": MIN_EXAMPLES, "min_each": MIN_EACH,
                "weights": self.weights, "learned_weights": self.learned,
                "default_weights": dict(DEFAULT_WEIGHTS), "held_out": self.held_out}


def outcome(candidate: Mapping[str, Any], at: str) -> bool:
    """Whether the candidate applied again after `at` (ISO time) or was hired from its day."""
    later = any(str(a.get("applied_at") or "") > at for a in candidate.get("applications") or [])
    hired = any(str(h.get("on") or "")[:10] >= at[:10] for h in candidate.get("hires") or [])
    return later or hired


def _precision_at(k: int, scores: Sequence[float], labels: Sequence[bool]) -> float:
    top = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
    return sum(1 for i in top if labels[i]) / len(top) if top else 0.0


def fit(examples: Sequence[Example]) -> Model:
    positives = sum(e.positive for e in examples)
    negatives = len(examples) - positives
    if len(examples) < MIN_EXAMPLES or min(positives, negatives) < MIN_EACH:
        return Model("default", f"too little data: {len(examples)} outcomes ({positives} "
                     f"positive); at least {MIN_EXAMPLES} with {MIN_EACH} of each are needed, "
                     "so the default weights stay", len(examples), positives,
                     dict(DEFAULT_WEIGHTS))
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    x = [[e.features.get(f, 0.0) for f in FEATURES] for e in examples]
    y = [e.positive for e in examples]
    x_fit, x_test, y_fit, y_test = train_test_split(x, y, test_size=HELD_OUT,
                                                    random_state=SEED, stratify=y)
    model = LogisticRegression(class_weight="balanced", max_iter=1000)
    model.fit(x_fit, y_fit)
    learned = {f: round(float(w), 4) for f, w in zip(FEATURES, model.coef_[0], strict=True)}
    mine = [score(dict(zip(FEATURES, row, strict=True)), learned)[0] for row in x_test]
    default = [score(dict(zip(FEATURES, row, strict=True)), DEFAULT_WEIGHTS)[0]
               for row in x_test]
    held_out = {
        "auc": {"learned": round(float(roc_auc_score(y_test, mine)), 4),
                "default": round(float(roc_auc_score(y_test, default)), 4)},
        "precision_at_10": {"learned": round(_precision_at(10, mine, y_test), 4),
                            "default": round(_precision_at(10, default, y_test), 4)},
    }
    auc = held_out["auc"]
    if auc["learned"] > auc["default"]:
        return Model("learned", f"the learned weights rank the held-out {len(y_test)} better "
                     f"(AUC {auc['learned']:.3f} against {auc['default']:.3f})", len(examples),
                     positives, learned, learned, held_out)
    return Model("default", f"the learned weights do not beat the defaults on the held-out "
                 f"{len(y_test)} (AUC {auc['learned']:.3f} against {auc['default']:.3f}), so "
                 "the default weights stay", len(examples), positives, dict(DEFAULT_WEIGHTS),
                 learned, held_out)
