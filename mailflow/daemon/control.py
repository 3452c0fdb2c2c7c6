"""The local control channel: write commands reach the running daemon through an owner-only
Unix socket in the data directory (one JSON request line, one JSON answer line).

When no daemon answers, a command takes the store's writer lock itself; never two writers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailflow.errors import MailflowError

log = logging.getLogger("mailflow.control")

SOCKET_NAME = "control.sock"
Handler = Callable[[dict[str, Any]], Any]


class ControlServer:
    def __init__(self, data_dir: Path, handlers: dict[str, Handler]) -> None:
        self.path = data_dir / SOCKET_NAME
        self.handlers = handlers
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
        except (ConnectionError, asyncio.IncompleteReadError):
            line = b""
        if not line.strip():  # a probe (`daemon_running`) connects and closes: nothing to do
            writer.close()
            return
        try:
            request = json.loads(line)
            handler = self.handlers.get(request.get("command", ""))
            if handler is None:
                answer: dict[str, Any] = {"ok": False, "error": "unknown command", "code": 2}
            else:
                try:
                    result = await asyncio.to_thread(handler, request.get("args", {}))
                    answer = {"ok": True, "result": result}
                except MailflowError as exc:
                    answer = {"ok": False, "error": str(exc), "code": exc.exit_code}
        except (ValueError, UnicodeDecodeError):
            answer = {"ok": False, "error": "bad request", "code": 2}
        except Exception as exc:  # the daemon keeps running whatever a command does
            log.exception("control command failed")
            answer = {"ok": False, "error": f"daemon error: {type(exc).__name__}", "code": 1}
        writer.write(json.dumps(answer, ensure_ascii=False, default=str).encode() + b"\n")
        await writer.drain()
        writer.close()


def daemon_running(data_dir: Path) -> bool:
    path = data_dir / SOCKET_NAME
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def call(data_dir: Path, command: str, args: dict[str, Any] | None = None,
         timeout: float = 600) -> Any:
    """Send one command to the running daemon; raises MailflowError with its answer's code."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(data_dir / SOCKET_NAME))
        sock.sendall(json.dumps({"command": command, "args": args or {}}).encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    answer = json.loads(b"".join(chunks))
    if not answer.get("ok"):
        error = MailflowError(answer.get("error", "failed"))
        error.exit_code = int(answer.get("code", 1))
        raise error
    return answer.get("result")
