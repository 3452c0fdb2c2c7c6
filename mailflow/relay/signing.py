"""The signature the partner and mailflow put on what they send each other (pure): the header
`X-CareerRelay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, keyed with
the secret shared with Career Relay. Callbacks (`callbacks`) check it; hand-overs (`handover`)
carry it."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-CareerRelay-Signature"


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
