"""The mailbox edge: everything IMAP. `imap` (connect, folders, fetch, append, remove by UID, IDLE),
`watcher` (one folder: catch up, wait, reconnect), `login` (one verdict on the credentials
for every folder: a refused login retried slowly), `pipeline` (what a message is and the ordered
stages it goes through), `handoff` (exactly-once hand-off: checkpoints, retries, quarantine),
`backfill` (a folder's history, resumable). May use: `settings`, `store`, `mail`, `clock`, `errors`.
"""
