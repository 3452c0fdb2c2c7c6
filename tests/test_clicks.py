"""Issue 10 (pure): people apart from mail scanners; rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailflow.relay.clicks import Click, classify
from mailflow.web.ratelimit import RateLimiter

SENT = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
BROWSER = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0 Safari/537.36")


def click(after: float, **changes: object) -> Click:
    values: dict[str, object] = {"method": "GET", "user_agent": BROWSER, "client": "203.0.113.7",
                                 "at": SENT + timedelta(seconds=after),
                                 "accept_language": "ja,en;q=0.8"}
    values.update(changes)
    return Click(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "after", "reason"), [
    ({"method": "HEAD"}, 3600, "HEAD request"),
    ({"user_agent": "Mozilla/5.0 (compatible; BingPreview/1.0b)"}, 3600, "scanner user agent"),
    ({"user_agent": "python-requests/2.32"}, 3600, "scanner user agent"),
    ({"user_agent": ""}, 3600, "no user agent"),
    ({"client": "40.94.12.3"}, 3600, "scanner network"),
    ({}, 2, "within seconds of sending"),
    ({"accept_language": ""}, 3600, "no Accept-Language (not a browser)"),
])
def test_scanner_evidence(changes: dict[str, object], after: float, reason: str) -> None:
    verdict = classify(click(after, **changes), SENT, [])
    assert (verdict.kind, verdict.reason) == ("scanner", reason)


def test_a_browser_later_is_a_person_and_a_double_click_is_not_two() -> None:
    first = click(3600)
    assert classify(first, SENT, []).kind == "human"
    again = click(3600.4)
    assert classify(again, SENT, [first.at]).reason == "repeat within a second"
    assert classify(click(3700), SENT, [first.at]).kind == "human"


def test_rate_limiter_is_per_client_and_refills() -> None:
    limiter = RateLimiter(rate=5, burst=10)
    allowed = sum(limiter.allow("a", 0.0) for _ in range(1000))
    assert allowed == 10
    assert limiter.allow("b", 0.0)  # another client is still served
    assert not limiter.allow("a", 0.1)
    assert limiter.allow("a", 0.3)  # 1.5 tokens back after 0.3 s


def test_rate_limiter_forgets_old_clients() -> None:
    limiter = RateLimiter(rate=1, burst=1, clients=2)
    for client in ("a", "b", "c"):
        limiter.allow(client, 0.0)
    assert limiter.allow("a", 0.0)  # "a" was forgotten, so it starts with a full bucket
