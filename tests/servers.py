"""Real mail servers on loopback for tests and benchmarks: Dovecot IMAP, an SMTP sink, a proxy.

Plain helpers with no pytest dependency, so that benchmarks can use them too. Everything listens
on 127.0.0.1 only, keeps its data in a temporary directory, and is stopped by `stop()`/`close()`
(or a `with` block).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from imapclient import IMAPClient

LOOPBACK = "127.0.0.1"
INSTALL_HINT = "run .ci/install-deps (it installs dovecot-imapd and neomutt)"
SPECIAL_FOLDERS = {"Drafts": "\\Drafts", "Sent": "\\Sent", "Trash": "\\Trash"}
SESSION_SECONDS = 300.0  # the IMAP timeout of the tests' own sessions (append, wipe, rebuild)
MailFormat = Literal["sdbox", "maildir"]


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Return once something accepts TCP connections on host:port, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.005)


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies, so no daemon outlives a
    crashed test run (Linux only; the signal comes when the *thread* that started it ends)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# ------------------------------------------------------------------------------------- Dovecot


class DovecotMissing(RuntimeError):
    """The dovecot binary is not installed."""


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int
    username: str
    password: str
    delimiter: str

    @property
    def address(self) -> str:
        return f"{self.username}@example.test"


_CONFIG = """\
# Written by tests/servers.py for a throw-away test server. Dovecot {version}.
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailflow-test-{port}
log_path = {root}/dovecot.log
protocols = imap
listen = {host}
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth2_mechanisms}
auth_cache_size = 0
auth_username_format = %u
auth_failure_delay = 0
first_valid_uid = 1
first_valid_gid = 1
{internal_users}
mail_location = {mail_location}
mail_max_userip_connections = 500
mail_fsync = never
{oauth2_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd/%u
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
{anvil_chroot}}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {imaps_port}
  }}
}}
namespace inbox {{
  inbox = yes
{special_folders}
}}
"""


class Dovecot:
    """A private Dovecot IMAP server on 127.0.0.1, started with `dovecot -F -c CONF`.

    `mail_format` is "sdbox" (fast appends; delimiter "/") or "maildir" (delimiter ".").
    As root, mail is stored as nobody:nogroup (passwd-file refuses UID 0).
    """

    def __init__(self, mail_format: MailFormat = "sdbox", root: Path | None = None,
                 tls: tuple[Path, Path] | None = None,
                 special_folders: dict[str, str] | None = None,
                 oauth2_introspection_url: str | None = None) -> None:
        """``tls``: (certificate chain, key) PEM files: STARTTLS on `port`, TLS on
        `imaps_port`. ``special_folders``: folder name -> special-use flag (RFC 6154).
        ``oauth2_introspection_url``: also offer XOAUTH2 and OAUTHBEARER, each access token
        checked at that URL (an `oauth2` passdb, introspection by POST `token=...`, the user
        in the answer's `username`, valid while `active` is "true"; see
        tests/oauth_service.py)."""
        self.oauth2_introspection_url = oauth2_introspection_url
        self.binary = self.find_binary()
        self.special_folders = SPECIAL_FOLDERS if special_folders is None else special_folders
        self.tls = tls
        self.imaps_port = 0
        self.mail_format: MailFormat = mail_format
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="mailflow-dovecot-")) if root is None else root
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # the mail user (nobody) must reach its home below
        self.host = LOOPBACK
        self.port = 0
        self._users: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self.version = subprocess.run(
            [self.binary, "--version"], capture_output=True, text=True, check=True
        ).stdout.split()[0]
        if tuple(int(part) for part in self.version.split(".")[:2]) != (2, 3):
            raise RuntimeError(
                f"tests/servers.py writes a Dovecot 2.3 configuration; found {self.version} "
                "(2.4 renamed many settings: mail_driver/mail_path, passdb blocks, "
                "auth_allow_cleartext)"
            )
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self._mail_ids = (nobody.pw_uid, nobody.pw_gid)
        else:
            self._mail_ids = (os.geteuid(), os.getegid())

    @staticmethod
    def find_binary() -> str:
        found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
        if found is None:
            raise DovecotMissing(f"the dovecot binary is not installed: {INSTALL_HINT}")
        return found

    @property
    def delimiter(self) -> str:
        return "." if self.mail_format == "maildir" else "/"

    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- life cycle

    def start(self) -> None:
        """Start the server (on a new free port the first time, on the same port afterwards)."""
        if self.running:
            return
        attempts = 3 if self.port == 0 else 1
        for attempt in range(attempts):
            if self.port == 0 or attempt > 0:
                self.port = free_port()
                self.imaps_port = free_port() if self.tls else 0
            self._write_config()
            try:
                self._spawn()
                return
            except RuntimeError:
                if attempt == attempts - 1:
                    raise

    def stop(self) -> None:
        """Stop the master and every child process; data stays for `start()`/`restart()`.

        SIGTERM goes to the whole process group: sent to the master alone, it leaves busy
        `imap` processes running. This way every client gets "* BYE Server shutting down."
        within milliseconds; a master still waiting for its log process after half a second
        (it sometimes waits a full second) is killed.
        """
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # any child that outlived the master

    def restart(self) -> None:
        """Stop and start on the same port with the same data (clients are disconnected)."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _internal_users_setting(self) -> str:
        if os.geteuid() == 0:
            return ""
        me = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        return (
            f"default_internal_user = {me}\ndefault_internal_group = {group}\n"
            f"default_login_user = {me}\nservice imap-login {{\n  chroot =\n}}"
        )

    def _write_config(self) -> None:
        location = {"sdbox": "sdbox:~/mail", "maildir": "maildir:~/Maildir"}[self.mail_format]
        folders = "".join(
            f"  mailbox {name} {{\n    special_use = {use}\n    auto = subscribe\n  }}\n"
            for name, use in self.special_folders.items()
        )
        self.config_path.write_text(
            _CONFIG.format(
                version=self.version,
                root=self.root,
                host=self.host,
                port=self.port,
                internal_users=self._internal_users_setting(),
                anvil_chroot="" if os.geteuid() == 0 else "  chroot =\n",
                mail_location=location,
                special_folders=folders.rstrip("\n"),
                ssl=self._ssl_setting(),
                imaps_port=self.imaps_port,
                oauth2_mechanisms=" xoauth2 oauthbearer" if self.oauth2_introspection_url else "",
                oauth2_passdb=self._oauth2_passdb(),
            )
        )
        (self.root / "passwd").mkdir(exist_ok=True)

    def _oauth2_passdb(self) -> str:
        """Dovecot 2.3's oauth2 passdb (PasswordDatabase.oauth2 in its wiki), only for the
        token mechanisms; PLAIN and LOGIN stay with the passwd-file."""
        if not self.oauth2_introspection_url:
            return ""
        settings = self.root / "dovecot-oauth2.conf.ext"
        settings.write_text(
            f"introspection_mode = post\nintrospection_url = {self.oauth2_introspection_url}\n"
            "force_introspection = yes\nusername_attribute = username\n"
            "active_attribute = active\nactive_value = true\n")
        return (f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                f"  args = {settings}\n}}\n")

    def _ssl_setting(self) -> str:
        if self.tls is None:
            return "ssl = no"
        chain, key = self.tls
        return f"ssl = yes\nssl_cert = <{chain}\nssl_key = <{key}"

    def _spawn(self) -> None:
        # The master keeps its stderr open for good: a pipe would hang whoever reads it.
        with open(self.root / "master.out", "ab") as out:
            process = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self._process = process
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(4).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"dovecot did not start on {self.host}:{self.port}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        text = ""
        for path in (self.root / "master.out", self.log_path):
            if path.exists():
                text += "".join(path.read_text(errors="replace").splitlines(True)[-lines:])
        return text

    # -- users and mail

    def add_user(self, name: str, password: str = "secret") -> ImapAccount:
        """Create a user with an empty mailbox (one passwd-file per user: a file Dovecot
        already read is re-read only when its mtime changes by a whole second)."""
        if not re.fullmatch(r"[A-Za-z0-9._+-]+", name) or name in self._users:
            raise ValueError(f"bad or duplicate user name {name!r}")
        if not re.fullmatch(r"[^:\s]+", password):
            raise ValueError("the password may not contain ':' or white space")
        home = self.root / "home" / name
        home.mkdir(parents=True)
        (self.root / "home").chmod(0o755)
        os.chown(home, *self._mail_ids)
        self._users[name] = password
        uid, gid = self._mail_ids
        temporary = self.root / "passwd" / f".{name}.tmp"
        temporary.write_text(f"{name}:{{PLAIN}}{password}:{uid}:{gid}::{home}::\n")
        temporary.replace(self.root / "passwd" / name)
        return self.account(name)

    def set_password(self, name: str, password: str) -> None:
        """Change a user's password, as an admin would on the server (the new file's mtime is
        moved on by whole seconds so that Dovecot reads it again)."""
        path = self.root / "passwd" / name
        before = path.stat().st_mtime
        if not re.fullmatch(r"[^:\s]+", password):
            raise ValueError("the password may not contain ':' or white space")
        _name, _password, rest = path.read_text().split(":", 2)
        temporary = self.root / "passwd" / f".{name}.tmp"
        temporary.write_text(f"{name}:{{PLAIN}}{password}:{rest}")
        later = max(time.time(), before) + 2
        os.utime(temporary, (later, later))
        temporary.replace(path)
        self._users[name] = password

    def account(self, name: str) -> ImapAccount:
        return ImapAccount(self.host, self.port, name, self._users[name], self.delimiter)

    def client(self, user: str, timeout: float = 10.0) -> IMAPClient:
        """A logged-in IMAPClient for `user` (plain TCP on loopback)."""
        client = IMAPClient(self.host, self.port, ssl=False, timeout=timeout)
        client.login(user, self._users[user])
        return client

    def append(
        self,
        user: str,
        folder: str,
        raw: bytes,
        flags: Sequence[str | bytes] = (),
        msg_time: Any = None,
    ) -> int:
        """Append one message; return its UID."""
        with self._session(user) as client:
            response = client.append(folder, raw, flags=tuple(flags), msg_time=msg_time)
        return _appended_uids(response)[0]

    def append_many(
        self, user: str, folder: str, messages: Iterable[bytes], flags: Sequence[str | bytes] = ()
    ) -> list[int]:
        """Append many messages in one MULTIAPPEND command; return their UIDs in order."""
        items = [{"msg": raw, "flags": tuple(flags)} for raw in messages]
        if not items:
            return []
        with self._session(user) as client:
            _status, lines = client.multiappend(folder, items)
            return _appended_uids(lines[-1])

    def wipe(self, user: str) -> None:
        """Remove every message and every folder except INBOX and the special-use ones.

        UIDs are not reset; use `change_uidvalidity` for that.
        """
        keep = {"INBOX", *SPECIAL_FOLDERS}
        with self._session(user) as client:
            names = [name for _flags, _delim, name in client.list_folders()]
            for name in sorted(names, key=len, reverse=True):
                if name not in keep:
                    client.delete_folder(name)
                elif client.select_folder(name)[b"EXISTS"]:
                    uids = client.search("ALL")
                    client.add_flags(uids, [b"\\Deleted"], silent=True)
                    client.uid_expunge(uids)
                    client.unselect_folder()

    def change_uidvalidity(self, user: str, folder: str, keep_messages: bool = True) -> int:
        """Recreate `folder` as a server rebuild would: a new UIDVALIDITY, UIDs from 1 again.

        The messages (with flags and dates) are put back in their order, so the low UIDs are
        reused, for the same messages. Every session of `user` is disconnected. Returns the
        new UIDVALIDITY.
        """
        with self._session(user) as client:
            client.select_folder(folder)  # an `auto` folder exists on disk once opened
            uids = client.search("ALL")
            found = (client.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"])
                     if uids and keep_messages else {})
            if uids:
                client.add_flags(uids, [b"\\Deleted"], silent=True)
                client.uid_expunge(uids)
            client.unselect_folder()
        if self.mail_format == "maildir" and folder.upper() == "INBOX":
            self._forget_maildir_inbox_uids(user)  # Dovecot cannot RENAME a Maildir INBOX
        else:
            self._recreate_folder(user, folder)
            self.kick(user)
        items = [
            {
                "msg": found[uid][b"BODY[]"],
                "flags": tuple(flag for flag in found[uid][b"FLAGS"] if flag != b"\\Recent"),
                "date": found[uid][b"INTERNALDATE"],
            }
            for uid in sorted(found)
        ]
        with self._session(user) as client:
            if items and keep_messages:
                client.multiappend(folder, items)
            return int(client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])

    def _recreate_folder(self, user: str, folder: str) -> None:
        """RENAME the (empty) folder aside, create it anew, move its subfolders back."""
        aside = f"mailflow-uidvalidity-{time.monotonic_ns()}"
        with self._session(user) as client:
            client.rename_folder(folder, aside)  # Dovecot can even RENAME INBOX (sdbox)
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for _flags, delimiter, child in client.list_folders(aside + self.delimiter, "%"):
                rest = child[len(aside) + len(delimiter.decode()) :]
                client.rename_folder(child, folder + self.delimiter + rest)
            client.delete_folder(aside)

    def _forget_maildir_inbox_uids(self, user: str) -> None:
        """With the server stopped, drop the (empty) Maildir INBOX's UID list and indexes."""
        self.stop()
        maildir = self.root / "home" / user / "Maildir"
        for path in [maildir / "dovecot-uidlist", *maildir.glob("dovecot.index*")]:
            path.unlink(missing_ok=True)
        self.start()

    def doveadm(self, *args: str, ok_codes: Iterable[int] = (0,)) -> str:
        """Run `doveadm -c CONF ARGS...` against this server; return its output."""
        doveadm = shutil.which("doveadm") or shutil.which("doveadm", path="/usr/bin:/usr/sbin")
        if doveadm is None:
            raise DovecotMissing(f"doveadm is not installed: {INSTALL_HINT}")
        done = subprocess.run(
            [doveadm, "-c", str(self.config_path), *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode not in tuple(ok_codes):
            raise RuntimeError(f"doveadm {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def kick(self, user: str) -> None:
        """Disconnect every IMAP session of `user` from the server side (server stays up)."""
        self.doveadm("kick", user, ok_codes=(0, 68))  # 68: nobody was connected

    @contextlib.contextmanager
    def _session(self, user: str) -> Any:
        # the tests' own bulk work (10,000 messages expunged or appended at once) takes far
        # longer than 10 s on a busy machine: a timeout here is a failed test, not a finding
        client = self.client(user, timeout=SESSION_SECONDS)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()


def _appended_uids(response: bytes | str) -> list[int]:
    text = response.decode() if isinstance(response, bytes) else response
    match = re.search(r"\[APPENDUID \d+ ([0-9:,]+)\]", text)
    if match is None:
        raise RuntimeError(f"no APPENDUID in {text!r}")
    uids: list[int] = []
    for part in match.group(1).split(","):
        low, _, high = part.partition(":")
        uids.extend(range(int(low), int(high or low) + 1))
    return uids


# ------------------------------------------------------------------------------------ SMTP sink


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None  # the AUTH user name, if the client authenticated
    answered: bool  # False when the sink dropped the connection instead of replying to DATA


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that keeps every message it receives.

    The failure knobs are plain attributes, so a test can change them between two sends:
    `rcpt_replies` maps a recipient address to the reply given at RCPT TO (a "4xx ..." or
    "5xx ..." line); `mail_from_reply` replaces the reply to every MAIL FROM; with
    `drop_after_data` the message is received and kept, then the connection is closed
    without a reply to DATA (the client cannot know whether it was delivered).
    With `auth=(user, password)` the sink offers AUTH PLAIN/LOGIN without TLS and refuses
    MAIL FROM until the client has authenticated. With `oauth_introspection_url` it offers AUTH
    XOAUTH2 too, each access token checked at that URL (POST `token=...`, as Dovecot's oauth2
    passdb does; see tests/oauth_service.py), the user in the answer's `username`.
    """

    def __init__(self, auth: tuple[str, str] | None = None,
                 tls_context: ssl.SSLContext | None = None,
                 oauth_introspection_url: str | None = None) -> None:
        """``tls_context``: the sink offers STARTTLS with that server context."""
        self.host = LOOPBACK
        self.port = 0
        self.auth = auth
        self.oauth_introspection_url = oauth_introspection_url
        self.oauth_attempts = 0  # AUTH XOAUTH2 commands received
        self.tls_context = tls_context
        self.rcpt_replies: dict[str, str] = {}
        self.mail_from_reply: str | None = None
        self.drop_after_data = False
        self._messages: list[ReceivedMessage] = []
        self._arrived = threading.Condition()
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._arrived:
            return list(self._messages)

    def clear(self) -> None:
        with self._arrived:
            self._messages.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Wait until at least `count` messages arrived; return them all."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(f"{len(self._messages)} of {count} messages after {timeout}s")
            return list(self._messages)

    def start(self) -> None:
        """Start listening (a free port the first time, the same port after `stop()`)."""
        if self._controller is not None:
            return
        if self.port == 0:
            self.port = free_port()
        parameters: dict[str, Any] = {}
        if self.auth is not None or self.oauth_introspection_url:
            parameters = {"authenticator": self._authenticate, "auth_require_tls": False}
        if self.tls_context is not None:
            parameters["tls_context"] = self.tls_context
        handler = _OAuthSinkHandler(self) if self.oauth_introspection_url else _SinkHandler(self)
        controller = Controller(
            handler, hostname=self.host, port=self.port, ready_timeout=10, **parameters
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword) or self.auth is None:
            return AuthResult(success=False, handled=False)
        given = (data.login.decode(errors="replace"), data.password.decode(errors="replace"))
        if given != self.auth:
            return AuthResult(success=False, handled=False)  # aiosmtpd answers 535
        return AuthResult(success=True, auth_data=given[0])

    def introspect(self, token: str) -> str | None:
        """The user an access token stands for, while the token service says it is active."""
        assert self.oauth_introspection_url
        request = urllib.request.Request(self.oauth_introspection_url, method="POST",
                                         data=urllib.parse.urlencode({"token": token}).encode())
        with urllib.request.urlopen(request, timeout=5) as answer:
            said = json.loads(answer.read())
        return str(said["username"]) if said.get("active") == "true" else None

    def _keep(self, message: ReceivedMessage) -> None:
        with self._arrived:
            self._messages.append(message)
            self._arrived.notify_all()


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_MAIL(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        needs_auth = self.sink.auth is not None or self.sink.oauth_introspection_url
        if needs_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if self.sink.mail_from_reply is not None:
            return self.sink.mail_from_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        reply = self.sink.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        drop = self.sink.drop_after_data
        login = session.auth_data if isinstance(session.auth_data, str) else None
        data = envelope.original_content or b""
        message = ReceivedMessage(
            envelope.mail_from or "", tuple(envelope.rcpt_tos), data, login, not drop
        )
        self.sink._keep(message)
        if drop:
            server.transport.abort()  # no reply, no QUIT: the outcome is unknown to the client
            return "421 4.3.0 never sent"
        return "250 OK queued"


class _OAuthSinkHandler(_SinkHandler):
    async def auth_XOAUTH2(self, server: SMTPServer, args: list[str]) -> AuthResult:
        self.sink.oauth_attempts += 1
        try:
            said = base64.b64decode(args[1]).decode()
            fields = dict(part.split("=", 1) for part in said.split("\x01") if "=" in part)
            user, token = fields["user"], fields["auth"].removeprefix("Bearer ")
        except (IndexError, KeyError, ValueError):
            return AuthResult(success=False, handled=False)
        if await asyncio.to_thread(self.sink.introspect, token) != user:
            return AuthResult(success=False, handled=False)  # aiosmtpd answers 535
        return AuthResult(success=True, auth_data=user)


# ------------------------------------------------------------------------------ stalling proxy


class StallingProxy:
    """A loopback TCP proxy in front of `target` that can stall like a cut network.

    `freeze()` stops forwarding in both directions (and stops connecting new clients through)
    without closing any socket, as when a network path dies without a FIN; `thaw()` resumes.
    `cut()` closes every open connection, with a FIN, or with a RST if `reset`; new
    connections are still accepted.
    """

    def __init__(self, target_port: int, target_host: str = LOOPBACK) -> None:
        self.target = (target_host, target_port)
        self.host = LOOPBACK
        self.port = 0
        self.accepted = 0  # connections accepted so far
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    @property
    def frozen(self) -> bool:
        return not self._flowing.is_set()

    def cut(self, reset: bool = False) -> None:
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            link.close(reset)

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            listener.close()
        self.cut()
        self.thaw()

    def __enter__(self) -> StallingProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _peer = listener.accept()
            except OSError:
                return  # listener closed
            self.accepted += 1
            link = _Link(client)
            with self._lock:
                self._links.add(link)
            threading.Thread(target=self._connect, args=(link,), daemon=True).start()

    def _connect(self, link: _Link) -> None:
        self._flowing.wait()
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            self._drop(link, reset=True)
            return
        upstream.settimeout(None)
        if not link.attach(upstream):
            return  # cut while connecting
        for source, sink in ((link.client, upstream), (upstream, link.client)):
            threading.Thread(target=self._pump, args=(link, source, sink), daemon=True).start()

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            self._flowing.wait()  # a frozen proxy holds what it read, like a dead link
            if link.closed:
                return
            if not data:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)  # pass the FIN on
                if link.half_closed():
                    self._drop(link, reset=False)
                return
            try:
                sink.sendall(data)
            except OSError:
                self._drop(link, reset=True)
                return

    def _drop(self, link: _Link, reset: bool) -> None:
        with self._lock:
            self._links.discard(link)
        link.close(reset)


class _Link:
    """One proxied connection: the client's socket and, once connected, the upstream one."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self.closed = False
        self._ends = 0
        self._lock = threading.Lock()

    def attach(self, upstream: socket.socket) -> bool:
        with self._lock:
            if self.closed:
                upstream.close()
                return False
            self.upstream = upstream
            return True

    def half_closed(self) -> bool:
        """Count one direction's end; True once both have ended."""
        with self._lock:
            self._ends += 1
            return self._ends == 2

    def close(self, reset: bool) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            sockets = [sock for sock in (self.client, self.upstream) if sock is not None]
        for sock in sockets:
            with contextlib.suppress(OSError):
                if reset:  # no FIN first: SHUT_RD only wakes our reader, close sends the RST
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.shutdown(socket.SHUT_RD)
                else:
                    sock.shutdown(socket.SHUT_RDWR)
            sock.close()
