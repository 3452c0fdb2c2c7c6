"""uvicorn's h11 protocol with the deadlines it lacks: a connection that has not sent a complete
request header within `[web] header_timeout_seconds` (counted from the connection, or from the
end of the answer before on a kept-alive one), or whose body has not fully arrived within
`[web] body_timeout_seconds` after its header, is closed without an answer.

While it waits for a header, a connection is also one the accept loop may close first when the
edge is full (`acceptor.ConnectionGate`): a slow client holds a file descriptor, not a request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class Deadlines:
    """The two timeouts, and what to do when one passes (count it)."""

    def __init__(self, header_seconds: float, body_seconds: float,
                 expired: Callable[[str], None] = lambda _phase: None) -> None:
        self.header_seconds = header_seconds
        self.body_seconds = body_seconds
        self.expired = expired


class Gatekeeper(Protocol):
    """What a connection tells the accept loop (`acceptor.ConnectionGate` is one)."""

    def waiting(self, connection: TimedH11Protocol) -> None: ...

    def busy(self, connection: TimedH11Protocol) -> None: ...

    def closed(self, connection: TimedH11Protocol) -> None: ...


class TimedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, deadlines: Deadlines, gate: Gatekeeper, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadlines = deadlines
        self.gate = gate
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._lost = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header()
        self._cancel_body()
        if not self._lost:
            self._lost = True
            self.gate.closed(self)
        super().connection_lost(exc)

    def shed(self) -> None:
        """Close a connection still waiting for its header (the edge is full)."""
        self._cancel_header()
        if not self.transport.is_closing():
            self.transport.abort()

    # -- the deadlines ------------------------------------------------------------------------

    def _watch(self) -> None:
        if self._lost or self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.IDLE:  # no complete header yet: a new request, or between two
            self.gate.waiting(self)
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(
                    self.deadlines.header_seconds, self._expire, "header")
        else:
            self.gate.busy(self)
            self._cancel_header()
        if state is h11.SEND_BODY:
            if self._body_timer is None:
                self._body_timer = self.loop.call_later(
                    self.deadlines.body_seconds, self._expire, "body")
        else:
            self._cancel_body()

    def _expire(self, phase: str) -> None:
        self._header_timer = self._body_timer = None
        if self.transport.is_closing():
            return
        self.deadlines.expired(phase)
        self.transport.abort()

    def _cancel_header(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _cancel_body(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
