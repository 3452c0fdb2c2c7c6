"""A company feed (RSS or Atom) as the posts of a repeating follow-up: fetched by the daemon's tick
with httpx (a timeout and a size bound, `[newsletter]`), parsed with feedparser, and cached in
the store (kind "settings", key `feed:{sha256 of the URL}`) with when it was fetched, so that a
restart or an unreachable site still has the last good copy. A copy younger than
`[newsletter] feed_refresh` is not fetched again; a failed fetch keeps the copy and is logged.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import logging
import threading
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

from mailflow.clock import Clock, iso, parse_iso
from mailflow.followups.posts import Post
from mailflow.settings.config import Newsletter
from mailflow.settings.durations import parse_delay
from mailflow.store.base import Doc, Store

log = logging.getLogger("mailflow.followups")

_BLOCKS = {"p", "br", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "blockquote"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_text(html: str) -> str:
    """An entry's HTML as plain text (block elements become line breaks)."""
    parser = _Text()
    parser.feed(html)
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


class FeedError(Exception):
    pass


def parse_feed(data: bytes) -> list[Post]:
    """The dated entries of an RSS or Atom document (entries without a date are left out: which
    one is newest could not be told); FeedError for what is no feed at all."""
    import feedparser  # here, not at the top: the daemon starts without it (~20 ms)

    parsed = feedparser.parse(io.BytesIO(data))
    if parsed.get("bozo") and not parsed.entries and not parsed.get("version"):
        raise FeedError("not an RSS or Atom feed")
    posts = []
    for entry in parsed.entries:
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        title = html_text(str(entry.get("title") or ""))
        if when is None or not title:
            continue
        content = entry.get("content") or []
        body = str(content[0].get("value", "")) if content else str(entry.get("summary") or "")
        link = str(entry.get("link") or "")
        ident = str(entry.get("id") or link or hashlib.sha256(title.encode()).hexdigest()[:16])
        posts.append(Post(ident, title, html_text(body), link,
                          datetime.fromtimestamp(calendar.timegm(when), UTC)))
    return posts


def cache_key(url: str) -> str:
    return "feed:" + hashlib.sha256(url.encode()).hexdigest()[:32]


def _as_doc(post: Post) -> Doc:
    return {"id": post.id, "title": post.title, "body": post.body, "url": post.url,
            "published": iso(post.published)}


def _as_post(doc: Doc) -> Post:
    return Post(str(doc["id"]), str(doc["title"]), str(doc["body"]), str(doc["url"]),
                parse_iso(str(doc["published"])))


class Feeds:
    """The cached copies of the feeds the rules name."""

    def __init__(self, store: Store, clock: Clock, lane: threading.RLock,
                 settings: Newsletter) -> None:
        self.store = store
        self.clock = clock
        self.lane = lane
        self.settings = settings
        self.refresh_after = parse_delay(settings.feed_refresh)

    def posts(self, url: str) -> list[Post]:
        doc = self.store.get("settings", cache_key(url))
        return [_as_post(p) for p in (doc or {}).get("posts", [])]

    def refresh(self, urls: set[str]) -> None:
        """Fetch each feed whose copy is missing or older than `feed_refresh` (no lane held
        while fetching)."""
        import httpx  # here, not at the top: the daemon starts without it (~150 ms)

        now = self.clock.now()
        for url in sorted(urls):
            doc = self.store.get("settings", cache_key(url)) or {}
            tried = doc.get("tried_at")
            if tried and self.refresh_after.after(parse_iso(tried), ZoneInfo("UTC")) > now:
                continue
            update: dict[str, Any] = {"url": url, "tried_at": iso(now)}
            try:
                posts = parse_feed(self.fetch(url))
                update.update(fetched_at=iso(now), posts=[_as_doc(p) for p in posts], error="")
                log.info("feed %s: %d dated entries", cache_key(url)[5:13], len(posts))
            except (httpx.HTTPError, FeedError) as exc:
                update["error"] = f"{type(exc).__name__}: {exc}"
                log.warning("feed %s: not fetched (%s); the cached copy stays",
                            cache_key(url)[5:13], update["error"])
            with self.lane, self.store.transaction():
                self.store.put("settings", cache_key(url), {**doc, **update})

    def fetch(self, url: str) -> bytes:
        import httpx

        limit = self.settings.feed_max_bytes
        with httpx.Client(timeout=self.settings.feed_timeout_seconds, follow_redirects=True,
                          max_redirects=5) as client, client.stream("GET", url) as response:
            if response.status_code != 200:
                raise FeedError(f"HTTP {response.status_code}")
            size = int(response.headers.get("content-length") or 0)
            if size > limit:
                raise FeedError(f"larger than [newsletter] feed_max_bytes ({limit})")
            chunks, seen = [], 0
            for chunk in response.iter_bytes():
                seen += len(chunk)
                if seen > limit:
                    raise FeedError(f"larger than [newsletter] feed_max_bytes ({limit})")
                chunks.append(chunk)
        return b"".join(chunks)
