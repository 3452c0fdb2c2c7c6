"""Issue 21: hostile mail. A multipart nested a thousand levels deep was dropped as "not an
application (no-sender)" and marked handled; now it is unreadable, said why, and quarantined at
once for an admin to see."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import PASSWORD_ENV, DaemonThread, wait_until, write_config
from servers import Dovecot, ImapAccount

from mailflow.mail.parse import parse_mail
from mailflow.mail.parse.mime import MAX_DEPTH


def nested(depth: int, to: str = "jobs@example.co.jp") -> bytes:
    head = (f"From: Attacker <attacker@example.net>\r\nTo: {to}\r\nSubject: nest\r\n"
            "Message-ID: <nest@example.net>\r\nMIME-Version: 1.0\r\n")
    lines = [head + 'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n']
    for level in range(1, depth):
        lines.append(f'--b{level - 1}\r\nContent-Type: multipart/mixed; boundary="b{level}"'
                     "\r\n\r\n")
    lines.append(f"--b{depth - 1}\r\nContent-Type: text/plain\r\n\r\n応募いたします。\r\n")
    for level in reversed(range(depth)):
        lines.append(f"--b{level}--\r\n")
    return "".join(lines).encode()


@pytest.mark.parametrize("depth", [1000, MAX_DEPTH + 5])
def test_a_mail_nested_too_deep_is_unreadable_and_says_why(depth: int) -> None:
    mail = parse_mail(nested(depth))
    assert mail.unreadable == f"MIME parts nested deeper than {MAX_DEPTH} levels"


def test_ordinary_nesting_reads() -> None:
    mail = parse_mail(nested(8))
    assert mail.unreadable == "" and "応募いたします" in mail.text
    assert mail.from_[0].email == "attacker@example.net"


def test_a_mail_nested_too_deep_is_quarantined_at_once_not_dropped(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    config = write_config(tmp_path, imap_account)
    with DaemonThread(config) as running:
        dovecot.append(imap_account.username, "INBOX", nested(1000, imap_account.address))
        store = running.daemon.store

        def quarantined() -> list[dict]:
            with running.daemon.lane:
                return [d for d in store.scan("quarantine") if d["state"] == "quarantined"]

        (item,) = wait_until(quarantined, what="the deep mail quarantined")
        with running.daemon.lane:
            handled = [e for _s, e in store.log("events") if e["type"] == "message_handled"]
            assert store.count("candidates") == 0
    assert "nested deeper than" in item["reason"] and item["role"] == "inbox"
    assert handled == []  # not marked handled: replay can take it up again
