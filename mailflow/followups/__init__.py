"""Follow-ups: the rule engine — `vocabulary` (the words a rule may use), `rules`
(rules/followups.toml: what is due when, validated at start), `conditions`, `templates` (where
they are found, their problems), `checks` (start-up problems), `rows` (a row planned from an
event, and how it leaves the schedule) — then `scheduler` (due rows claimed by the tick, sent
through the outbox), `window` (business hours and limits), `message` (the mail), `replies` (a
reply stops the sequence), `preview` (`rules test`) and `unsubscribe` (the one-click opt-out).
May use: `relay`, `outgoing`, `pool`, `mail`, `settings`, `store`, `clock`, `errors`.
"""
