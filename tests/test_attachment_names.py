"""Issue 21 part 3: attachment names that try to escape. Whatever a mail names its attachment
(path traversal, absolute and Windows paths, NUL, device names like CON or COM1, 10,000
characters; written plain, RFC 2047 or RFC 2231 with continuations), the résumé shelf writes
only inside `DATA/attachments/`, under the content hash; the original name is kept in the
record for display; and `export-person` writes only inside its folder, under a safe name."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_purge import NOW

from mailflow.clock import FrozenClock, iso
from mailflow.intake.documents import DocumentShelf
from mailflow.mail.parse import parse_mail
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.privacy.disclosure import gather, write
from mailflow.store import open_store

HOSTILE = ["../../etc/passwd", "/etc/passwd", "..\\..\\Windows\\win.ini", "C:\\Windows\\win.ini",
           "履歴書.pdf\x00.sh", "\x00", "CON", "NUL", "COM1", "con.pdf", "LPT1.txt", "aux",
           "a" * 10_000 + ".pdf", "履歴書/../../../../tmp/x.pdf", "~/.ssh/authorized_keys",
           "....//....//etc/passwd", ".", "..", "x" * 300 + "/" + "y" * 300,
           "\r\nX-Injected: yes.pdf", "<script>alert(1)</script>.pdf", "résumé .pdf ",
           "%2e%2e%2fetc%2fpasswd", "\u202egnp.exe"]
_HASH_PATH = re.compile(r"attachments/[0-9a-f]{2}/[0-9a-f]{64}")


def _rfc2231(name: str) -> str:
    tokens = [chr(b) if chr(b).isalnum() and b < 128 else f"%{b:02X}"
              for b in name.encode("utf-8")]  # a section may end inside a UTF-8 sequence
    chunks = ["".join(tokens[i:i + 20]) for i in range(0, len(tokens), 20)] or [""]
    charset = "UTF-8''"
    return ";\r\n ".join(f"filename*{n}*={charset if n == 0 else ''}{chunk}"
                         for n, chunk in enumerate(chunks))


def _rfc2047(name: str) -> str:
    data = name.encode("utf-8")
    words = [data[i:i + 45] for i in range(0, len(data), 45)]  # split only where UTF-8 allows
    out, word = [], b""
    for piece in words:
        word += piece
        try:
            word.decode("utf-8")
        except UnicodeDecodeError:
            continue
        out.append(f"=?UTF-8?B?{base64.b64encode(word).decode()}?=")
        word = b""
    return 'filename="' + "\r\n ".join(out) + '"'


def _plain(name: str) -> str:
    return 'filename="' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


STYLES = {"rfc2231": _rfc2231, "rfc2047": _rfc2047, "plain": _plain}


def application(name: str, style: str, data: bytes) -> bytes:
    encoded = base64.b64encode(data).decode()
    return ("From: 山田 太郎 <taro@example.com>\r\nTo: jobs@example.co.jp\r\nSubject: 応募\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n応募します。\r\n"
            "--b\r\nContent-Type: application/pdf\r\n"
            f"Content-Disposition: attachment; {STYLES[style](name)}\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--b--\r\n"
            ).encode("utf-8", errors="surrogateescape")


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def shelve(tmp_path: Path, name: str, style: str) -> tuple[str, str]:
    """(the name read and kept for display, the file's path under the data directory)."""
    data = b"%PDF-1.4\n" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
    mail = parse_mail(application(name, style, data))
    assert mail.unreadable == ""
    [attachment] = mail.attachments
    assert attachment.data == data
    data_dir = tmp_path / "data"
    document = DocumentShelf(data_dir).keep(attachment, mail.message_id, "2026-12-01T00:00:00Z")
    assert document["stored"] is True
    everything = _files(tmp_path)
    assert everything == [f"data/attachments/{attachment.sha256[:2]}/{attachment.sha256}"]
    assert (data_dir / everything[0].removeprefix("data/")).read_bytes() == data
    if os.name == "posix":
        assert (data_dir / "attachments").stat().st_mode & 0o077 == 0
    return str(document["filename"]), everything[0]


def _expected(name: str) -> str:
    """What the parser keeps: the name as written, blanks around it stripped."""
    return name.strip()


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("name", HOSTILE, ids=lambda n: repr(n[:40]))
def test_a_hostile_name_stays_inside_the_data_directory(tmp_path: Path, name: str,
                                                         style: str) -> None:
    kept, where = shelve(tmp_path, name, style)
    assert _HASH_PATH.fullmatch(where.removeprefix("data/"))
    if not (style == "plain" and "\r\n" in name):  # a raw line break ends the field
        assert kept == _expected(name)


@given(st.text(min_size=1, max_size=300), st.sampled_from(["rfc2231", "rfc2047"]))
def test_any_name_stays_inside_and_is_kept(tmp_path_factory: pytest.TempPathFactory, name: str,
                                           style: str) -> None:
    kept, where = shelve(tmp_path_factory.mktemp("shelf"), name, style)
    assert _HASH_PATH.fullmatch(where.removeprefix("data/"))
    assert kept == _expected(name)


def test_export_person_names_the_files_itself(tmp_path: Path) -> None:
    """The disclosure copies each attachment under a number, its hash and a plain extension:
    never the name from the mail."""
    data_dir = tmp_path / "data"
    store = open_store(data_dir)
    clock = FrozenClock(NOW)
    shelf = DocumentShelf(data_dir)
    try:
        pool = TalentPool(store, clock)
        candidate, _ = pool.apply(Applicant("山田 太郎", "taro@example.com", (), "営業", "",
                                            "direct"), "<a@example.com>")
        documents = []
        for n, name in enumerate(HOSTILE):
            data = f"%PDF-1.4 {n}".encode()
            mail = parse_mail(application(name, "rfc2231", data))
            documents.append(shelf.keep(mail.attachments[0], mail.message_id, iso(NOW)))
        pool.add_documents(candidate, documents)
        found = gather(store, clock, data_dir, candidate["id"])
    finally:
        store.close()
    out = tmp_path / "out"
    written = write(found, out)
    assert all(path.parent in (out, out / "attachments") for path in written)
    names = [p.name for p in written if p.parent == out / "attachments"]
    assert len(names) == len(HOSTILE)
    assert all(re.fullmatch(r"\d{2}-[0-9a-f]{12}(\.[A-Za-z0-9]{1,10})?", n) for n in names)
    assert [a["filename"] for a in found.record["attachments"]] == [n.strip() for n in HOSTILE]
    outside = {str(p) for p in tmp_path.rglob("*")} - {str(p) for p in out.rglob("*")} \
        - {str(p) for p in data_dir.rglob("*")} - {str(out), str(data_dir)}
    assert outside == set()
