"""An application's profile, read and recorded: the mail's body (source "mail") and each résumé
attached (source "attachment:<file name>"), through the dictionary, into the candidate's record
with provenance, and one `profile` event on the timeline saying which fields changed from where.

A document that cannot be read (broken, too large, too slow) is noted — an event
`document_unreadable` with its hash and the reason, and a log line naming only the hash — and
the intake goes on; a format résumés are not read from (images, archives …) is passed over in
silence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mailflow.mail.parse import Mail
from mailflow.pool.records import Candidate
from mailflow.pool.talent import TalentPool
from mailflow.profile.dictionary import SkillDictionary
from mailflow.profile.documents import kind_of, read_document
from mailflow.profile.extract import Found, read_profile
from mailflow.profile.provenance import add_found

log = logging.getLogger("mailflow.profile")


@dataclass(frozen=True)
class Reading:
    source: str  # "mail" | "attachment:<file name>"
    found: tuple[Found, ...]
    problem: str = ""
    sha256: str = ""


def read_mail(mail: Mail, dictionary: SkillDictionary) -> list[Reading]:
    """What the mail's body and its résumés say (documents in mail order)."""
    readings = [Reading("mail", tuple(read_profile(mail.readable_text, dictionary)))]
    for attachment in mail.attachments:
        name = attachment.filename or ""
        if attachment.inline or not kind_of(name, attachment.content_type):
            continue
        document = read_document(attachment.data, name, attachment.content_type)
        found = tuple(read_profile(document.text, dictionary)) if document.text else ()
        readings.append(Reading(f"attachment:{name or attachment.part}", found,
                                document.problem, attachment.sha256))
    return readings


def record_profile(pool: TalentPool, candidate: Candidate, readings: list[Reading]) -> None:
    """Put what the readings found on the candidate (HR's fields stay) and on the timeline."""
    changed = add_readings(candidate, readings, pool.now())
    if changed:
        pool.save(candidate)
    tell_profile(pool, candidate, readings, changed)


def add_readings(candidate: Candidate, readings: list[Reading],
                 at: str) -> dict[str, list[str]]:
    """What the readings found put on the record (the caller saves): the fields changed, by
    source."""
    changed: dict[str, list[str]] = {}
    for reading in readings:
        fields = add_found(candidate, reading.found, reading.source, at)
        if fields:
            changed[reading.source] = fields
    return changed


def tell_profile(pool: TalentPool, candidate: Candidate, readings: list[Reading],
                 changed: dict[str, list[str]]) -> None:
    """The timeline told: each unreadable document, and which fields changed from where."""
    for reading in readings:
        if reading.problem:
            log.warning("candidate %s: document %s: %s", candidate["id"], reading.sha256[:12],
                        reading.problem)
            # the document by its hash (`documents`): a file name can name the person
            pool.event(candidate["id"], "document_unreadable", sha256=reading.sha256,
                       reason=reading.problem)
    if changed:
        pool.event(candidate["id"], "profile", fields=changed)
