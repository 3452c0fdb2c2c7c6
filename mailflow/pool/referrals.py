"""Referral links and codes: a candidate who recommends the company to a friend.

Each referrer has one link token and one referral code, both random (no personal data), kept in
the "tokens" kind: `referral:{token}` (what `GET /f/{token}` resolves) and `refcode:{CODE}`
(what an application quoting the code resolves to its referrer), each with the candidate's id,
so that erasure removes them with the rest of the person's tokens. The code is 8 characters
from an alphabet without look-alikes (no 0/O, 1/I/L), easy to type into an application form.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mailflow.clock import Clock, iso
from mailflow.store.base import Store

TOKEN_PREFIX = "referral:"
CODE_PREFIX = "refcode:"
KIND = "referral"
COUNTER = "referral-tokens"  # kind "settings": documents written here (/metrics subtracts them)
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
CODE = re.compile(rf"^[{ALPHABET}]{{{CODE_LENGTH}}}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{20,64}$")


def referral_token(store: Store, clock: Clock, candidate_id: str) -> str:
    """The candidate's referral link token: the one issued before, else a new one with a new
    code (written in the caller's transaction)."""
    for doc in store.find("tokens", "candidate_id", candidate_id):
        if doc.get("kind") == KIND and doc.get("token"):
            return str(doc["token"])
    code = new_code()
    while store.get("tokens", CODE_PREFIX + code) is not None:
        code = new_code()
    token = secrets.token_urlsafe(24)
    at = iso(clock.now())
    store.put("tokens", TOKEN_PREFIX + token, {"kind": KIND, "token": token, "code": code,
                                               "candidate_id": candidate_id, "issued_at": at})
    store.put("tokens", CODE_PREFIX + code, {"kind": "referral_code", "code": code,
                                             "candidate_id": candidate_id, "issued_at": at})
    store.put("settings", COUNTER, {"count": issued(store) + 2})
    return token


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def issued(store: Store) -> int:
    """How many referral documents the "tokens" kind holds (two per referrer)."""
    return int((store.get("settings", COUNTER) or {}).get("count", 0))


def referral_link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/f/{token}"


def code_of(store: Store, token: str) -> str | None:
    """The referral code behind a link token, or None (malformed, unknown, or the referrer's
    candidate record is gone)."""
    if not _TOKEN.match(token):
        return None
    doc = store.get("tokens", TOKEN_PREFIX + token)
    if doc is None or doc.get("kind") != KIND or not CODE.match(str(doc.get("code", ""))):
        return None
    if store.get("candidates", str(doc["candidate_id"])) is None:
        return None
    return str(doc["code"])


def referrer_of(store: Store, code: str) -> str | None:
    """The id of the candidate whose referral code this is, or None."""
    if not CODE.match(code):
        return None
    doc = store.get("tokens", CODE_PREFIX + code)
    return str(doc["candidate_id"]) if doc and doc.get("kind") == "referral_code" else None


def with_code(apply_url: str, param: str, code: str) -> str:
    """`apply_url` with `param=code` added to its query (any `param` it had is replaced)."""
    parts = urlsplit(apply_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != param]
    return urlunsplit(parts._replace(query=urlencode([*query, (param, code)])))
