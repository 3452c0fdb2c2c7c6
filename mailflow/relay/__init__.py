"""Career Relay: the per-candidate link and what comes back. `desk` (issuing the tracked link and
referral code), `links` and `clicks` (a click, people told apart from scanners), `callbacks` (the
partner's signed callbacks), `ledger` (the referral ledger: append-only, hash-chained, sealed),
`handover` (a registered candidate's profile handed to the partner while consent holds, each one
a record of provision), `signing` (the signature both directions carry).
May use: `pool`, `settings`, `store`, `clock`, `errors`.
"""
