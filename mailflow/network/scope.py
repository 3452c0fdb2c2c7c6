"""The network pool's own store scope: a PostgreSQL schema every member reaches, apart from
each company's store (`[network] dsn_env` names the variable holding its connection string,
e.g. `host=… dbname=… options='-c search_path=net_d'`).

It holds `network_entries` (what members published, by entry id), `network_stages` (the stage
log, append-only) and `network_members` (who joined), and a `settings` document naming the
network, so a member configured for another network is refused instead of mixing two. Writers
are short-lived: a command opens the scope, writes, closes; the engine's writer lock makes two
members' writes take turns (a member waits up to a minute for the one before it, then is told
the pool is busy).
Reading takes no lock; a scope nobody wrote yet reads as empty.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mailflow.errors import MailflowError, NoStore, StoreError
from mailflow.network.stages import Refused
from mailflow.store import Store, empty_store

if TYPE_CHECKING:
    from mailflow.settings.config import Config

Doc = dict[str, Any]
NETWORK_KEY = "network"
NETWORK_SCOPE = "network"  # the scope's rows in its schema (`PostgresStore(company=)`)
TURN_SECONDS = 60.0  # how long a writer waits for the members writing before it
BUSY = "in use by another writer"  # the engine's refusal (each try waits a few seconds itself)


def open_network_store(config: Config, read_only: bool = False) -> Store:
    """The network's scope (the one place it is opened: with company scopes in the store, this
    becomes the scope `network:{id}` of the shared database). Read-only and not created yet:
    an empty store."""
    from mailflow.store.postgresql import PostgresStore  # psycopg only where it is used

    dsn = config.secret("network.dsn_env")
    deadline = time.monotonic() + TURN_SECONDS
    while True:
        try:
            return PostgresStore(dsn, read_only=read_only, company=NETWORK_SCOPE)
        except NoStore:
            return empty_store()
        except StoreError as exc:  # another member writing: its turn first
            if BUSY not in str(exc) or time.monotonic() >= deadline:
                raise


class NetworkPool:
    """The network's scope as the commands see it, for one member (`[network] company`)."""

    def __init__(self, store: Store, network: str, company: str) -> None:
        self.store = store
        self.network = network
        self.company = company
        found = store.get("settings", NETWORK_KEY)
        if found is not None and found.get("id") != network:
            raise MailflowError(f"the network pool at {getattr(store, 'where', 'this store')} "
                                f"is network {found.get('id')!r}, not {network!r} "
                                "([network] id)")

    def join(self, at: str) -> None:
        """Record the network's name (first writer) and this company as a member."""
        if self.store.get("settings", NETWORK_KEY) is None:
            self.store.put("settings", NETWORK_KEY, {"id": self.network})
        if self.store.get("network_members", self.company) is None:
            self.store.put("network_members", self.company, {"company": self.company,
                                                             "joined_at": at})

    def members(self) -> list[str]:
        return [str(d["company"]) for d in self.store.scan("network_members")]

    def entry(self, entry: str) -> Doc | None:
        return self.store.get("network_entries", entry)

    def entries_of(self, company: str) -> dict[str, Doc]:
        return {str(d["entry"]): d for d in self.store.find("network_entries", "company", company)}

    def others(self) -> Iterator[Doc]:
        """Every entry another member published, in entry-id order (random: no one's order)."""
        return (d for d in self.store.scan("network_entries") if d.get("company") != self.company)

    def events(self, entry: str | None = None) -> list[Doc]:
        if entry is not None:
            return self.store.find("network_stages", "entry", entry)
        return [doc for _, doc in self.store.log("network_stages")]

    def publisher(self, entry: str) -> tuple[str, bool]:
        """Who published `entry` and whether it is still in the pool; `Refused` for an entry
        the network never had."""
        doc = self.entry(entry)
        if doc is not None:
            return str(doc["company"]), True
        for event in self.events(entry):
            return str(event["publisher"]), False
        raise Refused(f"no entry {entry} in network {self.network}")
