"""The SQLite file's schema: its tables, the index rows of a document, and its migration.

Layout: `docs(kind, key, doc)` holds every document (primary key `(kind, key)`); `idx(kind, field,
value, key)` holds one row per indexed value (a list-valued field gives one row per element), and
its primary key `(kind, field, value, key)` is the index `find` and `below` walk. `meta` records
which declared indexes (`INDEXES`) the `idx` rows were built for.

Migration, each time a writer opens the file: a schema newer than `SCHEMA_VERSION` is refused; a
new file, or one whose declared indexes changed since, has its index table rebuilt once, in one
transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from mailflow.errors import StoreError
from mailflow.store.base import INDEXES, index_pairs

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL,
    key  TEXT NOT NULL,
    doc  TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS idx (
    kind  TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    key   TEXT NOT NULL,
    PRIMARY KEY (kind, field, value, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


# --- index rows ----------------------------------------------------------------------------------


def indexes_signature() -> str:
    return json.dumps(INDEXES, sort_keys=True)


def add_index(
    conn: sqlite3.Connection, kind: str, key: str, pairs: Iterable[tuple[str, str]]
) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO idx(kind, field, value, key) VALUES (?, ?, ?, ?)",
        [(kind, field, value, key) for field, value in pairs],
    )


def drop_index(
    conn: sqlite3.Connection, kind: str, key: str, pairs: Iterable[tuple[str, str]]
) -> None:
    conn.executemany(
        "DELETE FROM idx WHERE kind = ? AND field = ? AND value = ? AND key = ?",
        [(kind, field, value, key) for field, value in pairs],
    )


# --- migration -----------------------------------------------------------------------------------


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file at `path` (its tables created) up to this mailflow's schema."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"store {path} has schema {version}; this mailflow knows {SCHEMA_VERSION}"
        )
    row = conn.execute("SELECT value FROM meta WHERE name='indexes'").fetchone()
    if version == SCHEMA_VERSION and row is not None and row[0] == indexes_signature():
        return
    # New store, or the declared indexes changed: (re)build the index table once.
    conn.execute("BEGIN IMMEDIATE")
    try:
        _rebuild_index(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _rebuild_index(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM idx")
    for kind, key, text in conn.execute("SELECT kind, key, doc FROM docs").fetchall():
        if kind in INDEXES:
            add_index(conn, kind, key, index_pairs(kind, json.loads(text)))
    conn.execute(
        "INSERT OR REPLACE INTO meta(name, value) VALUES ('indexes', ?)",
        (indexes_signature(),),
    )
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
