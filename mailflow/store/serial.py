"""A store shared by the daemon's threads (watchers, web edge, control channel): every call, and
every transaction as a whole, runs under one re-entrant lock, so one thread's transaction never
sees or interleaves another's writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from mailflow.store.base import Doc, Store


class SerialStore:
    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.read_only = inner.read_only
        self.lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock, self.inner.transaction():
            yield

    def put(self, kind: str, key: str, doc: Mapping[str, Any]) -> None:
        with self.lock:
            self.inner.put(kind, key, doc)

    def get(self, kind: str, key: str) -> Doc | None:
        with self.lock:
            return self.inner.get(kind, key)

    def delete(self, kind: str, key: str) -> bool:
        with self.lock:
            return self.inner.delete(kind, key)

    def find(self, kind: str, field: str, value: str) -> list[Doc]:
        with self.lock:
            return self.inner.find(kind, field, value)

    def below(self, kind: str, field: str, bound: str, limit: int = 1000) -> list[Doc]:
        with self.lock:
            return self.inner.below(kind, field, bound, limit)

    def scan(self, kind: str, after: str | None = None, limit: int | None = None) -> Iterator[Doc]:
        # streams under the lock: finish (or close) the iteration before handing it elsewhere
        with self.lock:
            yield from self.inner.scan(kind, after, limit)

    def append(self, kind: str, doc: Mapping[str, Any]) -> int:
        with self.lock:
            return self.inner.append(kind, doc)

    def log(self, kind: str, after: int = 0) -> Iterator[tuple[int, Doc]]:
        with self.lock:
            entries = list(self.inner.log(kind, after))
        yield from entries

    def count(self, kind: str) -> int:
        with self.lock:
            return self.inner.count(kind)

    def find_keys(self, kind: str, field: str, value: str) -> list[str]:
        with self.lock:
            return self.inner.find_keys(kind, field, value)

    def redact(self, kind: str, seq: int, doc: Mapping[str, Any]) -> None:
        with self.lock:
            self.inner.redact(kind, seq, doc)

    def scrub(self) -> bool:
        with self.lock:
            return self.inner.scrub()

    def close(self) -> None:
        with self.lock:
            self.inner.close()
