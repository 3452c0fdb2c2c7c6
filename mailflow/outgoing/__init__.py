"""Outgoing mail: `outbox` (every mail recorded durably before SMTP, sent once, unknown outcomes
left to the admin), with its parts `delivery` (the SMTP rounds and how an attempt ended),
`sent_folder` (copies filed in Sent, unknown outcomes looked up there) and `records` (the states,
every change under the lane); `notices` (short mails to HR). May use: `mailbox`, `mail`,
`settings`, `store`, `clock`, `errors`.
"""
