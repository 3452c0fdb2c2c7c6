"""Every engine holds to the `Store` contract: one suite, run on each engine — SQLite, TinyDB, and
PostgreSQL on a throw-away cluster the tests start (`tests/postgres_server.py`)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from postgres_server import Postgres

from mailflow.errors import NoStore, StoreError, UsageError
from mailflow.store import ENGINES, Store, open_store

Opener = Callable[..., Store]
FILE_ENGINES = sorted(ENGINES)  # their documents live in the data directory's files


@pytest.fixture(params=[*FILE_ENGINES, "postgresql"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def opener(engine: str, data_dir: Path, request: pytest.FixtureRequest) -> Opener:
    """Opens this test's store, again and again (`opener(read_only=True)`); on PostgreSQL a
    schema of the test's own."""
    dsn = request.getfixturevalue("postgres").schema() if engine == "postgresql" else None

    def open_(read_only: bool = False) -> Store:
        return open_store(data_dir, engine, read_only, dsn=dsn)
    return open_


@pytest.fixture
def store(opener: Opener) -> Iterator[Store]:
    s = opener()
    yield s
    s.close()


def candidate(name: str, *emails: str, phones: tuple[str, ...] = ()) -> dict[str, object]:
    return {"name": name, "emails": list(emails), "phones": list(phones)}


class Boom(Exception):
    pass


# --- documents ------------------------------------------------------------------------------------


def test_put_get_replace_delete(store: Store) -> None:
    assert store.get("candidates", "c1") is None
    store.put("candidates", "c1", candidate("Aoki", "a@example.jp"))
    assert store.get("candidates", "c1") == candidate("Aoki", "a@example.jp")
    store.put("candidates", "c1", {"name": "Aoki Ken"})
    assert store.get("candidates", "c1") == {"name": "Aoki Ken"}  # replaced, not merged
    assert store.delete("candidates", "c1") is True
    assert store.get("candidates", "c1") is None
    assert store.delete("candidates", "c1") is False


def test_returned_documents_are_copies(store: Store) -> None:
    doc = candidate("Aoki", "a@example.jp")
    store.put("candidates", "c1", doc)
    doc["emails"].append("changed@example.jp")  # type: ignore[attr-defined]
    got = store.get("candidates", "c1")
    assert got is not None
    assert got["emails"] == ["a@example.jp"]
    got["emails"].append("x@example.jp")
    assert store.get("candidates", "c1") == candidate("Aoki", "a@example.jp")


def test_put_refuses_what_json_cannot_hold(store: Store) -> None:
    with pytest.raises(TypeError):
        store.put("candidates", "c1", {"when": object()})
    assert store.get("candidates", "c1") is None
    assert store.count("candidates") == 0


def test_find_scalar_and_list_fields(store: Store) -> None:
    store.put("candidates", "c1", candidate("A", "a@x.jp", "shared@x.jp", phones=("090-1",)))
    store.put("candidates", "c2", candidate("B", "shared@x.jp"))
    store.put("candidates", "c3", {"name": "C", "relay_ref": "R-7"})
    assert [d["name"] for d in store.find("candidates", "emails", "a@x.jp")] == ["A"]
    assert [d["name"] for d in store.find("candidates", "emails", "shared@x.jp")] == ["A", "B"]
    assert [d["name"] for d in store.find("candidates", "phones", "090-1")] == ["A"]
    assert [d["name"] for d in store.find("candidates", "relay_ref", "R-7")] == ["C"]
    assert store.find("candidates", "emails", "nobody@x.jp") == []


def test_find_follows_changes_and_deletes(store: Store) -> None:
    store.put("candidates", "c1", candidate("A", "old@x.jp", "kept@x.jp"))
    store.put("candidates", "c1", candidate("A", "new@x.jp", "kept@x.jp"))
    assert store.find("candidates", "emails", "old@x.jp") == []
    assert [d["name"] for d in store.find("candidates", "emails", "new@x.jp")] == ["A"]
    assert [d["name"] for d in store.find("candidates", "emails", "kept@x.jp")] == ["A"]
    store.put("candidates", "c1", {"name": "A"})  # field gone altogether
    assert store.find("candidates", "emails", "kept@x.jp") == []
    store.put("candidates", "c1", candidate("A", "kept@x.jp"))
    store.delete("candidates", "c1")
    assert store.find("candidates", "emails", "kept@x.jp") == []


def test_find_matches_values_as_text(store: Store) -> None:
    store.put("outbox", "o1", {"state": "queued", "message_id": 42})
    assert [d["state"] for d in store.find("outbox", "message_id", "42")] == ["queued"]


def test_below_orders_by_value_and_limits(store: Store) -> None:
    due = ["2025-04-03T00:00Z", "2025-04-01T00:00Z", "2025-04-05T00:00Z", "2025-04-02T00:00Z"]
    for i, at in enumerate(due):
        store.put("followups", f"f{i}", {"due_at": at, "state": "pending"})
    store.put("followups", "none", {"state": "pending"})  # no due time: never due
    got = store.below("followups", "due_at", "2025-04-03T00:00Z")
    assert [d["due_at"] for d in got] == sorted(due)[:3]
    limited = store.below("followups", "due_at", "2025-04-09", limit=2)
    assert [d["due_at"] for d in limited] == sorted(due)[:2]
    assert store.below("followups", "due_at", "2025-03-01") == []
    store.put("followups", "f1", {"due_at": "2025-05-01T00:00Z", "state": "pending"})
    assert len(store.below("followups", "due_at", "2025-04-03T00:00Z")) == 2


def test_below_ties_by_key_and_counts_each_document_once(store: Store) -> None:
    store.put("candidates", "b", candidate("B", "a@x.jp", "b@x.jp"))
    store.put("candidates", "a", candidate("A", "b@x.jp"))
    got = store.below("candidates", "emails", "z")
    assert [d["name"] for d in got] == ["B", "A"]  # B at a@x.jp, then A at b@x.jp


def test_scan_orders_by_key_with_after_and_limit(store: Store) -> None:
    keys = [f"m{i:04d}" for i in range(600)]  # more than one page of a paging engine
    with store.transaction():
        for key in reversed(keys):
            store.put("messages", key, {"message_key": key})
    assert [d["message_key"] for d in store.scan("messages")] == keys
    assert [d["message_key"] for d in store.scan("messages", after="m0297", limit=3)] == [
        "m0298",
        "m0299",
        "m0300",
    ]
    assert [d["message_key"] for d in store.scan("messages", after="m0599")] == []
    assert len(list(store.scan("messages", limit=300))) == 300
    assert list(store.scan("settings")) == []


def test_count(store: Store) -> None:
    assert store.count("candidates") == 0
    for i in range(5):
        store.put("candidates", f"c{i}", {"name": str(i)})
    store.put("candidates", "c0", {"name": "again"})
    store.delete("candidates", "c4")
    assert store.count("candidates") == 4
    assert store.count("messages") == 0


# --- logs -----------------------------------------------------------------------------------------


def test_append_numbers_entries_and_log_reads_after(store: Store) -> None:
    seqs = [store.append("events", {"type": "seen", "n": n}) for n in range(12)]
    assert seqs == list(range(1, 13))
    assert [n for n, _ in store.log("events")] == seqs  # numeric order: 10 after 9
    assert [(n, d["n"]) for n, d in store.log("events", after=10)] == [(11, 10), (12, 11)]
    assert store.get("events", "3") == {"type": "seen", "n": 2}
    assert len(store.find("events", "type", "seen")) == 12
    assert store.count("events") == 12
    assert store.append("ledger", {"event_id": "1"}) == 1  # each log counts on its own


def test_logs_are_append_only(store: Store) -> None:
    store.append("events", {"type": "seen"})
    with pytest.raises(ValueError):
        store.put("events", "1", {"type": "forged"})
    with pytest.raises(ValueError):
        store.delete("events", "1")
    with pytest.raises(ValueError):
        store.append("candidates", {"name": "A"})
    assert list(store.log("events")) == [(1, {"type": "seen"})]


# --- erasure: keys, redaction, scrubbing ---------------------------------------------------------


def test_find_keys_name_what_find_finds(store: Store) -> None:
    store.put("tokens", "tok-b", {"candidate_id": "c1"})
    store.put("tokens", "tok-a", {"candidate_id": "c1"})
    store.put("tokens", "tok-c", {"candidate_id": "c2"})
    assert store.find_keys("tokens", "candidate_id", "c1") == ["tok-a", "tok-b"]
    assert store.find_keys("tokens", "candidate_id", "nobody") == []
    for n in range(11):
        store.append("events", {"candidate_id": "c1" if n in (1, 10) else "c2", "type": "x"})
    assert store.find_keys("events", "candidate_id", "c1") == ["2", "11"]  # plain numbers
    with pytest.raises(KeyError):
        store.find_keys("tokens", "issued_at", "x")  # not indexed


def test_redact_replaces_an_event_in_place_and_only_events(store: Store) -> None:
    for who in ("c1", "c2", "c1"):
        store.append("events", {"candidate_id": who, "type": "merged", "reason": "same email"})
    store.redact("events", 3, {"candidate_id": "c1", "type": "merged"})
    assert [(n, d.get("reason")) for n, d in store.log("events")] == [
        (1, "same email"), (2, "same email"), (3, None)]
    assert store.count("events") == 3
    assert store.find_keys("events", "type", "merged") == ["1", "2", "3"]  # indexes follow
    store.redact("events", 1, {"candidate_id": None, "type": "message_handled"})
    assert store.find_keys("events", "candidate_id", "c1") == ["3"]
    assert store.append("events", {"type": "next"}) == 4  # numbering goes on
    with pytest.raises(KeyError):
        store.redact("events", 99, {"type": "x"})
    store.append("ledger", {"event_id": "e1"})
    for kind in ("ledger", "audit", "candidates"):
        with pytest.raises(ValueError):
            store.redact(kind, 1, {"event_id": "forged"})
    assert store.get("ledger", "1") == {"event_id": "e1"}


def test_redact_inside_a_failed_transaction_is_undone(store: Store) -> None:
    store.append("events", {"candidate_id": "c1", "type": "applied", "position": "営業"})
    with pytest.raises(Boom), store.transaction():
        store.redact("events", 1, {"candidate_id": "c1", "type": "applied"})
        raise Boom
    assert store.get("events", "1") == {"candidate_id": "c1", "type": "applied",
                                        "position": "営業"}


def _bytes_in(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


def test_scrub_leaves_no_byte_of_what_was_deleted_or_redacted(
        store: Store, data_dir: Path, engine: str, request: pytest.FixtureRequest) -> None:
    secret, note = "消去対象 ERASE-ME-4711", "REDACT-ME-0815"
    files = data_dir
    if engine == "postgresql":  # the server's table files, written out by a checkpoint
        server: Postgres = request.getfixturevalue("postgres")
        files = server.data / "base"

        def written() -> bytes:
            with psycopg.connect(server.dsn(), autocommit=True) as conn:
                conn.execute("CHECKPOINT")
            return _bytes_in(files)
    else:
        def written() -> bytes:
            return _bytes_in(files)
    with store.transaction():
        for n in range(300):  # enough pages that deleted ones are reused, not only cut off
            store.put("candidates", f"c{n:03d}", candidate(f"keep {n}", f"k{n}@x.jp"))
        store.put("candidates", "gone", candidate(secret, "erase.me@x.jp"))
        store.append("events", {"candidate_id": "gone", "type": "merged", "reason": note})
    assert secret.encode() in written()
    store.delete("candidates", "gone")
    store.redact("events", 1, {"candidate_id": "gone", "type": "merged"})
    assert store.scrub() is True
    everything = written()
    for needle in (secret, "erase.me@x.jp", note):
        assert needle.encode() not in everything, needle
    assert store.get("candidates", "c123") == candidate("keep 123", "k123@x.jp")
    assert store.find("candidates", "emails", "erase.me@x.jp") == []
    with pytest.raises(StoreError), store.transaction():
        store.scrub()


@pytest.mark.parametrize("engine", FILE_ENGINES)
def test_store_files_are_owner_only_whatever_the_umask(engine: str, data_dir: Path) -> None:
    old = os.umask(0o022)
    try:
        store = open_store(data_dir, engine)
        store.put("candidates", "c1", candidate("A", "a@x.jp"))
        store.append("events", {"type": "x"})
        modes = {p.name: p.stat().st_mode & 0o777 for p in data_dir.iterdir()}
        store.close()
    finally:
        os.umask(old)
    assert modes and set(modes.values()) == {0o600}, modes


# --- transactions ---------------------------------------------------------------------------------


def test_transaction_commits_together(store: Store) -> None:
    with store.transaction():
        store.put("candidates", "c1", candidate("A", "a@x.jp"))
        store.append("events", {"candidate_id": "c1", "type": "created"})
        assert store.get("candidates", "c1") is not None  # a transaction reads its own writes
    assert store.count("candidates") == 1
    assert store.count("events") == 1


def test_transaction_rolls_back_on_exception(store: Store) -> None:
    store.put("candidates", "c0", candidate("Before", "before@x.jp"))
    with pytest.raises(Boom), store.transaction():
        store.put("candidates", "c1", candidate("A", "a@x.jp"))
        store.put("candidates", "c0", candidate("Changed", "changed@x.jp"))
        store.append("events", {"type": "created"})
        raise Boom
    assert store.get("candidates", "c1") is None
    assert store.get("candidates", "c0") == candidate("Before", "before@x.jp")
    assert store.find("candidates", "emails", "changed@x.jp") == []
    assert store.count("events") == 0
    assert store.append("events", {"type": "next"}) == 1


def test_nested_transactions_join_the_outer_one(store: Store) -> None:
    with pytest.raises(Boom), store.transaction():
        with store.transaction():
            store.put("candidates", "c1", {"name": "inner"})
        store.put("candidates", "c2", {"name": "outer"})
        raise Boom
    assert store.count("candidates") == 0  # the inner commit waited for the outer one
    with store.transaction():
        with store.transaction():
            store.put("candidates", "c1", {"name": "inner"})
        store.put("candidates", "c2", {"name": "outer"})
    assert store.count("candidates") == 2


def test_inner_failure_caught_by_outer_undoes_only_the_inner_writes(store: Store) -> None:
    store.put("candidates", "c0", candidate("Zero", "zero@x.jp"))
    with store.transaction():
        store.put("candidates", "c1", {"name": "kept"})
        try:
            with store.transaction():
                store.put("candidates", "c2", {"name": "undone"})
                store.put("candidates", "c0", candidate("Changed", "changed@x.jp"))
                store.delete("candidates", "c1")
                store.append("events", {"type": "undone"})
                raise Boom
        except Boom:
            pass
        store.append("events", {"type": "kept"})
    assert store.get("candidates", "c1") == {"name": "kept"}
    assert store.get("candidates", "c2") is None
    assert store.get("candidates", "c0") == candidate("Zero", "zero@x.jp")
    assert store.find("candidates", "emails", "zero@x.jp") != []
    assert list(store.log("events")) == [(1, {"type": "kept"})]


# --- errors ---------------------------------------------------------------------------------------


def test_unknown_kind_and_field(store: Store) -> None:
    with pytest.raises(KeyError, match="unknown kind"):
        store.put("cats", "c1", {})
    with pytest.raises(KeyError, match="unknown kind"):
        store.get("cats", "c1")
    with pytest.raises(KeyError, match="not indexed"):
        store.find("candidates", "name", "A")
    with pytest.raises(KeyError, match="not indexed"):
        store.below("followups", "created_at", "2025")


def test_unknown_engine_names_the_choices(data_dir: Path) -> None:
    with pytest.raises(UsageError, match="sqlite, tinydb"):
        open_store(data_dir, "mysql")


def test_data_dir_is_private(store: Store, data_dir: Path) -> None:
    assert data_dir.stat().st_mode & 0o777 == 0o700


# --- read-only, reopen, text ----------------------------------------------------------------------


def test_read_only_sees_committed_data_and_refuses_writes(store: Store, opener: Opener) -> None:
    store.put("candidates", "c1", candidate("A", "a@x.jp"))
    reader = opener(read_only=True)
    try:
        assert reader.read_only
        assert reader.get("candidates", "c1") == candidate("A", "a@x.jp")
        with store.transaction():
            store.put("candidates", "c2", candidate("B", "b@x.jp"))
            assert reader.get("candidates", "c2") is None  # not committed yet
        assert reader.get("candidates", "c2") == candidate("B", "b@x.jp")
        assert [d["name"] for d in reader.find("candidates", "emails", "b@x.jp")] == ["B"]
        with pytest.raises(StoreError, match="read-only"):
            reader.put("candidates", "c3", {"name": "C"})
        with pytest.raises(StoreError, match="read-only"):
            reader.delete("candidates", "c1")
        with pytest.raises(StoreError, match="read-only"):
            reader.append("events", {"type": "x"})
        assert store.count("candidates") == 2
    finally:
        reader.close()


def test_read_only_on_a_missing_store_is_an_error(opener: Opener) -> None:
    with pytest.raises(NoStore, match="no store"):
        opener(read_only=True)


def test_japanese_text_round_trips(store: Store, engine: str) -> None:
    doc = {"name": "山田 太郎", "emails": ["taro@例え.jp"], "note": "面接は月曜日 10:00〜"}
    store.put("candidates", "山田", doc)
    assert store.get("candidates", "山田") == doc
    assert store.find("candidates", "emails", "taro@例え.jp") == [doc]
    if engine == "tinydb":
        text = Path(getattr(store, "path")).read_text(encoding="utf-8")  # noqa: B009
        assert "山田 太郎" in text  # readable, not \\u escapes
        json.loads(text)


def test_reopen_after_close_keeps_everything(opener: Opener) -> None:
    first = opener()
    first.put("candidates", "c1", candidate("A", "a@x.jp"))
    first.put("followups", "f1", {"due_at": "2025-04-01", "candidate_id": "c1"})
    first.append("events", {"candidate_id": "c1", "type": "created"})
    first.close()
    second = opener()  # the writer lock was released by close()
    try:
        assert second.get("candidates", "c1") == candidate("A", "a@x.jp")
        assert [d["name"] for d in second.find("candidates", "emails", "a@x.jp")] == ["A"]
        assert second.below("followups", "due_at", "2025-12-31")[0]["candidate_id"] == "c1"
        assert list(second.log("events")) == [(1, {"candidate_id": "c1", "type": "created"})]
        assert second.append("events", {"type": "again"}) == 2
    finally:
        second.close()


@pytest.mark.parametrize("engine", FILE_ENGINES)
def test_another_engines_store_is_not_silently_replaced(engine: str, data_dir: Path) -> None:
    open_store(data_dir, engine).close()
    other = next(name for name in sorted(ENGINES) if name != engine)
    with pytest.raises(StoreError, match="another engine"):
        open_store(data_dir, other)


def test_read_only_opens_a_store_whose_writer_has_closed(opener: Opener, data_dir: Path) -> None:
    writer = opener()
    writer.put("candidates", "c1", {"name": "A"})
    writer.close()
    reader = opener(read_only=True)
    try:
        assert reader.get("candidates", "c1") == {"name": "A"}
        with reader.transaction():  # a read transaction: one snapshot
            assert reader.count("candidates") == 1
    finally:
        reader.close()
    assert sorted(p.name for p in data_dir.iterdir() if p.name.startswith(".")) == []


def test_a_store_file_whose_schema_is_not_written_yet_is_no_store(tmp_path: Path) -> None:
    """A reader racing the first writer (the file made, its schema not yet committed) is told
    there is no store yet, not that the file is foreign."""
    first = sqlite3.connect(tmp_path / "mailflow.sqlite3")
    first.execute("PRAGMA journal_mode=WAL")
    first.close()
    with pytest.raises(NoStore, match="no store"):
        open_store(tmp_path, "sqlite", read_only=True)
    foreign = tmp_path / "other"
    foreign.mkdir()
    connection = sqlite3.connect(foreign / "mailflow.sqlite3")
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    connection.close()
    with pytest.raises(StoreError, match="not a mailflow store") as raised:
        open_store(foreign, "sqlite", read_only=True)
    assert not isinstance(raised.value, NoStore)


# --- shared queues: claims and named locks ------------------------------------------------------

def outbox_item(key: str, state: str, next_at: str = "") -> dict[str, object]:
    return {"id": key, "state": state, "next_at": next_at}


def test_a_claim_takes_the_matching_documents_and_writes_the_claim_into_them(
        store: Store, opener: Opener) -> None:
    for key, state in [("o1", "queued"), ("o2", "sent"), ("o3", "queued"), ("o4", "queued")]:
        store.put("outbox", key, outbox_item(key, state))
    claimed = store.claim("outbox", "state", "queued", limit=2, now="2026-12-02T10:00:00Z")
    assert [d["id"] for d in claimed] == ["o1", "o3"]
    holder = claimed[0]["claimed_by"]
    assert holder and all(d["claimed_by"] == holder for d in claimed)
    stored = store.get("outbox", "o1")
    assert stored is not None
    assert (stored["claimed_by"], stored["claimed_at"]) == (holder, "2026-12-02T10:00:00Z")
    assert "claimed_by" not in (store.get("outbox", "o2") or {})
    # a holder's own claims are its own again (after its restart too); the index still holds
    again = store.claim("outbox", "state", "queued", limit=10)
    assert [d["id"] for d in again] == ["o1", "o3", "o4"]
    assert (store.get("outbox", "o1") or {})["claimed_at"] == "2026-12-02T10:00:00Z"  # kept
    assert [d["id"] for d in store.find("outbox", "state", "queued")] == ["o1", "o3", "o4"]
    assert store.claim("outbox", "state", "queued", limit=0) == []


def test_a_claim_up_to_a_bound_is_ascending_by_that_field(store: Store) -> None:
    for key, due in [("f1", "2026-12-03"), ("f2", "2026-12-01"), ("f3", "2026-12-02")]:
        store.put("followups", key, {"id": key, "due_at": due, "state": "planned"})
    claimed = store.claim("followups", "due_at", "2026-12-02", up_to=True, limit=5)
    assert [d["id"] for d in claimed] == ["f2", "f3"]


def test_only_queue_kinds_are_claimed_and_locks_are_taken_in_a_transaction(store: Store) -> None:
    with pytest.raises(ValueError, match="not claimed"):
        store.claim("candidates", "emails", "a@example.com")
    with pytest.raises(KeyError, match="not indexed"):
        store.claim("outbox", "next_at", "x")
    with store.transaction():
        store.lock_until_commit("ledger_head")
        store.put("outbox", "o1", outbox_item("o1", "queued"))
    assert store.get("outbox", "o1") is not None


def test_a_read_only_store_claims_nothing(store: Store, opener: Opener) -> None:
    store.put("outbox", "o1", outbox_item("o1", "queued"))
    store.close()
    reader = opener(read_only=True)
    try:
        with pytest.raises(StoreError, match="read-only"):
            reader.claim("outbox", "state", "queued")
    finally:
        reader.close()
