"""A loopback TCP proxy that misbehaves at random, seeded: it refuses connections, delays and
stalls what the server says, and cuts connections in the middle of a response.

One `ChaosProxy` sits in front of one server (Dovecot, the SMTP sink). Each connection's fate
and each chunk's are drawn from one `random.Random(seed)`, so a failing run is named by its seed.
`calm()` turns the faults off (the oracle's last round needs a working network), `rage()` back
on; the counters say how often each fault happened.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Faults:
    """Chances per connection (refuse) and per chunk the server sends (the others)."""

    refuse: float = 0.05
    delay: float = 0.10  # up to `delay_seconds` before a chunk is passed on
    stall: float = 0.01  # `stall_seconds` of silence, longer than the client's timeouts
    cut: float = 0.04  # part of the chunk passed on, then a reset both ways
    delay_seconds: float = 0.3
    stall_seconds: float = 4.0


class ChaosProxy:
    def __init__(self, target_port: int, seed: int, faults: Faults = Faults(),
                 name: str = "proxy") -> None:
        self.target = (LOOPBACK, target_port)
        self.faults = faults
        self.name = name
        self.host = LOOPBACK
        self.port = 0
        self.counts: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._dice = threading.Lock()
        self._calm = threading.Event()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._guard = threading.Lock()

    # -- control

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(128)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._guard:
            sockets, self._open = self._open, set()
        for sock in sockets:
            _reset(sock)

    def calm(self) -> None:
        self._calm.set()

    def rage(self) -> None:
        self._calm.clear()

    def __enter__(self) -> ChaosProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the dice

    def _roll(self, chance: float) -> bool:
        if self._calm.is_set() or chance <= 0:
            return False
        with self._dice:
            return self._random.random() < chance

    def _uniform(self, low: float, high: float) -> float:
        with self._dice:
            return self._random.uniform(low, high)

    # -- the plumbing

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _peer = listener.accept()
            except OSError:
                return
            self.counts["connections"] += 1
            if self._roll(self.faults.refuse):
                self.counts["refused"] += 1
                _reset(client)
                continue
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            _reset(client)
            return
        upstream.settimeout(None)
        with self._guard:
            self._open.update((client, upstream))
        pair = (client, upstream)
        threading.Thread(target=self._pump, args=(client, upstream, pair, False),
                         daemon=True).start()
        self._pump(upstream, client, pair, True)
        self._close(pair, reset=False)  # the server has finished: so has the connection

    def _pump(self, source: socket.socket, sink: socket.socket,
              pair: tuple[socket.socket, socket.socket], from_server: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            if from_server and self._misbehave(data, sink, pair):
                return
            try:
                sink.sendall(data)
            except OSError:
                self._close(pair)
                return

    def _misbehave(self, data: bytes, sink: socket.socket,
                   pair: tuple[socket.socket, socket.socket]) -> bool:
        """Delay, stall or cut one chunk of the server's answer; True once cut."""
        f = self.faults
        if self._roll(f.cut):
            self.counts["cut"] += 1
            with contextlib.suppress(OSError):
                sink.sendall(data[: int(self._uniform(0, len(data)))])
            self._close(pair)
            return True
        if self._roll(f.stall):
            self.counts["stalled"] += 1
            time.sleep(f.stall_seconds)
        elif self._roll(f.delay):
            self.counts["delayed"] += 1
            time.sleep(self._uniform(0, f.delay_seconds))
        return False

    def _close(self, pair: tuple[socket.socket, socket.socket], reset: bool = True) -> None:
        with self._guard:
            self._open.difference_update(pair)
        for sock in pair:
            if reset:
                _reset(sock)
            else:
                with contextlib.suppress(OSError):
                    sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with a RST, as a dying middlebox does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()
