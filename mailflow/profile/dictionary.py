"""`rules/skills.toml`: the skills and qualifications mailflow recognises, each with a canonical
name and the other ways it is written (Japanese and English).

Spellings are compared NFKC-normalised and case-folded (`fold`). A spelling of Latin letters and
digits matches only as a whole word (no ASCII letter or digit, `+` or `#` beside it; for a
one-letter spelling, no letter of any script), so "Java" is not found in "JavaScript" nor "C" in
"C社". Where spellings overlap, the longest wins. A spelling two entries claim is an error, as is
a name used twice; every problem is reported at once as `PATH:LINE: message`. A rules folder
without the file uses the shipped one (sites made before the file existed).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mailflow.errors import Problem, ProblemsError
from mailflow.settings import tomlpos
from mailflow.settings.validation import names_used_twice, validate
from mailflow.starter import SHIPPED_RULES

FILE = "skills.toml"
Kind = Literal["skills", "qualifications"]


def fold(text: str) -> str:
    """Text as spellings are compared: NFKC, lower case, runs of blanks as one space."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).lower())


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    synonyms: list[str] = []
    score: bool = False


class SkillsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    skill: list[Entry] = []
    qualification: list[Entry] = []


@dataclass(frozen=True)
class Term:
    """What one spelling stands for."""

    kind: Kind
    name: str
    score: bool


_WORD = "[a-z0-9+#]"
_END = ""  # the trie's key for "a spelling ends here"


def _after(spelling: str) -> str:
    """The look-ahead that ends a Latin spelling as a whole word (a one-letter one: before no
    letter of any script)."""
    if len(spelling) == 1 and spelling.isascii() and spelling.isalpha():
        return r"(?!\w)"
    return f"(?!{_WORD})" if re.search(f"{_WORD}$", spelling) else ""


def _trie_pattern(spellings: list[str]) -> str:
    """One regular expression for all the spellings, as a trie (shared beginnings written once:
    far faster than an alternation of 300 words), longest first at each branch."""
    root: dict[str, Any] = {}
    for spelling in spellings:
        node = root
        for char in spelling:
            node = node.setdefault(char, {})
        node[_END] = _after(spelling)

    def emit(node: dict[str, Any]) -> str:
        branches = [(r"\s?" if char == " " else re.escape(char)) + emit(child)
                    for char, child in sorted(node.items()) if char != _END]
        if _END in node:
            branches.append(node[_END])
        if len(branches) == 1:
            return branches[0]
        return "(?:" + "|".join(branches) + ")"

    return emit(root) if root else r"(?!)"


class SkillDictionary:
    """The entries, and one pattern that finds any of their spellings in folded text."""

    def __init__(self, data: SkillsFile) -> None:
        self.terms: dict[str, Term] = {}
        for kind, entries in (("skills", data.skill), ("qualifications", data.qualification)):
            for entry in entries:
                for spelling in (entry.name, *entry.synonyms):
                    self.terms.setdefault(fold(spelling).strip(),
                                          Term(kind, entry.name, entry.score))  # type: ignore[arg-type]
        self.compact = {spelling.replace(" ", ""): term for spelling, term in self.terms.items()}
        latin = [s for s in self.terms if re.match("[a-z0-9]", s)]
        other = [s for s in self.terms if not re.match("[a-z0-9]", s)]
        self.pattern = re.compile(f"(?<!{_WORD}){_trie_pattern(latin)}|{_trie_pattern(other)}")

    def canonical(self, text: str) -> Term | None:
        """The entry a whole value names (`java` → Java, `Spring  Boot` → Spring), if any."""
        return self.compact.get(fold(text).replace(" ", ""))

    def names(self, kind: Kind) -> list[str]:
        return list(dict.fromkeys(t.name for t in self.terms.values() if t.kind == kind))


def skills_path(rules_dir: Path) -> Path:
    path = rules_dir / FILE
    return path if path.exists() else SHIPPED_RULES / FILE


def load_skills(rules_dir: Path) -> SkillDictionary:
    """Load and validate `skills.toml`; every problem at once as `PATH:LINE: message`."""
    return SkillDictionary(read_skills(rules_dir))


def read_skills(rules_dir: Path) -> SkillsFile:
    """`skills.toml` validated, without compiling its pattern (all that `check` needs)."""
    path = skills_path(rules_dir)
    data, positions = tomlpos.load(path)
    parsed = validate(SkillsFile, data, positions, path)
    problems: list[Problem] = []
    for table in ("skill", "qualification"):
        problems += names_used_twice([e.name for e in getattr(parsed, table)], table, table,
                                     positions, path)
    claimed: dict[str, str] = {}
    for table in ("skill", "qualification"):
        for index, entry in enumerate(getattr(parsed, table)):
            for spelling in dict.fromkeys(fold(s).strip() for s in (entry.name, *entry.synonyms)):
                if not spelling:
                    problems.append(Problem(str(path), tomlpos.line_of(
                        positions, (table, index)), f"{table}[{index}] ({entry.name}): an "
                                                    "empty spelling"))
                elif claimed.setdefault(spelling, entry.name) != entry.name:
                    problems.append(Problem(str(path), tomlpos.line_of(
                        positions, (table, index)), f"{table}[{index}] ({entry.name}): "
                        f"{spelling!r} already stands for {claimed[spelling]!r}"))
    if problems:
        raise ProblemsError(sorted(problems, key=lambda p: p.line or 0))
    return parsed


def check(rules_dir: Path) -> list[Problem]:
    try:
        read_skills(rules_dir)
    except ProblemsError as exc:
        return exc.problems
    return []
