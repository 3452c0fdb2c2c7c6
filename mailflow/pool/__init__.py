"""The talent pool: candidate records (`talent`: found by email, phone or thread, merged when they
are one person, every change an event on the timeline), the candidate's consent per purpose
(`consent`; the candidate's consent page link in `consent_links`), the audit log (`audit`), and
the records themselves (`records`: the typed candidate and timeline event other packages are
handed, and what the pool takes in), the candidate's facts as rule conditions (`facts`), the
tags rules give from them (`tags`: rules/tags.toml; `tagging`: every candidate write re-tagged,
HR's tags), and the candidate's own wish to re-apply (`intent`). May use: `store` (through its
contract), `mail`, `settings`, `clock`, `errors`.
"""
