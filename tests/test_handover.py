"""Issue 18 part 3: a registered candidate's profile handed to Career Relay — only the listed
items, signed, durably queued and retried — each hand-over a record of provision; a withdrawal
on the consent page before the hand-over blocks it. The daemon's real web edge on 127.0.0.1 and
a real HTTP server for the partner's hand-over endpoint."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from harness import DaemonThread, wait_until
from servers import ImapAccount
from test_callbacks import SECRET, event, post, write_config
from test_callbacks import env as env  # the fixture
from test_consent_page import post_form

from mailflow.cli.provisions import provisions
from mailflow.pool import consent
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.relay import handover
from mailflow.relay.callbacks import SIGNATURE_HEADER, check_signature
from mailflow.relay.desk import RejectionFacts, RelayDesk
from mailflow.relay.handover import HANDOVER_ITEMS

NAME, EMAIL, PHONE = "佐藤 花子", "hanako.sato@example.net", "09011112222"


@dataclass
class Partner:
    """Career Relay's hand-over endpoint: records each request, answers `status`."""

    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def partner() -> Iterator[Partner]:
    state = Partner()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.received.append(({k: v for k, v in self.headers.items()}, body))
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/handover"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def site(tmp_path: Path, imap_account: ImapAccount, partner: Partner,
         env: dict[str, str]) -> tuple[Path, str]:
    return write_config(tmp_path, imap_account, extra=f'handover_url = "{partner.url}"\n')


def registered_candidate(running: DaemonThread) -> tuple[str, str, str]:
    """A rejected, invited candidate with a profile; (id, relay_ref, consent page link)."""
    daemon = running.daemon
    with daemon.lane:
        pool = TalentPool(daemon.store, daemon.clock)
        candidate, _ = pool.apply(Applicant(NAME, EMAIL, (PHONE,), "経理", "簿記の経験5年",
                                            "direct"), None)
        candidate.update(skills=["会計", "Excel"], qualifications=["日商簿記2級"])
        pool.save(candidate)
        invite = RelayDesk(daemon.store, daemon.clock, daemon.config.web.public_url).issue(
            candidate, RejectionFacts("経験不足"))
    return candidate["id"], invite.relay_ref, invite.consent_link


def provision_records(running: DaemonThread) -> list[dict[str, Any]]:
    return list(running.daemon.store.scan("provisions"))


def test_registration_grants_career_relay_and_the_profile_reaches_the_partner(
        site: tuple[Path, str], partner: Partner) -> None:
    config, base = site
    with DaemonThread(config) as running:
        candidate_id, ref, _link = registered_candidate(running)
        assert post(base, event("evt-reg-1", ref)).status_code == 200
        wait_until(lambda: provision_records(running), what="the provision record")
        pool = TalentPool(running.daemon.store, running.daemon.clock)
        candidate = pool.get(candidate_id)
        assert candidate is not None
        entry = candidate["consents"]["career_relay"]
        assert (entry["state"], entry["how"], entry["evidence"]) == (
            "granted", "Career Relay registration", "callback evt-reg-1")
        assert consent.state(candidate, "career_relay", []).holds
        timeline = [e["type"] for e in pool.timeline(candidate_id)]
        assert {"relay_registered", "consent", "provided"} <= set(timeline)
    (headers, body), = partner.received
    check_signature(SECRET.encode(), headers[SIGNATURE_HEADER], body, datetime.now(UTC))
    sent = json.loads(body)
    assert sent["ref"] == ref and sent["type"] == "profile"
    assert tuple(sent["profile"]) == HANDOVER_ITEMS
    assert sent["profile"] == {"name": NAME, "email": EMAIL, "desired_role": "経理",
                               "skills": ["会計", "Excel"], "qualifications": ["日商簿記2級"]}
    assert PHONE not in body.decode() and "簿記の経験5年" not in body.decode()  # not listed
    (record,) = provision_records_after(config)
    assert record["id"] == sent["id"] and record["candidate_id"] == candidate_id
    assert record["items"] == list(HANDOVER_ITEMS) and record["recipient"] == "Career Relay"
    assert record["recipient_host"] == partner.url.split("/")[2]
    assert record["delivered"] is True
    assert record["consent"]["evidence"] == "callback evt-reg-1"
    # provisions --json, all and for the candidate by email; another candidate has none
    for args in ([], ["--candidate", EMAIL.upper()], ["--candidate", candidate_id]):
        result = CliRunner().invoke(provisions, ["--json", "-c", str(config), *args])
        assert result.exit_code == 0, result.output
        assert [r["id"] for r in json.loads(result.output)] == [sent["id"]]
    human = CliRunner().invoke(provisions, ["-c", str(config)])
    assert "Career Relay" in human.output and "name, email, desired_role" in human.output
    missing = CliRunner().invoke(provisions, ["--candidate", "nobody@example.net",
                                              "-c", str(config)])
    assert missing.exit_code == 1


def provision_records_after(config: Path) -> list[dict[str, Any]]:
    """The provision records as a reader sees them, the daemon stopped."""
    result = CliRunner().invoke(provisions, ["--json", "-c", str(config)])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.output))


def test_withdrawing_on_the_consent_page_before_the_hand_over_blocks_it(
        site: tuple[Path, str], partner: Partner, monkeypatch: pytest.MonkeyPatch) -> None:
    config, base = site
    monkeypatch.setattr(handover, "FIRST_RETRY_SECONDS", 1.0)
    partner.status = 503  # the partner is down at first: the hand-over waits for a retry
    with DaemonThread(config) as running:
        candidate_id, ref, link = registered_candidate(running)
        assert post(base, event("evt-reg-2", ref)).status_code == 200
        wait_until(lambda: partner.received, what="the first attempt")
        # the candidate opens the consent page and unticks Career Relay
        page = httpx.get(link).text
        assert re.search(r'value="career_relay" checked', page)
        csrf = unescape(re.search(r'name="csrf" value="([^"]+)"', page)[1])  # type: ignore[index]
        shown = re.findall(r'name="shown" value="([^"]+)"', page)
        ticked = [p for p in re.findall(r'name="consent" value="([^"]+)" checked', page)
                  if p != "career_relay"]
        answer = post_form(link, [("csrf", csrf), *[("shown", p) for p in shown],
                                  *[("consent", p) for p in ticked]])
        assert answer.status_code == 200 and "保存しました" in answer.text
        partner.status = 200  # the partner is back: the next attempt must not send anything
        pool = TalentPool(running.daemon.store, running.daemon.clock)
        wait_until(lambda: "handover_blocked" in [e["type"] for e in pool.timeline(
            candidate_id)], what="the hand-over to be blocked")
        assert provision_records(running) == []
        attempts = len(partner.received)
    assert attempts == 1  # only the refused first attempt ever reached the partner
    assert provision_records_after(config) == []


def test_a_queued_hand_over_survives_a_restart(
        site: tuple[Path, str], partner: Partner, monkeypatch: pytest.MonkeyPatch) -> None:
    config, base = site
    monkeypatch.setattr(handover, "FIRST_RETRY_SECONDS", 1.0)
    partner.status = 500
    with DaemonThread(config) as running:
        _candidate_id, ref, _link = registered_candidate(running)
        assert post(base, event("evt-reg-3", ref)).status_code == 200
        wait_until(lambda: partner.received, what="the first attempt")
    assert provision_records_after(config) == []
    partner.status = 200
    with DaemonThread(config) as running:  # the job was in the store: the new daemon sends it
        wait_until(lambda: provision_records(running), what="delivery after the restart")
    assert len(partner.received) >= 2
    ids = {json.loads(body)["id"] for _headers, body in partner.received}
    assert len(ids) == 1  # one hand-over, tried again under its own id
    (record,) = provision_records_after(config)
    assert record["id"] in ids
