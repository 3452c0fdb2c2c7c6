"""`rewrite` mode: rejection drafts in the Drafts folder rewritten in place — once, safely.

Mail clients autosave (each save is a new message) and keep their own copy while the compose
window is open, so a draft is acted on only when its newest save has been quiet for
`quiet_seconds`; saves of one draft are recognised by Message-ID, and the newest counts.
mailflow's own work carries an `X-Mailflow-Relay` header and the invitation link, so it is never
rewritten twice.

Replacing is journaled: (1) the rewritten bytes and the candidate's records are written to the
store in one transaction; (2) the new draft is APPENDed with \\Draft and confirmed (APPENDUID, or
a search for the header); (3) only the old draft's UID is removed (UID EXPUNGE, or MOVE to
Trash; never a plain EXPUNGE). A crash anywhere converges on the next scan: a journaled rewrite
whose draft is not in the folder is appended, one that is there is not appended again, and the
old UID is removed if it is still there.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mailflow import faults
from mailflow.clock import Clock, iso
from mailflow.mailbox.imap import Mailbox
from mailflow.mailbox.pipeline import message_key, raw_message_id
from mailflow.store.base import Store

log = logging.getLogger("mailflow.drafts")

HEADER = "X-Mailflow-Relay"


@dataclass(frozen=True)
class Rewritten:
    """What the rewriter made of a draft: new bytes carrying `HEADER: marker`, or why not."""

    raw: bytes | None
    marker: str
    reason: str


Rewriter = Callable[[bytes], Rewritten]


def has_marker(raw: bytes) -> bool:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].lower()
    return b"\n" + HEADER.lower().encode() + b":" in b"\n" + head


class DraftDesk:
    """Watches one Drafts folder: decides what is quiet, rewrites, journals, replaces."""

    def __init__(self, store: Store, clock: Clock, rewriter: Rewriter, quiet_seconds: float,
                 lane: threading.RLock, trash: str | None = None,
                 reread: Callable[[bytes], None] | None = None, mailbox: str = "") -> None:
        self.store = store
        self.mailbox = mailbox  # on a store shared by several mailboxes: whose journal is whose
        self.clock = clock
        self.rewriter = rewriter
        self.quiet_seconds = quiet_seconds
        self.lane = lane
        self.trash = trash
        self.first_seen: dict[tuple[int, int], float] = {}
        self.decided: set[str] = set()  # keys of drafts already judged not to be rewritten
        self.reread = reread  # sees each of mailflow's own drafts once (HR may have corrected it)
        self.reread_done: set[tuple[int, int]] = set()

    def scan(self, mailbox: Mailbox, folder: str) -> float | None:
        """One pass over the folder; returns seconds until a draft becomes quiet, if any."""
        state = mailbox.select(folder)
        self._finish_journaled(mailbox, folder, state.uidvalidity)
        uids = mailbox.search(["NOT", "DELETED"])
        now = time.monotonic()
        self.first_seen = {(state.uidvalidity, uid): self.first_seen.get(
            (state.uidvalidity, uid), now) for uid in uids}  # drafts gone are forgotten
        newest: dict[str, int] = {}
        heads = mailbox.fetch_headers(uids) if uids else {}
        ours: list[int] = []
        for uid in uids:
            head = heads.get(uid, b"")
            if has_marker(head):
                ours.append(uid)
                continue
            identity = raw_message_id(head + b"\r\n\r\n") or f"uid:{uid}"
            newest[identity] = max(uid, newest.get(identity, 0))
        wait: float | None = None
        for identity, uid in newest.items():
            quiet_for = now - self.first_seen[(state.uidvalidity, uid)]
            if quiet_for < self.quiet_seconds:
                remaining = self.quiet_seconds - quiet_for
                wait = remaining if wait is None else min(wait, remaining)
                continue
            older = [u for u in uids if u < uid and identity != f"uid:{uid}"
                     and raw_message_id(heads.get(u, b"") + b"\r\n\r\n") == identity]
            self._consider(mailbox, folder, state.uidvalidity, uid, older)
        self._reread(mailbox, state.uidvalidity, ours)
        return wait

    def _reread(self, mailbox: Mailbox, uidvalidity: int, ours: list[int]) -> None:
        """Show each rewritten draft once to ``reread``: HR may have written
        `#mailflow rejection=no` into it since (a correction to learn from)."""
        new = [uid for uid in ours if (uidvalidity, uid) not in self.reread_done]
        if self.reread is None or not new:
            return
        for fetched in mailbox.fetch(new):
            with self.lane, self.store.transaction():
                self.reread(fetched.raw)
        self.reread_done.update((uidvalidity, uid) for uid in new)

    def _consider(self, mailbox: Mailbox, folder: str, uidvalidity: int, uid: int,
                  older: list[int]) -> None:
        fetched = next(iter(mailbox.fetch([uid])), None)
        if fetched is None:
            return
        key = message_key(fetched.raw)
        if key in self.decided or self.store.get("journal", key):
            return
        with self.lane, self.store.transaction():
            outcome = self.rewriter(fetched.raw)
            if outcome.raw is None:
                self.decided.add(key)
                log.info("draft %s:%d left alone: %s", uidvalidity, uid, outcome.reason)
                return
            self.store.put("journal", key, {
                "key": key, "state": "journaled", "kind": "draft-rewrite", "folder": folder,
                "mailbox": self.mailbox,
                "uidvalidity": uidvalidity, "old_uids": [uid, *older], "marker": outcome.marker,
                "raw": base64.b64encode(outcome.raw).decode("ascii"),
                "at": iso(self.clock.now()),
            })
        log.info("draft %s:%d journaled for rewrite (%s)", uidvalidity, uid, outcome.marker)
        faults.point("draft:journaled")
        self._finish_journaled(mailbox, folder, uidvalidity)

    def _finish_journaled(self, mailbox: Mailbox, folder: str, uidvalidity: int) -> None:
        for doc in self.store.find("journal", "state", "journaled"):
            if (doc.get("kind") == "draft-rewrite" and doc["folder"] == folder
                    and doc.get("mailbox", "") == self.mailbox):  # never another mailbox's
                self._replace(mailbox, doc, uidvalidity)

    def _replace(self, mailbox: Mailbox, doc: dict[str, object], uidvalidity: int) -> None:
        marker = str(doc["marker"])
        raw = base64.b64decode(str(doc["raw"]))
        folder = str(doc["folder"])
        present = mailbox.search(["HEADER", HEADER, marker])
        if not present:
            appended = mailbox.append(folder, raw, flags=[b"\\Draft", b"\\Seen"])
            faults.point("draft:appended")
            if appended is None:  # no UIDPLUS: confirm by searching for our header
                mailbox.select(folder)
                present = mailbox.search(["HEADER", HEADER, marker])
                if not present:
                    raise RuntimeError(f"appended draft {marker} not found in {folder}")
            log.info("draft %s appended", marker)
        mailbox.select(folder)
        old = doc["old_uids"] if doc["uidvalidity"] == uidvalidity else []
        assert isinstance(old, list)
        still = [u for u in mailbox.search(["UID", ",".join(str(u) for u in old)])
                 if u in old] if old else []
        if still:
            mailbox.remove(still, self.trash)
        faults.point("draft:removed")
        with self.lane:
            self.store.put("journal", str(doc["key"]), {**doc, "state": "done",
                                                        "done_at": iso(self.clock.now())})
        log.info("draft %s replaced (old UIDs %s removed)", marker, still)
