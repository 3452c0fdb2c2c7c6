"""Issue 21, the web edge under slow clients: header and body timeouts, a connection limit that
leaves the mail path its file descriptors, an accept loop that neither floods the log nor hits
EMFILE; and /metrics answering from cached figures while the store lock is held."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, env_for, metrics_auth, wait_until
from harness import write_config as harness_config
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from servers import Dovecot, ImapAccount, free_port

from mailflow.clock import FrozenClock
from mailflow.demo import samples
from mailflow.errors import ProblemsError
from mailflow.relay.ledger import ReferralLedger
from mailflow.settings.config import load_config
from mailflow.store import open_store
from mailflow.web import acceptor
from mailflow.web.acceptor import RESERVED_FDS, ConnectionGate, Episode, connection_limit
from mailflow.web.metrics import Metrics

SLOW_HEADER = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: "
OPEN_FILES = 1024


@pytest.fixture(autouse=True)
def password(imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)


def edge_config(directory: Path, account: ImapAccount, web: str) -> tuple[Path, str]:
    port = free_port()
    config = harness_config(directory, account, extra=(
        f'[web]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n{web}'))
    return config, f"http://127.0.0.1:{port}"


def sample(base: str, name: str, **labels: str) -> float | None:
    text = httpx.get(f"{base}/metrics", headers=metrics_auth(), timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server closed `sock` (EOF or reset), False while it is still open."""
    sock.setblocking(False)
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


@pytest.fixture
def slow_clients() -> Iterator[list[socket.socket]]:
    """Sockets closed after the test; this process may open 4096 files meanwhile."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_slow(base: str, count: int, into: list[socket.socket],
              request: bytes = SLOW_HEADER) -> None:
    port = int(base.rpartition(":")[2])
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        into.append(sock)
        with contextlib.suppress(ConnectionError):  # closed already: it waited longest
            sock.sendall(request)


def limited_daemon(config: Path, account: ImapAccount, log: Path) -> subprocess.Popen[bytes]:
    def limit_open_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))

    with log.open("ab") as out:
        return subprocess.Popen([*MAILFLOW, "run", "-c", str(config)], env=env_for(account),
                                stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                preexec_fn=limit_open_files)


def candidates(config: Path) -> list[dict[str, Any]]:
    loaded = load_config(config)
    store = open_store(loaded.data_dir, loaded.store.engine, read_only=True)
    try:
        return list(store.scan("candidates"))
    finally:
        store.close()


def test_1100_slow_clients_leave_intake_and_healthz_working_and_the_log_small(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        slow_clients: list[socket.socket]) -> None:
    config, base = edge_config(tmp_path, imap_account, "header_timeout_seconds = 600\n")
    log = tmp_path / "daemon.log"
    daemon = limited_daemon(config, imap_account, log)
    try:
        wait_until(lambda: healthy(base), what="the daemon's /healthz")
        limit = OPEN_FILES - RESERVED_FDS
        open_slow(base, 1100, slow_clients)
        wait_until(lambda: (sample(base, "mailflow_web_connections_shed_total") or 0)
                   >= 1100 - limit, what="the slow connections taken in (the slowest closed)")

        answer = httpx.get(f"{base}/healthz", timeout=1)
        assert answer.status_code == 200, answer.text
        raw = samples.direct_application_jis().replace(samples.RECRUITING.encode(),
                                                       imap_account.address.encode())
        dovecot.append(imap_account.username, "INBOX", raw)
        (taken,) = wait_until(lambda: candidates(config), timeout=30, what="the application")
        assert "taro.yamada@example.net" in taken["emails"]
        assert taken["applications"], taken

        assert sample(base, "mailflow_web_connection_limit") == limit
        assert (sample(base, "mailflow_web_connections_open") or 0) <= limit
        still_open = sum(not closed_by_server(s) for s in slow_clients)
        assert 0 < still_open <= limit  # held, not timed out (600 s); the slowest made room
        assert daemon.poll() is None, "the daemon stopped"
    finally:
        daemon.terminate()
        daemon.wait(30)
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "out of system resource" not in text and "Too many open files" not in text
    assert "Traceback" not in text
    assert text.count("the limit for") <= 1, text[-2000:]
    assert len(text.encode()) < 16_384, f"{len(text)} bytes of log"


def test_slow_headers_and_stalled_bodies_are_closed_after_their_timeouts(
        tmp_path: Path, imap_account: ImapAccount, slow_clients: list[socket.socket]) -> None:
    config, base = edge_config(tmp_path, imap_account,
                               "header_timeout_seconds = 0.5\nbody_timeout_seconds = 0.5\n")
    with DaemonThread(config):
        open_slow(base, 20, slow_clients)
        open_slow(base, 1, slow_clients, request=b"")  # connects and says nothing
        stalled = (b"POST /callbacks/career-relay HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\": ")
        open_slow(base, 1, slow_clients, request=stalled)
        kept_alive = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        open_slow(base, 1, slow_clients, request=kept_alive)
        answered = slow_clients[-1].recv(4096)
        assert answered.startswith(b"HTTP/1.1 200"), answered
        slow_clients[-1].sendall(SLOW_HEADER)  # the next request on it comes slowly

        wait_until(lambda: all(closed_by_server(s) for s in slow_clients), timeout=20,
                   what="every slow connection closed by the edge")
        assert (sample(base, "mailflow_web_connections_timed_out_total", phase="header")
                or 0) >= 22
        assert sample(base, "mailflow_web_connections_timed_out_total", phase="body") == 1
        with httpx.Client(timeout=10) as client:  # a client that sends its request is served,
            assert [client.get(f"{base}/healthz").status_code for _ in range(2)] == [200, 200]


def test_bad_edge_limits_are_positioned_errors(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[web]\nheader_timeout_seconds = 0\nbody_timeout_seconds = \"long\"\n"
                    "max_connections = 0\n", encoding="utf-8")
    with pytest.raises(ProblemsError) as caught:
        load_config(path)
    lines = [str(p) for p in caught.value.problems]
    assert [line.split(": ")[:2] for line in lines] == [
        [f"{path}:2", "web.header_timeout_seconds"], [f"{path}:3", "web.body_timeout_seconds"],
        [f"{path}:4", "web.max_connections"]]


# -- the accept loop's parts -------------------------------------------------------------------


class Connection:
    def __init__(self) -> None:
        self.was_shed = False

    def shed(self) -> None:
        self.was_shed = True


def test_at_the_limit_those_waiting_longest_for_a_header_are_closed_first() -> None:
    gate = ConnectionGate(limit=3)
    oldest, busy, newest = Connection(), Connection(), Connection()
    for connection in (oldest, busy, newest):
        gate.opened()
        gate.waiting(connection)  # type: ignore[arg-type]
    gate.busy(busy)  # type: ignore[arg-type]  (its header came: it is being answered)
    gate.waiting(oldest)  # type: ignore[arg-type]  (still the same wait: keeps its place)
    assert gate.full
    assert gate.shed(1) == 1
    assert (oldest.was_shed, busy.was_shed, newest.was_shed) == (True, False, False)
    assert gate.shed(5) == 1 and newest.was_shed and not busy.was_shed
    gate.closed(oldest)  # type: ignore[arg-type]
    assert not gate.full and gate.shed_total == 2


def test_the_connection_limit_leaves_descriptors_for_the_mail_path() -> None:
    assert connection_limit(1024, open_files=1024) == 1024 - RESERVED_FDS
    assert connection_limit(100, open_files=1024) == 100
    assert connection_limit(5000, open_files=65536) == 5000
    assert connection_limit(1024, open_files=64) == 32  # a tiny limit: half of it


def test_out_of_descriptors_accepting_pauses_and_logs_once(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(acceptor, "RETRY_SECONDS", 0.01)
    listening = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listening.getsockname())  # keeps the socket readable

    class Starved:
        attempts = 0

        def fileno(self) -> int:
            return listening.fileno()

        def accept(self) -> tuple[socket.socket, Any]:
            Starved.attempts += 1
            raise OSError(errno.EMFILE, "Too many open files")

    async def starve() -> None:
        taking = acceptor.Acceptor(Starved(), lambda _gate: None, limit=10,  # type: ignore[arg-type,return-value]
                                   what="127.0.0.1:test")
        taking.start()
        await asyncio.sleep(0.5)
        taking.stop()

    try:
        with caplog.at_level(logging.INFO, logger="mailflow.web"):
            asyncio.run(starve())
    finally:
        client.close()
        listening.close()
    assert Starved.attempts > 3  # tried again and again, a pause between
    assert [r.getMessage() for r in caplog.records] == [
        "web: cannot accept a connection on 127.0.0.1:test: Too many open files (0 open); "
        "accepting pauses 0.01 s at a time"]


def test_one_log_line_per_episode() -> None:
    now = [100.0]
    episode = Episode(lambda: now[0], quiet=60)
    firsts = []
    for step in (0, 1, 30, 59, 119, 180):  # events at 100, 101 … 280
        now[0] = 100.0 + step
        firsts.append(episode.first())
    assert firsts == [True, False, False, False, True, True]


# -- /metrics from cached figures ---------------------------------------------------------------


def test_a_scrape_answers_while_the_store_lock_is_held(tmp_path: Path, dovecot: Dovecot,
                                                       imap_account: ImapAccount) -> None:
    config, base = edge_config(tmp_path, imap_account, "")
    with DaemonThread(config) as running:
        edge = running.daemon.web
        assert edge is not None
        edge.metrics.store_figures.refresh()
        with running.daemon.lane:  # the daemon's store lock, held by this test
            assert sample(base, "mailflow_messages_handled") == 0
        dovecot.append(imap_account.username, "INBOX", samples.direct_application_jis())
        wait_until(lambda: running.handled(), what="the mail handled")
        edge.metrics.store_figures.refresh()
        with running.daemon.lane:
            assert sample(base, "mailflow_messages_handled") == 1


def test_the_figures_follow_the_store_after_a_refresh(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    clock = FrozenClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    lane = threading.RLock()
    host = SimpleNamespace(store=store, lane=lane, clock=clock,
                           ledger=ReferralLedger(store, clock, 10, lambda: b"key", lane),
                           imap=SimpleNamespace(up=True, refused=None))
    metrics = Metrics(host)  # type: ignore[arg-type]

    def figures() -> dict[str, float]:
        text = generate_latest(metrics.registry).decode()
        return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
                if not s.labels}

    assert "mailflow_messages_handled" not in figures()  # nothing read yet: nothing shown
    metrics.store_figures.refresh()
    with store.transaction():
        store.put("messages", "inbox:1:1", {"key": "inbox:1:1"})
    clock.advance(timedelta(seconds=3))
    assert figures()["mailflow_messages_handled"] == 0  # as of the refresh
    assert figures()["mailflow_store_figures_age_seconds"] == 3
    metrics.store_figures.refresh()
    assert figures()["mailflow_messages_handled"] == 1
    assert figures()["mailflow_store_figures_age_seconds"] == 0

    held, release = threading.Event(), threading.Event()

    def hold_the_lane() -> None:
        with lane:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_lane)
    holder.start()
    held.wait(10)
    try:
        scraped: list[dict[str, float]] = []
        scraper = threading.Thread(target=lambda: scraped.append(figures()))
        scraper.start()
        scraper.join(10)
        assert scraped and scraped[0]["mailflow_messages_handled"] == 1
    finally:
        release.set()
        holder.join()
        store.close()
