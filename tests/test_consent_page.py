"""Issue 18 part 2: the candidate's consent page over real HTTP against the running daemon —
GET shows and changes nothing, POST changes only with a valid CSRF token from the same site,
every change recorded with when, how and evidence; the page is linked from the invitation."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from harness import DaemonThread
from servers import ImapAccount
from test_callbacks import env, write_config  # noqa: F401  (fixture)

from mailflow.pool import consent
from mailflow.pool.consent_links import consent_token
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.relay.desk import RejectionFacts, RelayDesk
from mailflow.web.consent_page import csrf_token, csrf_valid, same_site

NAME, EMAIL, PHONE = "山田 太郎", "taro.yamada@example.net", "09012345678"
COMPANY = "株式会社テスト商事"


@pytest.fixture
def site(tmp_path: Path, imap_account: ImapAccount,
         env: dict[str, str]) -> tuple[DaemonThread, str]:  # noqa: F811
    config, base = write_config(tmp_path, imap_account)
    config.write_text(config.read_text().replace("[company]", f'[company]\nname = "{COMPANY}"'))
    with DaemonThread(config) as running:
        yield running, base


def rejected(running: DaemonThread) -> tuple[str, str]:
    """A candidate rejected with an invitation now; (candidate id, consent page link)."""
    daemon = running.daemon
    with daemon.lane:
        pool = TalentPool(daemon.store, daemon.clock)
        candidate, _ = pool.apply(Applicant(NAME, EMAIL, (PHONE,), "営業", "", "direct"), None)
        invite = RelayDesk(daemon.store, daemon.clock, daemon.config.web.public_url).issue(
            candidate, RejectionFacts("経験不足"))
    return candidate["id"], invite.consent_link


def recorded(running: DaemonThread, candidate_id: str) -> tuple[dict[str, object], list[str]]:
    daemon = running.daemon
    pool = TalentPool(daemon.store, daemon.clock)
    candidate = pool.get(candidate_id)
    assert candidate is not None
    return dict(candidate["consents"]), [e["type"] for e in pool.timeline(candidate_id)]


def form_of(page: str) -> tuple[str, str, list[str], list[str]]:
    """The form's action, CSRF token, shown purposes and ticked ones."""
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', page)[1])  # type: ignore[index]
    csrf = unescape(re.search(r'name="csrf" value="([^"]+)"', page)[1])  # type: ignore[index]
    shown = re.findall(r'name="shown" value="([^"]+)"', page)
    ticked = re.findall(r'name="consent" value="([^"]+)" checked', page)
    return action, csrf, shown, ticked


def post_form(url: str, fields: list[tuple[str, str]],
              headers: dict[str, str] | None = None) -> httpx.Response:
    """POST the fields as a browser sends a form (application/x-www-form-urlencoded)."""
    return httpx.post(url, content=urlencode(fields), headers={
        "Content-Type": "application/x-www-form-urlencoded", **(headers or {})})


def test_get_shows_every_purpose_in_japanese_and_changes_nothing(
        site: tuple[DaemonThread, str]) -> None:
    running, base = site
    candidate_id, link = rejected(running)
    assert link.startswith(f"{base}/c/")
    token = link.rpartition("/")[2]
    for personal in (NAME, "taro", EMAIL, PHONE, candidate_id):
        assert personal not in token
    before = recorded(running, candidate_id)
    answer = httpx.get(link)
    assert answer.status_code == 200
    page = answer.text
    assert '<html lang="ja">' in page and COMPANY in page
    for purpose in running.daemon.config.privacy.purposes.values():
        assert purpose.ja in page
    assert "このページを開いただけでは何も変更されません" in page
    _action, _csrf, shown, ticked = form_of(page)
    assert shown == list(running.daemon.config.privacy.purposes)
    assert ticked == ["selection", "talent_pool"]  # the notified purposes hold
    assert NAME not in page and EMAIL not in page
    for _ in range(3):  # a scanner fetching it again and again, and HEAD
        httpx.get(link, headers={"User-Agent": "Mozilla/5.0 (compatible; BingPreview/1.0b)"})
        httpx.head(link)
    assert recorded(running, candidate_id) == before
    english = httpx.get(link + "?lang=en").text
    assert '<html lang="en">' in english
    assert running.daemon.config.privacy.purposes["rescout"].en in english
    assert httpx.get(f"{base}/c/{'A' * 32}").status_code == 404
    assert httpx.get(f"{base}/c/nonsense").status_code == 404


def test_post_without_or_with_a_bad_csrf_token_or_from_another_site_changes_nothing(
        site: tuple[DaemonThread, str]) -> None:
    running, _base = site
    candidate_id, link = rejected(running)
    before = recorded(running, candidate_id)
    _action, csrf, shown, _ticked = form_of(httpx.get(link).text)
    withdraw_all = [("shown", p) for p in shown]
    tampered = csrf[:-1] + ("0" if csrf[-1] != "0" else "1")
    other_token = csrf_token(b"k" * 32, "someone-elses-token-xxxxxxxx", int(csrf.split(".")[0]))
    for fields, headers in [
        (withdraw_all, {}),  # no CSRF token: what a scanner or a forged form sends
        ([*withdraw_all, ("csrf", tampered)], {}),
        ([*withdraw_all, ("csrf", other_token)], {}),
        ([*withdraw_all, ("csrf", csrf)], {"Origin": "https://evil.example"}),
        ([*withdraw_all, ("csrf", csrf)], {"Sec-Fetch-Site": "cross-site"}),
    ]:
        answer = post_form(link, fields, headers)
        assert answer.status_code == 403, (fields, headers)
        assert "何も変更していません" in answer.text
    assert recorded(running, candidate_id) == before


def test_post_with_the_pages_csrf_token_records_each_change_with_evidence(
        site: tuple[DaemonThread, str]) -> None:
    running, base = site
    candidate_id, link = rejected(running)
    action, csrf, shown, _ticked = form_of(httpx.get(link).text)
    assert action == f"{link}?lang=ja"
    # grant rescout, withdraw talent_pool (notified), keep selection; as a browser posts it
    fields = [("csrf", csrf), *[("shown", p) for p in shown],
              ("consent", "selection"), ("consent", "rescout")]
    answer = post_form(action, fields, {"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert answer.status_code == 200, answer.text
    assert "保存しました" in answer.text
    consents, timeline = recorded(running, candidate_id)
    assert set(consents) == {"rescout", "talent_pool"}  # only what changed
    for purpose, state in (("rescout", "granted"), ("talent_pool", "withdrawn")):
        entry = consents[purpose]
        assert isinstance(entry, dict)
        assert (entry["state"], entry["how"]) == (state, "consent page")
        assert re.fullmatch(r"request rq_[0-9a-f]{12} at \d{4}-.*Z", entry["evidence"])
    assert timeline.count("consent") == 2
    candidate = TalentPool(running.daemon.store, running.daemon.clock).get(candidate_id)
    assert candidate is not None
    notified = running.daemon.config.privacy.notified_purposes
    assert consent.state(candidate, "rescout", notified).holds
    assert not consent.state(candidate, "talent_pool", notified).holds
    again = post_form(action, fields, {"Origin": base})
    assert again.status_code == 200 and "変更はありませんでした" in again.text
    assert recorded(running, candidate_id)[1].count("consent") == 2
    page = httpx.get(link).text
    assert form_of(page)[3] == ["selection", "rescout"]
    assert "にご同意いただきました" in page and "に停止しました" in page


def test_one_consent_page_per_candidate_in_every_mail(site: tuple[DaemonThread, str]) -> None:
    running, _base = site
    candidate_id, link = rejected(running)
    daemon = running.daemon
    with daemon.lane, daemon.store.transaction():
        assert link.endswith("/" + consent_token(daemon.store, daemon.clock, candidate_id))


def test_csrf_tokens_are_bound_expire_and_differ_per_render() -> None:
    key = b"k" * 32
    first, second = csrf_token(key, "tok" * 8, 1_000), csrf_token(key, "tok" * 8, 1_000)
    assert first != second  # a nonce per render
    assert csrf_valid(key, "tok" * 8, first, 1_000 + 7199)
    assert not csrf_valid(key, "tok" * 8, first, 1_000 + 7201)  # expired
    assert not csrf_valid(key, "tok" * 8, first, 999)  # from the future
    assert not csrf_valid(key, "other" * 5, first, 1_001)  # another consent page
    assert not csrf_valid(b"x" * 32, "tok" * 8, first, 1_001)  # another key
    assert not csrf_valid(key, "tok" * 8, "garbage", 1_001)
    public = "https://jobs.example.co.jp"
    assert same_site(None, None, public) and same_site("null", "same-origin", public)
    assert same_site(public, None, public)
    assert not same_site("https://evil.example", None, public)
    assert not same_site(None, "cross-site", public)
