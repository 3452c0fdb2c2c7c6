"""Disclosure (APPI 法33): everything mailflow keeps about one person, written to a folder for
them, owner-only (the folder 0700, every file 0600), into an empty or new folder only.

`DIR/person.json` holds, as stored: the candidate record (consents included, also under
`consents`), their timeline (every event, with its number), the records of provision to third
parties, their follow-ups, the links issued (kind and when; the token itself is a secret and
stays out), their clicks, the partner's callbacks and the ledger entries about them, their
entries in the network pool (`network_links`: the entry ids this company published them as), the
audit entries that name them, and the outbox and quarantine records that concern them (by
candidate id, by address, or because the mail carries their address or phone: `person`).
Mails are given as they were: each outgoing or quarantined mail's exact bytes in
`DIR/mail/<outbox|quarantine>-<id>.eml`, named from the record (`mail_file`) rather than
inlined, so that what the person receives is what was kept. Their attachments are copied to
`DIR/attachments/` (named by number, hash and the original extension; the original file name is
in the record). Nothing is decoded or summarised: the record is the answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailflow.clock import Clock, iso
from mailflow.errors import MailflowError
from mailflow.pool.talent import TalentPool
from mailflow.privacy.at_rest import private_dir, write_private
from mailflow.privacy.erase import NoSuchCandidate, attachment_path
from mailflow.privacy.person import Person, mail_text
from mailflow.store.base import Doc, Store

_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,10}$")


@dataclass
class Disclosure:
    candidate_id: str
    record: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> bytes

    def counts(self) -> dict[str, int]:
        lists = {k: len(v) for k, v in self.record.items() if isinstance(v, list)}
        return {**lists, "files": len(self.files)}


def gather(store: Store, clock: Clock, data_dir: Path, ref: str) -> Disclosure:
    """Everything kept about the candidate `ref` (id or email), read from `store`."""
    candidate = TalentPool(store, clock).lookup(ref)
    if candidate is None:
        raise NoSuchCandidate(f"no candidate {ref}")
    person, cid = Person.of(candidate), candidate["id"]
    found = Disclosure(cid, {"exported_at": iso(clock.now()), "candidate": dict(candidate),
                             "consents": candidate.get("consents") or {}})
    record = found.record
    record["timeline"] = [{"seq": int(key), **(store.get("events", key) or {})}
                          for key in store.find_keys("events", "candidate_id", cid)]
    for kind in ("provisions", "followups", "callbacks", "ledger", "network_links"):
        record[kind] = store.find(kind, "candidate_id", cid)
    record["links"] = [{"kind": t.get("kind", "career_relay"), "issued_at": t.get("issued_at")}
                       for t in store.find("tokens", "candidate_id", cid)]
    record["clicks"] = [{k: c.get(k) for k in ("at", "class", "method")}
                        for c in store.scan("clicks") if c.get("candidate_id") == cid]
    record["audit"] = [{"seq": seq, **e} for seq, e in store.log("audit") if e.get("target") == cid]
    record["outbox"] = _mails(found, "outbox", [
        d for d in store.scan("outbox") if d.get("candidate_id") == cid
        or {str(a).lower() for a in d.get("to") or []} & set(person.emails) or _reaches(person, d)])
    record["quarantine"] = _mails(found, "quarantine", [
        d for d in store.scan("quarantine") if _reaches(person, d)
        or (person.relay_ref and d.get("ref") == person.relay_ref)])
    record["attachments"] = _attachments(found, data_dir, candidate.get("documents", []))
    return found


def _reaches(person: Person, doc: Doc) -> bool:
    raw = _raw(doc)
    return raw is not None and person.reached_in(mail_text(raw))


def _raw(doc: Doc) -> bytes | None:
    try:
        return base64.b64decode(doc["raw"]) if doc.get("raw") else None
    except (binascii.Error, ValueError):
        return None


def _mails(found: Disclosure, kind: str, docs: list[Doc]) -> list[Doc]:
    listed = []
    for doc in docs:
        entry = {k: v for k, v in doc.items() if k != "raw"}
        raw = _raw(doc)
        if raw is not None:
            name = f"mail/{kind}-{re.sub(r'[^A-Za-z0-9_-]', '_', str(doc.get('id')))}.eml"
            found.files[name] = raw
            entry["mail_file"] = name
        listed.append(entry)
    return listed


def _attachments(found: Disclosure, data_dir: Path, documents: list[Any]) -> list[Doc]:
    listed = []
    for n, document in enumerate(documents, 1):
        entry = dict(document)
        path = attachment_path(data_dir, str(document.get("sha256", "")))
        if document.get("stored") and path.is_file():
            suffix = Path(str(document.get("filename") or "")).suffix
            name = (f"attachments/{n:02d}-{str(document['sha256'])[:12]}"
                    f"{suffix if _SUFFIX.match(suffix) else ''}")
            found.files[name] = path.read_bytes()
            entry["file"] = name
        listed.append(entry)
    return listed


def check_target(folder: Path) -> None:
    """Refuse (exit 1) a folder that exists and is not empty, or a file."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise MailflowError(f"{folder} is not an empty folder; name a new or empty one")


def write(found: Disclosure, folder: Path) -> list[Path]:
    """Write the disclosure into `folder` (new or empty), owner-only; the files written."""
    check_target(folder)
    private_dir(folder)
    text = json.dumps(found.record, ensure_ascii=False, indent=2, default=str) + "\n"
    written = []
    for name, data in {"person.json": text.encode("utf-8"), **found.files}.items():
        path = folder / name
        if path.parent != folder:
            private_dir(path.parent)
        write_private(path, data)
        written.append(path)
    return written
