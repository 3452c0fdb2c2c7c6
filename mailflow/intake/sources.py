"""`rules/sources.toml`: which inbound mails are applications, and from which channel.

Sources are tried in file order and the first that matches wins. A source matches on the
sender (addresses, or domains written `@example.jp`) and an optional subject pattern; its
`extract` patterns pull the candidate's details out of the body (first group = the value). A
source with `direct = true` takes mail a person wrote to the recruiting address: the candidate is
the sender. Patterns are Python regular expressions, checked when the file is loaded.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mailflow.errors import Problem, ProblemsError
from mailflow.settings import tomlpos
from mailflow.settings.validation import Pattern, names_used_twice, validate

FILE = "sources.toml"




class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Extract(Strict):
    name: Pattern | None = None
    email: Pattern | None = None
    phone: Pattern | None = None
    position: Pattern | None = None
    note: Pattern | None = None


class Source(Strict):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9_\-]+$")
    description: str = ""
    direct: bool = False
    from_: list[str] = Field(default=[], alias="from")
    subject: Pattern | None = None
    extract: Extract = Extract()


class SourceRules(Strict):
    source: list[Source] = Field(min_length=1)


def load_sources(rules_dir: Path) -> SourceRules:
    """Load and validate `sources.toml`; every problem at once as `PATH:LINE: message`."""
    path = rules_dir / FILE
    data, positions = tomlpos.load(path)
    rules = validate(SourceRules, data, positions, path)
    problems = []
    for index, source in enumerate(rules.source):
        if not source.direct and not source.from_:
            line = tomlpos.line_of(positions, ("source", index))
            message = f"source[{index}] ({source.name}): needs `from` or direct = true"
            problems.append(Problem(str(path), line, message))
    problems += names_used_twice([s.name for s in rules.source], "source", "source",
                                 positions, path)
    if problems:
        raise ProblemsError(problems)
    return rules


def check(rules_dir: Path) -> list[Problem]:
    try:
        load_sources(rules_dir)
    except ProblemsError as exc:
        return exc.problems
    return []
