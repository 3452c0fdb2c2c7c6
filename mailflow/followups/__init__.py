"""Follow-ups: `rules` (rules/followups.toml: what is due when, validated at start), `scheduler`
(due rows claimed by the tick, business hours and limits, sent through the outbox),
`unsubscribe` (the one-click opt-out). May use: `relay`, `outgoing`, `pool`, `mail`, `settings`,
`store`, `clock`, `errors`.
"""
