"""What a mail in Sent will do (pure, given read-only lookups): the plan and why.

A rejection is not a step forward, so the rejection decision comes first. A rejection HR sent
without mailflow — not one mailflow sent itself (its Message-ID is in the outbox), not one that
already carries an invitation, to a known candidate whose rejection is not yet this mail — is
recorded, and, with `[rejection] invite_after_direct_send` and an outbox, followed by a separate
invitation. Any other mail may move its To/Cc candidates to a stage (`rules/stages.toml`, or a
`#mailflow stage=…` line, which always counts in Sent) and have their profile set by HR (a
`#mailflow skills=… qualifications=… career=… desired_role=…` line). `SentMail` carries the
plan out; `mailflow explain --folder sent` prints it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from mailflow.intake.stages import StageChange, StageRules, marker_fields, stage_change
from mailflow.mail.parse import Mail
from mailflow.mail.rewrite.render import is_already_invited
from mailflow.pool.records import Candidate
from mailflow.profile.corrections import line_corrections
from mailflow.profile.dictionary import SkillDictionary
from mailflow.rejection.recognise import Decision, RejectionRules, decide
from mailflow.rejection.rewriting import HEADER

Action = Literal["stages", "ours", "invited", "unknown", "recorded", "record", "invite"]


@dataclass(frozen=True)
class SentPlan:
    decision: Decision
    action: Action
    why: str
    candidate: Candidate | None = None
    change: StageChange | None = None
    staged: tuple[Candidate, ...] = ()
    effects: tuple[str, ...] = ()
    # `#mailflow skills=… qualifications=… career=… desired_role=…`: (field, values, as written)
    corrections: tuple[tuple[str, list[str], str], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action, "why": self.why,
                "candidate_id": self.candidate["id"] if self.candidate else None,
                "stage": self.change.stage if self.change else None,
                "stage_rule": self.change.rule if self.change else None,
                "stage_candidates": [c["id"] for c in self.staged],
                "corrections": [{"field": f, "value": v} for f, v, _said in self.corrections],
                "rejection": self.decision.as_json(), "effects": list(self.effects)}


def _stages(decision: Decision, mail: Mail, rules: StageRules,
            by_email: Callable[[str], Candidate | None],
            dictionary: SkillDictionary | None) -> SentPlan:
    change = stage_change(mail, rules)
    corrections = tuple(line_corrections(marker_fields(mail), dictionary))
    if change is None and not corrections:
        return SentPlan(decision, "stages", "no stage rule matched and no #mailflow stage line")
    staged = tuple(c for c in (by_email(a.email) for a in (*mail.to, *mail.cc)) if c)
    effects = [f"record stage {change.stage} on candidate {c['id']} ({change.rule})"
               for c in staged if change is not None]
    effects += [f"set {field} on candidate {c['id']} (#mailflow line, source hr)"
                for c in staged for field, _values, _said in corrections]
    why = f"stage {change.stage} ({change.rule})" if change else "profile set by #mailflow line"
    return SentPlan(decision, "stages", why, None, change, staged, tuple(effects), corrections)


def plan_sent(mail: Mail, rejection: RejectionRules, stages: StageRules,
              by_email: Callable[[str], Candidate | None],
              sent_by_mailflow: Callable[[str], bool],
              public_url: str, invite: bool,
              dictionary: SkillDictionary | None = None) -> SentPlan:
    """The plan for one mail HR sent (see the module's docstring); ``invite``: a separate
    invitation follows a rejection sent directly; ``dictionary``: the canonical names for a
    `#mailflow skills=` line."""
    decision = decide(mail, rejection, by_email)
    if not decision.rejection:
        return _stages(decision, mail, stages, by_email, dictionary)
    if mail.message_id and sent_by_mailflow(mail.message_id):
        return SentPlan(decision, "ours", "mailflow sent it (this is the filed copy)")
    if mail.header(HEADER) is not None or is_already_invited(mail.text, mail.html, public_url):
        return SentPlan(decision, "invited", "it already carries a Career Relay invitation")
    candidate = by_email(decision.candidate) if decision.candidate else None
    if candidate is None:
        return SentPlan(decision, "unknown", "no recipient is a known candidate")
    recorded = candidate.get("rejection")
    if (recorded.get("message_id") if recorded else None) == mail.message_id:
        return SentPlan(decision, "recorded", "this rejection is recorded already", candidate)
    if not invite:
        return SentPlan(decision, "record", "a rejection sent without mailflow", candidate,
                        effects=(f"record the rejection on candidate {candidate['id']}",))
    return SentPlan(decision, "invite", "a rejection sent without mailflow", candidate,
                    effects=(f"record the rejection on candidate {candidate['id']}",
                             "send the Career Relay invitation by a separate mail"))
