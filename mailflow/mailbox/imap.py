"""The mailbox edge: the one module that speaks IMAP (through imapclient).

Everything above it sees folders by role (inbox, drafts, sent, outbox, trash), messages by
(folder, UIDVALIDITY, UID) and raw bytes. IDLE is only a wake-up hint; a dead socket is found by
read timeouts, TCP keepalive and an IDLE that ends early with nothing said.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from mailflow.errors import MailflowError
from mailflow.mailbox.folders import preset_names
from mailflow.mailbox.oauth import TokenRefused, TokenSource, TokenUnavailable
from mailflow.mailbox.sizes import HEAD_BYTES, fetch_batches
from mailflow.mailbox.tls import client_context, tls_reason
from mailflow.settings.config import Mailbox as MailboxSettings

log = logging.getLogger("mailflow.mailbox")

SPECIAL_USE = {"drafts": b"\\Drafts", "sent": b"\\Sent", "trash": b"\\Trash"}
FETCH_BATCH = 200  # messages per FETCH at most (and `fetch_batch_bytes`)
SIZE_BATCH = 1000  # UIDs per FETCH RFC822.SIZE
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


class MailboxError(MailflowError):
    """The IMAP server refused something or could not be reached."""


class ConnectionLost(MailboxError):
    """The connection died (timeout, reset, EOF); reconnect and catch up."""


class AuthenticationFailed(MailboxError):
    """The server refused the login: not a network error; retrying fast cannot help and may
    get the account locked."""


@dataclass(frozen=True)
class FolderState:
    name: str
    uidvalidity: int
    uidnext: int
    exists: int


@dataclass(frozen=True)
class Fetched:
    """A message as fetched: its raw bytes, or (`whole` False: over the size limit) only its
    header block, the body left on the server. `size` is the server's RFC822.SIZE."""

    uid: int
    raw: bytes
    flags: tuple[bytes, ...]
    size: int = 0
    whole: bool = True


def _keepalive(sock: socket.socket, idle: int = 60, interval: int = 15, count: int = 4) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    options = (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", interval), ("TCP_KEEPCNT", count))
    for name, value in options:
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


# RFC 5530 response codes of a refused LOGIN, in words; a code in TEMPORARY is the server's
# trouble, not the credentials' (retried like a network error)
REFUSALS = {"AUTHENTICATIONFAILED": "authentication failed",
            "AUTHORIZATIONFAILED": "not authorised for this mailbox",
            "EXPIRED": "the password has expired",
            "PRIVACYREQUIRED": "a password is refused over a connection that is not encrypted",
            "CONTACTADMIN": "the server asks you to contact its administrator"}
TEMPORARY = {"UNAVAILABLE": "the server cannot check logins right now",
             "LIMIT": "too many connections for this user"}
_CODE = re.compile(r"^\[([A-Z-]+)\]\s*(.*)$", re.DOTALL)


def refused_login(s: MailboxSettings, exc: LoginError) -> MailboxError:
    """A LOGIN the server answered NO (or BAD) to, in plain words (never bytes, never the
    password): AuthenticationFailed, or a plain MailboxError when the server's trouble is
    temporary or the connection died during the login."""
    where = f"IMAP {s.host}:{s.port}"
    if isinstance(exc.__context__, IMAPClientAbortError):
        return ConnectionLost(f"{where}: connection lost during the login")
    said = exc.__context__.args[0] if exc.__context__ and exc.__context__.args else str(exc)
    text = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
    text = re.sub(r"^b(['\"])(.*)\1$", r"\2", text.strip(), flags=re.DOTALL)
    match = _CODE.match(text)
    code, rest = (match.group(1), match.group(2)) if match else ("", text)
    if code in TEMPORARY:
        return MailboxError(f"{where}: {TEMPORARY[code]} ({code.lower()}); trying again")
    words = REFUSALS.get(code) or rest.strip().rstrip(".").lower() or "refused"
    if code == "PRIVACYREQUIRED":
        advice = 'use security = "tls" or "starttls" in [mailbox]'
    elif s.auth == "oauth2":
        words = f"{words}, with a freshly refreshed access token"
        advice = ("check mailbox.username and that the app may use IMAP (its scopes: "
                  f"{' '.join(s.scopes) or 'none configured'})")
    else:
        advice = f"check mailbox.username and the password in ${s.password_env}"
    return AuthenticationFailed(f"{where}: the server refused the login for user "
                                f"{s.username} ({words}): {advice}")


def parse_appenduid(response: bytes | str | None) -> tuple[int, int] | None:
    """(UIDVALIDITY, UID) from an APPEND response carrying `[APPENDUID v uid]` (UIDPLUS)."""
    if response is None:
        return None
    data = response.encode() if isinstance(response, str) else response
    match = _APPENDUID.search(data)
    return (int(match.group(1)), int(match.group(2))) if match else None


class Mailbox:
    """One logged-in IMAP connection: with the password, or with `auth = "oauth2"` an access
    token from `tokens` (one of its own when none is given)."""

    def __init__(self, settings: MailboxSettings, password: str,
                 tokens: TokenSource | None = None) -> None:
        self.settings = settings
        self._password = password
        if tokens is None and settings.auth == "oauth2":
            tokens = TokenSource(settings)
        self._tokens = tokens
        self._client: IMAPClient | None = None
        self._delimiter = "/"
        self._special: dict[str, str] = {}
        self._names: set[str] = set()
        self.selected: str | None = None
        self.last_heard = time.monotonic()

    # -- connection -------------------------------------------------------------------------

    def connect(self) -> None:
        s = self.settings
        timeout = SocketTimeout(connect=min(s.timeout_seconds, 30), read=s.timeout_seconds)
        context = client_context(s.ca_file)
        try:
            client = IMAPClient(s.host, port=s.port, ssl=s.security == "tls",
                                ssl_context=context, timeout=timeout)
            # imapclient sets imaplib's debug level to 5, at which imaplib formats the repr of
            # every literal it reads, logged or not: 2.3x a fetched mail's size, at once
            client._imap.debug = 4
            if s.security == "starttls":
                self._starttls(client, context)
            self._login(client)
        except TokenRefused as exc:
            with contextlib.suppress(OSError):
                client.shutdown()
            raise AuthenticationFailed(str(exc)) from exc
        except TokenUnavailable as exc:
            with contextlib.suppress(OSError):
                client.shutdown()
            raise MailboxError(str(exc)) from exc
        except LoginError as exc:
            with contextlib.suppress(OSError):
                client.shutdown()  # LOGIN comes after the client exists; close it now, not at GC
            raise refused_login(s, exc) from exc
        except ssl.SSLError as exc:
            raise MailboxError(f"IMAP {s.host}:{s.port}: TLS: "
                               f"{tls_reason(exc, s.host, s.ca_file)}") from exc
        except (OSError, IMAPClientError) as exc:
            raise MailboxError(f"IMAP {s.host}:{s.port}: {exc}") from exc
        _keepalive(client.socket())
        self._client = client
        self.selected = None
        self._learn_folders()
        self.heard()

    def _login(self, client: IMAPClient) -> None:
        """LOGIN with the password; with OAuth, AUTHENTICATE OAUTHBEARER when the server offers
        it, else XOAUTH2, and once more with a refreshed token when the server refuses the
        first (it may have expired early, or been revoked with its grant)."""
        s, tokens = self.settings, self._tokens
        if tokens is None:
            client.login(s.username, self._password)
            return
        bearer = b"AUTH=OAUTHBEARER" in client.capabilities()
        for attempt in (1, 2):
            token = tokens.access_token()
            try:
                if bearer:
                    client.oauthbearer_login(s.username, token)
                else:
                    client.oauth2_login(s.username, token)
                return
            except LoginError as exc:
                tokens.refused(token)
                if attempt == 2 or isinstance(exc.__context__, IMAPClientAbortError):
                    raise
                log.info("IMAP %s:%s refused the access token; refreshing it once", s.host,
                         s.port)

    def _starttls(self, client: IMAPClient, context: ssl.SSLContext) -> None:
        """STARTTLS, or an error: never a silent fall back to plain text."""
        if b"STARTTLS" not in client.capabilities():
            s = self.settings
            raise MailboxError(f"IMAP {s.host}:{s.port}: the server does not offer STARTTLS "
                               "(security = \"starttls\"); mailflow does not fall back to plain "
                               "text")
        client.starttls(context)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.socket().settimeout(2)
            client.logout()
        except (OSError, IMAPClientError):
            with contextlib.suppress(OSError):
                client.shutdown()

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise ConnectionLost("not connected")
        return self._client

    @property
    def capabilities(self) -> tuple[bytes, ...]:
        return tuple(self.client.capabilities())

    def has(self, capability: str) -> bool:
        return self.client.has_capability(capability)

    def heard(self) -> None:
        self.last_heard = time.monotonic()

    # -- folders ----------------------------------------------------------------------------

    def _learn_folders(self) -> None:
        folders = self.client.list_folders()
        for _flags, delimiter, _name in folders:
            if delimiter:
                self._delimiter = delimiter.decode() if isinstance(delimiter, bytes) else delimiter
                break
        self._special = {}
        self._names = {name for _flags, _delimiter, name in folders}
        for flags, _delimiter, name in folders:
            for role, flag in SPECIAL_USE.items():
                if flag in flags:
                    self._special.setdefault(role, name)

    @property
    def delimiter(self) -> str:
        return self._delimiter

    def find(self, role: str, configured: str) -> tuple[str, str]:
        """The server's folder for a role, and how it was found, first match wins: its
        special-use flag (RFC 6154); the configured name (`/` as the server's delimiter) when
        the server has it; a provider's usual name that the server has (`folders.PRESETS`);
        else the configured name, to be created."""
        if role in self._special:
            return self._special[role], f"special-use {SPECIAL_USE[role].decode()}"
        name = configured.replace("/", self._delimiter)
        if name in self._names or role not in SPECIAL_USE:
            return name, "configured name"
        for provider, preset in preset_names(role, self.settings.provider):
            if preset in self._names:
                return preset, f"{provider} name"
        return name, "configured name (not on the server yet)"

    def folder(self, role: str, configured: str) -> str:
        """The server's name for a folder (see `find`)."""
        return self.find(role, configured)[0]

    def exists(self, name: str) -> bool:
        return bool(self.client.folder_exists(name))

    def ensure(self, name: str) -> None:
        if not self.exists(name):
            log.info("creating folder %s", name)
            self.client.create_folder(name)
            self.client.subscribe_folder(name)

    def list_names(self) -> list[str]:
        return [name for _flags, _delim, name in self.client.list_folders()]

    # -- reading ----------------------------------------------------------------------------

    def select(self, name: str) -> FolderState:
        info = self.client.select_folder(name)
        self.selected = name
        self.heard()
        return FolderState(
            name=name,
            uidvalidity=int(info[b"UIDVALIDITY"]),
            uidnext=int(info.get(b"UIDNEXT", 0)),
            exists=int(info.get(b"EXISTS", 0)),
        )

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above `last_uid` in the selected folder, ascending (`n:*` also answers the last
        message when none is newer, so filter)."""
        found = self.client.search(["UID", f"{last_uid + 1}:*"])
        self.heard()
        return sorted(uid for uid in found if uid > last_uid)

    def search(self, criteria: list[str | bytes]) -> list[int]:
        found = self.client.search(criteria)
        self.heard()
        return sorted(found)

    def sizes(self, uids: Iterable[int]) -> dict[int, int]:
        """RFC822.SIZE of each message still there (nothing of its body is read)."""
        found: dict[int, int] = {}
        ordered = sorted(uids)
        for start in range(0, len(ordered), SIZE_BATCH):
            data = self.client.fetch(ordered[start : start + SIZE_BATCH], ["RFC822.SIZE"])
            found.update((uid, int(item.get(b"RFC822.SIZE", 0))) for uid, item in data.items())
        self.heard()
        return found

    def fetch(self, uids: Iterable[int], limit: int | None = None) -> Iterator[Fetched]:
        """Messages without setting \\Seen, ascending by UID, in batches of at most FETCH_BATCH
        messages and `fetch_batch_bytes` bytes by the sizes the server reports first. A message
        over `limit` is not fetched: it comes with its header block only (`whole` False)."""
        sizes = self.sizes(uids)
        for batch, whole in fetch_batches(sorted(sizes.items()), FETCH_BATCH,
                                          self.settings.fetch_batch_bytes, limit):
            part = b"BODY[]" if whole else b"BODY[HEADER]<0>"
            log.debug("FETCH %d messages, %d bytes%s", len(batch), sum(sizes[u] for u in batch),
                      "" if whole else " (header block only: over the size limit)")
            data = self.client.fetch(batch, ["BODY.PEEK[]" if whole else
                                             f"BODY.PEEK[HEADER]<0.{HEAD_BYTES}>", "FLAGS"])
            self.heard()
            for uid in batch:
                item = data.pop(uid, None)  # dropped as soon as handed on
                if item is None or item.get(part) is None:
                    continue  # expunged meanwhile
                yield Fetched(uid, bytes(item[part]), tuple(item.get(b"FLAGS", ())), sizes[uid],
                              whole)

    def fetch_headers(self, uids: Iterable[int]) -> dict[int, bytes]:
        """The header block of each message (without setting \\Seen)."""
        found: dict[int, bytes] = {}
        ordered = sorted(uids)
        for start in range(0, len(ordered), FETCH_BATCH):
            data = self.client.fetch(ordered[start : start + FETCH_BATCH], ["BODY.PEEK[HEADER]"])
            for uid, item in data.items():
                found[uid] = bytes(item.get(b"BODY[HEADER]", b""))
        self.heard()
        return found

    def flags(self, uids: Iterable[int]) -> dict[int, tuple[bytes, ...]]:
        data = self.client.fetch(list(uids), ["FLAGS"])
        return {uid: tuple(item.get(b"FLAGS", ())) for uid, item in data.items()}

    # -- writing ----------------------------------------------------------------------------

    def append(
        self, name: str, raw: bytes, flags: Iterable[bytes] = (), when: datetime | None = None
    ) -> tuple[int, int] | None:
        """APPEND; returns (UIDVALIDITY, UID) when the server says it (UIDPLUS), else None."""
        response = self.client.append(name, raw, flags=tuple(flags), msg_time=when)
        self.heard()
        return parse_appenduid(response)

    def add_flags(self, uids: Iterable[int], flags: Iterable[bytes]) -> None:
        self.client.add_flags(list(uids), list(flags), silent=True)

    def remove(self, uids: list[int], trash: str | None = None) -> None:
        """Remove exactly these UIDs from the selected folder: UID EXPUNGE (UIDPLUS), else MOVE
        to `trash`. Never a plain EXPUNGE: it would also remove other clients' \\Deleted mail."""
        if not uids:
            return
        trash = self.folder("trash", trash) if trash else None
        if self.settings.provider == "google" and trash and self.has("MOVE"):
            self.client.move(uids, trash)  # Gmail: an expunged label is not a deleted mail
        elif self.has("UIDPLUS"):
            self.client.add_flags(uids, [b"\\Deleted"], silent=True)
            self.client.uid_expunge(uids)
        elif self.has("MOVE") and trash:
            self.client.move(uids, trash)
        else:
            raise MailboxError("server has neither UIDPLUS nor MOVE: cannot remove one message")
        self.heard()

    def noop(self) -> None:
        self.client.noop()
        self.heard()

    # -- watching ---------------------------------------------------------------------------

    def wait(self, seconds: float) -> bool:
        """Wait for news in the selected folder for up to `seconds`; True when the server said
        something. Uses IDLE when offered (a hint only), else sleeps then NOOPs."""
        if not self.has("IDLE"):
            time.sleep(seconds)
            self.noop()
            return True
        client = self.client
        try:
            client.idle()
            started = time.monotonic()
            responses = client.idle_check(timeout=seconds)
            early = time.monotonic() - started < seconds - 0.05
            client.idle_done()
        except (OSError, IMAPClientError) as exc:
            raise ConnectionLost(f"IDLE: {exc}") from exc
        if early and not responses:
            # imapclient answers [] when the socket hit EOF (imapclient #565)
            raise ConnectionLost("connection closed during IDLE")
        self.heard()
        return any(r for r in responses if not (len(r) >= 1 and r[0] == b"OK"))
