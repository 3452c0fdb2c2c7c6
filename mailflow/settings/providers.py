"""OAuth 2.0 presets of the mail providers: where a token is asked for, for what, and which
servers take it.

`[mailbox] provider` picks one; "custom" has no preset (its `token_url` is configured). A key
the file sets wins over the preset; a preset fills only what the file leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OAuthPreset:
    name: str
    token_url: str  # "{tenant}" replaced by `[mailbox] tenant`
    authorize_url: str  # for the loopback-redirect flow (`mailflow auth login`)
    device_url: str  # for the device-code flow ("" when the provider's flow is the loopback)
    scopes: tuple[str, ...]
    imap: tuple[str, int]
    smtp: tuple[str, int]


PRESETS = {
    "google": OAuthPreset(
        "google", "https://oauth2.googleapis.com/token",
        "https://accounts.google.com/o/oauth2/v2/auth", "",
        ("https://mail.google.com/",), ("imap.gmail.com", 993), ("smtp.gmail.com", 587)),
    "microsoft": OAuthPreset(
        "microsoft", "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode",
        ("https://outlook.office.com/IMAP.AccessAsUser.All",
         "https://outlook.office.com/SMTP.Send", "offline_access"),
        ("outlook.office365.com", 993), ("smtp.office365.com", 587)),
}


def preset(provider: str) -> OAuthPreset | None:
    return PRESETS.get(provider)
