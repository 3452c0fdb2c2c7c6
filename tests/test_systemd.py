"""Issue 17, part 3: mailflow under systemd. `mailflow run` as a child process, told to notify a
datagram socket this test listens on, against the real Dovecot: READY=1 only once every folder
is logged in, WATCHDOG=1 while no folder is stuck, RELOADING=1 … READY=1 around SIGHUP,
STOPPING=1 and exit 0 on SIGTERM; journal log lines; the unit file's hardening.

No assertion here is on elapsed time: waits are generous, counts are low bounds."""

from __future__ import annotations

import configparser
import io
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from harness import MAILFLOW, PROJECT, env_for, metrics_auth, wait_until, write_config
from servers import Dovecot, ImapAccount, StallingProxy, free_port

from mailflow import logs
from mailflow.daemon.notify import Systemd, watchdog_interval
from mailflow.settings.config import load_config
from mailflow.store import store_path

UNIT = PROJECT / "deploy" / "mailflow.service"
WATCHDOG_USEC = 1_000_000  # a ping every 0.5 s


@dataclass
class Notice:
    fields: dict[str, str]
    seen: dict[str, object] = field(default_factory=dict)  # what on_ready found at arrival


class NotifySocket:
    """systemd's notification socket, played by the test: an abstract Unix datagram socket,
    each datagram one notice of `KEY=value` lines, kept in the order they came."""

    def __init__(self, on_ready: Callable[[], dict[str, object]] | None = None) -> None:
        self.name = f"mailflow-test-{os.getpid()}-{secrets.token_hex(4)}"
        self.address = "@" + self.name
        self.on_ready = on_ready  # run in the reading thread the moment a READY=1 arrives
        self.notices: list[Notice] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind("\0" + self.name)
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            notice = Notice(fields)
            if fields.get("READY") == "1" and self.on_ready is not None:
                notice.seen = self.on_ready()
            with self._changed:
                self.notices.append(notice)
                self._changed.notify_all()

    def wait_for(self, key: str, value: str | None = None, after: int = 0,
                 timeout: float = 60, prefix: bool = False) -> int:
        """The index of the first notice after `after` with `key` (= `value`, or starting with
        it if `prefix`)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(after, len(self.notices)):
                    got = self.notices[index].fields.get(key)
                    if got is not None and (value is None or got == value
                                            or (prefix and got.startswith(value))):
                        return index
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {key}={value or '…'} in {timeout}s; got "
                                         f"{[n.fields for n in self.notices[after:]]}")
                self._changed.wait(left)

    def count(self, key: str, after: int = 0) -> int:
        with self._changed:
            return sum(1 for n in self.notices[after:] if key in n.fields)

    def statuses(self) -> list[str]:
        with self._changed:
            return [n.fields["STATUS"] for n in self.notices if "STATUS" in n.fields]

    def close(self) -> None:
        self._sock.close()


@dataclass
class Site:
    config: Path
    base: str  # the web edge's URL
    log: Path

    def healthz(self) -> int | None:
        try:
            return httpx.get(self.base + "/healthz", timeout=5).status_code
        except httpx.TransportError:
            return None

    def imap_up(self) -> float:
        text = httpx.get(self.base + "/metrics", headers=metrics_auth(), timeout=10).text
        found = re.search(r'^mailflow_up\{part="imap"\} (\S+)$', text, re.MULTILINE)
        assert found, "mailflow_up{part=\"imap\"} not in /metrics"
        return float(found.group(1))


def site(tmp_path: Path, account: ImapAccount, port: int | None = None, **mailbox: float) -> Site:
    web = free_port()
    config = write_config(tmp_path, account, port=port, extra=(
        f'[web]\nlisten = "127.0.0.1:{web}"\npublic_url = "http://127.0.0.1:{web}"\n'),
        **mailbox)
    return Site(config, f"http://127.0.0.1:{web}", tmp_path / "daemon.log")


@contextmanager
def mailflow_run(where: Site, account: ImapAccount, notify: NotifySocket,
                 journal: bool = False) -> Iterator[subprocess.Popen[bytes]]:
    """`mailflow run` with $NOTIFY_SOCKET and $WATCHDOG_USEC as systemd sets them; with
    `journal`, $JOURNAL_STREAM names its stderr, as systemd's does for a journal stream."""
    out = where.log.open("ab")
    env = {**env_for(account), "NOTIFY_SOCKET": notify.address,
           "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    env.pop("WATCHDOG_PID", None)
    env.pop("JOURNAL_STREAM", None)
    if journal:
        status = os.fstat(out.fileno())
        env["JOURNAL_STREAM"] = f"{status.st_dev}:{status.st_ino}"
    process = subprocess.Popen([*MAILFLOW, "run", "-c", str(where.config)], env=env,
                               stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(15)
        out.close()
        notify.close()


def stop(process: subprocess.Popen[bytes], notify: NotifySocket) -> None:
    """SIGTERM: STOPPING=1, then exit 0."""
    mark, started = len(notify.notices), time.monotonic()
    process.send_signal(signal.SIGTERM)
    notify.wait_for("STOPPING", "1", after=mark)
    assert process.wait(60) == 0
    print(f"stopped {time.monotonic() - started:.2f}s after SIGTERM")  # measured, not asserted


# -- the daemon as systemd sees it ---------------------------------------------------------------


def test_ready_watchdog_reload_and_stop(tmp_path: Path, imap_account: ImapAccount) -> None:
    where = site(tmp_path, imap_account)
    store = store_path(load_config(where.config).data_dir, "sqlite")
    notify = NotifySocket(on_ready=lambda: {"store": store.exists(),
                                            "healthz": where.healthz(), "imap": where.imap_up()})
    started = time.monotonic()
    with mailflow_run(where, imap_account, notify, journal=True) as process:
        ready = notify.wait_for("READY", "1")
        print(f"READY=1 {time.monotonic() - started:.2f}s after start")  # measured, not asserted
        assert notify.notices[ready].seen == {"store": True, "healthz": 200, "imap": 1.0}
        assert notify.notices[ready].fields["STATUS"] == "watching inbox, sent, drafts"

        # 0.5 s apart: about 12 in 6 s; at least 3 even on a loaded machine
        mark = len(notify.notices)
        time.sleep(6)
        assert notify.count("WATCHDOG", after=mark) >= 3

        mark = len(notify.notices)
        process.send_signal(signal.SIGHUP)
        reloading = notify.wait_for("RELOADING", "1", after=mark)
        assert int(notify.notices[reloading].fields["MONOTONIC_USEC"]) > 0
        again = notify.wait_for("READY", "1", after=reloading)
        assert notify.notices[again].fields["STATUS"] == "watching inbox, sent, drafts"
        wait_until(lambda: "rules and templates reloaded" in where.log.read_text(),
                   what="the reload logged")
        mark = len(notify.notices)
        notify.wait_for("WATCHDOG", "1", after=mark)  # still pinging after the reload

        # `mailflow rules reload` (the control channel) is bracketed the same way
        mark = len(notify.notices)
        told = subprocess.run([*MAILFLOW, "rules", "reload", "-c", str(where.config)],
                              env=env_for(imap_account), capture_output=True, text=True,
                              timeout=60)
        assert told.returncode == 0, told.stderr
        reloading = notify.wait_for("RELOADING", "1", after=mark)
        notify.wait_for("READY", "1", after=reloading)

        stop(process, notify)
    statuses = notify.statuses()
    assert statuses[0].startswith("waiting for IMAP: ") or statuses[0].startswith("watching")
    assert not [s for s in statuses if "@" in s or imap_account.username in s]

    # $JOURNAL_STREAM named its stderr: priorities, no timestamps
    lines = where.log.read_text().splitlines()
    assert "<6>mailflow.daemon: stopped" in lines
    assert all(re.match(r"<[0-7]>", line) for line in lines), lines
    assert not [line for line in lines if re.search(r"\d\d:\d\d:\d\d", line)]


def test_no_ready_while_the_server_is_unreachable(tmp_path: Path, dovecot: Dovecot,
                                                 imap_account: ImapAccount) -> None:
    """A network path that is dead at start (connections hang): the daemon waits for it, says
    so in STATUS=, and is ready once the path comes back."""
    with StallingProxy(dovecot.port) as proxy:
        proxy.freeze()
        where = site(tmp_path, imap_account, port=proxy.port)
        notify = NotifySocket()
        with mailflow_run(where, imap_account, notify) as process:
            notify.wait_for("STATUS", "waiting for IMAP: 0 of 3 folders logged in")
            wait_until(lambda: proxy.accepted >= 3, what="the daemon trying to connect")
            time.sleep(4)  # connections held, timing out (timeout_seconds = 3) and retried
            assert notify.count("READY") == 0 and process.poll() is None
            assert where.healthz() == 200  # the web edge is up meanwhile; only READY waits
            proxy.thaw()
            ready = notify.wait_for("READY", "1")
            assert notify.notices[ready].fields["STATUS"] == "watching inbox, sent, drafts"
            assert where.imap_up() == 1
            stop(process, notify)


def test_no_ready_while_the_login_is_refused(tmp_path: Path, dovecot: Dovecot,
                                            imap_account: ImapAccount) -> None:
    """The server refuses the login at start: no READY; fixed on the server and SIGHUP, the
    daemon logs in at once and is ready."""
    user = imap_account.username
    dovecot.set_password(user, "Lock9-plugh-17")
    where = site(tmp_path, imap_account, auth_retry_seconds=300)
    notify = NotifySocket()
    with mailflow_run(where, imap_account, notify) as process:
        notify.wait_for("STATUS", "waiting for IMAP: the server refuses the login (see the log)")
        time.sleep(2)
        assert notify.count("READY") == 0 and process.poll() is None
        dovecot.set_password(user, imap_account.password)
        mark = len(notify.notices)
        process.send_signal(signal.SIGHUP)
        ready = notify.wait_for("READY", "1", after=mark)
        assert notify.count("RELOADING") == 0  # not ready before: nothing to bracket
        assert notify.notices[ready].fields["STATUS"] == "watching inbox, sent, drafts"
        stop(process, notify)


def test_a_stuck_folder_stops_the_watchdog_pings(tmp_path: Path, dovecot: Dovecot,
                                                 imap_account: ImapAccount) -> None:
    """The path to the server dies after start: once the folders were silent past
    silence_alarm_seconds, no WATCHDOG=1 comes (systemd would restart the daemon); when the
    path is back, the pings are too. The read timeout is long, so that the connections stay
    silent through the test (a reconnect attempt counts as hearing from the server)."""
    with StallingProxy(dovecot.port) as proxy:
        where = site(tmp_path, imap_account, port=proxy.port, silence_alarm_seconds=5,
                     timeout_seconds=30)
        notify = NotifySocket()
        with mailflow_run(where, imap_account, notify) as process:
            notify.wait_for("READY", "1")
            notify.wait_for("WATCHDOG", "1")
            mark = len(notify.notices)
            proxy.freeze()
            # the round that finds the folders silent sends no ping, then this STATUS
            unhealthy = notify.wait_for("STATUS", "unhealthy: ", after=mark, prefix=True)
            time.sleep(3)  # six health rounds
            assert where.healthz() == 503
            assert notify.count("WATCHDOG", after=unhealthy) == 0
            proxy.thaw()
            healthy = notify.wait_for("STATUS", "watching inbox, sent, drafts", after=unhealthy)
            notify.wait_for("WATCHDOG", "1", after=healthy)
            stop(process, notify)


def test_a_refused_login_keeps_the_pings_going(tmp_path: Path, dovecot: Dovecot,
                                               imap_account: ImapAccount) -> None:
    """A password changed on the server while the daemon runs: unhealthy (/healthz 503), but a
    restart would not help, so the watchdog pings go on."""
    user = imap_account.username
    where = site(tmp_path, imap_account, auth_retry_seconds=300)
    notify = NotifySocket()
    with mailflow_run(where, imap_account, notify) as process:
        notify.wait_for("READY", "1")
        dovecot.set_password(user, "Rot8-xyzzy-42")
        dovecot.kick(user)
        wait_until(lambda: where.healthz() == 503, timeout=30, what="/healthz 503")
        mark = len(notify.notices)
        time.sleep(6)
        assert notify.count("WATCHDOG", after=mark) >= 3
        assert notify.statuses()[-1].startswith("unhealthy: ")
        stop(process, notify)


def test_a_broken_rule_file_never_gets_ready(tmp_path: Path, imap_account: ImapAccount) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(load_config(site(tmp_path, imap_account).config).rules_dir, rules)
    (rules / "sources.toml").write_text("[[source]\nname = \n", encoding="utf-8")
    where = site(tmp_path, imap_account)
    text = where.config.read_text(encoding="utf-8")
    where.config.write_text(re.sub(r'(?m)^dir = ".*"$', f'dir = "{rules}"', text),
                            encoding="utf-8")
    notify = NotifySocket()
    with mailflow_run(where, imap_account, notify) as process:
        assert process.wait(60) == 2
        time.sleep(0.5)
        assert notify.count("READY") == 0
        assert "sources.toml" in where.log.read_text()


# -- the notifier on its own ---------------------------------------------------------------------


def test_without_notify_socket_nothing_is_sent() -> None:
    systemd = Systemd({"WATCHDOG_USEC": "1000000"})
    assert not systemd.enabled
    systemd.send("READY=1")
    systemd.stopping()
    assert systemd._notifier is None


def test_watchdog_interval_as_sd_watchdog_enabled_reads_it() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}) \
        == 0.5
    assert watchdog_interval({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


# -- journal lines -------------------------------------------------------------------------------


def _record(level: int, message: str, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("bad input")
        except ValueError:
            info = sys.exc_info()
    return logging.LogRecord("mailflow.watcher", level, __file__, 1, message, None, info)


def test_journal_lines_carry_the_priority_and_no_time() -> None:
    journal = logs.JournalLines()
    assert journal.format(_record(logging.ERROR, "gone")) == "<3>mailflow.watcher: gone"
    assert journal.format(_record(logging.WARNING, "w")) == "<4>mailflow.watcher: w"
    assert journal.format(_record(logging.INFO, "i")) == "<6>mailflow.watcher: i"
    assert journal.format(_record(logging.DEBUG, "d")) == "<7>mailflow.watcher: d"
    assert journal.format(_record(logging.CRITICAL, "c")) == "<2>mailflow.watcher: c"
    traced = journal.format(_record(logging.ERROR, "failed", exc=True)).splitlines()
    assert len(traced) > 3 and all(line.startswith("<3>") for line in traced)
    assert traced[-1] == "<3>ValueError: bad input"


def test_journal_stream_detected_by_device_and_inode(tmp_path: Path) -> None:
    with (tmp_path / "err").open("w") as stream, (tmp_path / "other").open("w") as other:
        status = os.fstat(stream.fileno())
        named = {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"}
        assert logs.to_journal(stream, named)
        assert not logs.to_journal(other, named)  # inherited, but stderr was redirected
        assert not logs.to_journal(stream, {})
        assert not logs.to_journal(stream, {"JOURNAL_STREAM": "junk"})
        assert not logs.to_journal(io.StringIO(), named)


def test_setup_picks_journal_lines_only_for_the_journal(tmp_path: Path) -> None:
    script = ("import logging; from mailflow import logs; logs.setup({fmt!r}); "
              "logging.getLogger('mailflow.x').warning('careful')")

    def stderr_of(fmt: str, journal: bool) -> str:
        path = tmp_path / f"{fmt}-{journal}.err"
        with path.open("w") as err:
            env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
            if journal:
                status = os.fstat(err.fileno())
                env["JOURNAL_STREAM"] = f"{status.st_dev}:{status.st_ino}"
            subprocess.run([sys.executable, "-c", script.format(fmt=fmt)], stderr=err,
                           env=env, check=True, timeout=60)
        return path.read_text().strip()

    assert stderr_of("plain", journal=True) == "<4>mailflow.x: careful"
    assert stderr_of("journal", journal=False) == "<4>mailflow.x: careful"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \S+ WARNING mailflow.x: careful",
                        stderr_of("plain", journal=False))
    assert '"level": "warning"' in stderr_of("json", journal=True)  # json stays json


# -- the unit file -------------------------------------------------------------------------------


HARDENING = {
    "User": "mailflow", "Group": "mailflow", "StateDirectory": "mailflow",
    "StateDirectoryMode": "0700", "ConfigurationDirectory": "mailflow",
    "ProtectSystem": "strict", "ProtectHome": "true", "NoNewPrivileges": "true",
    "PrivateTmp": "true", "PrivateDevices": "true",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "UMask": "0077",
    "Restart": "on-failure", "EnvironmentFile": "/etc/mailflow/mailflow.env",
    "Type": "notify", "NotifyAccess": "main", "ExecReload": "/bin/kill -HUP $MAINPID",
}


def test_the_unit_is_hardened() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # keys are case-sensitive
    unit.read(UNIT, encoding="utf-8")
    service = unit["Service"]
    assert {key: service.get(key) for key in HARDENING} == HARDENING
    assert service["ExecStart"].endswith("mailflow run -c /etc/mailflow/config.toml")
    for key in ("WatchdogSec", "TimeoutStopSec", "TimeoutStartSec"):
        assert re.fullmatch(r"\d+(s|min)", service[key]), key
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """systemd's own parser: an unknown key or a bad value is only a warning there, so the
    output must not mention the unit at all."""
    copy = tmp_path / "mailflow.service"
    shutil.copy(UNIT, copy)
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                            text=True, timeout=120)
    said = [line for line in (result.stdout + result.stderr).splitlines()
            if "mailflow.service" in line]
    assert result.returncode == 0 and not said, result.stdout + result.stderr
