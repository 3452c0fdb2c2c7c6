"""Render the Career Relay invitation from the admin's templates, and check those templates.

Two templates live in the configured templates directory: ``relay_invitation.txt.j2`` (plain
text, not escaped) and ``relay_invitation.html.j2`` (HTML, every variable autoescaped). Undefined
variables are errors (StrictUndefined). mailflow puts ``RELAY_MARK`` in front of the rendered HTML
itself, so that an edited template cannot lose it; ``is_already_invited`` looks for that mark and
for a tracked link.
"""

from __future__ import annotations

import functools
import html as htmllib
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import jinja2
from jinja2 import meta

from mailflow.errors import Problem

TEXT_TEMPLATE = "relay_invitation.txt.j2"
HTML_TEMPLATE = "relay_invitation.html.j2"
TEMPLATES = (TEXT_TEMPLATE, HTML_TEMPLATE)
RELAY_MARK = "<!-- mailflow:relay -->"
VARIABLES = ("link", "candidate_name", "company_name", "position", "consent_url")


@dataclass(frozen=True)
class InvitationContext:
    """The template variables (documented in templates/README.md)."""

    link: str
    company_name: str
    candidate_name: str = ""
    position: str = ""
    consent_url: str = ""  # the candidate's consent page ({public_url}/c/<token>)


@dataclass(frozen=True)
class Invitation:
    """The rendered invitation: plain text, and HTML starting with ``RELAY_MARK``."""

    text: str
    html: str


_SAMPLES = (
    InvitationContext(
        "https://jobs.example.co.jp/r/SAMPLE", "株式会社サンプル", "山田 花子", "営業",
        "https://jobs.example.co.jp/c/SAMPLE"
    ),
    InvitationContext("https://jobs.example.co.jp/r/SAMPLE", "株式会社サンプル"),
)


def make_environment(templates_dir: Path) -> jinja2.Environment:
    """Templates from ``templates_dir``; autoescape for ``*.html.j2`` only; strict undefined."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",), default_for_string=False, default=False
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


@functools.lru_cache(maxsize=8)
def _environment(templates_dir: Path) -> jinja2.Environment:
    """One environment per folder: templates are compiled once and recompiled when their file
    changes (jinja2's auto_reload checks the modification time)."""
    return make_environment(templates_dir)


def render_invitation(templates_dir: Path, context: InvitationContext) -> Invitation:
    """Render both templates; raises jinja2 errors (``check_templates`` reports them nicely)."""
    env = _environment(templates_dir)
    values = asdict(context)
    text = env.get_template(TEXT_TEMPLATE).render(values).strip("\n")
    body = env.get_template(HTML_TEMPLATE).render(values).strip("\n")
    return Invitation(text, f"{RELAY_MARK}\n{body}")


def _template_line(exc: BaseException, filename: str) -> int | None:
    """The template line of the innermost traceback frame that ran ``filename``."""
    line = getattr(exc, "lineno", None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename:
            line = frame.lineno
    return line


def _undeclared(env: jinja2.Environment, source: str, path: str) -> list[Problem]:
    tree = env.parse(source)
    unknown = sorted(meta.find_undeclared_variables(tree) - set(VARIABLES))
    problems: list[Problem] = []
    for name in unknown:
        lines = [node.lineno for node in tree.find_all(jinja2.nodes.Name) if node.name == name]
        known = ", ".join(VARIABLES)
        problems.append(
            Problem(path, min(lines, default=None), f"unknown variable {name!r} (known: {known})")
        )
    return problems


def _check_one(env: jinja2.Environment, templates_dir: Path, name: str) -> list[Problem]:
    path = templates_dir / name
    if not path.is_file():
        return [Problem(str(path), None, "template missing")]
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(str(path), None, f"cannot read template: {exc}")]
    try:
        problems = _undeclared(env, source, str(path))
        template = env.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        return [Problem(str(path), exc.lineno, f"syntax error: {exc.message}")]
    if problems:
        return problems
    for sample in _SAMPLES:
        try:
            template.render(asdict(sample))
        except Exception as exc:  # any template runtime error is a problem to report
            message = getattr(exc, "message", None) or str(exc)
            return [Problem(str(path), _template_line(exc, template.filename or ""), message)]
    return []


def check_templates(templates_dir: Path) -> list[Problem]:
    """Every problem in the invitation templates, all at once, each with file and line."""
    env = make_environment(templates_dir)
    return [problem for name in TEMPLATES for problem in _check_one(env, templates_dir, name)]


def is_already_invited(text: str, html: str, public_url: str) -> bool:
    """Whether a mail already carries an invitation: the HTML mark, or a tracked ``/r/`` link."""
    if RELAY_MARK in html:
        return True
    prefix = public_url.rstrip("/") + "/r/"
    return any(prefix in body or htmllib.escape(prefix) in body for body in (text, html))
