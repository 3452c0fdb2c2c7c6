"""The referral ledger: Career Relay's free hiring slots, counted from signed facts only.

Entries are appended to the store's `ledger` log and never changed. Each one carries its
sequence number, the hash of the entry before it (`prev_hash`; the first points at 64 zeros) and
its own `hash`: SHA-256 over the canonical JSON of the entry without `hash` (keys sorted, no
spaces, UTF-8). The head of the chain (last seq and hash) is sealed with an HMAC-SHA256 keyed by
the secret in `career_relay.ledger_key_env`, and the seal (settings `ledger_head`) is rewritten in
the same transaction as each append. Someone who edits an entry and recomputes every hash still
cannot make a seal for the new head; deleting the last entries leaves a seal naming an entry that
is gone; reordering breaks `seq` and `prev_hash`.

Kinds: `registration` (a candidate's credit, once per candidate, ever: the partner's event that
`[career_relay] credit_on` names, "registered" unless the agreement says "introduced" or "hired"),
`slot_earned` (appended right after the registration that completes `per_slot` of them),
`slot_redeemed` (an admin used a slot; one that paid for a hire names the candidate and the hire
date) and `correction` (the partner said the candidate withdrew). Every entry also carries the
running balance after it; `verify` replays the rules over the entries and refuses a running
balance, a slot or a correction that does not follow from them, so a balance can never be more
than what the entries prove. Appending reads only the last entry (the running balance) and the
candidate's own entries: its cost does not grow with the ledger.

Withdrawal: a registration that still waits in the progress towards the next slot stops
counting (`counted_delta` -1: registrations and progress go down by one); a registration already
spent on a slot earned changes nothing (`counted_delta` 0): a slot once earned is never clawed
back. So `slots_earned == registrations // per_slot` always holds, and progress stays within
0 … per_slot − 1.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable, Iterator

from mailflow.clock import Clock, iso
from mailflow.relay.accounting import (
    GENESIS,
    HEAD,
    Balance,
    LedgerBroken,
    LedgerEntry,
    LedgerError,
    NothingToRedeem,
    Replay,
    Running,
    as_ledger_entry,
    audit,
    entry_hash,
    seal,
)
from mailflow.settings.config import Config
from mailflow.store.base import Doc, Store

log = logging.getLogger("mailflow.ledger")

def read_entries(store: Store) -> Iterator[tuple[int, LedgerEntry | None]]:
    """The stored entries in order (as stored: `verify` checks them); an entry that cannot even
    be read comes as (seq, None)."""
    last = 0
    try:
        for seq, entry in store.log("ledger"):
            last = seq
            yield seq, as_ledger_entry(entry)
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
        yield seq, as_ledger_entry(found)
        seq += 1


# -- the ledger in the store ---------------------------------------------------------------------


class ReferralLedger:
    """Appends under the writer lane, one store transaction per change; reads replay. Each
    change first takes the store's lock on the head (`lock_until_commit`: daemons of other
    mailboxes on one PostgreSQL database append to the same chain), then reads the head inside
    it; the head cache `_known` is used only when it equals the head read there."""

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
            self.store.lock_until_commit(HEAD)  # other daemons' appends wait: one chain
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
            self.store.lock_until_commit(HEAD)  # other daemons' appends wait: one chain
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

    def redeem(self, note: str, candidate_id: str | None = None,
               hired_on: str | None = None) -> Doc:
        """Use one free slot; NothingToRedeem (exit 1) when none is available. A slot that paid
        for a hire names it: the candidate and the hire date (`occurred_at`)."""
        note = note.strip()
        if not note:
            raise LedgerError("a redemption needs a note (what the slot was used for)")
        with self.lane, self.store.transaction():
            self.store.lock_until_commit(HEAD)  # other daemons' appends wait: one chain
            head, running = self._tail()
            if running.available < 1:
                raise NothingToRedeem(
                    f"no free slot available ({running.slots_earned} earned, "
                    f"{running.slots_redeemed} redeemed; progress {running.progress}/"
                    f"{self.per_slot})")
            running.slots_redeemed += 1
            head = self._append("slot_redeemed", running, head, note=note,
                                candidate_id=candidate_id, occurred_at=hired_on)
            self._seal(head, running)
        seq = int(head["seq"])
        log.info("ledger: slot redeemed (entry %d)", seq)
        return {"seq": seq, "slots_available": running.available}

    def _entries_of(self, candidate_id: str, kind: str) -> list[LedgerEntry]:
        return [as_ledger_entry(e) for e in self.store.find("ledger", "candidate_id", candidate_id)
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

    def _append(self, kind: str, running: Running, head: Doc | None, *,
                event_id: str | None = None, candidate_id: str | None = None,
                ref: str | None = None, occurred_at: str | None = None,
                per_slot: int | None = None, counted_delta: int = 0, note: str = "") -> Doc:
        """Append an entry after `head`; returns the new head (sealed by `_seal`)."""
        seq = int(head["seq"]) + 1 if head else 1
        entry: LedgerEntry = {
            "seq": seq, "kind": kind, "at": iso(self.clock.now()), "event_id": event_id,
            "candidate_id": candidate_id, "ref": ref, "occurred_at": occurred_at, "note": note,
            "per_slot": per_slot, "counted_delta": counted_delta, "balance": running.as_doc(),
            "prev_hash": str(head["hash"]) if head else GENESIS, "hash": ""}
        entry["hash"] = entry_hash(entry)  # over every key but `hash`
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
