"""A résumé's text, from the bytes of an attachment: PDF (pdfminer.six), Word DOCX
(python-docx), Excel XLSX (openpyxl) or plain text (UTF-8, CP932, UTF-16).

Bounded: files over `MAX_BYTES` are not opened, a DOCX or XLSX that would unpack to more than
`MAX_UNPACKED` (a zip bomb) neither, at most `MAX_PAGES` pages, sheets or `MAX_ROWS` rows are
read and at most `MAX_CHARS` characters kept, and reading stops at `MAX_SECONDS` (checked between
pages, paragraphs and rows). Failure-safe: whatever a broken or hostile file raises becomes the
`problem` of the reading, never an exception for the caller. Nothing is written or executed.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

MAX_BYTES = 10 * 2**20
MAX_UNPACKED = 50 * 2**20
MAX_PAGES = 30
MAX_ROWS = 2_000
MAX_CHARS = 200_000
MAX_SECONDS = 10.0

KINDS = {".pdf": "pdf", ".docx": "docx", ".xlsx": "xlsx", ".xlsm": "xlsx", ".txt": "text",
         ".text": "text"}
TYPES = {"application/pdf": "pdf", "text/plain": "text",
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx"}


@dataclass(frozen=True)
class DocumentText:
    kind: str  # "pdf" | "docx" | "xlsx" | "text" | "" (not a format read)
    text: str
    problem: str = ""  # why nothing (or not everything) was read


class _TooLong(Exception):
    pass


def kind_of(filename: str, content_type: str) -> str:
    """The format by the file name's extension, else by the declared type; "" for others."""
    return KINDS.get(PurePosixPath(filename.lower()).suffix) or TYPES.get(
        content_type.lower(), "")


def read_document(data: bytes, filename: str, content_type: str,
                  clock: Callable[[], float] = time.monotonic,
                  seconds: float = MAX_SECONDS) -> DocumentText:
    """The document's text, or why there is none (see the module's docstring)."""
    kind = kind_of(filename, content_type)
    if not kind:
        return DocumentText("", "", "not a format résumés are read from")
    if len(data) > MAX_BYTES:
        return DocumentText(kind, "", f"larger than {MAX_BYTES // 2**20} MiB; not read")
    deadline = clock() + seconds

    def in_time() -> None:
        if clock() > deadline:
            raise _TooLong

    lines: list[str] = []
    size = 0
    try:
        if kind in ("docx", "xlsx"):
            _check_zip(data)
        for line in READERS[kind](data, in_time):
            lines.append(line)
            size += len(line) + 1
            if size > MAX_CHARS:
                return DocumentText(kind, "\n".join(lines), f"longer than {MAX_CHARS:,} "
                                                            "characters; the rest not read")
    except _TooLong:
        return DocumentText(kind, "\n".join(lines), f"reading took more than {seconds:g} s; "
                                                    "the rest not read")
    except Exception as exc:  # a broken file: noted, the intake goes on
        return DocumentText(kind, "\n".join(lines), f"not readable as {kind.upper()}: "
                                                    f"{type(exc).__name__}")
    return DocumentText(kind, "\n".join(lines))


def _check_zip(data: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > MAX_UNPACKED:
        raise ValueError(f"unpacks to more than {MAX_UNPACKED // 2**20} MiB")


def _text(data: bytes, in_time: Callable[[], None]) -> Iterator[str]:
    utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
    for encoding in ("utf-16",) if utf16 else ("utf-8-sig", "cp932"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        yield from text.splitlines()
        return
    yield from data.decode("utf-8", errors="replace").splitlines()


def _pdf(data: bytes, in_time: Callable[[], None]) -> Iterator[str]:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTTextContainer

    for page in extract_pages(io.BytesIO(data), maxpages=MAX_PAGES):
        in_time()
        for element in page:
            if isinstance(element, LTTextContainer):
                yield from element.get_text().splitlines()


def _docx(data: bytes, in_time: Callable[[], None]) -> Iterator[str]:
    import docx

    document = docx.Document(io.BytesIO(data))
    for paragraph in document.paragraphs:
        in_time()
        yield paragraph.text
    for table in document.tables:
        for row in table.rows[:MAX_ROWS]:
            in_time()
            cells = dict.fromkeys(c.text.strip() for c in row.cells if c.text.strip())
            yield "\t".join(cells)


def _xlsx(data: bytes, in_time: Callable[[], None]) -> Iterator[str]:
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        for sheet in book.worksheets[:MAX_PAGES]:
            for row in sheet.iter_rows(max_row=MAX_ROWS, values_only=True):
                in_time()
                cells = [str(v).strip() for v in row if v is not None and str(v).strip()]
                if cells:
                    yield "\t".join(cells)
    finally:
        book.close()


READERS: dict[str, Callable[[bytes, Callable[[], None]], Iterator[str]]] = {
    "text": _text, "pdf": _pdf, "docx": _docx, "xlsx": _xlsx}
