"""The chaos harness and the soak (issue 21): mailflow under kill -9, a misbehaving network,
Dovecot restarts and a full disk, and an oracle that compares what went in with what came out.
`make chaos` / `make soak` run the full forms; `pytest` runs short ones."""
