"""Watching one folder: connect, catch up, wait for news, and come back after any failure.

One connection and one thread per watched folder (INBOX, Drafts, Sent, the outbox folder): each
thread IDLEs on its own folder, so news anywhere wakes the right thread within Dovecot's 500 ms
notification delay, and a dead connection affects one folder only. IDLE is only a hint: every
wake-up, every re-issue (at least every `idle_seconds`) and every reconnect runs a catch-up scan
from the stored checkpoint.

A refused login is not a lost connection: the watchers share one `LoginGate` (login.py), which
spaces the attempts out by `auth_retry_seconds` instead of the fast reconnect backoff.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Callable

from imapclient.exceptions import IMAPClientError

from mailflow.errors import StoreFull
from mailflow.mailbox.handoff import Intake
from mailflow.mailbox.imap import AuthenticationFailed, Mailbox, MailboxError
from mailflow.mailbox.login import LoginGate
from mailflow.mailbox.oauth import TokenSource
from mailflow.settings.config import Mailbox as MailboxSettings

log = logging.getLogger("mailflow.watcher")


class FolderWatcher:
    def __init__(
        self,
        role: str,
        configured_name: str,
        settings: MailboxSettings,
        login: LoginGate,
        intake: Intake,
        create: bool = False,
        scanner: Callable[[Mailbox, str], float | None] | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        self.role = role
        self.configured_name = configured_name
        self.settings = settings
        self.login = login
        self.intake = intake
        self.create = create
        self.tokens = tokens  # the shared access token (auth = "oauth2")
        self.scanner = scanner  # instead of the hand-off (Drafts); returns seconds to next look
        self.folder: str | None = None
        self.connected = False
        self.rounds = 0  # catch-up passes done (tests and the demo wait for the first)
        self.last_heard = time.monotonic()
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._mailbox: Mailbox | None = None
        self._waiting = False
        self._guard = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"watch-{role}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Finish the message in hand, then stop; a thread waiting in IDLE is woken."""
        self._stop.set()
        self.login.wake()
        self._interrupt()
        self._thread.join(timeout)

    def poke(self) -> None:
        """Ask for a catch-up now (e.g. after a replay or a backfill request)."""
        self.wake.set()
        self._interrupt()

    def _interrupt(self) -> None:
        with self._guard:
            if self._waiting and self._mailbox is not None:
                with contextlib.suppress(OSError, MailboxError):
                    self._mailbox.client.socket().shutdown(socket.SHUT_RDWR)

    @property
    def silent_for(self) -> float:
        heard = self._mailbox.last_heard if self._mailbox else self.last_heard
        return time.monotonic() - max(heard, self.last_heard)

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            password = self.login.turn(self._stop)
            if password is None:
                break
            mailbox = Mailbox(self.settings, password, self.tokens)
            try:
                mailbox.connect()
                self.login.accepted()
                self._mailbox = mailbox
                self.connected = True
                self.folder = mailbox.folder(self.role, self.configured_name)
                if self.create:
                    mailbox.ensure(self.folder)
                log.info("%s: watching %s", self.role, self.folder)
                backoff = 1.0
                self._watch(mailbox, self.folder)
            except AuthenticationFailed as exc:
                self.login.refused_by_server(str(exc))  # its turn() waits auth_retry_seconds
            except Exception as exc:  # a watcher never dies: it logs, backs off and reconnects
                self.login.release()  # no verdict on the login: another folder may try
                if self._stop.is_set():
                    break
                full = isinstance(exc, StoreFull)  # the store said so once: wait quietly
                if not isinstance(exc, MailboxError | OSError | IMAPClientError | StoreFull):
                    log.exception("%s: unexpected error", self.role)
                # a poke interrupts IDLE on purpose: reconnect at once
                cap = self.settings.reconnect_max_seconds
                delay = 0.0 if self.wake.is_set() and not full else min(backoff, cap)
                (log.debug if full else log.warning)(
                    "%s: connection lost (%s); reconnecting in %.1fs", self.role, exc, delay)
                self._stop.wait(delay * random.uniform(0.8, 1.0))
                backoff = min(backoff * 2, self.settings.reconnect_max_seconds)
            finally:
                self.login.release()
                self.connected = False
                self.last_heard = max(self.last_heard, mailbox.last_heard)
                with self._guard:
                    self._mailbox = None
                mailbox.close()

    def _watch(self, mailbox: Mailbox, folder: str) -> None:
        while not self._stop.is_set():
            self.wake.clear()
            # IDLE is re-issued at least every timeout_seconds: the DONE it takes must be answered
            # within the read timeout, so a connection cut without a FIN is found in ~2x that
            wait = (min(self.settings.idle_seconds, self.settings.timeout_seconds)
                    if mailbox.has("IDLE") else self.settings.poll_seconds)
            if self.scanner is not None:
                due = self.scanner(mailbox, folder)
                if due is not None:
                    wait = max(0.05, min(wait, due))
            else:
                self.intake.catch_up(mailbox, folder, self.role, self._stop.is_set)
                self.intake.retry_due()
            self.rounds += 1
            if self._stop.is_set() or self.wake.is_set():
                continue
            with self._guard:
                self._waiting = True
            try:
                mailbox.wait(wait)
            finally:
                with self._guard:
                    self._waiting = False
