"""`rules/openings.toml`: the positions open now, and how long HR's shortlist is (pure).

Each `[[opening]]` has an `id` (lower case, digits, - and _; `op-…` is kept for openings added by
`mailflow opening add`), a title, and optionally a description, required and preferred skills and
qualifications (canonical names, as `rules/skills.toml` writes them), a location and `open`.
`[shortlist]` says how many of the best matches HR's mail names (and `opening_matched` is
recorded for) and the lowest score worth proposing. The file is checked at once, every problem
as `PATH:LINE: message`. How the file's openings meet those added by command in the store:
`openings/desk.py`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mailflow.errors import Problem, ProblemsError
from mailflow.pool.facts import parse_when
from mailflow.settings import tomlpos
from mailflow.settings.tomlpos import line_of
from mailflow.settings.validation import validate

FILE = "openings.toml"
COMMAND_PREFIX = "op-"
# the fields that make an opening what it is: a change to any of them is a new revision
CONTENT = ("title", "description", "required_skills", "preferred_skills",
           "required_qualifications", "preferred_qualifications", "location", "when")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShortlistSpec(_Strict):
    size: int = Field(10, ge=1, le=200)
    min_score: float = Field(0.2, ge=-1.0, le=1.0)


class OpeningSpec(_Strict):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_\-]+$")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)
    required_skills: list[str] = []
    preferred_skills: list[str] = []
    required_qualifications: list[str] = []
    preferred_qualifications: list[str] = []
    location: str = ""
    open: bool = True
    # who may be proposed, beyond consent: the candidates' facts, as in tags.toml (pool.facts)
    when: dict[str, Any] = {}

    @field_validator("id")
    @classmethod
    def _not_a_command_id(cls, value: str) -> str:
        if value.startswith(COMMAND_PREFIX):
            raise ValueError(f"ids starting with {COMMAND_PREFIX!r} are kept for "
                             "`mailflow opening add`")
        return value

    @field_validator("required_skills", "preferred_skills", "required_qualifications",
                     "preferred_qualifications")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        if any(not v.strip() for v in value):
            raise ValueError("an empty name")
        return [v.strip() for v in value]


class OpeningsFile(_Strict):
    shortlist: ShortlistSpec = ShortlistSpec()
    opening: list[OpeningSpec] = []


@dataclass(frozen=True)
class OpeningRules:
    shortlist: ShortlistSpec
    openings: tuple[OpeningSpec, ...]
    path: str

    def get(self, opening_id: str) -> OpeningSpec | None:
        return next((o for o in self.openings if o.id == opening_id), None)


def load_openings(rules_dir: Path) -> OpeningRules:
    """Load and validate `openings.toml` (none: no openings from a file); every problem at
    once."""
    path = rules_dir / FILE
    if not path.exists():
        return OpeningRules(ShortlistSpec(), (), str(path))
    data, positions = tomlpos.load(path)
    parsed = validate(OpeningsFile, data, positions, path)
    ids = [spec.id for spec in parsed.opening]
    twice = [Problem(str(path), line_of(positions, ("opening", index, "id")),
                     f"opening id {value!r} used twice")
             for index, value in enumerate(ids) if value in ids[:index]]
    conditions = [Problem(str(path), line_of(positions, ("opening", index, "when", *where)),
                          f"opening.when: {message}")
                  for index, spec in enumerate(parsed.opening)
                  for where, message in parse_when(spec.when)[1]]
    if twice or conditions:
        raise ProblemsError(twice + conditions)
    return OpeningRules(parsed.shortlist, tuple(parsed.opening), str(path))


def check(rules_dir: Path) -> list[Problem]:
    try:
        load_openings(rules_dir)
    except ProblemsError as exc:
        return exc.problems
    return []


def content(opening: Mapping[str, Any]) -> dict[str, Any]:
    empty: dict[str, Any] = {"title": "", "description": "", "location": "", "when": {}}
    return {key: opening.get(key) or empty.get(key, []) for key in CONTENT}


def revision(opening: Mapping[str, Any]) -> str:
    """A short digest of what the opening asks for: HR's shortlist goes once per revision."""
    text = json.dumps(content(opening), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
