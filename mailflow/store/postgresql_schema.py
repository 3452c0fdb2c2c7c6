"""The PostgreSQL engine's tables and their migrations: numbered steps, each applied once, in
one transaction under an advisory lock (two writers starting together do not both migrate),
with the version reached and the index declaration in `mf_schema`. A changed declaration
(`INDEXES`) rebuilds the index rows from the documents, as the SQLite engine does."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from mailflow.store.base import INDEXES, index_pairs

# advisory lock keys: a holder's lease (per schema, see `lease_key`), the class of the logs' and
# of the named locks (`Store.lock`)
WRITER = "mailflow-writer"
DEFAULT_HOLDER = "writer"  # a store opened without a mailbox identity (tests, tools)
LOGS_CLASS = 0x6D666C67  # "mflg"
LOCKS_CLASS = 0x6D666C6B  # "mflk"


def lease_key(holder: str) -> str:
    """The text a holder's lease is keyed by (hashed with the schema's name into the advisory
    lock): one writer per holder — per mailbox for a daemon — on one schema."""
    return f"{WRITER}:{holder}"

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, """
CREATE TABLE mf_docs (
  kind text COLLATE "C" NOT NULL,
  key text COLLATE "C" NOT NULL,
  doc text NOT NULL,
  PRIMARY KEY (kind, key)
);
CREATE TABLE mf_idx (
  kind text COLLATE "C" NOT NULL,
  field text COLLATE "C" NOT NULL,
  value text COLLATE "C" NOT NULL,
  key text COLLATE "C" NOT NULL,
  PRIMARY KEY (kind, field, value, key)
);
CREATE INDEX mf_idx_by_key ON mf_idx (kind, key);
"""),
)


def signature() -> str:
    return json.dumps(INDEXES, sort_keys=True)


def has_schema(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass('mf_schema') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return False
    version = conn.execute("SELECT version FROM mf_schema").fetchone()
    return version is not None and int(version[0]) >= 1


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Bring the schema to the last step, inside the caller's transaction. The version reached."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s || current_schema()))",
                 ("mailflow-migrate:",))
    conn.execute("CREATE TABLE IF NOT EXISTS mf_schema (version integer NOT NULL, "
                 "indexes text NOT NULL)")
    row = conn.execute("SELECT version, indexes FROM mf_schema").fetchone()
    if row is None:
        conn.execute("INSERT INTO mf_schema(version, indexes) VALUES (0, %s)", (signature(),))
        version, indexes = 0, signature()
    else:
        version, indexes = int(row[0]), str(row[1])
    for number, step in MIGRATIONS:
        if number > version:
            conn.execute(step)
            version = number
    conn.execute("UPDATE mf_schema SET version = %s", (version,))
    if indexes != signature():
        _rebuild_index(conn)
        conn.execute("UPDATE mf_schema SET indexes = %s", (signature(),))
    return version


def _rebuild_index(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DELETE FROM mf_idx")
    rows = conn.execute("SELECT kind, key, doc FROM mf_docs").fetchall()
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO mf_idx(kind, field, value, key) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            [(kind, field, value, key) for kind, key, doc in rows if kind in INDEXES
             for field, value in sorted(index_pairs(kind, json.loads(doc)))])
