"""Issue 10: the tracked link over real HTTP against the running daemon — people apart from
scanners, never an open redirect, rate limits, metrics."""

from __future__ import annotations

import base64
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from harness import DaemonThread, metrics_auth
from prometheus_client.parser import text_string_to_metric_families
from servers import ImapAccount
from test_callbacks import env, event, signed, write_config  # noqa: F401  (fixture)

from mailflow.clock import FrozenClock
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.relay.desk import RejectionFacts, RelayDesk

PUBLIC_RATE, PUBLIC_BURST = 2.0, 30  # the config's defaults

REGISTER = "https://career-relay.example.jp/register?lang=ja"
BROWSER = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 "
                         "(KHTML, like Gecko) Version/17.0 Safari/605.1.15",
           "Accept-Language": "ja-JP,ja;q=0.9"}
NAME, EMAIL, PHONE = "山田 太郎", "taro.yamada@example.net", "09012345678"


def invited(running: DaemonThread) -> tuple[str, str, str]:
    """A candidate invited now; returns (token, relay_ref, candidate id)."""
    daemon = running.daemon
    with daemon.lane:
        pool = TalentPool(daemon.store, daemon.clock)
        candidate, _ = pool.apply(Applicant(NAME, EMAIL, (PHONE,), "営業", "", "direct"), None)
        invite = RelayDesk(daemon.store, daemon.clock, daemon.config.web.public_url).issue(
            candidate, RejectionFacts("経験不足"))
    return invite.token, invite.relay_ref, candidate["id"]


@pytest.fixture
def site(tmp_path: Path, imap_account: ImapAccount,
         env: dict[str, str]) -> tuple[DaemonThread, str]:  # noqa: F811
    config, base = write_config(tmp_path, imap_account, extra=f'register_url = "{REGISTER}"\n'
                                'company_id = "acme-001"\n')
    running = DaemonThread(config)
    running.daemon.clock = FrozenClock(datetime.now(UTC))  # the web edge's clock: links, clicks
    with running:
        yield running, base


def test_link_redirects_to_exactly_the_configured_place_without_personal_data(
        site: tuple[DaemonThread, str]) -> None:
    running, base = site
    token, ref, _cid = invited(running)
    answer = httpx.get(f"{base}/r/{token}", headers=BROWSER)
    assert answer.status_code == 302
    location = answer.headers["location"]
    parts = urllib.parse.urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "career-relay.example.jp",
                                                        "/register")
    assert urllib.parse.parse_qsl(parts.query) == [("lang", "ja"), ("company", "acme-001"),
                                                   ("ref", ref)]
    for value in (location, token, ref):
        for personal in (NAME, "山田", "太郎", EMAIL, "taro.yamada", PHONE, "090-1234-5678"):
            forms = {personal, urllib.parse.quote(personal), urllib.parse.quote_plus(personal),
                     base64.urlsafe_b64encode(personal.encode()).decode().rstrip("=")}
            assert not any(form in value for form in forms), (value, personal)


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),      # tampered
    lambda t: t[:20],                                       # truncated
    lambda t: t + "xyz",                                    # padded
    lambda t: t + "%20",                                    # URL-mangled by a scanner
    lambda t: urllib.parse.quote(t + ")", safe=""),         # a bracket taken into the link
    lambda t: "..%2f..%2fadmin",
    lambda t: "https:%2f%2fevil.example%2f",
    lambda t: "",
    lambda t: "%00" + t,
    lambda t: "A" * 5000,
])
def test_bad_tokens_get_a_friendly_404_and_never_leave(
        site: tuple[DaemonThread, str], mangle: object) -> None:
    running, base = site
    token, _ref, _cid = invited(running)
    bad = mangle(token)  # type: ignore[operator]
    answer = httpx.get(f"{base}/r/{bad}", headers=BROWSER)
    assert answer.status_code in (404, 429) and answer.status_code < 500
    assert "location" not in answer.headers
    if answer.status_code == 404:
        assert "リンクが見つかりません" in answer.text


def test_scanner_burst_is_scanner_and_a_later_browser_click_is_one_human(
        site: tuple[DaemonThread, str]) -> None:
    running, base = site
    token, _ref, cid = invited(running)
    scanner = {"User-Agent": "Mozilla/5.0 (compatible; Microsoft Office/16.0; SafeLinks)"}
    with httpx.Client() as client:
        client.head(f"{base}/r/{token}", headers=scanner)
        for _ in range(3):
            client.get(f"{base}/r/{token}", headers=scanner)
    store = running.daemon.store
    clicks = store.find("clicks", "token", token)
    assert [c["class"] for c in clicks] == ["scanner"] * 4
    assert store.get("candidates", cid)["relay_status"] == "invited"
    clock = running.daemon.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(timedelta(minutes=20))  # a person opens it later
    late = httpx.get(f"{base}/r/{token}", headers=BROWSER)
    assert late.status_code == 302
    humans = store.find("clicks", "class", "human")
    assert len(humans) == 1
    assert store.get("candidates", cid)["relay_status"] == "clicked"
    assert running.daemon.ledger.balance().registrations == 0  # clicks never credit


def test_one_noisy_client_is_limited_another_is_served_callbacks_are_not(
        site: tuple[DaemonThread, str]) -> None:
    running, base = site
    token, ref, _cid = invited(running)
    statuses: list[int] = []
    clock = running.daemon.clock
    assert isinstance(clock, FrozenClock)  # the limiter's clock: no refill however slow we are
    with httpx.Client() as noisy:
        for _ in range(1000):
            statuses.append(noisy.get(f"{base}/r/{token}", headers=BROWSER).status_code)
    assert statuses == [302] * PUBLIC_BURST + [429] * (1000 - PUBLIC_BURST)
    with httpx.Client() as noisy:  # the unsubscribe pages share the limit
        assert noisy.get(f"{base}/u/{'x' * 32}").status_code == 429
    clock.advance(timedelta(seconds=1))  # one second refills PUBLIC_RATE requests
    with httpx.Client() as noisy:
        refilled = [noisy.get(f"{base}/r/{token}", headers=BROWSER).status_code
                    for _ in range(int(PUBLIC_RATE) + 1)]
    assert refilled == [302] * int(PUBLIC_RATE) + [429]
    other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    with other:
        assert other.get(f"{base}/r/{token}", headers=BROWSER).status_code == 302
    with httpx.Client() as partner:  # from the noisy address: signed callbacks are not limited
        for n in range(40):
            body = event(f"evt-{n}", ref)
            assert partner.post(f"{base}/callbacks/career-relay", content=body,
                                headers=signed(body)).status_code == 200


def test_metrics_parse_and_move(site: tuple[DaemonThread, str]) -> None:
    running, base = site
    token, ref, _cid = invited(running)

    def sample(name: str, **labels: str) -> float:
        text = httpx.get(f"{base}/metrics", headers=metrics_auth()).text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        return 0.0

    before = sample("mailflow_link_clicks_total", **{"class": "scanner"})
    httpx.head(f"{base}/r/{token}")
    assert sample("mailflow_link_clicks_total", **{"class": "scanner"}) == before + 1
    body = event("evt-m", ref)
    httpx.post(f"{base}/callbacks/career-relay", content=body, headers=signed(body))
    assert sample("mailflow_partner_callbacks_total", outcome="accepted") == 1
    httpx.post(f"{base}/callbacks/career-relay", content=body, headers={})
    assert sample("mailflow_partner_callbacks_total", outcome="unauthorized") == 1
    assert running.daemon.web is not None
    running.daemon.web.metrics.store_figures.refresh()  # the store's figures: as of a refresh
    assert sample("mailflow_ledger", what="registrations") == 1
    assert sample("mailflow_invitations_issued") == 1
    text = httpx.get(f"{base}/metrics", headers=metrics_auth()).text
    assert "taro" not in text and "山田" not in text and ref not in text


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
        tmp_path: Path, imap_account: ImapAccount, env: dict[str, str]) -> None:  # noqa: F811
    config, base = write_config(tmp_path, imap_account, extra=f'register_url = "{REGISTER}"\n')
    config.write_text(config.read_text().replace(
        "max_body_bytes = 4096", 'max_body_bytes = 4096\ntrusted_proxies = ["127.0.0.1"]'))
    with DaemonThread(config) as running:
        token, _ref, _cid = invited(running)
        with httpx.Client() as proxy:
            first = [proxy.get(f"{base}/r/{token}", headers={
                **BROWSER, "X-Forwarded-For": "198.51.100.1"}).status_code for _ in range(60)]
            other = proxy.get(f"{base}/r/{token}", headers={
                **BROWSER, "X-Forwarded-For": "198.51.100.2"}).status_code
    assert 429 in first and other == 302
