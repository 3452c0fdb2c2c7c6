"""Telling people from mail scanners on the Career Relay link (pure).

Security gateways (Microsoft Defender Safe Links, Proofpoint, Mimecast …) fetch every link in
corporate mail within seconds of delivery, and one human click can arrive twice. Each click is
classified from the evidence a redirect allows; the first rule that sees a scanner decides, and
a click no rule suspects is a person's. Scanner clicks are kept and counted apart; only a human
click moves a candidate to `clicked`; no click ever touches the ledger.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# User agents of link scanners, previewers and scripts (a word match, case-insensitive).
SCANNER_AGENTS = re.compile(
    r"bingpreview|microsoft office|ms-office|safelinks|defender|proofpoint|mimecast|barracuda|"
    r"symantec|trend ?micro|forcepoint|fireeye|sophos|zscaler|checkpoint|cisco|ironport|"
    r"python-requests|python-urllib|aiohttp|httpx|curl|wget|go-http-client|java/|okhttp|"
    r"libwww|headless|phantomjs|slackbot|facebookexternalhit|twitterbot|googlebot|"
    r"google-safety|appengine|bot\b|crawler|spider|preview|scanner",
    re.IGNORECASE,
)

# Networks of the large mail-security services (examples; admins add theirs in the config).
SCANNER_NETWORKS = (
    "40.94.0.0/16",     # Microsoft Exchange Online Protection
    "52.100.0.0/14",    # Microsoft Exchange Online Protection
    "104.47.0.0/17",    # Microsoft Exchange Online Protection
    "148.163.128.0/17", # Proofpoint
    "205.139.110.0/24", # Mimecast
    "207.211.30.0/24",  # Mimecast
)

BURST_AFTER_SENDING = timedelta(seconds=10)
REPEAT_WITHIN = timedelta(seconds=1)


@dataclass(frozen=True)
class Click:
    method: str
    user_agent: str
    client: str  # IP address
    at: datetime
    accept_language: str = ""
    has_cookie: bool = False


@dataclass(frozen=True)
class Verdict:
    kind: str  # "human" | "scanner"
    reason: str


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(networks: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


DEFAULT_NETWORKS = parse_networks(SCANNER_NETWORKS)


def _in_networks(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def classify(click: Click, issued_at: datetime | None, earlier: Sequence[datetime],
             networks: Sequence[Network] = DEFAULT_NETWORKS) -> Verdict:
    """`issued_at`: when the link went out; `earlier`: times of earlier clicks on this link."""
    if click.method.upper() == "HEAD":
        return Verdict("scanner", "HEAD request")
    if not click.user_agent.strip():
        return Verdict("scanner", "no user agent")
    if SCANNER_AGENTS.search(click.user_agent):
        return Verdict("scanner", "scanner user agent")
    if _in_networks(click.client, networks):
        return Verdict("scanner", "scanner network")
    if issued_at is not None and timedelta(0) <= click.at - issued_at < BURST_AFTER_SENDING:
        return Verdict("scanner", "within seconds of sending")
    if any(timedelta(0) <= click.at - t < REPEAT_WITHIN for t in earlier):
        return Verdict("scanner", "repeat within a second")
    if not click.accept_language and not click.has_cookie:
        return Verdict("scanner", "no Accept-Language (not a browser)")
    return Verdict("human", "browser")
