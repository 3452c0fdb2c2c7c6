"""Issue 7: rejection drafts rewritten in Drafts on a real Dovecot — once, safely."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from harness import (
    MAILFLOW,
    PASSWORD_ENV,
    DaemonThread,
    env_for,
    wait_until,
    write_config,
)
from servers import Dovecot, ImapAccount

from mailflow.demo import samples
from mailflow.pool import consent_links
from mailflow.settings.config import load_config
from mailflow.store import open_store

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3 rejection attachment\n" + bytes(range(256))


def rejection_draft(account: ImapAccount, version: int = 1,
                    message_id: str = "<draft-1@example.co.jp>") -> bytes:
    message = EmailMessage()
    message["From"] = account.address
    message["To"] = "taro.yamada@example.net"
    message["Subject"] = "選考結果のご連絡"
    message["Message-ID"] = message_id
    body = (f"山田 太郎 様\n\nこの度はご応募いただきありがとうございました。\n"
            f"慎重に選考いたしました結果、誠に残念ながら今回はご期待に沿えない結果となりました。\n"
            f"#mailflow reason=スキル不足 rescout=yes\n(版 {version})\n\n"
            "--\n株式会社サンプル 人事部\n")
    message.set_content(body, charset="iso-2022-jp", cte="7bit")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="選考資料.pdf")
    return message.as_bytes()


def drafts(dovecot: Dovecot, account: ImapAccount) -> dict[int, tuple[bytes, tuple[bytes, ...]]]:
    with dovecot.client(account.username) as client:
        client.select_folder("Drafts", readonly=True)
        uids = client.search("ALL")
        data = client.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
    # a draft the daemon removes between SEARCH and FETCH comes back without its body: gone
    return {uid: (item[b"BODY[]"], item[b"FLAGS"]) for uid, item in data.items()
            if item.get(b"BODY[]") is not None and b"FLAGS" in item}


def rewritten(found: dict[int, tuple[bytes, tuple[bytes, ...]]]) -> list[bytes]:
    return [raw for raw, _flags in found.values() if b"X-Mailflow-Relay:" in raw]


def assert_one_good_rewrite(dovecot: Dovecot, account: ImapAccount, version: int = 1) -> None:
    found = drafts(dovecot, account)
    assert len(found) == 1, f"{len(found)} drafts"
    (raw, flags), = found.values()
    assert b"\\Draft" in flags
    message = email.message_from_bytes(raw, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "/r/" in text and "キャリアリレー" in text
    assert "#mailflow" not in text and f"(版 {version})" in text
    attachment = next(message.iter_attachments())
    assert attachment.get_content() == PDF and attachment.get_filename() == "選考資料.pdf"


@pytest.fixture
def env(imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    return env_for(imap_account)


def known_candidate(running: DaemonThread, dovecot: Dovecot, account: ImapAccount) -> None:
    dovecot.append(account.username, "INBOX", samples.direct_application_jis().replace(
        samples.RECRUITING.encode(), account.address.encode()))
    wait_until(lambda: running.daemon.store.find("candidates", "emails",
                                                 "taro.yamada@example.net"), what="candidate")


def test_japanese_rejection_draft_is_rewritten_once(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, env: dict[str, str]) -> None:
    config = write_config(tmp_path, imap_account, extra="[rejection]\nquiet_seconds = 0.5\n")
    with DaemonThread(config) as running:
        known_candidate(running, dovecot, imap_account)
        dovecot.append(imap_account.username, "Drafts", rejection_draft(imap_account),
                       flags=[b"\\Draft"])
        wait_until(lambda: rewritten(drafts(dovecot, imap_account)), what="the rewrite")
        time.sleep(1.5)  # a few more scans: nothing more happens
        assert_one_good_rewrite(dovecot, imap_account)
        candidate = running.daemon.store.find("candidates", "emails", "taro.yamada@example.net")[0]
    assert candidate["relay_status"] == "invited" and candidate["status"] == "rejected"
    assert candidate["rejection"]["reason"] == "スキル不足" and candidate["rescout_ok"] is True


def test_other_clients_deleted_draft_survives_and_three_saves_rewrite_once(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, env: dict[str, str]) -> None:
    config = write_config(tmp_path, imap_account, extra="[rejection]\nquiet_seconds = 2\n")
    user = imap_account.username
    other = (b"From: hr@example.co.jp\r\nTo: someone@example.net\r\nSubject: memo\r\n"
             b"Message-ID: <other@example.co.jp>\r\n\r\nnot ours\r\n")
    dovecot.append(user, "Drafts", other, flags=[b"\\Draft", b"\\Deleted"])
    with DaemonThread(config) as running:
        known_candidate(running, dovecot, imap_account)
        for version in (1, 2, 3):  # an autosaving client: each save is a new message
            dovecot.append(user, "Drafts", rejection_draft(imap_account, version),
                           flags=[b"\\Draft"])
            time.sleep(0.3)
        wait_until(lambda: rewritten(drafts(dovecot, imap_account)), what="the rewrite")
        time.sleep(2.5)
        found = drafts(dovecot, imap_account)
    assert len(rewritten(found)) == 1
    assert b"(\xe7\x89\x88 3)" in rewritten(found)[0] or b"3)" in rewritten(found)[0]
    survivors = [raw for raw, flags in found.values() if b"<other@example.co.jp>" in raw]
    assert len(survivors) == 1 and len(found) == 2
    message = email.message_from_bytes(rewritten(found)[0], policy=email.policy.default)
    assert "(版 3)" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


@pytest.mark.parametrize("crash_at", ["draft:journaled", "draft:appended", "draft:removed"])
def test_kill9_at_each_step_converges_to_one_draft(
        crash_at: str, tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        env: dict[str, str]) -> None:
    config = write_config(tmp_path, imap_account, extra="[rejection]\nquiet_seconds = 0\n")
    with DaemonThread(config) as running:
        known_candidate(running, dovecot, imap_account)
    dovecot.append(imap_account.username, "Drafts", rejection_draft(imap_account),
                   flags=[b"\\Draft"])
    log = (tmp_path / "daemon.log").open("ab")
    crashing = subprocess.Popen([*MAILFLOW, "run", "-c", str(config)], stdin=subprocess.DEVNULL,
                                env={**env, "MAILFLOW_CRASH_AT": crash_at}, stdout=log,
                                stderr=log)
    assert crashing.wait(60) == -9, "the daemon should have killed itself at " + crash_at
    with DaemonThread(config):
        wait_until(lambda: len(drafts(dovecot, imap_account)) == 1
                   and rewritten(drafts(dovecot, imap_account)), timeout=20,
                   what="convergence")
        time.sleep(1.0)
        assert_one_good_rewrite(dovecot, imap_account)
    store = open_store(load_config(config).data_dir, read_only=True)
    try:
        tokens = store.count("tokens") - consent_links.issued(store)  # Career Relay links
    finally:
        store.close()
    assert tokens == 1, "one rejection, one link"


NEOMUTT_RC = """\
set folder = "imap://{user}@127.0.0.1:{port}/"
set imap_user = "{user}"
set imap_pass = "{password}"
set postponed = "+Drafts"
set record = ""
set ssl_starttls = no
set ssl_force_tls = no
set edit_headers = no
set send_charset = "iso-2022-jp:utf-8"
set postpone = yes
set editor = "true"
set fast_reply = yes
set askcc = no
set askbcc = no
set header_cache = ""
set message_cachedir = ""
"""


def test_draft_postponed_by_neomutt_is_rewritten(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount, env: dict[str, str]) -> None:
    neomutt = subprocess.run(["which", "neomutt"], capture_output=True, text=True).stdout.strip()
    assert neomutt, "neomutt is not installed: run .ci/install-deps"
    config = write_config(tmp_path, imap_account, extra="[rejection]\nquiet_seconds = 1\n")
    rc = tmp_path / "neomuttrc"
    rc.write_text(NEOMUTT_RC.format(user=imap_account.username, port=imap_account.port,
                                    password=imap_account.password))
    draft = tmp_path / "draft.eml"
    draft.write_text("From: " + imap_account.address + "\nTo: taro.yamada@example.net\n"
                     "Subject: 選考結果のご連絡\n\n山田 太郎 様\n\n"
                     "誠に残念ながら今回はご期待に沿えない結果となりました。\n"
                     "#mailflow reason=経験不足\n\n-- \n株式会社サンプル\n",
                     encoding="utf-8")
    with DaemonThread(config) as running:
        known_candidate(running, dovecot, imap_account)
        postpone_with_neomutt(neomutt, rc, draft, tmp_path)
        wait_until(lambda: rewritten(drafts(dovecot, imap_account)), timeout=30,
                   what="neomutt's draft rewritten")
        found = drafts(dovecot, imap_account)
    assert len(found) == 1
    message = email.message_from_bytes(rewritten(found)[0], policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "/r/" in text and "#mailflow" not in text and "誠に残念ながら" in text


def postpone_with_neomutt(neomutt: str, rc: Path, draft: Path, home: Path) -> None:
    """Drive NeoMutt in tmux-free fashion: a pseudo-terminal, wait for compose, press P."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: neomutt on the pseudo-terminal
        os.environ.update({"HOME": str(home), "TERM": "xterm", "LANG": "C.UTF-8"})
        os.execv(neomutt, [neomutt, "-n", "-F", str(rc), "-H", str(draft)])
    screen = b""
    deadline = time.monotonic() + 30
    pressed = False
    answered: set[bytes] = set()
    try:
        while time.monotonic() < deadline:
            ready, _w, _x = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
            composing = b"NeoMutt: Compose" in screen
            for prompt in (b"To: ", b"Subject: "):  # the prompts come prefilled: accept them
                if not composing and prompt in screen and prompt not in answered:
                    time.sleep(0.3)
                    os.write(fd, b"\r")
                    answered.add(prompt)
            if not pressed and composing:
                time.sleep(0.5)
                os.write(fd, b"P")
                pressed = True
            finished, _status = os.waitpid(pid, os.WNOHANG)
            if finished:
                return
        if b"Message postponed" in screen:
            return
        raise AssertionError(f"neomutt did not postpone; screen: {screen[-500:]!r}")
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
