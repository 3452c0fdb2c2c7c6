"""An address the receiving server refused for good: marked on the candidate, and HR told."""

from __future__ import annotations

from mailflow.clock import Clock
from mailflow.outgoing.notices import notify_hr
from mailflow.outgoing.outbox import Outbox
from mailflow.outgoing.records import PublicOutboxItem
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import Config
from mailflow.store.base import Store


def mark_undeliverable(store: Store, clock: Clock, config: Config, outbox: Outbox, address: str,
                       record: PublicOutboxItem) -> None:
    reply = next((str(u.get("reply", "")) for u in record.get("undeliverable") or []
                  if u.get("address") == address), "")
    candidate = TalentPool(store, clock).mark_undeliverable(address, reply)
    if candidate is None:
        return
    notify_hr(outbox, config, clock,
              f"送信できない宛先: {candidate.get('name') or candidate['id']}",
              f"候補者 {candidate.get('name') or ''} ({candidate['id']}) 宛のメールが、"
              f"宛先のサーバーに恒久的に拒否されました。\n\n応答: {reply}\n\n"
              f"連絡先を確認してください: mailflow candidate show {candidate['id']}\n",
              candidate["id"])
