"""Issue 16, part 5: the login gate the watchers share (mailbox/login.py), without a server."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from mailflow.mailbox.login import LoginGate


def waiting_turn(gate: LoginGate, stop: threading.Event, accepted: bool = False
                 ) -> tuple[threading.Thread, list[str | None]]:
    """Another watcher's thread waiting for its turn (then logged in, when `accepted`)."""
    got: list[str | None] = []

    def watcher() -> None:
        got.append(gate.turn(stop))
        if accepted:
            gate.accepted()

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    return thread, got


def test_one_login_at_a_time_and_after_a_refusal_the_others_wait_for_a_reload() -> None:
    gate, stop = LoginGate(300, "old"), threading.Event()
    assert gate.turn(stop) == "old"
    thread, got = waiting_turn(gate, stop, accepted=True)
    time.sleep(0.2)
    assert got == [], "a second login while the first is under way"
    gate.refused_by_server("refused")
    time.sleep(0.2)
    assert got == [] and gate.refused == "refused"
    gate.renew("new")
    thread.join(2)
    assert got == ["new"] and gate.attempts == 2
    assert gate.refused is None and gate.turn(stop) == "new"


def test_a_waiting_watcher_stops() -> None:
    gate, stop = LoginGate(300, "pw"), threading.Event()
    assert gate.turn(stop) == "pw"
    gate.refused_by_server("refused")
    thread, got = waiting_turn(gate, stop)
    stop.set()
    gate.wake()
    thread.join(2)
    assert got == [None]


def test_a_network_error_is_no_verdict() -> None:
    gate, stop = LoginGate(300, "pw"), threading.Event()
    assert gate.turn(stop) == "pw"
    gate.release()
    thread, got = waiting_turn(gate, stop)
    thread.join(2)
    assert got == ["pw"] and gate.refused is None


def test_a_refusal_of_credentials_renewed_meanwhile_is_no_verdict() -> None:
    gate, stop = LoginGate(300, "old"), threading.Event()
    assert gate.turn(stop) == "old"
    gate.renew("new")  # a reload while the login with the old password is under way
    gate.refused_by_server("refused")
    assert gate.refused is None
    thread, got = waiting_turn(gate, stop)
    thread.join(2)
    assert got == ["new"], "the new password waited out the slow retry"


def test_a_lasting_refusal_is_logged_once_then_hourly(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    changes: list[str | None] = []
    gate = LoginGate(300, "pw", monotonic=lambda: now[0])
    gate.on_change = lambda: changes.append(gate.refused)
    caplog.set_level(logging.DEBUG, logger="mailflow.mailbox")
    for minute in range(0, 125, 5):  # one attempt every auth_retry_seconds for two hours
        now[0] = 1000.0 + minute * 60
        assert gate.turn(threading.Event()) == "pw"
        gate.refused_by_server("IMAP h:993: the server refused the login")
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelno for r in errors] == [logging.ERROR] * 3  # at 0, 60 and 120 minutes
    assert "next login attempt in 300s" in errors[0].getMessage()
    assert gate.attempts == 25 and changes == ["IMAP h:993: the server refused the login"]
