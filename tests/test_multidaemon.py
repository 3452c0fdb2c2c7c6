"""Several daemons on one PostgreSQL database (issue 23 item 2), against Dovecot: a second daemon
for the same mailbox is refused; daemons for two mailboxes run at once, each killed with kill -9
and started again, and every application is recorded once — the same applicant mailing both
mailboxes is one candidate."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for, wait_until, write_config
from postgres_server import Postgres
from servers import Dovecot, ImapAccount, SmtpSink, free_port

DSN_ENV = "MAILFLOW_STORE_DSN"


def _config(directory: Path, account: ImapAccount) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = write_config(directory, account, extra=f'[web]\nlisten = "127.0.0.1:{free_port()}"\n')
    text = path.read_text(encoding="utf-8").replace(
        '[store]\npath = "data"\n',
        f'[store]\npath = "data"\nengine = "postgresql"\ndsn_env = "{DSN_ENV}"\n')
    path.write_text(text, encoding="utf-8")
    return path


def _application(n: int, to: str, tag: str) -> bytes:
    return (f"From: =?UTF-8?B?5bGx55Sw?= <applicant{n}@example.net>\r\nTo: {to}\r\n"
            f"Subject: =?UTF-8?B?5b+c5Yuf?= {n}\r\nMessage-ID: <md-{tag}-{n}@example.net>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"応募いたします。営業職を希望します。{n}\r\n").encode()


def _listed(config: Path, env: dict[str, str]) -> list[dict[str, object]]:
    done = subprocess.run([*MAILFLOW, "candidates", "--json", "-c", str(config)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


class Daemon:
    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config, self.env = config, env
        self.log_path = config.parent / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mailflow", "run", "-c", str(self.config)],
                env=self.env, stdout=log, stderr=log)
        self.starts += 1
        wait_until(lambda: self.log_path.read_text(encoding="utf-8", errors="replace")
                   .count("inbox: watching INBOX") >= self.starts, timeout=60,
                   what=f"{self.config.parent.name} to watch INBOX")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def test_a_second_daemon_for_the_same_mailbox_is_refused(
        postgres: Postgres, tmp_path: Path, imap_account: ImapAccount) -> None:
    env = {**env_for(imap_account), DSN_ENV: postgres.schema()}
    first = Daemon(_config(tmp_path / "a", imap_account), env)
    first.start()
    try:
        second = subprocess.run(  # its own data directory: only the database is shared
            [sys.executable, "-m", "mailflow", "run", "-c",
             str(_config(tmp_path / "b", imap_account))],
            capture_output=True, text=True, env=env, timeout=90)
        assert second.returncode != 0
        assert "in use by another writer for imap://" in second.stderr, second.stderr
        assert first.proc is not None and first.proc.poll() is None  # the first runs on
    finally:
        first.stop()


def test_daemons_for_two_mailboxes_share_one_database_across_kill_9(
        postgres: Postgres, tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount) -> None:
    other = dovecot.add_user(imap_account.username + "-b", imap_account.password)
    env = {**env_for(imap_account), DSN_ENV: postgres.schema()}
    boxes = [(imap_account, Daemon(_config(tmp_path / "a", imap_account), env)),
             (other, Daemon(_config(tmp_path / "b", other), env))]
    try:
        for _account, daemon in boxes:
            daemon.start()
        for n in range(4):  # applicant 9 mails both mailboxes at once
            for i, (account, _daemon) in enumerate(boxes):
                dovecot.append(account.username, "INBOX",
                               _application(10 * i + n, account.address, f"{i}"))
        for i, (account, _daemon) in enumerate(boxes):
            dovecot.append(account.username, "INBOX", _application(9, account.address, f"{i}"))
        config = boxes[0][1].config
        wait_until(lambda: len(_listed(config, env)) == 9, timeout=90, what="nine candidates")
        for _account, daemon in boxes:
            daemon.kill()
        for n in range(4, 6):
            for i, (account, _daemon) in enumerate(boxes):
                dovecot.append(account.username, "INBOX",
                               _application(10 * i + n, account.address, f"{i}"))
        for _account, daemon in boxes:
            daemon.start()
        wait_until(lambda: len(_listed(config, env)) == 13, timeout=90,
                   what="thirteen candidates")
        listed = {str(c["emails"][0]): c for c in _listed(boxes[1][1].config, env)}  # type: ignore[index]
        expected = {f"applicant{10 * i + n}@example.net" for i in range(2) for n in range(6)}
        assert set(listed) == expected | {"applicant9@example.net"}
        assert len(listed["applicant9@example.net"]["applications"]) == 2  # type: ignore[arg-type]
        assert all(len(c["applications"]) == 1  # type: ignore[arg-type]
                   for email, c in listed.items() if email != "applicant9@example.net")
    finally:
        for _account, daemon in boxes:
            daemon.stop()


def test_two_daemons_share_the_outbox_and_send_each_mail_once(
        postgres: Postgres, tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both daemons' delivery rounds claim from one outbox (FOR UPDATE SKIP LOCKED): 40 mails
    queued through both, the SMTP server counts each Message-ID once."""
    other = dovecot.add_user(imap_account.username + "-b", imap_account.password)
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    monkeypatch.setenv(DSN_ENV, postgres.schema())
    configs = []
    for name, account in (("a", imap_account), ("b", other)):
        (tmp_path / name).mkdir()
        path = write_config(tmp_path / name, account, smtp_sink)
        path.write_text(path.read_text(encoding="utf-8").replace(
            '[store]\npath = "data"\n',
            f'[store]\npath = "data"\nengine = "postgresql"\ndsn_env = "{DSN_ENV}"\n'),
            encoding="utf-8")
        configs.append(path)
    with DaemonThread(configs[0]) as a, DaemonThread(configs[1]) as b:
        queued = [daemon.daemon.outbox.queue(_rejection(n), to=[f"c{n}@example.net"],
                                             purpose="rejection", candidate_id=f"c{n}")
                  for n in range(20) for daemon in (a, b)]
        smtp_sink.wait_for(len(queued))
        time.sleep(2.5)  # more delivery rounds on both: nothing more goes out
        holders = {str((a.daemon.outbox.store.get("outbox", d["id"]) or {}).get("claimed_by"))
                   for d in queued}
    ids = [m.data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
           for m in smtp_sink.messages]
    assert sorted(ids) == sorted(d["message_id"] for d in queued)  # each once
    assert len(holders) == 2, holders  # both daemons sent some


def _rejection(n: int) -> bytes:
    return (f"From: jobs@example.co.jp\r\nTo: c{n}@example.net\r\nSubject: result {n}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"残念ながら {n}\r\n").encode()


def test_each_mailbox_keeps_its_own_checkpoint_on_the_shared_store(
        postgres: Postgres, tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount) -> None:
    """Folder names and UIDs repeat across mailboxes: one daemon's INBOX checkpoint read by the
    other made it skip its first mails (same UIDVALIDITY) or resync its folder over and over
    (another UIDVALIDITY). Mailbox a takes six mails first, then b three: all nine arrive."""
    other = dovecot.add_user(imap_account.username + "-b", imap_account.password)
    env = {**env_for(imap_account), DSN_ENV: postgres.schema()}
    boxes = [(imap_account, Daemon(_config(tmp_path / "a", imap_account), env)),
             (other, Daemon(_config(tmp_path / "b", other), env))]
    try:
        for _account, daemon in boxes:
            daemon.start()
        for n in range(6):
            dovecot.append(imap_account.username, "INBOX",
                           _application(n, imap_account.address, "a"))
        config = boxes[0][1].config
        wait_until(lambda: len(_listed(config, env)) == 6, timeout=90, what="six candidates")
        for n in range(3):
            dovecot.append(other.username, "INBOX", _application(10 + n, other.address, "b"))
        wait_until(lambda: len(_listed(config, env)) == 9, timeout=90, what="nine candidates")
    finally:
        for _account, daemon in boxes:
            daemon.stop()
    for _account, daemon in boxes:
        assert "UIDVALIDITY changed" not in daemon.log_path.read_text(encoding="utf-8")
