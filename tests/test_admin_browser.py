"""Issue 19 part 4 end to end in a real browser: Debian's headless Chromium, driven by Python
playwright (no browser is downloaded: `executable_path` is the system's), against the running
daemon's web edge with a seeded store. It logs in with the token, opens every page, finds the
overview's numbers equal to `mailflow report --json`, searches the pool, replays a quarantined
mail; a wrong token is refused; a candidate named with `<script>` is shown as text. Screenshots
go to `tests/artifacts/` (their paths are printed)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_site import HIRED_ON, PAGES, PEOPLE, QUARANTINED_EMAIL, Seeded, seed, token
from harness import MAILFLOW, DaemonThread
from servers import Dovecot, ImapAccount
from test_callbacks import env, write_config  # noqa: F401  (fixture)
from test_script_in_names import HOSTILE_NAME, add_hostile

from mailflow.pool.talent import TalentPool
from mailflow.web.admin.views import TILES

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"
FROM, TO = "2000-01-01", "2099-12-31"

sync_api = pytest.importorskip("playwright.sync_api")
# A missing browser fails the test, never skips it: `.ci/install-deps` installs Debian's chromium.
assert CHROMIUM.exists(), "needs Debian's chromium: bash .ci/install-deps"


@pytest.fixture
def site(tmp_path: Path, imap_account: ImapAccount,
         env: dict[str, str]) -> Iterator[tuple[Seeded, dict[str, str]]]:  # noqa: F811
    config, base = write_config(tmp_path, imap_account, per_slot=1)
    with DaemonThread(config) as running:
        yield seed(running, base, config), env


@pytest.fixture
def page() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900},
                                          locale="ja-JP")
            yield context.new_page()
        finally:
            browser.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"admin-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def shown(value: Any) -> str:
    """A figure as the overview prints it."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value * 100:.1f}%"
    return f"{value:,}"


def login(page: Any, base: str, with_token: str) -> None:
    page.goto(f"{base}/admin/login")
    page.fill("#token", with_token)
    page.click("#login")


def test_the_dashboard_in_chromium(site: tuple[Seeded, dict[str, str]], page: Any) -> None:
    seeded, environment = site
    base = seeded.base
    # a wrong token is refused: the login again, with why, and no page behind it
    login(page, base, token() + "-wrong")
    assert page.locator("#problem").inner_text() == "トークンが正しくありません。"
    shot(page, "login-refused")
    page.goto(f"{base}/admin/pool")
    assert page.url == f"{base}/admin/login"

    login(page, base, token())
    assert page.url == f"{base}/admin/"
    # every page opens, in Japanese, with no error
    for path in PAGES:
        answer = page.goto(f"{base}{path}")
        assert answer is not None and answer.status == 200, path
        assert page.locator("nav a[aria-current=page]").count() == 1, path
        shot(page, path.removeprefix("/admin").strip("/") or "overview")

    # the overview's numbers are the report's
    page.goto(f"{base}/admin/?from={FROM}&to={TO}")
    done = subprocess.run([*MAILFLOW, "report", "--json", "--from", FROM, "--to", TO, "-c",
                           str(seeded.config)], env=environment, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["applications"] >= len(PEOPLE)
    assert (report["slots_earned"], report["slots_redeemed"], report["hires"]) == (1, 1, 1)
    for key in TILES:
        if key in report:
            assert page.locator(f"[data-kpi={key}]").inner_text() == shown(report[key]), key
    assert page.locator("svg.chart rect").count() > 0  # the chart, drawn without JavaScript
    shot(page, "overview-period")

    # the search finds one candidate by address (a POST: not in the URL) and opens the page
    page.goto(f"{base}/admin/pool")
    page.fill("input[name=term]", PEOPLE[0][1])
    page.click("#search-button")
    assert page.url == f"{base}/admin/pool"
    rows = page.locator("#candidates tbody tr")
    assert rows.count() == 1 and PEOPLE[0][0] in rows.inner_text()
    shot(page, "pool-search")
    page.click(f"a[href='/admin/candidates/{seeded.ids[0]}']")
    assert page.locator("#name").inner_text() == PEOPLE[0][0]
    assert page.locator("#timeline tbody tr").count() >= 2  # applied, invited …
    shot(page, "candidate")

    # a name with <script> is text: shown as written, no element made of it
    page.goto(f"{base}/admin/candidates/{seeded.ids[1]}")
    assert page.locator("#name").inner_text() == PEOPLE[1][0]
    assert page.locator("script").count() == 0
    shot(page, "candidate-script-name")

    # replay the quarantined mail: it becomes a candidate
    page.goto(f"{base}/admin/quarantine")
    row = page.locator(f"tr[data-id='{seeded.quarantined}']")
    assert row.locator(".state").inner_text() == "quarantined"
    page.click(f"#replay-{seeded.quarantined}")
    assert page.url == f"{base}/admin/quarantine"
    assert row.locator(".state").inner_text() == "replayed"
    assert "実行しました" in page.locator(".flash").inner_text()
    daemon = seeded.running.daemon
    assert TalentPool(daemon.store, daemon.clock).by_email(QUARANTINED_EMAIL) is not None
    shot(page, "quarantine-replayed")

    # English on request; the ledger verified, its slot paid for the hire; logout ends the session
    page.goto(f"{base}/admin/ledger?lang=en")
    assert page.locator("h1").inner_text() == "Ledger"
    assert page.locator("#verified").inner_text().startswith("Verified")
    paid = page.locator("td.paid-for a")
    assert paid.count() == 1 and paid.inner_text() == seeded.ids[2]
    assert HIRED_ON in page.locator("td.paid-for", has=page.locator("a")).inner_text()
    shot(page, "ledger-en")
    page.click("#logout")
    assert page.url == f"{base}/admin/login"
    page.goto(f"{base}/admin/")
    assert page.url == f"{base}/admin/login"
    assert os.environ["MAILFLOW_ADMIN_TOKEN"] not in page.content()


def test_no_script_runs_on_pages_showing_hostile_names(
        site: tuple[Seeded, dict[str, str]], page: Any, dovecot: Dovecot,
        imap_account: ImapAccount) -> None:
    """Issue 21: candidates named `<script>…`, `"><img src=x onerror=…>` and `'><svg onload=…>`
    (one of them arrived through the mailbox, with such a Subject, position and attachment
    name) and a quarantine reason with markup: on every page that shows them, no dialog opens,
    no handler runs and no element is made of them."""
    seeded, _environment = site
    ids = add_hostile(seeded, dovecot, imap_account)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.add_init_script("window.__ran = []; window.alert = (x) => window.__ran.push(String(x));")
    login(page, seeded.base, token())
    paths = [*PAGES, *(f"/admin/candidates/{i}" for i in ids)]
    for path in paths:
        answer = page.goto(f"{seeded.base}{path}")
        assert answer is not None and answer.status == 200, path
        page.wait_for_load_state("load")
        assert page.evaluate("window.__ran") == [], path
        assert page.locator("script, img, iframe, svg[onload]").count() == 0, path
    page.goto(f"{seeded.base}/admin/candidates/{ids[0]}")
    assert page.locator("#name").inner_text() == HOSTILE_NAME
    shot(page, "candidate-hostile-name")
    page.goto(f"{seeded.base}/admin/pool")
    page.fill("input[name=term]", "onerror")
    page.click("#search-button")
    assert page.locator("#candidates tbody tr").count() >= 2
    assert page.evaluate("window.__ran") == []
    assert dialogs == []
