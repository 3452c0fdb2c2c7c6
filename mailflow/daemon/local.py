"""What the command line gets from the daemon: a small interface, not the `Daemon` class.

`serve` runs the daemon in the foreground (`mailflow run`); `open_service` gives a write command
what it needs when no daemon runs — the store under the writer lock and the desks that change it
— as a `Service`; `backfill_alone` takes in a folder's history without a daemon.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import date
from typing import Any, Protocol

from mailflow.clock import Clock
from mailflow.mailbox.backfill import Backfill
from mailflow.mailbox.handoff import Intake
from mailflow.outgoing.outbox import Outbox
from mailflow.privacy.at_rest import owner_only_umask
from mailflow.relay.ledger import ReferralLedger
from mailflow.settings.config import Config
from mailflow.store.base import Store


class Service(Protocol):
    """The desks a write command uses when it runs without a daemon."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> Store: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def lane(self) -> threading.RLock: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def intake(self) -> Intake: ...

    @property
    def ledger(self) -> ReferralLedger: ...


def open_service(config: Config) -> Service:
    """The service for a command run alone (takes the store's writer lock; close its store).
    Everything it creates is owner-only (umask 077): it writes candidates' personal data."""
    from mailflow.daemon.service import Daemon

    owner_only_umask()
    return Daemon(config)


def serve(config: Config) -> None:
    """Run the daemon until SIGTERM/SIGINT, creating files owner-only (umask 077)."""
    from mailflow.daemon.service import Daemon

    owner_only_umask()
    asyncio.run(Daemon(config).serve())


def backfill_alone(config: Config, folder: str, since: date | None,
                   progress: Callable[[int, int | None], None]) -> dict[str, Any]:
    """Take in ``folder``'s history here, with no daemon running."""
    service = open_service(config)
    try:
        password = config.imap_password()
        return Backfill(config, service.intake, password).run(folder, since, progress)
    finally:
        service.store.close()
