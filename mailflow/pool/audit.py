"""The audit log (APPI accountability): who did what through the CLI and the admin pages —
erase, export, export-person, redeem, consent changes, purge — never the personal data itself.

An entry is `{"at", "actor", "action", "target", "detail"}`: `actor` is `cli:USER` (the login
name of the person at the console) or `admin:USER` (the admin pages' session), `target` a
candidate id or "" and `detail` counts and reasons, no names, addresses or phone numbers. The log
is append-only (store kind `audit`); `erase` keeps its entries, which name only the id.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator, Mapping
from typing import Any

from mailflow.clock import Clock, iso
from mailflow.store.base import Doc, Store

ACTIONS = ("erase", "export", "export-person", "redeem", "consent", "purge", "hire", "left",
           "tag", "intent",
           "network-publish",  # `network publish`: the counts, never who
           "correct",  # HR's `candidate set` (the field's name only)
           # the admin pages (`web.admin`): logging in and out, a search (the filters' names,
           # never the terms), a candidate's page opened, and each button
           "admin-login", "admin-logout", "admin-search", "admin-view", "admin-resend",
           "admin-mark-sent", "admin-replay")


def console_actor() -> str:
    """`cli:USER` for a command run at this machine's console."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def record(store: Store, clock: Clock, actor: str, action: str, target: str = "",
           detail: Mapping[str, Any] | None = None) -> int:
    """Append one entry (inside the caller's transaction, when there is one)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; known: {', '.join(ACTIONS)}")
    return store.append("audit", {"at": iso(clock.now()), "actor": actor, "action": action,
                                  "target": target, "detail": dict(detail or {})})


def entries(store: Store, after: int = 0) -> Iterator[tuple[int, Doc]]:
    return store.log("audit", after)
