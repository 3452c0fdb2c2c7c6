"""The names providers give the folders mailflow works with, for servers that do not announce
special-use flags (RFC 6154) — Gmail and Microsoft 365 in English and in a Japanese account.
Only names the server really has are used; a special-use flag always wins."""

from __future__ import annotations

from collections.abc import Iterator

PRESETS: dict[str, dict[str, tuple[str, ...]]] = {
    "google": {
        "drafts": ("[Gmail]/下書き", "[Gmail]/Drafts"),
        "sent": ("[Gmail]/送信済みメール", "[Gmail]/Sent Mail"),
        "trash": ("[Gmail]/ゴミ箱", "[Gmail]/Trash", "[Gmail]/Bin"),
    },
    "microsoft": {
        "drafts": ("下書き", "Drafts"),
        "sent": ("送信済みアイテム", "Sent Items"),
        "trash": ("削除済みアイテム", "Deleted Items"),
    },
}
LABELS = {"google": "Gmail", "microsoft": "Microsoft 365"}


def preset_names(role: str, provider: str) -> Iterator[tuple[str, str]]:
    """(provider label, folder name) to try for ``role``: the configured provider's names, or
    every provider's for a custom server."""
    providers = [provider] if provider in PRESETS else list(PRESETS)
    for name in providers:
        for folder in PRESETS[name].get(role, ()):
            yield LABELS[name], folder
