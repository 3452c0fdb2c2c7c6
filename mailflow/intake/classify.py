"""Deciding what an inbound mail is (pure): not an application (and why), or an application
from which channel with which details. Every decision names the rule that made it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from mailflow.intake.sources import Source, SourceRules
from mailflow.mail.parse import Mail
from mailflow.mail.people import find_phones, normalise_email, normalise_phone
from mailflow.pool.records import Applicant


@dataclass(frozen=True)
class Decision:
    kind: Literal["application", "ignored"]
    rule: str
    reason: str
    applicant: Applicant | None = field(default=None)


@dataclass(frozen=True)
class Mailbox:
    """What the classifier knows of the company: its recruiting address and own domains."""

    address: str
    domains: tuple[str, ...] = ()

    def is_own(self, email: str) -> bool:
        email = normalise_email(email)
        domain = email.rpartition("@")[2]
        return email == normalise_email(self.address) or domain in {
            d.lower().lstrip("@") for d in self.domains}


# -- filters: mail that is never an application ------------------------------------------------

_AUTO_SUBJECT = re.compile(r"^\s*(auto(matic)?[ -]?reply|out of (the )?office|自動(返信|応答)|"
                           r"不在|undeliver|delivery status notification|returned mail|"
                           r"mail delivery failed)", re.IGNORECASE)
_DAEMON = re.compile(r"^(mailer-daemon|postmaster|no-?reply-?bounce)@", re.IGNORECASE)


def _auto_submitted(mail: Mail) -> str | None:
    value = (mail.header("Auto-Submitted") or "").strip().lower()
    if value and value != "no":
        return f"Auto-Submitted: {value}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"):
        if mail.header(name):
            return f"{name} header"
    return None


def _bounce(mail: Mail) -> str | None:
    content_type = (mail.header("Content-Type") or "").lower()
    if "multipart/report" in content_type:
        return "delivery status report (multipart/report)"
    if any(_DAEMON.match(a.email) for a in mail.from_):
        return "from a mailer daemon"
    if (mail.header("Return-Path") or "").strip() == "<>":
        return "null return path"
    return None


def _auto_subject(mail: Mail) -> str | None:
    return "auto-reply or bounce subject" if _AUTO_SUBJECT.search(mail.subject) else None


def _bulk(mail: Mail) -> str | None:
    if mail.header("List-Id"):
        return "mailing list (List-Id)"
    precedence = (mail.header("Precedence") or "").strip().lower()
    if precedence in ("bulk", "list", "junk"):
        return f"Precedence: {precedence}"
    return None


FILTERS: tuple[tuple[str, Callable[[Mail], str | None]], ...] = (
    ("auto-submitted", _auto_submitted),
    ("bounce", _bounce),
    ("auto-subject", _auto_subject),
    ("bulk", _bulk),
)


# -- sources ------------------------------------------------------------------------------------

def _sender_matches(source: Source, email: str) -> bool:
    email = normalise_email(email)
    for pattern in source.from_:
        pattern = pattern.lower()
        if email == pattern or (pattern.startswith("@") and email.endswith(pattern)):
            return True
    return False


def _first(pattern: str | None, text: str) -> str:
    if not pattern:
        return ""
    match = re.search(pattern, text, re.MULTILINE)
    if not match:
        return ""
    found = next((g for g in match.groups() if g), None) if match.groups() else match.group(0)
    return (found or "").strip()


def _applicant(source: Source, mail: Mail, sender_name: str, sender_email: str,
               mailbox: Mailbox) -> Applicant | None:
    body = mail.readable_text
    text = f"{mail.subject}\n{body}"
    ex = source.extract
    if source.direct:
        name, email = sender_name, sender_email
    else:
        name, email = _first(ex.name, text), _first(ex.email, text)
        if _sender_matches(source, email) or mailbox.is_own(email):
            email = ""  # the board's own address is never the candidate's
    if not email:
        return None
    phone = normalise_phone(_first(ex.phone, text)) if ex.phone else None
    phones = (phone,) if phone else tuple(find_phones(body)[:1]) if source.direct else ()
    return Applicant(
        name=name.strip(),
        email=normalise_email(email),
        phones=phones,
        position=_first(ex.position, text),
        note=_first(ex.note, text),
        source=source.name,
    )


def classify_inbound(mail: Mail, rules: SourceRules, mailbox: Mailbox) -> Decision:
    """First the filters (never applications), then the sources in file order."""
    if not mail.from_:
        return Decision("ignored", "no-sender", "no From address")
    sender = mail.from_[0]
    for name, check in FILTERS:
        reason = check(mail)
        if reason:
            return Decision("ignored", name, reason)
    if mailbox.is_own(sender.email):
        return Decision("ignored", "own-domain", "sent from the company's own domain")
    for source in rules.source:
        if source.direct:
            to_us = any(normalise_email(a.email) == normalise_email(mailbox.address)
                        for a in (*mail.to, *mail.cc)) or not mailbox.address
            if not to_us:
                continue
        elif not _sender_matches(source, sender.email):
            continue
        if source.subject and not re.search(source.subject, mail.subject):
            continue
        applicant = _applicant(source, mail, sender.name, sender.email, mailbox)
        if applicant is None:
            return Decision("ignored", source.name, "matched, but no candidate address found")
        return Decision("application", source.name, f"source {source.name}", applicant)
    return Decision("ignored", "no-source", "no source in sources.toml matched")
