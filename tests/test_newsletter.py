"""Issue 20 part 6: repeating follow-ups with posts — a monthly newsletter over several
accelerated months (a frozen clock, the real outbox, an aiosmtpd sink and Dovecot), each post
once per consenting candidate and nothing to the others, across a restart and a `kill -9` of
the daemon; the rule file's new keys and the posts validated with file and line."""

from __future__ import annotations

import email
import email.policy
import http.server
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest
from harness import PASSWORD_ENV, write_config
from servers import ImapAccount, SmtpSink
from test_scheduler_daemon import start, stop

from mailflow.clock import FrozenClock, iso
from mailflow.errors import Problem, ProblemsError
from mailflow.followups.checks import check_templates
from mailflow.followups.feed import Feeds, cache_key, parse_feed
from mailflow.followups.posts import choose, read_folder
from mailflow.followups.rules import load_followups
from mailflow.followups.scheduler import FollowUpScheduler
from mailflow.followups.unsubscribe import ONE_CLICK
from mailflow.outgoing.outbox import Outbox
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import Config, Newsletter, load_config
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES
from mailflow.store import open_store
from mailflow.store.base import Doc, Store

TOKYO = ZoneInfo("Asia/Tokyo")
WINTER = "【株式会社サンプル】冬のインターン募集"
EVENT = "【株式会社サンプル】会社説明会のお知らせ"
SPRING = "【株式会社サンプル】春の新ポジション"
CREATED = datetime(2026, 1, 9, 10, 0, tzinfo=TOKYO)  # a Friday; +1d is a Saturday
RULE = """
[[followup]]
name = "news"
after = { field = "created_at", delay = "1d" }
every = "1mo"
times = 4
send = "newsletter.txt.j2"
subject = "【{{ company_name }}】{{ post.title }}"
purpose = "newsletter"
content = "posts/"
catch_up = "7d"
"""
POSTS = {
    "2025-12-20-winter.md": "---\ntitle: 冬のインターン募集\ndate: 2025-12-20\n"
                            "url: https://www.example.co.jp/news/winter\n---\n"
                            "**冬のインターン**を[募集ページ](https://www.example.co.jp/i)で受付中です。\n",
    "event.md": "---\ntitle: 会社説明会のお知らせ\ndate: 2026-02-01\n---\n2月20日に開催します。\n",
    "2026-03-20-spring.md": "# 春の新ポジション\n\n営業職を募集します。\n",
}


def site(tmp_path: Path, rule: str = RULE, posts: dict[str, str] = POSTS) -> Path:
    """A rules folder: the shipped rules with `rule` as followups.toml, and a posts folder."""
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, rules)
    (rules / "followups.toml").write_text(rule, encoding="utf-8")
    (rules / "posts").mkdir()
    for name, text in posts.items():
        (rules / "posts" / name).write_text(text, encoding="utf-8")
    return rules


@pytest.fixture(autouse=True)
def password(imap_account: ImapAccount, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)


@dataclass
class World:
    config: Config
    store: Store
    clock: FrozenClock
    outbox: Outbox
    scheduler: FollowUpScheduler
    sink: SmtpSink

    @property
    def pool(self) -> TalentPool:
        return TalentPool(self.store, self.clock)

    def open(self) -> None:
        """(Re)open the store, the outbox and the scheduler, as a daemon's start does."""
        self.store = open_store(self.config.data_dir, self.config.store.engine)
        lane = threading.RLock()
        self.outbox = Outbox(self.store, self.clock, self.config, lane)
        self.scheduler = FollowUpScheduler(self.store, self.clock, self.config, self.outbox,
                                           lane)

    def candidate(self, name: str, news: bool) -> str:
        self.clock.set(CREATED)
        with self.store.transaction():
            candidate, _new = self.pool.apply(
                Applicant(name, f"{name.lower()}@example.net", (), "営業", "", "direct"), None)
            if news:
                self.pool.consent_change(candidate, "newsletter", True, "consent page", "test")
        return str(candidate["id"])

    def at(self, when: datetime) -> dict[str, int]:
        self.clock.set(when)
        outcomes = dict(self.scheduler.tick())
        self.outbox.deliver_due()
        return outcomes

    def rows(self, candidate_id: str) -> dict[str, Doc]:
        return {r["id"]: r for r in self.store.find("followups", "candidate_id", candidate_id)}

    def mails_to(self, name: str) -> list[EmailMessage]:
        return [email.message_from_bytes(m.data, policy=email.policy.default)  # type: ignore[misc]
                for m in self.sink.messages if f"{name.lower()}@example.net" in m.rcpt_tos]


@pytest.fixture
def world(tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink) -> Iterator[World]:
    path = write_config(tmp_path, imap_account, smtp_sink)
    path.write_text(path.read_text().replace(str(SHIPPED_RULES), str(site(tmp_path))))
    config = load_config(path)
    clock = FrozenClock(CREATED)
    made = World(config, None, clock, None, None, smtp_sink)  # type: ignore[arg-type]
    made.open()
    try:
        yield made
    finally:
        made.store.close()


def local(year: int, month: int, day: int, hour: int = 10, minute: int = 0,
          second: int = 30) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=TOKYO)


def test_a_monthly_newsletter_sends_each_post_once_to_consenting_candidates(
        world: World) -> None:
    hanako = world.candidate("Hanako", news=True)
    jiro = world.candidate("Jiro", news=True)
    taro = world.candidate("Taro", news=False)  # never agreed to news
    assert world.at(CREATED + timedelta(hours=1)) == {"planned": 3}
    # the first occurrence falls on a Saturday: postponed past Monday's holiday (成人の日)
    assert world.at(local(2026, 1, 10)) == {"postponed": 2, "skipped": 1}
    assert world.rows(hanako)[f"news:{hanako}"]["due_at"] == iso(local(2026, 1, 13, second=0))
    assert world.at(local(2026, 1, 12)) == {}
    assert world.at(local(2026, 1, 13)) == {"sent": 2}
    [first] = world.mails_to("Hanako")
    assert first["Subject"] == WINTER
    text = first.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Hanako様" in text and "■ 冬のインターン募集" in text
    assert "冬のインターンを募集ページ (https://www.example.co.jp/i)で受付中です。" in text
    assert "https://www.example.co.jp/news/winter" in text and "**" not in text
    # Jiro opts out with his mail's link; his next occurrence goes with it
    [jiro_mail] = world.mails_to("Jiro")
    token = jiro_mail["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    world.scheduler.unsubscribes.opt_out(token, ONE_CLICK)
    assert world.rows(jiro)[f"news:{jiro}#2"]["state"] == "cancelled"
    # occurrence 2 is counted from the first's planned time, not from its postponement
    assert world.rows(hanako)[f"news:{hanako}#2"]["due_at"] == iso(local(2026, 2, 10, second=0))
    assert world.at(local(2026, 2, 10)) == {"sent": 1, "skipped": 1}
    # a restart (store, outbox and scheduler opened afresh) sends nothing again
    world.store.close()
    world.open()
    assert world.at(local(2026, 2, 10, minute=5)) == {}
    assert world.at(local(2026, 3, 10)) == {"skipped": 2}  # nothing new for Hanako
    assert world.rows(hanako)[f"news:{hanako}#3"]["reason"] == "no new post to send"
    assert world.at(local(2026, 4, 10)) == {"sent": 1, "skipped": 1}
    for later in (local(2026, 5, 11), local(2026, 6, 10), local(2026, 7, 10)):
        assert world.at(later) == {}  # times = 4: the series has ended
    subjects = [m["Subject"] for m in world.mails_to("Hanako")]
    assert subjects == [WINTER, EVENT, SPRING]
    assert len(world.mails_to("Jiro")) == 1 and world.mails_to("Taro") == []
    assert sorted(world.rows(hanako)) == [f"news:{hanako}", *(f"news:{hanako}#{n}"
                                                              for n in (2, 3, 4))]
    stored = world.store.get("candidates", hanako)
    assert stored is not None
    assert stored["mailings"] == {"news": ["2025-12-20-winter", "event", "2026-03-20-spring"]}
    assert {r["reason"] for r in world.rows(taro).values()} == {
        "no consent for 'newsletter' (not a notified purpose and not granted)"}


def test_until_ends_the_series_and_a_new_post_is_the_one_sent(world: World,
                                                              tmp_path: Path) -> None:
    rules = world.config.rules_dir
    (rules / "followups.toml").write_text(RULE.replace("times = 4", "until = 2026-02-28"),
                                          encoding="utf-8")
    world.scheduler.reload()
    hanako = world.candidate("Hanako", news=True)
    world.at(CREATED + timedelta(hours=1))
    assert world.at(local(2026, 1, 13)) == {"sent": 1}
    (rules / "posts" / "2026-02-05-new.md").write_text("# 新しいお知らせ\n\n本文\n",
                                                       encoding="utf-8")
    assert world.at(local(2026, 2, 10)) == {"sent": 1}
    assert world.at(local(2026, 3, 10)) == {}  # 10 March is past `until`: never planned
    assert sorted(world.rows(hanako)) == [f"news:{hanako}", f"news:{hanako}#2"]
    # the newest post that is out and not sent: the one added, not 会社説明会 (older)
    last = world.mails_to("Hanako")[-1]
    assert last["Subject"] == "【株式会社サンプル】新しいお知らせ"


def test_killed_inside_an_occurrence_the_daemon_sends_it_once(
        tmp_path: Path, imap_account: ImapAccount, smtp_sink: SmtpSink) -> None:
    config_path = write_config(tmp_path, imap_account, smtp_sink,
                               extra="[followups]\ntick_seconds = 1\n")
    config_path.write_text(config_path.read_text().replace(str(SHIPPED_RULES),
                                                           str(site(tmp_path))))
    config = load_config(config_path)
    monday = datetime(2026, 1, 5, 10, 0, tzinfo=TOKYO)
    clock = FrozenClock(monday)
    with open_store(config.data_dir, config.store.engine) as store:
        pool = TalentPool(store, clock)
        candidate, _ = pool.apply(Applicant("山田 花子", "hanako@example.net", (), "営業", "",
                                            "direct"), None)
        pool.consent_change(candidate, "newsletter", True, "consent page", "test")
    clock_file = tmp_path / "now.txt"
    clock_file.write_text(iso(datetime(2026, 1, 6, 10, 5, tzinfo=TOKYO)))
    first = start(config_path, imap_account, clock_file)
    try:
        smtp_sink.wait_for(1, timeout=30)
    finally:
        stop(first)
    clock_file.write_text(iso(datetime(2026, 2, 6, 10, 5, tzinfo=TOKYO)))  # a Friday
    crashing = start(config_path, imap_account, clock_file, "followups:queued")
    assert crashing.wait(60) == -9, "the daemon should have killed itself inside occurrence 2"
    for _restart in range(2):
        running = start(config_path, imap_account, clock_file)
        try:
            smtp_sink.wait_for(2, timeout=30)
            time.sleep(3.0)  # several ticks and delivery rounds: nothing more goes out
        finally:
            stop(running)
    subjects = [email.message_from_bytes(m.data, policy=email.policy.default)["Subject"]
                for m in smtp_sink.messages]
    assert subjects == [WINTER, EVENT]


# -- the rule file and the posts, validated ------------------------------------------------------


def problems(rules: Path) -> list[str]:
    with pytest.raises(ProblemsError) as caught:
        load_followups(rules, SHIPPED_TEMPLATES, ("selection", "newsletter"))
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(("change", "expected"), [
    (("times = 4\n", ""), ":2: followup[0]: a repeating rule (`every`) needs an end"),
    (('every = "1mo"\n', ""), "`until` and `times` end a repeating rule: give `every` too"),
    (('every = "1mo"', 'every = "1 fortnight"'), ":5: followup[0].every: bad delay"),
    (('content = "posts/"', 'content = "news/"'), ":10: followup[0].content: no "
                                                   "folder 'news/'"),
    (('content = "posts/"', 'content = "ftp://example.jp/feed"'),
     "followup[0].content: expected a folder of posts or an http(s):// feed URL"),
    (("times = 4", "times = 0"), ":6: followup[0].times: Input should be greater than"),
])
def test_rule_file_problems_name_file_and_line(tmp_path: Path, change: tuple[str, str],
                                               expected: str) -> None:
    rules = site(tmp_path, RULE.replace(*change))
    found = problems(rules)
    assert any(expected in p and p.startswith(str(rules / "followups.toml")) for p in found), \
        found


def test_a_template_showing_post_needs_a_rule_with_content(tmp_path: Path) -> None:
    rules = site(tmp_path, RULE.replace('content = "posts/"\n', ""))
    assert check_templates(rules, SHIPPED_TEMPLATES) == [Problem(
        str(rules / "followups.toml"), 2, "followup[0] (news): newsletter.txt.j2 shows `post`, "
                                          "which only a rule with `content` fills")]
    assert check_templates(site(tmp_path / "ok", RULE), SHIPPED_TEMPLATES) == []


def test_a_post_without_a_title_or_a_date_is_named_with_its_line(tmp_path: Path) -> None:
    rules = site(tmp_path, posts={"a.md": "---\ntitle: t\ndate: someday\n---\nx\n",
                                  "b.md": "just text\n", "2026-01-01-ok.md": "# fine\n"})
    assert problems(rules) == [
        f"{rules / 'posts' / 'a.md'}:3: no date: give `date: YYYY-MM-DD` in front matter or "
        "start the file name with YYYY-MM-DD-",
        f"{rules / 'posts' / 'b.md'}:1: no title: give `title:` in front matter or a first line "
        "`# Title`"]


def test_posts_come_out_on_their_day_and_the_newest_unsent_is_chosen(tmp_path: Path) -> None:
    posts, found = read_folder(site(tmp_path) / "posts", TOKYO)
    assert found == []
    by_id = {p.id: p for p in posts}
    assert by_id["2026-03-20-spring"].title == "春の新ポジション"
    assert by_id["2026-03-20-spring"].body == "営業職を募集します。"
    day_before = datetime(2026, 3, 19, 23, 59, tzinfo=TOKYO)
    assert choose(posts, [], day_before) == by_id["event"]
    assert choose(posts, ["event"], day_before) == by_id["2025-12-20-winter"]
    assert choose(posts, ["event", "2025-12-20-winter"], day_before) is None
    assert choose(posts, [], day_before + timedelta(minutes=1)) == by_id["2026-03-20-spring"]


ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>News</title>
<entry><id>tag:example.co.jp,2026:1</id><title>Open day</title>
<link href="https://www.example.co.jp/news/1"/><updated>2026-02-01T00:00:00Z</updated>
<content type="html">&lt;p&gt;First line&lt;/p&gt;&lt;p&gt;Second &amp;amp; last&lt;/p&gt;
</content></entry>
<entry><id>tag:example.co.jp,2026:2</id><title>No date</title></entry>
</feed>"""


def test_a_feed_gives_its_dated_entries_as_plain_text_posts() -> None:
    [post] = parse_feed(ATOM)
    assert (post.id, post.title, post.url) == ("tag:example.co.jp,2026:1", "Open day",
                                               "https://www.example.co.jp/news/1")
    assert post.body == "First line\nSecond & last"
    assert post.published == datetime(2026, 2, 1, tzinfo=UTC)


def test_rules_check_accepts_the_shipped_example_when_uncommented(tmp_path: Path) -> None:
    shipped = (SHIPPED_RULES / "followups.toml").read_text(encoding="utf-8")
    example = shipped[shipped.index("# [[followup]]"):]
    rule = "\n".join(line[2:] for line in example.splitlines())
    rules = site(tmp_path, rule)
    loaded = load_followups(rules, SHIPPED_TEMPLATES, ("newsletter",))
    assert [r.name for r in loaded.rules] == ["newsletter-monthly"]
    assert loaded.rules[0].content == str((rules / "posts").resolve())


class _FeedSite(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[dict[str, bytes]] = {"/feed.xml": ATOM, "/big.xml": b"<feed>" + b" " * 9000}
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        body = self.bodies.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/atom+xml")
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_the_daemon_fetches_a_feed_within_its_bounds_and_keeps_the_copy(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FeedSite)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    clock = FrozenClock(datetime(2026, 2, 2, tzinfo=UTC))
    try:
        with open_store(tmp_path / "data", "sqlite") as store:
            feeds = Feeds(store, clock, threading.RLock(), Newsletter(feed_max_bytes=4096))
            feeds.refresh({f"{base}/feed.xml", f"{base}/big.xml", f"{base}/gone.xml"})
            assert [p.title for p in feeds.posts(f"{base}/feed.xml")] == ["Open day"]
            assert feeds.posts(f"{base}/big.xml") == [] and feeds.posts(f"{base}/gone.xml") == []
            errors = {url: (store.get("settings", cache_key(url)) or {})["error"]
                      for url in (f"{base}/big.xml", f"{base}/gone.xml")}
            assert "larger than [newsletter] feed_max_bytes (4096)" in errors[f"{base}/big.xml"]
            assert errors[f"{base}/gone.xml"] == "FeedError: HTTP 404"
            seen = len(_FeedSite.requests)
            clock.advance(timedelta(minutes=59))
            feeds.refresh({f"{base}/feed.xml"})  # younger than feed_refresh: not fetched again
            assert len(_FeedSite.requests) == seen
            _FeedSite.bodies["/feed.xml"] = b"not a feed at all"
            clock.advance(timedelta(minutes=2))
            feeds.refresh({f"{base}/feed.xml"})
            assert len(_FeedSite.requests) == seen + 1
            # what the site answers now is no feed: the copy stays, the error is recorded
            assert [p.title for p in feeds.posts(f"{base}/feed.xml")] == ["Open day"]
            cached = store.get("settings", cache_key(f"{base}/feed.xml")) or {}
            assert cached["error"] == "FeedError: not an RSS or Atom feed"
    finally:
        _FeedSite.bodies["/feed.xml"] = ATOM
        server.shutdown()


def test_a_rule_with_a_feed_mails_its_newest_entry(world: World) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FeedSite)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    feed = f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    try:
        (world.config.rules_dir / "followups.toml").write_text(
            RULE.replace('"posts/"', f'"{feed}"'), encoding="utf-8")
        world.scheduler.reload()
        hanako = world.candidate("Hanako", news=True)
        world.at(CREATED + timedelta(hours=1))
        assert world.at(local(2026, 1, 13)) == {"skipped": 1}  # the entry is dated 1 February
        assert world.at(local(2026, 2, 10)) == {"sent": 1}
        [mail] = world.mails_to("Hanako")
        assert mail["Subject"] == "【株式会社サンプル】Open day"
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "First line\nSecond & last" in text and "https://www.example.co.jp/news/1" in text
        assert world.rows(hanako)[f"news:{hanako}#2"]["post"] == "tag:example.co.jp,2026:1"
    finally:
        server.shutdown()
