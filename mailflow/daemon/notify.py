"""Telling systemd how the daemon is doing (the sd_notify protocol, through `sdnotify`).

READY=1 comes once the daemon is up: the store open and every rule file loaded (the daemon is
built), the control channel and the web edge listening, and every watched folder logged in
(`Daemon.imap.up`, what /metrics calls up). Until then STATUS= says what it waits for; a
server that is down or refuses the login keeps READY back, so `systemctl start` waits and
TimeoutStartSec= decides. WATCHDOG=1 follows each health round (`check_health`, the one
/healthz reads), every half of $WATCHDOG_USEC, unless a folder is stuck (`Health.stuck`: silent
past silence_alarm_seconds while the login is not refused). A blocked event loop or a hung
health check sends nothing, and systemd restarts the daemon; a refused login or an SMTP refusal
keeps the pings going, since a restart cures neither and would only log in again. RELOADING=1 …
READY=1 bracket a reload once the daemon is ready; STOPPING=1 starts the stop.

Without $NOTIFY_SOCKET every call does nothing. STATUS= lines carry folder roles and counts,
never a name, an address or a server's words (those are in the log and /healthz).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Protocol

from sdnotify import SystemdNotifier

from mailflow.mailbox.login import ImapState

log = logging.getLogger("mailflow.daemon")

STARTING_POLL_SECONDS = 0.2  # how often the start-up looks whether every folder is logged in
STATUS_SECONDS = 5.0  # health rounds without a systemd watchdog (STATUS= only)


class HealthView(Protocol):
    @property
    def healthy(self) -> bool: ...

    @property
    def stuck(self) -> bool: ...

    @property
    def reasons(self) -> list[str]: ...


class Folder(Protocol):
    @property
    def role(self) -> str: ...

    @property
    def connected(self) -> bool: ...


class Running(Protocol):
    """What the notifier reads of the daemon."""

    @property
    def imap(self) -> ImapState: ...

    @property
    def health(self) -> HealthView: ...

    @property
    def watchers(self) -> Sequence[Folder]: ...

    def check_health(self) -> None: ...


class Systemd:
    """The daemon's side of sd_notify(3); safe from any thread."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self.enabled = bool(environ.get("NOTIFY_SOCKET"))
        self.watchdog_seconds = watchdog_interval(environ)
        self.ready = False
        self._notifier: SystemdNotifier | None = None  # connected on first use
        self._status = ""

    def send(self, *fields: str) -> None:
        if not self.enabled:
            return
        if self._notifier is None:
            self._notifier = SystemdNotifier()  # reads $NOTIFY_SOCKET; never raises
        self._notifier.notify("\n".join(fields))

    def status(self, text: str) -> None:
        """STATUS= when it changed."""
        if text != self._status:
            self._status = text
            self.send(f"STATUS={text}")

    def announce_ready(self, status: str) -> None:
        self.ready = True
        self._status = status
        self.send("READY=1", f"STATUS={status}")

    @contextmanager
    def reloading(self) -> Iterator[None]:
        """RELOADING=1 before, READY=1 after (also when the reload is refused: the old rules
        stay in force); nothing before the daemon is ready, whose READY is still to come."""
        if not self.ready:
            yield
            return
        status = self._status
        self.send("RELOADING=1", "STATUS=reloading rules and templates",
                  f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            yield
        finally:
            self._status = status
            self.send("READY=1", f"STATUS={status}")

    def stopping(self) -> None:
        self._status = "stopping: finishing the message in hand"
        self.send("STOPPING=1", f"STATUS={self._status}")

    async def keep_informed(self, daemon: Running) -> None:
        """READY=1 once every folder is logged in, then a health round and WATCHDOG=1 each
        half watchdog interval; runs until cancelled."""
        if not self.enabled:
            return
        while not daemon.imap.up:
            self.status(waiting(daemon))
            await asyncio.sleep(STARTING_POLL_SECONDS)
        self.announce_ready(watching(daemon))
        log.info("systemd: ready%s", f"; watchdog every {self.watchdog_seconds:g}s"
                 if self.watchdog_seconds else "")
        while True:
            daemon.check_health()
            health = daemon.health
            if self.watchdog_seconds and not health.stuck:
                self.send("WATCHDOG=1")
            self.status(watching(daemon) if health.healthy else
                        f"unhealthy: {len(health.reasons)} problem(s), see /healthz and the log")
            await asyncio.sleep(self.watchdog_seconds or STATUS_SECONDS)


def watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """Half of $WATCHDOG_USEC in seconds, as sd_watchdog_enabled(3) reads it; None when the
    watchdog is off or meant for another process ($WATCHDOG_PID)."""
    pid = environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2e6 if usec > 0 else None


def waiting(daemon: Running) -> str:
    if daemon.imap.refused:
        return "waiting for IMAP: the server refuses the login (see the log)"
    up = sum(1 for w in daemon.watchers if w.connected)
    return f"waiting for IMAP: {up} of {len(daemon.watchers)} folders logged in"


def watching(daemon: Running) -> str:
    return "watching " + ", ".join(w.role for w in daemon.watchers)
