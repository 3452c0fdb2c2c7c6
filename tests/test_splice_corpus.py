"""Splice every corpus mail: bytes outside changed leaves stay identical, leaves read back right.

Reads tests/corpus/mail (the 64 permissively licensed mails), and ../shared/corpus/mail (all 72)
for the GPL/AGPL ones when it is there; only those skip when it is absent.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import corpus
import pytest

from mailflow.mail.charset import decode_text, encode_text
from mailflow.mail.rewrite import transfer
from mailflow.mail.rewrite.leaves import LeafKind, find_body_leaves
from mailflow.mail.rewrite.mime import parse_message
from mailflow.mail.rewrite.splice import (
    LeafChange,
    Refusal,
    Spliced,
    Transform,
    set_meta_charset,
    splice,
)

FILES = corpus.files()

# ① ～ 髙 do not fit ISO-2022-JP: such leaves must switch to UTF-8.
WIDE = "\nキャリアリレー制度①のご案内～髙橋 https://jobs.example.co.jp/r/AbC123\n"
# Kanji and kana only: every Japanese charset holds them, so the charset must stay.
KANJI = "\nキャリアリレー制度のご案内 https://jobs.example.co.jp/r/AbC123\n"
JAPANESE_CHARSETS = {"iso-2022-jp", "shift_jis", "euc-jp", "utf-8"}

NO_BODY = "no text/plain or text/html body part outside attachments"
REFUSED = {
    "enmime__multipart-wo-boundary.eml": [NO_BODY],
    "kopano__kc-138-1.eml": [NO_BODY],
    "mailparser__base64encodedroot.eml": [NO_BODY],
    "mimekit__missing-subtype.eml": [NO_BODY],
    "rubymail__content_transfer_encoding_spam.eml": [
        "text/plain part at byte 0: unknown Content-Transfer-Encoding '7vladi.pimenovit'"
    ],
    "rubymail__missing_body.eml": [NO_BODY],
    "rubymail__multipart_report_multiple_status.eml": [NO_BODY],
    "rubymail__raw_email_with_nested_attachment.eml": [
        "text/plain part at byte 570: inside multipart/signed; a rewrite would break the signature"
    ],
    "stalwart__malformed-017.eml": [NO_BODY],
    "stalwart__thirdparty-004.eml": [
        "text/plain part at byte 67: unknown Content-Transfer-Encoding '6bit'"
    ],
}


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n")


def _appender(suffix: str) -> Transform:
    def transform(text: str, kind: LeafKind) -> str:
        return text + (suffix if kind == "plain" else suffix.replace("\n", "<br>\n"))

    return transform


def _expected(change: LeafChange, suffix: str) -> str:
    added = suffix if change.leaf.kind == "plain" else suffix.replace("\n", "<br>\n")
    text = change.old_text + added
    if change.leaf.kind == "html" and change.new_charset == "utf-8":
        switched = set_meta_charset(text, "UTF-8")
        if switched == change.new_text:
            return switched
    return text


def _assert_outside_identical(raw: bytes, result: Spliced) -> None:
    old_pos = new_pos = 0
    for change in sorted(result.changed, key=lambda c: c.leaf.header_start):
        outside = raw[old_pos : change.leaf.header_start]
        assert result.raw[new_pos : change.new_start] == outside
        old_pos, new_pos = change.leaf.body_end, change.new_end
    assert result.raw[new_pos:] == raw[old_pos:]
    assert len(result.raw) - new_pos == len(raw) - old_pos


def _assert_other_headers_identical(raw: bytes, new: bytes, change: LeafChange) -> None:
    rewritable = {"content-type", "content-transfer-encoding", "mime-version"}
    new_leaf = next(leaf for leaf in find_body_leaves(new) if leaf.kind == change.leaf.kind)
    assert new_leaf.header_start == change.new_start
    assert new_leaf.body_end == change.new_end

    def kept(data: bytes, fields: object) -> list[bytes]:
        assert isinstance(fields, tuple)
        return [data[f.start : f.end] for f in fields if f.key not in rewritable]

    assert kept(new, new_leaf.header.fields) == kept(raw, change.leaf.header.fields)


def _read_back_own(new: bytes, change: LeafChange) -> str:
    leaf = next(leaf for leaf in find_body_leaves(new) if leaf.kind == change.leaf.kind)
    cte = transfer.normalise(leaf.cte)
    assert cte is not None
    decoded = decode_text(transfer.decode(new[leaf.body_start : leaf.body_end], cte), leaf.charset)
    assert decoded.exact, decoded.problems
    return decoded.text


def _read_back_stdlib(new: bytes, change: LeafChange) -> str:
    entity = email.message_from_bytes(
        new[change.new_start : change.new_end], policy=email.policy.default
    )
    assert isinstance(entity, EmailMessage)
    content = entity.get_content()
    assert isinstance(content, str)
    return content


def _splice_and_check(path: Path, suffix: str) -> Spliced:
    raw = path.read_bytes()
    result = splice(raw, _appender(suffix))
    assert result.changed, "every decodable body leaf gets the invitation"
    assert len(result.changed) == len(find_body_leaves(raw))
    _assert_outside_identical(raw, result)
    for change in result.changed:
        _assert_other_headers_identical(raw, result.raw, change)
        expected = _lf(_expected(change, suffix))
        assert _lf(change.new_text) == expected
        own = _read_back_own(result.raw, change)
        assert _lf(own) == expected
        assert own.count("\ufffd") == change.old_text.count("\ufffd")
        if change.new_charset in ("utf-8", "us-ascii", "utf-16le", "iso-2022-jp"):
            assert _lf(_read_back_stdlib(result.raw, change)) == expected
    return result


def test_corpus_is_all_there() -> None:
    assert len(corpus.local_names()) == 64
    if corpus.SHARED.is_dir():
        assert len(FILES) == 72


def test_refusals_are_exactly_the_undecodable_ones() -> None:
    refused: dict[str, list[str]] = {}
    for path in FILES:
        try:
            splice(path.read_bytes(), _appender(WIDE))
        except Refusal as refusal:
            refused[path.name] = refusal.reasons
    present = {path.name for path in FILES}
    assert refused == {name: why for name, why in REFUSED.items() if name in present}


SPLICEABLE = [name for name in corpus.names() if name not in REFUSED]


@pytest.mark.parametrize("name", SPLICEABLE)
def test_wide_characters_splice_byte_exactly(name: str) -> None:
    result = _splice_and_check(corpus.path(name), WIDE)
    for change in result.changed:
        assert change.new_charset in ("utf-8", "shift_jis", "utf-16le"), change.new_charset


# ISO-2022-JP leaves whose own text already holds characters outside ISO-2022-JP (NEC ①, au
# emoji): even kanji-only additions switch them to UTF-8.
JIS_ALREADY_WIDE = {
    "jpmobile__au-attached.eml",
    "jpmobile__au-decomail.eml",
    "jpmobile__au-email.eml",
    "jpmobile__au-kigou.eml",
}


def _original_charset(path: Path, change: LeafChange) -> str:
    raw_old = path.read_bytes()[change.leaf.body_start : change.leaf.body_end]
    cte = transfer.normalise(change.leaf.cte)
    assert cte is not None
    return decode_text(transfer.decode(raw_old, cte), change.old_charset).charset


@pytest.mark.parametrize("name", SPLICEABLE)
def test_kanji_keeps_the_charset_when_it_fits(name: str) -> None:
    path = corpus.path(name)
    result = _splice_and_check(path, KANJI)
    for change in result.changed:
        actual = _original_charset(path, change)
        fits = encode_text(change.new_text, actual) is not None
        assert (change.new_charset == actual) == fits
        if actual in JAPANESE_CHARSETS:
            assert fits == (path.name not in JIS_ALREADY_WIDE)
        if actual == "iso-2022-jp" and fits:
            assert change.new_cte == transfer.normalise(change.old_cte)


def test_walker_on_broken_closing_boundaries() -> None:
    raw = corpus.read("stalwart__thirdparty-005.eml")
    last = parse_message(raw).children[-1]
    assert raw[last.body_start : last.body_end] == b"invalid"  # "invalid--1--": close mid-line
    raw = corpus.read("enmime__bad-final-boundary.eml")
    parts = parse_message(raw).children
    assert [raw[p.body_start : p.body_end] for p in parts] == [
        b"A text section",
        b"PGh0bWw+Cg==\n",
        b"",  # the final delimiter lacks "--": an empty part follows it
    ]
