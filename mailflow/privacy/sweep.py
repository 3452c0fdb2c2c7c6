"""The kinds that keep mails as bytes (quarantine, outbox, journaled drafts) and HR's example
sentences, swept once for everyone being erased: each raw mail is decoded once (`person.mail_text`)
and checked against every person, so a purge of many candidates reads each mail once.
`erase` (see its docstring) says what happens to what is found."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from typing import Any

from mailflow.privacy.person import People, Person, Text, mail_text, squash
from mailflow.store.base import Doc, Store

UNSENT = ("queued", "sending", "unknown")


def _text(doc: Doc) -> Text | None:
    raw = doc.get("raw")
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return mail_text(base64.b64decode(raw))
    except (binascii.Error, ValueError):
        return Text.of(raw)


def sweep_raw_kinds(store: Store, people: Sequence[Person], now: str
                    ) -> Iterator[tuple[str, str]]:
    """Erase the people from the raw kinds; yields (candidate id, what) per thing changed."""
    index = People(people)
    yield from _quarantine(store, index)
    yield from _outbox(store, index, now)
    yield from _journal(store, index, now)
    yield from _examples(store, people)


def _concerned(people: People, doc: Doc) -> list[Person]:
    text = _text(doc)
    return people.reached_in(text) if text is not None else []


def _quarantine(store: Store, people: People) -> Iterator[tuple[str, str]]:
    refs = {p.relay_ref: p for p in people.all if p.relay_ref}
    for doc in list(store.scan("quarantine")):
        found = _concerned(people, doc) or ([refs[doc["ref"]]] if doc.get("ref") in refs else [])
        if found and store.delete("quarantine", str(doc["key"])):
            yield found[0].candidate_id, "quarantine"


def _outbox(store: Store, people: People, now: str) -> Iterator[tuple[str, str]]:
    ids = {p.candidate_id: p for p in people.all}
    for doc in list(store.scan("outbox")):
        found = [ids[doc["candidate_id"]]] if doc.get("candidate_id") in ids else []
        addressed = Text.of(" ".join(str(a) for a in doc.get("to") or []))
        found += [p for p in people.reached_in(addressed) if p not in found]
        found += [p for p in _concerned(people, doc) if p not in found]
        if not found:
            continue
        store.put("outbox", str(doc["id"]), _bodiless(doc, found, now))
        yield found[0].candidate_id, "outbox"


def _bodiless(doc: Doc, people: Sequence[Person], now: str) -> Doc:
    """The outbox record without the mail and without the people's addresses."""
    theirs = {e for p in people for e in p.emails}
    record: dict[str, Any] = {k: v for k, v in doc.items() if k != "raw"}
    record["to"] = [a for a in doc.get("to") or [] if str(a).lower() not in theirs]
    record["undeliverable"] = [u for u in doc.get("undeliverable") or []
                               if str(u.get("address", "")).lower() not in theirs]
    if doc.get("state") in UNSENT:
        record.update(state="failed", phase=None, last_error="erased before it was sent")
    elif isinstance(doc.get("last_error"), str) and any(p.named_in(doc["last_error"])
                                                        for p in people):
        record["last_error"] = "(erased)"
    record.update(erased=True, body_dropped_at=now, updated_at=now)
    return record


def _journal(store: Store, people: People, now: str) -> Iterator[tuple[str, str]]:
    ids = {p.candidate_id for p in people.all}
    for doc in list(store.scan("journal")):
        key = str(doc["key"])
        if doc.get("kind") == "career-relay-handover" and doc.get("candidate_id") in ids:
            if doc.get("state") in ("journaled", "sending"):
                store.put("journal", key, {**doc, "state": "failed", "sending_since": None,
                                           "reason": "candidate erased", "done_at": now})
                yield str(doc["candidate_id"]), "journal"
            continue
        found = _concerned(people, doc)
        if found:
            record = {k: v for k, v in doc.items() if k != "raw"}
            store.put("journal", key, {**record, "state": "done", "erased": True,
                                       "done_at": doc.get("done_at") or now})
            yield found[0].candidate_id, "journal"


def _examples(store: Store, people: Sequence[Person]) -> Iterator[tuple[str, str]]:
    for doc in list(store.scan("examples")):
        subject, sentences = doc.get("subject"), doc.get("sentences")
        said = squash(" ".join([str(subject or ""), *map(str, sentences or [])]))
        named = [p for p in people if p.mentioned(said)]
        if not named:
            continue
        masked = dict(doc)
        for person in named:
            if isinstance(subject, str):
                masked["subject"] = subject = person.mask(subject)
            if isinstance(sentences, list):
                masked["sentences"] = sentences = [person.mask(str(s)) for s in sentences]
        if masked != doc:
            store.put("examples", str(doc["key"]), masked)
            yield named[0].candidate_id, "examples_masked"
