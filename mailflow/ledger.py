"""The referral ledger: Career Relay's free hiring slots, counted from signed facts only.

Entries are appended to the store's `ledger` log and never changed. Each one carries its
sequence number, the hash of the entry before it (`prev_hash`; the first points at 64 zeros) and
its own `hash`: SHA-256 over the canonical JSON of the entry without `hash` (keys sorted, no
spaces, UTF-8). The head of the chain (last seq and hash) is sealed with an HMAC-SHA256 keyed by
the secret in `career_relay.ledger_key_env`, and the seal (settings `ledger_head`) is rewritten in
the same transaction as each append. Someone who edits an entry and recomputes every hash still
cannot make a seal for the new head; deleting the last entries leaves a seal naming an entry that
is gone; reordering breaks `seq` and `prev_hash`.

Kinds: `registration` (a candidate's registration credited, once per candidate, ever),
`slot_earned` (appended right after the registration that completes `per_slot` of them),
`slot_redeemed` (an admin used a slot) and `correction` (the partner said the candidate
withdrew). Every entry also carries the running balance after it; `verify` replays the rules
over the entries and refuses a running balance, a slot or a correction that does not follow from
them, so a balance can never be more than what the entries prove. Appending reads only the last
entry (the running balance) and the candidate's own entries: its cost does not grow with the
ledger.

Withdrawal: a registration that still waits in the progress towards the next slot stops
counting (`counted_delta` -1: registrations and progress go down by one); a registration already
spent on a slot earned changes nothing (`counted_delta` 0): a slot once earned is never clawed
back. So `slots_earned == registrations // per_slot` always holds, and progress stays within
0 … per_slot − 1.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mailflow.clock import Clock, iso
from mailflow.config import Config
from mailflow.errors import MailflowError
from mailflow.store.base import Doc, Store

log = logging.getLogger("mailflow.ledger")

GENESIS = "0" * 64
HEAD = "ledger_head"  # settings document holding the sealed head
KINDS = ("registration", "slot_earned", "slot_redeemed", "correction")
FIELDS = ("seq", "kind", "at", "event_id", "candidate_id", "ref", "occurred_at", "note",
          "per_slot", "counted_delta", "balance", "prev_hash", "hash")


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


def canonical(entry: Doc) -> bytes:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def entry_hash(entry: Doc) -> str:
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

    def as_doc(self) -> Doc:
        return {"registrations": self.registrations, "progress": self.progress,
                "slots_earned": self.slots_earned, "slots_redeemed": self.slots_redeemed,
                "last_slot_seq": self.last_slot_seq}

    @classmethod
    def from_doc(cls, doc: Doc) -> Running:
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

    def feed(self, position: int, entry: Doc) -> bool:
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

    def _chain(self, position: int, entry: Doc) -> str:
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

    def _rules(self, seq: int, entry: Doc) -> str:
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


def read_entries(store: Store) -> Iterator[tuple[int, Doc | None]]:
    """The stored entries in order; an entry that cannot even be read comes as (seq, None)."""
    last = 0
    try:
        for seq, entry in store.log("ledger"):
            last = seq
            yield seq, entry
        return
    except Exception:  # an unreadable row (edited bytes): find it one by one
        pass
    seq = last + 1
    while True:
        try:
            found = store.get("ledger", str(seq))
        except Exception:
            yield seq, None
            return
        if found is None:
            return
        yield seq, found
        seq += 1


def audit(entries: Iterable[tuple[int, Doc | None]], head: Doc | None, key: bytes) -> Replay:
    replay = Replay()
    for seq, entry in entries:
        if entry is None:
            replay.problem = replay.problem or LedgerBroken(seq, "unreadable (edited bytes)")
        if not replay.feed(seq, entry or {}):
            break
    replay.problem = replay.finish(head, key)
    return replay


# -- the ledger in the store ---------------------------------------------------------------------


class ReferralLedger:
    """Appends under the writer lane, one store transaction per change; reads replay."""

    def __init__(self, store: Store, clock: Clock, per_slot: int, key: Callable[[], bytes],
                 lane: threading.RLock | None = None) -> None:
        self.store = store
        self.clock = clock
        self.per_slot = per_slot
        self.key = key
        self.lane = lane or threading.RLock()
        self._known: tuple[Doc, Running] | None = None  # a head checked or written, its balance

    @classmethod
    def from_config(cls, store: Store, clock: Clock, config: Config,
                    lane: threading.RLock | None = None) -> ReferralLedger:
        return cls(store, clock, config.career_relay.registrations_per_free_slot,
                   lambda: ledger_key(config), lane)

    # -- reading ------------------------------------------------------------------------------

    def audit(self) -> Replay:
        with self.store.transaction():  # one snapshot: entries and seal together
            head = self.store.get("settings", HEAD)
            return audit(read_entries(self.store), head, self.key())

    def balance(self) -> Balance:
        replay = self.audit()
        r = replay.running
        problem = replay.problem
        return Balance(r.registrations, self.per_slot, r.slots_earned, r.slots_redeemed,
                       r.progress, problem is None, replay.credits, replay.corrections,
                       replay.entries, str(problem) if problem else None)

    def verify(self) -> LedgerBroken | None:
        return self.audit().problem

    # -- writing ------------------------------------------------------------------------------

    def credit_registration(self, candidate_id: str, ref: str, event_id: str,
                            occurred_at: str) -> list[int]:
        """Credit a candidate's registration once; slots earned follow. Returns the new seqs."""
        with self.lane, self.store.transaction():
            if self._entries_of(candidate_id, "registration"):
                return []
            head, running = self._tail()
            running.registrations += 1
            running.progress += 1
            head = self._append("registration", running, head, event_id=event_id,
                                candidate_id=candidate_id, ref=ref, occurred_at=occurred_at,
                                per_slot=self.per_slot, counted_delta=1)
            seqs = [int(head["seq"])]
            while running.progress >= self.per_slot:
                running.progress -= self.per_slot
                running.slots_earned += 1
                running.last_slot_seq = seqs[-1] + 1
                head = self._append("slot_earned", running, head, event_id=event_id,
                                    per_slot=self.per_slot)
                seqs.append(int(head["seq"]))
                log.info("ledger: slot %d earned (entry %d)", running.slots_earned, seqs[-1])
            self._seal(head, running)
            return seqs

    def correct_withdrawal(self, candidate_id: str, ref: str, event_id: str,
                           occurred_at: str) -> list[int]:
        """The partner says the candidate withdrew: a correction, when a registration was
        credited and not corrected yet (see the module's docstring for its effect)."""
        with self.lane, self.store.transaction():
            credits = self._entries_of(candidate_id, "registration")
            if not credits or self._entries_of(candidate_id, "correction"):
                return []
            head, running = self._tail()
            delta = -1 if int(credits[0]["seq"]) > running.last_slot_seq else 0
            running.registrations += delta
            running.progress += delta
            head = self._append("correction", running, head, event_id=event_id,
                                candidate_id=candidate_id, ref=ref, occurred_at=occurred_at,
                                counted_delta=delta)
            self._seal(head, running)
            return [int(head["seq"])]

    def redeem(self, note: str) -> Doc:
        """Use one free slot; NothingToRedeem (exit 1) when none is available."""
        note = note.strip()
        if not note:
            raise LedgerError("a redemption needs a note (what the slot was used for)")
        with self.lane, self.store.transaction():
            head, running = self._tail()
            if running.available < 1:
                raise NothingToRedeem(
                    f"no free slot available ({running.slots_earned} earned, "
                    f"{running.slots_redeemed} redeemed; progress {running.progress}/"
                    f"{self.per_slot})")
            running.slots_redeemed += 1
            head = self._append("slot_redeemed", running, head, note=note)
            self._seal(head, running)
        seq = int(head["seq"])
        log.info("ledger: slot redeemed (entry %d)", seq)
        return {"seq": seq, "slots_available": running.available}

    def _entries_of(self, candidate_id: str, kind: str) -> list[Doc]:
        return [e for e in self.store.find("ledger", "candidate_id", candidate_id)
                if e.get("kind") == kind]

    def _tail(self) -> tuple[Doc | None, Running]:
        """The sealed head and the running balance of the last entry, after checking that entry
        against the seal: a chain that was cut or edited at its end is never extended (nor
        sealed again). A head this ledger checked or wrote itself is not checked again (a head
        rolled back with its transaction differs from it, and is checked)."""
        head = self.store.get("settings", HEAD)
        if head is not None and self._known is not None and self._known[0] == head:
            return head, Running(**vars(self._known[1]))
        if head is None:
            if self.store.get("ledger", "1") is not None:
                raise LedgerBroken(1, "the head seal is missing; run `mailflow ledger verify`")
            return None, Running()
        seq, head_hash = int(head["seq"]), str(head["hash"])
        last = self.store.get("ledger", str(seq))
        if (last is None or last.get("hash") != head_hash or entry_hash(last) != head_hash
                or self.store.get("ledger", str(seq + 1)) is not None
                or not hmac.compare_digest(seal(self.key(), seq, head_hash),
                                           str(head.get("seal", "")))):
            raise LedgerBroken(seq, "does not match the sealed head; nothing is appended until "
                                    "`mailflow ledger verify` passes")
        running = Running.from_doc(last["balance"])
        self._known = (head, Running(**vars(running)))
        return head, running

    def _append(self, kind: str, running: Running, head: Doc | None, **fields: Any) -> Doc:
        """Append an entry after `head`; returns the new head (sealed by `_seal`)."""
        seq = int(head["seq"]) + 1 if head else 1
        entry: Doc = {name: None for name in FIELDS}
        entry.update({"seq": seq, "kind": kind, "at": iso(self.clock.now()), "note": "",
                      "counted_delta": 0, **fields})
        entry["balance"] = running.as_doc()
        entry["prev_hash"] = str(head["hash"]) if head else GENESIS
        entry["hash"] = entry_hash(entry)
        stored = self.store.append("ledger", entry)
        if stored != seq:
            raise LedgerBroken(stored, f"appended at position {stored}, expected {seq}")
        return {"seq": seq, "hash": entry["hash"]}

    def _seal(self, head: Doc, running: Running) -> None:
        """Seal the new head, in the transaction of the entries it covers."""
        sealed = {**head, "seal": seal(self.key(), int(head["seq"]), str(head["hash"]))}
        self.store.put("settings", HEAD, sealed)
        self._known = (sealed, Running(**vars(running)))


def ledger_key(config: Config) -> bytes:
    """The ledger's HMAC key from the environment (MissingSecret, exit 2, when unset)."""
    return config.secret("career_relay.ledger_key_env").encode("utf-8")
