"""The talent pool: candidate records (`talent`: found by email, phone or thread, merged when they
are one person, every change an event on the timeline) and the candidate's consent per purpose
(`consent`). May use: `store` (through its contract), `mail`, `settings`, `clock`, `errors`.
"""
