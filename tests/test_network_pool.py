"""Issue 23 part 5 (the seeds' case D): the network pool on a real PostgreSQL, through the real
CLI. Two companies that opted in publish; each sees the other's entries and nothing that
identifies anyone (the JSON and the raw rows of the network's schema); the stage flow 推薦 →
紹介 → 採用 across them, with only the entitled company moving each stage; a withdrawal of
consent and an erasure take an entry out; a company that did not opt in sees and publishes
nothing."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for, offline_config
from postgres_server import Postgres
from servers import ImapAccount
from test_callbacks import LEDGER_KEY, SECRET
from test_callbacks import cli as relay_cli
from test_callbacks import write_config as relay_config

from mailflow.clock import FrozenClock, iso
from mailflow.network.scope import NETWORK_SCOPE
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import load_config
from mailflow.store import open_store
from mailflow.store.postgresql import LOCK_WAIT_SECONDS, PostgresStore

NETWORK_ENV = "MAILFLOW_NETWORK_DSN"


@dataclass
class Company:
    name: str
    config: Path
    ids: list[str]  # candidate ids, in seeding order
    identities: list[str]  # every name, email, phone and id of its candidates

    def run(self, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*MAILFLOW, "network", *args, "-c", str(self.config)],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, NETWORK_ENV: dsn})

    def json(self, dsn: str, *args: str) -> Any:
        done = self.run(dsn, *args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def _company(root: Path, name: str, people: list[tuple[str, bool]], publish: bool = True,
             network_id: str = "d-network") -> Company:
    directory = root / name
    directory.mkdir()
    config = offline_config(directory)
    with config.open("a", encoding="utf-8") as out:
        out.write(f'\n[network]\nid = "{network_id}"\ncompany = "{name}"\n'
                  f'publish = {"true" if publish else "false"}\n')
    store = open_store(load_config(config).data_dir)
    ids, identities = [], []
    try:
        pool = TalentPool(store, FrozenClock(datetime(2026, 11, 1, tzinfo=UTC)))
        for number, (person, consented) in enumerate(people):
            email = f"{person.split()[1].lower()}.{name}{number}@example.jp"
            phone = f"090-{4000 + number:04d}-{len(name) * 111:04d}"
            candidate, _ = pool.apply(
                Applicant(person, email, (phone,), "経理", f"{person}です。簿記2級を持っています。",
                          "indeed"), f"<{name}{number}@mail.example.jp>",
                iso(datetime(2026, 10, 1 + number, tzinfo=UTC)))
            candidate["skills"] = ["簿記", "Excel"]
            pool.save(candidate)
            if consented:
                pool.record_consent({"candidate": candidate["id"], "purpose": "network",
                                     "word": "grant", "how": "同意ページ"})
            ids.append(candidate["id"])
            identities += [person, person.replace(" ", ""), *person.split(), email,
                           email.partition("@")[0], phone, phone.replace("-", ""),
                           candidate["id"]]
    finally:
        store.close()
    return Company(name, config, ids, identities)


def _raw(dsn: str) -> str:
    """Everything the network's schema holds, as text: documents and index rows."""
    with psycopg.connect(dsn) as conn:  # row-level security: the network's scope
        conn.execute("SELECT set_config('mailflow.company', 'network', false)")
        docs = conn.execute("SELECT kind, key, doc FROM mf_docs").fetchall()
        index = conn.execute("SELECT kind, field, value, key FROM mf_idx").fetchall()
    return json.dumps([docs, index], ensure_ascii=False)


def _assert_none_of(text: str, identities: list[str]) -> None:
    folded = text.casefold()
    for value in identities:
        assert value.casefold() not in folded, value


@pytest.fixture
def network(postgres: Postgres, tmp_path: Path) -> tuple[str, Company, Company, Company]:
    dsn = postgres.schema()
    a = _company(tmp_path, "client-a", [("山田 花子", True), ("佐藤 健太", True),
                                        ("鈴木 一郎", False)])
    b = _company(tmp_path, "client-b", [("高橋 美咲", True), ("田中 翔太", False)])
    c = _company(tmp_path, "client-c", [("伊藤 陽菜", True)], publish=False)
    return dsn, a, b, c


def test_two_companies_see_each_others_entries_and_no_identities(
        network: tuple[str, Company, Company, Company]) -> None:
    dsn, a, b, c = network
    assert a.json(dsn, "publish") == {"network": "d-network", "company": "client-a",
                                      "published": 2, "updated": 0, "unchanged": 0,
                                      "withdrawn": 0, "left_out": 1}
    assert b.json(dsn, "publish")["published"] == 1
    assert a.json(dsn, "publish")["unchanged"] == 2  # idempotent
    seen_by_b, seen_by_a = b.json(dsn, "list"), a.json(dsn, "list")
    assert [e["company"] for e in seen_by_b] == ["client-a", "client-a"]
    assert [e["company"] for e in seen_by_a] == ["client-b"]
    for entry in (*seen_by_a, *seen_by_b):
        assert entry["skills"] == ["Excel", "簿記"] and entry["desired_role"] == "経理"
        assert entry["entry"] not in (*a.ids, *b.ids)
    _assert_none_of(json.dumps(seen_by_b, ensure_ascii=False), a.identities + b.identities)
    _assert_none_of(json.dumps(seen_by_a, ensure_ascii=False), a.identities + b.identities)
    _assert_none_of(_raw(dsn), a.identities + b.identities + c.identities)
    # the company that did not opt in: sees nothing, publishes nothing
    for args in (("list", "--json"), ("publish",), ("status", "--json")):
        done = c.run(dsn, *args)
        assert done.returncode == 1 and done.stdout == ""
        assert "not opted in" in done.stderr
    assert "client-c" not in _raw(dsn)


def test_the_stage_flow_across_companies(
        network: tuple[str, Company, Company, Company]) -> None:
    dsn, a, b, _ = network
    a.json(dsn, "publish")
    b.json(dsn, "publish")
    entry = b.json(dsn, "list")[0]["entry"]
    mine = {row["entry"]: row["candidate_id"] for row in a.json(dsn, "status")}
    assert set(mine.values()) == set(a.ids[:2])  # the publisher knows whom each entry is
    refused = b.run(dsn, "introduce", entry)
    assert refused.returncode == 1 and "only client-a" in refused.stderr
    assert b.run(dsn, "hire", entry).returncode == 1  # not introduced yet
    assert b.json(dsn, "recommend", entry, "--to", "client-b")["appended"] is True
    assert b.json(dsn, "recommend", entry, "--to", "client-b")["appended"] is False
    [asked] = [r for r in a.json(dsn, "status") if r["entry"] == entry]
    assert (asked["stage"], asked["company"], asked["candidate_id"]) == (
        "推薦", "client-b", mine[entry])
    assert a.json(dsn, "introduce", entry)["to"] == "client-b"
    assert b.json(dsn, "hire", entry)["stage"] == "採用"
    assert b.json(dsn, "hire", entry)["appended"] is False
    [seen] = [r for r in b.json(dsn, "status") if r["entry"] == entry]
    assert seen["stage"] == "採用" and "candidate_id" not in seen
    assert set(seen["at"]) == {"推薦", "紹介", "採用"}
    [done] = [r for r in a.json(dsn, "status") if r["entry"] == entry]
    assert done["stage"] == "採用" and done["candidate_id"] == mine[entry]
    shown = a.run(dsn, "status")  # the human form: one line each, the counts on stderr
    assert shown.returncode == 0 and f"{entry}  client-a → client-b  採用" in shown.stdout
    assert mine[entry] in shown.stdout and "reached: 1 推薦, 1 紹介, 1 採用" in shown.stderr
    _assert_none_of(json.dumps(b.json(dsn, "status"), ensure_ascii=False), a.identities)
    _assert_none_of(_raw(dsn), a.identities + b.identities)


def _consent(company: Company, candidate_id: str, word: str) -> None:
    done = subprocess.run([*MAILFLOW, "consent", candidate_id, "network", word, "--how",
                           "メール返信", "-c", str(company.config)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_withdrawal_and_erasure_take_the_entry_out(
        network: tuple[str, Company, Company, Company]) -> None:
    dsn, a, b, _ = network
    a.json(dsn, "publish")
    status = {row["candidate_id"]: row["entry"] for row in a.json(dsn, "status")}
    _consent(a, a.ids[0], "withdraw")
    assert a.json(dsn, "publish")["withdrawn"] == 1
    listed = [e["entry"] for e in b.json(dsn, "list")]
    assert listed == [status[a.ids[1]]]
    assert status[a.ids[0]] not in _raw(dsn)
    erased = subprocess.run([*MAILFLOW, "erase", a.ids[1], "--reason", "本人の請求", "-c",
                             str(a.config)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, NETWORK_ENV: dsn})
    assert erased.returncode == 0 and "warning" not in erased.stderr, erased.stderr
    assert b.json(dsn, "list") == []  # the erasure withdrew the entry at once
    assert a.json(dsn, "status") == []
    assert a.json(dsn, "publish")["withdrawn"] == 0
    assert status[a.ids[1]] not in _raw(dsn)
    _consent(a, a.ids[2], "grant")  # a new grant: a new entry, not an old one
    a.json(dsn, "publish")
    [fresh] = b.json(dsn, "list")
    assert fresh["entry"] not in status.values()


def _wait_for_session(dsn: str, name: str, process: subprocess.Popen[str]) -> None:
    """Until `process` has a session named `name` on the server (it tries the writer's lock)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not conn.execute("SELECT 1 FROM pg_stat_activity WHERE application_name = %s",
                               (name,)).fetchone():
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.05)


def test_two_members_writing_at_once_take_turns(
        network: tuple[str, Company, Company, Company]) -> None:
    """A member writing holds the pool; another's publish waits for it instead of failing."""
    dsn, a, b, _ = network
    holder = PostgresStore(dsn, company=NETWORK_SCOPE)  # as a member in the middle of its publish
    env = {**os.environ, NETWORK_ENV: f"{dsn} application_name=mf-waiting"}
    waiting = subprocess.Popen([*MAILFLOW, "network", "publish", "--json", "-c", str(b.config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _wait_for_session(dsn, "mf-waiting", waiting)
        time.sleep(LOCK_WAIT_SECONDS + 1.5)  # the engine alone gives up after its few seconds
        assert waiting.poll() is None, waiting.communicate()[1]  # still waiting its turn
    finally:
        holder.close()
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert json.loads(out)["published"] == 1
    assert a.json(dsn, "publish")["published"] == 2
    assert len(b.json(dsn, "list")) == 2


def test_publish_while_the_daemon_runs_goes_through_it(
        postgres: Postgres, tmp_path: Path, imap_account: ImapAccount,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With the daemon running, `network publish` changes the company's entry map through the
    control channel (the daemon is the one writer of the company's store)."""
    dsn = postgres.schema()
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    monkeypatch.setenv("MAILFLOW_RELAY_SECRET", SECRET)
    monkeypatch.setenv("MAILFLOW_LEDGER_KEY", LEDGER_KEY)
    monkeypatch.setenv(NETWORK_ENV, dsn)
    config, _ = relay_config(tmp_path, imap_account, extra=(
        '\n[network]\nid = "d-network"\ncompany = "client-a"\npublish = true\n'))
    store = open_store(load_config(config).data_dir)
    try:
        pool = TalentPool(store, FrozenClock(datetime(2026, 11, 1, tzinfo=UTC)))
        applicant = Applicant("山田 花子", "hanako@example.jp", (), "経理", "", "indeed")
        candidate, _ = pool.apply(applicant, "<a@mail.example.jp>",
                                  "2026-10-01T00:00:00.000000Z")
        pool.record_consent({"candidate": candidate["id"], "purpose": "network",
                             "word": "grant", "how": "同意ページ"})
    finally:
        store.close()
    env = {**env_for(imap_account), NETWORK_ENV: dsn}
    with DaemonThread(config) as running:
        done = relay_cli(config, env, "network", "publish", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["published"] == 1
        [link] = running.daemon.store.find("network_links", "candidate_id", candidate["id"])
        [entry] = [doc for _, doc in running.daemon.store.log("audit")
                   if doc["action"] == "network-publish"]
        assert entry["detail"]["published"] == 1
        status = relay_cli(config, env, "network", "status", "--json")
        assert status.returncode == 0, status.stderr
        assert [(r["entry"], r["candidate_id"]) for r in json.loads(status.stdout)] == [
            (link["entry"], candidate["id"])]


def test_a_member_of_another_network_is_refused(
        network: tuple[str, Company, Company, Company], tmp_path: Path) -> None:
    dsn, a, _, _ = network
    a.json(dsn, "publish")
    other = _company(tmp_path, "client-x", [("渡辺 結衣", True)], network_id="e-network")
    for args in (("publish",), ("list",)):
        done = other.run(dsn, *args)
        assert done.returncode == 1 and "is network 'd-network', not 'e-network'" in done.stderr
    assert "client-x" not in _raw(dsn)
