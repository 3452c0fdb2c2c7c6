"""Rejections: recognising the ones HR writes and giving each its Career Relay invitation.
`recognise/` (pure: is this mail a rejection, and why), `rewriting` (the rewrite of one mail),
`drafts` (rewrite mode: drafts rewritten in place), `send_mode` (the outbox folder sent by
mailflow), `sent` (what HR sent: stages, and rejections sent without mailflow), `reviews` (HR asked
about uncertain mails; HR's corrections kept), `invitation_mail` (the separate invitation).
May use: `relay`, `intake.stages`, `outgoing`, `pool`, `mailbox`, `mail`, `settings`, `store`.
"""
