"""The records the talent pool takes in: an applicant as a mail names them, a row of the list kept
before mailflow (and how it fills a candidate's gaps)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailflow.mail.people import normalise_name
from mailflow.store.base import Doc


def _add(values: list[Any], new: Sequence[Any]) -> None:
    for value in new:
        if value and value not in values:
            values.append(value)


@dataclass(frozen=True)
class Applicant:
    name: str
    email: str
    phones: tuple[str, ...]
    position: str
    note: str
    source: str


@dataclass(frozen=True)
class ImportRow:
    """One usable row: a person and their application as the old list knew them."""

    line: int
    name: str
    email: str
    phones: tuple[str, ...]
    source: str
    position: str
    applied_at: str | None
    status: str | None
    rejected_at: str | None
    rejection_reason: str
    rescout_ok: bool | None
    tags: tuple[str, ...]

    @property
    def applicant(self) -> Applicant:
        return Applicant(name=self.name, email=self.email, phones=self.phones,
                         position=self.position, note="", source=self.source)

    @property
    def channel(self) -> str:
        """Where the person came from: the source column, else "import"."""
        return self.source or "import"

    @property
    def application(self) -> Doc:
        return {"position": self.position, "applied_at": self.applied_at,
                "source": self.channel, "message_ids": []}

    def fill(self, candidate: Doc) -> None:
        """Fill the candidate's empty fields from this row; values already there are kept."""
        if self.name and not candidate["name"]:
            candidate["name"] = self.name
            candidate["name_normalized"] = normalise_name(self.name)
        _add(candidate["emails"], [self.email] if self.email else [])
        _add(candidate["phones"], self.phones)
        candidate["source"] = candidate["source"] or self.channel
        if self.source or not candidate["sources"]:
            _add(candidate["sources"], [self.channel])
        candidate["desired_role"] = candidate["desired_role"] or self.position
        _add(candidate["tags"], self.tags)
        names_one = self.source or self.position or self.applied_at
        if (names_one or not candidate["applications"]) and (
                self.application not in candidate["applications"]):
            candidate["applications"].append(self.application)
        if candidate["rescout_ok"] is None and self.status == "rejected":
            candidate["rescout_ok"] = self.rescout_ok
