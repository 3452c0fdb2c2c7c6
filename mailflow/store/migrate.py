"""`mailflow store migrate --to postgresql`: copy a SQLite or TinyDB store into PostgreSQL.

Every kind is copied in key order, documents with `put` and log entries with `append` in
sequence order, in groups of `BATCH` per transaction. It is idempotent and resumable: a document
already there is written again (the same bytes), and a log resumes after the last entry the
target holds (entry numbers stay the same, so the ledger's hash chain and the events' cursors
hold). Interrupted at any point, running it again finishes the copy. Verified at the end: each
kind's count in both stores, and every log entry the same (the caller also verifies the ledger
on the target).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Protocol

from mailflow.errors import StoreError
from mailflow.store.base import INDEXES, LOGS, Doc, Store

BATCH = 500


class Source(Store, Protocol):
    """A store that also lists its documents with their keys (every engine does)."""

    def items(self, kind: str) -> Iterator[tuple[str, Doc]]: ...


@dataclass
class Copied:
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind: (source, target)
    written: int = 0

    @property
    def same(self) -> bool:
        return all(source == target for source, target in self.counts.values())


def copy_store(source: Source, target: Store,
               progress: Callable[[str, int], None] = lambda _kind, _n: None) -> Copied:
    copied = Copied()
    for kind in sorted(INDEXES):
        copied.written += _copy_log(source, target, kind, progress) if kind in LOGS else \
            _copy_docs(source, target, kind, progress)
        copied.counts[kind] = (source.count(kind), target.count(kind))
    for kind in sorted(LOGS):
        if list(source.log(kind)) != list(target.log(kind)):
            raise StoreError(f"store migrate: the {kind} log differs after the copy")
    return copied


def _copy_docs(source: Source, target: Store, kind: str,
               progress: Callable[[str, int], None]) -> int:
    done = 0
    pairs = source.items(kind)
    while batch := list(islice(pairs, BATCH)):
        with target.transaction():
            for key, doc in batch:
                target.put(kind, key, doc)
        done += len(batch)
        progress(kind, done)
    return done


def _copy_log(source: Source, target: Store, kind: str,
              progress: Callable[[str, int], None]) -> int:
    last = max((seq for seq, _ in target.log(kind)), default=0)
    done = 0
    entries = source.log(kind, after=last)
    while batch := list(islice(entries, BATCH)):
        with target.transaction():
            for seq, doc in batch:
                if target.append(kind, doc) != seq:
                    raise StoreError(f"store migrate: {kind} entry {seq} would be renumbered "
                                     "(the target's log has gaps or other entries)")
        done += len(batch)
        progress(kind, last + done)
    return done
