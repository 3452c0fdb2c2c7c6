"""uvicorn inside the daemon's event loop: `WebEdge(daemon).start()` binds `[web] listen` and
serves; `stop()` stops taking requests, answers those in hand, then stops the group commit.

The listening socket is bound here, not by uvicorn (which would `sys.exit` on a port in use):
an address that cannot be bound is logged, shown by the daemon's health, and tried again every
`RETRY_SECONDS`, while the mailbox side keeps running. uvicorn's own signal handlers are left
out: the daemon owns SIGTERM, SIGINT and SIGHUP. Connections are taken by the edge's own accept
loop (`acceptor`: a limit that leaves the mail path its file descriptors, the slowest closed
first), each one uvicorn's h11 protocol with header and body deadlines (`timeouts`). With
`[career_relay] handover_url`, the edge also runs the hand-overs to the partner
(`relay.handover`: every second, durable jobs), beside the callbacks that queue them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

import uvicorn
from starlette.applications import Starlette

from mailflow.relay.handover import Handovers
from mailflow.web.acceptor import Acceptor, ConnectionGate, connection_limit, open_file_limit
from mailflow.web.app import Edge, build_app
from mailflow.web.metrics import Metrics, Outcomes
from mailflow.web.public_path import PublicPath, public_path
from mailflow.web.ratelimit import RateLimiter
from mailflow.web.referral_link import referral_routes
from mailflow.web.relay_link import PublicRateLimit, relay_routes
from mailflow.web.timeouts import Deadlines, TimedH11Protocol

if TYPE_CHECKING:
    from mailflow.web.host import Host

log = logging.getLogger("mailflow.web")

RETRY_SECONDS = 5.0
GRACE_SECONDS = 5


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own listening server: `acceptor.Acceptor` takes the connections,
    each one a `TimedH11Protocol`, at most `limit` at a time."""

    def __init__(self, config: uvicorn.Config, deadlines: Deadlines, limit: int,
                 listen: str, accepting: Callable[[ConnectionGate], None]) -> None:
        super().__init__(config)
        self.deadlines = deadlines
        self.limit = limit
        self.listen = listen
        self.accepting = accepting
        self.acceptor: Acceptor | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the daemon handles signals and sets should_exit

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # no asyncio server of its own
        if sockets:
            self.acceptor = Acceptor(sockets[0], self._connection, self.limit, self.listen)
            self.acceptor.start()
            self.accepting(self.acceptor.gate)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.acceptor is not None:
            self.acceptor.stop()  # no new connections from here on
        await super().shutdown(sockets=sockets)

    def _connection(self, gate: ConnectionGate) -> TimedH11Protocol:
        return TimedH11Protocol(config=self.config, server_state=self.server_state,
                                app_state=self.lifespan.state, deadlines=self.deadlines,
                                gate=gate)


def host_port(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every response waits ~40 ms for a delayed ACK (Nagle)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class WebEdge:
    def __init__(self, daemon: Host) -> None:
        self.daemon = daemon
        self.host, self.port = host_port(daemon.config.web.listen)
        self.metrics = Metrics(daemon)
        web = daemon.config.web
        public = RateLimiter(rate=web.public_rate_per_second, burst=web.public_burst)
        self.app: Starlette = build_app(daemon, extra=[
            *relay_routes(daemon, self.metrics), *referral_routes(daemon),
            *self.metrics.routes()])
        self.app.add_middleware(PublicRateLimit, limiter=public, clock=daemon.clock)
        self.app.add_middleware(Outcomes, metrics=self.metrics)
        # outermost: a request under `[web] public_url`'s path is seen as one without it
        self.app.add_middleware(PublicPath, path=public_path(web.public_url))
        self.alert = ""
        self.edge: Edge = self.app.state.edge
        self.edge.alerts.append(lambda: self.alert)
        self.server: EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        # profiles handed to the partner after `registered` ([career_relay] handover_url)
        self.handovers = Handovers(daemon.store, daemon.clock, daemon.config, daemon.lane)
        self._handing_over: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind and serve in the background; returns once listening (or once refused)."""
        self._task = asyncio.create_task(self._run(self._bind_now()))
        self._refreshing = asyncio.create_task(
            self.metrics.store_figures.keep_fresh(self._stopping))
        if self.handovers.url:
            self._handing_over = asyncio.create_task(self.handovers.run(self._stopping))

    def _bind_now(self) -> socket.socket | None:
        try:
            sock = bind(self.host, self.port)
        except OSError as exc:
            if not self.alert:
                log.error("web: cannot listen on %s: %s; trying again every %.0f s",
                          self.daemon.config.web.listen, exc.strerror or exc, RETRY_SECONDS)
            self.alert = f"web: cannot listen on {self.daemon.config.web.listen}"
            return None
        if self.alert:
            log.info("web: listening on %s now", self.daemon.config.web.listen)
        self.alert = ""
        return sock

    async def _run(self, sock: socket.socket | None) -> None:
        while sock is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), RETRY_SECONDS)
                return
            sock = self._bind_now()
        web = self.daemon.config.web
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning",
                                lifespan="off", access_log=False, log_config=None, http="h11",
                                proxy_headers=bool(self.daemon.config.web.trusted_proxies),
                                forwarded_allow_ips=self.daemon.config.web.trusted_proxies or None,
                                server_header=False, ws="none",
                                timeout_graceful_shutdown=GRACE_SECONDS)
        limit = connection_limit(web.max_connections, open_file_limit())
        deadlines = Deadlines(web.header_timeout_seconds, web.body_timeout_seconds,
                              expired=self.metrics.timed_out)
        self.server = EmbeddedServer(config, deadlines, limit, web.listen,
                                     accepting=self.metrics.connections.watch)
        if self._stopping.is_set():  # stopped before this task first ran
            sock.close()
            return
        log.info("web: listening on %s (at most %d connections)", web.listen, limit)
        try:
            await self.server.serve(sockets=[sock])
        except Exception:
            log.exception("web: the server stopped")
            self.alert = "web: the server stopped"
        finally:
            sock.close()

    async def stop(self) -> None:
        self._stopping.set()
        if self.server is not None:
            self.server.should_exit = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._handing_over is not None:  # the round in hand finishes: the store stays open
            await asyncio.gather(self._handing_over, return_exceptions=True)
        if self._refreshing is not None:
            await asyncio.gather(self._refreshing, return_exceptions=True)
        await self.edge.commits.close()
