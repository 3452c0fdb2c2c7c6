"""Which outgoing mails are rejections (pure): HR's markers, the admin's rules, the evidence.

HR writes rejections in their own mail client. A draft, outbox or Sent mail is decided by the
first rule of `rules/rejection.toml` (file order) whose conditions hold; the shipped rules let
HR's `#mailflow rejection` / `#mailflow rejection=no` line speak first, leave mail to people
outside the pool alone, and then let the evidence decide: cues read from the Subject and HR's own
text (never the quoted original), weighed with the context (`evidence`, `cues`). Every decision
names its rule, what hit and the evidence that counted. A mail that reads like a result notice
but is neither clearly a rejection nor clearly not is ``uncertain``: left alone, and HR is asked.

Modules: `wording` (normalising Japanese text), `facts` (what a decision looks at), `cues` and
`evidence` (the recogniser), `rules` (the rule file), `decision` (putting it together),
`corrections` (HR's settled cases as labelled examples, and the rule changes they suggest).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailflow.rejection.recognise.decision import Decision, decide, decide_outgoing
    from mailflow.rejection.recognise.evidence import Assessment, Evidence, assess
    from mailflow.rejection.recognise.facts import (
        HrNote,
        KnownCandidate,
        Outgoing,
        own_text,
        read_note,
        read_outgoing,
    )
    from mailflow.rejection.recognise.rules import (
        FILE,
        NO_RULE,
        RejectionRules,
        Rule,
        RuleSpec,
        check,
        load_rejection_rules,
    )
    from mailflow.rejection.recognise.wording import normalise

# Each name from the module that defines it, on first use: `mailflow check` reads the rule file
# (`rules`) without compiling the recogniser's cues (`evidence`, `cues`: ~45 ms).
_HOMES = {
    "Decision": "decision", "decide": "decision", "decide_outgoing": "decision",
    "Assessment": "evidence", "Evidence": "evidence", "assess": "evidence",
    "HrNote": "facts", "KnownCandidate": "facts", "Outgoing": "facts", "own_text": "facts",
    "read_note": "facts", "read_outgoing": "facts",
    "FILE": "rules", "NO_RULE": "rules", "RejectionRules": "rules", "Rule": "rules",
    "RuleSpec": "rules", "check": "rules", "load_rejection_rules": "rules",
    "normalise": "wording",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


__all__ = [
    "FILE", "NO_RULE", "Assessment", "Decision", "Evidence", "HrNote", "KnownCandidate",
    "Outgoing", "RejectionRules", "Rule", "RuleSpec", "assess", "check", "decide",
    "decide_outgoing", "load_rejection_rules", "normalise", "own_text", "read_note",
    "read_outgoing",
]
