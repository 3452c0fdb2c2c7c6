"""A running daemon with a seeded store for the admin pages' tests (`test_admin.py`,
`test_admin_browser.py`): candidates (one named with `<script>`), a rejection with its Career
Relay invitation and the partner's signed registration (one registration per slot here, so a
slot is earned), a hire paid for by that slot, a quarantined application, an outbox mail whose
outcome is unknown."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import httpx
from harness import DaemonThread
from test_callbacks import event, signed

from mailflow.mailbox.pipeline import Incoming
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.relay.desk import RejectionFacts, RelayDesk

PEOPLE = [("山田 太郎", "taro.yamada@example.net", "09012345678", "営業", "direct"),
          ("<script>alert('x')</script>花子", "hanako.script@example.net", "08011112222",
           "エンジニア", "direct"),
          ("佐藤 次郎", "jiro.sato@example.org", "07033334444", "経理", "direct")]
HIRED_ON = "2026-04-01"  # the third candidate, hired through the free slot
QUARANTINED_NAME, QUARANTINED_EMAIL = "鈴木 三郎", "saburo.suzuki@example.com"
PAGES = ("/admin/", "/admin/pool", "/admin/ledger", "/admin/followups", "/admin/outbox",
         "/admin/quarantine", "/admin/rules")


def token() -> str:
    return os.environ["MAILFLOW_ADMIN_TOKEN"]


@dataclass
class Seeded:
    running: DaemonThread
    base: str
    config: Path
    ids: list[str]  # the PEOPLE's candidate ids, in order
    quarantined: str  # the quarantined mail's id
    unknown: str  # the outbox mail whose outcome is unknown


def application(to: str) -> bytes:
    return (f"From: {QUARANTINED_NAME} <{QUARANTINED_EMAIL}>\r\nTo: {to}\r\n"
            "Subject: =?UTF-8?B?5b+c5Yuf44GX44G+44GZ?=\r\n"
            f"Message-ID: <q.{time.time_ns()}@example.com>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            "営業職に応募します。\r\n電話: 090-5555-6666\r\n").encode()


def seed(running: DaemonThread, base: str, config: Path) -> Seeded:
    daemon = running.daemon
    ids = []
    with daemon.lane:
        pool = TalentPool(daemon.store, daemon.clock)
        desk = RelayDesk(daemon.store, daemon.clock, daemon.config.web.public_url)
        for n, (name, email, phone, position, source) in enumerate(PEOPLE):
            candidate, _ = pool.apply(Applicant(name, email, (phone,), position, "", source),
                                      None)
            if n == 0:
                desk.issue(candidate, RejectionFacts("経験不足"))
            ids.append(candidate["id"])
        message = Incoming("INBOX", "inbox", 1, 9001, application(daemon.config.mailbox.address))
        daemon.intake._retry_later(message, "a stage failed (seeded for the test)",
                                   daemon.intake.max_attempts)
        quarantined = message.key[:12]
        item = daemon.outbox.queue(b"From: a@example.jp\r\nTo: b@example.net\r\nSubject: x\r\n"
                                   b"\r\nbody\r\n", to=["b@example.net"], purpose="notice")
        doc = daemon.store.get("outbox", item["id"])
        assert doc is not None
        doc.update(state="unknown", last_error="connection cut after DATA")
        daemon.store.put("outbox", item["id"], doc)
    # the partner's signed callback: the invited candidate registered (earns the one slot)
    invited = daemon.store.get("candidates", ids[0])
    assert invited is not None
    body = event("evt-admin-1", str(invited["relay_ref"]))
    answer = httpx.post(f"{base}/callbacks/career-relay", content=body, headers=signed(body),
                        timeout=30)
    assert answer.status_code == 200, answer.text
    daemon.carry_out("candidate.hire", {"candidate": ids[2], "on": HIRED_ON, "via": "slot",
                                        "actor": "cli:test"})
    return Seeded(running, base, config, ids, quarantined, item["id"])


def csrf_in(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return unescape(found[1])


@contextmanager
def logged_in(base: str) -> Iterator[httpx.Client]:
    """An httpx client with an admin session."""
    with httpx.Client(base_url=base, follow_redirects=False, timeout=20) as client:
        csrf = csrf_in(client.get("/admin/login").text)
        answer = client.post("/admin/login", data={"csrf": csrf, "token": token()})
        assert answer.status_code == 303, answer.text
        yield client
