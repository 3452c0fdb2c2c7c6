"""What the rejection rules and the evidence look at, read once from an outgoing mail (pure).

HR's own text is the readable body above any quoted original (`mail.rewrite.quotes`): for an
HTML-only mail, the HTML before its first quote container, rendered as text. `#mailflow` lines
are read from the own text only, so a quoted line (the candidate's, or an old one of HR's) never
steers a decision.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mailflow.mail.parse import Mail
from mailflow.mail.parse.html_text import html_to_text
from mailflow.mail.people import normalise_email
from mailflow.mail.rewrite.markers import strip_html, strip_plain
from mailflow.mail.rewrite.quotes import html_quote_start, own_plain
from mailflow.pool.records import Candidate
from mailflow.rejection.recognise.wording import normalise

YES = frozenset({"yes", "y", "true", "on", "1", "ok", "はい", "可"})
NO = frozenset({"no", "n", "false", "off", "0", "いいえ", "不可"})
IN_SELECTION = frozenset({"applied", "screening", "interviewing", "offered", ""})


@dataclass(frozen=True)
class HrNote:
    """What HR wrote on `#mailflow` lines, read for a rejection.

    ``rejection``/``rescout`` are None when HR said nothing (or something unreadable, which is
    listed in ``problems``).
    """

    rejection: bool | None = None
    reason: str = ""
    stage: str = ""
    rescout: bool | None = None
    fields: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def forces(self) -> bool:
        if self.rejection is not None:
            return self.rejection
        return "reason" in self.fields or "rescout" in self.fields

    @property
    def forbids(self) -> bool:
        return self.rejection is False


@dataclass(frozen=True)
class KnownCandidate:
    """What the decision may know of a recipient who is in the talent pool."""

    email: str
    status: str = ""
    message_ids: frozenset[str] = frozenset()

    @classmethod
    def of(cls, email: str, candidate: Candidate) -> KnownCandidate:
        return cls(normalise_email(email), str(candidate.get("status") or ""),
                   frozenset(str(m) for m in candidate.get("message_ids") or ()))

    @property
    def in_selection(self) -> bool:
        return self.status in IN_SELECTION


# The caller's answer for an address: the candidate, True (a candidate, nothing more known),
# or None/False (not in the pool).
Lookup = Callable[[str], "KnownCandidate | Candidate | bool | None"]


@dataclass(frozen=True)
class Outgoing:
    """The facts the rules look at, normalised once (see ``wording.normalise``)."""

    subject: str
    body: str
    recipients: tuple[str, ...]
    candidate: str | None  # the first recipient that is a known candidate
    note: HrNote
    known: KnownCandidate | None = None
    in_thread: bool = False  # a reply in that candidate's own thread


def _flag(fields: dict[str, str], key: str, problems: list[str]) -> bool | None:
    if key not in fields:
        return None
    value = unicodedata.normalize("NFKC", fields[key]).strip().lower()
    if value in YES:
        return True
    if value in NO:
        return False
    problems.append(f"#mailflow {key}={fields[key]}: expected yes or no; ignored")
    return None


def read_note(mail: Mail) -> HrNote:
    """HR's `#mailflow` fields from their own text, plain and HTML (plain wins for a key in
    both)."""
    plain, html = strip_plain(mail.text), strip_html(mail.html)
    fields = {**html.fields, **plain.fields}
    problems = list(dict.fromkeys((*plain.problems, *html.problems)))
    rejection = _flag(fields, "rejection", problems)
    rescout = _flag(fields, "rescout", problems)
    return HrNote(rejection, fields.get("reason", "").strip(), fields.get("stage", "").strip(),
                  rescout, fields, tuple(problems))


def own_text(mail: Mail) -> str:
    """HR's own text: the readable body above any quoted original, without `#mailflow` lines."""
    if mail.text:
        return own_plain(strip_plain(mail.text).text)
    html = strip_html(mail.html).text
    return own_plain(html_to_text(html[: html_quote_start(html)]))


def _known(email: str, answer: KnownCandidate | Candidate | bool | None
           ) -> KnownCandidate | None:
    if isinstance(answer, KnownCandidate):
        return answer
    if isinstance(answer, dict):
        return KnownCandidate.of(email, answer)
    return KnownCandidate(normalise_email(email)) if answer else None


def read_outgoing(mail: Mail, lookup: Lookup,
                  recipients: Sequence[str] | None = None) -> Outgoing:
    """The rules' view of ``mail``; ``recipients`` default to its To addresses."""
    found = recipients if recipients is not None else [a.email for a in mail.to if a.email]
    emails = tuple(dict.fromkeys(normalise_email(e) for e in found))
    known = next((k for k in (_known(e, lookup(e)) for e in emails) if k is not None), None)
    thread = {i for i in (mail.in_reply_to, *mail.references) if i}
    in_thread = bool(known and thread & known.message_ids)
    return Outgoing(normalise(mail.subject), normalise(own_text(mail)), emails,
                    known.email if known else None, read_note(mail), known, in_thread)
