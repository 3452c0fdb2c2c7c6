"""What `mailflow check` and the daemon's start-up report about follow-ups: every problem of
`followups.toml`, and every problem of the templates its rules send, each with file and line.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import jinja2
from jinja2 import meta

from mailflow.errors import Problem, ProblemsError
from mailflow.followups.rules import FollowupRules, load_followups
from mailflow.followups.templates import template_environment, template_problems
from mailflow.settings import tomlpos


def check(rules_dir: Path, templates_dir: Path,
          purposes: Collection[str] | None = None) -> list[Problem]:
    """Every problem of `followups.toml`; with `purposes`, a purpose it names that the config
    does not declare is one of them."""
    try:
        load_followups(rules_dir, templates_dir, purposes)
    except ProblemsError as exc:
        return exc.problems
    return []


def check_templates(rules_dir: Path, templates_dir: Path) -> list[Problem]:
    """Every problem in the templates the follow-up rules send (syntax, unknown variables,
    runtime errors with sample values), each with file and line. A broken rule file is
    reported by `check`, not here."""
    try:
        rules = load_followups(rules_dir, templates_dir)
    except ProblemsError:
        return []
    env = template_environment(templates_dir)
    names = sorted({rule.send for rule in rules.rules if rule.send})
    found = [problem for name in names for problem in template_problems(env, templates_dir, name)]
    return found or _posts_without_content(rules, env)


def _posts_without_content(rules: FollowupRules, env: jinja2.Environment) -> list[Problem]:
    """A rule without `content` whose template or subject shows `post` would mail an empty
    post: each such rule, at its line in `followups.toml`."""
    if not any(rule.send and not rule.content for rule in rules.rules):
        return []
    _data, positions = tomlpos.load(Path(rules.path))
    problems = []
    for index, rule in enumerate(rules.rules):
        if not rule.send or rule.content:
            continue
        assert env.loader is not None
        source = env.loader.get_source(env, rule.send)[0]
        used = (meta.find_undeclared_variables(env.parse(source))
                | meta.find_undeclared_variables(env.parse(rule.subject)))
        if "post" in used:
            problems.append(Problem(rules.path, tomlpos.line_of(positions, ("followup", index)),
                                    f"followup[{index}] ({rule.name}): {rule.send} shows `post`, "
                                    "which only a rule with `content` fills"))
    return problems
