"""Privacy under Japan's APPI: erasure (`erase`, 法35: a person's data removed everywhere mailflow
keeps it, the aggregates kept without identity; `sweep` for the kinds that keep mails as bytes;
`person_mail` for their messages in the mailbox), disclosure (`disclosure`, 法33: everything kept
about one person, written owner-only), retention (`purge`, 法22: what is past its period, removed
by the daemon daily through `desk`), and data safe at rest (`at_rest`: owner-only files, a data
directory others cannot read). `person` is how all of them recognise one person (pure).
May use: `intake`, `relay`, `outgoing`, `pool`, `mailbox`, `store` (through its contract),
`mail`, `settings`, `clock`, `errors`.
"""
