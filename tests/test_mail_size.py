"""Issue 21: memory followed mail size (a 57 MB mail: 688 MB RSS; 200 whole bodies per FETCH; no
limit). Now a mail over `[mailbox] max_message_bytes` is quarantined with its size and never
fetched whole, a replay under a raised limit fetches it again, and a FETCH brings at most
`fetch_batch_bytes` (benchmarks/mail_size.py measures the memory of a large mail under it)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import random
import re
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from harness import (
    MAILFLOW,
    PASSWORD_ENV,
    DaemonThread,
    daemon_process,
    env_for,
    wait_until,
    write_config,
)
from servers import Dovecot, ImapAccount

from mailflow.errors import UsageError
from mailflow.mailbox import pipeline
from mailflow.mailbox.sizes import fetch_batches, oversized_key, too_large
from mailflow.settings.config import load_config
from mailflow.store import open_store

MIB = 1024 * 1024


def application(n: int, to: str, attachment: bytes = b"") -> bytes:
    """An application from applicant{n}, with a résumé of `attachment` when given."""
    head = (f"From: Applicant {n} <applicant{n}@example.net>\r\nTo: {to}\r\n"
            f"Subject: =?UTF-8?B?5b+c5Yuf?= {n}\r\n"
            f"Message-ID: <size{n}.{time.time_ns()}@example.net>\r\nMIME-Version: 1.0\r\n")
    text = ("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            "\r\n採用ご担当者様\r\n応募いたします。\r\n")
    if not attachment:
        return (head + text).encode()
    resume = (b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
              b'Content-Disposition: attachment; filename="resume.pdf"\r\n\r\n'
              + base64.encodebytes(attachment).replace(b"\n", b"\r\n"))
    return ((head + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n' + text)
            .encode() + resume + b"--b--\r\n")


# -- pure ---------------------------------------------------------------------------------------

def test_batches_are_cut_by_bytes_and_count_and_keep_uid_order() -> None:
    sizes = [(1, 40), (2, 40), (3, 40), (4, 500), (5, 10), (6, 10), (7, 10), (8, 10)]
    assert fetch_batches(sizes, max_count=3, max_bytes=100) == [
        ([1, 2], True), ([3], True), ([4], True), ([5, 6, 7], True), ([8], True)]


def test_a_mail_over_the_limit_is_a_batch_of_its_own_not_fetched_whole() -> None:
    sizes = [(1, 10), (2, 900), (3, 10), (4, 10)]
    assert fetch_batches(sizes, max_count=200, max_bytes=1000, limit=500) == [
        ([1], True), ([2], False), ([3, 4], True)]


def test_the_reason_names_the_size_and_the_limit() -> None:
    assert too_large(int(57.3 * MIB), 25 * MIB) == (
        "too large: 57.3 MiB > 25 MiB limit ([mailbox] max_message_bytes)")
    assert too_large(3000, 2048) == "too large: 2.9 KiB > 2 KiB limit ([mailbox] max_message_bytes)"


def test_an_oversized_key_is_stable_and_differs_from_the_whole_mails_key() -> None:
    raw = application(1, "jobs@example.co.jp", b"x" * 1000)
    head = raw.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    message_id = pipeline.raw_message_id(raw)
    key = oversized_key(head, message_id, len(raw))
    assert key == oversized_key(head, message_id, len(raw))
    assert key != oversized_key(head, message_id, len(raw) + 1)
    assert key != pipeline.message_key(raw)


def _key_hashed_whole(raw: bytes) -> str:
    """message_key as it was: the body copied, CRLF replaced at once."""
    match = re.search(rb"\r?\n\r?\n", raw)
    head, body = (raw, b"") if match is None else (raw[: match.start()], raw[match.end():])
    message_id = pipeline.raw_message_id(raw)
    digest = hashlib.sha256(message_id.encode() if message_id else head)
    digest.update(b"\0" + body.replace(b"\r\n", b"\n"))
    return digest.hexdigest()[:40]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7])
def test_the_key_hashed_in_chunks_is_the_key_hashed_whole(
        chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stored keys stay valid: a CRLF cut by a chunk boundary still counts as LF."""
    monkeypatch.setattr(pipeline, "_HASH_CHUNK", chunk)
    rng = random.Random(chunk)
    for _ in range(500):
        raw = bytes(rng.choice(b"\r\nab") for _ in range(rng.randrange(40)))
        if rng.random() < 0.5:
            raw = b"Message-ID: <k@example.net>\r\n" + raw
        assert pipeline.message_key(raw) == _key_hashed_whole(raw), raw


def test_the_limits_have_defaults_and_a_bad_one_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[mailbox]\nhost = \"127.0.0.1\"\n", encoding="utf-8")
    mailbox = load_config(config).mailbox
    assert (mailbox.max_message_bytes, mailbox.fetch_batch_bytes) == (25 * MIB, 16 * MIB)
    config.write_text("[mailbox]\nhost = \"127.0.0.1\"\nmax_message_bytes = 0\n",
                      encoding="utf-8")
    with pytest.raises(UsageError) as refused:
        load_config(config)
    assert f"{config}:3: mailbox.max_message_bytes: Input should be greater than 0" in str(
        refused.value)


# -- against Dovecot ----------------------------------------------------------------------------

def _store_doc(config: Path, kind: str) -> list[dict]:
    settings = load_config(config)
    store = open_store(settings.data_dir, settings.store.engine, read_only=True)
    try:
        return list(store.scan(kind))
    finally:
        store.close()


def _cli(config: Path, account: ImapAccount, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, *args, "-c", str(config)], env=env_for(account),
                          capture_output=True, text=True, timeout=60)


def _peak_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM): a spike between two samples shows here too."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1))  # type: ignore[union-attr]


def test_an_oversized_mail_is_quarantined_unread_and_a_raised_limit_takes_it_in(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount) -> None:
    user, address = imap_account.username, imap_account.address
    config = write_config(tmp_path, imap_account, max_message_bytes=MIB)
    big = application(1, address, os.urandom(18 * MIB))  # about 24 MiB as mail
    with daemon_process(config, imap_account) as process:
        log = tmp_path / "daemon.log"
        wait_until(lambda: b"first start, taking new mail" in log.read_bytes(),
                   what="the daemon's first catch-up")
        daemon = psutil.Process(process.pid)
        rss_before, peak_before = daemon.memory_info().rss, _peak_kib(process.pid)
        dovecot.append(user, "INBOX", big)
        dovecot.append(user, "INBOX", application(2, address))
        samples = []

        def both_done() -> bool:
            samples.append(daemon.memory_info().rss)
            candidates = _store_doc(config, "candidates")
            return bool(candidates) and bool(_store_doc(config, "quarantine"))

        wait_until(both_done, interval=0.02, what="the next mail taken in")
        growth = max(max(samples) - rss_before, (_peak_kib(process.pid) - peak_before) * 1024)
        (item,) = _store_doc(config, "quarantine")
        (candidate,) = _store_doc(config, "candidates")
        listed = _cli(config, imap_account, "quarantine", "list", "--json")
        still = _cli(config, imap_account, "quarantine", "replay", item["id"])
    assert growth < len(big) / 4, f"the daemon grew by {growth / MIB:.1f} MiB"
    assert candidate["emails"] == ["applicant2@example.net"]  # the mail after it, normally
    assert item["state"] == "quarantined" and item["size"] == len(big) and item["raw"] == ""
    assert re.fullmatch(r"too large: 2\d\.\d MiB > 1 MiB limit \(\[mailbox\] max_message_bytes\)",
                        item["reason"]), item["reason"]
    (public,) = json.loads(listed.stdout)
    assert public["size"] == len(big) and public["reason"] == item["reason"]
    assert still.returncode != 0 and "still failing: too large" in still.stderr

    write_config(tmp_path, imap_account, max_message_bytes=64 * MIB)
    with daemon_process(config, imap_account):
        wait_until(lambda: log.read_bytes().count(b"inbox: watching") >= 2,
                   what="the restarted daemon")
        replayed = _cli(config, imap_account, "quarantine", "replay", item["id"])
        assert replayed.returncode == 0, replayed.stderr
        emails = sorted(c["emails"][0] for c in _store_doc(config, "candidates"))
        (after,) = _store_doc(config, "quarantine")
        handled = [e for e in _store_doc(config, "messages") if e["role"] == "inbox"]
    assert emails == ["applicant1@example.net", "applicant2@example.net"]
    assert after["state"] == "replayed" and after["resolved_by"] == "replay"
    assert len(handled) == 2 and item["key"] not in {e["message_key"] for e in handled}


def test_a_folder_over_the_byte_budget_comes_in_several_fetches_each_mail_once(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    user, address = imap_account.username, imap_account.address
    budget = 150_000
    config = write_config(tmp_path, imap_account, fetch_batch_bytes=budget)
    with DaemonThread(config):
        pass  # the first start: the checkpoint is set, history is left to backfill
    mails = [application(n, address, os.urandom(45_000)) for n in range(1, 8)]  # ~61 kB each
    dovecot.append_many(user, "INBOX", mails)
    caplog.set_level(logging.DEBUG, logger="mailflow.mailbox")
    with DaemonThread(config) as running:
        store = running.daemon.store
        wait_until(lambda: store.count("candidates") == len(mails), what="every application")
        handled = running.handled()
    fetches = [(int(m.group(1)), int(m.group(2))) for r in caplog.records
               if r.name == "mailflow.mailbox" and (m := re.fullmatch(
                   r"FETCH (\d+) messages, (\d+) bytes", r.getMessage()))]
    assert [count for count, _bytes in fetches] == [2, 2, 2, 1]
    assert all(size <= budget for _count, size in fetches)
    assert sum(size for _count, size in fetches) == sum(len(m) for m in mails)
    assert len(handled) == len(mails) and set(handled.values()) == {1}


def test_a_backfill_sets_an_oversized_mail_aside_and_takes_the_rest(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount) -> None:
    user, address = imap_account.username, imap_account.address
    config = write_config(tmp_path, imap_account, max_message_bytes=100_000)
    dovecot.append_many(user, "INBOX", [application(1, address),
                                        application(2, address, os.urandom(200_000)),
                                        application(3, address)])
    done = _cli(config, imap_account, "backfill", "INBOX")
    assert done.returncode == 0, done.stderr
    emails = sorted(c["emails"][0] for c in _store_doc(config, "candidates"))
    (item,) = _store_doc(config, "quarantine")
    assert emails == ["applicant1@example.net", "applicant3@example.net"]
    assert item["state"] == "quarantined" and item["uid"] == 2
    assert item["reason"].startswith("too large: 2") and "> 97.7 KiB limit" in item["reason"]
    again = _cli(config, imap_account, "backfill", "INBOX")  # known by its key: once
    assert again.returncode == 0 and len(_store_doc(config, "quarantine")) == 1


def test_replaying_an_oversized_mail_gone_from_the_server_says_so(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    user, address = imap_account.username, imap_account.address
    config = write_config(tmp_path, imap_account, max_message_bytes=50_000)
    with DaemonThread(config) as running:
        intake, store = running.daemon.intake, running.daemon.store
        uid = dovecot.append(user, "INBOX", application(1, address, os.urandom(60_000)))
        (item,) = wait_until(lambda: list(store.scan("quarantine")), what="the quarantine")
        assert item["uid"] == uid and item["reason"].startswith("too large: ")
        dovecot.wipe(user)  # the mail is deleted on the server meanwhile
        replayed = intake.replay(item["id"])
        assert store.count("candidates") == 0
    assert replayed["state"] == "quarantined" and replayed["attempts"] == 2
    assert replayed["reason"] == f"cannot be fetched again: UID {uid} is no longer in INBOX"
