"""The return on investment, measured (pure): KPIs over the talent pool's timeline, the clicks and
the referral ledger, for any date range in the configured time zone.

Reads the store through its interface only (`mailflow.store.base.Store`) and imports no I/O
library; `mailflow report` and the admin pages show the same figures, from `report.compute`.
May use: pool (records), relay (the ledger's accounting), store (interface), settings, clock.
"""
