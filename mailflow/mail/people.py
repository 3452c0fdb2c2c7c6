"""Normalising what identifies a person: names, email addresses and Japanese phone numbers."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_HONORIFIC = re.compile(r"\s*(様|さま|殿|さん)$")
_PHONE = re.compile(r"(?:\+81[\s\-－()（）]*|0)\d{1,4}[\s\-－()（）]*\d{1,4}[\s\-－()（）]*\d{3,4}")


def normalise_name(name: str) -> str:
    """NFKC (full-width to half-width letters, half-width kana to full-width), one space between
    family and given name, no honorific."""
    text = unicodedata.normalize("NFKC", name).strip()
    text = _HONORIFIC.sub("", text)
    return _SPACES.sub(" ", text).strip()


def normalise_email(address: str) -> str:
    """Emails are compared case-insensitively (the whole address folded) and trimmed."""
    return unicodedata.normalize("NFKC", address).strip().strip("<>").lower()


def normalise_phone(phone: str) -> str | None:
    """A Japanese number as digits in domestic form (+81 90… → 090…); None when not a number."""
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", phone))
    if unicodedata.normalize("NFKC", phone).strip().startswith("+81") or (
            digits.startswith("81") and len(digits) in (11, 12)):
        digits = "0" + digits[2:]
    if digits.startswith("0") and len(digits) in (10, 11):
        return digits
    return None


def find_phones(text: str) -> list[str]:
    """Japanese phone numbers written in free text, normalised, in order, without repeats."""
    found: list[str] = []
    for match in _PHONE.finditer(unicodedata.normalize("NFKC", text)):
        phone = normalise_phone(match.group(0))
        if phone and phone not in found:
            found.append(phone)
    return found
