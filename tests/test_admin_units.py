"""The admin pages' pure parts on a frozen clock: a session ends after 8 hours idle and at logout,
failed logins are limited per client within their window, the pool's filters, the chart's layout,
the templates escape what they show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mailflow.clock import FrozenClock
from mailflow.web.admin.auth import (
    FAILURE_WINDOW,
    FAILURES_ALLOWED,
    IDLE_SECONDS,
    FailedLogins,
    Sessions,
    token_matches,
)
from mailflow.web.admin.chart import layout
from mailflow.web.admin.pages import templates
from mailflow.web.admin.texts import translator
from mailflow.web.admin.views import Filters, matches, months_with_figures

START = datetime(2026, 4, 1, 0, 30, tzinfo=UTC)


def test_a_session_ends_after_eight_hours_idle_and_at_logout() -> None:
    clock = FrozenClock(START)
    sessions = Sessions(clock)
    sid = sessions.open()
    for _ in range(3):  # used every 7 hours: kept alive for 21 hours
        clock.advance(timedelta(hours=7))
        assert sessions.alive(sid)
    clock.advance(timedelta(seconds=IDLE_SECONDS + 1))
    assert not sessions.alive(sid)
    assert not sessions.alive(sid)  # gone, not only expired
    other = sessions.open()
    sessions.close(other)
    assert not sessions.alive(other)
    assert not sessions.alive("made-up") and not sessions.alive(None)


def test_failed_logins_are_limited_per_client_within_the_window() -> None:
    clock = FrozenClock(START)
    failures = FailedLogins(clock)
    for _ in range(FAILURES_ALLOWED):
        assert not failures.limited("203.0.113.7")
        failures.failed("203.0.113.7")
    assert failures.limited("203.0.113.7")
    assert not failures.limited("198.51.100.1")  # another client is not
    clock.advance(timedelta(seconds=FAILURE_WINDOW + 1))
    assert not failures.limited("203.0.113.7")


def test_token_matches_only_the_same_non_empty_token() -> None:
    assert token_matches("s3cret-token", "s3cret-token")
    assert not token_matches("s3cret-token", "s3cret-tokeN")
    assert not token_matches("", "")
    assert not token_matches("s3cret-token", "")


def test_the_pools_filters() -> None:
    taro = {"id": "c_1", "name": "山田 太郎", "emails": ["taro@example.net"], "status": "rejected",
            "source": "doda", "tags": ["営業"], "skills": [{"value": "Python"}],
            "consents": {"rediscovery": {"granted": True}}}
    assert matches(taro, Filters())
    assert matches(taro, Filters(term="ＴＡＲＯ"))  # NFKC, case folded
    assert matches(taro, Filters(status="rejected", source="doda", tag="営業", skill="python",
                                 consent="rediscovery:yes"))
    for miss in (Filters(status="applied"), Filters(source="direct"), Filters(tag="経理"),
                 Filters(skill="Go"), Filters(consent="rediscovery:no"), Filters(term="花子")):
        assert not matches(taro, miss), miss
    assert Filters(term="taro", status="rejected").names == ["term", "status"]


def test_the_chart_spans_the_months_with_figures() -> None:
    rows = [{"month": f"2026-{m:02d}", "applications": a, "hires": 0}
            for m, a in ((1, 0), (2, 3), (3, 0), (4, 1), (5, 0))]
    busy = months_with_figures(rows)
    assert [r["month"] for r in busy] == ["2026-02", "2026-03", "2026-04"]
    chart = layout(busy, ("applications", "hires"))
    assert len(chart.bars) == 6 and [m for _x, m in chart.months] == [r["month"] for r in busy]
    tallest = max(chart.bars, key=lambda b: b.height)
    assert tallest.value == 3 and tallest.y == 12  # the top of the plot
    assert months_with_figures([{"month": "2026-01", "applications": 0}]) == []


def test_the_templates_escape_what_they_show() -> None:
    name = "<script>alert('x')</script>"
    html = templates.get_template("candidate.html").render(
        t=translator("ja"), lang="ja", csrf="c", prefix="/admin", nav=(), paths={},
        page="candidate", flash=None, logged_in=True,
        c={"id": "c_1", "name": name, "timeline": [], "applications": [], "consents": []})
    assert "<script>" not in html and "&lt;script&gt;" in html
