"""mailflow.mail.charset with constructed bytes: the Japanese cases Python's codecs get wrong."""

from __future__ import annotations

import pytest

from mailflow.mail.charset import decode_header_words, decode_text, encode_text, jis_to_sjis

ESC = b"\x1b"
KANJI = ESC + b"$B"
ASCII = ESC + b"(B"


def jis(*pairs: bytes) -> bytes:
    return KANJI + b"".join(pairs) + ASCII


def test_plain_iso_2022_jp_decodes_exactly() -> None:
    decoded = decode_text(jis(b"4A;z$G$9"), "iso-2022-jp")
    assert decoded.text == "漢字です"
    assert (decoded.charset, decoded.codec, decoded.exact) == ("iso-2022-jp", "mailflow-jis", True)
    assert decoded.problems == ()


def test_nec_row_13_circled_number_in_iso_2022_jp() -> None:
    # CP50221 sends ① as JIS row 13 (0x2D21); Python's iso2022_jp refuses it.
    decoded = decode_text(b"No." + jis(b"-!-\"") + b" ok", "ISO-2022-JP")
    assert decoded.text == "No.①② ok"
    assert decoded.exact


def test_ibm_extension_rows_89_to_92_in_iso_2022_jp() -> None:
    # CP50220 sends 髙 (CP932 0xFBFC, NEC-selected 0xEEE0) as JIS 0x7C62.
    assert jis_to_sjis(0x7C, 0x62) == (0xEE, 0xE0)
    decoded = decode_text(jis(b"|b66"), "iso-2022-jp")
    assert decoded.text == "髙橋"
    assert decoded.exact
    assert b"\xfb\xfc".decode("cp932") == "髙"


def test_half_width_katakana_via_esc_paren_i() -> None:
    decoded = decode_text(ESC + b"(I6E" + ASCII, "iso-2022-jp")
    assert decoded.text == "ｶﾅ"
    assert decoded.exact


def test_half_width_katakana_via_shift_out() -> None:
    assert decode_text(b"\x0e6E\x0f!", "iso-2022-jp").text == "ｶﾅ!"


def test_wave_dash_in_shift_jis_is_fullwidth_tilde() -> None:
    # Python's shift_jis gives U+301C; Windows senders mean U+FF5E (CP932).
    assert b"\x81\x60".decode("shift_jis") == "\u301c"
    decoded = decode_text(b"10:00\x81\x6012:00", "Shift_JIS")
    assert decoded.text == "10:00\uff5e12:00"
    assert (decoded.charset, decoded.codec, decoded.exact) == ("shift_jis", "cp932", True)


def test_circled_number_in_shift_jis_is_not_replaced() -> None:
    assert "\ufffd" in b"\x87\x40".decode("shift_jis", errors="replace")
    assert decode_text(b"\x87\x40", "shift_jis").text == "①"


def test_carrier_emoji_in_cp932_user_area_decode_exactly() -> None:
    decoded = decode_text(b"\x96\x7b\x95\xb6\xf8\x9f", "shift_jis")
    assert decoded.text == "本文\ue63e"
    assert decoded.exact


def test_utf8_labelled_iso_2022_jp_is_detected() -> None:
    decoded = decode_text("お届けできません".encode(), "iso-2022-jp")
    assert decoded.text == "お届けできません"
    assert (decoded.charset, decoded.codec, decoded.exact) == ("utf-8", "utf-8", True)
    assert any("bytes are utf-8" in p for p in decoded.problems)


def test_shift_jis_labelled_iso_2022_jp_is_detected() -> None:
    decoded = decode_text("履歴書を送ります".encode("cp932"), "iso-2022-jp")
    assert decoded.text == "履歴書を送ります"
    assert decoded.charset == "shift_jis"


def test_euc_jp_and_its_nec_extension() -> None:
    assert decode_text("こんにちは".encode("euc_jp"), "euc-jp").text == "こんにちは"
    decoded = decode_text(b"\xad\xa1", "EUC-JP")  # ① in eucJP-ms; Python's euc_jp refuses it
    assert decoded.text == "①"
    assert decoded.exact


def test_unlabelled_euc_jp_is_not_mistaken_for_half_width_kana() -> None:
    raw = "ご応募ありがとうございます".encode("euc_jp")
    assert raw.decode("cp932")  # CP932 accepts these bytes too, as half-width kana garbage
    assert decode_text(raw, None).text == "ご応募ありがとうございます"


def test_us_ascii_with_8bit_bytes_and_bogus_labels() -> None:
    assert decode_text("採用".encode(), "us-ascii").text == "採用"
    assert decode_text(b"plain", 'charset="us-ascii"').charset == "us-ascii"
    unknown = decode_text("☺".encode(), "x-unknown")
    assert unknown.text == "☺"
    assert any("unknown charset label" in p for p in unknown.problems)


def test_utf7_including_imap_modified_form() -> None:
    assert decode_text(b"+MMYwuTDI-", "unicode-1-1-utf-7").text == "テスト"
    modified = decode_text(b"&MMYwuTDI-.txt", "UNICODE-1-1-UTF-7")
    assert modified.text == "テスト.txt"
    assert modified.charset == "utf-8"


def test_replacement_only_when_nothing_decodes() -> None:
    decoded = decode_text(b"\xff\xfe\xfd", None)
    assert not decoded.exact
    assert "\ufffd" in decoded.text
    assert decoded.problems


def test_encode_refuses_what_iso_2022_jp_cannot_hold() -> None:
    for text in ("①", "\uff5e", "ｱ", "髙", "\ue63e", "¥"):
        assert encode_text("面接" + text, "iso-2022-jp") is None, text
    assert encode_text("面接のご案内", "iso-2022-jp") == jis(b"LL@\\$N$40FFb")


def test_encode_iso_2022_jp_ends_in_ascii_mode() -> None:
    data = encode_text("採用担当", "ISO-2022-JP")
    assert data is not None
    assert data.endswith(ASCII)
    assert max(data) < 0x80


def test_encode_shift_jis_uses_cp932() -> None:
    assert encode_text("①～", "shift_jis") == b"\x87\x40\x81\x60"
    assert encode_text("\u301c", "shift_jis") is None  # would come back as U+FF5E


@pytest.mark.parametrize("charset", ["iso-2022-jp", "shift_jis", "euc-jp", "utf-8"])
@pytest.mark.parametrize("text", ["応募ありがとうございます。\r\n", "10:00〜12:00 (JST)", "ABC"])
def test_round_trip(charset: str, text: str) -> None:
    data = encode_text(text, charset)
    if data is None:
        assert charset == "shift_jis" and "〜" in text
        return
    assert decode_text(data, charset).text == text


def test_every_standard_jis_x_0208_character_round_trips() -> None:
    for j1 in range(0x21, 0x75):
        for j2 in range(0x21, 0x7F):
            decoded = decode_text(jis(bytes((j1, j2))), "iso-2022-jp")
            encoded = encode_text(decoded.text, "iso-2022-jp")
            if encoded is not None:
                assert decode_text(encoded, "iso-2022-jp").text == decoded.text


def test_header_words_split_across_encoded_words() -> None:
    # "履歴書" in UTF-8 is 9 bytes; the first word ends in the middle of 歴.
    value = "=?UTF-8?B?5bGl5q0=?=\r\n =?UTF-8?B?tOabuA==?= .pdf"
    assert decode_header_words(value) == "履歴書 .pdf"


def test_header_words_iso_2022_jp_and_mixed_text() -> None:
    value = "Re: =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?= =?utf-8?Q?=E3=81=A7=E3=81=99?= end"
    assert decode_header_words(value) == "Re: テストです end"


def test_header_words_bad_padding_and_unknown_charset() -> None:
    assert decode_header_words("=?NONE?B?VEVTVA=?=") == "TEST"


def test_header_raw_8bit_shift_jis() -> None:
    raw = "件名".encode("cp932").decode("ascii", errors="surrogateescape")
    assert decode_header_words(raw) == "件名"


def test_au_emoji_in_jis_rows_85_to_92_map_to_kddi_private_use() -> None:
    # au sends emoji as JIS 0x7834 (heart) and 0x753A (caution); KDDI's own code points are
    # U+E595 and U+E481, which is what CP932 gives for au's Shift_JIS 0xF7B2 and 0xF659.
    decoded = decode_text(jis(b"%F%9%H$G$9x4u:"), "iso-2022-jp")
    assert decoded.text == "テストです\ue595\ue481"
    assert decoded.exact
    assert any("au emoji" in p for p in decoded.problems)
    assert b"\xf7\xb2\xf6\x59".decode("cp932") == "\ue595\ue481"


@pytest.mark.parametrize("label", ["utf-8", "us-ascii", None, "x-unknown"])
def test_jis_bytes_under_another_label_are_read_as_iso_2022_jp(label: str | None) -> None:
    decoded = decode_text(jis(b"LL@\\"), label)
    assert decoded.text == "面接"
    assert decoded.charset == "iso-2022-jp"
    assert any("ISO-2022-JP escape sequences" in p for p in decoded.problems)
