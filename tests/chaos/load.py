"""What goes in: applications APPENDed to INBOX, rejection drafts to Drafts (rewrite mode),
rejections to the outbox folder (send mode), link clicks and signed partner callbacks, fed from
threads while the daemon is killed and the network misbehaves. Every input is remembered with
what the daemon answered, for the oracle."""

from __future__ import annotations

import email.policy
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import httpx
from servers import Dovecot, ImapAccount

from mailflow.clock import SystemClock, iso
from mailflow.pool.talent import TalentPool, new_candidate
from mailflow.relay.callbacks import SIGNATURE_HEADER, sign
from mailflow.settings.config import load_config
from mailflow.store import configured_store, open_store

from .site import OUTBOX_FOLDER, MovingClock

CALLBACKS = "/callbacks/career-relay"
CANDIDATE_NAME = "山田 太郎"


def application(n: int, to: str) -> bytes:
    return (f"From: =?UTF-8?B?5bGx55Sw?= {n} <applicant{n}@example.net>\r\nTo: {to}\r\n"
            f"Subject: =?UTF-8?B?5b+c5Yuf?= {n}\r\nMessage-ID: <app{n}@example.net>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
            f"採用ご担当者様\r\n応募いたします。電話: 090-0000-{n % 10000:04d}\r\n").encode()


def rejection(account: ImapAccount, to: str, message_id: str) -> bytes:
    message = EmailMessage()
    message["From"] = account.address
    message["To"] = to
    message["Subject"] = "選考結果のご連絡"
    message["Message-ID"] = message_id
    message.set_content(f"{CANDIDATE_NAME} 様\n\nこの度はご応募いただきありがとうございました。\n"
                        "慎重に選考いたしました結果、誠に残念ながら今回はご期待に沿えない結果と"
                        "なりました。\n#mailflow reason=スキル不足 rescout=yes\n\n"
                        "--\n株式会社サンプル 人事部\n", charset="iso-2022-jp", cte="7bit")
    return message.as_bytes(policy=email.policy.SMTP)


def draft_address(n: int) -> str:
    return f"rejectee{n}@example.net"


def outgoing_address(n: int) -> str:
    return f"outgoing{n}@example.net"


def callback_ref(n: int) -> str:
    return f"{n:024x}"


@dataclass
class Inputs:
    """Everything fed in, and what the daemon acknowledged."""

    applications: list[int] = field(default_factory=list)
    drafts: list[int] = field(default_factory=list)
    outgoing: list[int] = field(default_factory=list)
    callbacks_acked: set[str] = field(default_factory=set)
    callbacks_sent: set[str] = field(default_factory=set)
    clicks_acked: Counter[str] = field(default_factory=Counter)
    clicks_tried: Counter[str] = field(default_factory=Counter)
    callback_answers: Counter[int] = field(default_factory=Counter)  # by HTTP status
    web_failures: int = 0


def seed_pool(config_path: Path, drafts: int, outgoing: int, callbacks: int,
              first: int = 0) -> None:
    """The candidates the rejections and the callbacks are about, before the daemon starts:
    rejectees (drafts), outgoing rejectees (send mode), and invited candidates with a
    referral code each (the partner's callbacks); numbered from `first` (two sites on one
    store number theirs apart)."""
    config = load_config(config_path)
    store = configured_store(config)
    pool = TalentPool(store, SystemClock())
    now = iso(SystemClock().now())
    try:
        with store.transaction():
            for n in range(first, first + drafts):
                pool.save(_named(new_candidate(f"c_d{n:04d}", now), draft_address(n)))
            for n in range(first, first + outgoing):
                pool.save(_named(new_candidate(f"c_o{n:04d}", now), outgoing_address(n)))
            for n in range(first, first + callbacks):
                candidate = new_candidate(f"c_r{n:04d}", now)
                candidate.update(relay_ref=callback_ref(n), relay_status="invited",
                                 status="rejected")
                pool.save(candidate)
    finally:
        store.close()


def _named(candidate: dict, address: str) -> dict:  # type: ignore[type-arg]
    candidate.update(name=CANDIDATE_NAME, name_normalized=CANDIDATE_NAME.replace(" ", ""),
                     emails=[address])
    return candidate


class Workload:
    """Feeds the inputs at a steady pace from two threads (mail; web) until `stop()`, numbered
    from `first` (as `seed_pool`)."""

    def __init__(self, dovecot: Dovecot, account: ImapAccount, base_url: str,
                 clock: MovingClock, data_dir: Path, seed: int, totals: dict[str, int],
                 pace: float = 0.05, first: int = 0) -> None:
        self.dovecot = dovecot
        self.account = account
        self.base_url = base_url
        self.clock = clock
        self.data_dir = data_dir
        self.totals = totals  # how many of each: applications, drafts, outgoing, callbacks
        self.pace = pace
        self.first = first
        self.inputs = Inputs()
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._mail, daemon=True),
                         threading.Thread(target=self._web, daemon=True)]
        self.mail_errors = 0
        self._tokens: list[str] = []
        self._tokens_at = 0.0

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    @property
    def mail_done(self) -> bool:
        i, t = self.inputs, self.totals
        return (len(i.applications) >= t["applications"] and len(i.drafts) >= t["drafts"]
                and len(i.outgoing) >= t["outgoing"])

    # -- mail, straight into Dovecot (the daemon's own path goes through the proxy)

    def _mail(self) -> None:
        i, t = self.inputs, self.totals
        user, outbox = self.account.username, OUTBOX_FOLDER.replace("/", self.account.delimiter)
        while not self._stop.is_set() and not self.mail_done:
            kind = self._random.choice([k for k, have in (
                ("applications", i.applications), ("drafts", i.drafts),
                ("outgoing", i.outgoing)) if len(have) < t[k]])
            try:
                if kind == "applications":
                    n = self.first + len(i.applications)
                    self.dovecot.append(user, "INBOX", application(n, self.account.address))
                    i.applications.append(n)
                elif kind == "drafts":
                    n = self.first + len(i.drafts)
                    self.dovecot.append(user, "Drafts", rejection(
                        self.account, draft_address(n), f"<draft-{n}@example.co.jp>"),
                        flags=[b"\\Draft"])
                    i.drafts.append(n)
                else:
                    n = self.first + len(i.outgoing)
                    self.dovecot.append(user, outbox, rejection(
                        self.account, outgoing_address(n), f"<out-{n}@example.co.jp>"))
                    i.outgoing.append(n)
            except Exception:  # Dovecot restarting: try again shortly
                self.mail_errors += 1
                time.sleep(0.3)
            self._stop.wait(self.pace)

    # -- the web edge: callbacks (retried until acknowledged) and clicks

    def _web(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=5) as client:
            while not self._stop.is_set():
                self.callback(client)
                if self._random.random() < 0.5:
                    self.click(client)
                self._stop.wait(self.pace)

    def callback(self, client: httpx.Client) -> None:
        i = self.inputs
        first = self.first
        waiting = [n for n in range(first, first + self.totals["callbacks"]) if f"evt-{n}" not in
                   i.callbacks_acked]
        if not waiting:
            return
        n = self._random.choice(waiting[:20])  # new ones, and retries of unanswered ones
        event_id = f"evt-{n}"
        body = json.dumps({"id": event_id, "type": "registered", "ref": callback_ref(n),
                           "occurred_at": "2025-04-01T09:00:00+09:00"}).encode()
        headers = {SIGNATURE_HEADER: sign(SECRET.encode(), body,
                                          int(self.clock.now().timestamp())),
                   "Content-Type": "application/json"}
        i.callbacks_sent.add(event_id)
        try:
            answer = client.post(CALLBACKS, content=body, headers=headers)
        except httpx.HTTPError:
            i.web_failures += 1
            return
        i.callback_answers[answer.status_code] += 1
        if answer.status_code == 200:
            i.callbacks_acked.add(event_id)

    def click(self, client: httpx.Client) -> None:
        tokens = self.tokens()
        if not tokens:
            return
        token = self._random.choice(tokens)
        self.inputs.clicks_tried[token] += 1
        try:
            answer = client.get(f"/r/{token}", follow_redirects=False)
        except httpx.HTTPError:
            self.inputs.web_failures += 1
            return
        if answer.status_code == 302:
            self.inputs.clicks_acked[token] += 1

    def tokens(self) -> list[str]:
        """The Career Relay links issued so far (read from the store, as a reader may; looked
        up again every two seconds)."""
        if time.monotonic() - self._tokens_at < 2:
            return self._tokens
        self._tokens_at = time.monotonic()
        ids = [f"c_d{n:04d}" for n in self.inputs.drafts]
        ids += [f"c_o{n:04d}" for n in self.inputs.outgoing]
        try:
            store = open_store(self.data_dir, read_only=True)
        except Exception:
            return self._tokens
        try:
            found = [key for cid in ids for key in store.find_keys("tokens", "candidate_id", cid)
                     if (store.get("tokens", key) or {}).get("relay_ref")]
        except Exception:
            return self._tokens
        finally:
            store.close()
        self._tokens = found
        return found


SECRET = "relay-secret-for-tests"  # conftest's MAILFLOW_RELAY_SECRET
