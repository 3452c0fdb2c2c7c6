"""The talent pool's records: what it keeps — a candidate (with their applications, stages,
rejection, consents and documents) and the events of their timeline, as stored in the kinds
"candidates" and "events" — and what it takes in: an applicant as a mail names them, a row of
the list kept before mailflow (and how it fills a candidate's gaps).

The stored records are JSON documents; the types say which keys every stored record has
(`NotRequired`: keys only some have, set the first time something happened). They change nothing
that is stored. A document read from the store becomes a record in one place, `as_candidate` and
`as_event`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

from mailflow.mail.people import normalise_name

if TYPE_CHECKING:  # the store's engines are not needed to read a record (`mailflow check`)
    from mailflow.store.base import Doc

# -- what the pool keeps ------------------------------------------------------------------------

# A candidate's Career Relay status, in the order it advances (the rule files name them).
RELAY_STATUSES = ("not_invited", "invited", "clicked", "registered", "introduced",
                  "hired_elsewhere", "withdrawn")


class Application(TypedDict):
    """One application: for what, when, through which channel, and its mails."""

    position: str
    applied_at: str | None
    source: str
    message_ids: list[str]


class Stage(TypedDict):
    """A step in the selection (an interview invitation, an offer, a `#mailflow stage=` line)."""

    stage: str
    interviewer: str
    rating: str
    at: str
    note: str
    source: str


class Rejection(TypedDict):
    """The candidate's rejection: recorded with an invitation (`relay.desk`), without one
    (`TalentPool.record_rejection`), or taken from the list kept before mailflow (`source`
    "import", no id)."""

    reason: str
    at: str | None
    stage: str | None
    id: NotRequired[str | None]
    rescout: NotRequired[bool | None]
    message_id: NotRequired[str | None]
    source: NotRequired[str]


class Merge(TypedDict):
    """Why a new application was taken as this candidate's (same email, same phone)."""

    at: str
    reason: str


class ConsentEntry(TypedDict):
    """The candidate's own word on one purpose (see `pool.consent`): when, how (the channel:
    "consent page", "reply keyword", "import", "Career Relay registration", the admin's reason …)
    and the evidence (a request id, a Message-ID, a file and line, a callback's event id …)."""

    state: str  # "granted" | "withdrawn"
    at: str
    how: str
    evidence: NotRequired[str]  # recorded since issue 18


class Document(TypedDict):
    """A résumé or other attachment kept for the candidate (`intake.documents`)."""

    sha256: str
    filename: str
    content_type: str
    size: int
    message_id: str | None
    received_at: str
    stored: bool


class Hire(TypedDict):
    """A hire here (`candidate hire`, or a `#mailflow stage=採用` line) and, once known, when
    the person left (`candidate left`): what retention (定着) is measured from."""

    on: str  # the hire date (YYYY-MM-DD), or the instant of the stage line
    position: str
    via: str  # one of talent.HIRE_VIAS
    slot_seq: int | None  # the ledger entry of the free slot that paid for it (via "slot")
    left_on: str | None
    source: str  # "command" or where the stage line was read


class Intent(TypedDict):
    """The candidate's own wish to hear about future openings (再応募意向): said on the consent
    page, in a reply (「希望する」/「希望しない」) or told to HR; HR's view is `rescout_ok`."""

    wish: bool
    at: str
    how: str  # "consent page" | "reply" | "hr"
    evidence: NotRequired[str]  # a request id, the reply's Message-ID, who ran the command


class Provenance(TypedDict):
    """Where one profile value came from (`mailflow.profile`): the field ("skills",
    "qualifications", "career", "desired_role"), the canonical value, the source ("mail",
    "attachment:<file name>", "import", "hr"), the text as written, the years of experience
    stated with it (else None) and when it was recorded."""

    field: str
    value: str
    source: str
    matched: str
    years: float | None
    at: str
    score: NotRequired[int]  # a qualification's score written with it (TOEIC 800点)


class Candidate(TypedDict):
    """A person in the talent pool (kind "candidates"; `talent.new_candidate` makes one)."""

    id: str
    name: str
    name_normalized: str
    emails: list[str]
    phones: list[str]
    source: str
    sources: list[str]
    status: str
    applications: list[Application]
    stages: list[Stage]
    skills: list[str]
    career: str
    qualifications: list[str]
    desired_role: str
    rejection: Rejection | None
    rescout_ok: bool | None
    tags: list[str]  # the effective tags: HR's, the import's, automatic ones and `rule_tags`
    relay_status: str
    relay_ref: str | None
    reapplied: bool
    consents: dict[str, ConsentEntry]
    merges: list[Merge]
    message_ids: list[str]
    created_at: str
    updated_at: str
    documents: NotRequired[list[Document]]  # once a mail brought attachments
    undeliverable: NotRequired[list[str]]  # addresses refused for good
    relay_event_at: NotRequired[str]  # when the partner event last applied occurred
    hires: NotRequired[list[Hire]]  # once hired here, oldest first
    mailings: NotRequired[dict[str, list[str]]]  # rule name -> ids of the posts it was sent
    referred_by: NotRequired[str]  # the candidate whose referral code the application quoted
    reapply_intent: NotRequired[Intent]  # once the candidate said it
    rule_tags: NotRequired[list[str]]  # those of `tags` that rules/tags.toml gives (pool.tags)
    tags_withheld: NotRequired[list[str]]  # rule tags HR removed: rules do not give them again
    provenance: NotRequired[list[Provenance]]  # where each profile value came from
    birth_date: NotRequired[str]  # YYYY-MM-DD, from the import (生年月日)


class TimelineEvent(TypedDict):
    """One change on a candidate's timeline (kind "events", append-only); `candidate_id` is
    None for events about no candidate (a message handled)."""

    candidate_id: str | None
    type: str
    at: str
    data: dict[str, Any]


def as_candidate(doc: Doc) -> Candidate:
    """A candidate document read from the store, as the record it is."""
    return cast(Candidate, doc)


def as_event(doc: Doc) -> TimelineEvent:
    """An event read from the store, as the record it is."""
    return cast(TimelineEvent, doc)


# -- what the pool takes in ---------------------------------------------------------------------


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
    granted: tuple[str, ...] = ()  # purposes of use the row says the person consented to
    withdrawn: tuple[str, ...] = ()  # … and those they withdrew
    skills: tuple[str, ...] = ()  # the profile columns, as written (`intake.import_profile`)
    qualifications: tuple[str, ...] = ()
    career: str = ""
    desired_role: str = ""
    interviewer: str = ""  # 面接担当者 and 評価: a step of the selection (`selection`)
    rating: str = ""
    birth_date: str | None = None

    @property
    def applicant(self) -> Applicant:
        return Applicant(name=self.name, email=self.email, phones=self.phones,
                         position=self.position, note="", source=self.source)

    @property
    def channel(self) -> str:
        """Where the person came from: the source column, else "import"."""
        return self.source or "import"

    @property
    def selection(self) -> Stage | None:
        """The interviewer and rating the row names, as a stage of the selection: "面接" when
        an interviewer is named, else "選考"; at the rejection date, else the application's."""
        if not self.interviewer and not self.rating:
            return None
        return {"stage": "面接" if self.interviewer else "選考", "interviewer": self.interviewer,
                "rating": self.rating, "at": self.rejected_at or self.applied_at or "",
                "note": "", "source": "import"}

    @property
    def application(self) -> Application:
        return {"position": self.position, "applied_at": self.applied_at,
                "source": self.channel, "message_ids": []}

    def fill(self, candidate: Candidate) -> None:
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
        if self.birth_date and not candidate.get("birth_date"):
            candidate["birth_date"] = self.birth_date
        if self.selection is not None and self.selection not in candidate["stages"]:
            candidate["stages"].append(self.selection)
