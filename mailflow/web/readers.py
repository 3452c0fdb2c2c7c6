"""Read-only connections of the web edge's own: what is committed, read without waiting for the
store's lock (which a writer, the follow-up tick, may hold for a while)."""

from __future__ import annotations

from mailflow.store.base import Store
from mailflow.store.sqlite import SqliteStore


def committed_reader(store: Store) -> Store | None:
    """A read-only connection of its own to the SQLite file under `store` (the daemon's store
    is wrapped: serial, tagging), which sees what is committed without waiting for the store's
    lock; None on other engines."""
    inner: object = store
    while not isinstance(inner, SqliteStore) and hasattr(inner, "inner"):
        inner = inner.inner
    if not isinstance(inner, SqliteStore) or inner.read_only or not inner.path.is_file():
        return None
    return SqliteStore(inner.path, read_only=True)
