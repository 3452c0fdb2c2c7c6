"""`mailflow backfill FOLDER [--since DATE]`: a mailbox's history through the same exactly-once
hand-off as live mail. Streaming (batches of UIDs, never the folder in memory), resumable (its
progress is a store record moved in the transaction of each message), and known messages are
skipped by key, so running it twice, or across a `kill -9`, handles each message once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date
from typing import Any

from mailflow.errors import MailflowError
from mailflow.mailbox.handoff import Intake
from mailflow.mailbox.imap import Mailbox
from mailflow.mailbox.pipeline import Incoming
from mailflow.settings.config import Config

log = logging.getLogger("mailflow.backfill")

Progress = Callable[[int, int], None]
GROUP = 100  # messages per durable commit


def progress_key(folder: str) -> str:
    return f"backfill:{folder}"


def role_of(config: Config, folder: str) -> str:
    """Backfilled mail is read as what it is: Sent as sent mail, anything else as inbound."""
    return "sent" if folder == config.mailbox.sent else "inbox"


class Backfill:
    def __init__(self, config: Config, intake: Intake, password: str) -> None:
        self.config = config
        self.intake = intake
        self.password = password

    def run(self, folder: str, since: date | None = None, progress: Progress | None = None,
            stopping: Callable[[], bool] = lambda: False) -> dict[str, Any]:
        mailbox = Mailbox(self.config.mailbox, self.password)
        mailbox.connect()
        try:
            return self._run(mailbox, folder, since, progress or (lambda d, t: None), stopping)
        finally:
            mailbox.close()

    def _run(self, mailbox: Mailbox, configured: str, since: date | None, progress: Progress,
             stopping: Callable[[], bool]) -> dict[str, Any]:
        folder = configured.replace("/", mailbox.delimiter)
        if not mailbox.exists(folder):
            raise MailflowError(f"no folder {folder!r} on the server")
        state = mailbox.select(folder)
        key = self.intake.checkpoint_key(progress_key(folder))
        store = self.intake.store
        with self.intake.lane:
            doc = store.get("checkpoints", key)
            if doc is None or doc.get("uidvalidity") != state.uidvalidity or doc.get("finished"):
                doc = {"folder": folder, "uidvalidity": state.uidvalidity, "last_uid": 0,
                       "until_uid": state.uidnext - 1, "done": 0, "finished": False,
                       "since": since.isoformat() if since else None}
                store.put("checkpoints", key, doc)
        criteria: list[str | bytes] = ["UID", f"{int(doc['last_uid']) + 1}:{doc['until_uid']}"]
        if doc.get("since"):
            criteria += ["SINCE", date.fromisoformat(doc["since"]).strftime("%d-%b-%Y")]
        uids = [u for u in mailbox.search(criteria) if int(doc["last_uid"]) < u
                <= int(doc["until_uid"])] if int(doc["until_uid"]) > int(doc["last_uid"]) else []
        total = int(doc["done"]) + len(uids)
        done, new = int(doc["done"]), 0
        progress(done, total)
        role = role_of(self.config, configured)
        limit = self.config.mailbox.max_message_bytes
        for start in range(0, len(uids), GROUP):
            # one durable commit per group: the progress record moves in the same transaction,
            # so a crash redoes at most this group, and never hands a message over twice
            # the group's résumé files are made durable together just before the commit
            with self.intake.lane, store.transaction(), self.intake.pipeline.grouped():
                for fetched in mailbox.fetch(uids[start : start + GROUP], limit):
                    message = Incoming.fetched(folder, role, state.uidvalidity, fetched, limit,
                                               mailbox)
                    new += self.intake.hand_over(message, progress=key)
                    done += 1
            progress(done, total)
            if stopping():
                break
        else:
            with self.intake.lane:
                finished = {**(store.get("checkpoints", key) or doc), "finished": True}
                store.put("checkpoints", key, finished)
        log.info("backfill %s: %d messages, %d new", folder, done, new)
        return {"folder": folder, "done": done, "total": total, "new": new,
                "finished": done >= total}


class BackfillRunner:
    """Backfills carried out by the running daemon, one thread each; status by folder."""

    def __init__(self, backfill: Backfill) -> None:
        self.backfill = backfill
        self.status: dict[str, dict[str, Any]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._stop = threading.Event()

    def start(self, folder: str, since: date | None) -> dict[str, Any]:
        thread = self._threads.get(folder)
        if thread is None or not thread.is_alive():
            self.status[folder] = {"folder": folder, "done": 0, "total": 0, "running": True}
            thread = threading.Thread(target=self._run, args=(folder, since), daemon=True,
                                      name=f"backfill-{folder}")
            self._threads[folder] = thread
            thread.start()
        return self.status[folder]

    def _run(self, folder: str, since: date | None) -> None:
        def progress(done: int, total: int) -> None:
            self.status[folder] = {"folder": folder, "done": done, "total": total,
                                   "running": True}
        try:
            result = self.backfill.run(folder, since, progress, self._stop.is_set)
            self.status[folder] = {**result, "running": False}
        except Exception as exc:
            log.error("backfill %s failed: %s", folder, exc)
            self.status[folder] = {**self.status[folder], "running": False, "error": str(exc)}

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads.values():
            thread.join(10)
