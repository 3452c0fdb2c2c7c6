"""`GET /metrics`: Prometheus text. Counters of what the edge saw, gauges of the store
(messages handled, rewrites, outbox by state, ledger balance) read in the background every
`REFRESH_SECONDS` (a scrape never waits for the store lock; `mailflow_store_figures_age_seconds`
says how old they are), the edge's connections, and whether the mailbox side is up. No personal
data: only counts.

Scraping needs the admin token as a bearer token (`Authorization: Bearer <token>`, Prometheus'
`authorization: {credentials_file: …}`), compared in constant time; without it `401`, and `403`
when no admin token is set at all (`[web] admin_token_env`): the counts say how busy the
recruiting is, which is not for the public side of the edge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailflow.pool import consent_links, referrals
from mailflow.relay.accounting import HEAD
from mailflow.relay.ledger import ReferralLedger
from mailflow.web.admin.auth import admin_token, token_matches
from mailflow.web.readers import committed_reader

if TYPE_CHECKING:
    from mailflow.store.base import Doc
    from mailflow.web.acceptor import ConnectionGate
    from mailflow.web.app import ASGIApp, Message, Receive, Scope, Send
    from mailflow.web.host import Host

log = logging.getLogger("mailflow.web")

REFRESH_SECONDS = 2.0
LEDGER_REPLAY_SECONDS = 300.0
OUTBOX_STATES = ("queued", "sending", "sent", "failed", "unknown")
REVIEW_STATES = ("asked", "settled")
CALLBACK_OUTCOMES = {200: "accepted", 400: "invalid", 401: "unauthorized", 413: "too_large",
                     422: "unknown_ref", 503: "unavailable"}


class StoreFigures(Collector):
    """The store's gauges as of the last `refresh`: a scrape reads them without the store lock.
    The ledger balance (a replay of every entry) is recomputed when the sealed head moved, and
    every `LEDGER_REPLAY_SECONDS` all the same (`verified` notices an edit behind the head).
    Before the first refresh, none are shown."""

    def __init__(self, daemon: Host) -> None:
        self.daemon = daemon
        self.refreshed_at: datetime | None = None
        self._families: list[Metric] = []
        self._ledger: tuple[Doc | None, datetime | None, list[Metric]] = (None, None, [])
        self._reader: ReferralLedger | None = None

    def refresh(self) -> None:
        """Read the figures (under the store lock: blocking, run it in a thread)."""
        store, lane = self.daemon.store, self.daemon.lane
        with lane:
            handled = store.count("messages")
            links = (store.count("tokens") - consent_links.issued(store)
                     - referrals.issued(store))
            outbox = {s: len(store.find("outbox", "state", s)) for s in OUTBOX_STATES}
            reviews = {s: len(store.find("reviews", "state", s)) for s in REVIEW_STATES}
            examples = {label: len(store.find("examples", "label", label))
                        for label in ("rejection", "not_rejection")}
            head = store.get("settings", HEAD)
        families: list[Metric] = [
            GaugeMetricFamily("mailflow_messages_handled", "Messages handed to the pipeline",
                              value=handled),
            GaugeMetricFamily("mailflow_invitations_issued",
                              "Career Relay links issued (rejection rewrites and invitations)",
                              value=links)]
        family = GaugeMetricFamily("mailflow_outbox_messages", "Outgoing mail by state",
                                   labels=["state"])
        for state, count in outbox.items():
            family.add_metric([state], count)
        asked = GaugeMetricFamily(
            "mailflow_rejection_reviews",
            "Mails to candidates HR was asked about (neither clearly a rejection nor clearly not)",
            labels=["state"])
        for state, count in reviews.items():
            asked.add_metric([state], count)
        learned = GaugeMetricFamily("mailflow_rejection_examples",
                                    "Cases HR settled with a #mailflow line, by HR's label",
                                    labels=["label"])
        for label, count in examples.items():
            learned.add_metric([label], count)
        families += [family, asked, learned]
        now = self.daemon.clock.now()
        last_head, replayed_at, balance = self._ledger
        if (head is None or head != last_head or replayed_at is None
                or (now - replayed_at).total_seconds() >= LEDGER_REPLAY_SECONDS):
            balance = self._balance()
            self._ledger = (head, now, balance)
        self._families = families + balance  # one swap: a scrape sees one refresh
        self.refreshed_at = now

    def _balance(self) -> list[Metric]:
        try:
            balance = self._ledger_reader().balance()
        except Exception:  # a missing ledger key: the balance is not shown, the rest is
            return []
        ledger = GaugeMetricFamily("mailflow_ledger", "Referral ledger balance", labels=["what"])
        for what in ("registrations", "slots_earned", "slots_redeemed", "slots_available",
                     "progress_to_next"):
            ledger.add_metric([what], getattr(balance, what))
        ledger.add_metric(["verified"], int(balance.verified))
        return [ledger]

    def _ledger_reader(self) -> ReferralLedger:
        """The ledger on a read-only connection of its own, when the store has one: a replay
        of every entry then holds no lock the callbacks wait for."""
        if self._reader is None:
            ledger, reader = self.daemon.ledger, committed_reader(self.daemon.store)
            self._reader = (ReferralLedger(reader, ledger.clock, ledger.per_slot, ledger.key)
                            if reader is not None and isinstance(ledger, ReferralLedger)
                            else ledger)
        return self._reader

    def collect(self) -> Iterator[Metric]:
        yield from self._families
        if self.refreshed_at is not None:
            age = (self.daemon.clock.now() - self.refreshed_at).total_seconds()
            yield GaugeMetricFamily("mailflow_store_figures_age_seconds",
                                    "Seconds since the store's figures were read",
                                    value=max(age, 0.0))

    async def keep_fresh(self, stopping: asyncio.Event) -> None:
        """Refresh every `REFRESH_SECONDS` until `stopping` is set; a failure is logged once."""
        failing = False
        while not stopping.is_set():
            try:
                await asyncio.to_thread(self.refresh)
                if failing:
                    log.info("metrics: the store's figures are read again")
                failing = False
            except Exception as exc:
                if not failing:
                    log.warning("metrics: cannot read the store's figures: %s", exc)
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), REFRESH_SECONDS)


class EdgeConnections(Collector):
    """The web edge's connections: open now, the limit, and those closed first at the limit."""

    def __init__(self) -> None:
        self.gate: ConnectionGate | None = None

    def watch(self, gate: ConnectionGate) -> None:
        self.gate = gate

    def collect(self) -> Iterator[Metric]:
        gate = self.gate
        if gate is None:
            return
        yield GaugeMetricFamily("mailflow_web_connections_open", "Connections open on the web "
                                "edge", value=gate.open)
        yield GaugeMetricFamily("mailflow_web_connection_limit", "Most connections the web "
                                "edge keeps open (max_connections, capped by the open-file limit)",
                                value=gate.limit)
        yield CounterMetricFamily("mailflow_web_connections_shed", "Connections closed at the "
                                  "limit before they sent a request header", value=gate.shed_total)


class Liveness(Collector):
    """`mailflow_up{part="imap"}` (1: every watched folder logged in) and
    `mailflow_mailbox_auth_failed` (1 while the IMAP server refuses the login)."""

    def __init__(self, daemon: Host) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[GaugeMetricFamily]:
        imap = self.daemon.imap
        up = GaugeMetricFamily("mailflow_up", "1 when the part works (imap: every watched "
                               "folder logged in)", labels=["part"])
        up.add_metric(["imap"], int(imap.up))
        yield up
        yield GaugeMetricFamily("mailflow_mailbox_auth_failed",
                                "1 while the IMAP server refuses the login",
                                value=int(imap.refused is not None))


class Metrics:
    def __init__(self, daemon: Host) -> None:
        self.daemon = daemon
        self.registry = CollectorRegistry()
        self.clicks = Counter("mailflow_link_clicks", "Career Relay link requests by class",
                              ["class"], registry=self.registry)
        self.callbacks = Counter("mailflow_partner_callbacks", "Partner callbacks by outcome",
                                 ["outcome"], registry=self.registry)
        self.limited = Counter("mailflow_rate_limited", "Requests refused by the rate limit",
                               ["path"], registry=self.registry)
        self.expired = Counter("mailflow_web_connections_timed_out",
                               "Connections closed because their header or body came too slowly",
                               ["phase"], registry=self.registry)
        self.store_figures = StoreFigures(daemon)
        self.connections = EdgeConnections()
        self.registry.register(self.store_figures)
        self.registry.register(Liveness(daemon))
        self.registry.register(self.connections)

    def timed_out(self, phase: str) -> None:
        self.expired.labels(phase).inc()

    def routes(self) -> list[BaseRoute]:
        async def metrics(request: Request) -> Response:
            expected = admin_token(self.daemon.config)
            if not expected:
                return Response("no admin token is set: /metrics is off\n", 403,
                                media_type="text/plain")
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token_matches(expected, given.strip()):
                return Response("a bearer token is needed\n", 401, media_type="text/plain",
                                headers={"www-authenticate": 'Bearer realm="mailflow"'})
            text = generate_latest(self.registry)  # cached and in-memory figures: no store access
            return Response(text, media_type=CONTENT_TYPE_LATEST)

        return [Route("/metrics", metrics, methods=["GET"])]


class Outcomes:
    """ASGI middleware: counts callbacks by the status they were answered with, and rate-limit
    refusals by path family."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith(("/callbacks/", "/r/", "/u/")):
            await self.app(scope, receive, send)
            return

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if path.startswith("/callbacks/"):
                    self.metrics.callbacks.labels(CALLBACK_OUTCOMES.get(status, str(status))).inc()
                elif status == 429:
                    self.metrics.limited.labels(path[:3]).inc()
            await send(message)

        await self.app(scope, receive, observe)
