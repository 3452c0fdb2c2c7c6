"""Issue 20 part 1, end to end: the daemon against a real Dovecot takes an application with a
Word résumé and ends with its skills on the candidate; HR's `#mailflow skills=` line in a mail
sent from the recruiting mailbox then replaces them, and `candidate set` goes through the daemon."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for, wait_until, write_config
from servers import Dovecot, ImapAccount
from test_profile import DOCX, application, docx_resume


def _candidate(running: DaemonThread, email: str) -> dict | None:
    found = running.daemon.store.find("candidates", "emails", email)
    return found[0] if found else None


def test_an_application_with_a_docx_resume_ends_with_its_skills(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    config = write_config(tmp_path, imap_account)
    raw = application("採用ご担当者様\n\nエンジニア職に応募いたします。\n山田 太郎\n",
                      [("職務経歴書_山田.docx", DOCX, docx_resume())])
    raw = raw.replace(b"jobs@example.co.jp", imap_account.address.encode())
    with DaemonThread(config) as running:
        dovecot.append(imap_account.username, "INBOX", raw)
        candidate = wait_until(lambda: (c := _candidate(running, "taro@example.net"))
                               and c.get("skills") and c, what="the candidate's skills")
        assert candidate["skills"] == ["Java", "Kubernetes"]
        assert candidate["qualifications"] == ["応用情報技術者", "普通自動車第一種運転免許"]
        assert candidate["desired_role"] == "インフラエンジニア"
        assert {p["source"] for p in candidate["provenance"]} == {
            "attachment:職務経歴書_山田.docx"}
        assert candidate["documents"][0]["filename"] == "職務経歴書_山田.docx"
        sent = ("From: " + imap_account.address + "\r\nTo: taro@example.net\r\n"
                "Subject: =?UTF-8?B?6Z2i5o6l44Gu44GU5qGI5YaF?=\r\n"
                "Message-ID: <hr-skills-1@example.co.jp>\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
                "\r\n山田様\r\n#mailflow skills=java,Go\r\n面接のご案内です。\r\n").encode()
        dovecot.append(imap_account.username, "Sent", sent)
        corrected = wait_until(lambda: (c := _candidate(running, "taro@example.net"))
                               and c["skills"] == ["Java", "Go"] and c,
                               what="HR's skills from the Sent mail")
        assert [p["source"] for p in corrected["provenance"] if p["field"] == "skills"] == [
            "hr", "hr"]
        # `candidate set` while the daemon runs: carried out by it, through the control channel
        done = subprocess.run([*MAILFLOW, "candidate", "set", "taro@example.net",
                               "qualifications", "簿記2級", "-c", str(config)],
                              capture_output=True, text=True, timeout=60,
                              env=env_for(imap_account))
        assert done.returncode == 0, done.stderr
        assert _candidate(running, "taro@example.net")["qualifications"] == ["日商簿記2級"]
