"""Issue 23: several companies' links and callbacks behind one public address, by path. Two
companies' daemons share one PostgreSQL schema; each `[web] public_url` ends in the company's
path. A link or a callback reaches only its own company: another's token is unknown (404), another's
referral code is unknown (422), and each ledger holds only its own credit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness import DaemonThread
from harness import write_config as harness_config
from postgres_server import Postgres
from servers import ImapAccount, free_port
from test_callbacks import CALLBACKS, env, event, signed  # noqa: F401  (fixture)
from test_links import BROWSER, invited

DSN_ENV = "MAILFLOW_STORE_DSN"


def company_site(root: Path, account: ImapAccount, company: str) -> tuple[Path, str]:
    directory = root / company
    directory.mkdir()
    port = free_port()
    config = harness_config(directory, account, extra=(
        f'[web]\nlisten = "127.0.0.1:{port}"\n'
        f'public_url = "http://127.0.0.1:{port}/{company}"\n'))
    text = config.read_text(encoding="utf-8")
    text = text.replace('[store]\npath = "data"', '[store]\npath = "data"\n'
                        f'engine = "postgresql"\ndsn_env = "{DSN_ENV}"')
    config.write_text(text.replace("[company]\n", f'[company]\nid = "{company}"\n', 1),
                      encoding="utf-8")
    return config, f"http://127.0.0.1:{port}"


@pytest.fixture
def two(postgres: Postgres, tmp_path: Path, imap_account: ImapAccount,
        env: dict[str, str], monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        ) -> Iterator[dict[str, tuple[DaemonThread, str]]]:
    monkeypatch.setenv(DSN_ENV, postgres.schema())
    sites = {c: company_site(tmp_path, imap_account, c) for c in ("acme", "beta")}
    with DaemonThread(sites["acme"][0]) as acme, DaemonThread(sites["beta"][0]) as beta:
        yield {"acme": (acme, sites["acme"][1]), "beta": (beta, sites["beta"][1])}
    assert os.environ[DSN_ENV]


def test_each_company_answers_only_for_its_own_links_and_callbacks(
        two: dict[str, tuple[DaemonThread, str]]) -> None:
    (acme, acme_base), (beta, beta_base) = two["acme"], two["beta"]
    acme_token, acme_ref, _ = invited(acme)
    beta_token, beta_ref, _ = invited(beta)
    # under its own path (a proxy that keeps it) and without (one that strips it)
    assert httpx.get(f"{acme_base}/acme/r/{acme_token}", headers=BROWSER).status_code == 302
    assert httpx.get(f"{acme_base}/r/{acme_token}", headers=BROWSER).status_code == 302
    # another company's token, whatever the path, is not known here
    for path in (f"/acme/r/{beta_token}", f"/r/{beta_token}", f"/beta/r/{beta_token}"):
        answer = httpx.get(acme_base + path, headers=BROWSER)
        assert answer.status_code == 404, path
        assert "career-relay" not in answer.headers.get("location", "")
    assert httpx.get(f"{beta_base}/beta/r/{beta_token}", headers=BROWSER).status_code == 302
    # a callback for beta's candidate sent to acme's edge credits nobody at acme
    body = event("evt-beta-1", beta_ref)
    assert httpx.post(f"{acme_base}/acme{CALLBACKS}", content=body,
                      headers=signed(body)).status_code == 422
    assert httpx.post(f"{beta_base}/beta{CALLBACKS}", content=body,
                      headers=signed(body)).status_code == 200
    body = event("evt-acme-1", acme_ref)
    assert httpx.post(f"{acme_base}/acme{CALLBACKS}", content=body,
                      headers=signed(body)).status_code == 200
    ledgers = {name: [doc for _seq, doc in site.daemon.store.log("ledger")]
               for name, site in (("acme", acme), ("beta", beta))}
    assert [e.get("event_id") for e in ledgers["acme"]] == ["evt-acme-1"]
    assert [e.get("event_id") for e in ledgers["beta"]] == ["evt-beta-1"]
    assert acme.daemon.ledger.verify() is None and beta.daemon.ledger.verify() is None


def test_the_admin_pages_carry_the_company_path(
        two: dict[str, tuple[DaemonThread, str]]) -> None:
    _acme, base = two["acme"]
    page = httpx.get(f"{base}/acme/admin/")
    assert page.status_code == 303 and page.headers["location"] == "/acme/admin/login"
    login = httpx.get(f"{base}/acme/admin/login")
    assert login.status_code == 200
    assert 'href="/acme/admin/admin.css"' in login.text
