"""The composition: `service` (the daemon: watchers, pipeline, outbox, follow-ups, web edge,
signals, the watchdog), `control` (the local control channel), `checks` (what can be wrong
before start). May use every domain package and edge; nothing below imports it.
"""
