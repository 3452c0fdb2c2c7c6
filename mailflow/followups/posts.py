"""The posts a repeating follow-up mails (pure): a folder of Markdown files, or the entries of a
company feed (`followups/feed.py` fetches and parses those).

A Markdown post is one `.md` file: either front matter (`---` lines around `title: …`,
`date: YYYY-MM-DD`, optional `url: …`) and then the text, or a first line `# Title` and a date
in the file name (`2026-01-15-event.md`). Its id is the file name without `.md`. The body
reaches the template as plain text (headings' `#`, emphasis and link syntax taken out, a link
written `text (url)`). A post dated after today (in the rules' time zone) is not out yet.
`choose` picks what one person gets at one occurrence: the newest post that is out and that they
were not sent.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from mailflow.errors import Problem

_FRONT_KEY = re.compile(r"^([A-Za-z_]+)\s*:\s*(.*?)\s*$")
_FILE_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")
_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]+)[^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(\S(?:.*?\S)?)\1")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")


@dataclass(frozen=True)
class Post:
    id: str
    title: str
    body: str  # plain text
    url: str
    published: datetime  # UTC-aware; a Markdown post's local midnight

    def as_vars(self) -> dict[str, str]:
        return {"title": self.title, "body": self.body, "url": self.url}


EMPTY = {"title": "", "body": "", "url": ""}  # `post` in a mail of a rule without content


def plain(markdown: str) -> str:
    """Markdown as the plain text of a mail."""
    lines = []
    for line in markdown.splitlines():
        if line.strip().startswith("```"):
            continue
        line = _HEADING.sub("", line)
        line = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})" if not m.group(0).startswith(
            "!") else m.group(1), line)
        lines.append(_EMPHASIS.sub(r"\2", line).rstrip())
    return "\n".join(lines).strip("\n")


def read_post(path: Path, zone: ZoneInfo) -> Post | Problem:
    """One Markdown post, or the problem that keeps it from being one (with its line)."""
    try:
        text = path.read_text(encoding="utf-8").lstrip("\ufeff")
    except (OSError, UnicodeDecodeError) as exc:
        return Problem(str(path), None, f"cannot read post: {exc}")
    lines = text.splitlines()
    meta: dict[str, str] = {}
    start, date_line = 0, 1
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is None:
            return Problem(str(path), 1, "front matter opened with --- is never closed")
        for number in range(1, end):
            found = _FRONT_KEY.match(lines[number])
            if found:
                meta[found.group(1).lower()] = found.group(2).strip("\"'")
                date_line = number + 1 if found.group(1).lower() == "date" else date_line
        start = end + 1
    rest = lines[start:]
    title = meta.get("title", "")
    if not title:
        first = next((i for i, line in enumerate(rest) if line.strip()), None)
        if first is not None and _HEADING.match(rest[first]):
            title = _HEADING.sub("", rest[first]).strip()
            rest = rest[first + 1:]
    if not title:
        return Problem(str(path), start + 1, "no title: give `title:` in front matter or a "
                                             "first line `# Title`")
    written = meta.get("date") or (m.group(1) if (m := _FILE_DATE.match(path.name)) else "")
    try:
        day = date.fromisoformat(written[:10])
    except ValueError:
        return Problem(str(path), date_line, "no date: give `date: YYYY-MM-DD` in front matter "
                                             "or start the file name with YYYY-MM-DD-")
    published = datetime(day.year, day.month, day.day, tzinfo=zone)
    return Post(path.stem, title, plain("\n".join(rest)), meta.get("url", ""), published)


def read_folder(folder: Path, zone: ZoneInfo) -> tuple[list[Post], list[Problem]]:
    """Every post of a folder (`*.md`, sorted by name) and the problems of those that are not."""
    posts: list[Post] = []
    problems: list[Problem] = []
    for path in sorted(folder.glob("*.md")):
        found = read_post(path, zone)
        if isinstance(found, Problem):
            problems.append(found)
        else:
            posts.append(found)
    return posts, problems


def choose(posts: Iterable[Post], sent: Collection[str], now: datetime) -> Post | None:
    """The newest post that is out by `now` and not among `sent` (ids), or None."""
    fresh = [p for p in posts if p.published <= now and p.id not in sent]
    return max(fresh, key=lambda p: (p.published, p.id)) if fresh else None
