"""The store's contract: a few collections of JSON documents with declared indexes.

Every engine (SQLite, TinyDB, later PostgreSQL) implements `Store`; the domain modules
(talent pool, ledger, outbox, watcher checkpoints …) speak only to this interface, and
`tests/test_store_conformance.py` holds every engine to it.

Kinds of data and the fields they are indexed by are declared once in `INDEXES`: `find` and
`below` work only on declared fields, so every engine can keep them cheap (SQLite keeps an index
table; the costs of a lookup grow with the answer, not with the pool).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

Doc = dict[str, Any]
_S = TypeVar("_S", bound="ClosesOnExit")

# kind -> indexed fields. A list-valued field is indexed under each of its elements.
INDEXES: dict[str, tuple[str, ...]] = {
    "candidates": ("emails", "phones", "relay_ref", "message_ids"),
    "events": ("candidate_id", "type"),
    "ledger": ("event_id", "candidate_id"),
    "outbox": ("state", "message_id"),
    "checkpoints": (),
    "messages": ("message_key",),
    "quarantine": ("state",),
    "settings": (),
    "tokens": ("candidate_id",),
    "followups": ("due_at", "candidate_id", "state"),
    "journal": ("state",),
    "clicks": ("token", "class"),
    "callbacks": ("candidate_id",),
    "reviews": ("state", "candidate_id"),
    "examples": ("label",),
    "audit": ("action",),
    "provisions": ("candidate_id",),
}

# Append-only kinds: written with `append`, keys are increasing sequence numbers.
LOGS = frozenset({"events", "ledger", "audit"})


class Store(Protocol):
    """A durable document store. One process writes; others may open it read-only."""

    read_only: bool

    def transaction(self) -> AbstractContextManager[None]:
        """Group writes: all of them are durable on exit, or none (on an exception)."""
        ...

    def put(self, kind: str, key: str, doc: Mapping[str, Any]) -> None:
        """Insert or replace the document `key` of `kind`: a JSON object, as a dict (a `Doc`, or
        a domain record's TypedDict, which the type checker takes only as a `Mapping`)."""
        ...

    def get(self, kind: str, key: str) -> Doc | None: ...

    def delete(self, kind: str, key: str) -> bool:
        """Remove a document; True when it existed. Not allowed on append-only kinds."""
        ...

    def find(self, kind: str, field: str, value: str) -> list[Doc]:
        """Documents whose indexed `field` equals `value` (or contains it, for lists)."""
        ...

    def below(self, kind: str, field: str, bound: str, limit: int = 1000) -> list[Doc]:
        """Documents whose indexed `field` is <= `bound`, ascending by that field."""
        ...

    def scan(self, kind: str, after: str | None = None, limit: int | None = None) -> Iterator[Doc]:
        """Documents in key order, starting after key `after`; streams, never loads all."""
        ...

    def append(self, kind: str, doc: Mapping[str, Any]) -> int:
        """Append to a log kind; returns the new entry's sequence number (1, 2, …)."""
        ...

    def log(self, kind: str, after: int = 0) -> Iterator[tuple[int, Doc]]:
        """Entries of a log kind with sequence number > `after`, in order."""
        ...

    def count(self, kind: str) -> int: ...

    def close(self) -> None: ...


class ClosesOnExit:
    """`with store:` closes it (and releases its writer lock) on the way out."""

    def close(self) -> None: ...  # every engine defines its own

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def index_values(doc: Mapping[str, Any], field: str) -> list[str]:
    """The values a document is indexed under for `field` (none, one, or each list element)."""
    value = doc.get(field)
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def check_kind(kind: str, field: str | None = None) -> None:
    if kind not in INDEXES:
        raise KeyError(f"unknown kind {kind!r}; known: {', '.join(sorted(INDEXES))}")
    if field is not None and field not in INDEXES[kind]:
        raise KeyError(f"{kind}.{field} is not indexed; indexed: {', '.join(INDEXES[kind])}")
