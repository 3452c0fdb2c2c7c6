"""The templates follow-up rules send: where they are found (the configured folder, then the
shipped one), the environment they render in, and every problem of one template with file and
line — found by parsing it, then rendering it with sample values.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from jinja2 import meta

from mailflow.errors import Problem
from mailflow.followups.vocabulary import VARIABLES, did_you_mean
from mailflow.starter import SHIPPED_TEMPLATES

# A follow-up template missing from the configured folder is taken from the shipped ones, so a
# templates folder made before follow-ups existed keeps working with the shipped rules. The
# configured folder always wins.


def template_dirs(templates_dir: Path) -> list[Path]:
    dirs = [templates_dir]
    if SHIPPED_TEMPLATES.is_dir() and templates_dir.resolve() != SHIPPED_TEMPLATES:
        dirs.append(SHIPPED_TEMPLATES)
    return dirs


def template_names(templates_dir: Path) -> tuple[str, ...]:
    return tuple(sorted({p.name for d in template_dirs(templates_dir) if d.is_dir()
                         for p in d.glob("*.j2")}))


def template_environment(templates_dir: Path) -> jinja2.Environment:
    """The rendering environment of `rewrite.render`, over `template_dirs`."""
    from mailflow.mail.rewrite.render import make_environment

    env = make_environment(templates_dir)
    env.loader = jinja2.FileSystemLoader([str(d) for d in template_dirs(templates_dir)])
    return env


_SAMPLES = (
    {"candidate_name": "山田 花子", "company_name": "株式会社サンプル", "position": "営業",
     "rejected_at": "2025年4月1日", "relay_link": "https://jobs.example.co.jp/r/SAMPLE",
     "apply_url": "https://www.example.co.jp/careers",
     "unsubscribe_link": "https://jobs.example.co.jp/u/SAMPLE",
     "consent_url": "https://jobs.example.co.jp/c/SAMPLE", "opening_title": "Javaエンジニア",
     "opening_description": "自社サービスのサーバーサイド開発", "opening_location": "東京都",
     "post": {"title": "会社説明会のお知らせ", "body": "1月20日に説明会を開きます。",
              "url": "https://www.example.co.jp/news/1"},
     "referral_url": "https://jobs.example.co.jp/f/SAMPLE"},
    {"candidate_name": "", "company_name": "株式会社サンプル", "position": "", "rejected_at": "",
     "relay_link": "", "apply_url": "", "unsubscribe_link": "https://jobs.example.co.jp/u/S",
     "consent_url": "https://jobs.example.co.jp/c/S", "opening_title": "",
     "opening_description": "", "opening_location": "",
     "post": {"title": "", "body": "", "url": ""}, "referral_url": ""},
)


def template_problems(env: jinja2.Environment, templates_dir: Path, name: str) -> list[Problem]:
    """The problems of the template `name`: unreadable, syntax, unknown variables, or else the
    first runtime error with the sample values."""
    found = next((d / name for d in template_dirs(templates_dir) if (d / name).is_file()),
                 templates_dir / name)
    path = str(found)
    try:
        source = found.read_text(encoding="utf-8")
        tree = env.parse(source)
        template = env.get_template(name)
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(path, None, f"cannot read template: {exc}")]
    except jinja2.TemplateSyntaxError as exc:
        return [Problem(path, exc.lineno, f"syntax error: {exc.message}")]
    problems = []
    for unknown in sorted(meta.find_undeclared_variables(tree) - set(VARIABLES)):
        line = min((n.lineno for n in tree.find_all(jinja2.nodes.Name) if n.name == unknown),
                   default=None)
        problems.append(Problem(path, line, f"unknown variable {unknown!r}"
                                            f"{did_you_mean(unknown, VARIABLES)}"))
    for sample in _SAMPLES if not problems else ():
        try:
            template.render(sample)
        except Exception as exc:  # any runtime error of the template is a problem to report
            line = getattr(exc, "lineno", None)
            return [Problem(path, line, getattr(exc, "message", None) or str(exc))]
    return problems
