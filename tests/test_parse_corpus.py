"""Every corpus mail parses and reads as a person would read it (corpus/expectations.toml).

Reads tests/corpus/mail, and ../shared/corpus/mail for the GPL/AGPL files when it is there.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from typing import Any

import corpus
import pytest

from mailflow.mail.parse import Mail, parse_mail

EXPECTATIONS: dict[str, dict[str, Any]] = tomllib.loads(
    (corpus.DIR / "expectations.toml").read_text(encoding="utf-8")
)
PERMISSIVE = re.compile(r"(MIT|BSD-[0-9]-Clause|Apache-2\.0 OR MIT|PSF-2\.0) \(")


def parsed(name: str) -> Mail:
    return parse_mail(corpus.read(name))


def test_every_corpus_file_has_an_expectation_and_every_expectation_a_file() -> None:
    local = set(corpus.local_names())
    assert len(local) == 64
    assert sorted(local & corpus.SHARED_ONLY) == [], "GPL/AGPL files copied into tests/corpus"
    files = local | corpus.SHARED_ONLY
    if corpus.SHARED.is_dir():
        assert set(corpus.shared_names()) == files
    assert len(files) == 72
    assert sorted(files - set(EXPECTATIONS)) == [], "corpus files without expectations"
    assert sorted(set(EXPECTATIONS) - files) == [], "expectations without corpus files"


def test_local_copies_are_the_permissive_files_of_sources_md_byte_for_byte() -> None:
    rows = {}
    for line in (corpus.DIR / "SOURCES.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        if cells and cells[0].endswith(".eml"):
            rows[cells[0]] = cells
    assert sorted(rows) == corpus.local_names()
    for name, cells in rows.items():
        license_, sha256 = cells[4], cells[6]
        assert PERMISSIVE.match(license_) and "GPL" not in license_, (name, license_)
        raw = corpus.read(name)
        assert hashlib.sha256(raw).hexdigest()[:16] == sha256, name
        if corpus.SHARED.is_dir():
            assert raw == (corpus.SHARED / name).read_bytes(), name


@pytest.mark.parametrize("name", corpus.names())
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


@pytest.mark.parametrize("name", corpus.names())
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
    files = corpus.files()
    assert len(files) >= 64
    assert [p.name for p in files if not parse_mail(p.read_bytes()).exact] == []
