"""The daemon: the store, the pipeline, one watcher per folder, the control channel, the
watchdog, and signals (SIGTERM/SIGINT stop after the message in hand, SIGHUP reloads), told to
systemd by notify.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mailflow.clock import Clock, default_clock, iso
from mailflow.daemon.commands import control_handlers
from mailflow.daemon.control import ControlServer
from mailflow.daemon.folders import watched_folders
from mailflow.daemon.monthly import MonthlyReport
from mailflow.daemon.notify import Systemd
from mailflow.errors import MailflowError
from mailflow.followups.scheduler import FollowUpScheduler
from mailflow.mailbox.backfill import Backfill, BackfillRunner
from mailflow.mailbox.handoff import Intake
from mailflow.mailbox.imap import Mailbox
from mailflow.mailbox.login import ImapState, LoginGate
from mailflow.mailbox.oauth import TokenSource
from mailflow.mailbox.pipeline import Pipeline, Receipt, Stage
from mailflow.mailbox.refetch import Refetcher
from mailflow.mailbox.watcher import FolderWatcher
from mailflow.openings.desk import OpeningDesk
from mailflow.outgoing.outbox import Outbox
from mailflow.outgoing.records import PublicOutboxItem
from mailflow.pool.tagging import reload_tags, tagging_store
from mailflow.privacy.at_rest import check_data_dir
from mailflow.privacy.desk import PrivacyDesk
from mailflow.rejection.reviews import ReviewDesk
from mailflow.settings.config import Config
from mailflow.store import configured_store, mailbox_scope
from mailflow.store.base import Store
from mailflow.store.full import DiskWatch
from mailflow.store.serial import SerialStore

if TYPE_CHECKING:
    from mailflow.relay.ledger import ReferralLedger
    from mailflow.web.server import WebEdge

log = logging.getLogger("mailflow.daemon")

WATCHDOG_SECONDS = 5.0
OUTBOX_SECONDS = 1.0  # the outbox's delivery round, also run at once when woken


@dataclass
class Health:
    healthy: bool = True
    reasons: list[str] = field(default_factory=list)
    stuck: bool = False  # a folder silent while the login is not refused: a restart may help


class Daemon:
    def __init__(self, config: Config, clock: Clock | None = None,
                 stages: Callable[[Daemon], list[Stage]] | None = None,
                 store: Store | None = None) -> None:
        self.config = config
        self.clock = clock or default_clock()
        if store is None:
            check_data_dir(config.data_dir)  # others may not read candidates' data: refused
        self.disk = DiskWatch(str(config.data_dir))  # a full disk: unhealthy until space returns
        self.tagging = tagging_store(store or SerialStore(configured_store(config), self.disk),
                                     config, self.clock)
        self.store: Store = self.tagging
        self.reloaders: list[Callable[[], None]] = [self._reload_tags]
        self.lane = threading.RLock()
        # on a shared store (other mailboxes' daemons beside), the mailbox's own records
        self.scope = mailbox_scope(config)
        self.outbox = Outbox(self.store, self.clock, config, self.lane,
                             on_undeliverable=self._undeliverable)
        self.reviews = ReviewDesk(self.store, self.clock, config, self.outbox)
        self.pipeline = Pipeline((stages or default_stages)(self))
        _ = self.scanners  # loads the rejection rules now: a broken file refuses the start
        # the rules' last validation (the admin pages show it): at start, then at each reload
        self.rules_validation: dict[str, Any] = {"at": iso(self.clock.now()), "when": "start",
                                                 "problems": []}
        self.followups = FollowUpScheduler(self.store, self.clock, config, self.outbox, self.lane)
        self.reloaders.append(self.followups.reload)
        self.openings = OpeningDesk(self.store, self.clock, config, self.outbox, self.lane)
        self.reloaders.append(self._sync_openings)
        self.intake = Intake(self.store, self.pipeline, self.clock, self.lane,
                             mailbox=self.scope)
        self.privacy = PrivacyDesk(self.store, self.clock, config, self.lane)
        self.health = Health()
        self._health_guard = threading.Lock()
        self.login = LoginGate(config.mailbox.auth_retry_seconds, on_change=self.check_health)
        self.disk.on_change = self.check_health
        # one access token for every watched folder (auth = "oauth2")
        self.tokens = TokenSource(config.mailbox) if config.mailbox.auth == "oauth2" else None
        # a replay of a mail quarantined as too large fetches it again
        self.intake.refetch = Refetcher(config.mailbox, config.imap_password, self.tokens)
        self.watchers: list[FolderWatcher] = []
        self.control = ControlServer(config.data_dir, self.control_handlers())
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.web: WebEdge | None = None
        self.systemd = Systemd()  # READY, WATCHDOG, STATUS; a no-op without $NOTIFY_SOCKET

    @cached_property
    def scanners(self) -> dict[str, Callable[[Mailbox, str], float | None]]:
        """Folders read by a scanner of their own instead of the hand-off: Drafts in rewrite
        mode (rejection drafts rewritten in place), the outbox folder in send mode."""
        from mailflow.rejection.drafts import DraftDesk, Rewritten
        from mailflow.rejection.rewriting import (
            RejectionRewrite,
            RewriteSettings,
            rewrite_rejection,
        )
        from mailflow.rejection.send_mode import OutboxFolder
        from mailflow.relay.desk import RelayDesk

        settings = [RewriteSettings.from_config(self.config)]
        relay = RelayDesk(self.store, self.clock, self.config.web.public_url)

        def reload() -> None:
            settings[0] = RewriteSettings.from_config(self.config)  # raises: old ones stay

        self.reloaders.append(reload)
        scanners: dict[str, Callable[[Mailbox, str], float | None]] = {}
        if self.config.rejection.mode in ("send", "both"):
            def outgoing(raw: bytes) -> RejectionRewrite:
                result = rewrite_rejection(raw, settings[0], relay)
                self.reviews.saw(raw, result.decision, "outbox")
                return result

            folder = OutboxFolder(self.store, self.clock, self.outbox, outgoing,
                                  self.config.rejection.not_rejection, self.lane,
                                  trash=self.config.mailbox.trash)
            scanners["outbox"] = folder.scan
        if self.config.rejection.mode == "send":
            return scanners

        def rewriter(raw: bytes) -> Rewritten:
            result = rewrite_rejection(raw, settings[0], relay)
            self.reviews.saw(raw, result.decision, "drafts")
            if result.outcome == "refused":
                log.error("rejection draft left untouched (alert): %s; %s", result.why,
                          "; ".join(result.problems))
            if not result.rewritten or result.invite is None:
                return Rewritten(None, "", result.why)
            return Rewritten(result.raw, result.invite.rejection_id, result.why)

        def reread(raw: bytes) -> None:
            decision = rewrite_rejection(raw, settings[0], relay).decision
            self.reviews.saw(raw, decision, "drafts", ask=False)

        desk = DraftDesk(self.store, self.clock, rewriter, self.config.rejection.quiet_seconds,
                         self.lane, trash=self.config.mailbox.trash, reread=reread,
                         mailbox=self.scope)
        return {**scanners, "drafts": desk.scan}

    def control_handlers(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return control_handlers(self)

    def _sync_openings(self) -> None:
        """openings.toml into the store; a new or changed opening ranked and HR told (once)."""
        ranked = self.openings.sync()
        if ranked:
            log.info("openings ranked anew: %s", ", ".join(ranked))

    @cached_property
    def ledger(self) -> ReferralLedger:
        from mailflow.relay.ledger import ReferralLedger

        return ReferralLedger.from_config(self.store, self.clock, self.config, self.lane)

    @cached_property
    def backfills(self) -> BackfillRunner:
        password = self.config.imap_password()
        return BackfillRunner(Backfill(self.config, self.intake, password))

    def _undeliverable(self, address: str, record: PublicOutboxItem) -> None:
        from mailflow.outgoing.undeliverable import mark_undeliverable

        mark_undeliverable(self.store, self.clock, self.config, self.outbox, address, record)

    def _reload_tags(self) -> None:
        """rules/tags.toml again (checked with the other files first); the pool re-tagged when
        the rules changed."""
        with self.lane:
            reload_tags(self.tagging, self.config)

    def carry_out(self, command: str, args: dict[str, Any]) -> Any:
        """One control-channel handler, called in this process (the admin pages, `web.host`)."""
        return self.control.handlers[command](args)

    def rules_check(self) -> dict[str, Any]:
        """The rules' last validation (at start or the last reload: the rules in force passed
        it, or a refused reload kept the old ones) and every problem of the files on disk now
        (what a reload would say)."""
        from mailflow.daemon.checks import static_problems

        return {"last": self.rules_validation,
                "now": [str(problem) for problem in static_problems(self.config)]}

    def replay(self, item_id: str) -> dict[str, Any]:
        doc = self.intake.replay(item_id)
        return {key: value for key, value in doc.items() if key != "raw"}

    def reload(self) -> list[str]:
        """Reload rules and templates, all or nothing: every file is checked first, and any
        problem keeps the rules in force and is raised (every problem, positioned). The mailbox
        password is read again from the environment and the login tried at once (after the
        server refused it, the watchers would otherwise wait `auth_retry_seconds`)."""
        from mailflow.daemon.checks import static_problems
        from mailflow.errors import ProblemsError

        password = self.config.imap_password()
        problems = static_problems(self.config)
        self.rules_validation = {"at": iso(self.clock.now()), "when": "reload",
                                 "problems": [str(problem) for problem in problems]}
        if problems:
            raise ProblemsError(problems)
        done = []
        for reload in self.reloaders:
            reload()
            done.append(getattr(reload, "__qualname__", "reload"))
        if self.tokens is not None:
            self.tokens.reload()
        self.login.renew(password)
        log.info("rules and templates reloaded%s",
                 "; logging in to IMAP again" if self.login.refused else "")
        return done

    # -- running ----------------------------------------------------------------------------

    async def serve(self) -> None:
        self.login.renew(self.config.imap_password())
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stopping.set)
            loop.add_signal_handler(signal.SIGHUP, self._reload_safely)
        self._loop = loop
        await self.control.start()
        try:
            await asyncio.to_thread(self._sync_openings)
        except Exception:
            log.exception("openings: not synced at start; tried again at the next reload")
        from mailflow.web.server import WebEdge

        self.web = WebEdge(self)
        await self.web.start()
        for role, name, create in watched_folders(self.config):
            watcher = FolderWatcher(role, name, self.config.mailbox, self.login, self.intake,
                                    create, scanner=self.scanners.get(role),
                                    tokens=self.tokens)
            self.watchers.append(watcher)
            watcher.start()
        log.info("mailflow running: watching %s", ", ".join(r for r, _n, _c in
                                                          watched_folders(self.config)))
        watchdog = asyncio.create_task(self._watchdog())
        informing = asyncio.create_task(self.systemd.keep_informed(self))
        delivery = asyncio.create_task(self._deliver())
        followups = asyncio.create_task(self._followups())
        retention = asyncio.create_task(self.privacy.daily())
        monthly = asyncio.create_task(MonthlyReport(self.store, self.clock, self.config,
                                                    self.outbox, self.lane).keep_sending())
        try:
            await self._stopping.wait()
        finally:
            log.info("stopping: finishing the message in hand")
            self.systemd.stopping()
            informing.cancel()
            if self.web is not None:
                await self.web.stop()
            watchdog.cancel()
            delivery.cancel()
            followups.cancel()
            retention.cancel()
            monthly.cancel()
            await asyncio.to_thread(self.privacy.stop)  # the purge in hand finishes first
            await asyncio.to_thread(self.outbox.stop)
            if "backfills" in self.__dict__:
                await asyncio.to_thread(self.backfills.stop)
            await asyncio.to_thread(self._stop_watchers)
            await self.control.stop()
            self.store.close()
            log.info("stopped")

    def stop(self) -> None:
        """Ask the daemon to stop; safe from any thread."""
        if self._stopping is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)

    def _stop_watchers(self) -> None:
        for watcher in self.watchers:
            watcher.stop()

    def reload_telling_systemd(self) -> list[str]:
        """`mailflow rules reload`: bracketed by RELOADING=1 … READY=1 like SIGHUP; a refusal is
        the command's answer."""
        with self.systemd.reloading():
            return self.reload()

    def _reload_safely(self) -> None:
        with self.systemd.reloading():
            try:
                self.reload()
            except Exception as exc:
                log.error("reload refused, keeping the rules in force: %s", exc)

    async def _watchdog(self) -> None:
        limit = self.config.mailbox.silence_alarm_seconds
        while True:
            await asyncio.sleep(min(WATCHDOG_SECONDS, limit / 2))
            if self.disk.full:
                await asyncio.to_thread(self._probe_disk)
            self.check_health()

    def _probe_disk(self) -> None:
        """While the disk is full, one small write a round: health comes back with the space
        even when nothing else writes."""
        with contextlib.suppress(MailflowError):
            self.store.put("settings", "disk_probe", {"at": iso(self.clock.now())})

    def check_health(self) -> None:
        """Health from what is wrong now: the watchdog's round, and at once when the IMAP
        server refuses (or accepts again) the login; safe from any thread. A refused login is
        logged by the login gate, once: not again here."""
        limit = self.config.mailbox.silence_alarm_seconds
        with self._health_guard:
            silent = [f"{w.role}: server silent for {w.silent_for:.0f}s"
                      for w in self.watchers if w.silent_for > limit]
            others = list(silent)
            if self.outbox.alert:
                others.append(f"outbox: {self.outbox.alert}")
            refused = self.login.refused
            reasons = [f"imap: {refused}", *others] if refused else others
            if self.disk.full:  # said once by the store itself
                reasons = [self.disk.full, *reasons]
            if others and self.health.healthy:
                log.error("unhealthy: %s", "; ".join(others))
            elif not reasons and not self.health.healthy:
                log.info("healthy again")
            self.health = Health(not reasons, reasons, stuck=bool(silent) and not refused)

    @property
    def imap(self) -> ImapState:
        """The mailbox side for /metrics: up when every watched folder is logged in."""
        return ImapState(bool(self.watchers) and all(w.connected for w in self.watchers),
                         self.login.refused)

    async def _deliver(self) -> None:
        """The outbox's delivery rounds, in a thread: every OUTBOX_SECONDS and when woken."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        self.outbox.on_wake = lambda: loop.call_soon_threadsafe(wake.set)
        while True:
            wake.clear()
            try:
                await asyncio.to_thread(self.outbox.deliver_due)
            except Exception:
                log.exception("outbox: delivery round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), OUTBOX_SECONDS)

    async def _followups(self) -> None:
        """The follow-up tick: the `schedule` library runs it every [followups] tick_seconds
        (the first one tick_seconds after start); the tick itself only claims rows that are
        due (scheduler.py)."""
        import schedule

        def tick() -> None:
            try:
                outcomes = self.followups.tick()
            except Exception:
                log.exception("follow-ups: tick failed")
                return
            if outcomes:
                log.info("follow-ups: %s", ", ".join(f"{k} {v}" for k, v in outcomes.items()))

        ticker = schedule.Scheduler()
        ticker.every(self.config.followups.tick_seconds).seconds.do(tick)
        while True:
            await asyncio.sleep(min(1.0, self.config.followups.tick_seconds))
            await asyncio.to_thread(ticker.run_pending)


def default_stages(daemon: Daemon) -> list[Stage]:
    from mailflow.followups.replies import reply_listener
    from mailflow.intake.applications import Applications
    from mailflow.pool.talent import TalentPool
    from mailflow.rejection.sent import SentMail

    pool = TalentPool(daemon.store, daemon.clock)
    followups = reply_listener(daemon.store, daemon.clock, daemon.config, daemon.outbox)
    applications = Applications(pool, daemon.config, daemon.outbox, on_reply=[followups])
    sent = SentMail(pool, daemon.config, daemon.clock, daemon.outbox, daemon.reviews.saw)
    daemon.reloaders += [applications.reload, sent.reload]
    return [Receipt(daemon.store, daemon.clock), applications, sent]
