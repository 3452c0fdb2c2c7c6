"""The SASL initial responses of the token mechanisms: XOAUTH2 (Google's and Microsoft's) and
OAUTHBEARER (RFC 7628). Pure strings; the IMAP and SMTP login code sends them."""

from __future__ import annotations

import base64


def xoauth2(user: str, access_token: str) -> str:
    return f"user={user}\x01auth=Bearer {access_token}\x01\x01"


def oauthbearer(user: str, host: str, port: int, access_token: str) -> str:
    return f"n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {access_token}\x01\x01"


def encoded(response: str) -> str:
    """Base64, as AUTH sends an initial response."""
    return base64.b64encode(response.encode("utf-8")).decode("ascii")
