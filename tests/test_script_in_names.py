"""Issue 21 part 3: HTML and script in names and subjects, wherever they are shown. An
application arrives through the real mailbox (Dovecot → the running daemon) with markup in the
sender's name, the Subject, the position and the attachment's name; a quarantined mail gives
its reason with markup too. Every admin page that shows them serves them escaped (no element
and no event handler made of them: checked on the parsed HTML, not by string search alone);
the consent and unsubscribe pages escape the configured texts; HR's notice mails are plain
text only. `test_admin_browser.py` opens the same candidates in Chromium and sees no dialog."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from html.parser import HTMLParser
from pathlib import Path

import pytest
from admin_site import PAGES, Seeded, csrf_in, logged_in, seed
from harness import DaemonThread, wait_until
from servers import Dovecot, ImapAccount
from test_callbacks import env, write_config  # noqa: F401  (fixture)

from mailflow.followups.unsubscribe import Unsubscribes
from mailflow.mailbox.pipeline import Incoming
from mailflow.outgoing.notices import notify_hr, reapplication_notice
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import Purpose
from mailflow.web.consent_html import PurposeState, consent_page

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
SVG = "'><svg onload=alert(3)>"
HOSTILE_NAME = f"{SCRIPT}{IMG}太郎"
HOSTILE_SUBJECT = f"{IMG}応募 {SCRIPT}"
HOSTILE_POSITION = f"{SVG}営業"
HOSTILE_FILE = f"{IMG}.pdf"
EVIL_EMAIL = "evil.applicant@example.net"
HOSTILE_PEOPLE = [(f"{IMG}花子", "img.hanako@example.net"),
                  (f"{SVG}{SCRIPT}次郎", "svg.jiro@example.net")]


class Elements(HTMLParser):
    """Every element and attribute of a page, as a browser's parser would build them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.handlers: list[tuple[str, str]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.handlers += [(tag, name) for name, _ in attrs if name.lower().startswith("on")]


def assert_inert(page: str, where: str) -> None:
    elements = Elements(page)
    assert not {"script", "img", "iframe"} & set(elements.tags), (where, elements.tags)
    assert elements.handlers == [], (where, elements.handlers)
    for raw in (SCRIPT, IMG, SVG):
        assert raw not in page, (where, raw)


def _b(text: str) -> str:
    return f"=?UTF-8?B?{base64.b64encode(text.encode()).decode()}?="


def hostile_application(to: str) -> bytes:
    resume = base64.b64encode(b"%PDF-1.4 hostile").decode()
    return (f"From: {_b(HOSTILE_NAME)} <{EVIL_EMAIL}>\r\nTo: {to}\r\n"
            f"Subject: {_b(HOSTILE_SUBJECT)}\r\nMessage-ID: <hostile.{time.time_ns()}@example.net>"
            "\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"応募職種: {HOSTILE_POSITION}\r\n電話: 090-1111-2222\r\nよろしくお願いします。\r\n"
            "--b\r\nContent-Type: application/pdf\r\n"
            f"Content-Disposition: attachment; filename=\"{_b(HOSTILE_FILE)}\"\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{resume}\r\n--b--\r\n").encode()


def add_hostile(seeded: Seeded, dovecot: Dovecot, account: ImapAccount) -> list[str]:
    """The hostile application through the mailbox, two more candidates, a quarantined mail
    with markup in its reason; the ids of the hostile candidates."""
    daemon = seeded.running.daemon
    dovecot.append(account.username, "INBOX", hostile_application(account.address))
    pool = TalentPool(daemon.store, daemon.clock)
    first = wait_until(lambda: pool.by_email(EVIL_EMAIL), timeout=60,
                       what="the hostile application to be taken in")
    ids = [first["id"]]
    with daemon.lane:
        for name, email in HOSTILE_PEOPLE:
            candidate, _ = pool.apply(Applicant(name, email, (), HOSTILE_POSITION, "", "direct"),
                                      None)
            ids.append(candidate["id"])
        message = Incoming("INBOX", "inbox", 1, 9002, hostile_application("x@example.jp"))
        daemon.intake._retry_later(message, f"a stage failed: {SCRIPT}{IMG}",
                                   daemon.intake.max_attempts)
    return ids


@pytest.fixture
def site(tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
         env: dict[str, str]) -> Iterator[tuple[Seeded, list[str]]]:  # noqa: F811
    config, base = write_config(tmp_path, imap_account, per_slot=1)
    with DaemonThread(config) as running:
        seeded = seed(running, base, config)
        yield seeded, add_hostile(seeded, dovecot, imap_account)


def test_the_hostile_application_is_read_as_written(site: tuple[Seeded, list[str]]) -> None:
    seeded, ids = site
    candidate = seeded.running.daemon.store.get("candidates", ids[0])
    assert candidate is not None
    assert candidate["name"] == HOSTILE_NAME  # kept as written, shown escaped
    assert [d["filename"] for d in candidate.get("documents", [])] == [HOSTILE_FILE]


def test_every_admin_page_shows_markup_as_text(site: tuple[Seeded, list[str]]) -> None:
    seeded, ids = site
    with logged_in(seeded.base) as client:
        for path in [*PAGES, *(f"/admin/candidates/{i}" for i in ids), "/admin/?lang=en"]:
            answer = client.get(path)
            assert answer.status_code == 200, path
            assert_inert(answer.text, path)
        page = client.get(f"/admin/candidates/{ids[0]}").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "&lt;img src=x onerror=alert(2)&gt;" in page
        pool = client.get("/admin/pool").text
        assert pool.count("onerror=alert(2)") >= 2  # as text, in two rows
        quarantine = client.get("/admin/quarantine").text
        assert "a stage failed: &lt;script&gt;" in quarantine
        found = client.post("/admin/pool", data={"csrf": csrf_in(pool), "term": SCRIPT})
        assert found.status_code == 200
        assert_inert(found.text, "pool search")
        assert "&lt;script&gt;" in found.text


def test_the_consent_page_escapes_the_configured_texts() -> None:
    page = consent_page("ja", f"{SCRIPT}株式会社", "/c/tok", "csrf-x",
                        {"rescout": Purpose(ja=f"{IMG}再度のご連絡", en=SVG)},
                        [PurposeState("rescout", True, "granted", "2026-01-01T00:00:00Z")],
                        notice=SCRIPT)
    assert_inert(page, "consent page")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;株式会社" in page


def test_the_unsubscribe_page_escapes_the_company_and_the_purpose(
        site: tuple[Seeded, list[str]]) -> None:
    seeded, ids = site
    daemon = seeded.running.daemon
    desk = Unsubscribes(daemon.store, daemon.clock, seeded.base, company_name=SCRIPT)
    with daemon.lane, daemon.store.transaction():
        token = desk.issue(ids[0], IMG, "f-1")
    page = desk.confirm_page(token)
    assert_inert(page, "unsubscribe page")
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    assert_inert(desk.opt_out(token, "one-click"), "unsubscribed page")


def test_hr_notices_are_plain_text_with_the_name_as_written(
        site: tuple[Seeded, list[str]]) -> None:
    seeded, ids = site
    daemon = seeded.running.daemon
    candidate = daemon.store.get("candidates", ids[0])
    assert candidate is not None
    subject, body = reapplication_notice(candidate)
    with daemon.lane:
        item = notify_hr(daemon.outbox, daemon.config, daemon.clock, subject, body, ids[0])
    assert item is not None
    doc = daemon.store.get("outbox", item["id"])
    assert doc is not None
    mail = message_from_bytes(base64.b64decode(doc["raw"]), policy=policy.default)
    assert [part.get_content_type() for part in mail.walk()] == ["text/plain"]
    assert HOSTILE_NAME in mail.get_content()
    assert "\n" not in str(mail["Subject"]) and HOSTILE_NAME in str(mail["Subject"])
