"""What an INBOX mail will do (pure, given read-only pool lookups): the plan and why.

First match wins: a reply in a known candidate's thread is recorded on them (and the reply
listeners — the follow-ups — are told); otherwise the classifier decides whether it is an
application (which source rule, which applicant) or not (which filter or rule, why); an
application is matched to the pool (same email, same phone, or a new candidate), a rejected
candidate applying again tells HR, attachments are kept as documents and the body and résumés
read for the profile (`profile.reading`), and an application quoting a known referral code
(`intake.referral`) comes from source `referral`, its referrer recorded. A `#mailflow stage=…`
line, and HR's `#mailflow skills=…` profile fields, count only when the company wrote the mail
(`authorship`); otherwise they are ignored, and said so. `Applications` carries the plan out;
`mailflow explain` prints it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from mailflow.intake.authorship import company_wrote
from mailflow.intake.classify import Mailbox, classify_inbound
from mailflow.intake.referral import quoted_codes
from mailflow.intake.sources import SourceRules
from mailflow.intake.stages import marker_fields
from mailflow.mail.parse import Mail
from mailflow.pool.records import Applicant, Candidate
from mailflow.profile.corrections import line_corrections
from mailflow.profile.dictionary import SkillDictionary


class PoolView(Protocol):
    """The read-only questions the plan asks the talent pool (`TalentPool` answers them)."""

    def by_thread(self, message_ids: list[str]) -> Candidate | None: ...

    def match(self, applicant: Applicant) -> tuple[Candidate | None, str]: ...


@dataclass(frozen=True)
class Trust:
    """What tells the company's own mail from a forgery (see `authorship`)."""

    address: str
    domains: tuple[str, ...] = ()
    authserv_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageLine:
    """A `#mailflow stage=…` line, and whether it counts."""

    stage: str
    counts: bool
    why: str
    interviewer: str = ""
    rating: str = ""
    note: str = ""


@dataclass(frozen=True)
class InboxPlan:
    kind: Literal["reply", "application", "ignored"]
    rule: str
    reason: str
    thread: tuple[str, ...] = ()
    candidate: Candidate | None = None  # the candidate replied to, or the one the applicant is
    match: str = ""  # why the applicant is that candidate ("" for a new one)
    applicant: Applicant | None = None
    reapplication: bool = False
    documents: int = 0
    stage: StageLine | None = None
    effects: tuple[str, ...] = field(default_factory=tuple)
    referrer: str | None = None  # the id of the candidate whose referral code it quotes
    # HR's `#mailflow skills=…` line (the company wrote the mail): (field, values, as written)
    corrections: tuple[tuple[str, list[str], str], ...] = ()

    def as_json(self) -> dict[str, Any]:
        applicant = self.applicant
        return {
            "kind": self.kind, "rule": self.rule, "reason": self.reason,
            "candidate_id": self.candidate["id"] if self.candidate else None,
            "match": self.match or ("new candidate" if self.kind == "application" else ""),
            "applicant": None if applicant is None else {
                "name": applicant.name, "email": applicant.email,
                "phones": list(applicant.phones), "position": applicant.position,
                "source": applicant.source},
            "reapplication": self.reapplication, "documents": self.documents,
            "referrer": self.referrer,
            "stage": None if self.stage is None else {
                "stage": self.stage.stage, "counts": self.stage.counts, "why": self.stage.why},
            "effects": list(self.effects),
            "corrections": [{"field": f, "value": v} for f, v, _said in self.corrections],
        }


def _stage_line(mail: Mail, trust: Trust) -> StageLine | None:
    fields = marker_fields(mail)
    if not fields.get("stage"):
        return None
    said = company_wrote(mail, "inbox", trust.address, trust.domains, trust.authserv_ids)
    return StageLine(fields["stage"], said.company, said.why, fields.get("interviewer", ""),
                     fields.get("rating", ""), fields.get("note", ""))


def _stage_effect(line: StageLine | None) -> list[str]:
    if line is None:
        return []
    if line.counts:
        return [f"record stage {line.stage} (#mailflow line; {line.why})"]
    return [f"ignore the #mailflow stage line ({line.why})"]


# a referral code -> its referrer's candidate id, or None (`pool.referrals.referrer_of`)
Referrers = Callable[[str], str | None]


def _referrer(mail: Mail, referrers: Referrers | None, param: str,
              before: Candidate | None) -> str | None:
    for code in quoted_codes(mail, param) if referrers is not None else ():
        assert referrers is not None
        found = referrers(code)
        if found is not None and (before is None or found != before["id"]):
            return found
    return None




def _corrections(mail: Mail, trust: Trust, dictionary: SkillDictionary | None
                 ) -> tuple[tuple[str, list[str], str], ...]:
    """HR's profile fields on a `#mailflow` line, when the company wrote the mail."""
    said = line_corrections(marker_fields(mail), dictionary)
    if not said or not company_wrote(mail, "inbox", trust.address, trust.domains,
                                     trust.authserv_ids).company:
        return ()
    return tuple(said)


def plan_inbox(mail: Mail, pool: PoolView, rules: SourceRules, mailbox: Mailbox,
               trust: Trust, referrers: Referrers | None = None, code_param: str = "ref",
               dictionary: SkillDictionary | None = None) -> InboxPlan:
    """The plan for one INBOX mail (see the module's docstring)."""
    thread = tuple(i for i in (mail.in_reply_to, *mail.references) if i)
    known = pool.by_thread(list(thread)) if thread else None
    line = _stage_line(mail, trust)
    corrections = _corrections(mail, trust, dictionary)
    if known is not None:
        effects = [f"record the reply on candidate {known['id']}",
                   "tell the reply listeners (follow-ups stop when it answers one)",
                   *_stage_effect(line),
                   *(f"set {f} (#mailflow line, source hr)" for f, _v, _s in corrections)]
        return InboxPlan("reply", "thread", f"a reply in the thread of candidate {known['id']}",
                         thread, known, stage=line, effects=tuple(effects),
                         corrections=corrections)
    decision = classify_inbound(mail, rules, mailbox)
    applicant = decision.applicant
    if applicant is None:
        return InboxPlan("ignored", decision.rule, decision.reason,
                         effects=(f"nothing: not an application ({decision.rule})",))
    before, why = pool.match(applicant)
    referrer = _referrer(mail, referrers, code_param, before)
    if referrer is not None:
        applicant = replace(applicant, source="referral")
    documents = sum(1 for a in mail.attachments if not a.inline)
    reapplication = before is not None and before.get("status") == "rejected"
    effects = [f"add the application to candidate {before['id']} ({why})" if before
               else "create a new candidate"]
    if reapplication:
        effects.append("tell HR: a rejected candidate applied again")
    if referrer is not None:
        effects.append(f"source referral: referred by candidate {referrer}")
    if documents:
        effects.append(f"keep {documents} document(s)")
    effects.append("read skills, qualifications, career and desired role from the body"
                   + (" and the résumés" if documents else ""))
    effects += _stage_effect(line)
    effects += [f"set {f} (#mailflow line, source hr)" for f, _v, _s in corrections]
    return InboxPlan("application", decision.rule, decision.reason, thread, before, why,
                     applicant, reapplication, documents, line, tuple(effects),
                     referrer=referrer, corrections=corrections)
