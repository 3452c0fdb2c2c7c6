"""One chaos site: its own Dovecot (restarted under load), an SMTP sink, a misbehaving proxy in
front of each, the daemon's config pointing through the proxies, a clock file the daemon reads
(real time plus an offset the test can move), and the daemon started and killed as a child."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from harness import MAILFLOW, env_for, wait_until, write_config
from servers import Dovecot, ImapAccount, SmtpSink, free_port

from mailflow.clock import CLOCK_FILE_ENV, iso
from mailflow.settings.config import load_config
from mailflow.starter import SHIPPED_RULES
from mailflow.store import configured_store

from .proxy import ChaosProxy, Faults

OUTBOX_FOLDER = "Outbox/Rejections"


@dataclass(frozen=True)
class _Port:
    port: int


class MovingClock:
    """Writes the time to a file every 50 ms (the daemon's FileClock reads it): real time,
    `speed` times as fast from the start (the soak), plus `offset` (moved by `advance`)."""

    def __init__(self, path: Path, speed: float = 1.0) -> None:
        self.path = path
        self.speed = speed
        self.offset = timedelta()
        self._began = datetime.now(UTC)
        self._began_at = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._writing = threading.Lock()  # `advance` and the thread write the same file
        self.write()

    def now(self) -> datetime:
        run = timedelta(seconds=(time.monotonic() - self._began_at) * self.speed)
        return self._began + run + self.offset

    def write(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        with self._writing:
            temporary.write_text(iso(self.now()), encoding="utf-8")
            temporary.replace(self.path)  # a reader never sees half a time

    def advance(self, delta: timedelta) -> None:
        self.offset += delta
        self.write()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.write()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class ChaosSite:
    def __init__(self, root: Path, dovecot: Dovecot, account: ImapAccount, sink: SmtpSink,
                 seed: int, faults: Faults, extra: str = "", speed: float = 1.0,
                 rules: Path | None = None) -> None:
        self.root = root
        self.dovecot = dovecot
        self.account = account
        self.sink = sink
        self.imap_proxy = ChaosProxy(dovecot.port, seed, faults, "imap")
        self.smtp_proxy = ChaosProxy(sink.port, seed + 1, faults, "smtp")
        self.clock = MovingClock(root / "clock.txt", speed)
        self.rules = rules
        self.web_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        self.config: Path | None = None
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = root / "daemon.log"
        self._log: IO[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.env_extra: dict[str, str] = {}

    @property
    def proxies(self) -> tuple[ChaosProxy, ChaosProxy]:
        return self.imap_proxy, self.smtp_proxy

    def __enter__(self) -> ChaosSite:
        for proxy in self.proxies:
            proxy.start()
        self.clock.start()
        self.config = write_config(
            self.root, self.account, _Port(self.smtp_proxy.port),  # type: ignore[arg-type]
            port=self.imap_proxy.port, extra=f"""
[web]
listen = "127.0.0.1:{self.web_port}"
public_url = "{self.base_url}"
public_rate_per_second = 10000
public_burst = 10000

[rejection]
mode = "both"
outbox_folder = "{OUTBOX_FOLDER}"
quiet_seconds = 0
""" + self.extra)
        if self.rules is not None:  # the site's own rule files (the soak's follow-up)
            text = self.config.read_text(encoding="utf-8")
            self.config.write_text(text.replace(f'dir = "{SHIPPED_RULES}"',
                                                f'dir = "{self.rules}"'), encoding="utf-8")
        self._log = self.log_path.open("ab")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_daemon()
        self.clock.stop()
        for proxy in self.proxies:
            proxy.stop()
        if self._log is not None:
            self._log.close()

    # -- the daemon

    def env(self) -> dict[str, str]:
        return {**env_for(self.account), CLOCK_FILE_ENV: str(self.clock.path),
                **self.env_extra}

    def start_daemon(self) -> subprocess.Popen[bytes]:
        assert self.config is not None and self._log is not None
        self.process = subprocess.Popen([*MAILFLOW, "run", "-c", str(self.config)],
                                        env=self.env(), stdout=self._log, stderr=self._log,
                                        stdin=subprocess.DEVNULL)
        self.starts += 1
        return self.process

    def kill_daemon(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            self.kills += 1
        process.wait(30)

    def stop_daemon(self) -> int | None:
        """SIGTERM, as systemd stops it; the exit status (None if it had to be killed)."""
        process, self.process = self.process, None
        if process is None:
            return 0
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            return process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None

    def daemon_pid(self) -> int | None:
        return self.process.pid if self.process and self.process.poll() is None else None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def first_start(site: ChaosSite) -> None:
    """A calm first start: the daemon takes only mail that arrives after it first saw INBOX
    (history is `backfill`'s), so the load begins once INBOX and Sent have checkpoints."""
    assert site.config is not None
    config = load_config(site.config)
    for proxy in site.proxies:
        proxy.calm()
    site.start_daemon()

    def checkpoints() -> int:
        try:
            store = configured_store(config, read_only=True)
        except Exception:
            return 0
        try:
            return store.count("checkpoints")
        finally:
            store.close()

    wait_until(lambda: checkpoints() >= 2, timeout=60, what="the first checkpoints")
    assert site.stop_daemon() == 0
    for proxy in site.proxies:
        proxy.rage()
