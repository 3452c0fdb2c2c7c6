"""What a follow-up rule with `content` mails at one occurrence: the newest post that is out and
that this person was not sent yet, from the rule's folder of Markdown posts (`followups/posts.py`)
or its feed (`followups/feed.py`); none when nothing is new (the occurrence is then skipped, the
next one stays planned).

Which posts a person was sent is kept on their record (`mailings`: rule name → post ids) and
written in the transaction that queues the mail, so a post goes to a person once, across
restarts; erasure takes the list with the record.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from mailflow.clock import Clock
from mailflow.followups.feed import Feeds
from mailflow.followups.posts import Post, choose, read_folder
from mailflow.followups.rules import FollowupRules, Rule, is_feed
from mailflow.pool.records import Candidate
from mailflow.settings.config import Newsletter
from mailflow.store.base import Store

log = logging.getLogger("mailflow.followups")


class Mailings:
    def __init__(self, store: Store, clock: Clock, lane: threading.RLock, zone: ZoneInfo,
                 settings: Newsletter) -> None:
        self.zone = zone
        self.feeds = Feeds(store, clock, lane, settings)
        self._folders: dict[str, tuple[tuple[tuple[str, int], ...], list[Post]]] = {}

    def refresh(self, rules: FollowupRules) -> None:
        """Fetch the feeds the rules name that are due a new copy (in the tick, no lane held)."""
        urls = {r.content for r in rules.rules if r.content and is_feed(r.content)}
        if urls:
            self.feeds.refresh(urls)

    def posts(self, rule: Rule) -> list[Post]:
        assert rule.content is not None
        if is_feed(rule.content):
            return self.feeds.posts(rule.content)
        return self._folder(Path(rule.content))

    def next_post(self, rule: Rule, candidate: Candidate, now: datetime) -> Post | None:
        sent = candidate.get("mailings", {}).get(rule.name, [])
        return choose(self.posts(rule), sent, now)

    @staticmethod
    def mark_sent(candidate: Candidate, rule: Rule, post: Post) -> None:
        sent = candidate.setdefault("mailings", {}).setdefault(rule.name, [])
        if post.id not in sent:
            sent.append(post.id)

    def _folder(self, folder: Path) -> list[Post]:
        """The folder's posts, read again only when a file was added, removed or changed."""
        try:
            seen = tuple(sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(folder)
                                if e.name.endswith(".md")))
        except OSError as exc:
            log.warning("posts folder %s: %s", folder, exc)
            return []
        cached = self._folders.get(str(folder))
        if cached is not None and cached[0] == seen:
            return cached[1]
        posts, problems = read_folder(folder, self.zone)
        for problem in problems:
            log.warning("post left out: %s", problem)
        self._folders[str(folder)] = (seen, posts)
        return posts
