"""Issue 11: the follow-up schedule on a frozen clock, mailing through the real outbox to a real
aiosmtpd sink (copies filed in a real Dovecot's Sent)."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from harness import MAILFLOW, PASSWORD_ENV, write_config
from servers import ImapAccount, SmtpSink

from mailflow.clock import FrozenClock, iso
from mailflow.followups.replies import reply_listener
from mailflow.followups.scheduler import FollowUpScheduler
from mailflow.followups.unsubscribe import ONE_CLICK, Unsubscribes
from mailflow.intake.applications import Applications
from mailflow.mailbox.pipeline import Incoming
from mailflow.outgoing.outbox import Outbox
from mailflow.pool import consent
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.relay.desk import RejectionFacts, RelayDesk
from mailflow.settings.config import Config, load_config
from mailflow.starter import SHIPPED_RULES
from mailflow.store import open_store
from mailflow.store.base import Doc, Store

TOKYO = ZoneInfo("Asia/Tokyo")
NOTIFIED = '[privacy]\nnotified_purposes = ["selection", "talent_pool", "rescout"]\n'
REJECTED_AT = datetime(2025, 5, 3, 10, 0, tzinfo=TOKYO)  # Saturday, 憲法記念日
SIX_MONTHS = datetime(2025, 11, 3, 10, 0, tzinfo=TOKYO)  # Monday, 文化の日


@pytest.fixture(autouse=True)
def password(imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)


@dataclass
class World:
    config: Config
    config_path: Path
    store: Store
    clock: FrozenClock
    outbox: Outbox
    scheduler: FollowUpScheduler
    sink: SmtpSink

    @property
    def pool(self) -> TalentPool:
        return TalentPool(self.store, self.clock)

    def candidate(self, name: str, rescout: bool | None = True) -> Doc:
        """A candidate who applied and was rejected (with an invitation) at REJECTED_AT."""
        self.clock.set(REJECTED_AT - timedelta(days=20))
        candidate, _new = self.pool.apply(
            Applicant(name, f"{name.lower()}@example.net", (), "営業", "", "direct"), None)
        self.clock.set(REJECTED_AT)
        RelayDesk(self.store, self.clock, self.config.web.public_url).issue(
            candidate, RejectionFacts("スキル不足", "", rescout, f"<rej-{name}@example.co.jp>"))
        return candidate

    def at(self, when: datetime) -> dict[str, int]:
        self.clock.set(when)
        outcomes = dict(self.scheduler.tick())
        self.outbox.deliver_due()
        return outcomes

    def rows(self, candidate_id: str) -> dict[str, Doc]:
        return {r["rule"]: r for r in self.store.find("followups", "candidate_id", candidate_id)}

    def mails_to(self, name: str) -> list[EmailMessage]:
        return [email.message_from_bytes(m.data, policy=email.policy.default)  # type: ignore[misc]
                for m in self.sink.messages if f"{name.lower()}@example.net" in m.rcpt_tos]


def make_world(tmp_path: Path, account: ImapAccount, sink: SmtpSink, extra: str = "",
               rules: Path | None = None) -> Iterator[World]:
    settings = NOTIFIED + extra
    path = write_config(tmp_path, account, sink, extra=settings)
    if rules is not None:
        path.write_text(path.read_text().replace(str(SHIPPED_RULES), str(rules)))
    config = load_config(path)
    store = open_store(config.data_dir, config.store.engine)
    clock = FrozenClock(REJECTED_AT)
    lane = threading.RLock()
    outbox = Outbox(store, clock, config, lane)
    outbox.delivery.retry_first_seconds = 60
    world = World(config, path, store, clock, outbox,
                  FollowUpScheduler(store, clock, config, outbox, lane), sink)
    try:
        yield world
    finally:
        store.close()


@pytest.fixture
def world(tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink) -> Iterator[World]:
    yield from make_world(tmp_path, imap_account, smtp_sink)


def test_rescout_goes_out_once_in_business_hours_not_on_a_holiday(world: World) -> None:
    hanako = world.candidate("Hanako")
    withdrew = world.candidate("Withdrew")
    reapplied = world.candidate("Reapplied")
    opted_out = world.candidate("Optedout")
    not_ok = world.candidate("Notok", rescout=False)
    assert world.at(REJECTED_AT + timedelta(hours=1)) == {"planned": 15}  # 5 × 3 rules
    assert world.rows(hanako["id"])["rescout-6-months"]["due_at"] == iso(SIX_MONTHS)
    # the late invitation is not for them: every rejection here carried a link
    assert world.at(REJECTED_AT + timedelta(days=1, minutes=1)) == {"skipped": 5}
    assert world.rows(hanako["id"])["relay-invitation-late"]["reason"] == \
        "relay_status is invited"
    # one withdrew consent for re-scouts by mail to HR; one came back; one used a link
    current = world.store.get("candidates", withdrew["id"])
    assert current is not None
    consent.record(current, "rescout", False, iso(REJECTED_AT + timedelta(days=30)), "mail to HR")
    world.pool.save(current)
    world.clock.set(REJECTED_AT + timedelta(days=60))
    world.pool.apply(Applicant("Reapplied", "reapplied@example.net", (), "企画", "", "direct"),
                     None)
    token = world.scheduler.unsubscribes.issue(opted_out["id"], "rescout", "earlier-mail")
    world.scheduler.unsubscribes.opt_out(token, ONE_CLICK)
    assert world.at(REJECTED_AT + timedelta(days=61)) == {}
    # 文化の日 (a Monday): not sent, postponed to Tuesday's opening; the others are skipped
    outcomes = world.at(SIX_MONTHS + timedelta(minutes=1))
    assert outcomes == {"postponed": 1, "skipped": 3}
    assert world.sink.messages == []
    row = world.rows(hanako["id"])["rescout-6-months"]
    assert row["state"] == "planned"
    assert row["due_at"] == iso(datetime(2025, 11, 4, 10, 0, tzinfo=TOKYO))
    reasons = {name: world.rows(c["id"])["rescout-6-months"]["reason"] for name, c in
               (("withdrew", withdrew), ("reapplied", reapplied), ("opted", opted_out),
                ("not_ok", not_ok))}
    assert "no consent for 'rescout' (withdrawn" in reasons["withdrew"]
    assert reasons["reapplied"] == "status is applied"
    assert reasons["opted"] == f"opted out of 'rescout' ({ONE_CLICK})"
    assert world.rows(opted_out["id"])["rescout-6-months"]["state"] == "cancelled"
    assert reasons["not_ok"] == "rescout_ok is false"
    # Tuesday 09:59: still nothing; 10:00 on: exactly one mail, then never again
    assert world.at(datetime(2025, 11, 4, 9, 59, tzinfo=TOKYO)) == {}
    assert world.at(datetime(2025, 11, 4, 10, 0, 30, tzinfo=TOKYO)) == {"sent": 1}
    for step in (timedelta(minutes=1), timedelta(hours=5), timedelta(days=30)):
        world.at(datetime(2025, 11, 4, 10, 0, 30, tzinfo=TOKYO) + step)
    assert len(world.sink.messages) == 1
    [mail] = world.mails_to("Hanako")
    sent_at = email.utils.parsedate_to_datetime(mail["Date"]).astimezone(TOKYO)
    assert sent_at.weekday() < 5 and 10 <= sent_at.hour < 18 and sent_at.day == 4
    assert mail["Subject"] == "【株式会社サンプル】新しいポジションのご案内"
    link = mail["List-Unsubscribe"].strip("<>")
    assert link.startswith(world.config.web.public_url + "/u/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Hanako様" in text and "2025年5月3日" in text and link in text
    assert "hanako" not in link.lower() and hanako["id"] not in link
    assert world.rows(hanako["id"])["rescout-6-months"]["state"] == "sent"
    assert world.rows(hanako["id"])["rescout-1-year"]["state"] == "planned"


def test_smtp_down_for_an_hour_then_back_sends_once(world: World) -> None:
    hanako = world.candidate("Hanako")
    world.at(REJECTED_AT + timedelta(days=1))
    world.sink.stop()
    due = datetime(2025, 11, 4, 10, 0, tzinfo=TOKYO)
    world.at(due)
    for minute in range(1, 61, 3):
        world.at(due + timedelta(minutes=minute))
    assert world.sink.messages == []
    [record] = world.store.find("outbox", "state", "queued")
    assert record["candidate_id"] == hanako["id"]
    assert record["state"] == "queued" and record["attempts"] >= 2
    world.sink.start()
    for minute in range(61, 200, 5):
        world.at(due + timedelta(minutes=minute))
    assert len(world.mails_to("Hanako")) == 1
    assert world.store.get("outbox", record["id"])["state"] == "sent"  # type: ignore[index]


def test_a_reply_to_a_follow_up_stops_the_sequence_and_tells_hr(world: World) -> None:
    hanako = world.candidate("Hanako")
    world.at(REJECTED_AT + timedelta(days=1))
    world.at(datetime(2025, 11, 4, 10, 0, tzinfo=TOKYO))
    [mail] = world.mails_to("Hanako")
    reply = (f"From: hanako@example.net\r\nTo: {world.config.mailbox.address}\r\n"
             f"Subject: Re: {mail['Subject']}\r\nMessage-ID: <reply-1@example.net>\r\n"
             f"In-Reply-To: {mail['Message-ID']}\r\nReferences: {mail['Message-ID']}\r\n"
             "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
             "ぜひお話を伺いたいです。\r\n").encode()
    stage = Applications(world.pool, world.config, world.outbox, on_reply=[reply_listener(
        world.store, world.clock, world.config, world.outbox)])  # as the daemon wires it
    world.clock.set(datetime(2025, 11, 5, 12, 0, tzinfo=TOKYO))
    stage.handle(Incoming("INBOX", "inbox", 1, 1, reply))
    assert world.rows(hanako["id"])["rescout-1-year"]["state"] == "cancelled"
    assert "replied" in world.rows(hanako["id"])["rescout-1-year"]["reason"]
    notices = [r for r in world.store.find("outbox", "state", "queued")
               if r["purpose"] == "notify-hr"]
    assert len(notices) == 1 and notices[0]["to"] == [world.config.mailbox.address]
    assert [e["type"] for e in world.pool.timeline(hanako["id"])][-2:] == [
        "replied", "followups_stopped"]


LIMITS = """\
[[followup]]
name = "hello"
after = { event = "applied", delay = "1d" }
send = "rescout.txt.j2"
subject = "こんにちは"
purpose = "talent_pool"

[[followup]]
name = "again"
after = { event = "applied", delay = "1d" }
send = "rescout.txt.j2"
subject = "もう一度"
purpose = "talent_pool"
"""


def test_per_hour_and_per_candidate_limits_postpone_never_drop(
        tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "followups.toml").write_text(LIMITS, encoding="utf-8")
    extra = '[followups]\nper_hour = 2\nper_candidate = "2d"\n'
    for world in make_world(tmp_path, imap_account, smtp_sink, extra, rules):
        monday = datetime(2025, 6, 2, 9, 0, tzinfo=TOKYO)
        world.clock.set(monday)
        for name in ("A", "B", "C"):
            world.pool.apply(Applicant(name, f"{name.lower()}@example.net", (), "", "", "x"),
                             None)
        world.at(monday + timedelta(hours=1))
        outcomes = world.at(monday + timedelta(days=1, hours=1, minutes=1))
        assert outcomes.get("sent") == 2
        assert len(world.sink.messages) == 2
        # within the hour: nothing more; after it, the third candidate's first mail
        assert world.at(monday + timedelta(days=1, hours=1, minutes=30)).get("sent") is None
        assert world.at(monday + timedelta(days=1, hours=2, minutes=2)).get("sent") == 1
        assert len(world.sink.messages) == 3
        # every candidate's second rule waits out the per-candidate period (2 days)
        world.at(monday + timedelta(days=2, hours=5))
        assert len(world.sink.messages) == 3
        world.at(monday + timedelta(days=3, hours=2, minutes=5))
        world.at(monday + timedelta(days=3, hours=3, minutes=6))
        world.at(monday + timedelta(days=3, hours=4, minutes=7))
        world.at(monday + timedelta(days=3, hours=5, minutes=8))
        assert len(world.sink.messages) == 6
        for name in ("A", "B", "C"):
            subjects = sorted(m["Subject"] for m in world.mails_to(name))
            assert subjects == ["こんにちは", "もう一度"]


def test_overdue_beyond_catch_up_is_skipped_after_downtime(world: World) -> None:
    hanako = world.candidate("Hanako")
    world.at(REJECTED_AT + timedelta(days=1))
    world.at(datetime(2025, 12, 1, 10, 0, tzinfo=TOKYO))  # 4 weeks late; catch_up is 14d
    row = world.rows(hanako["id"])["rescout-6-months"]
    assert row["state"] == "skipped" and row["reason"].startswith("overdue since")
    assert world.sink.messages == []


def test_an_erased_or_undeliverable_candidate_is_not_mailed(world: World) -> None:
    gone = world.candidate("Gone")
    bounced = world.candidate("Bounced")
    world.at(REJECTED_AT + timedelta(days=1))
    world.store.delete("candidates", gone["id"])
    world.pool.mark_undeliverable("bounced@example.net", "550 no such user")
    world.at(datetime(2025, 11, 4, 10, 0, tzinfo=TOKYO))
    assert world.rows(gone["id"])["rescout-6-months"]["reason"] == "the candidate was erased"
    assert world.rows(bounced["id"])["rescout-6-months"]["reason"] == "no deliverable address"
    assert world.sink.messages == []


def test_rules_test_shows_what_would_fire_and_sends_nothing(world: World) -> None:
    hanako = world.candidate("Hanako")
    world.candidate("Notok", rescout=False)
    world.store.close()
    done = subprocess.run([*MAILFLOW, "rules", "test", "--at", "2025-11-05", "--json", "-c",
                           str(world.config_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    items = json.loads(done.stdout)
    fired = [i for i in items if i["would"] == "fire"]
    assert [(i["rule"], i["candidate_id"], i["due_at"], i["action"]) for i in fired] == [
        ("rescout-6-months", hanako["id"], "2025-11-04T01:00:00.000000Z",
         "send rescout.txt.j2")]
    skipped = {(i["rule"], i["reason"]) for i in items if i["would"] == "skip"}
    assert ("rescout-6-months", "rescout_ok is false") in skipped
    one = subprocess.run([*MAILFLOW, "rules", "test", "--at", "2025-11-05T00:00+09:00",
                          "--candidate", "hanako@example.net", "-c", str(world.config_path)],
                         capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    assert "rescout-6-months" in one.stdout and "Notok" not in one.stdout
    assert "2025-11-04 10:00" in one.stdout
    world.store = open_store(world.config.data_dir, world.config.store.engine)
    assert world.store.count("followups") == 0 and world.store.count("outbox") == 0


def test_unsubscribe_get_changes_nothing_and_post_opts_out(world: World) -> None:
    hanako = world.candidate("Hanako")
    world.at(REJECTED_AT + timedelta(days=1))
    desk: Unsubscribes = world.scheduler.unsubscribes
    token = desk.issue(hanako["id"], "rescout", "x")
    before = (world.store.get("candidates", hanako["id"]), world.rows(hanako["id"]),
              list(world.store.log("events")))
    page = desk.confirm_page(token)
    assert 'method="post"' in page and "配信停止の確認" in page
    assert (world.store.get("candidates", hanako["id"]), world.rows(hanako["id"]),
            list(world.store.log("events"))) == before
    world.clock.set(datetime(2025, 6, 1, 12, 0, tzinfo=TOKYO))
    done = desk.opt_out(token, ONE_CLICK)
    assert "配信を停止しました" in done
    candidate = world.store.get("candidates", hanako["id"])
    assert candidate is not None
    assert candidate["consents"]["rescout"] == {
        "state": "withdrawn", "at": iso(datetime(2025, 6, 1, 12, 0, tzinfo=TOKYO)),
        "how": f"unsubscribe link, {ONE_CLICK}",
        "evidence": "unsubscribe link of follow-up x"}
    rows = world.rows(hanako["id"])
    assert rows["rescout-6-months"]["state"] == rows["rescout-1-year"]["state"] == "cancelled"
    world.at(datetime(2025, 11, 4, 10, 0, tzinfo=TOKYO))
    assert world.sink.messages == []
    assert "すでに停止" in desk.confirm_page(token)
