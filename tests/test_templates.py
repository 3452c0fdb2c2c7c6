"""The shipped invitation templates render, are documented, and broken ones are reported."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from mailflow.errors import Problem
from mailflow.mail.rewrite.render import (
    HTML_TEMPLATE,
    RELAY_MARK,
    TEMPLATES,
    TEXT_TEMPLATE,
    VARIABLES,
    InvitationContext,
    check_templates,
    is_already_invited,
    render_invitation,
)
from mailflow.starter import SHIPPED_TEMPLATES

SHIPPED = SHIPPED_TEMPLATES
LINK = "https://jobs.example.co.jp/r/AbC123"


def _copy(tmp_path: Path) -> Path:
    for name in TEMPLATES:
        shutil.copy(SHIPPED / name, tmp_path / name)
    return tmp_path


def test_shipped_templates_have_no_problems() -> None:
    assert check_templates(SHIPPED) == []


def test_defaults_render_in_japanese_with_the_link() -> None:
    invitation = render_invitation(
        SHIPPED, InvitationContext(LINK, "株式会社テスト", "山田 太郎", "営業職")
    )
    assert "キャリアリレー制度" in invitation.text and invitation.text.endswith(LINK)
    assert "山田 太郎様" in invitation.text and "営業職" in invitation.text
    assert invitation.html.startswith(RELAY_MARK)
    assert f'<a href="{LINK}">' in invitation.html
    assert is_already_invited(invitation.text, invitation.html, "https://jobs.example.co.jp")


def test_empty_optional_variables_render_cleanly() -> None:
    invitation = render_invitation(SHIPPED, InvitationContext(LINK, "株式会社テスト"))
    assert "あなたのスキル" in invitation.text
    assert "様" not in invitation.text and "ご応募:" not in invitation.text


def test_html_autoescapes_but_text_does_not() -> None:
    name = "<script>alert(1)</script>"
    invitation = render_invitation(SHIPPED, InvitationContext(LINK, "A&B", name))
    assert "<script>" not in invitation.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in invitation.html
    assert "A&amp;B" in invitation.html
    assert name in invitation.text


def test_undefined_variable_is_reported_with_path_and_line(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / HTML_TEMPLATE
    path.write_text(
        path.read_text(encoding="utf-8") + "<p>{{ candidate_nmae }}</p>\n", encoding="utf-8"
    )
    line = len(path.read_text(encoding="utf-8").splitlines())
    (problem,) = check_templates(folder)
    assert problem.path == str(path) and problem.line == line
    assert "candidate_nmae" in problem.message


def test_syntax_error_and_missing_template_are_all_reported(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / TEXT_TEMPLATE).write_text("line one\n{% if link %}\nno end\n", encoding="utf-8")
    (folder / HTML_TEMPLATE).unlink()
    problems = check_templates(folder)
    assert [(p.path, p.line) for p in problems] == [
        (str(folder / TEXT_TEMPLATE), 3),
        (str(folder / HTML_TEMPLATE), None),
    ]
    assert problems[0].message.startswith("syntax error")


def test_runtime_error_is_reported_with_its_line(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / TEXT_TEMPLATE).write_text("{{ link }}\n\n{{ link.nope.deeper }}\n", encoding="utf-8")
    assert check_templates(folder) == [
        Problem(str(folder / TEXT_TEMPLATE), 3, "'str object' has no attribute 'nope'")
    ]


def test_every_variable_is_documented_in_templates_and_readme() -> None:
    readme = (SHIPPED / "README.md").read_text(encoding="utf-8")
    for name in TEMPLATES:
        source = (SHIPPED / name).read_text(encoding="utf-8")
        comment = re.match(r"\{#(.*?)#\}", source, re.DOTALL)
        assert comment is not None, name
        for variable in VARIABLES:
            assert re.search(rf"^\s+{variable}\s", comment.group(1), re.MULTILINE), variable
            assert f"| `{variable}` |" in readme
        assert f"`{name}`" in readme
