"""The store: open one by engine name; everything else speaks to the `Store` interface.

`open_store(data_dir)` opens the default SQLite engine in `data_dir` (created with mode 0700). A
writer takes the writer lock of the directory first, so a second writer is refused with the pid
of the first; `read_only=True` takes no lock and never writes (CLI commands that only read), and
raises `NoStore` when there is no store yet; `empty_store()` is what a reader shows then (an
empty pool, not an error). The PostgreSQL engine keeps the documents in a server (`dsn`, the
connection string); the data directory still holds the attachments and the writer lock.
`configured_store(config)` opens what a config names, its connection string read from the
variable `[store] dsn_env` names, as the writer for the config's mailbox (`holder_of`): on
PostgreSQL one writer per mailbox — the daemon, or a CLI command when it is not running — and
daemons for other mailboxes share the database (the data directory, its lock and attachments,
stay one per daemon).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mailflow.errors import NoStore, StoreError, UsageError
from mailflow.store.base import INDEXES, LOGS, Doc, Store
from mailflow.store.lock import WriterLock
from mailflow.store.sqlite import SqliteStore
from mailflow.store.tinydb import TinyStore

if TYPE_CHECKING:
    from mailflow.settings.config import Config

__all__ = ["ENGINES", "INDEXES", "LOGS", "SERVER_ENGINES", "Doc", "Store", "WriterLock",
           "configured_store", "empty_store", "holder_of", "mailbox_scope", "open_store"]
SERVER_ENGINES = frozenset({"postgresql"})  # documents in a server, not in the data directory

Opener = Callable[[Path, bool, WriterLock | None], Store]


def _sqlite(path: Path, read_only: bool, lock: WriterLock | None) -> Store:
    return SqliteStore(path, read_only, lock=lock)


def _tinydb(path: Path, read_only: bool, lock: WriterLock | None) -> Store:
    return TinyStore(path, read_only, lock=lock)


# engine name -> (file name inside the data directory, opener)
ENGINES: dict[str, tuple[str, Opener]] = {
    "sqlite": ("mailflow.sqlite3", _sqlite),
    "tinydb": ("mailflow.json", _tinydb),
}


def store_path(data_dir: Path, engine: str) -> Path:
    if engine not in ENGINES and engine not in SERVER_ENGINES:
        choices = ", ".join([*ENGINES, *sorted(SERVER_ENGINES)])
        raise UsageError(f"unknown store engine {engine!r}; choices: {choices}")
    return Path(data_dir) / ENGINES[engine][0]


def empty_store() -> Store:
    """A read-only store with nothing in it, in memory: a new installation as readers see it."""
    return SqliteStore.empty()


def holder_of(config: Config) -> str:
    """The writer a config's store is opened as: its mailbox (`imap://user@host:port/INBOX`)."""
    box = config.mailbox
    return f"imap://{box.username or box.address}@{box.host}:{box.port}/{box.inbox}"


def mailbox_scope(config: Config) -> str:
    """Whose records a daemon's checkpoints and journals are on a store several mailboxes'
    daemons share (a server engine): its mailbox; "" on a store of its own."""
    return holder_of(config) if config.store.engine in SERVER_ENGINES else ""


def configured_store(config: Config, read_only: bool = False) -> Store:
    """The store `[store]` names; for PostgreSQL, its connection string from the environment."""
    dsn = config.secret("store.dsn_env") if config.store.engine in SERVER_ENGINES else None
    return open_store(config.data_dir, config.store.engine, read_only, dsn=dsn,
                      holder=holder_of(config), company=config.company.id)


def open_store(data_dir: Path, engine: str = "sqlite", read_only: bool = False,
               dsn: str | None = None, holder: str | None = None,
               company: str = "default") -> Store:
    """Open the store of `data_dir` with `engine`; writers hold the directory's writer lock
    (and on PostgreSQL the lease of `holder`, one writer per holder). A server store holds
    several companies' rows and shows `company`'s only (`[company] id`); a file store is one
    company's by being its data directory's."""
    if engine in SERVER_ENGINES:
        return _open_server(Path(data_dir), read_only, dsn, holder, company)
    path = store_path(data_dir, engine)
    data_dir = Path(data_dir)
    others = [
        data_dir / name
        for other, (name, _) in ENGINES.items()
        if other != engine and (data_dir / name).exists()
    ]
    if others and not path.exists():
        raise StoreError(
            f"{data_dir} holds a store of another engine ({others[0].name}), not {path.name}; "
            "check the store engine setting"
        )
    opener = ENGINES[engine][1]
    if read_only:
        if not path.exists():
            raise NoStore(f"no store at {path}; start the daemon once to create it")
        return opener(path, True, None)
    _private_dir(data_dir)
    lock = WriterLock(data_dir)
    lock.acquire()
    try:
        return opener(path, False, lock)
    except BaseException:
        lock.release()
        raise


def _open_server(data_dir: Path, read_only: bool, dsn: str | None, holder: str | None,
                 company: str) -> Store:
    from mailflow.store.postgresql import PostgresStore  # psycopg only where it is used
    from mailflow.store.postgresql_schema import DEFAULT_HOLDER

    if not dsn:
        raise UsageError("the postgresql store engine needs a connection string ([store] dsn_env)")
    if read_only:
        return PostgresStore(dsn, read_only=True, company=company)
    _private_dir(data_dir)
    lock = WriterLock(data_dir)
    lock.acquire()
    try:
        store = PostgresStore(dsn, company=company, holder=holder or DEFAULT_HOLDER)
    except BaseException:
        lock.release()
        raise
    store.lock = lock
    return store


def _private_dir(data_dir: Path) -> None:
    if not data_dir.exists():
        os.makedirs(data_dir, mode=0o700)
        os.chmod(data_dir, 0o700)  # whatever the umask: candidates' data is personal data
