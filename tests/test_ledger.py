"""Issue 9: the referral ledger — balance rules (withdrawal pinned), and tampering with the
SQLite file directly: every edited byte, a deleted last entry, swapped entries, recomputed
hashes, forged entries are found by `ledger verify`, which names the entry."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from harness import PASSWORD_ENV, DaemonThread
from servers import Dovecot
from test_callbacks import LEDGER_KEY, SECRET, add_candidates, cli, event, post, ref, write_config

from mailflow.clock import FrozenClock
from mailflow.errors import MailflowError
from mailflow.relay.accounting import HEAD, LedgerBroken, NothingToRedeem, entry_hash, seal
from mailflow.relay.ledger import ReferralLedger
from mailflow.store import open_store
from mailflow.store.base import Store

KEY = LEDGER_KEY.encode()


# -- the rules, on a store of their own -----------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path / "data")
    yield opened
    opened.close()


def new_ledger(store: Store, per_slot: int = 10) -> ReferralLedger:
    return ReferralLedger(store, FrozenClock(datetime(2025, 4, 1, tzinfo=UTC)), per_slot,
                          lambda: KEY)


def register(ledger: ReferralLedger, n: int) -> list[int]:
    return ledger.credit_registration(f"c_{n}", ref(n), f"reg-{n}", "2025-04-01T00:00:00Z")


def withdraw(ledger: ReferralLedger, n: int) -> list[int]:
    return ledger.correct_withdrawal(f"c_{n}", ref(n), f"wd-{n}", "2025-04-02T00:00:00Z")


def state(ledger: ReferralLedger) -> tuple[int, int, int, int]:
    b = ledger.balance()
    assert b.verified, b.problem
    assert b.slots_earned == b.registrations // b.registrations_per_free_slot
    assert 0 <= b.progress_to_next < b.registrations_per_free_slot
    return b.registrations, b.slots_earned, b.progress_to_next, b.slots_redeemed


def test_slots_are_earned_every_tenth_registration_once_per_candidate(store: Store) -> None:
    ledger = new_ledger(store)
    for n in range(9):
        assert len(register(ledger, n)) == 1
    assert state(ledger) == (9, 0, 9, 0)
    assert len(register(ledger, 9)) == 2  # the registration and the slot it completes
    assert state(ledger) == (10, 1, 0, 0)
    assert register(ledger, 9) == [] and register(ledger, 3) == []
    assert state(ledger) == (10, 1, 0, 0)


def test_withdrawal_uncounts_progress_but_never_claws_back_a_slot(store: Store) -> None:
    ledger = new_ledger(store)
    for n in range(13):
        register(ledger, n)
    assert state(ledger) == (13, 1, 3, 0)
    # candidate 4 was spent on slot 1: the correction is recorded, the slot stands
    assert len(withdraw(ledger, 4)) == 1
    assert state(ledger) == (13, 1, 3, 0)
    # candidate 11 waits in the progress towards slot 2: it stops counting
    assert len(withdraw(ledger, 11)) == 1
    assert state(ledger) == (12, 1, 2, 0)
    # a second withdrawal, or one without a registration, changes nothing
    assert withdraw(ledger, 11) == [] and withdraw(ledger, 99) == []
    # a registration after a withdrawal is not credited again
    assert register(ledger, 11) == []
    assert state(ledger) == (12, 1, 2, 0)
    for n in range(13, 21):
        register(ledger, n)
    assert state(ledger) == (20, 2, 0, 0)
    corrections = [e for _s, e in store.log("ledger") if e["kind"] == "correction"]
    assert [c["counted_delta"] for c in corrections] == [0, -1]


def test_redeem_needs_an_available_slot_and_changes_nothing_when_refused(store: Store) -> None:
    ledger = new_ledger(store, per_slot=2)
    with pytest.raises(NothingToRedeem, match="no free slot available"):
        ledger.redeem("backend hire")
    assert store.count("ledger") == 0 and store.get("settings", HEAD) is None
    register(ledger, 0)
    register(ledger, 1)
    assert ledger.redeem("backend hire")["slots_available"] == 0
    head = store.get("settings", HEAD)
    with pytest.raises(NothingToRedeem):
        ledger.redeem("another")
    assert store.get("settings", HEAD) == head
    with pytest.raises(MailflowError, match="needs a note"):
        ledger.redeem("  ")
    assert state(ledger) == (2, 1, 0, 1)


def test_a_changed_rate_applies_from_the_next_registration(store: Store) -> None:
    for n in range(7):
        register(new_ledger(store, per_slot=10), n)
    ledger = new_ledger(store, per_slot=5)
    register(ledger, 7)
    b = ledger.balance()
    assert (b.registrations, b.slots_earned, b.progress_to_next, b.verified) == (8, 1, 3, True)


def test_a_broken_chain_is_never_extended(store: Store) -> None:
    ledger = new_ledger(store)
    for n in range(3):
        register(ledger, n)
    head = store.get("settings", HEAD)
    assert head is not None
    store.put("settings", HEAD, {**head, "seal": "0" * 64})
    with pytest.raises(LedgerBroken, match="ledger entry 3"):
        register(ledger, 3)
    other_key = ReferralLedger(store, FrozenClock(datetime(2025, 4, 1, tzinfo=UTC)), 10,
                               lambda: b"another key")
    store.put("settings", HEAD, head)
    with pytest.raises(LedgerBroken):
        register(other_key, 3)
    assert store.count("ledger") == 3
    register(ledger, 3)
    assert state(ledger) == (4, 0, 4, 0)


# -- tampering with the file, on a ledger built over HTTP by the running daemon -------------------


@pytest.fixture(scope="module")
def built(dovecot: Dovecot, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """13 entries: 8 registrations (3 per slot: 2 slots), a redemption, two corrections."""
    directory = tmp_path_factory.mktemp("ledger")
    account = dovecot.add_user("ledger-built", "secret")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PASSWORD_ENV, account.password)
        patch.setenv("MAILFLOW_RELAY_SECRET", SECRET)
        patch.setenv("MAILFLOW_LEDGER_KEY", LEDGER_KEY)
        config, base = write_config(directory, account, per_slot=3)
        add_candidates(config, 8)
        with DaemonThread(config) as running:
            for n in range(8):
                assert post(base, event(f"reg-{n}", ref(n))).status_code == 200
            running.daemon.ledger.redeem("バックエンドエンジニア採用")
            assert post(base, event("wd-1", ref(1), "withdrawn")).status_code == 200
            assert post(base, event("wd-7", ref(7), "withdrawn")).status_code == 200
    return directory


@pytest.fixture
def copy(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A copy of the built ledger: (config, the SQLite file)."""
    monkeypatch.setenv("MAILFLOW_LEDGER_KEY", LEDGER_KEY)
    shutil.copytree(built, tmp_path, dirs_exist_ok=True)
    config = tmp_path / "config.toml"
    config.write_text((built / "config.toml").read_text().replace(str(built), str(tmp_path)))
    return config, tmp_path / "data" / "mailflow.sqlite3"


def verify(config: Path) -> tuple[int, str]:
    import os

    done = cli(config, dict(os.environ), "ledger", "verify")
    return done.returncode, done.stderr.strip()


def stored(db: Path, seq: int) -> bytes:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT CAST(doc AS BLOB) FROM docs WHERE kind='ledger' AND key=?",
                           (f"{seq:020d}",)).fetchone()
    return bytes(row[0])


def overwrite(conn: sqlite3.Connection, seq: int, raw: bytes) -> None:
    conn.execute("UPDATE docs SET doc = CAST(? AS TEXT) WHERE kind='ledger' AND key=?",
                 (raw, f"{seq:020d}"))


def test_the_built_ledger_verifies(copy: tuple[Path, Path]) -> None:
    config, _db = copy
    assert verify(config) == (0, "")
    import os

    balance = json.loads(cli(config, dict(os.environ), "ledger", "--json").stdout)
    # 8 registered, 2 slots (3 each); 1 was spent on slot 1, 7 waited in the progress
    assert (balance["registrations"], balance["slots_earned"], balance["slots_redeemed"],
            balance["progress_to_next"], balance["entries"]) == (7, 2, 1, 1, 13)


def test_an_edited_byte_is_named_by_verify(copy: tuple[Path, Path]) -> None:
    config, db = copy
    raw = bytearray(stored(db, 7))
    raw[len(raw) // 2] ^= 0x01
    with sqlite3.connect(db) as conn:
        overwrite(conn, 7, bytes(raw))
    code, error = verify(config)
    assert code == 1 and error.startswith("mailflow: error: ledger entry 7: "), error


@pytest.mark.parametrize("change", [lambda b: b ^ 0x01, lambda b: 0xFF, lambda b: 0x20],
                         ids=["flipped bit", "invalid UTF-8", "space"])
def test_every_byte_of_every_entry_is_guarded(copy: tuple[Path, Path],
                                              change: Callable[[int], int]) -> None:
    """Each byte of each stored entry changed in turn (then put back): verify names that
    entry every time."""
    _config, db = copy
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        for seq in range(1, 14):
            original = stored(db, seq)
            for offset in range(len(original)):
                edited = bytearray(original)
                edited[offset] = change(edited[offset])
                if edited == original:
                    continue
                overwrite(conn, seq, bytes(edited))
                reader = open_store(db.parent, read_only=True)
                try:
                    problem = ReferralLedger(reader, FrozenClock(datetime.now(UTC)), 3,
                                             lambda: KEY).verify()
                finally:
                    reader.close()
                assert problem is not None and problem.seq == seq, (seq, offset, problem)
            overwrite(conn, seq, original)
    finally:
        conn.close()


def test_deleting_the_last_entry_is_named(copy: tuple[Path, Path]) -> None:
    config, db = copy
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM docs WHERE kind='ledger' AND key=?", (f"{13:020d}",))
    code, error = verify(config)
    assert code == 1 and error.startswith("mailflow: error: ledger entry 13: missing"), error


def test_deleting_the_last_three_and_a_middle_entry(copy: tuple[Path, Path]) -> None:
    config, db = copy
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM docs WHERE kind='ledger' AND key>?", (f"{10:020d}",))
    assert verify(config)[1].startswith("mailflow: error: ledger entry 11: missing")
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM docs WHERE kind='ledger' AND key=?", (f"{5:020d}",))
    assert verify(config)[1].startswith("mailflow: error: ledger entry 5: missing")


def test_swapping_two_entries_is_named(copy: tuple[Path, Path]) -> None:
    config, db = copy
    third, fourth = stored(db, 3), stored(db, 4)
    with sqlite3.connect(db) as conn:
        overwrite(conn, 3, fourth)
        overwrite(conn, 4, third)
    code, error = verify(config)
    assert code == 1 and error.startswith("mailflow: error: ledger entry 3: "), error
    assert "reordered" in error


def rehash(conn: sqlite3.Connection, db: Path, start: int, edit: Callable[[dict], None]) -> str:
    """What someone who knows the algorithm but not the key can do: edit entry `start`, then
    recompute every hash after it. Returns the new head hash."""
    previous = json.loads(stored(db, start - 1))["hash"] if start > 1 else "0" * 64
    seq = start
    while True:
        row = conn.execute("SELECT doc FROM docs WHERE kind='ledger' AND key=?",
                           (f"{seq:020d}",)).fetchone()
        if row is None:
            return str(previous)
        entry = json.loads(row[0])
        if seq == start:
            edit(entry)
        entry["prev_hash"] = previous
        entry["hash"] = previous = entry_hash(entry)
        overwrite(conn, seq, json.dumps(entry, ensure_ascii=False).encode())
        seq += 1


def test_recomputed_hashes_are_caught_by_the_seal(copy: tuple[Path, Path]) -> None:
    config, db = copy

    def new_note(entry: dict) -> None:
        entry["note"] = "誰にも使っていない"

    with sqlite3.connect(db) as conn:
        head = rehash(conn, db, 11, new_note)
        conn.execute("UPDATE docs SET doc = json_set(doc, '$.hash', ?) WHERE kind='settings' "
                     "AND key=?", (head, HEAD))
    code, error = verify(config)
    assert code == 1 and "ledger entry 13: the head seal does not verify" in error, error


def test_an_entry_appended_without_the_key_is_named(copy: tuple[Path, Path]) -> None:
    config, db = copy
    last = json.loads(stored(db, 13))
    forged = {**last, "seq": 14, "kind": "slot_earned", "prev_hash": last["hash"],
              "balance": {**last["balance"], "slots_earned": 3}}
    forged["hash"] = entry_hash(forged)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO docs(kind, key, doc) VALUES ('ledger', ?, ?)",
                     (f"{14:020d}", json.dumps(forged)))
    code, error = verify(config)
    assert code == 1 and error.startswith("mailflow: error: ledger entry 14: "), error


def test_even_with_the_key_a_slot_needs_registrations_behind_it(
        copy: tuple[Path, Path]) -> None:
    """An insider holding the key who appends a slot and seals it: the rules replayed over the
    entries refuse the slot."""
    config, db = copy
    last = json.loads(stored(db, 13))
    forged = {**last, "seq": 14, "kind": "slot_earned", "prev_hash": last["hash"],
              "event_id": None, "candidate_id": None, "ref": None, "occurred_at": None,
              "counted_delta": 0, "note": "", "per_slot": 3,
              "balance": {**last["balance"], "slots_earned": 3, "last_slot_seq": 14}}
    forged["hash"] = entry_hash(forged)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO docs(kind, key, doc) VALUES ('ledger', ?, ?)",
                     (f"{14:020d}", json.dumps(forged)))
        conn.execute("UPDATE docs SET doc = ? WHERE kind='settings' AND key=?", (json.dumps(
            {"seq": 14, "hash": forged["hash"], "seal": seal(KEY, 14, forged["hash"])}), HEAD))
    code, error = verify(config)
    assert code == 1 and "ledger entry 14: slot earned without the registrations" in error


def test_a_deleted_seal_and_a_missing_key(copy: tuple[Path, Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    config, db = copy
    monkeypatch.delenv("MAILFLOW_LEDGER_KEY")
    code, error = verify(config)
    assert code == 2 and "MAILFLOW_LEDGER_KEY is not set" in error
    monkeypatch.setenv("MAILFLOW_LEDGER_KEY", LEDGER_KEY)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM docs WHERE kind='settings' AND key=?", (HEAD,))
    assert verify(config) == (1, "mailflow: error: ledger entry 13: the head seal is missing")


def test_export_csv_for_reconciliation(copy: tuple[Path, Path]) -> None:
    import csv
    import io
    import os

    config, db = copy
    done = cli(config, dict(os.environ), "ledger", "export", "--csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["seq"] for r in rows] == [str(n) for n in range(1, 14)]
    assert [r["kind"] for r in rows].count("slot_earned") == 2
    assert rows[-1]["hash"] == json.loads(stored(db, 13))["hash"]
    assert rows[-1]["registrations"] == "7" and rows[-1]["slots_available"] == "1"
    assert "candidate_id" not in rows[0]
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM docs WHERE kind='ledger' AND key=?", (f"{13:020d}",))
    refused = cli(config, dict(os.environ), "ledger", "export", "--csv")
    assert refused.returncode == 1 and refused.stdout == ""
