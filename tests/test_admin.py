"""Issue 19 part 4 over plain HTTP against the running daemon: the admin pages need a session
(every page redirects to the login without one), the login takes only the admin token and is
rate-limited, every POST needs the session's CSRF token, the cookie's flags, logout ends the
session for every copy of the cookie, no personal data in any URL, `/metrics` needs the token,
each action is in the audit log."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from admin_site import PAGES, PEOPLE, Seeded, csrf_in, logged_in, seed, token
from harness import DaemonThread, metrics_auth
from servers import ImapAccount
from test_callbacks import env, write_config  # noqa: F401  (fixture)

from mailflow.errors import ProblemsError
from mailflow.pool import audit
from mailflow.starter import SHIPPED_RULES


@pytest.fixture
def site(tmp_path: Path, imap_account: ImapAccount,
         env: dict[str, str]) -> Iterator[Seeded]:  # noqa: F811
    config, base = write_config(tmp_path, imap_account, per_slot=1)
    with DaemonThread(config) as running:
        yield seed(running, base, config)


def admin_urls(seeded: Seeded) -> list[str]:
    return [*PAGES, f"/admin/candidates/{seeded.ids[0]}"]


def test_no_page_without_a_session(site: Seeded) -> None:
    with httpx.Client(base_url=site.base, timeout=20) as anonymous:
        for url in admin_urls(site):
            answer = anonymous.get(url)
            assert answer.status_code == 303, url
            assert answer.headers["location"] == "/admin/login", url
        for url in ("/admin/pool", f"/admin/quarantine/{site.quarantined}/replay",
                    f"/admin/outbox/{site.unknown}/resend", "/admin/logout"):
            assert anonymous.post(url, data={"csrf": "x"}).status_code == 303, url
        assert anonymous.get("/admin/login").status_code == 200
    with logged_in(site.base) as admin:
        for url in admin_urls(site):
            assert admin.get(url).status_code == 200, url


def test_the_session_cookie_and_the_pages_headers(site: Seeded) -> None:
    with httpx.Client(base_url=site.base, timeout=20) as client:
        page = client.get("/admin/login")
        cookie = page.headers["set-cookie"]
        assert cookie.startswith("mailflow_admin=")
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "samesite=strict", "path=/admin"} <= flags
        assert "secure" not in flags  # public_url is http here; https adds it (test below)
        assert any(f.startswith("max-age=28800") for f in flags)
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "style-src 'self'" in csp
        assert "script-src" not in csp
        assert client.get("/admin/admin.css").headers["content-type"].startswith("text/css")


def test_wrong_tokens_are_refused_then_limited(site: Seeded) -> None:
    with httpx.Client(base_url=site.base, timeout=20) as client:
        csrf = csrf_in(client.get("/admin/login").text)
        for wrong in ("", "admin", token() + "x", token()[:-1]):
            answer = client.post("/admin/login", data={"csrf": csrf, "token": wrong})
            assert answer.status_code == 401
            assert client.get("/admin/").status_code == 303
        client.post("/admin/login", data={"csrf": csrf, "token": "again"})
        limited = client.post("/admin/login", data={"csrf": csrf, "token": token()})
        assert limited.status_code == 429  # even the right token, until the window passes
        assert client.get("/admin/").status_code == 303


def test_a_post_without_its_csrf_token_changes_nothing(site: Seeded) -> None:
    store = site.running.daemon.store
    with logged_in(site.base) as admin:
        url = f"/admin/quarantine/{site.quarantined}/replay"
        for data in ({}, {"csrf": "forged"}):
            assert admin.post(url, data=data).status_code == 403
        key = next(d["key"] for d in store.scan("quarantine") if d["id"] == site.quarantined)
        assert store.get("quarantine", key)["state"] == "quarantined"
        assert admin.post("/admin/login", data={"token": token()}).status_code == 403
        csrf = csrf_in(admin.get("/admin/quarantine").text)
        assert admin.post(url, data={"csrf": csrf}).status_code == 303
        assert store.get("quarantine", key)["state"] == "replayed"


def test_logout_ends_the_session_for_every_copy_of_the_cookie(site: Seeded) -> None:
    with logged_in(site.base) as admin:
        stolen = dict(admin.cookies)
        csrf = csrf_in(admin.get("/admin/").text)
        assert admin.post("/admin/logout", data={"csrf": csrf}).headers["location"] == \
            "/admin/login"
        with httpx.Client(base_url=site.base, cookies=stolen, timeout=20) as thief:
            assert thief.get("/admin/").status_code == 303


def test_no_personal_data_in_any_admin_url(site: Seeded) -> None:
    personal = [p for name, email, phone, _pos, _src in PEOPLE for p in
                (name, name.split()[0], email, email.split("@")[0], phone)]
    with logged_in(site.base) as admin:
        seen, todo = set(), list(admin_urls(site))
        while todo:
            url = todo.pop()
            if url in seen:
                continue
            seen.add(url)
            page = admin.get(url).text
            for found in re.findall(r'(?:href|action|src)="([^"]+)"', page):
                link = unquote(unescape(found))
                for p in personal:
                    assert p not in link, (url, link)
                path = link.split("?")[0]
                if path.startswith("/admin/") and "/logout" not in path and "." not in path:
                    todo.append(path)
        assert f"/admin/candidates/{site.ids[0]}" in seen
        # the search is a POST: the term is in no URL, and the audit names only the filters
        found = admin.post("/admin/pool", data={"csrf": csrf_in(admin.get("/admin/pool").text),
                                                 "term": "taro.yamada"})
        assert "山田 太郎" in found.text and "佐藤 次郎" not in found.text
    store = site.running.daemon.store
    entries = [e for _seq, e in audit.entries(store)]
    assert {"admin-login", "admin-search", "admin-view"} <= {e["action"] for e in entries}
    assert all(e["actor"] == "admin:token" for e in entries if e["action"].startswith("admin"))
    assert "taro" not in repr(entries)


def test_outbox_buttons_resend_and_mark_sent(site: Seeded) -> None:
    store = site.running.daemon.store
    with logged_in(site.base) as admin:
        page = admin.get("/admin/outbox").text
        assert f"/admin/outbox/{site.unknown}/mark-sent" in page
        done = admin.post(f"/admin/outbox/{site.unknown}/mark-sent", data={"csrf": csrf_in(page)})
        assert done.status_code == 303
        assert store.get("outbox", site.unknown)["state"] == "sent"
        again = admin.post(f"/admin/outbox/{site.unknown}/resend", data={"csrf": csrf_in(page)})
        assert again.status_code == 303  # refused by the outbox: shown, nothing changes
        assert "できませんでした" in admin.get("/admin/outbox").text
        assert store.get("outbox", site.unknown)["state"] == "sent"
    actions = [(e["action"], e["detail"].get("outcome")) for _s, e in audit.entries(store)]
    assert ("admin-mark-sent", "done") in actions and ("admin-resend", "refused") in actions


def test_english_with_lang_en(site: Seeded) -> None:
    with logged_in(site.base) as admin:
        assert "人材プール" in admin.get("/admin/pool").text
        assert "Talent pool" in admin.get("/admin/pool?lang=en").text
        assert "Talent pool" in admin.get("/admin/ledger").text  # kept in the session


def test_metrics_need_the_admin_token(site: Seeded) -> None:
    assert httpx.get(f"{site.base}/metrics").status_code == 401
    wrong = {"Authorization": "Bearer " + token() + "x"}
    assert httpx.get(f"{site.base}/metrics", headers=wrong).status_code == 401
    with logged_in(site.base) as admin:  # an admin session is not a scrape credential
        assert admin.get("/metrics").status_code == 401
    answer = httpx.get(f"{site.base}/metrics", headers=metrics_auth())
    assert answer.status_code == 200 and "mailflow_up" in answer.text


def test_secure_cookie_when_public_url_is_https(tmp_path: Path, imap_account: ImapAccount,
                                                env: dict[str, str]) -> None:  # noqa: F811
    config, base = write_config(tmp_path, imap_account)
    config.write_text(config.read_text().replace('public_url = "http://', 'public_url = "https://'))
    with DaemonThread(config):
        cookie = httpx.get(f"{base}/admin/login").headers["set-cookie"].lower()
    assert "; secure" in cookie


def test_the_rules_page_shows_the_last_validation_and_the_files_now(
        tmp_path: Path, imap_account: ImapAccount, env: dict[str, str]) -> None:  # noqa: F811
    config, base = write_config(tmp_path, imap_account)
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, rules)
    config.write_text(config.read_text().replace(str(SHIPPED_RULES), str(rules)))
    with DaemonThread(config) as running, logged_in(base) as admin:
        page = admin.get("/admin/rules").text
        assert "起動時" in page and "sources.toml" in page
        assert page.count("問題はありません") == 2
        good = (rules / "sources.toml").read_text(encoding="utf-8")
        (rules / "sources.toml").write_text(good + "\n[[source]]\nnam = 'x'\n", "utf-8")
        with pytest.raises(ProblemsError):
            running.daemon.reload()  # what SIGHUP does: refused, the old rules stay
        page = unescape(admin.get("/admin/rules").text)
        assert "再読み込み時" in page and "それまでのルールを使い続けています" in page
        shown = page.count("sources.toml:")  # the last validation's problems, and the same now
        assert shown >= 2 and shown % 2 == 0
        (rules / "sources.toml").write_text(good, "utf-8")
        page = admin.get("/admin/rules").text
        assert page.count("sources.toml:") == shown // 2  # fixed on disk; the reload refused
        assert "問題はありません" in page
