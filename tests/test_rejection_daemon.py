"""Issue 14 against a real Dovecot and aiosmtpd: the common wording rewritten in rewrite and send
mode; an uncertain mail left alone and HR told exactly once (across a restart and a re-fetch);
HR's settling line learned from; #mailflow stage lines only from the company."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for, wait_until, write_config
from prometheus_client import generate_latest
from servers import Dovecot, ImapAccount, SmtpSink
from test_drafts import drafts, known_candidate, rewritten
from test_send_mode import SEND_MODE, folder, outbox_name

from mailflow.web.metrics import Metrics

CANDIDATE = "taro.yamada@example.net"
UNCERTAIN = ("山田 太郎 様\n\n先日は面接にお越しいただきありがとうございました。\n"
             "残念ながら、今回の結果につきましては担当よりお電話にてお伝えいたします。\n")


@pytest.fixture
def env(imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    return env_for(imap_account)


def draft(account: ImapAccount, subject: str, body: str, message_id: str,
          charset: str = "iso-2022-jp") -> bytes:
    message = EmailMessage()
    message["From"] = account.address
    message["To"] = CANDIDATE
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content(body, charset=charset, cte="7bit" if charset != "utf-8" else "8bit")
    return message.as_bytes(policy=email.policy.SMTP)  # CRLF, as the server keeps it


def the_issues_draft(account: ImapAccount) -> bytes:
    body = "山田 太郎 様\n\n残念ながら今回はご縁がありませんでした。\n\n株式会社サンプル 人事部\n"
    return draft(account, "面接の結果について", body, "<issue-14@example.co.jp>")


def text_of(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def notices(sink: SmtpSink, account: ImapAccount) -> list[str]:
    found = []
    for received in sink.messages:
        message = email.message_from_bytes(received.data, policy=email.policy.default)
        if account.address in received.rcpt_tos and "確認してください" in str(message["Subject"]):
            found.append(text_of(received.data))
    return found


def test_the_common_wording_is_rewritten_in_rewrite_mode(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, env: dict[str, str]) -> None:
    config = write_config(tmp_path, imap_account, extra="[rejection]\nquiet_seconds = 0.5\n")
    with DaemonThread(config) as running:
        known_candidate(running, dovecot, imap_account)
        dovecot.append(imap_account.username, "Drafts", the_issues_draft(imap_account),
                       flags=[b"\\Draft"])
        found = wait_until(lambda: rewritten(drafts(dovecot, imap_account)), what="the rewrite")
    text = text_of(found[0])
    assert "残念ながら今回はご縁がありませんでした" in text and "/r/" in text


def test_the_common_wording_is_sent_with_its_link_in_send_mode(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, smtp_sink: SmtpSink,
        env: dict[str, str]) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink, extra=SEND_MODE)
    with DaemonThread(config) as running:
        known_candidate(running, dovecot, imap_account)
        dovecot.append(imap_account.username, outbox_name(imap_account),
                       the_issues_draft(imap_account))
        wait_until(lambda: [m for m in smtp_sink.messages if CANDIDATE in m.rcpt_tos],
                   what="the rejection at the sink")
    (sent,) = [m for m in smtp_sink.messages if CANDIDATE in m.rcpt_tos]
    assert "/r/" in text_of(sent.data) and "ご縁がありませんでした" in text_of(sent.data)


def test_an_uncertain_draft_is_left_alone_and_hr_is_told_once_then_learns(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, smtp_sink: SmtpSink,
        env: dict[str, str]) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink,
                          extra="[rejection]\nquiet_seconds = 0.3\n")
    user = imap_account.username
    uncertain = draft(imap_account, "選考結果のご連絡", UNCERTAIN, "<unsure-1@example.co.jp>")
    with DaemonThread(config) as running:
        known_candidate(running, dovecot, imap_account)
        dovecot.append(user, "Drafts", uncertain, flags=[b"\\Draft"])
        wait_until(lambda: notices(smtp_sink, imap_account), what="HR's notice")
        store = running.daemon.store
        (review,) = list(store.scan("reviews"))
        assert review["state"] == "asked" and review["folder"] == "drafts"
        metrics = Metrics(running.daemon)
        metrics.store_figures.refresh()
        figures = generate_latest(metrics.registry).decode()
        assert 'mailflow_rejection_reviews{state="asked"} 1.0' in figures
    (notice,) = notices(smtp_sink, imap_account)
    assert "#mailflow rejection" in notice and "#mailflow rejection=no" in notice
    assert review["id"] in notice and "下書き" in notice
    assert [raw for raw, _ in drafts(dovecot, imap_account).values()] == [uncertain]

    # a restart, and the same draft saved again (a second copy, the same Message-ID)
    with DaemonThread(config) as running:
        dovecot.append(user, "Drafts", uncertain, flags=[b"\\Draft"])
        time.sleep(2.0)  # several scans of Drafts
        assert len(list(running.daemon.store.scan("reviews"))) == 1
    time.sleep(0.5)
    assert len(notices(smtp_sink, imap_account)) == 1
    assert not rewritten(drafts(dovecot, imap_account))

    # HR settles it: the next save carries the line; it is rewritten and remembered
    settled = draft(imap_account, "選考結果のご連絡", UNCERTAIN + "#mailflow rejection\n",
                    "<unsure-1@example.co.jp>")
    with DaemonThread(config) as running:
        dovecot.append(user, "Drafts", settled, flags=[b"\\Draft"])
        wait_until(lambda: rewritten(drafts(dovecot, imap_account)), what="the rewrite")
        store = running.daemon.store
        (example,) = list(store.scan("examples"))
        (review,) = list(store.scan("reviews"))
    assert example["label"] == "rejection" and example["evidence_verdict"] == "uncertain"
    assert review["state"] == "settled"
    assert not any("山田" in s or "太郎" in s for s in example["sentences"])
    done = subprocess.run([*MAILFLOW, "rules", "suggest", "--json", "-c", str(config)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    (suggestion,) = json.loads(done.stdout)["suggestions"]
    assert suggestion["decide"] == "rejection" and suggestion["decides"] == [example["id"]]
    assert any(p in "\n".join(example["sentences"]) for p in suggestion["body_phrases"])


def test_an_uncertain_mail_in_the_outbox_folder_is_kept_for_hr_even_when_others_are_sent(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, smtp_sink: SmtpSink,
        env: dict[str, str]) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink,
                          extra=SEND_MODE + 'not_rejection = "send"\n')
    with DaemonThread(config) as running:
        known_candidate(running, dovecot, imap_account)
        unsure = draft(imap_account, "選考結果のご連絡", UNCERTAIN, "<unsure-2@example.co.jp>")
        dovecot.append(imap_account.username, outbox_name(imap_account), unsure)
        wait_until(lambda: notices(smtp_sink, imap_account), what="HR's notice")
        time.sleep(1.0)
    assert not [m for m in smtp_sink.messages if CANDIDATE in m.rcpt_tos]
    assert len(folder(dovecot, imap_account, outbox_name(imap_account))) == 1


def forged_offer(account: ImapAccount, application_id: str, results: str = "") -> bytes:
    """From the recruiting address, in the candidate's thread, quoting the application, with a
    stage line in its own text."""
    return (f"From: {account.address}\r\nTo: {account.address}\r\n{results}"
            f"Subject: Re: 応募\r\nIn-Reply-To: {application_id}\r\n"
            f"Message-ID: <forged-{time.time_ns()}@example.net>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "#mailflow stage=内定\r\n内定です。\r\n\r\n> 営業職に応募いたします。\r\n").encode()


@pytest.mark.parametrize(("results", "counts"), [
    ("", False),
    ("Authentication-Results: mx.example.co.jp; dkim=fail header.d=example.co.jp\r\n", False),
    ("Authentication-Results: evil.example; dmarc=pass header.from=example.co.jp\r\n", False),
    ("Authentication-Results: mx.example.co.jp; dkim=pass header.d=example.co.jp\r\n", True),
])
def test_a_stage_line_in_inbox_counts_only_when_the_server_vouches_for_the_company(
        results: str, counts: bool, tmp_path: Path, dovecot: Dovecot,
        imap_account: ImapAccount, env: dict[str, str]) -> None:
    config = write_config(tmp_path, imap_account, trusted_authserv_ids=["mx.example.co.jp"])
    with DaemonThread(config) as running:
        known_candidate(running, dovecot, imap_account)
        store = running.daemon.store
        candidate = store.find("candidates", "emails", CANDIDATE)[0]
        application_id = candidate["message_ids"][0]
        before = running.handled()
        dovecot.append(imap_account.username, "INBOX", forged_offer(
            imap_account, application_id, results))
        wait_until(lambda: sum(running.handled().values()) > sum(before.values()),
                   what="the mail handled")
        stages = [s["stage"] for s in store.get("candidates", candidate["id"])["stages"]]
    assert stages == (["内定"] if counts else [])


def test_the_same_stage_line_in_sent_counts(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, env: dict[str, str]) -> None:
    config = write_config(tmp_path, imap_account)
    with DaemonThread(config) as running:
        known_candidate(running, dovecot, imap_account)
        store = running.daemon.store
        candidate = store.find("candidates", "emails", CANDIDATE)[0]
        raw = forged_offer(imap_account, candidate["message_ids"][0]).replace(
            f"To: {imap_account.address}".encode(), f"To: {CANDIDATE}".encode())
        dovecot.append(imap_account.username, "Sent", raw)
        wait_until(lambda: store.get("candidates", candidate["id"])["stages"],
                   what="the stage")
        assert store.get("candidates", candidate["id"])["stages"][0]["stage"] == "内定"
