"""The mailbox login, shared by every watched folder: one verdict on the credentials for all.

A refused login is not a network error: trying again fast cannot help and may get the account
locked. So the watchers take turns through one `LoginGate`: one login is under way at a time
(the others wait for its verdict, a few milliseconds when the server accepts it), and once the
server has refused it, the next attempt, by one watcher for all, comes `[mailbox]
auth_retry_seconds` later; a reload (new or fixed credentials) ends the wait at once. The
refusal is logged once as an error, and again at most once an hour while it lasts. A network
error is no verdict: the next watcher may try, and each backs off on its own, fast, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("mailflow.mailbox")

REPEAT_SECONDS = 3600.0  # how often a refusal that lasts is logged again


@dataclass(frozen=True)
class ImapState:
    """The mailbox side as health and metrics see it."""

    up: bool  # every watched folder logged in
    refused: str | None  # why the server refuses the login, while it does


class LoginGate:
    def __init__(self, retry_seconds: float, password: str = "",
                 on_change: Callable[[], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.retry_seconds = retry_seconds
        self.on_change = on_change  # called (outside the lock) when the verdict changes
        self._now = monotonic
        self._changed = threading.Condition()
        self._password = password
        self._refused: str | None = None
        self._next_try = 0.0
        self._tryer: int | None = None  # the thread whose login is under way
        self._renewals = 0  # credentials given so far; a login tried with older ones is no verdict
        self._tried_with = 0
        self._logged_at: float | None = None
        self.attempts = 0  # logins tried through the gate

    @property
    def refused(self) -> str | None:
        return self._refused

    def renew(self, password: str) -> None:
        """New (or fixed) credentials: the next login is tried at once, not after the wait."""
        with self._changed:
            self._password = password
            self._renewals += 1
            self._next_try = 0.0
            self._changed.notify_all()

    def turn(self, stop: threading.Event) -> str | None:
        """Wait until this thread may log in; the password to use, or None when `stop` is set
        (call `wake` after setting it)."""
        with self._changed:
            while not stop.is_set():
                wait = self._next_try - self._now()
                if self._tryer is None and wait <= 0:
                    self._tryer, self._tried_with = threading.get_ident(), self._renewals
                    self.attempts += 1
                    return self._password
                self._changed.wait(None if self._tryer is not None else wait)
            return None

    def accepted(self) -> None:
        """The server took the login: the next folder may log in at once."""
        with self._changed:
            was, self._refused = self._refused, None
            self._next_try = 0.0
            self._release()
        if was is not None:
            log.info("the IMAP server accepts the login again")
            self._notify()

    def refused_by_server(self, reason: str) -> None:
        """The server refused the login: nobody tries again for `retry_seconds` (unless the
        login was tried with credentials since renewed: those are tried at once)."""
        with self._changed:
            if self._tryer == threading.get_ident() and self._tried_with != self._renewals:
                self._release()
                return
            first = self._refused is None
            self._refused = reason
            now = self._now()
            self._next_try = now + self.retry_seconds
            self._release()
            say = self._logged_at is None or first or now - self._logged_at >= REPEAT_SECONDS
            if say:
                self._logged_at = now
        if say:
            log.error("%s (next login attempt in %.0fs, or at once after a reload)", reason,
                      self.retry_seconds)
        else:
            log.debug("login refused again: %s", reason)
        if first:
            self._notify()

    def release(self) -> None:
        """This thread's login ended without a verdict (a network error): let another try."""
        with self._changed:
            self._release()

    def wake(self) -> None:
        """Wake every waiting thread (to see that it is asked to stop)."""
        with self._changed:
            self._changed.notify_all()

    def _release(self) -> None:
        if self._tryer == threading.get_ident():
            self._tryer = None
        self._changed.notify_all()

    def _notify(self) -> None:
        if self.on_change is not None:
            self.on_change()
