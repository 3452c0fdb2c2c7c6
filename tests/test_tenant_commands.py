"""Issue 23's must-hold: a command run for company A never returns company B's candidates. Two
companies share one PostgreSQL schema; every read command and export of the COMMANDS table runs
with A's config, and none of B's names, emails or phones may appear. A command added to the table
must be listed here, as a read (with its invocations) or as what it is instead."""

from __future__ import annotations

import os
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

from harness import MAILFLOW, offline_config
from postgres_server import Postgres

from mailflow.cli import COMMANDS
from mailflow.clock import FrozenClock, iso
from mailflow.outgoing.outbox import Outbox
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.relay.desk import RejectionFacts, RelayDesk
from mailflow.relay.ledger import ReferralLedger
from mailflow.settings.config import load_config
from mailflow.store import configured_store

DSN_ENV = "MAILFLOW_STORE_DSN"
ONE = "{one}"  # stands for one of A's candidates' ids
READS: dict[str, list[list[str]]] = {
    "candidates": [["candidates", "--json"], ["candidates", "--search", "Beta"]],
    "candidate": [["candidate", "show", ONE, "--json"]],
    "export": [["export", "--anonymized", "--json"], ["export", "--anonymized", "--csv"]],
    "export-person": [],  # below: B's email from A's config finds nobody
    "ledger": [["ledger", "--json"], ["ledger", "history"], ["ledger", "export", "--csv"]],
    "outbox": [["outbox", "--json", "--all"]],
    "pool": [["pool", "check"]],
    "provisions": [["provisions", "--json"]],
    "quarantine": [["quarantine", "list"]],
    "report": [["report", "--json"], ["report", "--csv"]],
    "opening": [["opening", "list"]],
}
NOT_READS = {  # what each other command is, so a new one cannot slip through
    "auth": "OAuth tokens, no store", "backfill": "writes from a mailbox",
    "check": "config only", "consent": "a write", "demo": "its own store",
    "erase": "a write", "explain": "one mail, no pool", "import": "a write",
    "init": "files only", "network": "the network pool (tests/test_network_pool.py)",
    "purge": "a write", "store": "migrate: a write", "tag": "a write", "intent": "a write",
    "rewrite": "one mail, no pool", "rules": "rule files", "run": "the daemon",
}


def _company(root: Path, dsn: str, company: str, people: list[str]) -> tuple[Path, list[str]]:
    directory = root / company
    directory.mkdir()
    config = offline_config(directory)
    text = config.read_text(encoding="utf-8").replace(
        '[store]\npath = "data"', f'[store]\npath = "data"\nengine = "postgresql"\n'
        f'dsn_env = "{DSN_ENV}"')
    config.write_text(text + f'\n[company]\nid = "{company}"\n', encoding="utf-8")
    os.environ[DSN_ENV] = dsn
    loaded = load_config(config)
    store = configured_store(loaded)
    identities, ids = [], []
    try:
        clock = FrozenClock(datetime(2026, 11, 1, tzinfo=UTC))
        pool = TalentPool(store, clock)
        ledger = ReferralLedger.from_config(store, clock, loaded)
        outbox = Outbox(store, clock, loaded, threading.RLock())
        for number, person in enumerate(people):
            email = f"{person.split()[1].lower()}.{company}@example.jp"
            phone = f"090-{7000 + number:04d}-{sum(map(ord, company)):04d}"
            candidate, _ = pool.apply(
                Applicant(person, email, (phone,), "経理", f"{person}です。", "indeed"),
                f"<{company}{number}@mail.example.jp>",
                iso(datetime(2026, 10, 1 + number, tzinfo=UTC)))
            pool.record_consent({"candidate": candidate["id"], "purpose": "network",
                                 "word": "grant", "how": "同意ページ"})
            ids.append(candidate["id"])
            identities += [person, *person.split(), email, email.partition("@")[0], phone]
            # the rest of a company's data: an invitation and its credit, a mail in the outbox
            invite = RelayDesk(store, clock, "https://relay.example.jp").issue(
                candidate, RejectionFacts("経験不足"))
            ledger.credit_registration(candidate["id"], invite.relay_ref,
                                       f"evt-{company}-{number}", iso(clock.now()))
            outbox.queue(f"To: {email}\r\nSubject: {person}\r\n\r\n{person}\r\n".encode(),
                         to=[email], purpose="mail", candidate_id=candidate["id"])
            identities += [candidate["id"], invite.relay_ref, invite.token,
                           f"evt-{company}-{number}"]
    finally:
        store.close()
    return config, identities


def test_no_read_command_of_company_a_shows_company_b(postgres: Postgres, tmp_path: Path) -> None:
    assert set(COMMANDS) == set(READS) | set(NOT_READS), "list the new command here"
    dsn = postgres.schema()
    saved = os.environ.get(DSN_ENV)
    try:
        a, _ = _company(tmp_path, dsn, "acme", ["Acme Taro", "Acme Jiro"])
        _, b_identities = _company(tmp_path, dsn, "beta", ["Betaname Hanako", "Betaname Yuki"])
    finally:
        if saved is None:
            os.environ.pop(DSN_ENV, None)
        else:
            os.environ[DSN_ENV] = saved
    env = {**os.environ, DSN_ENV: dsn}

    def run(*argv: str) -> str:
        done = subprocess.run([*MAILFLOW, *argv, "-c", str(a)], capture_output=True, text=True,
                              timeout=120, env=env)
        assert done.returncode in (0, 1), (argv, done.stderr)
        return done.stdout + done.stderr

    listed = run("candidates", "--json")
    assert "Acme Taro" in listed  # A's own are there: the check below can fail
    one = next(w.strip('",') for w in listed.split() if w.strip('",').startswith("c"))
    outputs = {" ".join(argv): run(*[one if x == ONE else x for x in argv])
               for invocations in READS.values() for argv in invocations}
    folder = tmp_path / "person"
    outputs["export-person"] = run("export-person", b_identities[3], str(folder))
    if folder.exists():
        outputs["export-person"] += " ".join(p.read_text(errors="replace")
                                             for p in folder.rglob("*") if p.is_file())
    # A's own are there, so the checks below can fail
    assert "evt-acme-0" in outputs["ledger history"]
    assert ".acme@example.jp" in outputs["outbox --json --all"]
    asked = {b_identities[3], b_identities[4]}  # export-person may repeat what it was asked
    leaks = {cmd: [i for i in b_identities if i in out and not (
        cmd == "export-person" and i in asked)] for cmd, out in outputs.items()}
    assert {cmd: found for cmd, found in leaks.items() if found} == {}

