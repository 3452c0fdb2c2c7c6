"""The PostgreSQL engine's tables and their migrations: numbered steps, each applied once, in
one transaction under an advisory lock (two writers starting together do not both migrate),
with the version reached and the index declaration in `mf_schema`. A changed declaration
(`INDEXES`) rebuilds the index rows from the documents, as the SQLite engine does."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from mailflow.errors import StoreError
from mailflow.store.base import INDEXES, index_pairs

# advisory lock keys: a holder's lease (per schema, see `lease_key`), the class of the logs' and
# of the named locks (`Store.lock`)
WRITER = "mailflow-writer"
DEFAULT_HOLDER = "writer"  # a store opened without a mailbox identity (tests, tools)
LOGS_CLASS = 0x6D666C67  # "mflg"
LOCKS_CLASS = 0x6D666C6B  # "mflk"



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
    # tenants: every row carries its company (rows already there get the migrating store's, the
    # column default evaluated once), keys lead with it, and row-level security shows and
    # accepts only the rows of the connection's `mailflow.company` (the owner too: FORCE)
    (2, """
ALTER TABLE mf_docs ADD COLUMN company text COLLATE "C" NOT NULL
  DEFAULT current_setting('mailflow.company');
ALTER TABLE mf_idx ADD COLUMN company text COLLATE "C" NOT NULL
  DEFAULT current_setting('mailflow.company');
ALTER TABLE mf_docs DROP CONSTRAINT mf_docs_pkey, ADD PRIMARY KEY (company, kind, key);
ALTER TABLE mf_idx DROP CONSTRAINT mf_idx_pkey, ADD PRIMARY KEY (company, kind, field, value, key);
DROP INDEX mf_idx_by_key;
CREATE INDEX mf_idx_by_key ON mf_idx (company, kind, key);
ALTER TABLE mf_docs ENABLE ROW LEVEL SECURITY;
ALTER TABLE mf_docs FORCE ROW LEVEL SECURITY;
ALTER TABLE mf_idx ENABLE ROW LEVEL SECURITY;
ALTER TABLE mf_idx FORCE ROW LEVEL SECURITY;
CREATE POLICY mf_company ON mf_docs USING (company = current_setting('mailflow.company'))
  WITH CHECK (company = current_setting('mailflow.company'));
CREATE POLICY mf_company ON mf_idx USING (company = current_setting('mailflow.company'))
  WITH CHECK (company = current_setting('mailflow.company'));
CREATE TABLE mf_indexes (company text COLLATE "C" PRIMARY KEY, indexes text NOT NULL);
"""),
)


def lease_key(company: str, holder: str) -> str:
    """A holder's lease, the writer lock's name: one writer per (schema, company, holder) — per
    mailbox for a daemon; hashed by the server with the schema appended
    (`hashtext(key || current_schema())`)."""
    return f"{WRITER}:{company}:{holder}:"


def set_company(conn: psycopg.Connection[Any], company: str) -> None:
    """Scope a connection to one company: row-level security reads `mailflow.company`."""
    conn.execute("SELECT set_config('mailflow.company', %s, false)", (company,))


def refuse_bypass(conn: psycopg.Connection[Any], where: str) -> None:
    """Row-level security does not hold a superuser or a BYPASSRLS role back: refused."""
    row = conn.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles "
                       "WHERE rolname = current_user").fetchone()
    if row is None or row[0]:
        raise StoreError(f"store {where}: the role {conn.info.user!r} is a superuser or "
                         "bypasses row-level security, which would show every company's rows; "
                         "connect as an ordinary role (docs/operations.md, PostgreSQL)")


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
    # the index declaration each company's rows were indexed with (a rebuild reaches only the
    # rows row-level security shows); a company not listed yet: the schema's, from before
    mine = conn.execute("SELECT indexes FROM mf_indexes "
                        "WHERE company = current_setting('mailflow.company')").fetchone()
    if (str(mine[0]) if mine else indexes) != signature():
        _rebuild_index(conn)
    conn.execute("INSERT INTO mf_indexes VALUES (current_setting('mailflow.company'), %s) "
                 "ON CONFLICT (company) DO UPDATE SET indexes = excluded.indexes", (signature(),))
    return version


def _rebuild_index(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DELETE FROM mf_idx")  # this company's (row-level security)
    rows = conn.execute("SELECT kind, key, doc FROM mf_docs").fetchall()
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO mf_idx(kind, field, value, key) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            [(kind, field, value, key) for kind, key, doc in rows if kind in INDEXES
             for field, value in sorted(index_pairs(kind, json.loads(doc)))])
