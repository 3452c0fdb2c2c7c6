"""Hypothesis strategies for mail as Japanese senders write it: MIME trees of text/plain,
text/html and attachment leaves, bodies in ISO-2022-JP, Shift_JIS (CP932) or UTF-8 under 7bit,
8bit, base64 or quoted-printable, RFC 2047 Subjects and display names (B and Q, split into
several words), RFC 2231 or RFC 2047 file names, CRLF or LF. Each generated mail keeps what went
into it, so a test can compare what the parser read with what was written."""

from __future__ import annotations

import base64
import quopri
from dataclasses import dataclass, field

from hypothesis import strategies as st

# (label as written, Python codec); Shift_JIS is written by Windows as CP932
CHARSETS = [("ISO-2022-JP", "iso2022_jp"), ("Shift_JIS", "cp932"), ("UTF-8", "utf-8")]
_KANA = [chr(c) for c in range(0x3041, 0x3094)] + [chr(c) for c in range(0x30A1, 0x30F7)]
_KANJI = list("山田太郎花子応募営業職株式会社人事部採用選考結果履歴書経歴様御中拝啓敬具髙")
_ASCII = list("abcXYZ0129 .,:-_/()[]!?'\"<>&;=@#%+*")
_WIDE = list("①②～　ー・「」『』！？")
JAPANESE = st.sampled_from(_KANA + _KANJI + _ASCII + _WIDE)


def fits(text: str, codec: str) -> bool:
    """Whether `codec` holds `text` (ISO-2022-JP cannot hold its own ESC, SO and SI bytes)."""
    if codec == "iso2022_jp" and any(c in text for c in "\x1b\x0e\x0f"):
        return False
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def words(charset: str) -> st.SearchStrategy[str]:
    """Text with line breaks that the charset's codec holds."""
    codec = dict(CHARSETS)[charset]
    line = st.text(JAPANESE, min_size=0, max_size=30)
    return st.lists(line, min_size=1, max_size=6).map("\n".join).filter(
        lambda t: fits(t, codec))


@dataclass(frozen=True)
class Leaf:
    """One written leaf; ``text`` is None for an attachment (then ``data`` holds its bytes)."""

    content_type: str
    charset: str
    cte: str
    text: str | None = None
    filename: str | None = None
    data: bytes = b""


@dataclass(frozen=True)
class Multipart:
    subtype: str
    children: tuple[Leaf | Multipart, ...]
    preamble: str = ""
    epilogue: str = ""


@dataclass
class Written:
    """A generated mail and what went into it."""

    raw: bytes
    subject: str
    from_name: str
    tree: Leaf | Multipart
    eol: bytes
    leaves: list[Leaf] = field(default_factory=list)


def encode_body(text: str, codec: str, cte: str, eol: bytes) -> bytes:
    lines = [line.encode(codec) for line in text.split("\n")]  # ISO-2022-JP: each line resets
    data = eol.join(lines)
    if cte == "base64":
        encoded = base64.b64encode(data)
        return eol.join(encoded[i:i + 76] for i in range(0, len(encoded), 76))
    if cte == "quoted-printable":
        return quopri.encodestring(b"\n".join(lines)).replace(b"\n", eol)
    return data


def encoded_word(text: str, label: str, codec: str, kind: str) -> str:
    data = text.encode(codec)
    if kind == "B":
        return f"=?{label}?B?{base64.b64encode(data).decode()}?="
    q = "".join(chr(b) if chr(b).isalnum() and b < 128 else "_" if b == 32 else f"={b:02X}"
                for b in data)
    return f"=?{label}?Q?{q}?="


@st.composite
def header_text(draw: st.DrawFn, alphabet: st.SearchStrategy[str] = JAPANESE) -> tuple[str, str]:
    """(decoded text, its RFC 2047 form): split into one to three words, folded between them."""
    label, codec = draw(st.sampled_from(CHARSETS))
    text = draw(st.text(alphabet, min_size=1, max_size=40).filter(lambda t: fits(t, codec)))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=2)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True) if a < b]
    kind = draw(st.sampled_from("BQ"))
    folding = draw(st.sampled_from([" ", "\r\n "]))
    return text, folding.join(encoded_word(p, label, codec, kind) for p in pieces)


def _filename_param(name: str, style: str, eol: str) -> str:
    if style == "rfc2231":
        quoted = "".join(chr(b) if chr(b).isalnum() and b < 128 else f"%{b:02X}"
                         for b in name.encode("utf-8"))
        return f"filename*=UTF-8''{quoted}"
    if style == "rfc2231-continued":  # a section may end inside a UTF-8 sequence, not a %XX
        tokens = [chr(b) if chr(b).isalnum() and b < 128 else f"%{b:02X}"
                  for b in name.encode("utf-8")]
        chunks = ["".join(tokens[i:i + 10]) for i in range(0, len(tokens), 10)] or [""]
        return f";{eol} ".join(f"filename*{n}*={'UTF-8' + chr(39) * 2 if n == 0 else ''}{c}"
                               for n, c in enumerate(chunks))
    return f'filename="{encoded_word(name, "UTF-8", "utf-8", "B")}"'


FILE_NAMES = st.text(st.sampled_from(_KANA + _KANJI + list("abc0129-_ ")), min_size=1,
                     max_size=20).map(lambda s: s.strip() + ".pdf")


@st.composite
def leaves(draw: st.DrawFn) -> Leaf:
    kind = draw(st.sampled_from(["text/plain", "text/plain", "text/html", "attachment"]))
    if kind == "attachment":
        return Leaf("application/pdf", "", "base64", filename=draw(FILE_NAMES),
                    data=draw(st.binary(max_size=200)))
    label, codec = draw(st.sampled_from(CHARSETS))
    text = draw(words(label))
    if kind == "text/html":
        text = "<html><body><p>" + text.replace("&", "&amp;").replace("<", "&lt;") + "</p>" \
               "</body></html>"
    ctes = ["base64", "quoted-printable", "8bit"] + (["7bit"] if codec == "iso2022_jp" else [])
    return Leaf(kind, label, draw(st.sampled_from(ctes)), text=text)


TREES: st.SearchStrategy[Leaf | Multipart] = st.recursive(
    leaves(),
    lambda children: st.builds(
        Multipart,
        st.sampled_from(["mixed", "alternative", "related"]),
        st.lists(children, min_size=1, max_size=4).map(tuple),
        st.sampled_from(["", "This is a multi-part message in MIME format."]),
        st.sampled_from(["", "epilogue"])),
    max_leaves=6)


def _render(node: Leaf | Multipart, eol: str, style: str, out: list[Leaf],
            counter: list[int]) -> list[str]:
    """The lines of ``node`` (headers, empty line, body), each without its line end."""
    if isinstance(node, Leaf):
        out.append(node)
        if node.text is None:
            param = _filename_param(node.filename or "", style, eol)
            head = [f"Content-Type: {node.content_type}",
                    f"Content-Disposition: attachment; {param}",
                    "Content-Transfer-Encoding: base64"]
            encoded = base64.b64encode(node.data).decode()
            body = [encoded[i:i + 76] for i in range(0, len(encoded), 76)]
            return [*head, "", *body]
        codec = dict(CHARSETS)[node.charset]
        data = encode_body(node.text, codec, node.cte, b"\n")
        head = [f'Content-Type: {node.content_type}; charset="{node.charset}"',
                f"Content-Transfer-Encoding: {node.cte}"]
        return [*head, "", *data.decode("latin-1").split("\n")]
    counter[0] += 1
    boundary = f"=_b{counter[0]}_{'x' * counter[0]}"
    lines = [f'Content-Type: multipart/{node.subtype}; boundary="{boundary}"', ""]
    if node.preamble:
        lines.append(node.preamble)
    for child in node.children:
        lines.append(f"--{boundary}")
        lines.extend(_render(child, eol, style, out, counter))
    lines.append(f"--{boundary}--")
    if node.epilogue:
        lines.append(node.epilogue)
    return lines


@st.composite
def mails(draw: st.DrawFn) -> Written:
    """A whole generated mail."""
    eol = draw(st.sampled_from(["\r\n", "\n"]))
    style = draw(st.sampled_from(["rfc2231", "rfc2231-continued", "rfc2047"]))
    subject, subject_words = draw(header_text())
    name, name_words = draw(header_text())
    tree = draw(TREES)
    out: list[Leaf] = []
    top = [f"From: {name_words} <taro@example.com>", "To: jobs@example.co.jp",
           f"Subject: {subject_words}", "Date: Tue, 01 Apr 2025 09:00:00 +0900",
           "Message-ID: <gen.1@example.com>", "MIME-Version: 1.0"]
    body = _render(tree, eol, style, out, [0])
    text = eol.join(top + body) + eol
    # the renderer folds with CRLF; LF mail folds with LF
    text = text.replace("\r\n", "\n").replace("\n", eol)
    return Written(text.encode("latin-1"), subject, name, tree, eol.encode(), out)
