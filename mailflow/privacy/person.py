"""One person as erasure and disclosure look for them: their candidate id, names, addresses and
phone numbers, and whether a text or a raw mail names them (pure).

A stored mail (a quarantined one, an outgoing one, a journaled draft) concerns the person when
its decoded headers, bodies or attachments — base64 and quoted-printable undone, ISO-2022-JP,
Shift_JIS/CP932 and UTF-8 decoded by `mail.parse` — carry one of their email addresses or phone
numbers (phones compared as digits, however written: 03-1234-5678, ０３（１２３４）５６７８).
A name alone is not taken as proof: two people share names, and only the one who asked is
erased. Names are masked in the texts that are kept (`mask`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from mailflow.mail.parse import parse_mail
from mailflow.mail.people import find_phones, normalise_email, normalise_phone
from mailflow.pool.records import Candidate

MASK = "〇〇"
_SPACES = re.compile(r"[\s\u3000]+")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


_EMAIL = re.compile(r"[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+")


@dataclass(frozen=True)
class Text:
    """A text prepared for the look-ups: folded (NFKC, lower case), the email addresses and the
    phone numbers in it (so that one text is checked against many people by set lookups)."""

    folded: str
    emails: frozenset[str]
    phones: frozenset[str]

    @classmethod
    def of(cls, *texts: str) -> Text:
        joined = "\n".join(t for t in texts if t)
        folded = _fold(joined)
        return cls(folded, frozenset(_EMAIL.findall(folded)), frozenset(find_phones(joined)))


def mail_text(raw: bytes) -> Text:
    """Everything readable in a raw mail (or any raw bytes: a callback's body), decoded."""
    mail = parse_mail(raw)
    parts = [raw.decode("utf-8", "replace"), mail.subject, mail.text, mail.html]
    parts += [f"{name}: {value}" for name, value in mail.headers]
    parts += [f"{a.name} <{a.email}>" for a in (*mail.from_, *mail.to, *mail.cc, *mail.reply_to)]
    parts += [a.data.decode("utf-8", "replace") for a in mail.attachments]
    return Text.of(*parts)


@dataclass(frozen=True)
class Person:
    candidate_id: str
    names: tuple[str, ...]  # folded, spaces removed: 山田太郎
    parts: tuple[str, ...]  # the name's parts, two characters or more: 山田, 太郎
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    relay_ref: str | None = None

    @classmethod
    def of(cls, candidate: Candidate) -> Person:
        names = {candidate.get("name") or "", candidate.get("name_normalized") or ""}
        folded = {_SPACES.sub("", _fold(n)) for n in names if n.strip()}
        parts = {p for n in names for p in _SPACES.split(_fold(n)) if len(p) >= 2}
        emails = {normalise_email(e) for e in [*candidate.get("emails", []),
                                                *candidate.get("undeliverable", [])] if e}
        phones = {normalise_phone(p) or p for p in candidate.get("phones", []) if p}
        return cls(candidate["id"], tuple(sorted(n for n in folded if len(n) >= 2)),
                   tuple(sorted(parts)), tuple(sorted(emails)), tuple(sorted(phones)),
                   candidate.get("relay_ref"))

    def reached_in(self, text: Text) -> bool:
        """The text carries one of the person's addresses or phone numbers."""
        return bool(text.emails & set(self.emails) or text.phones & set(self.phones))

    def named_in(self, value: str) -> bool:
        """The value names the person in any way: name, address or phone."""
        text = Text.of(value)
        squashed = _SPACES.sub("", text.folded)
        return self.reached_in(text) or any(n in squashed for n in self.names) \
            or any(e in text.folded for e in self.emails)

    def mentioned(self, squashed: str) -> bool:
        """`squashed` (see `squash`) has one of the person's names, name parts or addresses."""
        return any(n in squashed for n in (*self.names, *self.parts, *self.emails))

    def mask(self, value: str) -> str:
        """`value` with the person's names, addresses and phone numbers replaced by 〇〇."""
        folded = _fold_each(value)
        squashed = _SPACES.sub("", folded)
        for needle in sorted({*self.names, *self.parts, *self.emails}, key=len, reverse=True):
            if needle in squashed:  # cheap first: most texts name nobody
                value, folded = _replace_folded(value, folded, needle)
                squashed = _SPACES.sub("", folded)
        if not set(find_phones(value)) & set(self.phones):
            return value
        return _PHONE_RUN.sub(lambda m: MASK if normalise_phone(m.group(0)) in self.phones
                              else m.group(0), value)


_PHONE_RUN = re.compile(r"[+＋]?[0-9０-９][0-9０-９\s\-－‐ー()（）]{7,}[0-9０-９]")


def squash(value: str) -> str:
    """`value` folded, without spaces: what `Person.mentioned` looks in."""
    return _SPACES.sub("", _fold_each(value))


def _fold_each(value: str) -> str:
    """`value` folded character by character (the same length: index for index)."""
    return "".join(f if len(f := _fold(c)) == 1 else c for c in value)


def _replace_folded(value: str, folded: str, needle: str) -> tuple[str, str]:
    """Replace `needle` in `value`, matching its folded form (spaces inside ignored)."""
    pattern = r"[\s\u3000]*".join(re.escape(c) for c in needle)
    out, kept, last = [], [], 0
    for match in re.finditer(pattern, folded):
        out += [value[last:match.start()], MASK]
        kept += [folded[last:match.start()], MASK]
        last = match.end()
    return "".join(out) + value[last:], "".join(kept) + folded[last:]


class People:
    """Many people, looked up by the addresses and phone numbers a text carries."""

    def __init__(self, people: Iterable[Person]) -> None:
        self.all = list(people)
        self._by: dict[str, Person] = {}
        for person in self.all:
            for key in (*person.emails, *person.phones):
                self._by.setdefault(key, person)

    def reached_in(self, text: Text) -> list[Person]:
        found = {self._by[k].candidate_id: self._by[k]
                 for k in (*text.emails, *text.phones) if k in self._by}
        return list(found.values())
