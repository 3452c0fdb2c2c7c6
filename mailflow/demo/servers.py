"""The demo's stand-ins: an in-memory IMAP server (pymap) and an SMTP sink (aiosmtpd)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from mailflow.errors import MailflowError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MemoryImap:
    """pymap's `dict` backend in a child process, on 127.0.0.1, one user."""

    def __init__(self, user: str, password: str, log_path: Path) -> None:
        self.user = user
        self.password = password
        self.port = free_port()
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, attempts: int = 3) -> None:
        """Start the server; a port taken meanwhile by someone else is retried on another."""
        for attempt in range(attempts):
            try:
                self._start()
                return
            except MailflowError:
                if attempt == attempts - 1:
                    raise
                self.port = free_port()

    def _start(self) -> None:
        pymap = Path(sys.executable).with_name("pymap")
        command = [str(pymap)] if pymap.exists() else [sys.executable, "-m", "pymap"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--no-tls", "dict",
                    f"--demo-user={self.user}", f"--demo-password={self.password}"]
        with self.log_path.open("wb") as log:
            # its own session: Ctrl-C reaches the demo, which stops the daemon first
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:]
                raise MailflowError(f"demo IMAP server exited: {' '.join(tail)}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise MailflowError(f"demo IMAP server did not start; see {self.log_path}")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()


class SinkHandler:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.received.append((envelope.mail_from or "", list(envelope.rcpt_tos), content))
        return "250 OK"


class SmtpSink:
    """An aiosmtpd server that keeps what it receives."""

    def __init__(self) -> None:
        self.handler = SinkHandler()
        self.port = free_port()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
