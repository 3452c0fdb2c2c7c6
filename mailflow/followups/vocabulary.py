"""The words of `rules/followups.toml` (pure): the triggers, date fields, statuses and template
variables a rule may name, the states of a follow-up row, and the did-you-mean for a word that
is none of them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# trigger name -> the timeline event types it stands for
TRIGGERS: dict[str, tuple[str, ...]] = {
    "rejected": ("rejected",),
    "invited": ("invited",),
    "clicked": ("clicked", "relay_clicked"),  # a person's click only (see `is_human_click`)
    "registered": ("relay_registered", "registered"),
    "applied": ("applied",),
    "reapplied": ("reapplied",),
    "opening_matched": ("opening_matched",),  # among the top matches of an opening (openings/)
}
DATE_FIELDS = ("rejection.at", "created_at", "last_applied_at")
STATUSES = ("applied", "screening", "interviewing", "offered", "hired", "rejected", "withdrawn")
VARIABLES = ("candidate_name", "company_name", "position", "rejected_at", "relay_link",
             "apply_url", "unsubscribe_link", "consent_url",
             "opening_title", "opening_description", "opening_location", "post", "referral_url")
ROW_STATES = ("planned", "sent", "skipped", "cancelled")


def did_you_mean(value: str, known: Iterable[str]) -> str:
    """The end of an "unknown …" message: the closest known word, else all of them."""
    options = list(known)
    found = difflib.get_close_matches(value, options, n=1, cutoff=0.5)
    return f"; did you mean {found[0]!r}?" if found else f"; known: {', '.join(options)}"


def unknown_purpose(value: str, known: Iterable[str]) -> str:
    """The message for a purpose of use the config does not declare (`[privacy.purposes]`)."""
    return f"unknown purpose {value!r}; known: {', '.join(known)}"
