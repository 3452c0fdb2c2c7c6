"""Career Relay: the per-candidate link and what comes back. `desk` (issuing the tracked link and
referral code), `links` and `clicks` (a click, people told apart from scanners), `callbacks` (the
partner's signed callbacks), `ledger` (the referral ledger: append-only, hash-chained, sealed).
May use: `pool`, `settings`, `store`, `clock`, `errors`.
"""
