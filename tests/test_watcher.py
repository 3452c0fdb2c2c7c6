"""Issue 3: the watcher against a real Dovecot — never misses, never repeats."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from harness import (
    MAILFLOW,
    PASSWORD_ENV,
    DaemonThread,
    daemon_process,
    env_for,
    handled_in_store,
    message,
    wait_until,
    write_config,
)
from servers import Dovecot, ImapAccount, StallingProxy

from mailflow.daemon.service import Daemon
from mailflow.mailbox.pipeline import Incoming, Receipt, Stage


@pytest.fixture(autouse=True)
def password(imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)


def test_first_start_takes_new_mail_only(tmp_path: Path, dovecot: Dovecot,
                                         imap_account: ImapAccount) -> None:
    dovecot.append(imap_account.username, "INBOX", message(0, "old"))
    config = write_config(tmp_path, imap_account)
    with DaemonThread(config) as running:
        dovecot.append(imap_account.username, "INBOX", message(1, "new"))
        wait_until(lambda: len(running.handled()) == 1, what="the new message")
        time.sleep(0.5)
        assert sum(running.handled().values()) == 1


def test_500_messages_two_kill9_each_handled_once(tmp_path: Path, dovecot: Dovecot,
                                                  imap_account: ImapAccount) -> None:
    config = write_config(tmp_path, imap_account)
    user = imap_account.username
    with daemon_process(config, imap_account):
        wait_until(lambda: (tmp_path / "data" / "control.sock").exists(), what="daemon start")
        time.sleep(1.0)  # first catch-up sets the checkpoints at the folders' ends

    sent = threading.Event()

    def deliver() -> None:
        for start in range(0, 500, 25):
            dovecot.append_many(user, "INBOX", [message(n) for n in range(start, start + 25)])
            time.sleep(0.05)
        sent.set()

    feeder = threading.Thread(target=deliver)
    feeder.start()
    for _kill in range(2):
        with daemon_process(config, imap_account) as process:
            wait_until(lambda: sum(handled_in_store(config).values()) > 0 or sent.is_set(),
                       what="some progress")
            time.sleep(0.7)
            process.send_signal(signal.SIGKILL)
            process.wait()
    feeder.join()
    with daemon_process(config, imap_account):
        counts = wait_until(lambda: (c := handled_in_store(config)) and
                            sum(c.values()) >= 500 and c, timeout=90, what="all 500 handled")
        time.sleep(1.0)
        counts = handled_in_store(config)
    assert len(counts) == 500
    assert set(counts.values()) == {1}, "a message was handled twice"


def test_dovecot_restart_during_idle(tmp_path: Path, dovecot: Dovecot,
                                     imap_account: ImapAccount) -> None:
    config = write_config(tmp_path, imap_account)
    with DaemonThread(config) as running:
        dovecot.append(imap_account.username, "INBOX", message(1))
        wait_until(lambda: len(running.handled()) == 1, what="first message")
        dovecot.stop()
        time.sleep(1.0)
        dovecot.start()
        dovecot.append(imap_account.username, "INBOX", message(2))  # arrives while reconnecting
        wait_until(lambda: len(running.handled()) == 2, timeout=30, what="reconnect + catch-up")
        wait_until(lambda: all(w.connected for w in running.daemon.watchers), timeout=30,
                   what="every folder reconnected")


def test_connection_cut_without_fin_is_detected(tmp_path: Path, dovecot: Dovecot,
                                                imap_account: ImapAccount) -> None:
    proxy = StallingProxy(dovecot.port)
    proxy.start()
    try:
        config = write_config(tmp_path, imap_account, port=proxy.port,
                              idle_seconds=1, timeout_seconds=2)
        with DaemonThread(config) as running:
            inbox = next(w for w in running.daemon.watchers if w.role == "inbox")
            proxy.freeze()
            frozen_at = time.monotonic()
            wait_until(lambda: not inbox.connected, timeout=15, interval=0.05,
                       what="the frozen connection to be dropped")
            detected = time.monotonic() - frozen_at
            assert detected < 1 + 2 + 2  # idle_seconds + timeout_seconds + slack
            proxy.thaw()
            dovecot.append(imap_account.username, "INBOX", message(7))
            wait_until(lambda: len(running.handled()) == 1, timeout=30, what="catch-up")
    finally:
        proxy.stop()


def test_uidvalidity_change_resyncs_without_repeats(tmp_path: Path, dovecot: Dovecot,
                                                    imap_account: ImapAccount) -> None:
    config = write_config(tmp_path, imap_account)
    user = imap_account.username
    with DaemonThread(config) as running:
        for n in range(3):
            dovecot.append(user, "INBOX", message(n))
        wait_until(lambda: len(running.handled()) == 3, what="three messages")
    old = handled_in_store(config)
    dovecot.change_uidvalidity(user, "INBOX")  # same messages, UIDs 1..3 again
    dovecot.append(user, "INBOX", message(99, "after the change"))  # reuses a low UID: 4
    with DaemonThread(config) as running:
        wait_until(lambda: len(running.handled()) == 4, what="the new message")
        time.sleep(0.5)
        counts = running.handled()
    assert set(counts.values()) == {1}
    assert set(old) < set(counts)


class Flaky:
    """A stage that fails on subjects containing 'poison' until fixed."""

    name = "flaky"

    def __init__(self) -> None:
        self.fixed = False

    def handle(self, message: Incoming) -> None:
        if b"poison" in message.raw and not self.fixed:
            raise RuntimeError("cannot handle this one")


def test_failing_message_does_not_hold_up_the_next_and_replays(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount) -> None:
    flaky = Flaky()

    def stages(daemon: Daemon) -> list[Stage]:
        return [flaky, Receipt(daemon.store, daemon.clock)]

    config = write_config(tmp_path, imap_account, idle_seconds=1)
    with DaemonThread(config, stages=stages, backoff_seconds=(0.2,), max_attempts=3) as running:
        user = imap_account.username
        dovecot.append_many(user, "INBOX", [message(1, "poison"), message(2, "fine")])
        wait_until(lambda: len(running.handled()) == 1, what="the second message")
        store = running.daemon.store
        item = wait_until(lambda: store.find("quarantine", "state", "quarantined"),
                          timeout=20, what="quarantine")[0]
        assert item["attempts"] == 3 and "cannot handle this one" in item["reason"]

        listed = subprocess.run([*MAILFLOW, "quarantine", "list", "-c", str(config)],
                                capture_output=True, text=True, env=env_for(imap_account))
        assert item["id"] in listed.stdout

        refused = subprocess.run([*MAILFLOW, "quarantine", "replay", item["id"], "-c",
                                  str(config)], capture_output=True, text=True,
                                 env=env_for(imap_account))
        assert refused.returncode == 1 and "still failing" in refused.stderr

        flaky.fixed = True
        replayed = subprocess.run([*MAILFLOW, "quarantine", "replay", item["id"], "-c",
                                   str(config)], capture_output=True, text=True,
                                  env=env_for(imap_account))
        assert replayed.returncode == 0, replayed.stderr
        assert len(running.handled()) == 2
        assert set(running.handled().values()) == {1}


def test_demo_shows_mail_and_stops_on_sigint(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != PASSWORD_ENV}
    process = subprocess.Popen([*MAILFLOW, "demo", "--dir", str(tmp_path / "demo")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                               text=True)
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "demo: ledger:" in line:  # the whole loop, up to the ledger moving
            break
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    output = "".join(lines) + rest
    assert process.returncode == 0, output
    assert output.count("handled inbox message") >= 3, output
    for step in ("new candidate", "rejection draft", "invited to Career Relay",
                 "SMTP sink received a mail", "scanner fetched the link",
                 "SMTP sink received a mail for ichiro.suzuki@example.jp: 選考結果のご連絡",
                 "the candidate opens the link: 302", "callback was answered 200",
                 "ledger: 1 registration(s), 1/10"):
        assert step in output, step
    assert "demo: stopped" in output
    assert "Traceback" not in output
