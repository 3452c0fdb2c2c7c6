"""The profile columns of an imported row (スキル, 資格, 職歴, 希望職種) into the candidate's record
with provenance (source "import"): skills and qualifications under their canonical names from
`skills.toml` when the dictionary knows them (`java` → Java, "Java 5年" with its years), else as
written. What HR set stays (`profile.provenance`)."""

from __future__ import annotations

from collections.abc import Callable

from mailflow.pool.records import Candidate, ImportRow
from mailflow.profile.dictionary import SkillDictionary
from mailflow.profile.extract import Found, terms
from mailflow.profile.provenance import add_found

SOURCE = "import"


def _named(value: str, field: str, dictionary: SkillDictionary | None) -> list[Found]:
    if dictionary is not None:
        term = dictionary.canonical(value)
        if term is not None:
            return [Found(term.kind, term.name, value)]
        found = terms(value, dictionary)
        if found:
            return found
    return [Found(field, value, value)]


def row_found(row: ImportRow, dictionary: SkillDictionary | None) -> list[Found]:
    found = [f for v in row.skills for f in _named(v, "skills", dictionary)]
    found += [f for v in row.qualifications for f in _named(v, "qualifications", dictionary)]
    if row.career:
        found.append(Found("career", row.career, row.career[:80]))
    if row.desired_role:
        found.append(Found("desired_role", row.desired_role, row.desired_role))
    return found


def profile_of(row: ImportRow, dictionary: SkillDictionary | None,
               at: str) -> Callable[[Candidate], object] | None:
    """What the row's profile columns do to a candidate (None: the row has none)."""
    found = row_found(row, dictionary)
    if not found:
        return None
    return lambda candidate: add_found(candidate, found, SOURCE, at)
