"""parse_mail: raw bytes to a Mail view. Pure; never raises."""

from __future__ import annotations

import hashlib
import re
from email import message_from_string
from email.feedparser import BytesFeedParser
from email.message import Message
from email.policy import compat32

from mailflow.mail.parse import headers as hdr
from mailflow.mail.parse.html_text import html_to_text
from mailflow.mail.parse.mime import MAX_DEPTH, TooDeep, read_tree
from mailflow.mail.parse.model import BodyPart, Mail


def parse_mail(raw: bytes) -> Mail:
    """Parse ``raw`` RFC 5322 bytes. Anything odd is listed in ``problems``; nothing raises. A
    mail that cannot be read at all says why in ``unreadable``."""
    try:
        return _parse(raw)
    except RecursionError:  # the stdlib parser recurses once per nested multipart
        return _unreadable(raw, f"MIME parts nested deeper than {MAX_DEPTH} levels")
    except Exception as error:  # the last line of defence: bad input never stops the daemon
        return _unreadable(raw, f"mail could not be parsed: {type(error).__name__}: {error}")


def _unreadable(raw: bytes, why: str) -> Mail:
    return Mail(problems=(why,), body_hash=hashlib.sha256(raw).hexdigest(), unreadable=why)


def _parse(raw: bytes) -> Mail:
    problems: list[str] = []
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        problems.append("mail starts with a UTF-8 byte order mark; ignored")
    message = _message_tree(raw)
    fields = _header_fields(message)

    def first(name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in fields if key.lower() == wanted), None)

    def every(name: str) -> list[str]:
        return [value for key, value in fields if key.lower() == name.lower()]

    subject = hdr.decode_words(first("subject") or "")
    if "\ufffd" in subject:
        problems.append("Subject has bytes that decode in no known charset")
    try:
        tree = read_tree(_with_recovered_boundary(message, problems))
    except TooDeep as deep:
        return _unreadable(raw, str(deep))
    texts = [p for p in tree.bodies if p.content_type == "text/plain"]
    htmls = [p for p in tree.bodies if p.content_type == "text/html"]
    text = "\n".join(_clean(p.decoded.text) for p in texts)
    html = "\n".join(p.decoded.text for p in htmls)
    facts, charset_problems = _charset_facts(tree.bodies)
    problems.extend(tree.problems)
    problems.extend(charset_problems)
    date = hdr.parse_date(first("date"), problems)
    return Mail(
        from_=hdr.addresses(every("from")),
        to=hdr.addresses(every("to")),
        cc=hdr.addresses(every("cc")),
        reply_to=hdr.addresses(every("reply-to")),
        subject=subject,
        date=date,
        message_id=next(iter(hdr.message_ids(first("message-id"))), None),
        in_reply_to=next(iter(hdr.message_ids(first("in-reply-to"))), None),
        references=hdr.message_ids(first("references")),
        headers=tuple(fields),
        text=text,
        html=html,
        text_from_html="" if texts or not html else html_to_text(html),
        attachments=tuple(tree.attachments),
        body_parts=tuple(tree.bodies),
        charset_facts=tuple(facts),
        problems=tuple(problems),
        body_hash=body_hash(text, html),
    )


_CHUNK = 1 << 16


def _message_tree(raw: bytes) -> Message:
    """The stdlib's tree of ``raw``, fed to its parser in chunks: ``message_from_bytes`` first
    copies the whole mail into a str and an io.StringIO (four bytes a character), about five
    times the mail's size at once (a 40 MB mail peaked at 314 MB here)."""
    parser = BytesFeedParser(policy=compat32)
    view = memoryview(raw)
    for start in range(0, len(view), _CHUNK):
        parser.feed(bytes(view[start : start + _CHUNK]))
    return parser.close()


_BOUNDARY = re.compile(r"""boundary\s*=\s*(?:"([^"]+)"|([^\s;"]+))""", re.IGNORECASE)


def _with_recovered_boundary(message: Message, problems: list[str]) -> Message:
    """Re-read a multipart whose boundary parameter the parser missed (e.g. no ';' before it)."""
    if message.get_content_maintype() != "multipart" or message.is_multipart():
        return message
    declared = " ".join(str(message.get("content-type", "")).split())
    match = _BOUNDARY.search(declared)
    payload = message.get_payload()
    if match is None or not isinstance(payload, str):
        return message
    boundary = match.group(1) or match.group(2)
    head = f'Content-Type: {message.get_content_type()}; boundary="{boundary}"\n\n'
    recovered = message_from_string(head + payload, policy=compat32)
    if not recovered.is_multipart():
        return message
    problems.append(f"boundary parameter recovered from a malformed Content-Type: {declared!r}")
    return recovered


def _header_fields(message: Message) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for key, value in message.raw_items():
        fields.append((str(key), hdr.unfold(str(value))))
    return fields


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _charset_facts(bodies: list[BodyPart]) -> tuple[list[str], list[str]]:
    facts: list[str] = []
    problems: list[str] = []
    for part in bodies:
        decoded = part.decoded
        label = part.label or "no label"
        exact = "exact" if decoded.exact else "with replacement characters"
        facts.append(
            f"part {part.part} {part.content_type}: {label} decoded as {decoded.charset} "
            f"({decoded.codec}, {exact})"
        )
        for problem in decoded.problems:
            facts.append(f"part {part.part}: {problem}")
            problems.append(f"part {part.part} {part.content_type}: {problem}")
    return facts, problems


_BLANKS = re.compile(r"[ \t\u3000]+\n")


def body_hash(text: str, html: str) -> str:
    """sha256 of the text and HTML bodies with line ends and trailing blanks normalised."""
    norm = [_BLANKS.sub("\n", _clean(part)).strip() for part in (text, html)]
    return hashlib.sha256("\x00".join(norm).encode("utf-8", errors="surrogatepass")).hexdigest()
