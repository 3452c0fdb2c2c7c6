"""Validate TOML data against pydantic models and report every problem with its position."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ValidationError

from mailflow.errors import Problem, ProblemsError
from mailflow.settings.tomlpos import KeyPath, line_of

M = TypeVar("M", bound=BaseModel)


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"bad regular expression: {exc}") from exc
    return value


Pattern = Annotated[str, AfterValidator(_regex)]


def _dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _known_fields(model: type[BaseModel], loc: KeyPath) -> list[str]:
    """The field names the model accepts at the table that holds `loc[-1]`."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        args = getattr(annotation, "__args__", ()) or (annotation,)
        current = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None) or {}
    return [info.alias or name for name, info in fields.items()]


def problems_from(
    exc: ValidationError, model: type[BaseModel], positions: dict[KeyPath, int], path: Path
) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc: KeyPath = tuple(p for p in error["loc"] if isinstance(p, str | int))
        key = _dotted(loc) or "(top)"
        if error["type"] == "extra_forbidden":
            known = _known_fields(model, loc)
            guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"; did you mean {guess[0]!r}?" if guess else (
                f"; known keys: {', '.join(known)}" if known else "")
            message = f"{key}: unknown key{hint}"
        elif error["type"] == "missing":
            message = f"{key}: required key is missing"
        else:
            text = str(error["msg"]).removeprefix("Value error, ")
            message = f"{key}: {text}"
            if "input" in error and not isinstance(error["input"], dict | list):
                message += f" (got {error['input']!r})"
        problems.append(Problem(str(path), line_of(positions, loc), message))
    return sorted(problems, key=lambda p: (p.line or 0, p.message))


def names_used_twice(names: list[str], table: str, what: str,
                     positions: dict[KeyPath, int], path: Path) -> list[Problem]:
    """A problem, at its line, for each `[[table]]` entry whose name an earlier one has."""
    return [Problem(str(path), line_of(positions, (table, index, "name")),
                    f"{what} name {name!r} used twice")
            for index, name in enumerate(names) if name in names[:index]]


def validate(
    model: type[M], data: dict[str, Any], positions: dict[KeyPath, int], path: Path
) -> M:
    """Build `model` from `data`, or raise ProblemsError listing all problems at once."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProblemsError(problems_from(exc, model, positions, path)) from exc
