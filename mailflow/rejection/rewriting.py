"""The rewrite of one rejection mail: HR's own bytes, plus a personal Career Relay invitation.

parse → decide (`rejection.toml`) → a rejection to one known candidate, not yet invited →
render the invitation → splice it into the plain and HTML leaves (the `#mailflow` lines
removed) → one header field `X-Mailflow-Relay: <rejection id>` added at the end of the top header
block. Every other byte stays as it was. Pure, except for what ``Invitations`` does (look the
candidate up; issue the link, which records the rejection when it is a `RelayDesk`).

Nothing is recorded before the rewrite is known to work: a first splice with a throwaway link
proves that the templates render and every body leaf decodes exactly; only then is the link
issued and the mail spliced for real. A mail that is not a rejection, already carries an
invitation, or has no single known candidate among its recipients is left alone; a mail with a
leaf that cannot be decoded exactly is refused (left alone, with the reasons, for an alert).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jinja2

from mailflow.clock import Clock
from mailflow.errors import MailflowError, ProblemsError
from mailflow.mail.parse import Mail, parse_mail
from mailflow.mail.parse.headers import addresses
from mailflow.mail.people import normalise_email
from mailflow.mail.rewrite.leaves import LeafKind
from mailflow.mail.rewrite.markers import strip_html, strip_plain
from mailflow.mail.rewrite.mime import parse_header_block
from mailflow.mail.rewrite.placement import Where, place_html, place_plain
from mailflow.mail.rewrite.render import (
    InvitationContext,
    check_templates,
    is_already_invited,
    render_invitation,
)
from mailflow.mail.rewrite.splice import LeafChange, Refusal, Spliced, splice
from mailflow.pool.consent_links import consent_link
from mailflow.pool.records import Candidate
from mailflow.rejection.recognise import Decision, RejectionRules, decide, load_rejection_rules
from mailflow.relay.desk import PREVIEW, Invitations, Invite, RejectionFacts, RelayDesk, relay_link
from mailflow.settings.config import Config
from mailflow.store.base import Store

HEADER = "X-Mailflow-Relay"

Outcome = Literal["rewritten", "left_alone", "refused"]


@dataclass(frozen=True)
class RewriteSettings:
    """What a rewrite needs from the configuration."""

    rules: RejectionRules
    templates_dir: Path
    public_url: str
    company_name: str

    @classmethod
    def from_config(cls, config: Config) -> RewriteSettings:
        """Loads `rejection.toml` (raises ProblemsError when broken)."""
        return cls(load_rejection_rules(config.rules_dir), config.templates_dir,
                   config.web.public_url, config.company.name)


@dataclass(frozen=True)
class RejectionRewrite:
    """What happened to one mail, and why. ``raw`` is the new bytes, or the original ones when
    the mail was left alone or refused; ``changed`` are the rewritten leaves (offsets in
    ``raw``); ``placed`` says where the invitation went in each part."""

    outcome: Outcome
    why: str
    decision: Decision
    raw: bytes
    changed: tuple[LeafChange, ...] = ()
    placed: dict[str, Where] = field(default_factory=dict)
    candidate_id: str | None = None
    candidate_email: str | None = None
    facts: RejectionFacts = field(default_factory=RejectionFacts)
    invite: Invite | None = None
    problems: tuple[str, ...] = ()

    @property
    def rewritten(self) -> bool:
        return self.outcome == "rewritten"


class TemplateBroken(MailflowError):
    """The invitation templates cannot be rendered (`mailflow check` lists why)."""


def _render(settings: RewriteSettings, context: InvitationContext) -> tuple[str, str]:
    try:
        invitation = render_invitation(settings.templates_dir, context)
    except jinja2.TemplateError as exc:
        problems = check_templates(settings.templates_dir)
        if problems:
            raise ProblemsError(problems) from exc
        raise TemplateBroken(f"{settings.templates_dir}: invitation template: {exc}") from exc
    return invitation.text, invitation.html


def _splice(raw: bytes, text: str, html: str) -> tuple[Spliced, dict[str, Where]]:
    placed: dict[str, Where] = {}

    def transform(body: str, kind: LeafKind) -> str:
        if kind == "plain":
            done = place_plain(strip_plain(body).text, text)
        else:
            done = place_html(strip_html(body).text, html)
        placed[kind] = done.where
        return done.text

    return splice(raw, transform), placed


def add_header(raw: bytes, value: str) -> tuple[bytes, int, int]:
    """``raw`` with `X-Mailflow-Relay: value` at the end of its top header block; also where
    the field was inserted and its length in bytes."""
    top = parse_header_block(raw, 0, len(raw))
    at = top.end
    before = b"" if at == 0 or raw[at - 1 : at] == b"\n" else top.eol
    after = top.eol if top.body_start == top.end and at < len(raw) else b""
    line = before + f"{HEADER}: {value}".encode("ascii") + top.eol + after
    return raw[:at] + line + raw[at:], at, len(line)


def _shifted(change: LeafChange, at: int, size: int) -> LeafChange:
    return dataclasses.replace(
        change,
        new_start=change.new_start + size if change.new_start > at else change.new_start,
        new_end=change.new_end + size if change.new_end >= at else change.new_end,
    )


def _candidates_addressed(mail: Mail, desk: Invitations) -> dict[str, str]:
    """candidate id → address, for every To/Cc/Bcc address that is a known candidate."""
    found: dict[str, str] = {}
    bcc = addresses(mail.header_all("bcc"))
    for address in (*mail.to, *mail.cc, *bcc):
        if not address.email:
            continue
        candidate = desk.candidate_for(address.email)
        if candidate is not None:
            found.setdefault(str(candidate["id"]), normalise_email(address.email))
    return found


def _facts(mail: Mail, decision: Decision, candidate: Candidate) -> RejectionFacts:
    note = decision.note
    stages = candidate.get("stages") or []
    stage = note.stage or (str(stages[-1].get("stage", "")) if stages else "")
    return RejectionFacts(note.reason, stage, note.rescout, mail.message_id)


def _context(settings: RewriteSettings, candidate: Candidate, link: str,
             consent_url: str) -> InvitationContext:
    applications = candidate.get("applications") or []
    position = applications[-1].get("position", "") if applications else ""
    return InvitationContext(link=link, company_name=settings.company_name,
                             candidate_name=str(candidate.get("name") or ""),
                             position=str(position or candidate.get("desired_role") or ""),
                             consent_url=consent_url)


def _left_alone(raw: bytes, decision: Decision, why: str) -> RejectionRewrite:
    return RejectionRewrite("left_alone", why, decision, raw,
                            problems=decision.note.problems)


def rewrite_rejection(raw: bytes, settings: RewriteSettings, desk: Invitations,
                      to_candidate: str | None = None) -> RejectionRewrite:
    """Rewrite one outgoing mail if it is a rejection to invite; see the module's docstring.

    ``to_candidate`` replaces the recipients the candidate is looked up by (a preview that tries
    the templates on any mail).
    """
    mail = parse_mail(raw)
    recipients = [to_candidate] if to_candidate else None
    decision = decide(mail, settings.rules, desk.candidate_for, recipients)
    if not decision.rejection:
        return _left_alone(raw, decision, f"not a rejection ({decision.rule})")
    if mail.header(HEADER) is not None:
        return _left_alone(raw, decision, f"already rewritten by mailflow ({HEADER} header)")
    if is_already_invited(mail.text, mail.html, settings.public_url):
        return _left_alone(raw, decision, "already carries a Career Relay invitation")
    candidate = desk.candidate_for(decision.candidate) if decision.candidate else None
    if candidate is None:
        return _left_alone(raw, decision, "no recipient is a known candidate")
    addressed = {} if to_candidate else _candidates_addressed(mail, desk)
    if len(addressed) > 1:
        shown = ", ".join(sorted(addressed))  # candidate ids: the reason is logged
        return _left_alone(raw, decision, f"addressed to {len(addressed)} candidates ({shown}); "
                           "a personal link needs exactly one")
    who = (str(candidate["id"]), decision.candidate)
    facts = _facts(mail, decision, candidate)
    try:  # prove it can be done before anything is recorded
        _splice(raw, *_render(settings, _context(
            settings, candidate, relay_link(settings.public_url, PREVIEW),
            consent_link(settings.public_url, PREVIEW))))
    except Refusal as exc:
        return RejectionRewrite("refused", "the mail cannot be rewritten exactly", decision,
                                raw, (), {}, *who, facts,
                                problems=(*decision.note.problems, *exc.reasons))
    invite = desk.issue(candidate, facts)
    spliced, placed = _splice(raw, *_render(settings, _context(settings, candidate, invite.link,
                                                               invite.consent_link)))
    new_raw, at, size = add_header(spliced.raw, invite.rejection_id)
    changed = tuple(_shifted(change, at, size) for change in spliced.changed)
    return RejectionRewrite("rewritten", "invitation added", decision, new_raw, changed, placed,
                            *who, facts, invite, decision.note.problems)


def diff(change: LeafChange) -> str:
    """A unified diff of a changed leaf's decoded text (before and after)."""
    name = f"text/{change.leaf.kind}"
    return "\n".join(difflib.unified_diff(
        change.old_text.splitlines(), change.new_text.splitlines(),
        f"{name} (before)", f"{name} (after)", lineterm=""))


def as_json(result: RejectionRewrite) -> dict[str, Any]:
    """The JSON shape of a result (without the bytes): `rewrite --json`, the control channel."""
    decision = result.decision
    invite = result.invite
    return {
        "outcome": result.outcome,
        "why": result.why,
        "decision": decision.as_json(),
        "candidate_id": result.candidate_id,
        "candidate_email": result.candidate_email,
        "reason": result.facts.reason,
        "stage": result.facts.stage,
        "rescout": result.facts.rescout,
        "link": invite.link if invite else None,
        "rejection_id": invite.rejection_id if invite else None,
        "recorded": bool(invite and invite.recorded),
        "changed": [{"part": f"text/{c.leaf.kind}", "where": result.placed.get(c.leaf.kind),
                     "charset": [c.old_charset, c.new_charset], "cte": [c.old_cte, c.new_cte],
                     "diff": diff(c)}
                    for c in result.changed],
        "problems": list(result.problems),
    }


def record_handler(config: Config, store: Store,
                   clock: Clock) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A control-channel handler (`rewrite.record`): args `raw` (base64) and `to_candidate`."""
    import base64

    def handle(args: dict[str, Any]) -> dict[str, Any]:
        raw = base64.b64decode(str(args["raw"]))
        desk = RelayDesk(store, clock, config.web.public_url)
        result = rewrite_rejection(raw, RewriteSettings.from_config(config), desk,
                                   args.get("to_candidate") or None)
        return {**as_json(result), "raw": base64.b64encode(result.raw).decode("ascii")}

    return handle
