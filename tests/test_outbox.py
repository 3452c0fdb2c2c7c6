"""The outbox against a real aiosmtpd sink and a real Dovecot: every mail goes out once."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for, wait_until, write_config
from servers import Dovecot, ImapAccount, SmtpSink

from mailflow.clock import FrozenClock
from mailflow.daemon import control
from mailflow.errors import MailflowError
from mailflow.outgoing.outbox import Outbox, with_message_id
from mailflow.settings.config import Config, load_config
from mailflow.store import open_store
from mailflow.store.base import Doc

CANDIDATE = "tanaka@example.net"
OTHER = "suzuki@example.org"


@pytest.fixture(autouse=True)
def password(imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)


def rejection(n: int = 1, to: str = CANDIDATE) -> bytes:
    """A Japanese mail with an attachment and no Message-ID (the outbox gives it one)."""
    pdf = base64.encodebytes(b"%PDF-1.4 " + bytes(range(256)) * 4).replace(b"\n", b"\r\n")
    return (f"From: jobs@example.co.jp\r\nTo: {to}\r\nSubject: =?UTF-8?B?"
            f"{base64.b64encode('選考結果のご連絡'.encode()).decode()}?= {n}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
            f"田中様\r\n\r\n誠に残念ながら、今回はご期待に添えない結果となりました。{n}\r\n"
            "--b1\r\nContent-Type: application/pdf; name=\"guide.pdf\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode() + pdf + b"--b1--\r\n"


def sent_copies(dovecot: Dovecot, account: ImapAccount, message_id: str) -> list[int]:
    client = dovecot.client(account.username)
    try:
        client.select_folder("Sent", readonly=True)
        return list(client.search(["HEADER", "Message-ID", message_id]))
    finally:
        client.logout()


class Running(DaemonThread):
    """The daemon in a thread, ready once every watcher is connected (the outbox needs no
    folder checkpoint)."""

    def watching(self) -> bool:
        if self.error:
            raise self.error
        return bool(self.daemon.watchers) and all(w.connected for w in self.daemon.watchers)


def fast(outbox: Outbox) -> Outbox:
    outbox.delivery.retry_first_seconds = 0.3
    outbox.delivery.retry_max_seconds = 1.0
    outbox.sent_folder.lookup_seconds = 0.2
    outbox.sent_folder.imap_retry_seconds = 0.5
    return outbox


def record(outbox: Outbox, record_id: str) -> Doc:
    doc = outbox.store.get("outbox", record_id)
    assert doc is not None
    return doc


def mailflow(config: Path, account: ImapAccount, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, *args, "-c", str(config)], capture_output=True, text=True,
                          env=env_for(account), timeout=60)


# -- the Message-ID, spliced ------------------------------------------------------------------


def test_message_id_is_spliced_into_the_header_block_only() -> None:
    raw = rejection()
    spliced, message_id = with_message_id(raw, "example.co.jp")
    assert message_id.startswith("<") and message_id.endswith("@example.co.jp>")
    head_end = raw.index(b"\r\n\r\n")
    added = f"\r\nMessage-ID: {message_id}".encode()
    assert spliced == raw[:head_end] + added + raw[head_end:]
    assert with_message_id(spliced, "example.co.jp") == (spliced, message_id)  # given once
    lf, lf_id = with_message_id(b"Subject: x\n\nbody\n", "example.co.jp")
    assert lf == f"Subject: x\nMessage-ID: {lf_id}\n\nbody\n".encode()
    assert with_message_id(b"Subject: y\r\n", "example.co.jp", "<given@example.co.jp>") == (
        b"Subject: y\r\nMessage-ID: <given@example.co.jp>\r\n", "<given@example.co.jp>")


def test_queue_records_before_any_connection_and_build_gets_its_message_id(
        tmp_path: Path) -> None:
    config = Config.model_validate({"smtp": {"from": "jobs@example.co.jp"},
                                    "company": {"domains": ["example.co.jp"]}})
    clock = FrozenClock(datetime(2025, 4, 1, 9, 0, tzinfo=UTC))
    store = open_store(tmp_path, "sqlite")
    try:
        outbox = Outbox(store, clock, config, threading.RLock())

        def build(message_id: str) -> bytes:
            return f"Subject: follow-up\r\nX-Ref: {message_id}\r\n\r\nbody\r\n".encode()

        doc = outbox.queue(build=build, to=[CANDIDATE, CANDIDATE], purpose="followup",
                           candidate_id="c1")
        raw = base64.b64decode(doc["raw"])
        assert f"X-Ref: {doc['message_id']}\r\nMessage-ID: {doc['message_id']}\r\n".encode() in raw
        assert doc["message_id"].endswith("@example.co.jp>")
        assert doc["to"] == [CANDIDATE] and doc["from"] == "jobs@example.co.jp"
    finally:
        store.close()
    reopened = open_store(tmp_path, "sqlite", read_only=True)
    kept = reopened.get("outbox", doc["id"])
    reopened.close()
    assert kept is not None and kept["state"] == "queued" and kept["attempts"] == 0
    assert kept["next_at"] == "2025-04-01T09:00:00.000000Z" and kept["filed_in_sent"] is False


# -- delivery through a running daemon ----------------------------------------------------------


def test_queued_mail_arrives_once_with_its_message_id_and_is_filed_in_sent(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        smtp_sink: SmtpSink) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink)
    with Running(config) as running:
        outbox = running.daemon.outbox
        started = time.monotonic()
        doc = outbox.queue(rejection(), to=[CANDIDATE], purpose="rejection", candidate_id="c1")
        arrived = smtp_sink.wait_for(1)
        latency = time.monotonic() - started
        same = outbox.queue(base64.b64decode(doc["raw"]), to=[CANDIDATE], purpose="rejection")
        assert same["id"] == doc["id"]  # a Message-ID already queued is not queued again
        wait_until(lambda: record(outbox, doc["id"])["filed_in_sent"], what="filed in Sent")
        time.sleep(2.5)  # more delivery rounds: nothing more goes out
        final = record(outbox, doc["id"])
    assert len(smtp_sink.messages) == 1
    assert arrived[0].rcpt_tos == (CANDIDATE,)
    assert arrived[0].data == base64.b64decode(doc["raw"])  # byte-identical, Message-ID spliced
    assert f"Message-ID: {doc['message_id']}".encode() in arrived[0].data
    assert final["state"] == "sent" and final["attempts"] == 1 and final["sent_at"]
    assert len(sent_copies(dovecot, imap_account, doc["message_id"])) == 1
    assert latency < 1.0, f"queue to sink took {latency:.3f}s"
    print(f"queue -> sink latency {latency * 1000:.0f} ms")


def test_smtp_down_waits_and_goes_out_once_when_it_returns(
        tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink)
    smtp_sink.stop()
    with Running(config) as running:
        outbox = fast(running.daemon.outbox)
        doc = outbox.queue(rejection(), to=[CANDIDATE], purpose="rejection", candidate_id="c1")
        wait_until(lambda: (r := record(outbox, doc["id"]))["attempts"] >= 2
                   and r["state"] == "queued", what="two attempts ended")
        waiting = record(outbox, doc["id"])
        assert waiting["state"] == "queued" and waiting["last_error"]
        smtp_sink.start()  # the same port again
        smtp_sink.wait_for(1)
        wait_until(lambda: record(outbox, doc["id"])["state"] == "sent", what="sent")
        time.sleep(2.0)
    assert len(smtp_sink.messages) == 1


def test_452_at_rcpt_is_retried_later(tmp_path: Path, imap_account: ImapAccount,
                                       smtp_sink: SmtpSink) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink)
    smtp_sink.rcpt_replies[CANDIDATE] = "452 4.2.2 Mailbox full"
    with Running(config) as running:
        outbox = fast(running.daemon.outbox)
        doc = outbox.queue(rejection(), to=[CANDIDATE], purpose="rejection", candidate_id="c1")
        wait_until(lambda: (r := record(outbox, doc["id"]))["attempts"] >= 2
                   and r["state"] == "queued", what="a retry ended")
        deferred = record(outbox, doc["id"])
        assert deferred["state"] == "queued" and "452" in deferred["last_error"]
        assert deferred["undeliverable"] == [] and smtp_sink.messages == []
        del smtp_sink.rcpt_replies[CANDIDATE]
        smtp_sink.wait_for(1)
        wait_until(lambda: record(outbox, doc["id"])["state"] == "sent", what="sent")
    assert len(smtp_sink.messages) == 1


def test_550_at_rcpt_marks_that_address_and_the_other_receives_it(
        tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink)
    smtp_sink.rcpt_replies[CANDIDATE] = "550 5.1.1 No such user"
    told: list[tuple[str, str]] = []
    with Running(config) as running:
        outbox = running.daemon.outbox
        outbox.delivery.on_undeliverable = lambda address, doc: told.append((address, doc["id"]))
        doc = outbox.queue(rejection(), to=[CANDIDATE, OTHER], purpose="rejection",
                           candidate_id="c1")
        arrived = smtp_sink.wait_for(1)
        wait_until(lambda: record(outbox, doc["id"])["state"] == "sent", what="sent")
        only = outbox.queue(rejection(2), to=[CANDIDATE], purpose="rejection",
                            candidate_id="c1")
        wait_until(lambda: record(outbox, only["id"])["state"] == "failed", what="failed")
        time.sleep(1.5)
        both, alone = record(outbox, doc["id"]), record(outbox, only["id"])
    assert arrived[0].rcpt_tos == (OTHER,) and len(smtp_sink.messages) == 1
    assert [u["address"] for u in both["undeliverable"]] == [CANDIDATE]
    assert "550" in both["undeliverable"][0]["reply"]
    assert told == [(CANDIDATE, doc["id"]), (CANDIDATE, only["id"])]
    assert alone["attempts"] == 1 and "every recipient refused" in alone["last_error"]


def test_550_at_mail_from_stays_queued_alerts_the_admin_and_touches_no_candidate(
        tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink, silence_alarm_seconds=2)
    smtp_sink.mail_from_reply = "550 5.7.1 Sender not allowed"
    told: list[str] = []
    with Running(config) as running:
        daemon = running.daemon
        outbox = fast(daemon.outbox)
        outbox.delivery.on_undeliverable = lambda address, doc: told.append(address)
        doc = outbox.queue(rejection(), to=[CANDIDATE], purpose="rejection", candidate_id="c1")
        held = wait_until(  # between two attempts (a third may be on its way: read once)
            lambda: (r := record(outbox, doc["id"]))["attempts"] >= 2 and r["state"] != "sending"
            and r, what="two attempts")
        assert held["state"] == "queued" and "550" in held["last_error"]
        assert outbox.alert and "550" in outbox.alert
        wait_until(lambda: not daemon.health.healthy, timeout=10, what="an unhealthy daemon")
        assert any(r.startswith("outbox:") for r in daemon.health.reasons)
        smtp_sink.mail_from_reply = None
        smtp_sink.wait_for(1)
        wait_until(lambda: record(outbox, doc["id"])["state"] == "sent", what="sent")
        assert outbox.alert is None
        wait_until(lambda: daemon.health.healthy, timeout=10, what="healthy again")
        final = record(outbox, doc["id"])
    assert told == [] and final["undeliverable"] == []
    assert len(smtp_sink.messages) == 1


def test_cut_after_data_is_unknown_never_resent_until_the_admin_says(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        smtp_sink: SmtpSink) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink)
    smtp_sink.drop_after_data = True
    with Running(config) as running:
        outbox = fast(running.daemon.outbox)
        doc = outbox.queue(rejection(), to=[CANDIDATE], purpose="rejection", candidate_id="c1")
        other = outbox.queue(rejection(2), to=[OTHER], purpose="rejection", candidate_id="c2")
        wait_until(lambda: all(record(outbox, d["id"])["state"] == "unknown"
                               for d in (doc, other)), what="two unknown outcomes")
        time.sleep(3.0)  # several delivery rounds
        assert len(smtp_sink.messages) == 2  # one each, kept by the sink, never answered
        assert not any(m.answered for m in smtp_sink.messages)

        listed = mailflow(config, imap_account, "outbox", "--json")
        assert listed.returncode == 0, listed.stderr
        states = {d["id"]: d["state"] for d in json.loads(listed.stdout)}
        assert states == {doc["id"]: "unknown", other["id"]: "unknown"}
        assert "raw" not in listed.stdout
        table = mailflow(config, imap_account, "outbox")
        assert doc["id"] in table.stdout and "unknown" in table.stdout

        smtp_sink.drop_after_data = False
        resent = mailflow(config, imap_account, "outbox", "resend", doc["id"])
        assert resent.returncode == 0, resent.stderr
        smtp_sink.wait_for(3)
        wait_until(lambda: record(outbox, doc["id"])["filed_in_sent"], what="resent, filed")
        again = mailflow(config, imap_account, "outbox", "resend", doc["id"])
        assert again.returncode == 1 and "is sent" in again.stderr

        marked = mailflow(config, imap_account, "outbox", "mark-sent", other["id"])
        assert marked.returncode == 0, marked.stderr
        wait_until(lambda: record(outbox, other["id"])["filed_in_sent"], what="marked, filed")
        unknown_id = mailflow(config, imap_account, "outbox", "mark-sent", "nosuchid")
        assert unknown_id.returncode == 1 and "no outbox mail nosuchid" in unknown_id.stderr
        time.sleep(2.0)
        resent_doc = record(outbox, doc["id"])
    assert len(smtp_sink.messages) == 3  # the resend went out once; the marked one never again
    assert smtp_sink.messages[2].data == smtp_sink.messages[0].data  # same bytes, same ID
    assert resent_doc["state"] == "sent" and resent_doc["message_id"] == doc["message_id"]
    for d in (doc, other):
        assert len(sent_copies(dovecot, imap_account, d["message_id"])) == 1


def test_provider_files_sent_unknown_found_in_sent_is_not_resent(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        smtp_sink: SmtpSink) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink, provider_files_sent=0)
    config.write_text(config.read_text().replace("provider_files_sent = 0",
                                                 "provider_files_sent = true"))
    smtp_sink.drop_after_data = True
    with Running(config) as running:
        outbox = fast(running.daemon.outbox)
        doc = outbox.queue(rejection(), to=[CANDIDATE], purpose="rejection", candidate_id="c1")
        wait_until(lambda: record(outbox, doc["id"])["state"] == "unknown", what="unknown")
        time.sleep(1.0)  # looked up, not there yet: stays unknown
        assert record(outbox, doc["id"])["state"] == "unknown"
        # the provider files what it delivered
        dovecot.append(imap_account.username, "Sent", smtp_sink.messages[0].data, [b"\\Seen"])
        wait_until(lambda: record(outbox, doc["id"])["state"] == "sent", what="found in Sent")
        smtp_sink.drop_after_data = False
        fine = outbox.queue(rejection(2), to=[OTHER], purpose="rejection", candidate_id="c2")
        wait_until(lambda: record(outbox, fine["id"])["state"] == "sent", what="second sent")
        time.sleep(1.5)
        found = record(outbox, doc["id"])
    assert found["found_in_sent"] is True and found["filed_in_sent"] is False
    assert len(smtp_sink.messages) == 2
    assert len(sent_copies(dovecot, imap_account, doc["message_id"])) == 1
    assert sent_copies(dovecot, imap_account, fine["message_id"]) == []  # the provider's job


def test_admin_commands_take_the_writer_lock_when_no_daemon_runs(
        tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink)
    settings = load_config(config)
    store = open_store(settings.data_dir, settings.store.engine)
    try:
        outbox = Outbox(store, FrozenClock(datetime(2025, 4, 1, tzinfo=UTC)), settings,
                        threading.RLock())
        doc = outbox.queue(rejection(), to=[CANDIDATE], purpose="rejection")
        store.put("outbox", doc["id"], {**doc, "state": "unknown", "attempts": 1})
    finally:
        store.close()
    queued_again = mailflow(config, imap_account, "outbox", "resend", doc["id"])
    assert queued_again.returncode == 0, queued_again.stderr
    refused = mailflow(config, imap_account, "outbox", "resend", doc["id"])
    assert refused.returncode == 1
    assert refused.stderr.startswith("mailflow: error: ") and "is queued" in refused.stderr
    marked = mailflow(config, imap_account, "outbox", "mark-sent", doc["id"])
    assert marked.returncode == 0, marked.stderr
    listed = mailflow(config, imap_account, "outbox", "--all", "--json")
    [only] = json.loads(listed.stdout)
    assert only["state"] == "sent" and only["attempts"] == 0 and only["marked_by"] == "admin"
    assert smtp_sink.messages == []


# -- kill -9 at each step, then a restart --------------------------------------------------------


@contextlib.contextmanager
def daemon(config: Path, account: ImapAccount, crash_at: str | None = None
           ) -> Iterator[subprocess.Popen[bytes]]:
    env = env_for(account)
    env.pop("MAILFLOW_CRASH_AT", None)
    if crash_at:
        env["MAILFLOW_CRASH_AT"] = crash_at
    with (config.parent / "daemon.log").open("ab") as log:
        process = subprocess.Popen([*MAILFLOW, "run", "-c", str(config)], env=env, stdout=log,
                                   stderr=log, stdin=subprocess.DEVNULL)
    try:
        data = config.parent / "data"
        wait_until(lambda: control.daemon_running(data) or process.poll() is not None,
                   what="the daemon's control channel")
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(20)


def outbox_records(config: Path) -> list[dict[str, Any]]:
    settings = load_config(config)
    store = open_store(settings.data_dir, settings.store.engine, read_only=True)
    try:
        return list(store.scan("outbox"))
    finally:
        store.close()


@pytest.mark.parametrize("point", ["outbox:queued", "outbox:data-sent", "outbox:filed"])
def test_kill9_then_restart_leaves_one_copy_at_the_sink_and_in_sent(
        point: str, tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        smtp_sink: SmtpSink) -> None:
    config = write_config(tmp_path, imap_account, smtp_sink)
    raw = rejection()
    with daemon(config, imap_account, crash_at=point) as process:
        request = {"raw": base64.b64encode(raw).decode(), "to": [CANDIDATE],
                   "purpose": "rejection", "candidate_id": "c1"}
        with contextlib.suppress(MailflowError, ValueError, OSError):
            control.call(tmp_path / "data", "outbox.queue", request, timeout=20)
        assert process.wait(30) == -signal.SIGKILL
    [crashed] = outbox_records(config)
    expected_at_crash = {"outbox:queued": 0, "outbox:data-sent": 1, "outbox:filed": 1}[point]
    assert len(smtp_sink.messages) == expected_at_crash
    assert crashed["state"] == {"outbox:queued": "queued", "outbox:data-sent": "sending",
                                "outbox:filed": "sent"}[point]

    with daemon(config, imap_account):
        if point == "outbox:data-sent":
            wait_until(lambda: outbox_records(config)[0]["state"] == "unknown",
                       what="the unknown outcome")
            time.sleep(2.5)  # delivery rounds: it is not resent
            assert len(smtp_sink.messages) == 1
            marked = mailflow(config, imap_account, "outbox", "mark-sent", crashed["id"])
            assert marked.returncode == 0, marked.stderr
        wait_until(lambda: outbox_records(config)[0]["filed_in_sent"], what="filed in Sent")
        time.sleep(2.0)
        [final] = outbox_records(config)
    assert len(smtp_sink.messages) == 1
    assert final["state"] == "sent" and final["message_id"] == crashed["message_id"]
    assert len(sent_copies(dovecot, imap_account, crashed["message_id"])) == 1
    assert os.environ.get("MAILFLOW_CRASH_AT") is None
