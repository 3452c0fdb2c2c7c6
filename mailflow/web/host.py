"""What the web edge needs from the service that runs it: a small interface, not the daemon.

The daemon (`mailflow.daemon.service.Daemon`) satisfies it; a test may pass anything that does.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from mailflow.clock import Clock
from mailflow.followups.unsubscribe import Unsubscribes
from mailflow.relay.ledger import ReferralLedger
from mailflow.settings.config import Config
from mailflow.store.base import Store


class Health(Protocol):
    @property
    def healthy(self) -> bool: ...

    @property
    def reasons(self) -> list[str]: ...


class Imap(Protocol):
    @property
    def up(self) -> bool: ...  # every watched folder logged in

    @property
    def refused(self) -> str | None: ...  # why the server refuses the login, while it does


class FollowUps(Protocol):
    @property
    def unsubscribes(self) -> Unsubscribes: ...


class Host(Protocol):
    """The running service, as the web edge sees it."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> Store: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def lane(self) -> threading.RLock: ...

    @property
    def ledger(self) -> ReferralLedger: ...

    @property
    def health(self) -> Health: ...

    @property
    def followups(self) -> FollowUps: ...

    @property
    def imap(self) -> Imap: ...

    def carry_out(self, command: str, args: dict[str, Any]) -> Any:
        """Run one of the daemon's own control-channel handlers (`quarantine.replay`,
        `outbox.resend`, `outbox.mark_sent`, `rules.check` …), as `mailflow` commands do through
        the control socket; the admin pages' buttons use it. Blocking: call it in a thread."""
        ...
