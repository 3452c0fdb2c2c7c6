"""What `mailflow check` and the daemon's start-up report about follow-ups: every problem of
`followups.toml`, and every problem of the templates its rules send, each with file and line.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from mailflow.errors import Problem, ProblemsError
from mailflow.followups.rules import load_followups
from mailflow.followups.templates import template_environment, template_problems


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
    return [problem for name in names for problem in template_problems(env, templates_dir, name)]
