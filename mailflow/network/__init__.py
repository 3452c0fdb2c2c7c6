"""The network pool (the seeds' case D, issue 23 part 5): companies of one network that opted in
(`[network] publish = true`) publish their anonymised, consented candidates and see the
others', and follow an entry from 推薦 to 紹介 to 採用 across companies, without any company
seeing another's identities. `entries` decides what is published and `stages` who may move an
entry (both pure); `scope` opens the network's own store; `desk` carries the commands out."""
