"""The default engine: one SQLite file in WAL mode, documents as JSON text.

Layout: a table of documents and a table of their index rows (`mailflow.store.sqlite_schema`,
which also migrates an older file when a writer opens it). A write reads the old document by key,
replaces it and inserts/deletes only the index rows that changed: its cost grows with the
document, not with the number of documents. Log kinds (`LOGS`) keep their sequence numbers as
zero-padded keys (`00000000000000000042`), so key order is numeric order; callers see them as
plain numbers (`get("events", "42")`).

Durability: WAL mode with `synchronous=FULL`. A committed transaction is in the WAL, and the WAL
is fsynced at every commit. `kill -9` alone would not need the fsync (with `synchronous=NORMAL`
the WAL is still written to the kernel at commit, and a process crash cannot lose what the kernel
holds); FULL is chosen so that a power loss or kernel crash cannot roll back a write either: the
daemon acts on the world (moves a mail on IMAP, sends a referral) right after journaling it, and
a store that forgets a journaled step would repeat or lose that action. The price is one fsync per
transaction (`benchmarks/store_write.py` on the development VM: 0.3 ms per write with FULL,
0.07 ms with NORMAL, flat from 1k to 50k candidates); group writes with `transaction()` to share
it.

Transactions: `transaction()` opens `BEGIN IMMEDIATE` (the write lock is taken up front, so a
transaction never fails half way on a busy database); a nested `transaction()` is a SAVEPOINT
inside it, so an inner failure that the outer code catches undoes only the inner writes. Outside
a transaction every write is its own durable transaction. In read-only mode `transaction()` is a
read transaction: every read inside it sees one snapshot.

Read-only mode opens `file:...?mode=ro`: CLI commands read while the daemon writes, and WAL lets
each reader see the last committed state without blocking the writer. `SqliteStore.empty()` is a
read-only store with nothing in it, in memory: what read commands see on a new installation,
before the first writer made the file.

At rest: the file, its `-wal` and `-shm` are owner-only (0600) whatever the umask: a new file is
made 0600 before SQLite opens it (SQLite gives the WAL and SHM the database file's mode), and a
writer chmods all three when it opens them. Every connection runs with `secure_delete=ON`, so a
deleted or replaced document's bytes are overwritten with zeros in the database file, not left
in free pages; `scrub()` then checkpoints and truncates the WAL (older page versions live
there), VACUUMs (in memory: no temporary file elsewhere) and truncates the WAL again. A reader
holding an old snapshot can keep the WAL from truncating: `scrub()` says so (False).

A store object is not thread-safe by itself: threads must take turns, a transaction as a whole
(the daemon wraps the store in `mailflow.store.serial.SerialStore`). sqlite3's same-thread check
is off for that reason.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mailflow.errors import NoStore, StoreError
from mailflow.store.base import Doc, caller_key, check_kind, owner_only, read_only_error
from mailflow.store.sqlite_schema import SCHEMA, add_index, drop_index, migrate
from mailflow.store.tables import TableStore

if TYPE_CHECKING:
    from mailflow.store.lock import WriterLock

# --- the engine ----------------------------------------------------------------------------------


class SqliteStore(TableStore):
    """`Store` on one SQLite file (WAL, synchronous=FULL by default)."""

    def __init__(
        self,
        path: Path,
        read_only: bool = False,
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        lock: WriterLock | None = None,
        _memory: bool = False,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._lock = lock
        self._depth = 0
        try:
            self._conn = self._connect_empty() if _memory else self._connect(synchronous)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open store {self.path}: {e}") from e

    @classmethod
    def empty(cls) -> SqliteStore:
        """A read-only store with nothing in it (in memory, the schema made): a new
        installation's view for read commands, before any writer has made the store."""
        return cls(Path(":memory:"), read_only=True, _memory=True)

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        return self._connect_read_only() if self.read_only else self._connect_writer(synchronous)

    def files(self) -> tuple[Path, Path, Path]:
        """The database file, its write-ahead log and its shared-memory index."""
        return self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")

    def _connect_empty(self) -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.executescript(SCHEMA)
        migrate(conn, self.path)
        conn.execute("PRAGMA query_only=ON")
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise NoStore(f"no store at {self.path}")
        uri = self.path.resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(
            uri,
            uri=True,
            isolation_level=None,
            timeout=10,
            check_same_thread=False,
        )
        try:
            conn.execute("PRAGMA query_only=ON")
            conn.execute("PRAGMA secure_delete=ON")
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        except BaseException:
            conn.close()
            raise
        if "docs" not in names:
            conn.close()
            if not names:  # the writer has just created the file; its schema comes in one step
                raise NoStore(f"no store at {self.path} yet")
            raise StoreError(f"{self.path} is not a mailflow store")
        return conn

    def _connect_writer(self, synchronous: str) -> sqlite3.Connection:
        if not self.path.exists():  # 0600 from the start: SQLite gives its WAL and SHM this mode
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        conn = sqlite3.connect(
            str(self.path),
            isolation_level=None,
            timeout=10,
            check_same_thread=False,
        )
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"cannot switch {self.path} to WAL mode (got {mode})")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA secure_delete=ON")
            conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")  # readers see all or none
            migrate(conn, self.path)
            owner_only(*self.files())
        except BaseException:
            conn.close()
            raise
        return conn

    # --- transactions --------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        depth = self._depth
        savepoint = f"sp{depth}"
        if depth == 0:
            self._conn.execute("BEGIN" if self.read_only else "BEGIN IMMEDIATE")
        else:
            self._conn.execute(f"SAVEPOINT {savepoint}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth = depth
            if depth == 0:
                self._conn.execute("ROLLBACK")
            else:
                self._conn.execute(f"ROLLBACK TO {savepoint}")
                self._conn.execute(f"RELEASE {savepoint}")
            raise
        self._depth = depth
        if depth > 0:
            self._conn.execute(f"RELEASE {savepoint}")
            return
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _writable(self) -> None:
        if self.read_only:
            raise read_only_error(self.path)

    def _reading(self) -> AbstractContextManager[None]:
        return nullcontext()  # one statement reads one snapshot

    # --- the table primitives (mailflow.store.tables) --------------------------------------------

    def _get_raw(self, kind: str, key: str) -> str | None:
        row = self._conn.execute(
            "SELECT doc FROM docs WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        return None if row is None else str(row[0])

    def _upsert(self, kind: str, key: str, text: str) -> None:
        self._conn.execute(
            "INSERT INTO docs(kind, key, doc) VALUES (?, ?, ?) "
            "ON CONFLICT(kind, key) DO UPDATE SET doc = excluded.doc",
            (kind, key, text),
        )

    def _remove(self, kind: str, key: str) -> None:
        self._conn.execute("DELETE FROM docs WHERE kind = ? AND key = ?", (kind, key))

    def _add_index(self, kind: str, key: str, pairs: set[tuple[str, str]]) -> None:
        add_index(self._conn, kind, key, pairs)

    def _drop_index(self, kind: str, key: str, pairs: set[tuple[str, str]]) -> None:
        drop_index(self._conn, kind, key, pairs)

    def _page(self, kind: str, last: str, op: str, size: int) -> list[tuple[str, str]]:
        return self._conn.execute(
            f"SELECT key, doc FROM docs WHERE kind = ? AND key {op} ? ORDER BY key LIMIT ?",
            (kind, last, size),
        ).fetchall()

    def _last_seq(self, kind: str) -> int:
        row = self._conn.execute("SELECT MAX(key) FROM docs WHERE kind = ?", (kind,)).fetchone()
        return 0 if row[0] is None else int(row[0])

    # --- lookups --------------------------------------------------------------------------------

    def find(self, kind: str, field: str, value: str) -> list[Doc]:
        check_kind(kind, field)
        rows = self._conn.execute(
            "SELECT d.doc FROM idx i JOIN docs d ON d.kind = i.kind AND d.key = i.key "
            "WHERE i.kind = ? AND i.field = ? AND i.value = ? ORDER BY i.key",
            (kind, field, str(value)),
        ).fetchall()
        return [json.loads(text) for (text,) in rows]

    def below(self, kind: str, field: str, bound: str, limit: int = 1000) -> list[Doc]:
        check_kind(kind, field)
        found: dict[str, Doc] = {}
        if limit <= 0:
            return []
        cursor = self._conn.execute(
            "SELECT i.key, d.doc FROM idx i JOIN docs d ON d.kind = i.kind AND d.key = i.key "
            "WHERE i.kind = ? AND i.field = ? AND i.value <= ? ORDER BY i.value, i.key",
            (kind, field, str(bound)),
        )
        try:
            for key, text in cursor:
                # A list-valued field may list a document under several values: it counts once,
                # at its smallest value.
                if key not in found:
                    found[key] = json.loads(text)
                    if len(found) >= limit:
                        break
        finally:
            cursor.close()
        return list(found.values())

    def count(self, kind: str) -> int:
        check_kind(kind)
        row = self._conn.execute("SELECT COUNT(*) FROM docs WHERE kind = ?", (kind,)).fetchone()
        return int(row[0])

    def find_keys(self, kind: str, field: str, value: str) -> list[str]:
        check_kind(kind, field)
        rows = self._conn.execute(
            "SELECT key FROM idx WHERE kind = ? AND field = ? AND value = ? ORDER BY key",
            (kind, field, str(value)),
        ).fetchall()
        return [caller_key(kind, key) for (key,) in rows]

    # --- at rest --------------------------------------------------------------------------------

    def scrub(self) -> bool:
        self._writable()
        if self._depth or self._conn.in_transaction:
            raise StoreError("scrub() runs outside a transaction")
        self._conn.execute("PRAGMA temp_store=MEMORY")  # VACUUM's copy: no file elsewhere
        first = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        self._conn.execute("VACUUM")
        last = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        owner_only(*self.files())
        return not (first[0] or last[0])  # busy: a reader kept part of the WAL

    # --- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

