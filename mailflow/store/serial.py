"""A store shared by the daemon's threads (watchers, web edge, control channel): every call, and
every transaction as a whole, runs under one re-entrant lock, so one thread's transaction never
sees or interleaves another's writes. A write that finds the disk full raises `StoreFull` and
tells the `DiskWatch` (full.py); the next write that goes through tells it space is back."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from mailflow import faults
from mailflow.errors import StoreFull
from mailflow.store.base import Doc, Store
from mailflow.store.full import DiskWatch, disk_full

LOG_PAGE = 1000  # log entries read per hold of the lock


class SerialStore:
    def __init__(self, inner: Store, disk: DiskWatch | None = None) -> None:
        self.inner = inner
        self.read_only = inner.read_only
        self.lock = threading.RLock()
        self.disk = disk or DiskWatch("the data directory")
        self._depth = 0
        self._wrote = False  # the outer transaction has written something

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock, self._writing():
            self._depth += 1
            try:
                with self.inner.transaction():
                    yield
                    if self._depth == 1 and self._wrote:
                        faults.disk_space()  # a test's full disk, at the commit
            finally:
                self._depth -= 1

    @contextmanager
    def _writing(self, writes: bool = False) -> Iterator[None]:
        """Writes (a call, or an outer transaction's commit) told to the disk watch: a full
        disk becomes `StoreFull`; a transaction that only read proves nothing."""
        outer = self._depth == 0
        if outer:
            self._wrote = writes
        elif writes:
            self._wrote = True
        try:
            yield
        except StoreFull:
            raise
        except Exception as exc:
            if disk_full(exc):
                raise self.disk.failed(exc) from exc
            raise
        if outer and self._wrote:
            self.disk.wrote()

    def put(self, kind: str, key: str, doc: Mapping[str, Any]) -> None:
        with self.lock, self._writing(writes=True):
            faults.disk_space()
            self.inner.put(kind, key, doc)

    def get(self, kind: str, key: str) -> Doc | None:
        with self.lock:
            return self.inner.get(kind, key)

    def delete(self, kind: str, key: str) -> bool:
        with self.lock, self._writing(writes=True):
            return self.inner.delete(kind, key)

    def find(self, kind: str, field: str, value: str) -> list[Doc]:
        with self.lock:
            return self.inner.find(kind, field, value)

    def below(self, kind: str, field: str, bound: str, limit: int = 1000) -> list[Doc]:
        with self.lock:
            return self.inner.below(kind, field, bound, limit)

    def claim(self, kind: str, field: str, value: str, *, up_to: bool = False,
              limit: int = 100, now: str = "") -> list[Doc]:
        # a write only when it claimed something: a claim of nothing proves no space is back
        with self.lock, self._writing(), self.inner.transaction():
            claimed = self.inner.claim(kind, field, value, up_to=up_to, limit=limit, now=now)
            if claimed:
                self._wrote = True
                faults.disk_space()  # a test's full disk: the claim is undone with the rest
            return claimed

    def lock_until_commit(self, name: str) -> None:
        with self.lock:
            self.inner.lock_until_commit(name)

    def scan(self, kind: str, after: str | None = None, limit: int | None = None) -> Iterator[Doc]:
        # streams under the lock: finish (or close) the iteration before handing it elsewhere
        with self.lock:
            yield from self.inner.scan(kind, after, limit)

    def append(self, kind: str, doc: Mapping[str, Any]) -> int:
        with self.lock, self._writing(writes=True):
            faults.disk_space()
            return self.inner.append(kind, doc)

    def log(self, kind: str, after: int = 0) -> Iterator[tuple[int, Doc]]:
        """A page of entries at a time, each read under the lock and handed out after it:
        memory bounded by one page, however long the log (the planner's first tick reads all
        of it), and the lock free while the caller works."""
        while True:
            with self.lock:
                page = list(itertools.islice(self.inner.log(kind, after), LOG_PAGE))
            yield from page
            if len(page) < LOG_PAGE:
                return
            after = page[-1][0]

    def count(self, kind: str) -> int:
        with self.lock:
            return self.inner.count(kind)

    def find_keys(self, kind: str, field: str, value: str) -> list[str]:
        with self.lock:
            return self.inner.find_keys(kind, field, value)

    def redact(self, kind: str, seq: int, doc: Mapping[str, Any]) -> None:
        with self.lock, self._writing(writes=True):
            self.inner.redact(kind, seq, doc)

    def scrub(self) -> bool:
        with self.lock:
            return self.inner.scrub()

    def close(self) -> None:
        with self.lock:
            self.inner.close()
