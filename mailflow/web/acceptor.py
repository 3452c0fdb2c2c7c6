"""The web edge's own accept loop: at most `limit` connections, so the mail path keeps its file
descriptors, and a full edge degrades quietly instead of flooding the log.

asyncio's loop, on EMFILE, logs a traceback for every attempt (up to the backlog, each retry
scheduling more), and uvicorn's `limit_concurrency` answers 503 only to a complete header. Here:
- the limit is `[web] max_connections`, capped by the open-file limit minus `RESERVED_FDS` (the
  store, the mailbox and SMTP connections, attachments, the log: `connection_limit`);
- at the limit, the listening socket is not read (new connections wait in the kernel's backlog),
  and the connections that have waited longest for their request header are closed first, so
  clients that send a request are served while slow ones are not; reading resumes when one closes;
- out of descriptors all the same (EMFILE, ENFILE, ENOBUFS, ENOMEM), accepting pauses for
  `RETRY_SECONDS`;
- each of these logs one line per episode (none again until `QUIET_SECONDS` passed without it).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
from collections import OrderedDict
from collections.abc import Callable

from mailflow.web.timeouts import TimedH11Protocol

log = logging.getLogger("mailflow.web")

RESERVED_FDS = 256  # for everything but the web edge's connections
RETRY_SECONDS = 1.0
QUIET_SECONDS = 60.0
BATCH = 16  # connections accepted (or closed first) per wake-up of the listening socket
OUT_OF_RESOURCE = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def connection_limit(configured: int, open_files: int, reserved: int = RESERVED_FDS) -> int:
    """`configured`, capped so that `reserved` descriptors stay for the rest (and at least half
    of the open-file limit, on a very small one)."""
    return max(1, min(configured, max(open_files - reserved, open_files // 2)))


def open_file_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


class Episode:
    """True for the first of a run of events: none in the `quiet` seconds before it."""

    def __init__(self, now: Callable[[], float], quiet: float = QUIET_SECONDS) -> None:
        self.now = now
        self.quiet = quiet
        self._last: float | None = None

    def first(self) -> bool:
        now = self.now()
        fresh = self._last is None or now - self._last >= self.quiet
        self._last = now
        return fresh


class ConnectionGate:
    """Counts the open connections and knows which wait for a request header, oldest first."""

    def __init__(self, limit: int, released: Callable[[], None] = lambda: None) -> None:
        self.limit = limit
        self.open = 0
        self.shed_total = 0
        self.released = released
        self._waiting: OrderedDict[TimedH11Protocol, None] = OrderedDict()

    @property
    def full(self) -> bool:
        return self.open >= self.limit

    def opened(self) -> None:
        self.open += 1

    def waiting(self, connection: TimedH11Protocol) -> None:
        self._waiting.setdefault(connection)  # keeps its place: waiting since it began

    def busy(self, connection: TimedH11Protocol) -> None:
        self._waiting.pop(connection, None)

    def closed(self, connection: TimedH11Protocol | None) -> None:
        if connection is not None:
            self._waiting.pop(connection, None)
        self.open -= 1
        self.released()

    def shed(self, count: int) -> int:
        """Close up to `count` connections that have waited longest for their header."""
        shed = 0
        while shed < count and self._waiting:
            connection, _ = self._waiting.popitem(last=False)
            connection.shed()
            shed += 1
        self.shed_total += shed
        return shed


class Acceptor:
    """Reads the listening socket while the gate has room; hands each connection to asyncio."""

    def __init__(self, sock: socket.socket, make: Callable[[ConnectionGate], TimedH11Protocol],
                 limit: int, what: str) -> None:
        self.sock = sock
        self.make = make
        self.what = what
        self.loop = asyncio.get_running_loop()
        self.gate = ConnectionGate(limit, released=self._released)
        self.full_episode = Episode(self.loop.time)
        self.starved_episode = Episode(self.loop.time)
        self.reading = False
        self.stopped = False
        self._retry: asyncio.TimerHandle | None = None
        self._handing: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._read()

    def stop(self) -> None:
        self.stopped = True
        self._pause()
        if self._retry is not None:
            self._retry.cancel()

    def _read(self) -> None:
        if not self.reading and not self.stopped:
            self.loop.add_reader(self.sock.fileno(), self._readable)
            self.reading = True

    def _pause(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.sock.fileno())
            self.reading = False

    def _released(self) -> None:
        if not self.gate.full and self._retry is None:
            self._read()

    def _readable(self) -> None:
        for _ in range(BATCH):
            if self.gate.full:
                self._at_limit()
                return
            try:
                conn, _address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                self._starved(exc)
                return
            conn.setblocking(False)
            self.gate.opened()
            task = self.loop.create_task(self._hand_over(conn))
            self._handing.add(task)
            task.add_done_callback(self._handing.discard)

    async def _hand_over(self, conn: socket.socket) -> None:
        made: list[TimedH11Protocol] = []

        def protocol() -> TimedH11Protocol:
            made.append(self.make(self.gate))
            return made[0]

        try:
            await self.loop.connect_accepted_socket(protocol, conn)
        except Exception:  # reset before it was handed over, or the loop is closing
            conn.close()
            if not made or made[0].transport is None:  # never connected: not counted out yet
                self.gate.closed(None)

    def _at_limit(self) -> None:
        self._pause()
        shed = self.gate.shed(BATCH)
        if self.full_episode.first():
            log.warning("web: %d connections open, the limit for %s; %s", self.gate.open,
                        self.what, "closing first those that have not sent a request header"
                        if shed else "new ones wait until one closes")

    def _starved(self, exc: OSError) -> None:
        self._pause()
        if exc.errno in OUT_OF_RESOURCE:
            if self.starved_episode.first():
                log.error("web: cannot accept a connection on %s: %s (%d open); accepting "
                          "pauses %g s at a time", self.what, exc.strerror or exc,
                          self.gate.open, RETRY_SECONDS)
        elif self.starved_episode.first():
            log.error("web: accepting on %s failed: %s", self.what, exc)
        self._retry = self.loop.call_later(RETRY_SECONDS, self._resume)

    def _resume(self) -> None:
        self._retry = None
        if not self.gate.full:
            self._read()
