"""Running the real daemon in tests: a config for the test servers, the daemon in a thread or a
child process, and reading what it recorded."""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from servers import ImapAccount, SmtpSink

from mailflow.daemon.service import Daemon
from mailflow.mailbox.pipeline import Stage
from mailflow.settings.config import load_config
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES
from mailflow.store import open_store

PASSWORD_ENV = "MAILFLOW_TEST_IMAP_PASSWORD"
PROJECT = Path(__file__).resolve().parents[1]
MAILFLOW = [sys.executable, "-m", "mailflow"]


def write_config(directory: Path, account: ImapAccount, sink: SmtpSink | None = None,
                 port: int | None = None, extra: str = "", **mailbox: Any) -> Path:
    settings = {"idle_seconds": 2, "timeout_seconds": 3, "reconnect_max_seconds": 2,
                "silence_alarm_seconds": 30, **mailbox}
    lines = "\n".join(f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}"
                      for k, v in settings.items()).replace("'", '"')
    path = directory / "config.toml"
    path.write_text(f"""
[company]
domains = ["example.co.jp"]

[mailbox]
host = "127.0.0.1"
port = {port or account.port}
security = "none"
username = "{account.username}"
password_env = "{PASSWORD_ENV}"
address = "{account.address}"
{lines}

[smtp]
host = "127.0.0.1"
port = {sink.port if sink else 2525}
security = "none"
from = "{account.address}"

[store]
path = "data"

[rules]
dir = "{SHIPPED_RULES}"
templates_dir = "{SHIPPED_TEMPLATES}"
{extra}
""", encoding="utf-8")
    return path


def offline_config(directory: Path, rules_dir: Path | str = SHIPPED_RULES) -> Path:
    """A config for commands that only need the store: no server is ever contacted."""
    path = directory / "config.toml"
    path.write_text(f"""
[mailbox]
host = "127.0.0.1"
port = 1
security = "none"
username = "hr"
password_env = "{PASSWORD_ENV}"
address = "jobs@example.co.jp"

[smtp]
host = "127.0.0.1"
port = 1
security = "none"
from = "jobs@example.co.jp"

[store]
path = "data"

[rules]
dir = "{rules_dir}"
templates_dir = "{SHIPPED_TEMPLATES}"
""", encoding="utf-8")
    return path


def metrics_auth() -> dict[str, str]:
    """The header that scrapes /metrics: the admin token (conftest's) as a bearer token."""
    return {"Authorization": f"Bearer {os.environ['MAILFLOW_ADMIN_TOKEN']}"}


def env_for(account: ImapAccount) -> dict[str, str]:
    return {**os.environ, PASSWORD_ENV: account.password}


def wait_until(predicate: Callable[[], Any], timeout: float = 20, interval: float = 0.1,
               what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class DaemonThread:
    """The real Daemon, serving in a background thread of the test process."""

    def __init__(self, config_path: Path, stages: Callable[[Daemon], list[Stage]] | None = None,
                 wait_watching: bool = True, **intake: Any) -> None:
        """`wait_watching=False`: entering does not wait for every folder to be watched (a
        test whose login the server refuses)."""
        self.daemon = Daemon(load_config(config_path), stages=stages)
        self.wait_watching = wait_watching
        for key, value in intake.items():
            setattr(self.daemon.intake, key, value)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            asyncio.run(self.daemon.serve())
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> DaemonThread:
        self._thread.start()
        if self.wait_watching:
            wait_until(self.watching, what="the daemon to watch every folder")
        return self

    def watching(self) -> bool:
        d = self.daemon
        if not d.watchers or self.error:
            if self.error:
                raise self.error
            return False
        return all(w.connected and w.rounds > 0 for w in d.watchers)

    def __exit__(self, *exc: object) -> None:
        self.daemon.stop()
        self._thread.join(30)
        assert not self._thread.is_alive(), "daemon did not stop"

    def handled(self) -> collections.Counter[str]:
        return handled_counts(self.daemon.store.log("events"))


def handled_counts(entries: Iterator[tuple[int, dict[str, Any]]]) -> collections.Counter[str]:
    """How often each message key was handed to the pipeline."""
    return collections.Counter(e["data"]["key"] for _seq, e in entries
                               if e["type"] == "message_handled")


def handled_in_store(config_path: Path) -> collections.Counter[str]:
    config = load_config(config_path)
    store = open_store(config.data_dir, config.store.engine, read_only=True)
    try:
        return handled_counts(store.log("events"))
    finally:
        store.close()


@contextmanager
def daemon_process(config_path: Path, account: ImapAccount) -> Iterator[subprocess.Popen[bytes]]:
    log = (config_path.parent / "daemon.log").open("ab")
    process = subprocess.Popen([*MAILFLOW, "run", "-c", str(config_path)], env=env_for(account),
                               stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def message(n: int, subject: str = "test", body: str = "本文です。") -> bytes:
    return (f"From: sender{n}@example.net\r\nTo: jobs@example.co.jp\r\n"
            f"Subject: {subject} {n}\r\nMessage-ID: <m{n}.{time.time_ns()}@example.net>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
            f"{body} {n}\r\n").encode()
