"""Outgoing mail: `outbox` (every mail recorded durably before SMTP, sent once, unknown outcomes
left to the admin), `notices` (short mails to HR). May use: `mailbox`, `mail`, `settings`,
`store`, `clock`, `errors`.
"""
