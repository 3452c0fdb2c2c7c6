"""Erasure and retention in the running daemon: the control channel's `privacy.erase` and
`privacy.purge`, and the daily purge.

The daily purge runs at the quiet hour (`QUIET_HOUR`, 03:00 in `[rules] timezone`) and, shortly
after a start (`START_DELAY_SECONDS`), when a run is due: it is due a day after the last run or at
the first quiet hour after it, whichever comes first (`next_due`), so a daemon that was down at
03:00 catches up once and then runs at 03:00 again. The last run is in the store (settings
`privacy_purge`, `purge.LAST_RUN`), so a restart does not run it twice. The time is the daemon's
clock (tests move a frozen one); the wait between looks is real time (`POLL_SECONDS`).

The store work runs under the daemon's writer lane in one transaction, then the store is
scrubbed; the person's mail in the mailbox (`person_mail`, when `[privacy] erase_mailbox` says
so) is handled after, outside the lane: the IMAP server's pace never holds up the store.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from mailflow.clock import Clock, parse_iso
from mailflow.pool.talent import TalentPool
from mailflow.privacy.erase import NoSuchCandidate, erase
from mailflow.privacy.person import Person
from mailflow.privacy.person_mail import erase_messages
from mailflow.privacy.purge import Purged, last_run, purge
from mailflow.settings.config import Config
from mailflow.store.base import Store

log = logging.getLogger("mailflow.privacy")

QUIET_HOUR = 3
START_DELAY_SECONDS = 60.0
POLL_SECONDS = 60.0
DAEMON_ACTOR = "daemon:retention"


def next_due(last: datetime | None, zone: ZoneInfo) -> datetime | None:
    """When the daily purge is due after a run at `last` (None: never run, due now)."""
    if last is None:
        return None
    local = last.astimezone(zone)
    quiet = local.replace(hour=QUIET_HOUR, minute=0, second=0, microsecond=0)
    if quiet <= local:
        quiet += timedelta(days=1)
    return min(last + timedelta(days=1), quiet.astimezone(UTC))


class PrivacyDesk:
    def __init__(self, store: Store, clock: Clock, config: Config,
                 lane: threading.RLock) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.lane = lane
        self._busy = threading.Lock()  # a purge or erasure in hand; `stop` waits for it

    # -- commands -----------------------------------------------------------------------------

    def erase(self, args: dict[str, Any]) -> dict[str, Any]:
        """`privacy.erase`: `candidate` (id or email), `reason`, `actor`."""
        with self._busy:
            with self.lane:
                candidate = TalentPool(self.store, self.clock).lookup(str(args["candidate"]))
                if candidate is None:
                    raise NoSuchCandidate(f"no candidate {args['candidate']}")
                person = Person.of(candidate)
                done = erase(self.store, self.clock, self.config.data_dir, candidate["id"],
                             str(args["reason"]), str(args.get("actor") or "cli:unknown"))
            done.removed.update(erase_messages(self.config, [person]))
            return done.as_json()

    def purge(self, args: dict[str, Any]) -> dict[str, Any]:
        """`privacy.purge`: `dry_run`, `actor`."""
        with self._busy:
            return self._purge(str(args.get("actor") or "cli:unknown"),
                               bool(args.get("dry_run"))).report

    def _purge(self, actor: str, dry_run: bool = False) -> Purged:
        with self.lane:
            done = purge(self.store, self.clock, self.config, actor, dry_run)
        if done.erased:
            done.report["mailbox"] = dict(erase_messages(self.config, done.erased))
        return done

    # -- the daily run --------------------------------------------------------------------------

    def due(self) -> bool:
        last = last_run(self.store)
        at = next_due(parse_iso(last) if last else None, self.config.zone)
        return at is None or self.clock.now() >= at

    def run_if_due(self) -> bool:
        if not self.due():
            return False
        with self._busy:
            counts = self._purge(DAEMON_ACTOR).report["counts"]
        log.info("retention: daily purge done: %s",
                 ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing past it")
        return True

    async def daily(self) -> None:
        """The daily purge, until cancelled (the daemon's task)."""
        await asyncio.sleep(START_DELAY_SECONDS)
        while True:
            try:
                await asyncio.to_thread(self.run_if_due)
            except Exception:
                log.exception("retention: daily purge failed")
            await asyncio.sleep(POLL_SECONDS)

    def stop(self) -> None:
        """Return once the purge or erasure in hand (if any) has finished."""
        with self._busy:
            pass
