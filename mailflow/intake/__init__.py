"""Intake: what an INBOX mail is and what it adds to the pool. `classify` with `sources`
(rules/sources.toml: which mail is an application from which channel), `stages` (rules/stages.toml:
what moves a candidate forward), `authorship` (did the company write it?), `documents` (résumés
kept), `importer` (the CSV list kept before mailflow), `applications` (the INBOX pipeline stage).
May use: `pool`, `outgoing`, `mailbox.pipeline`, `mail`, `settings`, `store`, `clock`, `errors`.
"""
