"""The ledger's accounting (pure): the entries (`LedgerEntry`), their chain, hashes and seal, the
rules an entry must follow, and the balance they prove. `mailflow.relay.ledger` keeps the entries
in the store; this module only reads and checks them (see that module's docstring for the rules).
The checks take any mapping: they are what finds an entry that is not what it should be.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict, cast

from mailflow.errors import MailflowError
from mailflow.store.base import Doc

GENESIS = "0" * 64
HEAD = "ledger_head"  # settings document holding the sealed head
KINDS = ("registration", "slot_earned", "slot_redeemed", "correction")


class RunningBalance(TypedDict):
    """The balance after an entry, as the entry records it (`Running.as_doc`)."""

    registrations: int
    progress: int
    slots_earned: int
    slots_redeemed: int
    last_slot_seq: int


class LedgerEntry(TypedDict):
    """One entry of the referral ledger (kind "ledger", append-only): every one of these keys,
    in this order, in every entry (None where its kind has no value); `FIELDS` names them."""

    seq: int
    kind: str  # one of KINDS
    at: str
    event_id: str | None  # the partner event (registration, slot_earned, correction)
    candidate_id: str | None
    ref: str | None
    occurred_at: str | None
    note: str  # slot_redeemed: what the slot was used for
    per_slot: int | None  # registration, slot_earned
    counted_delta: int  # registration 1; correction -1 or 0
    balance: RunningBalance
    prev_hash: str
    hash: str


FIELDS = tuple(LedgerEntry.__annotations__)  # seq, kind, at, … prev_hash, hash


def as_ledger_entry(doc: Doc) -> LedgerEntry:
    """A ledger entry read from the store, as the entry it is (`verify` checks that it is)."""
    return cast(LedgerEntry, doc)


class LedgerError(MailflowError):
    """The ledger refuses (nothing to redeem) or cannot be trusted (exit code 1)."""


class NothingToRedeem(LedgerError):
    pass


class LedgerBroken(LedgerError):
    """An entry (or the seal) does not check out; `seq` names the first bad entry."""

    def __init__(self, seq: int, problem: str) -> None:
        self.seq = seq
        self.problem = problem
        super().__init__(f"ledger entry {seq}: {problem}")


# -- hashing and sealing (pure) ------------------------------------------------------------------


def canonical(entry: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def seal(key: bytes, seq: int, head_hash: str) -> str:
    return hmac.new(key, f"mailflow-ledger-head:{seq}:{head_hash}".encode(),
                    hashlib.sha256).hexdigest()


# -- the balance, replayed from entries (pure) ---------------------------------------------------


@dataclass
class Running:
    """The balance after an entry, as recorded in it and as replayed."""

    registrations: int = 0
    progress: int = 0
    slots_earned: int = 0
    slots_redeemed: int = 0
    last_slot_seq: int = 0

    def as_doc(self) -> RunningBalance:
        return {"registrations": self.registrations, "progress": self.progress,
                "slots_earned": self.slots_earned, "slots_redeemed": self.slots_redeemed,
                "last_slot_seq": self.last_slot_seq}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Running:
        return cls(**{k: int(doc[k]) for k in cls().as_doc()})

    @property
    def available(self) -> int:
        return self.slots_earned - self.slots_redeemed


@dataclass
class Replay:
    """Walks the entries in order, checking the chain and the rules; `problem` is the first."""

    running: Running = field(default_factory=Running)
    credited: dict[str, int] = field(default_factory=dict)  # candidate -> seq of its credit
    withdrawn: set[str] = field(default_factory=set)
    slots_due: int = 0
    entries: int = 0
    credits: int = 0
    corrections: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    per_slot: int | None = None
    problem: LedgerBroken | None = None

    def feed(self, position: int, entry: Mapping[str, Any]) -> bool:
        """Take the next entry (stored at `position`); False once a problem is found."""
        if self.problem is None and position != self.last_seq + 1:
            self.problem = LedgerBroken(self.last_seq + 1,
                                        f"missing (the next stored entry is {position})")
        if self.problem is None:
            why = self._chain(position, entry) or self._rules(position, entry)
            if why:
                self.problem = LedgerBroken(position, why)
            else:
                self.entries += 1
                self.last_seq, self.last_hash = position, str(entry["hash"])
        return self.problem is None

    def _chain(self, position: int, entry: Mapping[str, Any]) -> str:
        if set(entry) != set(FIELDS):
            return "fields changed"
        if entry["seq"] != position:
            return f"stands at position {position} but says it is entry {entry['seq']} " \
                   "(reordered?)"
        if entry["prev_hash"] != self.last_hash:
            return "does not follow the entry before it (prev_hash differs)"
        if entry_hash(entry) != entry["hash"]:
            return "its contents do not match its hash (edited)"
        return ""

    def _rules(self, seq: int, entry: Mapping[str, Any]) -> str:
        r = self.running
        kind = entry["kind"]
        if kind not in KINDS:
            return f"unknown kind {kind!r}"
        if self.slots_due and kind != "slot_earned":
            return "a slot earned should stand before this entry"
        if kind == "registration":
            cid = str(entry["candidate_id"])
            if cid in self.credited:
                return f"candidate {cid} credited twice (first in entry {self.credited[cid]})"
            if not isinstance(entry["per_slot"], int) or entry["per_slot"] < 1:
                return "registrations per slot missing"
            self.credited[cid] = seq
            self.credits += 1
            self.per_slot = entry["per_slot"]
            r.registrations += 1
            r.progress += 1
            self.slots_due = r.progress // self.per_slot
        elif kind == "slot_earned":
            if not self.slots_due or entry["per_slot"] != self.per_slot:
                return "slot earned without the registrations to back it"
            self.slots_due -= 1
            r.progress -= int(entry["per_slot"])
            r.slots_earned += 1
            r.last_slot_seq = seq
        elif kind == "correction":
            cid = str(entry["candidate_id"])
            if cid not in self.credited or cid in self.withdrawn:
                return f"correction of candidate {cid}, who has no registration that counts"
            expected = -1 if self.credited[cid] > r.last_slot_seq else 0
            if entry["counted_delta"] != expected:
                return f"correction should count {expected}, says {entry['counted_delta']}"
            self.withdrawn.add(cid)
            self.corrections += 1
            r.registrations += expected
            r.progress += expected
        elif kind == "slot_redeemed":
            if r.available < 1:
                return "slot redeemed while none was available"
            r.slots_redeemed += 1
        if entry["balance"] != r.as_doc():
            return "its running balance does not follow from the entries"
        return ""

    def finish(self, head: Doc | None, key: bytes) -> LedgerBroken | None:
        """Check the sealed head against the last entry; the first problem found, or None."""
        if self.problem is not None:
            return self.problem
        last = self.last_seq
        if head is None:
            return LedgerBroken(last, "the head seal is missing") if last else None
        seq, head_hash = int(head.get("seq", 0)), str(head.get("hash", ""))
        if seq > last:
            return LedgerBroken(last + 1, f"missing (the ledger ends at entry {last}, its "
                                          f"sealed head is entry {seq}: truncated)")
        if seq < last:
            return LedgerBroken(seq + 1, f"not covered by the seal (sealed head is entry {seq})")
        if self.slots_due:
            return LedgerBroken(last, "a slot earned should follow this entry")
        if head_hash != self.last_hash:
            return LedgerBroken(last, "does not match the sealed head")
        if not hmac.compare_digest(seal(key, seq, head_hash), str(head.get("seal", ""))):
            return LedgerBroken(last, "the head seal does not verify with the ledger key "
                                      "(hashes recomputed, or another key)")
        return None


@dataclass(frozen=True)
class Balance:
    registrations: int
    registrations_per_free_slot: int
    slots_earned: int
    slots_redeemed: int
    progress_to_next: int
    verified: bool
    credited: int
    corrections: int
    entries: int
    problem: str | None

    @property
    def slots_available(self) -> int:
        return self.slots_earned - self.slots_redeemed

    def public(self) -> Doc:
        return {"registrations": self.registrations,
                "registrations_per_free_slot": self.registrations_per_free_slot,
                "slots_earned": self.slots_earned, "slots_redeemed": self.slots_redeemed,
                "slots_available": self.slots_available,
                "progress_to_next": self.progress_to_next, "verified": self.verified,
                "registrations_credited": self.credited, "corrections": self.corrections,
                "entries": self.entries, "problem": self.problem}


def audit(entries: Iterable[tuple[int, Mapping[str, Any] | None]], head: Doc | None,
          key: bytes) -> Replay:
    replay = Replay()
    for seq, entry in entries:
        if entry is None:
            replay.problem = replay.problem or LedgerBroken(seq, "unreadable (edited bytes)")
        if not replay.feed(seq, entry or {}):
            break
    replay.problem = replay.finish(head, key)
    return replay
