"""Following a Career Relay link: record the click, classify it, and say where to go.

The destination comes from configuration only (`[career_relay] register_url` with `company` and
`ref` appended to its query), so the link can never become an open redirect. The referral code
is the candidate's opaque `relay_ref`: no name, address or phone is in the token, the Location or
the code. A human click moves the candidate from `invited` to `clicked`; scanner clicks are
recorded apart; no click touches the ledger.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mailflow.clock import Clock, iso, parse_iso
from mailflow.pool.talent import TalentPool
from mailflow.relay.clicks import SCANNER_NETWORKS, Click, Verdict, classify, parse_networks
from mailflow.store.base import Doc, Store

log = logging.getLogger("mailflow.links")

RECENT_LINKS = 10_000  # links whose last click times are kept in memory
ID_BLOCK = 512  # click ids drawn from the OS's random source at once
TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")  # relay.new_token: 24 random bytes, URL-safe


def destination(register_url: str, company_id: str, ref: str) -> str:
    """`register_url` with company and ref added to its query (other parameters kept)."""
    parts = urlsplit(register_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in ("company", "ref")]
    query += [("company", company_id), ("ref", ref)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


@dataclass(frozen=True)
class Followed:
    location: str
    verdict: Verdict
    record: Doc  # the click, to be stored (in a batch: `record_batch`)


class LinkDesk:
    """Judges a click at once (reads only), and records clicks in batches: one transaction and
    one fsync for all clicks that arrived together (the web edge's group commit)."""

    def __init__(self, store: Store, clock: Clock, lane: threading.RLock, register_url: str,
                 company_id: str, networks: Sequence[str] = SCANNER_NETWORKS,
                 reader: Store | None = None) -> None:
        """`reader`: a read-only view of the same store (its own connection) for judging, so
        a click is judged while another thread's transaction (the tick's) holds the store;
        without it, `store`."""
        self.store = store
        self.reader = reader or store
        self.clock = clock
        self.lane = lane
        self.register_url = register_url
        self.company_id = company_id
        self.networks = parse_networks(networks)
        self.pool = TalentPool(store, clock)
        self._recent: OrderedDict[str, list[datetime]] = OrderedDict()  # token -> click times
        self._judging = threading.Lock()  # the recent clicks, and the reader's connection
        self._ids: deque[str] = deque()

    def judge(self, token: str, click: Click) -> Followed | None:
        """None for a token that is malformed or unknown (the caller answers 404)."""
        if not TOKEN.match(token):
            return None
        with self._judging:  # not the lane: judging only reads, what is committed
            issued = self.reader.get("tokens", token)
            if issued is None or not issued.get("relay_ref"):
                return None
            earlier = self._recent.pop(token, None)
            if earlier is None:  # clicks not yet committed are among the recent ones
                earlier = [parse_iso(c["at"]) for c in self.reader.find("clicks", "token", token)]
            verdict = classify(click, parse_iso(issued["issued_at"]), earlier, self.networks)
            self._recent[token] = [*earlier[-4:], click.at]
            while len(self._recent) > RECENT_LINKS:
                self._recent.popitem(last=False)
        record = {"id": self._new_id(), "token": token,
                  "candidate_id": issued["candidate_id"], "at": iso(click.at),
                  "class": verdict.kind, "reason": verdict.reason, "method": click.method}
        return Followed(destination(self.register_url, self.company_id, issued["relay_ref"]),
                        verdict, record)

    def record_batch(self, records: list[Doc]) -> list[bool]:
        """Store clicks in one transaction; a human click moves its candidate to `clicked`."""
        with self.lane, self.store.transaction():
            for record in records:
                self.store.put("clicks", record["id"], record)
                if record["class"] == "human":
                    self._clicked(record["candidate_id"])
        for record in records:
            log.info("link %s…: %s click (%s)", record["token"][:6], record["class"],
                     record["reason"])
        return [True] * len(records)

    def _new_id(self) -> str:
        """16 random hex digits, as `secrets.token_hex(8)`, taken from a block drawn at once."""
        try:
            return self._ids.popleft()
        except IndexError:
            block = secrets.token_hex(8 * ID_BLOCK)
            self._ids.extend(block[n:n + 16] for n in range(16, len(block), 16))
            return block[:16]

    def follow(self, token: str, click: Click) -> Followed | None:
        """Judge and record one click at once (commands and tests; the web edge batches)."""
        followed = self.judge(token, click)
        if followed is not None:
            self.record_batch([followed.record])
        return followed

    def _clicked(self, candidate_id: str) -> None:
        candidate = self.pool.get(candidate_id)
        if candidate is None:
            return
        first = candidate.get("relay_status") == "invited"
        if first:
            candidate["relay_status"] = "clicked"
            self.pool.save(candidate)
        self.pool.event(candidate_id, "clicked", first=first)

    def counts(self) -> dict[str, int]:
        with self.lane:
            return {kind: len(self.store.find("clicks", "class", kind))
                    for kind in ("human", "scanner")}
