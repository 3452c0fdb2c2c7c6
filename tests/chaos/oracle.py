"""What came out, compared with what went in: every application recorded once, every rejection
rewritten (Drafts) or sent (the sink) once, every acknowledged callback in the ledger once,
every acknowledged click recorded, the ledger verifies, and nothing stuck without an alert (an
outbox mail `unknown` or `failed` has its error line in the log)."""

from __future__ import annotations

import collections
import email
import email.policy
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import MAILFLOW
from servers import Dovecot, ImapAccount, SmtpSink

from mailflow.settings.config import load_config
from mailflow.store import configured_store
from mailflow.store.base import Store

from .load import Inputs, draft_address, outgoing_address
from .site import OUTBOX_FOLDER


@dataclass
class Verdict:
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    unalerted: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.doubled or self.unalerted)

    def settled(self) -> bool:
        """Nothing missing yet (the last calm round waits for this)."""
        return not self.lost and not self.unalerted

    def summary(self) -> str:
        figures = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        return (f"{figures}; lost {len(self.lost)} {self.lost[:5]}, doubled {len(self.doubled)} "
                f"{self.doubled[:5]}, stuck without an alert {len(self.unalerted)} "
                f"{self.unalerted[:5]}")


def folder_messages(dovecot: Dovecot, account: ImapAccount, name: str) -> list[bytes]:
    with dovecot.client(account.username) as client:
        if not client.folder_exists(name):
            return []
        client.select_folder(name, readonly=True)
        uids = client.search("NOT DELETED")
        data = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
    return [item[b"BODY[]"] for item in data.values() if item.get(b"BODY[]") is not None]


def message_id(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"] or "")


class Oracle:
    def __init__(self, config: Path, dovecot: Dovecot, account: ImapAccount, sink: SmtpSink,
                 log_text: str) -> None:
        self.config = config
        self.dovecot = dovecot
        self.account = account
        self.sink = sink
        self.log_text = log_text

    def judge(self, inputs: Inputs) -> Verdict:
        verdict = Verdict()
        config = load_config(self.config)
        store = configured_store(config, read_only=True)
        try:
            self._applications(store, inputs, verdict)
            self._drafts(store, inputs, verdict)
            self._outgoing(store, inputs, verdict)
            self._callbacks(store, inputs, verdict)
            self._clicks(store, inputs, verdict)
            self._quarantine(store, verdict)
        finally:
            store.close()
        return verdict

    def verify_ledger(self, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*MAILFLOW, "ledger", "verify", "-c", str(self.config)], env=env,
                              capture_output=True, text=True, timeout=120)

    def _applications(self, store: Store, inputs: Inputs, verdict: Verdict) -> None:
        for n in inputs.applications:
            found = store.find("candidates", "emails", f"applicant{n}@example.net")
            applications = sum(len(c["applications"]) for c in found)
            if not found:
                verdict.lost.append(f"application {n}")
            elif len(found) > 1 or applications > 1:
                verdict.doubled.append(f"application {n}: {len(found)} candidates, "
                                       f"{applications} applications")
        verdict.counts["applications in"] = len(inputs.applications)
        # "handled once" is per identity, a message in its role (DESIGN.md, `Incoming.identity`):
        # the same mail in one mailbox's Outbox and another's Sent is two things to handle
        handled = collections.Counter(f"{e['data'].get('role')}:{e['data']['key']}"
                                      for _seq, e in store.log("events")
                                      if e["type"] == "message_handled")
        verdict.counts["mails handled"] = len(handled)
        verdict.doubled += [f"mail {identity} handled {times} times"
                            for identity, times in handled.items() if times > 1]

    def _drafts(self, store: Store, inputs: Inputs, verdict: Verdict) -> None:
        copies: collections.Counter[str] = collections.Counter()
        rewritten: collections.Counter[str] = collections.Counter()
        for raw in folder_messages(self.dovecot, self.account, "Drafts"):
            mid = message_id(raw)
            copies[mid] += 1
            rewritten[mid] += b"X-Mailflow-Relay:" in raw
        for n in inputs.drafts:
            mid = f"<draft-{n}@example.co.jp>"
            links = self._links(store, f"c_d{n:04d}")
            if copies[mid] > 1 or links > 1:
                verdict.doubled.append(f"draft {n}: {copies[mid]} copies, {links} links")
            elif not rewritten[mid]:
                verdict.lost.append(f"draft {n}: {copies[mid]} copies, none rewritten")
            else:
                verdict.counts["drafts rewritten once"] += 1
        verdict.counts["drafts in"] = len(inputs.drafts)

    def _links(self, store: Store, candidate_id: str) -> int:
        return sum(1 for key in store.find_keys("tokens", "candidate_id", candidate_id)
                   if (store.get("tokens", key) or {}).get("relay_ref"))

    def _outgoing(self, store: Store, inputs: Inputs, verdict: Verdict) -> None:
        at_sink = collections.Counter(address for m in self.sink.messages
                                      for address in m.rcpt_tos)
        records: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for doc in store.scan("outbox"):
            for address in doc.get("to", []):
                records[address].append(doc)
        left = {message_id(raw) for raw in folder_messages(
            self.dovecot, self.account, OUTBOX_FOLDER.replace("/", self.account.delimiter))}
        for n in inputs.outgoing:
            address = outgoing_address(n)
            states = [doc["state"] for doc in records[address]]
            name = f"outgoing {n} ({at_sink[address]} at the sink, states {states})"
            if at_sink[address] > 1 or len(states) > 1:
                verdict.doubled.append(name)
            elif at_sink[address] == 1 and states == ["sent"]:
                verdict.counts["rejections sent once"] += 1
            elif states and states[0] in ("unknown", "failed"):
                if self._alerted(records[address][0]["id"]):
                    verdict.counts[f"rejections {states[0]}, alerted"] += 1
                    verdict.counts[f"rejections {states[0]}, alerted, at the sink"] += (
                        at_sink[address])
                else:
                    verdict.unalerted.append(name)
            elif f"<out-{n}@example.co.jp>" in left or states:
                verdict.unalerted.append(name + " still waiting")
            else:
                verdict.lost.append(name)
        verdict.counts["outbox rejections in"] = len(inputs.outgoing)
        for n in inputs.drafts:  # a rewritten draft is HR's to send: nothing at the sink
            if at_sink[draft_address(n)]:
                verdict.doubled.append(f"draft {n} was sent as well")

    def _alerted(self, record_id: str) -> bool:
        return any(f"outbox {record_id}: " in line and ("unknown" in line or "failed" in line)
                   for line in self.log_text.splitlines())

    def _callbacks(self, store: Store, inputs: Inputs, verdict: Verdict) -> None:
        for event_id in sorted(inputs.callbacks_sent):
            entries = sum(entry["kind"] == "registration"
                          for entry in store.find("ledger", "event_id", event_id))
            if entries > 1:
                verdict.doubled.append(f"callback {event_id}: {entries} ledger entries")
            elif event_id in inputs.callbacks_acked and (
                    entries == 0 or store.get("callbacks", event_id) is None):
                verdict.lost.append(f"acknowledged callback {event_id}")
        verdict.counts["callbacks acknowledged"] = len(inputs.callbacks_acked)
        verdict.counts["ledger entries"] = store.count("ledger")

    def _clicks(self, store: Store, inputs: Inputs, verdict: Verdict) -> None:
        for token, acked in inputs.clicks_acked.items():
            recorded = len(store.find("clicks", "token", token))
            if recorded < acked:
                verdict.lost.append(f"clicks on {token[:6]}…: {acked} answered, {recorded} kept")
            elif recorded > inputs.clicks_tried[token]:
                verdict.doubled.append(f"clicks on {token[:6]}…: {recorded} kept, "
                                       f"{inputs.clicks_tried[token]} made")
        verdict.counts["clicks answered"] = sum(inputs.clicks_acked.values())
        verdict.counts["clicks kept"] = store.count("clicks")

    def _quarantine(self, store: Store, verdict: Verdict) -> None:
        items = list(store.scan("quarantine"))
        verdict.counts["quarantined"] = len(items)
        verdict.unalerted += [f"quarantined {doc.get('reason', '')[:60]}" for doc in items
                              if doc.get("state") != "quarantined"
                              and doc.get("state") != "resolved"]
