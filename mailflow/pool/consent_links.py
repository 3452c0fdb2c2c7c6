"""The candidate's consent page link: `{public_url}/c/{token}`, one per candidate.

The token is `secrets.token_urlsafe(24)`: random, no personal data. It is stored in the "tokens"
kind under `consent:{token}` (the prefix keeps it apart from Career Relay tokens, which never
hold a colon, and from `unsub:` tokens) with the candidate's id, created the first time a mail
needs the link and reused in every later mail, so the candidate always finds the same page.
"""

from __future__ import annotations

import re
import secrets

from mailflow.clock import Clock, iso
from mailflow.store.base import Store

PREFIX = "consent:"
KIND = "consent"
TOKEN_BYTES = 24
PREVIEW = "preview"  # the stand-in of a rewrite preview: resolves to nobody
COUNTER = "consent-tokens"  # kind "settings": how many were issued (the tokens kind has no
#                             index by kind; /metrics counts Career Relay links without them)
_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{20,64}$")


def consent_token(store: Store, clock: Clock, candidate_id: str) -> str:
    """The candidate's consent token: the one issued before, else a new one (written in the
    caller's transaction)."""
    for doc in store.find("tokens", "candidate_id", candidate_id):
        if doc.get("kind") == KIND and doc.get("token"):
            return str(doc["token"])
    token = secrets.token_urlsafe(TOKEN_BYTES)
    store.put("tokens", PREFIX + token, {"kind": KIND, "token": token,
                                         "candidate_id": candidate_id,
                                         "issued_at": iso(clock.now())})
    store.put("settings", COUNTER, {"count": issued(store) + 1})
    return token


def issued(store: Store) -> int:
    """How many consent tokens there are (one per candidate who was sent the link)."""
    return int((store.get("settings", COUNTER) or {}).get("count", 0))


def consent_link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/c/{token}"


def candidate_of(store: Store, token: str) -> str | None:
    """The id of the candidate whose consent token this is, or None (unknown or malformed)."""
    if not _TOKEN.match(token):
        return None
    doc = store.get("tokens", PREFIX + token)
    if doc is None or doc.get("kind") != KIND:
        return None
    return str(doc["candidate_id"])
