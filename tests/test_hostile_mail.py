"""Issue 21: hostile mail. A multipart nested a thousand levels deep was dropped as "not an
application (no-sender)" and marked handled; now it is unreadable, said why, and quarantined at
once for an admin to see."""

from __future__ import annotations

import base64
import email
import email.policy
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, wait_until, write_config
from servers import Dovecot, ImapAccount, SmtpSink

from mailflow.clock import FrozenClock
from mailflow.errors import UsageError
from mailflow.intake import importer
from mailflow.intake.importer import import_file
from mailflow.mail.parse import parse_mail
from mailflow.mail.parse.mime import MAX_DEPTH
from mailflow.pool.talent import TalentPool, new_candidate
from mailflow.store import open_store

TOKYO = ZoneInfo("Asia/Tokyo")


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


def _encoded(text: str) -> str:
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


HOSTILE_NAME = "悪意 太郎\r\nBcc: victim@example.org"
HOSTILE_SUBJECT = "応募\r\nBcc: x@example.org"


def hostile_application(to: str, message_id: str) -> bytes:
    return (f"From: {_encoded(HOSTILE_NAME)} <evil@example.net>\r\nTo: {to}\r\n"
            f"Subject: {_encoded(HOSTILE_SUBJECT)}\r\n"
            f"Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "採用ご担当者様\r\n応募いたします。\r\n").encode()


def test_a_line_break_encoded_in_a_name_or_subject_is_one_line_at_the_door() -> None:
    mail = parse_mail(hostile_application("jobs@example.co.jp", "h1@example.net"))
    assert mail.from_[0].name == "悪意 太郎 Bcc: victim@example.org"
    assert mail.subject == "応募 Bcc: x@example.org"
    assert not any(c in mail.from_[0].name + mail.subject for c in "\r\n\x00")


def test_a_candidate_whose_name_carried_a_line_break_can_reapply_and_hr_is_told(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, smtp_sink: SmtpSink,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The finding: the re-application notice's Subject raised ValueError, the application was
    retried, quarantined, and lost."""
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    config = write_config(tmp_path, imap_account, smtp_sink)
    with DaemonThread(config) as running:
        store = running.daemon.store
        dovecot.append(imap_account.username, "INBOX",
                       hostile_application(imap_account.address, "h1@example.net"))
        (found,) = wait_until(lambda: store.find("candidates", "emails", "evil@example.net"),
                              what="the candidate")
        with running.daemon.lane:
            TalentPool(store, running.daemon.clock).record_rejection(
                found, "スキル不足", "一次面接", True, None)
        dovecot.append(imap_account.username, "INBOX",
                       hostile_application(imap_account.address, "h2@example.net"))
        notice = smtp_sink.wait_for(1, timeout=30)[0]
        with running.daemon.lane:
            again = store.get("candidates", found["id"])
            assert list(store.scan("quarantine")) == []
    assert again is not None and again["reapplied"] is True
    assert "\n" not in again["name"] and "\r" not in again["name"]
    message = email.message_from_bytes(notice.data, policy=email.policy.default)
    assert message["Bcc"] is None and notice.rcpt_tos == (imap_account.address,)
    assert "再応募" in message["Subject"]


def test_an_imported_name_with_a_line_break_is_stored_on_one_line(tmp_path: Path) -> None:
    rows = tmp_path / "list.csv"
    rows.write_text('氏名,メールアドレス\n"山田\r\n\t太郎",taro@example.net\n',
                    encoding="utf-8")
    store = open_store(tmp_path / "data")
    try:
        import_file(store, FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)), ZoneInfo("Asia/Tokyo"),
                    rows)
        (candidate,) = store.find("candidates", "emails", "taro@example.net")
    finally:
        store.close()
    assert candidate["name"] == "山田 太郎"


def test_terminal_escapes_in_a_stored_name_are_shown_escaped_not_sent(tmp_path: Path) -> None:
    """A name stored before the door was there: `candidates` and `candidate show` print its
    control characters escaped; a line break does not split the row."""
    config = tmp_path / "config.toml"
    config.write_text('[store]\npath = "data"\n', encoding="utf-8")
    store = open_store(tmp_path / "data")
    try:
        candidate = new_candidate("c1", "2026-01-01T00:00:00+00:00")
        candidate.update({"name": "山田\x1b]0;pwned\x07\r\n太郎", "emails": ["t@example.net"]})
        store.put("candidates", "c1", candidate)
    finally:
        store.close()
    for args in (["candidates"], ["candidate", "show", "c1"]):
        done = subprocess.run([*MAILFLOW, *args, "-c", str(config)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout and "\x07" not in done.stdout, args
        assert "\\x1b]0;pwned" in done.stdout, args
    listing = subprocess.run([*MAILFLOW, "candidates", "-c", str(config)], capture_output=True,
                             text=True, timeout=60).stdout.splitlines()
    assert len(listing) == 2 and "t@example.net" in listing[1]  # the header and one row


def test_an_import_never_reads_more_than_its_limit(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21: `mailflow import /dev/zero` grew without bound; now it ends at once (not text),
    and text beyond the size limit is refused before a row is taken."""
    config = tmp_path / "config.toml"
    config.write_text('[store]\npath = "data"\n', encoding="utf-8")
    done = subprocess.run([*MAILFLOW, "import", "/dev/zero", "--dry-run", "-c", str(config)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "neither UTF-8 nor CP932" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    monkeypatch.setattr(importer, "MAX_BYTES", 100_000)
    big = tmp_path / "big.csv"
    big.write_text("氏名,メールアドレス\n" + "".join(f"人{n},p{n}@example.net\n"
                                                  for n in range(10_000)), encoding="utf-8")
    with pytest.raises(UsageError, match="larger than"):
        importer.encoding_of(big, chunk=4096)


def test_an_import_takes_at_most_its_row_limit(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "MAX_ROWS", 10)
    rows = tmp_path / "list.csv"
    rows.write_text("氏名,メールアドレス\n" + "".join(f"人{n},p{n}@example.net\n"
                                                  for n in range(11)), encoding="utf-8")
    store = open_store(tmp_path / "data")
    try:
        with pytest.raises(UsageError, match=r"list.csv:12: more than 10 rows"):
            import_file(store, FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)), TOKYO, rows)
        assert store.count("candidates") == 0
        rows.write_text("氏名,メールアドレス\n" + "".join(f"人{n},p{n}@example.net\n"
                                                      for n in range(10)), encoding="utf-8")
        import_file(store, FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)), TOKYO, rows)
        assert store.count("candidates") == 10
    finally:
        store.close()
