"""The store's contract: a few collections of JSON documents with declared indexes.

Every engine (SQLite, TinyDB, later PostgreSQL) implements `Store`; the domain modules
(talent pool, ledger, outbox, watcher checkpoints …) speak only to this interface, and
`tests/test_store_conformance.py` holds every engine to it.

Kinds of data and the fields they are indexed by are declared once in `INDEXES`: `find` and
`below` work only on declared fields, so every engine can keep them cheap (SQLite keeps an index
table; the costs of a lookup grow with the answer, not with the pool).

Erasure (APPI 法35, `mailflow.privacy`) needs three more things of an engine: the keys of what
`find` finds (`find_keys`: an event's sequence number, a token's key), replacing one entry of a
log that allows it (`redact`: only `REDACTABLE` kinds, the timeline's events — never the
ledger, whose entries are hash-chained), and `scrub`: what was deleted or replaced is then gone
from the engine's files (free pages, WAL, temporary copies), not only from its answers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any, Protocol, TypeVar

from mailflow.errors import StoreError

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
    "openings": (),
    # the network pool (mailflow.network): this company's entry -> candidate map, and in the
    # network's own scope the entries, their stage events and the members
    "network_links": ("candidate_id",),
    "network_entries": ("company",),
    "network_stages": ("entry",),
    "network_members": (),
}

# The field holding a document's key, for the kinds that can be claimed (`Store.claim`).
KEY_FIELD: dict[str, str] = {"outbox": "id", "followups": "id", "journal": "key",
                             "quarantine": "key"}

# Append-only kinds: written with `append`, keys are increasing sequence numbers.
LOGS = frozenset({"events", "ledger", "audit", "network_stages"})

# Log kinds whose entries may be replaced, keeping their sequence numbers (erasure: an event's
# personal fields go, its type, time and candidate id stay). The ledger and the audit log never.
REDACTABLE = frozenset({"events"})


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

    def find_keys(self, kind: str, field: str, value: str) -> list[str]:
        """The keys of the documents `find` returns, in the same order (a log entry's key is
        its sequence number as text: "42")."""
        ...

    def redact(self, kind: str, seq: int, doc: Mapping[str, Any]) -> None:
        """Replace entry `seq` of a `REDACTABLE` log kind with `doc` (its number and place in
        the log stay); ValueError for any other kind, KeyError for an entry that is not there."""
        ...

    def claim(self, kind: str, field: str, value: str, *, up_to: bool = False,
              limit: int = 100, now: str = "") -> list[Doc]:
        """Claim for this store's holder (its lease: a daemon's mailbox) up to `limit` documents
        whose `field` equals `value` (`up_to`: is <= it, ascending), skipping those a live
        other holder claimed: `claimed_by` and `claimed_at` (`now`) are written into each in
        the same transaction (not rewritten when already this holder's), and the claimed ones
        are returned. A claim is another's while its holder holds its lease; a holder that died
        (its lease is free) loses its claims to the next one. Single-writer engines have no
        other live holder: every claim is theirs."""
        ...

    def lock_until_commit(self, name: str) -> None:
        """Inside a transaction: wait for the lock `name`, held until the transaction ends
        (writers of other holders serialise on it); nothing on single-writer engines."""
        ...

    def scrub(self) -> bool:
        """Make what was deleted or replaced unrecoverable from the store's files (free pages,
        write-ahead log, temporary copies); outside a transaction. False when a reader held
        part of it back (the next scrub finishes it)."""
        ...

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


def index_pairs(kind: str, doc: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(field, value) for every value the document is indexed under."""
    return {(field, value) for field in INDEXES[kind] for value in index_values(doc, field)}


def check_kind(kind: str, field: str | None = None) -> None:
    if kind not in INDEXES:
        raise KeyError(f"unknown kind {kind!r}; known: {', '.join(sorted(INDEXES))}")
    if field is not None and field not in INDEXES[kind]:
        raise KeyError(f"{kind}.{field} is not indexed; indexed: {', '.join(INDEXES[kind])}")


# --- helpers shared by the engines -------------------------------------------------------------

_SEQ_DIGITS = 20


def encode(doc: Mapping[str, Any]) -> str:
    """The JSON text of a document (UTF-8 kept readable); refuses what JSON cannot hold."""
    if not isinstance(doc, dict):
        raise TypeError(f"a document is a dict, not {type(doc).__name__}")
    try:
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"document is not JSON: {e}") from e


def log_key(seq: int) -> str:
    return f"{seq:0{_SEQ_DIGITS}d}"


def stored_key(kind: str, key: str) -> str:
    """The key as stored: log kinds pad their sequence numbers so that keys sort numerically."""
    if not isinstance(key, str):
        raise TypeError(f"a key is a str, not {type(key).__name__}")
    if kind in LOGS:
        if not key.isdigit():
            raise ValueError(f"{kind} is a log: its keys are sequence numbers, not {key!r}")
        return log_key(int(key))
    return key


def check_writable_kind(kind: str) -> None:
    check_kind(kind)
    if kind in LOGS:
        raise ValueError(f"{kind} is append-only: write it with append()")


def check_claimable_kind(kind: str, field: str) -> None:
    check_kind(kind, field)
    if kind not in KEY_FIELD:
        raise ValueError(f"{kind} documents are not claimed; claimable: "
                         f"{', '.join(sorted(KEY_FIELD))}")


def check_log_kind(kind: str) -> None:
    check_kind(kind)
    if kind not in LOGS:
        raise ValueError(f"{kind} is not a log; logs: {', '.join(sorted(LOGS))}")


def check_redactable_kind(kind: str) -> None:
    check_kind(kind)
    if kind not in REDACTABLE:
        raise ValueError(f"{kind} entries are never replaced; redactable: "
                         f"{', '.join(sorted(REDACTABLE))}")


def claim_simply(store: Store, holder: str, kind: str, field: str, value: str, up_to: bool,
                 limit: int, now: str) -> list[Doc]:
    """`Store.claim` on an engine with one writer: whatever matches is this holder's."""
    check_claimable_kind(kind, field)
    if limit <= 0:
        return []
    claimed: list[Doc] = []
    with store.transaction():
        found = (store.below(kind, field, value, limit) if up_to
                 else store.find(kind, field, value)[:limit])
        for doc in found:
            if doc.get("claimed_by") != holder:  # already ours: not written again
                doc.update(claimed_by=holder, claimed_at=now)
                store.put(kind, str(doc[KEY_FIELD[kind]]), doc)
            claimed.append(doc)
    return claimed


def caller_key(kind: str, key: str) -> str:
    """The key as callers name it: a log entry by its plain sequence number."""
    return str(int(key)) if kind in LOGS else key


def owner_only(*paths: Path) -> None:
    """chmod 0600 each file that exists (and that we own: a reader may not)."""
    for path in paths:
        with suppress(FileNotFoundError, PermissionError):
            os.chmod(path, 0o600)


def read_only_error(path: Path) -> StoreError:
    return StoreError(f"store {path} is open read-only; send changes through the running daemon")
