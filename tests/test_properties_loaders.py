"""Issue 21 part 3: the config and rule-file loaders on generated TOML. Starting from the shipped
files, keys are dropped, added, misspelt and given values of every type, then written back as
TOML (or cut and garbled as text): each loader either loads the file or raises ProblemsError
whose every problem names the file and a line in it, never a traceback or another exception."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailflow.errors import ProblemsError
from mailflow.followups.rules import load_followups
from mailflow.intake.sources import load_sources
from mailflow.intake.stages import load_stages
from mailflow.rejection.recognise.rules import load_rejection_rules
from mailflow.settings.config import PURPOSES, load_config
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES

PROJECT = Path(__file__).resolve().parents[1]
Loader = Callable[[Path], object]

LOADERS: dict[str, tuple[Path, Loader]] = {
    "config.toml": (PROJECT / "config.example.toml", load_config),
    "sources.toml": (SHIPPED_RULES / "sources.toml", lambda p: load_sources(p.parent)),
    "rejection.toml": (SHIPPED_RULES / "rejection.toml",
                       lambda p: load_rejection_rules(p.parent)),
    "followups.toml": (SHIPPED_RULES / "followups.toml",
                       lambda p: load_followups(p.parent, SHIPPED_TEMPLATES,
                                                tuple(PURPOSES))),
    "stages.toml": (SHIPPED_RULES / "stages.toml", lambda p: load_stages(p.parent)),
}

KEYS = st.sampled_from(["name", "from", "subject", "delay", "event", "field", "when", "extract",
                        "host", "port", "security", "path", "engine", "listen", "timezone",
                        "dir", "mode", "template", "phrases", "patterns", "x", "日本語キー",
                        "a.b", "with space", "", "source", "rule", "followup"])
SCALARS = st.one_of(
    st.text(max_size=12), st.integers(-2**63, 2**63 - 1), st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["tls", "none", "sqlite", "127.0.0.1:0", "3d", "6x", "(", "[a-", "@x.jp",
                     "Asia/Tokyo", "Mars/Olympus", "rejected", "registered", "0"]),
    st.datetimes(timezones=st.none() | st.just(dt.UTC)), st.dates(), st.times())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(KEYS, inner, max_size=3), max_leaves=6)


# -- a small TOML writer (tomllib reads, nothing in the standard library writes) ---------------

def _key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value > 0 else "-inf") \
            if value in (float("inf"), float("-inf")) else repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def dump(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    lines, tables = [], []
    for key, value in data.items():
        tables_array = isinstance(value, list) and value and \
            all(isinstance(v, dict) for v in value)
        if (isinstance(value, dict) and value) or tables_array:
            tables.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in tables:
        path = (*prefix, key)
        dotted = ".".join(_key(k) for k in path)
        if isinstance(value, dict):
            lines.append(f"\n[{dotted}]\n{dump(value, path)}")
        else:
            lines.extend(f"\n[[{dotted}]]\n{dump(entry, path)}" for entry in value)
    return "\n".join(lines)


# -- mutations of the shipped documents ----------------------------------------------------------

@st.composite
def mutated(draw: st.DrawFn, data: Any, depth: int = 0) -> Any:
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            action = draw(st.sampled_from(["keep"] * 6 + ["drop", "retype", "rename"]))
            if action == "drop":
                continue
            if action == "retype":
                out[key] = draw(VALUES)
            elif action == "rename":
                out[draw(KEYS) or key] = value
            else:
                out[key] = draw(mutated(value, depth + 1))
        if draw(st.integers(0, 9)) == 0:
            out[draw(KEYS) or "extra"] = draw(VALUES)
        return out
    if isinstance(data, list):
        items = [draw(mutated(v, depth + 1)) for v in data]
        if items and draw(st.booleans()):
            items = items[:draw(st.integers(0, len(items)))]
        return items
    return draw(VALUES) if draw(st.integers(0, 9)) == 0 else data


@st.composite
def garbled(draw: st.DrawFn, text: str) -> str:
    """The file's text with lines dropped, doubled or cut, and characters put in."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(0, len(lines) - 1)))
        action = draw(st.sampled_from(["drop", "double", "cut", "insert"]))
        if not lines:
            break
        if action == "drop":
            del lines[at]
        elif action == "double":
            lines.insert(at, lines[at])
        elif action == "cut":
            lines[at] = lines[at][:draw(st.integers(0, len(lines[at])))]
        else:
            lines.insert(at, draw(st.sampled_from(
                ["[", "[[", "]]", '"""', "'''", "x = ", "= 1", "\x00", "[a.b.c]", "a.b = 1",
                 "\ufeff", "x = [1,", "[[source]]", "name = 'dup'", "\\"])))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))


def _documents(name: str) -> st.SearchStrategy[str]:
    source, _ = LOADERS[name]
    text = source.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return st.one_of(st.builds(dump, mutated(data)), garbled(text))


def _load(directory: Path, name: str, text: str | bytes) -> None:
    path = directory / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8",
                                                                      errors="surrogatepass"))
    lines = max(1, len((text if isinstance(text, str) else text.decode("utf-8", "replace"))
                       .splitlines()))
    _, loader = LOADERS[name]
    try:
        loader(path)
    except ProblemsError as problems:
        assert problems.problems
        for problem in problems.problems:
            assert problem.path == str(path), problem
            assert "Traceback" not in problem.message and "\n" not in problem.message, problem
            if problem.line is None:  # only a whole-file problem or a key missing at the top
                key = problem.message.split(":")[0]
                top_missing = problem.message.endswith("required key is missing") and \
                    "." not in key and "[" not in key
                assert problem.message == "not UTF-8 text" or top_missing, problem
            else:
                assert 1 <= problem.line <= lines, problem


@pytest.mark.parametrize("name", list(LOADERS))
def test_the_shipped_file_loads(tmp_path: Path, name: str) -> None:
    source, loader = LOADERS[name]
    path = tmp_path / name
    path.write_bytes(source.read_bytes())
    assert loader(path) is not None


@pytest.mark.parametrize("name", list(LOADERS))
def test_generated_toml_loads_or_is_a_positioned_problem(tmp_path_factory: pytest.TempPathFactory,
                                                         name: str) -> None:
    directory = tmp_path_factory.mktemp("generated")

    @given(_documents(name))
    def check(text: str) -> None:
        _load(directory, name, text)

    check()


@given(st.sampled_from(list(LOADERS)), st.binary(max_size=300))
def test_any_bytes_load_or_are_a_problem(tmp_path_factory: pytest.TempPathFactory, name: str,
                                         raw: bytes) -> None:
    _load(tmp_path_factory.mktemp("bytes"), name, raw)


def test_a_table_made_by_a_dotted_header_has_the_header_line(tmp_path: Path) -> None:
    """Found by the properties: `[a.b.c]` at the top of sources.toml was reported as
    "a: unknown key" with no line (only the table a.b.c itself had one)."""
    text = '[[source]]\nname = "x"\ndirect = true\n\n[a.b.c]\nd = 1\n'
    with pytest.raises(ProblemsError) as raised:
        _write_and_load(tmp_path, "sources.toml", text)
    assert [str(p) for p in raised.value.problems] == [
        f"{tmp_path / 'sources.toml'}:5: a: unknown key; known keys: source"]


def test_a_table_made_by_a_dotted_key_has_the_key_line(tmp_path: Path) -> None:
    text = 'extra.key = 1\n\n[[source]]\nname = "x"\ndirect = true\n'
    with pytest.raises(ProblemsError) as raised:
        _write_and_load(tmp_path, "sources.toml", text)
    assert [p.line for p in raised.value.problems] == [1]


def test_a_syntax_error_at_the_end_of_the_file_names_its_last_line(tmp_path: Path) -> None:
    """Found by the properties: an unclosed string reads "(at end of document)" in tomllib's
    message, and the problem had no line at all."""
    text = '[[source]]\nname = "x"\ndirect = true\nsubject = """unclosed\n\n'
    with pytest.raises(ProblemsError) as raised:
        _write_and_load(tmp_path, "sources.toml", text)
    [problem] = raised.value.problems
    assert problem.line == 5
    assert problem.message.startswith("TOML syntax: ") and "end of document" not in \
        problem.message


def _write_and_load(directory: Path, name: str, text: str) -> object:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return LOADERS[name][1](path)
