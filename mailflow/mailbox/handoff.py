"""Exactly-once hand-off from a folder to the pipeline.

Progress per folder is (UIDVALIDITY, last UID handled), moved in the same store transaction that
records the message's key and the pipeline's effects: a crash before the commit means the message
is handled again from scratch; after it, never again. A UIDVALIDITY change restarts from UID 0 and
known keys are skipped. A message whose pipeline fails is kept (raw bytes) in the retry queue and
the checkpoint moves on, so the messages after it are not held up; after `MAX_ATTEMPTS` it is
quarantined until an admin replays it. A mail over `[mailbox] max_message_bytes` is quarantined
at once with its size and without its body, which stays on the server: its replay fetches it
again (`refetch`), under the limit in force then. All are a `QuarantineItem` in the "quarantine"
kind; a document read from there becomes an item in one place, `as_quarantine_item`.

On a store several daemons share (PostgreSQL, a daemon per mailbox) each mailbox's checkpoints
are its own, keyed by the mailbox (`mailbox`): folder names and UIDs repeat across mailboxes.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import NotRequired, Protocol, TypedDict, cast

from mailflow.clock import Clock, iso, parse_iso
from mailflow.errors import MailflowError, UnreadableMail
from mailflow.mailbox.imap import Mailbox
from mailflow.mailbox.pipeline import Incoming, Pipeline, StageFailed
from mailflow.store.base import Doc, Store

log = logging.getLogger("mailflow.handoff")

MAX_ATTEMPTS = 5
BACKOFF_SECONDS: tuple[float, ...] = (10, 60, 300, 1800)
STATES = ("retrying", "quarantined", "replayed")


class QuarantineItem(TypedDict):
    """What could not be handled (kind "quarantine"): a message of a folder, kept with its raw
    bytes while it is retried and, once quarantined, until an admin replays it; or (role
    "callback") a partner callback whose ref no candidate carries (`relay.callbacks`)."""

    id: str  # the short id the admin names it by
    key: str  # its key in the store: the message's identity, or "callback:…"
    state: str  # one of STATES
    role: str  # the folder's role, or "callback"
    attempts: int
    reason: str
    updated_at: str
    raw: str  # base64: the mail, or the callback's body; "" for a mail over the size limit
    folder: NotRequired[str]  # a message: where it was found, and when it is tried again
    uidvalidity: NotRequired[int]
    uid: NotRequired[int]
    next_at: NotRequired[str]
    size: NotRequired[int]  # a mail over the size limit: its size in bytes (RFC822.SIZE)
    resolved_by: NotRequired[str]  # once replayed: "replay", "retry" or "partner retry"
    event_id: NotRequired[str]  # a callback: the partner's event, as it came
    type: NotRequired[str]
    ref: NotRequired[str]
    occurred_at: NotRequired[str]
    received_at: NotRequired[str]
    signature: NotRequired[str]


def as_quarantine_item(doc: Doc) -> QuarantineItem:
    """A quarantine document read from the store, as the item it is."""
    return cast(QuarantineItem, doc)


def quarantine_items(store: Store, states: Iterable[str] = STATES) -> Iterator[QuarantineItem]:
    """The items in `states`, state by state (`mailflow quarantine list|show|replay`)."""
    for state in states:
        for doc in store.find("quarantine", "state", state):
            yield as_quarantine_item(doc)


def left_on_server(doc: QuarantineItem) -> bool:
    """A mail quarantined as too large: its body was never fetched, a replay fetches it."""
    return "size" in doc and not doc["raw"]


class Refetch(Protocol):
    """Fetches one message again (a replay of a mail left on the server), under the size limit
    in force now; raises MailflowError saying why it cannot."""

    def __call__(self, folder: str, role: str, uidvalidity: int, uid: int) -> Incoming: ...


@dataclass(frozen=True)
class Checkpoint:
    folder: str
    uidvalidity: int
    last_uid: int


class Intake:
    """Hands messages of any folder to the pipeline, exactly once, through one writer lane."""

    def __init__(self, store: Store, pipeline: Pipeline, clock: Clock,
                 lane: threading.RLock | None = None, mailbox: str = "") -> None:
        self.store = store
        # on a store shared by several mailboxes' daemons, each keeps checkpoints of its own
        self.mailbox = mailbox
        self.pipeline = pipeline
        self.clock = clock
        self.lane = lane or threading.RLock()
        self.max_attempts = MAX_ATTEMPTS
        self.backoff_seconds: tuple[float, ...] = BACKOFF_SECONDS
        self.refetch: Refetch | None = None  # the daemon's; without it, no oversized replay

    # -- checkpoints ------------------------------------------------------------------------

    def checkpoint_key(self, name: str) -> str:
        """A checkpoint's record: the folder's name, after the mailbox's on a shared store."""
        return f"{self.mailbox} {name}" if self.mailbox else name

    def checkpoint(self, folder: str) -> Checkpoint | None:
        doc = self.store.get("checkpoints", self.checkpoint_key(folder))
        if doc is None:
            return None
        return Checkpoint(folder, int(doc["uidvalidity"]), int(doc["last_uid"]))

    def _save_checkpoint(self, folder: str, uidvalidity: int, last_uid: int) -> None:
        self.store.put("checkpoints", self.checkpoint_key(folder),
                       {"folder": folder, "uidvalidity": uidvalidity, "last_uid": last_uid,
                        "at": iso(self.clock.now())})

    def start_from(self, folder: str, uidvalidity: int, last_uid: int) -> None:
        with self.lane:
            self._save_checkpoint(folder, uidvalidity, last_uid)

    # -- catching up ------------------------------------------------------------------------

    def catch_up(self, mailbox: Mailbox, folder: str, role: str,
                 stopping: Callable[[], bool] = lambda: False) -> int:
        """Hand every message past the checkpoint to the pipeline; returns how many were new."""
        state = mailbox.select(folder)
        with self.lane:
            point = self.checkpoint(folder)
            if point is None:
                # first start: new mail only; history comes through `backfill`
                self._save_checkpoint(folder, state.uidvalidity, state.uidnext - 1)
                log.info("%s: first start, taking new mail after UID %d", folder, state.uidnext - 1)
                return 0
            if point.uidvalidity != state.uidvalidity:
                log.warning("%s: UIDVALIDITY changed %d -> %d; resyncing by message key",
                            folder, point.uidvalidity, state.uidvalidity)
                self._save_checkpoint(folder, state.uidvalidity, 0)
                point = Checkpoint(folder, state.uidvalidity, 0)
        handled = 0
        uids = mailbox.uids_after(point.last_uid)
        limit = mailbox.settings.max_message_bytes
        for fetched in mailbox.fetch(uids, limit):
            message = Incoming.fetched(folder, role, state.uidvalidity, fetched, limit, mailbox)
            handled += self.hand_over(message)
            if stopping():
                break
        return handled

    def hand_over(self, message: Incoming, progress: str | None = None) -> int:
        """One message: pipeline + key + progress in one transaction; 1 when it was new.
        Progress is the folder's checkpoint, or the record named `progress` (a backfill)."""

        def advance() -> None:
            if progress is None:
                self._advance(message)
            else:
                doc = self.store.get("checkpoints", progress) or {}
                self.store.put("checkpoints", progress, {**doc, "last_uid": message.uid,
                                                         "done": int(doc.get("done", 0)) + 1})

        with self.lane:
            known = self.store.find("messages", "message_key", message.identity)
            if known or self.store.get("quarantine", message.identity):
                with self.store.transaction():
                    advance()
                log.debug("%s: known message, skipped", message.ref)
                return 0
            if message.too_large:
                with self.store.transaction():
                    self._set_aside(message)
                    advance()
                return 0
            try:
                with self.store.transaction():
                    self.pipeline.run(message)
                    self._record(message)
                    advance()
            except StageFailed as exc:
                # a mail that cannot be read will not become readable by waiting
                first = self.max_attempts if isinstance(exc.cause, UnreadableMail) else 1
                with self.store.transaction():
                    self._retry_later(message, str(exc), attempts=first)
                    advance()
                log.warning("%s: %s; will retry", message.ref, exc)
                return 0
            log.info("%s: handled", message.ref)
            return 1

    def _record(self, message: Incoming) -> None:
        self.store.put("messages", message.identity, {
            "message_key": message.identity, "folder": message.folder, "role": message.role,
            "uidvalidity": message.uidvalidity, "uid": message.uid,
            "handled_at": iso(self.clock.now()),
        })

    def _advance(self, message: Incoming) -> None:
        point = self.checkpoint(message.folder)
        if point and point.uidvalidity == message.uidvalidity and point.last_uid >= message.uid:
            return
        self._save_checkpoint(message.folder, message.uidvalidity, message.uid)

    # -- retries and quarantine -------------------------------------------------------------

    def _retry_later(self, message: Incoming, reason: str, attempts: int) -> None:
        quarantined = attempts >= self.max_attempts
        delay = self.backoff_seconds[min(attempts - 1, len(self.backoff_seconds) - 1)]
        item: QuarantineItem = {
            "id": message.key[:12], "key": message.identity,
            "state": "quarantined" if quarantined else "retrying",
            "folder": message.folder, "role": message.role,
            "uidvalidity": message.uidvalidity, "uid": message.uid,
            "attempts": attempts, "reason": reason,
            "next_at": iso(self.clock.now() + timedelta(seconds=delay)),
            "updated_at": iso(self.clock.now()),
            "raw": base64.b64encode(message.raw).decode("ascii"),
        }
        self.store.put("quarantine", message.identity, item)
        if quarantined:
            log.error("%s: quarantined after %d attempts: %s", message.ref, attempts, reason)

    def _set_aside(self, message: Incoming) -> None:
        """A mail over the size limit, quarantined with its size; its body stays on the
        server."""
        now = iso(self.clock.now())
        item: QuarantineItem = {
            "id": message.key[:12], "key": message.identity, "state": "quarantined",
            "folder": message.folder, "role": message.role,
            "uidvalidity": message.uidvalidity, "uid": message.uid, "attempts": 1,
            "reason": message.too_large, "size": message.size, "next_at": now,
            "updated_at": now, "raw": ""}
        self.store.put("quarantine", message.identity, item)
        log.error("%s: quarantined: %s", message.ref, message.too_large)

    def retry_due(self) -> int:
        """Retry the queued messages whose time has come; returns how many succeeded."""
        now = self.clock.now()
        done = 0
        with self.lane:
            due = [d for d in quarantine_items(self.store, ("retrying",))
                   if parse_iso(d["next_at"]) <= now]
            for doc in due:
                done += self._attempt(doc, replay=False)
        return done

    def replay(self, item_id: str) -> QuarantineItem:
        """Run a quarantined (or retrying) message through the pipeline again, now; a mail left
        on the server is fetched again first (outside the writer lane: that is network I/O)."""
        with self.lane:
            doc = self.find_item(item_id)
            if doc is None:
                raise MailflowError(f"no quarantined message {item_id}")
            if "raw" not in doc or "folder" not in doc:
                raise MailflowError(f"{item_id} is a {doc.get('role', 'non-mail')} item; "
                                    "only messages can be replayed")
        refetched = self._refetched(doc) if left_on_server(doc) else None
        with self.lane:
            if isinstance(refetched, str):
                self._failed_again(doc, refetched)
                log.warning("%s: replay failed: %s", doc["id"], refetched)
            elif refetched is not None:
                self._take_up(doc, refetched)
            else:
                self._attempt(doc, replay=True)
            stored = self.store.get("quarantine", doc["key"])
            return as_quarantine_item(stored) if stored else doc

    def find_item(self, item_id: str) -> QuarantineItem | None:
        for doc in quarantine_items(self.store, ("quarantined", "retrying", "replayed")):
            if doc["id"] == item_id or doc["key"] == item_id:
                return doc
        return None

    def _refetched(self, doc: QuarantineItem) -> Incoming | str:
        """A mail left on the server, fetched again; or why it cannot be handed over."""
        try:
            if self.refetch is None:
                raise MailflowError("no mailbox connection here to fetch it from")
            message = self.refetch(doc["folder"], doc["role"], int(doc["uidvalidity"]),
                                   int(doc["uid"]))
        except MailflowError as exc:
            return f"cannot be fetched again: {exc}"
        return message.too_large or message

    def _take_up(self, doc: QuarantineItem, message: Incoming) -> None:
        """A mail left on the server, fetched again under the limit now: handed over, unless
        its real key was handled meanwhile (a resync after the limit was raised)."""
        if self.store.find("messages", "message_key", message.identity):
            self.store.put("quarantine", doc["key"], {
                **doc, "state": "replayed", "updated_at": iso(self.clock.now()),
                "resolved_by": "replay"})
            log.info("%s: handled already", message.ref)
            return
        self._attempt(doc, replay=True, message=message)

    def _failed_again(self, doc: QuarantineItem, reason: str) -> None:
        self.store.put("quarantine", doc["key"], {
            **doc, "attempts": int(doc["attempts"]) + 1, "reason": reason,
            "updated_at": iso(self.clock.now())})

    def _attempt(self, doc: QuarantineItem, replay: bool, message: Incoming | None = None) -> int:
        if message is None:
            message = Incoming(doc["folder"], doc["role"], int(doc["uidvalidity"]),
                               int(doc["uid"]), base64.b64decode(doc["raw"]))
        try:
            with self.store.transaction():
                self.pipeline.run(message)
                self._record(message)
                self.store.put("quarantine", doc["key"], {
                    **doc, "state": "replayed", "updated_at": iso(self.clock.now()),
                    "resolved_by": "replay" if replay else "retry"})
        except StageFailed as exc:
            attempts = int(doc["attempts"]) + 1
            with self.store.transaction():
                if replay:
                    self._failed_again(doc, str(exc))
                else:
                    self._retry_later(message, str(exc), attempts)
            log.warning("%s: attempt %d failed: %s", message.ref, attempts, exc)
            return 0
        log.info("%s: handled on %s", message.ref, "replay" if replay else "retry")
        return 1
