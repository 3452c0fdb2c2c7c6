"""Free slots from the referral ledger: earned and redeemed within a period, and the balance
(available, progress to the next) as the last entry up to the period's end records it. The
ledger's own `verify` is what proves the balance; the report shows it and says whether the chain
checks out only where the caller verified it (`mailflow ledger verify`).
"""

from __future__ import annotations

from typing import Any

from mailflow.kpi.period import Period
from mailflow.relay.accounting import Running
from mailflow.store.base import Store


def slot_figures(store: Store, period: Period) -> dict[str, Any]:
    earned = redeemed = 0
    balance = Running()
    for _seq, entry in store.log("ledger"):
        if not entry.get("at"):
            continue
        day = period.day(str(entry["at"]))
        if period.end is not None and day > period.end:
            break
        if entry.get("balance"):
            balance = Running.from_doc(entry["balance"])
        if period.holds(day):
            earned += entry.get("kind") == "slot_earned"
            redeemed += entry.get("kind") == "slot_redeemed"
    return {"slots_earned": earned, "slots_redeemed": redeemed,
            "slots_available": balance.available, "progress_to_next": balance.progress,
            "slots_earned_total": balance.slots_earned,
            "slots_redeemed_total": balance.slots_redeemed}
