"""What the two table engines (SQLite, PostgreSQL) share: documents as JSON text in one table and
their index rows in another. A write reads the old document by key, replaces it and inserts or
deletes only the index rows that changed, so its cost grows with the document, not the pool;
log kinds keep their sequence numbers as zero-padded keys (key order is numeric order), shown to
callers as plain numbers; scans read in pages, never holding a cursor open.

An engine gives the primitives (`_get_raw`, `_upsert`, `_remove`, `_add_index`, `_drop_index`,
`_page`, `_last_seq`, `_reading`, `transaction`, `_writable`); this class builds the contract's
document and log operations on them.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

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
    index_pairs,
    log_key,
    stored_key,
)

PAGE = 256  # rows fetched per query by scan/log


class TableStore(ClosesOnExit, ABC):
    read_only: bool

    # --- the engine's primitives -----------------------------------------------------------------

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        ...

    @abstractmethod
    def _reading(self) -> AbstractContextManager[None]:
        """What a lone read runs in (a connection, a snapshot)."""
        ...

    @abstractmethod
    def _writable(self) -> None:
        ...

    @abstractmethod
    def _get_raw(self, kind: str, key: str) -> str | None:
        ...

    @abstractmethod
    def _upsert(self, kind: str, key: str, text: str) -> None:
        ...

    @abstractmethod
    def _remove(self, kind: str, key: str) -> None:
        ...

    @abstractmethod
    def _add_index(self, kind: str, key: str, pairs: set[tuple[str, str]]) -> None:
        ...

    @abstractmethod
    def _drop_index(self, kind: str, key: str, pairs: set[tuple[str, str]]) -> None:
        ...

    @abstractmethod
    def _page(self, kind: str, last: str, op: str, size: int) -> list[tuple[str, str]]:
        """Up to `size` (stored key, text) with key `op` (">=" or ">") `last`, in key order."""
        ...

    @abstractmethod
    def _last_seq(self, kind: str) -> int:
        """The last entry number of a log kind, inside the append's transaction (an engine with
        several writers locks the log here)."""
        ...

    # --- documents -------------------------------------------------------------------------------

    def put(self, kind: str, key: str, doc: Mapping[str, Any]) -> None:
        check_writable_kind(kind)
        self._writable()
        text = encode(doc)
        with self.transaction():
            self._write(kind, stored_key(kind, key), text, doc)

    def _write(self, kind: str, key: str, text: str, doc: Mapping[str, Any]) -> None:
        old = self._get_raw(kind, key)
        old_pairs = index_pairs(kind, json.loads(old)) if old is not None else set()
        new_pairs = index_pairs(kind, doc)
        self._upsert(kind, key, text)
        self._drop_index(kind, key, old_pairs - new_pairs)
        self._add_index(kind, key, new_pairs - old_pairs)

    def get(self, kind: str, key: str) -> Doc | None:
        check_kind(kind)
        with self._reading():
            text = self._get_raw(kind, stored_key(kind, key))
        return None if text is None else dict(json.loads(text))

    def delete(self, kind: str, key: str) -> bool:
        check_writable_kind(kind)
        self._writable()
        key = stored_key(kind, key)
        with self.transaction():
            old = self._get_raw(kind, key)
            if old is None:
                return False
            self._remove(kind, key)
            self._drop_index(kind, key, index_pairs(kind, json.loads(old)))
        return True

    def scan(self, kind: str, after: str | None = None, limit: int | None = None) -> Iterator[Doc]:
        check_kind(kind)
        for _key, text in self._pages(kind, after, limit):
            yield json.loads(text)

    def items(self, kind: str) -> Iterator[tuple[str, Doc]]:
        """(key, document) in key order, keys as callers name them (`store migrate`)."""
        check_kind(kind)
        for key, text in self._pages(kind, None, None):
            yield caller_key(kind, key), json.loads(text)

    def _pages(self, kind: str, after: str | None, limit: int | None) -> Iterator[tuple[str, str]]:
        last = "" if after is None else stored_key(kind, after)
        op = ">=" if after is None else ">"
        remaining = limit
        while remaining is None or remaining > 0:
            size = PAGE if remaining is None else min(PAGE, remaining)
            with self._reading():
                rows = self._page(kind, last, op, size)
            yield from rows
            if len(rows) < size:
                return
            last, op = rows[-1][0], ">"
            if remaining is not None:
                remaining -= len(rows)

    # --- shared queues (one writer here; PostgreSQL overrides) --------------------------------

    holder = "writer"

    def claim(self, kind: str, field: str, value: str, *, up_to: bool = False,
              limit: int = 100, now: str = "") -> list[Doc]:
        self._writable()
        return claim_simply(self, self.holder, kind, field, value, up_to, limit,  # type: ignore[arg-type]
                            now)

    def lock_until_commit(self, name: str) -> None:
        return None

    # --- logs ------------------------------------------------------------------------------------

    def append(self, kind: str, doc: Mapping[str, Any]) -> int:
        check_log_kind(kind)
        self._writable()
        text = encode(doc)
        with self.transaction():
            seq = self._last_seq(kind) + 1
            self._write(kind, log_key(seq), text, doc)
        return seq

    def log(self, kind: str, after: int = 0) -> Iterator[tuple[int, Doc]]:
        check_log_kind(kind)
        for key, text in self._pages(kind, str(max(after, 0)), None):
            yield int(key), json.loads(text)

    def redact(self, kind: str, seq: int, doc: Mapping[str, Any]) -> None:
        check_redactable_kind(kind)
        self._writable()
        key, text = log_key(int(seq)), encode(doc)
        with self.transaction():
            if self._get_raw(kind, key) is None:
                raise KeyError(f"{kind} has no entry {seq}")
            self._write(kind, key, text, doc)
