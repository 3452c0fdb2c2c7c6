"""Issue 15: `mailflow explain` says what the running daemon then does, and changes nothing.

Each mail is explained against the store as it is (read-only, while the daemon runs), then put
into the folder the daemon watches; what the daemon did must be what the plan said."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from corpus import files as corpus_files
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for, wait_until, write_config
from servers import Dovecot, ImapAccount
from test_drafts import drafts, rewritten
from test_rejection_set import labelled

from mailflow.cli.explain import explain_mail
from mailflow.demo import samples
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import load_config
from mailflow.store import open_store
from mailflow.store.base import INDEXES, LOGS


@pytest.fixture
def env(imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    return env_for(imap_account)


def snapshot(root: Path) -> dict[str, Any]:
    """Every document of every kind, and every other file's bytes (SQLite's own -wal/-shm
    files come and go with any reader)."""
    store = open_store(root, "sqlite", read_only=True)
    try:
        kinds = {kind: list(store.scan(kind)) for kind in INDEXES if kind not in LOGS}
        logs = {kind: list(store.log(kind)) for kind in LOGS}
    finally:
        store.close()
    files = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
             if p.is_file() and not p.name.startswith(("mailflow.sqlite3", "writer.lock"))}
    return {"kinds": kinds, "logs": logs, "files": files}


def _pool_facts(running: DaemonThread) -> dict[str, Any]:
    store = running.daemon.store
    with running.daemon.lane:
        candidates = {c["id"]: c for c in store.scan("candidates")}
    return {cid: (len(c["applications"]), len(c.get("message_ids") or []),
                  [s["stage"] for s in c["stages"]]) for cid, c in candidates.items()}


def _check_inbox(plan: dict[str, Any], before: dict[str, Any], after: dict[str, Any],
                 running: DaemonThread) -> None:
    changed = {cid for cid in after if after[cid] != before.get(cid)}
    if plan["kind"] == "ignored":
        assert changed == set(), plan
        return
    if plan["kind"] == "reply":
        assert changed <= {plan["candidate_id"]}
        return
    if plan["candidate_id"] is None:
        (new,) = set(after) - set(before)
        email = plan["applicant"]["email"]
        assert email in running.daemon.store.get("candidates", new)["emails"], plan
        target = new
    else:
        assert set(after) == set(before)
        target = plan["candidate_id"]
        assert after[target][0] == before[target][0] + 1, plan
    stage = plan["stage"]
    if stage is not None:
        assert (stage["stage"] in after[target][2]) is stage["counts"], plan
    assert changed == {target}, plan


def crafted(account: ImapAccount) -> list[bytes]:
    mine = [raw.replace(samples.RECRUITING.encode(), account.address.encode())
            for _name, raw in samples.applications()]
    again = mine[0].replace(b"Message-ID: <", b"Message-ID: <again.")
    forged = (f"From: {account.address}\r\nTo: {account.address}\r\nSubject: Re: 応募\r\n"
              f"Message-ID: <forged@example.net>\r\nMIME-Version: 1.0\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n\r\n#mailflow stage=内定\r\n").encode()
    return [*mine, again, forged]


def test_explain_in_inbox_predicts_what_the_daemon_does(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, env: dict[str, str]) -> None:
    config_path = write_config(tmp_path, imap_account)
    config = load_config(config_path)
    mails = [*crafted(imap_account), *(p.read_bytes() for p in corpus_files())]
    with DaemonThread(config_path) as running:
        for raw in mails:
            plan = explain_mail(config, raw, "inbox")
            before, handled = _pool_facts(running), sum(running.handled().values())
            dovecot.append(imap_account.username, "INBOX", raw)
            wait_until(lambda h=handled: sum(running.handled().values()) > h,
                       what="the mail handled", timeout=20)
            _check_inbox(plan, before, _pool_facts(running), running)
    kinds = {explain_mail(config, raw, "inbox")["kind"] for raw in mails}
    assert kinds == {"application", "ignored"}


def test_explain_in_drafts_predicts_the_rewrite(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, env: dict[str, str],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mailflow.drafts")
    config_path = write_config(tmp_path, imap_account, extra="[rejection]\nquiet_seconds = 0\n")
    config = load_config(config_path)
    chosen = [m for m in labelled() if m.set == "holdout"][:8] + [
        m for m in labelled() if m.set == "holdout" and m.expect == "not_rejection"][:4]
    with DaemonThread(config_path) as running:
        daemon = running.daemon
        with daemon.lane:
            pool = TalentPool(daemon.store, daemon.clock)
            for mail in chosen:
                pool.apply(Applicant("", mail.candidate, (), "", "", "direct"), mail.thread)
        for mail in chosen:
            plan = explain_mail(config, mail.raw, "drafts")
            left = len([r for r in caplog.records if "left alone" in r.getMessage()])
            done = len(rewritten(drafts(dovecot, imap_account)))
            dovecot.append(imap_account.username, "Drafts", mail.raw, flags=[b"\\Draft"])
            if plan["outcome"] == "rewritten":
                wait_until(lambda d=done: len(rewritten(drafts(dovecot, imap_account))) > d,
                           what=f"the rewrite of {mail.file}", timeout=20)
            else:
                wait_until(lambda n=left: len([r for r in caplog.records
                                                if "left alone" in r.getMessage()]) > n,
                           what=f"{mail.file} left alone", timeout=20)
                assert len(rewritten(drafts(dovecot, imap_account))) == done
            assert (plan["outcome"] == "rewritten") is (mail.expect == "rejection"), mail.file


def test_explain_touches_nothing(tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
                                 env: dict[str, str]) -> None:
    config_path = write_config(tmp_path, imap_account)
    with DaemonThread(config_path) as running, running.daemon.lane:
        TalentPool(running.daemon.store, running.daemon.clock).apply(
            Applicant("山田", "misaki.takahashi@example.com", (), "", "", "direct"), None)
    data = tmp_path / "data"
    before = snapshot(data)
    draft = Path(__file__).parent / "rejections" / "tune" / "r003.eml"  # to that candidate
    for folder in ("inbox", "sent", "drafts", "outbox"):
        done = subprocess.run([*MAILFLOW, "explain", str(draft), "--folder", folder, "--json",
                               "-c", str(config_path)], capture_output=True, text=True, env=env,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["folder"] == folder and report["effects"]
        if folder in ("drafts", "outbox"):
            assert report["outcome"] == "rewritten"
            assert report["decision"]["verdict"] == "rejection"
        if folder == "sent":
            assert report["action"] == "invite"
    time.sleep(0.2)
    assert snapshot(data) == before
