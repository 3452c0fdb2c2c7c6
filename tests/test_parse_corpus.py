"""Every corpus mail parses and reads as a person would read it (corpus_expectations.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from mailflow.parse import Mail, parse_mail

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent.parent / "shared" / "corpus" / "mail"
EXPECTATIONS: dict[str, dict[str, Any]] = tomllib.loads(
    (HERE / "corpus_expectations.toml").read_text(encoding="utf-8")
)

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus folder absent: {CORPUS}")


def corpus_files() -> list[str]:
    return sorted(p.name for p in CORPUS.glob("*.eml")) if CORPUS.is_dir() else []


def parsed(name: str) -> Mail:
    return parse_mail((CORPUS / name).read_bytes())


def test_every_corpus_file_has_an_expectation_and_every_expectation_a_file() -> None:
    files = set(corpus_files())
    assert len(files) == 72
    assert sorted(files - set(EXPECTATIONS)) == [], "corpus files without expectations"
    assert sorted(set(EXPECTATIONS) - files) == [], "expectations without corpus files"


@pytest.mark.parametrize("name", corpus_files())
def test_corpus_mail_reads_as_expected(name: str) -> None:
    mail = parsed(name)
    expected = EXPECTATIONS[name]
    assert mail.subject == expected["subject"]
    readable = mail.readable_text
    if expected["body"]:
        assert expected["body"] in readable
    else:
        assert readable.strip() == ""
    names = [a.filename for a in mail.attachments if a.filename]
    assert names == expected.get("attachments", [])
    if "problem" in expected:
        assert any(expected["problem"] in p for p in mail.problems), mail.problems
    assert len(mail.body_hash) == 64


@pytest.mark.parametrize("name", corpus_files())
def test_no_replacement_character_where_bytes_are_valid_japanese(name: str) -> None:
    # Every corpus body decodes strictly in its label or in UTF-8, CP932 or EUC-JP, so no
    # decoder-made U+FFFD may appear. (jpmobile__iphone-mail3 carries two U+FFFD *in its UTF-8
    # bytes*: the sender cut a quote mid-character; strict decoding keeps them, exact stays True.)
    mail = parsed(name)
    for part in mail.body_parts:
        assert part.decoded.exact, (part.part, part.decoded.problems)
    texts = [mail.subject, *(a.filename or "" for a in mail.attachments)]
    texts += [a.name for a in (*mail.from_, *mail.to, *mail.cc, *mail.reply_to)]
    assert [t for t in texts if "\ufffd" in t] == []


def test_literal_replacement_characters_survive_strict_decoding() -> None:
    mail = parsed("jpmobile__iphone-mail3.eml")
    assert "ああ\ufffd\ufffd△" in mail.text
    assert mail.exact


def test_every_corpus_mail_decodes_exactly() -> None:
    assert [name for name in corpus_files() if not parsed(name).exact] == []
