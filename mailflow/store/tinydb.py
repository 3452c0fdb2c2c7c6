"""The small-install engine: TinyDB 4.9, one readable JSON file, one table per kind.

Size limits: TinyDB keeps the whole database in memory and its storage interface writes the whole
file, so every write costs time proportional to the size of the store (measured by
`benchmarks/store_write.py` on the development VM: about 7 ms per write at 1,000 candidates,
70 ms at 10,000 and 350 ms at 50,000), and `find`/`below` scan every document of a kind. It
is for a small install that wants to read its data in a text editor: a few thousand candidates.
Beyond that use the default SQLite engine. Group writes with `transaction()`: a transaction is
written once, on exit.

Crash safety: TinyDB's own `JSONStorage` rewrites the file in place, so a `kill -9` during a
write leaves a truncated file (TinyDB #467). `AtomicJSONStorage` writes a temp file in the same
directory, flushes and fsyncs it, renames it over the store with `os.replace` (atomic on POSIX)
and fsyncs the directory: after a crash the file holds the state before or after the write, never
a mix. JSON is written with `ensure_ascii=False`, one document per line, so Japanese names stay
readable and the file diffs well.

Transactions: writes inside `transaction()` stay in memory and the file is written once when the
outermost transaction ends; on an exception the in-memory state is reloaded from the file. Nested
transactions keep an undo list, so an inner failure that the outer code catches undoes only the
inner writes. Keys of log kinds are zero-padded sequence numbers, as in the SQLite engine.

At rest: the file is 0600 (written as a 0600 temp file and renamed over the store; an older
file with looser bits is chmodded when a writer opens it). Every write replaces the whole file,
so a deleted document leaves no copy behind in it; `scrub()` only removes temp files a writer
killed mid-write left (nothing else is ever copied). A reader holds the version it loaded open
until it reloads or closes, so the kernel frees that version's blocks only then.

Read-only mode never writes; it rereads the file when the writer has replaced it (outside a
transaction: inside one, reads see one snapshot).
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from tinydb import Query, TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from mailflow.errors import NoStore, StoreError
from mailflow.store.base import (
    ClosesOnExit,
    Doc,
    caller_key,
    check_kind,
    check_log_kind,
    check_redactable_kind,
    check_writable_kind,
    claim_simply,
    encode,
    index_values,
    log_key,
    owner_only,
    read_only_error,
    stored_key,
)

if TYPE_CHECKING:
    from mailflow.store.lock import WriterLock

Data = dict[str, dict[str, Any]]


class AtomicJSONStorage(Storage):
    """A TinyDB storage that replaces the file atomically and durably on every write."""

    def __init__(self, path: str, read_only: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.read_only = read_only
        self.buffering = False  # inside a transaction: keep writes in memory
        self._data: Data | None = None
        self._dirty = False
        self._handle: IO[bytes] | None = None  # read-only: the file version we loaded
        self._stamp: tuple[int, int, int] | None = None

    def read(self) -> Data:
        if self._data is None or (self.read_only and not self.buffering and self._replaced()):
            self._data = self._load()
        return self._data

    def write(self, data: Data) -> None:
        if self.read_only:
            raise read_only_error(self.path)
        self._data = data
        if self.buffering:
            self._dirty = True
        else:
            self._flush()

    def commit(self) -> None:
        """Write what a transaction buffered (once)."""
        if self._dirty:
            self._flush()

    def discard(self) -> None:
        """Forget unwritten changes: the next read loads the file again."""
        self._data = None
        self._dirty = False

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _replaced(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._stamp is not None
        return (st.st_ino, st.st_size, st.st_mtime_ns) != self._stamp

    def _load(self) -> Data:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 (kept open in read-only mode)
        except FileNotFoundError:
            self._stamp = None
            return {}
        try:
            st = os.fstat(handle.fileno())
            text = handle.read().decode("utf-8")
            data = json.loads(text) if text.strip() else {}
        except (ValueError, UnicodeDecodeError) as e:
            handle.close()
            raise StoreError(f"store {self.path} is damaged: {e}") from e
        except BaseException:
            handle.close()
            raise
        if not isinstance(data, dict):
            handle.close()
            raise StoreError(f"store {self.path} is damaged: not a JSON object")
        if self.read_only:
            # Holding the loaded version open keeps its inode from being reused, so a new
            # version always has a different inode number.
            self.close()
            self._handle = handle
            self._stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        else:
            handle.close()
        return cast(Data, data)

    def _flush(self) -> None:
        text = render(self._data or {})
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except BaseException:
            self.discard()  # memory may be ahead of the file: reload the file's state
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._dirty = False


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "), allow_nan=False)


def render(data: Data) -> str:
    """The file's text: one document per line, so it reads (and diffs) well in an editor.

    Built from per-document `json` calls because `json.dumps(indent=...)` falls back to the
    pure-Python encoder, several times slower on a whole-file rewrite.
    """
    tables = []
    for name, docs in data.items():
        rows = ",\n".join(
            f" {_ENCODER.encode(str(k))}: {_ENCODER.encode(v)}" for k, v in docs.items()
        )
        tables.append(
            f"{_ENCODER.encode(name)}: {{\n{rows}\n}}" if rows else f"{_ENCODER.encode(name)}: {{}}"
        )
    return "{\n" + ",\n".join(tables) + "\n}\n"


class _KindTable(Table):
    """A table whose document ids are our string keys."""

    document_id_class = str  # type: ignore[assignment]  # TinyDB annotates ids as int


class _Database(TinyDB):
    table_class = _KindTable


def _ids(key: str) -> list[int]:
    # TinyDB annotates document ids as int; `_KindTable` uses str ids.
    return cast("list[int]", [key])


def _replace_with(doc: Doc) -> Callable[[MutableMapping[str, Any]], None]:
    def replace(stored: MutableMapping[str, Any]) -> None:
        stored.clear()
        stored.update(doc)

    return replace


def _copy(doc: Any) -> Doc:
    """A private deep copy (JSON documents only): callers never share the in-memory state."""
    return cast(Doc, json.loads(json.dumps(doc, ensure_ascii=False)))


def _contains(stored: Any, value: str) -> bool:
    return value in index_values({"v": stored}, "v")


class TinyStore(ClosesOnExit):
    """`Store` on a TinyDB JSON file (small installs)."""

    def __init__(self, path: Path, read_only: bool = False, *, lock: WriterLock | None = None):
        self.path = Path(path)
        self.read_only = read_only
        self._lock = lock
        self._depth = 0
        self._undo: list[tuple[str, str, Doc | None]] = []
        if read_only and not self.path.exists():
            raise NoStore(f"no store at {self.path}")
        if not read_only:
            self._remove_stale()
            owner_only(self.path)
        self._db = _Database(str(self.path), read_only, storage=AtomicJSONStorage)
        self._storage = cast(AtomicJSONStorage, self._db.storage)
        data = self._storage.read()  # a damaged file fails here, at open
        if not read_only and not self.path.exists():
            self._storage.write(data)  # readers find the store as soon as a writer opened it

    def _remove_stale(self) -> int:
        """Temp files left by a writer killed mid-write (we are the only writer)."""
        stale = list(self.path.parent.glob(f".{self.path.name}.*.tmp"))
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    def _table(self, kind: str) -> Table:
        return self._db.table(kind, cache_size=0)

    # --- transactions --------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        depth, mark = self._depth, len(self._undo)
        if depth == 0:
            self._storage.buffering = True
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth = depth
            if depth == 0:
                self._end()
                self._storage.discard()
            else:
                self._undo_to(mark)
            raise
        self._depth = depth
        if depth == 0:
            self._end()
            try:
                self._storage.commit()
            except BaseException:
                self._storage.discard()
                raise

    def _end(self) -> None:
        self._storage.buffering = False
        self._undo.clear()

    def _undo_to(self, mark: int) -> None:
        for kind, key, old in reversed(self._undo[mark:]):
            self._set(kind, key, old)
        del self._undo[mark:]

    def _writable(self) -> None:
        if self.read_only:
            raise read_only_error(self.path)

    # --- documents ------------------------------------------------------------------------------

    def _raw_get(self, kind: str, key: str) -> Doc | None:
        found = self._table(kind).get(doc_id=cast(int, key))
        return None if found is None else dict(cast(Document, found))

    def _set(self, kind: str, key: str, doc: Doc | None) -> None:
        table = self._table(kind)
        if doc is None:
            table.remove(doc_ids=_ids(key))
        elif table.contains(doc_id=cast(int, key)):
            table.update(_replace_with(doc), doc_ids=_ids(key))
        else:
            table.insert(Document(doc, doc_id=cast(int, key)))

    def _write(self, kind: str, key: str, doc: Doc | None) -> None:
        with self.transaction():
            self._undo.append((kind, key, self._raw_get(kind, key)))
            self._set(kind, key, doc)

    def put(self, kind: str, key: str, doc: Mapping[str, Any]) -> None:
        check_writable_kind(kind)
        self._writable()
        self._write(kind, stored_key(kind, key), json.loads(encode(doc)))

    def get(self, kind: str, key: str) -> Doc | None:
        check_kind(kind)
        found = self._raw_get(kind, stored_key(kind, key))
        return None if found is None else _copy(found)

    def delete(self, kind: str, key: str) -> bool:
        check_writable_kind(kind)
        self._writable()
        key = stored_key(kind, key)
        if self._raw_get(kind, key) is None:
            return False
        self._write(kind, key, None)
        return True

    # --- shared queues (one writer: every match is this store's) -------------------------------

    holder = "writer"

    def claim(self, kind: str, field: str, value: str, *, up_to: bool = False,
              limit: int = 100, now: str = "") -> list[Doc]:
        self._writable()
        return claim_simply(self, self.holder, kind, field, value, up_to, limit, now)

    def lock_until_commit(self, name: str) -> None:
        return None

    # --- lookups --------------------------------------------------------------------------------

    def find(self, kind: str, field: str, value: str) -> list[Doc]:
        check_kind(kind, field)
        found = self._table(kind).search(Query()[field].test(_contains, str(value)))
        return [_copy(d) for d in sorted(found, key=lambda d: str(d.doc_id))]

    def below(self, kind: str, field: str, bound: str, limit: int = 1000) -> list[Doc]:
        check_kind(kind, field)
        hits: list[tuple[str, str, Document]] = []
        for doc in self._table(kind):
            values = [v for v in index_values(doc, field) if v <= str(bound)]
            if values:
                hits.append((min(values), str(doc.doc_id), doc))
        hits.sort(key=lambda hit: hit[:2])
        return [_copy(doc) for _, _, doc in hits[: max(limit, 0)]]

    def _sorted(self, kind: str, after: str | None) -> list[tuple[str, Document]]:
        entries = sorted(((str(d.doc_id), d) for d in self._table(kind)), key=lambda e: e[0])
        if after is None:
            return entries
        start = bisect.bisect_right([key for key, _ in entries], stored_key(kind, after))
        return entries[start:]

    def scan(self, kind: str, after: str | None = None, limit: int | None = None) -> Iterator[Doc]:
        check_kind(kind)
        entries = self._sorted(kind, after)
        for _key, doc in entries if limit is None else entries[: max(limit, 0)]:
            yield _copy(doc)

    def items(self, kind: str) -> Iterator[tuple[str, Doc]]:
        """(key, document) in key order, keys as callers name them (`store migrate`)."""
        check_kind(kind)
        for key, doc in self._sorted(kind, None):
            yield caller_key(kind, key), _copy(doc)

    def count(self, kind: str) -> int:
        check_kind(kind)
        return len(self._table(kind))

    def find_keys(self, kind: str, field: str, value: str) -> list[str]:
        check_kind(kind, field)
        found = self._table(kind).search(Query()[field].test(_contains, str(value)))
        return [caller_key(kind, key) for key in sorted(str(d.doc_id) for d in found)]

    # --- logs -----------------------------------------------------------------------------------

    def append(self, kind: str, doc: Mapping[str, Any]) -> int:
        check_log_kind(kind)
        self._writable()
        copy = json.loads(encode(doc))
        with self.transaction():
            last = max((str(d.doc_id) for d in self._table(kind)), default=None)
            seq = 1 if last is None else int(last) + 1
            self._write(kind, log_key(seq), copy)
        return seq

    def log(self, kind: str, after: int = 0) -> Iterator[tuple[int, Doc]]:
        check_log_kind(kind)
        for key, doc in self._sorted(kind, str(max(after, 0))):
            yield int(key), _copy(doc)

    def redact(self, kind: str, seq: int, doc: Mapping[str, Any]) -> None:
        check_redactable_kind(kind)
        self._writable()
        key = log_key(int(seq))
        if self._raw_get(kind, key) is None:
            raise KeyError(f"{kind} has no entry {seq}")
        self._write(kind, key, json.loads(encode(doc)))

    # --- at rest --------------------------------------------------------------------------------

    def scrub(self) -> bool:
        self._writable()
        if self._depth:
            raise StoreError("scrub() runs outside a transaction")
        self._remove_stale()
        owner_only(self.path)
        return True

    # --- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

