"""Issue 16 (part 4): folders found by their special-use flags under Japanese names, with no folder
names in the config — the way Microsoft 365 and Gmail name them in a Japanese account — and
provider names used when a server announces no flags."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for, wait_until, write_config
from servers import Dovecot, ImapAccount
from test_drafts import known_candidate, rejection_draft

from mailflow.mailbox.imap import Mailbox
from mailflow.settings.config import Mailbox as MailboxSettings

JAPANESE = {"下書き": "\\Drafts", "送信済みアイテム": "\\Sent", "削除済みアイテム": "\\Trash"}


@pytest.fixture(scope="module")
def japanese() -> Iterator[Dovecot]:
    server = Dovecot(special_folders=JAPANESE)
    server.start()
    yield server
    server.close()


def config_without_folder_names(tmp_path: Path, account: ImapAccount) -> Path:
    path = write_config(tmp_path, account, extra="[rejection]\nquiet_seconds = 0.3\n")
    text = path.read_text(encoding="utf-8")
    assert "drafts =" not in text and "sent =" not in text  # the defaults: Drafts, Sent
    return path


def test_check_connect_names_each_role_and_how_it_was_found(
        tmp_path: Path, japanese: Dovecot) -> None:
    account = japanese.add_user("jp-check", "secret")
    config = config_without_folder_names(tmp_path, account)
    done = subprocess.run([*MAILFLOW, "check", "--connect", "-c", str(config)],
                          capture_output=True, text=True, env=env_for(account), timeout=60)
    lines = done.stdout.splitlines()
    assert "imap inbox: INBOX (found by configured name): ok" in lines
    assert "imap sent: 送信済みアイテム (found by special-use \\Sent): ok" in lines
    assert "imap drafts: 下書き (found by special-use \\Drafts): ok" in lines
    assert "imap trash: 削除済みアイテム (found by special-use \\Trash): ok" in lines


def test_a_draft_in_the_japanese_drafts_folder_is_rewritten(
        tmp_path: Path, japanese: Dovecot, monkeypatch: pytest.MonkeyPatch) -> None:
    account = japanese.add_user("jp-daemon", "secret")
    monkeypatch.setenv(PASSWORD_ENV, account.password)
    config = config_without_folder_names(tmp_path, account)
    with DaemonThread(config) as running:
        roles = {w.role: w.folder for w in running.daemon.watchers}
        assert roles["drafts"] == "下書き" and roles["sent"] == "送信済みアイテム"
        known_candidate(running, japanese, account)
        japanese.append(account.username, "下書き", rejection_draft(account),
                        flags=[b"\\Draft"])

        def rewritten() -> bool:
            with japanese.client(account.username) as client:
                client.select_folder("下書き", readonly=True)
                return bool(client.search(["HEADER", "X-Mailflow-Relay", ""]))

        wait_until(rewritten, what="the rewrite in 下書き")
    with japanese.client(account.username) as client:
        assert not client.folder_exists("Drafts") and not client.folder_exists("Sent")


@pytest.fixture(scope="module")
def unflagged() -> Iterator[Dovecot]:
    server = Dovecot(special_folders={})  # announces no special-use flags at all
    server.start()
    yield server
    server.close()


@pytest.mark.parametrize(("provider", "folder", "how"), [
    ("google", "[Gmail]/送信済みメール", "Gmail name"),
    ("microsoft", "送信済みアイテム", "Microsoft 365 name"),
    ("custom", "送信済みアイテム", "Microsoft 365 name"),  # any provider's name the server has
])
def test_provider_names_are_found_when_no_flag_is_announced(
        unflagged: Dovecot, provider: str, folder: str, how: str) -> None:
    account = unflagged.add_user(f"preset-{provider}", "secret")
    with unflagged.client(account.username) as client:
        client.create_folder(folder)
    settings = MailboxSettings(host=account.host, port=account.port, security="none",
                               username=account.username,
                               provider=provider)  # type: ignore[arg-type]
    mailbox = Mailbox(settings, account.password)
    mailbox.connect()
    try:
        assert mailbox.find("sent", "Sent") == (folder, how)
        assert mailbox.find("drafts", "Drafts") == (
            "Drafts", "configured name (not on the server yet)")
        assert mailbox.find("inbox", "INBOX") == ("INBOX", "configured name")
    finally:
        mailbox.close()
