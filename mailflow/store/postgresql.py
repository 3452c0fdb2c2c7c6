"""The PostgreSQL engine: the same documents and index rows as SQLite, in a server.

`[store] engine = "postgresql"` with the connection string in the environment variable named by
`[store] dsn_env` (checked at start like every secret). Connections come from a `psycopg_pool`
pool: a connection the server dropped is replaced, not reused. A transaction holds one
connection from its start to its end; a nested `transaction()` is a SAVEPOINT in it (psycopg's
own nesting), so an inner failure the outer code catches undoes only the inner writes. Outside a
transaction every call is its own transaction. Text columns use the "C" collation: key order and
`below` are byte order, as in SQLite.

Layout and migrations (`mailflow.store.postgresql_schema`): `mf_docs(kind, key, doc)` and
`mf_idx(kind, field, value, key)`, created and migrated by numbered steps in one transaction
under an advisory lock, with the version and the index declaration (`INDEXES`) in `mf_schema`;
when the declaration changes, the index rows are rebuilt.

Tenants: one schema serves several companies. Every row carries its `company`; row-level security
(ENABLE + FORCE, policy `company = current_setting('mailflow.company')`, USING and WITH CHECK)
lets a connection see and write only the rows of the company it is set to, which every pooled
connection and the writer's lease connection are, when made. A superuser or BYPASSRLS role would
see every company's rows: refused (`StoreError`).

One writer per (company, holder): a writer holds its lease, a session advisory lock on
`lease_key(company, holder)` of its schema, on a connection of its own for as long as it is open;
a second writer for the same company and holder is refused (`StoreError`). A daemon's holder is
its mailbox (`mailflow.store.holder_of`), and so is a CLI writer's for the same config: daemons for
other mailboxes run at once, and a command that changes data while its mailbox's daemon runs is
refused as before. Shared queues are claimed (`claim`) with `SELECT … FOR UPDATE SKIP LOCKED`,
the claim (`claimed_by`, `claimed_at`) written in the same transaction; a claim whose holder's
lease is free (its daemon died: the server dropped its session) is taken over.
`lock_until_commit(name)` is a transaction-scoped advisory lock (the ledger's chain). Log kinds
take a transaction-scoped advisory lock per kind before numbering an entry, so appends from several
connections still make one gapless sequence. Read-only stores set their connections read-only.

`scrub()` runs `VACUUM FULL` on both tables (they are rewritten; the old files are removed) and a
`CHECKPOINT`; what the server keeps in its write-ahead log until it recycles the segment is the
server's (docs/operations.md says how to configure it).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import ConnectionPool

from mailflow.errors import NoStore, StoreError
from mailflow.store.base import (
    Doc,
    caller_key,
    check_claimable_kind,
    check_kind,
    encode,
    index_values,
)
from mailflow.store.postgresql_schema import (
    DEFAULT_HOLDER,
    LOCKS_CLASS,
    LOGS_CLASS,
    has_schema,
    lease_key,
    migrate,
    refuse_bypass,
    set_company,
)
from mailflow.store.tables import TableStore

if TYPE_CHECKING:
    from mailflow.store.lock import WriterLock

POOL_SIZE = 4
DEFAULT_COMPANY = "default"  # `[company] id`'s default
LOCK_WAIT_SECONDS = 3.0


class PostgresStore(TableStore):
    """`Store` on a PostgreSQL database: one company's rows of a schema that may hold several."""

    def __init__(self, dsn: str, read_only: bool = False, company: str = DEFAULT_COMPANY,
                 holder: str = DEFAULT_HOLDER) -> None:
        if not company or any(ord(c) < 0x20 for c in company):
            raise StoreError("the store's company: a name on one line ([company] id)")
        self.read_only = read_only
        self.company = company
        self.holder = holder
        self.where = _shown(dsn)
        self._conn: psycopg.Connection[Any] | None = None  # the transaction's connection
        self._lease: psycopg.Connection[Any] | None = None
        self.lock: WriterLock | None = None  # the data directory's, set by `open_store`
        try:
            if not read_only:
                self._lease = psycopg.connect(dsn, autocommit=True)
                refuse_bypass(self._lease, self.where)
                set_company(self._lease, company)
                if not self._take_writer_lock():
                    raise StoreError(f"store {self.where} is in use by another writer for "
                                     f"{holder}")
                with self._lease.transaction():
                    migrate(self._lease)
            self._pool = ConnectionPool(dsn, min_size=1, max_size=POOL_SIZE,
                                        kwargs={"autocommit": True}, configure=self._configure,
                                        check=ConnectionPool.check_connection, open=True,
                                        timeout=30)
        except psycopg.Error as e:
            self._release()
            raise StoreError(f"cannot open store {self.where}: {e}") from e
        except BaseException:
            self._release()
            raise
        if read_only:
            with self._pool.connection() as conn:
                try:
                    refuse_bypass(conn, self.where)
                except StoreError:
                    self._pool.close()
                    raise
                if not has_schema(conn):
                    self._pool.close()
                    raise NoStore(f"no store at {self.where} yet")

    def _take_writer_lock(self) -> bool:
        """The holder's lease (per schema: one database may hold several). A writer killed a
        moment ago may still hold it until the server notices its connection is gone: tried
        for a few seconds before the store counts as another writer's."""
        assert self._lease is not None
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            taken = self._lease.execute(
                "SELECT pg_try_advisory_lock(hashtext(%s || current_schema()))",
                (lease_key(self.company, self.holder),)).fetchone()
            if taken and taken[0]:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.read_only = self.read_only
        set_company(conn, self.company)  # row-level security: this company's rows only

    # --- transactions ----------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._conn is not None:
            with self._conn.transaction():  # a SAVEPOINT
                yield
            return
        with self._pool.connection() as conn:
            self._conn = conn
            try:
                with conn.transaction():
                    yield
            finally:
                self._conn = None

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> psycopg.Cursor[Any]:
        if self._conn is None:
            raise StoreError("internal: a statement outside a transaction")
        return self._conn.execute(sql, params)

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"store {self.where} is open read-only; send changes through the "
                             "running daemon")

    def _reading(self) -> AbstractContextManager[None]:
        return self.transaction()  # a connection for the read

    # --- the table primitives (mailflow.store.tables) --------------------------------------------

    def _get_raw(self, kind: str, key: str) -> str | None:
        row = self._run("SELECT doc FROM mf_docs WHERE kind = %s AND key = %s",
                        (kind, key)).fetchone()
        return None if row is None else str(row[0])

    def _upsert(self, kind: str, key: str, text: str) -> None:
        self._run("INSERT INTO mf_docs(kind, key, doc) VALUES (%s, %s, %s) "  # company: default
                  "ON CONFLICT (company, kind, key) DO UPDATE SET doc = excluded.doc",
                  (kind, key, text))

    def _remove(self, kind: str, key: str) -> None:
        self._run("DELETE FROM mf_docs WHERE kind = %s AND key = %s", (kind, key))

    def _add_index(self, kind: str, key: str, pairs: set[tuple[str, str]]) -> None:
        if pairs and self._conn is not None:
            with self._conn.cursor() as cur:
                cur.executemany("INSERT INTO mf_idx(kind, field, value, key) VALUES "
                                "(%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                                [(kind, f, v, key) for f, v in sorted(pairs)])

    def _drop_index(self, kind: str, key: str, pairs: set[tuple[str, str]]) -> None:
        if pairs and self._conn is not None:
            with self._conn.cursor() as cur:
                cur.executemany("DELETE FROM mf_idx WHERE kind = %s AND field = %s AND "
                                "value = %s AND key = %s",
                                [(kind, f, v, key) for f, v in sorted(pairs)])

    def _page(self, kind: str, last: str, op: str, size: int) -> list[tuple[str, str]]:
        return self._run(f"SELECT key, doc FROM mf_docs WHERE kind = %s AND key {op} %s "
                         "ORDER BY key LIMIT %s", (kind, last, size)).fetchall()

    def _last_seq(self, kind: str) -> int:
        # several connections may append: one at a time per log, until this transaction ends
        self._run("SELECT pg_advisory_xact_lock(%s, hashtext(current_schema() || %s))",
                  (LOGS_CLASS, f"{self.company}:{kind}"))
        row = self._run("SELECT MAX(key) FROM mf_docs WHERE kind = %s", (kind,)).fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    # --- lookups ---------------------------------------------------------------------------------

    def find(self, kind: str, field: str, value: str) -> list[Doc]:
        check_kind(kind, field)
        with self.transaction():
            rows = self._run(
                "SELECT d.doc FROM mf_idx i JOIN mf_docs d ON d.company = i.company "
                "AND d.kind = i.kind AND d.key = i.key "
                "WHERE i.kind = %s AND i.field = %s AND i.value = %s ORDER BY i.key",
                (kind, field, str(value))).fetchall()
        return [json.loads(text) for (text,) in rows]

    def below(self, kind: str, field: str, bound: str, limit: int = 1000) -> list[Doc]:
        check_kind(kind, field)
        if limit <= 0:
            return []
        found: dict[str, Doc] = {}
        with self.transaction():
            # a document listed under several values counts once, at its smallest
            rows = self._run(
                "SELECT key, doc FROM (SELECT DISTINCT ON (i.key) i.key, i.value, d.doc "
                "FROM mf_idx i JOIN mf_docs d ON d.company = i.company AND d.kind = i.kind "
                "AND d.key = i.key WHERE i.kind = %s AND i.field = %s AND i.value <= %s "
                "ORDER BY i.key, i.value) first ORDER BY value, key LIMIT %s",
                (kind, field, str(bound), limit)).fetchall()
        for key, text in rows:
            found[key] = json.loads(text)
        return list(found.values())

    def count(self, kind: str) -> int:
        check_kind(kind)
        with self.transaction():
            row = self._run("SELECT COUNT(*) FROM mf_docs WHERE kind = %s", (kind,)).fetchone()
        return int(row[0]) if row else 0

    def find_keys(self, kind: str, field: str, value: str) -> list[str]:
        check_kind(kind, field)
        with self.transaction():
            rows = self._run("SELECT key FROM mf_idx WHERE kind = %s AND field = %s AND "
                             "value = %s ORDER BY key", (kind, field, str(value))).fetchall()
        return [caller_key(kind, key) for (key,) in rows]

    # --- shared queues --------------------------------------------------------------------------

    def claim(self, kind: str, field: str, value: str, *, up_to: bool = False,
              limit: int = 100, now: str = "") -> list[Doc]:
        check_claimable_kind(kind, field)
        self._writable()
        if limit <= 0:
            return []
        op = "<=" if up_to else "="
        claimed: list[tuple[str, Doc]] = []
        with self.transaction():
            # rows another daemon is claiming right now are skipped, not waited for; a row is
            # re-checked once locked (it may have changed since the index was read). The caller
            # takes what it claimed off the queue (a new state) in the claim's transaction.
            rows = self._run(
                "SELECT d.key, d.doc FROM mf_idx i JOIN mf_docs d ON d.kind = i.kind AND "
                f"d.key = i.key WHERE i.kind = %s AND i.field = %s AND i.value {op} %s "
                "ORDER BY i.value, i.key LIMIT %s FOR UPDATE OF d SKIP LOCKED",
                (kind, field, str(value), limit)).fetchall()
            seen: set[str] = set()
            for key, text in rows:
                if key in seen:
                    continue
                seen.add(key)
                doc = json.loads(text)
                values = index_values(doc, field)
                if not (any(v <= str(value) for v in values) if up_to else str(value) in values):
                    continue
                if not self._claimable(doc.get("claimed_by")):
                    continue
                claimed.append((str(key), doc))
            if up_to:
                claimed.sort(key=lambda kd: (min(v for v in index_values(kd[1], field)
                                                 if v <= str(value)), kd[0]))
            claimed = claimed[:limit]
            for key, doc in claimed:
                if doc.get("claimed_by") != self.holder:  # already ours: not written again
                    doc.update(claimed_by=self.holder, claimed_at=now)
                    self._write(kind, key, encode(doc), doc)
        return [doc for _key, doc in claimed]

    def _claimable(self, holder: object) -> bool:
        """Unclaimed, ours, or its holder's lease is free (the holder died): free until this
        transaction ends, so that holder, restarting, waits for the claim to be written."""
        if holder is None or holder == self.holder:
            return True
        row = self._run("SELECT pg_try_advisory_xact_lock(hashtext(%s || current_schema()))",
                        (lease_key(self.company, str(holder)),)).fetchone()
        return bool(row and row[0])

    def lock_until_commit(self, name: str) -> None:
        self._writable()
        self._run("SELECT pg_advisory_xact_lock(%s, hashtext(current_schema() || %s))",
                  (LOCKS_CLASS, f"{self.company}:{name}"))

    # --- at rest ---------------------------------------------------------------------------------

    def scrub(self) -> bool:
        self._writable()
        if self._conn is not None:
            raise StoreError("scrub() runs outside a transaction")
        with self._pool.connection() as conn:  # autocommit: VACUUM runs outside a transaction
            conn.execute("VACUUM FULL mf_docs")
            conn.execute("VACUUM FULL mf_idx")
            try:
                conn.execute("CHECKPOINT")
            except psycopg.errors.InsufficientPrivilege:
                return False  # the server writes its checkpoint later
        return True

    # --- lifetime --------------------------------------------------------------------------------

    def close(self) -> None:
        try:
            pool = getattr(self, "_pool", None)
            if pool is not None:
                pool.close()
        finally:
            self._release()

    def _release(self) -> None:
        try:
            if self._lease is not None:
                with contextlib.suppress(psycopg.Error):  # released now, not when the server
                    self._lease.execute(  # has cleaned the closed session up
                        "SELECT pg_advisory_unlock(hashtext(%s || current_schema()))",
                        (lease_key(self.company, self.holder),))
                self._lease.close()
        finally:
            self._lease = None
            if self.lock is not None:
                self.lock.release()
                self.lock = None


def _shown(dsn: str) -> str:
    """The connection string without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "postgresql (connection string not readable)"
    host, port, name = info.get("host", "localhost"), info.get("port", "5432"), info.get("dbname")
    return f"postgresql://{host}:{port}/{name or ''}"
