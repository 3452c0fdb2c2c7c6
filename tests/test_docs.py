"""Issue 17: the documentation is complete and true (datasette's documentation tests, for mailflow).

Each kind of name is read off the code — the config's pydantic models, the rule files' models, the
template variables, the click tree of commands and their options — and must have an entry in the
English reference (docs/reference.md) and the Japanese one (docs/ja/reference.md): a table row
whose first cell names it, under a heading that names its section (`[mailbox]`, `followups.toml`,
a template's file name); a command anywhere, with every option it takes on the same row. The
other way round, an entry must name something the code has. Every example file shipped
validates, every TOML block in the docs parses (and loads, where it is a config or a rule file),
every `mailflow …` command the docs name exists, and every relative link leads to a file and a
heading that exist. The last tests show each checker reporting exactly what it should.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import get_origin

import click
import pytest
from harness import PROJECT
from model_keys import model_keys, model_of
from pydantic import BaseModel

from mailflow.cli import _register, cli
from mailflow.errors import ProblemsError
from mailflow.followups import checks as followup_checks
from mailflow.followups import rules as followup_rules
from mailflow.followups import vocabulary
from mailflow.followups.templates import template_environment, template_problems
from mailflow.intake import sources, stages
from mailflow.mail.rewrite import render
from mailflow.openings import rules as opening_rules
from mailflow.profile import dictionary as skills_rules
from mailflow.rejection.recognise import rules as rejection_rules
from mailflow.settings.config import Config, Mailbox, Section, load_config
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES

REFERENCES = {"English": PROJECT / "docs" / "reference.md",
              "Japanese": PROJECT / "docs" / "ja" / "reference.md"}
DOCS = sorted({PROJECT / "README.md", PROJECT / "README.ja.md",
               *(PROJECT / "docs").glob("*.md"), *(PROJECT / "docs" / "ja").glob("*.md"),
               SHIPPED_TEMPLATES / "README.md"})
RULE_FILES: dict[str, type[BaseModel]] = {
    sources.FILE: sources.SourceRules,
    stages.FILE: stages.StageRules,
    rejection_rules.FILE: rejection_rules.RejectionFile,
    followup_rules.FILE: followup_rules.FollowupsFile,
    opening_rules.FILE: opening_rules.OpeningsFile,
    skills_rules.FILE: skills_rules.SkillsFile,
}
OPENING_SHORTLIST = "opening_shortlist.txt.j2"  # HR's shortlist: tests/test_openings.py renders it
SHARED_OPTIONS = {"--config", "--help", "--version"}  # documented once, for every command

_register()  # the commands, once: the click tree as `mailflow` has it


# -- reading the docs ---------------------------------------------------------------------------

_CODE = re.compile(r"`([^`]+)`")
_CELL = re.compile(r"(?<!\\)\|")
_FENCE = re.compile(r"^\s*```\s*(\S*)")


@dataclasses.dataclass
class Row:
    names: tuple[str, ...]  # the code spans of the first cell
    first: str  # the first cell
    text: str  # the whole row


@dataclasses.dataclass
class Heading:
    title: str
    names: frozenset[str]  # the code spans of the title
    rows: list[Row] = dataclasses.field(default_factory=list)


def _unescape(text: str) -> str:
    return text.replace("\\|", "|")


def headings(markdown: str) -> list[Heading]:
    """The page's headings, each with the table rows below it (until the next heading);
    code blocks are skipped."""
    found = [Heading("", frozenset())]
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        title = re.match(r"#{1,6} (.+)", line) if not fenced else None
        if title:
            found.append(Heading(title.group(1).strip(),
                                 frozenset(_CODE.findall(title.group(1)))))
        elif not fenced and line.lstrip().startswith("|"):
            cells = _CELL.split(line.strip().strip("|"))
            first = _unescape(cells[0]) if cells else ""
            names = tuple(_unescape(n) for n in _CODE.findall(cells[0])) if cells else ()
            found[-1].rows.append(Row(names, first, _unescape(line)))
    return found


def entries(page: list[Heading], section: str) -> set[str]:
    """The names in the rows under every heading that names `section`."""
    return {name for h in page if section in h.names for row in h.rows for name in row.names}


def read(path: Path) -> list[Heading]:
    return headings(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module", params=sorted(REFERENCES), ids=str)
def reference(request: pytest.FixtureRequest) -> list[Heading]:
    return read(REFERENCES[request.param])


# -- config keys: the pydantic models of settings/config.py -------------------------------------

def config_keys(model: type[Config] = Config) -> list[tuple[str, str]]:
    """(table, key) for every key of the config file, as TOML writes them: ("mailbox", "host"),
    ("privacy.retention", "rejected") …"""
    return [(table, key) for table, _, key in
            (k.rpartition(".") for k in model_keys(model, skip=("source",)))]


def undocumented_config(page: list[Heading], model: type[Config] = Config) -> list[str]:
    return [f"{section}.{key}" for section, key in config_keys(model)
            if key not in entries(page, f"[{section}]")]


def unknown_config(page: list[Heading], model: type[Config] = Config) -> list[str]:
    """Entries under a `[section]` heading that are no key of it (and sections that are none)."""
    known: dict[str, set[str]] = {}
    for section, key in config_keys(model):
        known.setdefault(section, set()).add(key)
    found = []
    for heading in page:
        for name in heading.names:
            section = re.fullmatch(r"\[([\w.]+)\]", name)
            if section is None:
                continue
            keys = known.get(section.group(1), set())
            found += [f"{section.group(1)}.{row_name}" for row in heading.rows
                      for row_name in row.names if row_name not in keys]
            if not keys:
                found.append(name)
    return found


# -- rule keys: the models each rule file is validated with ------------------------------------

def rule_file_keys(file_model: type[BaseModel]) -> list[str]:
    """The tables of a rule file (`[[rule]]`) and every key they take, nested ones with their
    parents (`after`, `after.event`), relative to the table."""
    tables = file_model.model_fields
    keys = []
    for name, field in tables.items():
        inner = model_of(field.annotation)
        assert inner is not None, f"{file_model.__name__}.{name} is not a table"
        keys.append(f"[[{name}]]" if get_origin(field.annotation) is list else f"[{name}]")
        keys += model_keys(inner, "" if len(tables) == 1 else f"{name}.", parents=True)
    return keys


def undocumented_rule_keys(page: list[Heading], file_name: str,
                           file_model: type[BaseModel]) -> list[str]:
    documented = entries(page, file_name)
    return [key for key in rule_file_keys(file_model) if key not in documented]


def unknown_rule_keys(page: list[Heading], file_name: str,
                      file_model: type[BaseModel]) -> list[str]:
    keys = set(rule_file_keys(file_model))
    return sorted(entries(page, file_name) - keys)


# -- template variables: what the renderers give the templates ---------------------------------

def template_variables() -> dict[tuple[str, ...], tuple[str, ...]]:
    """Template file names -> the variables they are rendered with: the invitation's
    (`render.VARIABLES` and `InvitationContext`), and the follow-ups' (`vocabulary.VARIABLES`)
    for every template the shipped follow-up rules send."""
    invitation = tuple(dict.fromkeys(
        [*render.VARIABLES, *(f.name for f in dataclasses.fields(render.InvitationContext))]))
    shipped = followup_rules.load_followups(SHIPPED_RULES, SHIPPED_TEMPLATES)
    followups = tuple(sorted({rule.send for rule in shipped.rules if rule.send}))
    assert followups, "the shipped follow-up rules send no template"
    return {render.TEMPLATES: invitation, followups: vocabulary.VARIABLES}


def undocumented_variables(page: list[Heading], templates: tuple[str, ...],
                           variables: tuple[str, ...]) -> list[str]:
    return [f"{template}: {variable}" for template in templates for variable in variables
            if variable not in entries(page, template)]


# -- commands: the click tree ------------------------------------------------------------------

def commands(group: click.Group, path: tuple[str, ...] = ()
             ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command one can run: the leaves, and the groups that run without a subcommand
    (`mailflow ledger`)."""
    for name in sorted(group.commands):
        command = group.commands[name]
        here = (*path, name)
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                yield here, command
            yield from commands(command, here)
        else:
            yield here, command


def long_options(command: click.Command) -> list[str]:
    return sorted({opt for param in command.params if isinstance(param, click.Option)
                   for opt in (*param.opts, *param.secondary_opts)
                   if opt.startswith("--")} - SHARED_OPTIONS)


def command_path(text: str) -> tuple[str, ...]:
    """`mailflow rules test --at DATETIME` -> ("rules", "test"): the words up to the first
    option or placeholder."""
    words = text.split()
    if not words or words[0] != "mailflow":
        return ()
    path = []
    for word in words[1:]:
        if not re.fullmatch(r"[a-z][a-z0-9-]*", word):
            break
        path.append(word)
    return tuple(path)


def command_rows(page: list[Heading]) -> dict[tuple[str, ...], list[Row]]:
    found: dict[tuple[str, ...], list[Row]] = {}
    for heading in page:
        for row in heading.rows:
            for name in row.names:
                path = command_path(name)
                if path:
                    found.setdefault(path, []).append(row)
    return found


def _has_option(text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def undocumented_commands(page: list[Heading], root: click.Group = cli) -> list[str]:
    """`mailflow X` for a command with no row, `mailflow X --opt` for an option on none of its
    rows."""
    rows = command_rows(page)
    missing = []
    for path, command in commands(root):
        name = " ".join(("mailflow", *path))
        if path not in rows:
            missing.append(name)
            continue
        missing += [f"{name} {option}" for option in long_options(command)
                    if not any(_has_option(row.text, option) for row in rows[path])]
    return missing


def unknown_commands(page: list[Heading], root: click.Group = cli) -> list[str]:
    """Rows for commands that do not exist, and options in a row's first cell that its command
    does not take."""
    known = dict(commands(root))
    found = []
    for path, rows in command_rows(page).items():
        name = " ".join(("mailflow", *path))
        if path not in known:
            found.append(name)
            continue
        options = set(long_options(known[path])) | SHARED_OPTIONS
        found += [f"{name} {option}" for row in rows
                  for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", row.first)
                  if option not in options]
    return found


# -- the reference has every name, and only real ones -------------------------------------------

def test_every_config_key_is_in_the_reference(reference: list[Heading]) -> None:
    assert undocumented_config(reference) == []
    assert unknown_config(reference) == []


@pytest.mark.parametrize("file_name", sorted(RULE_FILES))
def test_every_rule_key_is_in_the_reference(reference: list[Heading], file_name: str) -> None:
    assert undocumented_rule_keys(reference, file_name, RULE_FILES[file_name]) == []
    assert unknown_rule_keys(reference, file_name, RULE_FILES[file_name]) == []


def test_every_template_variable_is_in_the_reference(reference: list[Heading]) -> None:
    for templates, variables in template_variables().items():
        assert undocumented_variables(reference, templates, variables) == []
        for template in templates:
            assert sorted(entries(reference, template) - set(variables)) == []


def test_the_templates_readme_has_every_variable() -> None:
    """The README `mailflow init` copies beside the templates a company edits."""
    readme = read(SHIPPED_TEMPLATES / "README.md")
    for templates, variables in template_variables().items():
        assert undocumented_variables(readme, templates, variables) == []


def test_every_command_and_option_is_in_the_reference(reference: list[Heading]) -> None:
    assert ("check",) in dict(commands(cli))  # the tree is there (`init` once it lands)
    assert undocumented_commands(reference) == []
    assert unknown_commands(reference) == []


# -- the examples shipped and shown are true ----------------------------------------------------

def test_the_shipped_examples_validate() -> None:
    config = load_config(PROJECT / "config.example.toml")
    assert config.rules.dir is None and config.rules.templates_dir is None  # the shipped ones
    assert config.rules_dir == SHIPPED_RULES and config.templates_dir == SHIPPED_TEMPLATES
    assert sources.load_sources(SHIPPED_RULES).source
    assert stages.load_stages(SHIPPED_RULES).rule
    assert rejection_rules.load_rejection_rules(SHIPPED_RULES).rules
    assert followup_rules.load_followups(SHIPPED_RULES, SHIPPED_TEMPLATES).rules
    assert render.check_templates(SHIPPED_TEMPLATES) == []
    assert followup_checks.check_templates(SHIPPED_RULES, SHIPPED_TEMPLATES) == []
    env = template_environment(SHIPPED_TEMPLATES)
    others = sorted(p.name for p in SHIPPED_TEMPLATES.glob("*.j2")
                    if p.name not in (*render.TEMPLATES, OPENING_SHORTLIST))
    assert others  # the follow-up templates, even one no shipped rule sends
    for name in others:
        assert template_problems(env, SHIPPED_TEMPLATES, name) == []


def toml_blocks(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every ```toml block of a page."""
    info: str | None = None  # the open fence's language
    block: list[str] = []
    start = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = _FENCE.match(line)
        if fence and info is None:
            info, block, start = fence.group(1), [], number
        elif fence:
            if info == "toml":
                yield start, "\n".join(block)
            info = None
        elif info is not None:
            block.append(line)


def load_toml_example(text: str, where: Path) -> str:
    """Load an example as the file it stands for; what it was, for the test's message."""
    data = tomllib.loads(text)
    sections = set(Config.model_fields) - {"source"}
    where.mkdir(parents=True, exist_ok=True)
    tables = set(data)
    if tables <= sections:
        (where / "config.toml").write_text(text, encoding="utf-8")
        load_config(where / "config.toml")
        return "config"
    loaders = {"source": [(sources.FILE, sources.load_sources)],
               "rule": [(rejection_rules.FILE, rejection_rules.load_rejection_rules),
                        (stages.FILE, stages.load_stages)],
               "followup": [(followup_rules.FILE,
                             lambda d: followup_rules.load_followups(d, SHIPPED_TEMPLATES))]}
    assert len(tables) == 1 and next(iter(tables)) in loaders, \
        f"neither a config nor a rule file: tables {sorted(tables)}"
    problems: list[str] = []
    for file_name, loader in loaders[next(iter(tables))]:
        (where / file_name).write_text(text, encoding="utf-8")
        try:
            loader(where)
        except ProblemsError as exc:
            problems += [str(p) for p in exc.problems]
        else:
            return file_name
    raise AssertionError("; ".join(problems))


BLOCKS = [(path, line) for path in DOCS for line, _text in toml_blocks(path)]


@pytest.mark.parametrize(("path", "line"), BLOCKS,
                         ids=[f"{p.relative_to(PROJECT)}:{n}" for p, n in BLOCKS])
def test_every_toml_example_loads(path: Path, line: int, tmp_path: Path) -> None:
    text = dict(toml_blocks(path))[line]
    load_toml_example(text, tmp_path)


def test_the_docs_show_toml_examples() -> None:
    assert len(BLOCKS) >= 4  # the checker finds them: an empty list would pass anything


def _code(path: Path) -> Iterator[str]:
    """The code of a page: its code spans, and the lines of its code blocks without a shell
    comment (`make demo    # … run mailflow on its demo`)."""
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif fenced:
            yield re.sub(r"(^|\s)#\s.*$", "", line)
        else:
            yield from _CODE.findall(line)


# Commands the docs name as not built yet (say so next to them); each must still be missing
# from the tree: once one lands, take it out of here and document it in the reference.
PLANNED: set[str] = set()


def unknown_mentions(code: Iterator[str], root: click.Group = cli) -> list[str]:
    """`mailflow WORD …` that names no command (or a subcommand a group does not have)."""
    found = []
    for text in code:
        for match in re.finditer(r"(?<![\w./#＃-])mailflow((?: +[a-z][a-z0-9-]*)+)", text):
            words = match.group(1).split()
            while words and words[0] == "mailflow":  # `sudo -u mailflow mailflow candidates`
                words.pop(0)
            if words and words[0] in PLANNED and root is cli:
                continue
            group: click.Command = root
            for word in words:
                if not isinstance(group, click.Group):
                    break  # the rest are arguments
                if word not in group.commands:
                    found.append(f"mailflow {' '.join(words)}")
                    break
                group = group.commands[word]
    return found


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(PROJECT)) for p in DOCS])
def test_every_command_named_exists(path: Path) -> None:
    assert unknown_mentions(_code(path)) == []


def test_the_planned_commands_are_not_built_yet() -> None:
    assert sorted(PLANNED & set(cli.commands)) == []


def slug(title: str, seen: dict[str, int]) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens, a
    number for a repeated one."""
    text = "".join(c for c in title.lower()
                   if c.isalnum() or c in "-_ " or unicodedata.category(c).startswith("M"))
    base = text.replace(" ", "-")
    count = seen.get(base, 0)
    seen[base] = count + 1
    return base if count == 0 else f"{base}-{count}"


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    return {slug(h.title, seen) for h in read(path)[1:]}


def broken_links(path: Path) -> list[str]:
    broken = []
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        missing_anchor = bool(anchor) and linked.suffix == ".md" and anchor not in anchors(linked)
        if not linked.exists() or missing_anchor:
            broken.append(target)
    return broken


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(PROJECT)) for p in DOCS])
def test_every_link_leads_somewhere(path: Path) -> None:
    assert broken_links(path) == []


def test_the_readme_keeps_the_two_commands_first() -> None:
    for readme in ("README.md", "README.ja.md"):
        text = (PROJECT / readme).read_text(encoding="utf-8")
        first = text.index("```sh")
        assert text[first:].splitlines()[1].startswith("make demo"), readme
        assert text[first:].splitlines()[2].startswith("make test"), readme
    makefile = (PROJECT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_both_readmes_have_the_same_sections() -> None:
    english = [h for h in read(PROJECT / "README.md") if h.title]
    japanese = [h for h in read(PROJECT / "README.ja.md") if h.title]
    assert len(english) == len(japanese)


# -- the checkers bite --------------------------------------------------------------------------

def test_an_undocumented_config_key_is_reported_exactly() -> None:
    page = read(REFERENCES["English"])

    class MailboxPlus(Mailbox):
        sparkle: bool = False

    class WithKey(Config):
        mailbox: MailboxPlus = MailboxPlus()

    class Shiny(Section):
        polish: int = 1

    class WithSection(Config):
        shiny: Shiny = Shiny()

    assert undocumented_config(page, WithKey) == ["mailbox.sparkle"]
    assert undocumented_config(page, WithSection) == ["shiny.polish"]
    stale = headings(REFERENCES["English"].read_text(encoding="utf-8")
                     + "\n### `[mailbox]`\n\n| `prot` | `993` | a typo |\n")
    assert unknown_config(stale) == ["mailbox.prot"]


def test_an_undocumented_rule_key_is_reported_exactly() -> None:
    page = read(REFERENCES["English"])

    class RuleSpecPlus(rejection_rules.RuleSpec):
        weight: int = 0

    class RejectionFilePlus(rejection_rules.RejectionFile):
        rule: list[RuleSpecPlus]

    class WhenPlus(followup_rules.WhenSpec):
        tags_some: tuple[str, ...] = ()

    class FollowupPlus(followup_rules.RuleSpec):
        when: WhenPlus = WhenPlus()

    class FollowupsFilePlus(followup_rules.FollowupsFile):
        followup: list[FollowupPlus]

    assert undocumented_rule_keys(page, "rejection.toml", RejectionFilePlus) == ["weight"]
    assert undocumented_rule_keys(page, "followups.toml", FollowupsFilePlus) == [
        "when.tags_some"]
    # the same key documented for another file does not count
    assert undocumented_rule_keys(page, "stages.toml", RejectionFilePlus) != []


def test_an_undocumented_template_variable_is_reported_exactly() -> None:
    page = read(REFERENCES["Japanese"])
    (templates, variables), _followups = template_variables().items()
    assert undocumented_variables(page, templates, (*variables, "shoe_size")) == [
        f"{template}: shoe_size" for template in templates]


def test_an_undocumented_command_or_option_is_reported_exactly() -> None:
    page = read(REFERENCES["English"])
    root = click.Group("mailflow", commands=dict(cli.commands))
    root.add_command(click.Command("frobnicate", callback=lambda: None))
    check = cli.commands["check"]
    root.add_command(click.Command(
        "check", params=[*check.params, click.Option(["--shiny"], is_flag=True)]))
    assert undocumented_commands(page, root) == ["mailflow check --shiny", "mailflow frobnicate"]
    assert unknown_commands(page, root) == []
    del root.commands["explain"]
    assert unknown_commands(page, root) == ["mailflow explain"]
    assert unknown_mentions(iter(["mailflow explain x.eml", "mailflow rules chek",
                                  "#mailflow reason=x", "sudo -u mailflow mailflow frob"])) == [
        "mailflow rules chek", "mailflow frob"]


def test_a_broken_toml_example_or_link_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ProblemsError, match="prot"):
        load_toml_example('[mailbox]\nprot = 993\n', tmp_path / "a")
    with pytest.raises(AssertionError, match="needs a condition"):
        load_toml_example('[[rule]]\nname = "x"\n', tmp_path / "b")
    assert load_toml_example('[[rule]]\nname = "x"\nstage = "y"\nsubject = "z"\n',
                             tmp_path / "c") == "stages.toml"
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [bad](#nowhere) [gone](missing.md)\n")
    assert broken_links(page) == ["#nowhere", "missing.md"]
