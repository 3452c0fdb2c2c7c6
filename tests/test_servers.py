"""The loopback servers are real: what the fixtures promise, measured against them."""

from __future__ import annotations

import asyncio
import imaplib
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from imapclient import IMAPClient
from servers import (
    Dovecot,
    DovecotMissing,
    ImapAccount,
    SmtpSink,
    StallingProxy,
    free_port,
)

RAW = (
    b"From: =?UTF-8?B?5bGx55Sw?= <yamada@example.jp>\r\n"
    b"To: jobs@example.test\r\n"
    b"Subject: =?ISO-2022-JP?B?GyRCMX5KZxsoQg==?=\r\n"
    b"Message-ID: <servers-test-1@example.jp>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=ISO-2022-JP\r\n"
    b"Content-Transfer-Encoding: 7bit\r\n"
    b"\r\n"
    b"\x1b$B$h$m$7$/$*4j$$$7$^$9\x1b(B\r\n"
    b".leading dot stays\r\n"
    b"trailing spaces   \r\n"
)


def message(number: int) -> bytes:
    return b"Message-ID: <m%d@example.test>\r\nSubject: %d\r\n\r\nbody %d\r\n" % (
        number,
        number,
        number,
    )


def send(sink: SmtpSink, raw: bytes = RAW, **options: Any) -> Any:
    options.setdefault("sender", "hr@example.test")
    options.setdefault("recipients", ["candidate@example.jp"])
    return asyncio.run(
        aiosmtplib.send(raw, hostname=sink.host, port=sink.port, timeout=10, **options)
    )


def greeting(sock: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = sock.recv(1)
        assert chunk, "connection closed before the greeting ended"
        line += chunk
    return line


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on `port` (Linux /proc)."""
    found = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(
                    socket.inet_ntoa(bytes.fromhex(address)[::-1]) if len(address) == 8 else address
                )
    return found


# ------------------------------------------------------------------------------------- Dovecot


def test_login_and_special_use_folders(dovecot: Dovecot, imap_account: ImapAccount) -> None:
    client = IMAPClient(imap_account.host, imap_account.port, ssl=False, timeout=10)
    client.login(imap_account.username, imap_account.password)
    folders = {name: flags for flags, _delimiter, name in client.list_folders()}
    assert client.find_special_folder(b"\\Drafts") == "Drafts"
    assert client.find_special_folder(b"\\Sent") == "Sent"
    assert client.find_special_folder(b"\\Trash") == "Trash"
    assert set(folders) == {"INBOX", "Drafts", "Sent", "Trash"}
    assert {b"\\Sent"} <= set(folders["Sent"])
    assert {name for _flags, _delimiter, name in client.list_sub_folders()} >= {"Drafts", "Sent"}
    assert imap_account.delimiter == "/" == client.namespace().personal[0][1]
    client.logout()


def test_wrong_password_is_refused(imap_account: ImapAccount) -> None:
    client = IMAPClient(imap_account.host, imap_account.port, ssl=False, timeout=10)
    with pytest.raises(imaplib.IMAP4.error):
        client.login(imap_account.username, "wrong")


def test_listens_on_loopback_only(dovecot: Dovecot, smtp_sink: SmtpSink) -> None:
    assert listening_addresses(dovecot.port) == {"127.0.0.1"}
    assert listening_addresses(smtp_sink.port) == {"127.0.0.1"}


def test_append_fetches_back_identical_bytes(dovecot: Dovecot, imap_account: ImapAccount) -> None:
    user = imap_account.username
    uid = dovecot.append(user, "INBOX", RAW, flags=[b"\\Seen"])
    assert dovecot.append_many(user, "INBOX", [message(2), message(3)]) == [uid + 1, uid + 2]
    with dovecot.client(user) as client:
        client.select_folder("INBOX", readonly=True)
        fetched = client.fetch([uid], ["BODY.PEEK[]", "FLAGS"])[uid]
    assert fetched[b"BODY[]"] == RAW
    assert b"\\Seen" in fetched[b"FLAGS"]


def test_accounts_do_not_share_mail(dovecot: Dovecot, imap_account: ImapAccount) -> None:
    other = dovecot.add_user(f"{imap_account.username}-other", "other-secret")
    dovecot.append(imap_account.username, "INBOX", message(1))
    with dovecot.client(other.username) as client:
        assert client.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"] == 0


def test_idle_wakes_on_append_from_second_connection(
    dovecot: Dovecot, imap_account: ImapAccount
) -> None:
    watcher = dovecot.client(imap_account.username)
    watcher.select_folder("INBOX")
    watcher.idle()
    started = time.monotonic()
    uid = dovecot.append(imap_account.username, "INBOX", message(1))
    responses = watcher.idle_check(timeout=5)
    waited = time.monotonic() - started
    watcher.idle_done()
    watcher.logout()
    assert (uid, b"EXISTS") in responses
    assert waited < 2  # Dovecot holds IDLE notifications for about 0.5 s


def test_restart_keeps_mail_and_uids(dovecot: Dovecot, imap_account: ImapAccount) -> None:
    user = imap_account.username
    uids = dovecot.append_many(user, "INBOX", [message(1), message(2)])
    before = dovecot.client(user)
    status = before.folder_status("INBOX", [b"UIDVALIDITY", b"UIDNEXT"])
    before.select_folder("INBOX")
    port = dovecot.port

    dovecot.restart()

    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        before.noop()
    assert dovecot.port == port
    with dovecot.client(user) as after:
        assert after.folder_status("INBOX", [b"UIDVALIDITY", b"UIDNEXT"]) == status
        after.select_folder("INBOX", readonly=True)
        assert after.search("ALL") == uids
        assert after.fetch(uids[:1], ["BODY.PEEK[]"])[uids[0]][b"BODY[]"] == message(1)


def test_kick_disconnects_sessions(dovecot: Dovecot, imap_account: ImapAccount) -> None:
    client = dovecot.client(imap_account.username)
    client.select_folder("INBOX")
    dovecot.kick(imap_account.username)
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        client.noop()


@pytest.mark.parametrize("server", ["dovecot", "dovecot_maildir"])
@pytest.mark.parametrize("folder", ["INBOX", "Drafts"])
def test_uidvalidity_change_reuses_low_uids(
    server: str, folder: str, request: pytest.FixtureRequest
) -> None:
    dovecot: Dovecot = request.getfixturevalue(server)
    user = dovecot.add_user(f"uv-{server}-{folder}".replace("_", "-")).username
    first = dovecot.append_many(user, folder, [message(1), message(2), message(3)])
    with dovecot.client(user) as client:
        client.select_folder(folder)
        client.delete_messages(first[:1])
        client.uid_expunge(first[:1])
        old = client.folder_status(folder, [b"UIDVALIDITY", b"UIDNEXT"])
    assert first == [1, 2, 3]

    new_uidvalidity = dovecot.change_uidvalidity(user, folder)

    assert new_uidvalidity != old[b"UIDVALIDITY"]
    with dovecot.client(user) as client:
        client.select_folder(folder, readonly=True)
        assert client.search("ALL") == [1, 2]  # the same UIDs now name other messages
        found = client.fetch([1, 2], ["BODY.PEEK[]"])
        assert [found[uid][b"BODY[]"] for uid in (1, 2)] == [message(2), message(3)]
        assert client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"] == new_uidvalidity
        assert client.find_special_folder(b"\\Drafts") == "Drafts"


def test_maildir_hierarchy_delimiter_is_dot(
    dovecot_maildir: Dovecot, maildir_account: ImapAccount
) -> None:
    assert maildir_account.delimiter == "."
    with dovecot_maildir.client(maildir_account.username) as client:
        client.create_folder("INBOX.Applications")
        names = {name: delimiter for _flags, delimiter, name in client.list_folders()}
    assert names["INBOX.Applications"] == b"."


def test_wipe_empties_the_mailbox(dovecot: Dovecot, imap_account: ImapAccount) -> None:
    user = imap_account.username
    dovecot.append_many(user, "INBOX", [message(1), message(2)])
    with dovecot.client(user) as client:
        client.create_folder("Candidates/2025")
    dovecot.append(user, "Candidates/2025", message(3))
    dovecot.wipe(user)
    with dovecot.client(user) as client:
        names = {name for _flags, _delimiter, name in client.list_folders()}
        assert names == {"INBOX", "Drafts", "Sent", "Trash"}
        assert client.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"] == 0


def test_missing_dovecot_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda *_args, **_kwargs: None)
    with pytest.raises(DovecotMissing, match=r"\.ci/install-deps"):
        Dovecot()


# ------------------------------------------------------------------------------------ SMTP sink


def test_smtp_sink_receives_bytes_and_envelope(smtp_sink: SmtpSink) -> None:
    errors, _reply = send(smtp_sink, recipients=["a@example.jp", "b@example.jp"])
    assert errors == {}
    [received] = smtp_sink.wait_for(1)
    assert received.mail_from == "hr@example.test"
    assert received.rcpt_tos == ("a@example.jp", "b@example.jp")
    assert received.data == RAW
    assert received.answered and received.login is None


def test_smtp_sink_with_auth(smtp_sink_auth: SmtpSink) -> None:
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
        send(smtp_sink_auth)
    assert refused.value.code == 530
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        send(smtp_sink_auth, username="mailflow", password="wrong")
    send(smtp_sink_auth, username="mailflow", password="relay-secret")
    [received] = smtp_sink_auth.messages
    assert received.login == "mailflow"


def test_rcpt_rejections(smtp_sink: SmtpSink) -> None:
    smtp_sink.rcpt_replies["gone@example.jp"] = "550 5.1.1 No such user"
    smtp_sink.rcpt_replies["full@example.jp"] = "452 4.2.2 Mailbox full"
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        send(smtp_sink, recipients=["gone@example.jp"])
    assert refused.value.recipients[0].code == 550
    errors, _reply = send(
        smtp_sink, recipients=["gone@example.jp", "full@example.jp", "ok@example.jp"]
    )
    assert {address: error.code for address, error in errors.items()} == {
        "gone@example.jp": 550,
        "full@example.jp": 452,
    }
    [received] = smtp_sink.messages
    assert received.rcpt_tos == ("ok@example.jp",)


def test_mail_from_rejection(smtp_sink: SmtpSink) -> None:
    smtp_sink.mail_from_reply = "550 5.7.1 Sender not allowed"
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
        send(smtp_sink)
    assert refused.value.code == 550
    assert smtp_sink.messages == []


def test_drop_after_data_leaves_the_outcome_unknown(smtp_sink: SmtpSink) -> None:
    smtp_sink.drop_after_data = True
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        send(smtp_sink)
    [received] = smtp_sink.messages  # it did arrive: a resend would be a duplicate
    assert received.data == RAW and not received.answered


def test_smtp_sink_restarts_on_the_same_port(smtp_sink: SmtpSink) -> None:
    port = smtp_sink.port
    smtp_sink.stop()
    with pytest.raises(aiosmtplib.SMTPConnectError):
        send(smtp_sink)
    smtp_sink.start()
    send(smtp_sink)
    assert smtp_sink.port == port and len(smtp_sink.messages) == 1


# ------------------------------------------------------------------------------ stalling proxy


def test_proxy_freeze_holds_bytes_without_closing(
    dovecot: Dovecot, stalling_proxy: Callable[..., StallingProxy]
) -> None:
    proxy = stalling_proxy(dovecot.port)
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
        assert greeting(sock).startswith(b"* OK")
        proxy.freeze()
        sock.sendall(b"a1 NOOP\r\n")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(100)
        proxy.thaw()
        sock.settimeout(5)
        assert sock.recv(100).startswith(b"a1 OK")


def test_proxy_freeze_makes_an_imap_read_time_out(
    dovecot: Dovecot, imap_account: ImapAccount, stalling_proxy: Callable[..., StallingProxy]
) -> None:
    proxy = stalling_proxy(dovecot.port)
    client = IMAPClient(proxy.host, proxy.port, ssl=False, timeout=0.5)
    client.login(imap_account.username, imap_account.password)
    client.select_folder("INBOX")
    proxy.freeze()
    started = time.monotonic()
    with pytest.raises((TimeoutError, imaplib.IMAP4.abort)):
        client.noop()
    assert 0.4 < time.monotonic() - started < 3
    proxy.thaw()
    again = IMAPClient(proxy.host, proxy.port, ssl=False, timeout=5)
    again.login(imap_account.username, imap_account.password)
    assert again.noop()
    assert proxy.accepted == 2


def test_proxy_cut_closes_connections(
    dovecot: Dovecot, stalling_proxy: Callable[..., StallingProxy]
) -> None:
    proxy = stalling_proxy(dovecot.port)
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
        assert greeting(sock).startswith(b"* OK")
        proxy.cut()
        assert sock.recv(100) == b""
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
        assert greeting(sock).startswith(b"* OK")
        proxy.cut(reset=True)
        with pytest.raises(ConnectionResetError):
            sock.recv(100)


def test_free_port_is_bindable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
