"""`mailflow check`: everything that can be wrong before the daemon starts, found at once."""

from __future__ import annotations

from collections.abc import Callable

from mailflow.errors import Problem
from mailflow.privacy.at_rest import data_dir_problem
from mailflow.settings.config import Config
from mailflow.settings.secrets import missing_secrets


def _sources(config: Config) -> list[Problem]:
    from mailflow.intake import sources

    return sources.check(config.rules_dir)


def _stages(config: Config) -> list[Problem]:
    from mailflow.intake import stages

    return stages.check(config.rules_dir)


def _skills(config: Config) -> list[Problem]:
    from mailflow.profile import dictionary

    return dictionary.check(config.rules_dir)


def _rejection(config: Config) -> list[Problem]:
    from mailflow.rejection import recognise as rejection

    return rejection.check(config.rules_dir)


def _templates(config: Config) -> list[Problem]:
    from mailflow.mail.rewrite.render import check_templates

    return check_templates(config.templates_dir)


def _followups(config: Config) -> list[Problem]:
    from mailflow.followups import checks as followups

    return followups.check(config.rules_dir, config.templates_dir, config.privacy.purposes)


def _followup_templates(config: Config) -> list[Problem]:
    from mailflow.followups import checks as followups

    return followups.check_templates(config.rules_dir, config.templates_dir)


def _openings(config: Config) -> list[Problem]:
    from mailflow.openings import rules as openings

    return openings.check(config.rules_dir)


def _tags(config: Config) -> list[Problem]:
    from mailflow.pool import tags

    return tags.check(config.rules_dir, config.privacy.purposes)


# Checkers of rule files and templates: config -> problems.
STATIC_CHECKS: list[Callable[[Config], list[Problem]]] = [_sources, _stages, _skills,
                                                          _rejection, _templates, _followups,
                                                          _followup_templates, _openings, _tags]


def static_problems(config: Config) -> list[Problem]:
    problems: list[Problem] = []
    for check in STATIC_CHECKS:
        problems.extend(check(config))
    return problems


def start_problems(config: Config) -> list[Problem]:
    """What `check` reports and `run` refuses to start with, all at once: the rule files and
    templates, every secret the configuration needs that is not set, and a data directory
    other users can read or write."""
    unsafe = data_dir_problem(config.data_dir)
    at_rest = [Problem(str(config.data_dir), None, unsafe)] if unsafe else []
    return static_problems(config) + missing_secrets(config) + at_rest
