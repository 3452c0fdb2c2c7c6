"""`mailflow import FILE.csv`: the candidate list a company kept before mailflow.

The columns and how a cell is read: `import_columns`; the profile and selection columns into
the record: `import_profile`.

Two parts. Reading streams: bytes → text (UTF-8 with or without BOM, else CP932, found in one
pass over the file) → the header's columns (English names or Japanese aliases) → one `ImportRow`
per usable row and one `RowProblem` per thing wrong with the others (all of them, each naming
its line and column), one row at a time off the disk, so memory does not follow the file.
Writing takes the rows into the talent pool through `TalentPool.import_row`, which matches them
to the people already there (normalised email, then phone) and only fills gaps.

The columns `consent` (同意) and `consent_withdrawn` (同意撤回, 不同意) name purposes of use
(`rescout; career_relay`), each one the config declares (`[privacy.purposes]`; another is a
refused row naming the known ones); they are recorded as the person's word, with the evidence
"import FILE line N", on purposes the person has not spoken for yet.
"""

from __future__ import annotations

import codecs
import copy
import csv
import io
import itertools
import unicodedata
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from mailflow.clock import Clock
from mailflow.errors import Problem, ProblemsError, UsageError
from mailflow.intake import import_columns as columns
from mailflow.intake.import_columns import (  # noqa: F401 (the columns, as they were known here)
    ALIASES,
    COLUMNS,
    ENCODINGS,
    NON_WORD,
    NOT_TEXT,
    STATUSES,
    YES_NO,
)
from mailflow.intake.import_profile import profile_of
from mailflow.mail.parse.headers import one_line
from mailflow.pool.records import ImportRow
from mailflow.pool.talent import TalentPool
from mailflow.profile.dictionary import SkillDictionary
from mailflow.settings.config import PURPOSES
from mailflow.store.base import INDEXES, LOGS, Doc, Store, index_values


@dataclass(frozen=True)
class RowProblem:
    line: int
    column: str
    message: str

    def problem(self, path: str) -> Problem:
        return Problem(path, self.line, f"column {self.column}: {self.message}")


@dataclass
class Sheet:
    """What a file holds: its usable rows, its refused ones, and how it was read. Read from a
    file, `rows` streams (one row at a time off the disk) and `refused` fills as it goes."""

    rows: Iterable[ImportRow] = field(default_factory=list)
    refused: list[RowProblem] = field(default_factory=list)
    encoding: str = ""
    ignored_columns: list[str] = field(default_factory=list)


# -- reading (pure) -----------------------------------------------------------------------------

def header_columns(header: Sequence[str], path: str) -> tuple[list[str | None], list[str]]:
    """The field each header cell names (None for an unknown one), and the unknown ones."""
    fields: list[str | None] = []
    problems: list[Problem] = []
    for cell in header:
        key = NON_WORD.sub("_", unicodedata.normalize("NFKC", cell).strip().lower())
        column = ALIASES.get(key) or ALIASES.get(key.replace("_", ""))
        if column is not None and column in fields:
            problems.append(Problem(path, 1, f"column {column} appears twice ({cell!r})"))
        fields.append(column)
    if not {"name", "email"} & set(fields):
        problems.append(Problem(path, 1, "no usable header: a first row naming the columns is "
                                         f"needed, with name or email among {', '.join(COLUMNS)}"))
    if problems:
        raise ProblemsError(problems)
    return fields, [h for h, f in zip(header, fields, strict=True) if f is None and h.strip()]


MAX_BYTES = 64 * 2**20  # one import: a 200,000-row list is about 20 MiB
MAX_ROWS = 200_000


def read_sheet(text: str, zone: ZoneInfo, path: str = "-",
               purposes: Collection[str] = tuple(PURPOSES)) -> Sheet:
    """Every row of the CSV text: usable (`rows`) or refused with each reason (`refused`);
    `purposes`: the declared purposes of use a consent column may name."""
    sheet = stream_sheet(io.StringIO(text, newline=""), zone, path, purposes)
    sheet.rows = list(sheet.rows)
    return sheet


def stream_sheet(lines: Iterable[str], zone: ZoneInfo, path: str = "-",
                 purposes: Collection[str] = tuple(PURPOSES)) -> Sheet:
    """The header now; the rows as they are read (`Sheet.rows` is a generator)."""
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise UsageError(f"{path}:{reader.line_num}: not readable as CSV: {exc}") from None
    if header is None:
        raise UsageError(f"{path}: empty file; a header row naming the columns is needed")
    fields, ignored = header_columns(header, path)
    sheet = Sheet(ignored_columns=ignored)
    sheet.rows = _rows(reader, fields, sheet, zone, path, tuple(purposes))
    return sheet


def _rows(reader: Any, fields: list[str | None], sheet: Sheet, zone: ZoneInfo, path: str,
          purposes: tuple[str, ...]) -> Iterator[ImportRow]:
    end = reader.line_num
    try:
        for count, cells in enumerate(reader, start=1):
            if count > MAX_ROWS:
                raise UsageError(f"{path}:{reader.line_num}: more than {MAX_ROWS:,} rows, the "
                                 "most one import takes; split the list into several files")
            line, end = end + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(fields) and any(c.strip() for c in cells[len(fields):]):
                sheet.refused.append(RowProblem(line, "*", f"{len(cells)} cells, the header "
                                                           f"names {len(fields)}"))
                continue
            values = {f: c.strip() for f, c in zip(fields, cells, strict=False) if f is not None}
            row, problems = read_row(line, values, zone, purposes)
            sheet.refused.extend(problems)
            if row is not None:
                yield row
    except csv.Error as exc:  # a quote left open, a cell beyond the csv module's limit …
        raise UsageError(f"{path}:{reader.line_num}: not readable as CSV: {exc}") from None


def read_row(line: int, values: dict[str, str], zone: ZoneInfo,
             purposes: tuple[str, ...] = tuple(PURPOSES)
             ) -> tuple[ImportRow | None, list[RowProblem]]:
    """One row's cells by field → the row, or every problem in it."""
    problems: list[RowProblem] = []

    def check(column: str, parse: Any) -> Any:
        try:
            return parse(values.get(column, ""))
        except ValueError as exc:
            problems.append(RowProblem(line, column, str(exc)))
            return None

    name = one_line(unicodedata.normalize("NFKC", values.get("name", "")))
    email = check("email", columns.email)
    phone = check("phone", columns.phone)
    if not name and not values.get("email"):
        problems.append(RowProblem(line, "name", "name and email are both empty; one is needed"))
    elif not values.get("email") and not values.get("phone"):
        problems.append(RowProblem(line, "email", "empty, and no phone either: nothing to "
                                                  "recognise the person by"))
    status = check("status", columns.status)
    row_values = {
        "applied_at": check("applied_at", lambda v: columns.date(v, zone)),
        "rejected_at": check("rejected_at", lambda v: columns.date(v, zone)),
        "rescout_ok": check("rescout_ok", columns.yes_no),
        "granted": check("consent", lambda v: columns.purposes(v, purposes)),
        "withdrawn": check("consent_withdrawn", lambda v: columns.purposes(v, purposes)),
        "birth_date": check("birth_date", columns.birth_date),
    }
    both = set(row_values["granted"] or ()) & set(row_values["withdrawn"] or ())
    if both:
        problems.append(RowProblem(line, "consent", f"{sorted(both)[0]!r} both granted and "
                                                    "withdrawn"))
    if problems:
        return None, problems
    return ImportRow(
        line=line, name=name, email=email, phones=(phone,) if phone else (),
        source=values.get("source", ""), position=values.get("position", ""),
        status=status, rejection_reason=values.get("rejection_reason", ""),
        tags=tuple(t.strip() for t in columns.LIST_SPLIT.split(values.get("tags", ""))
                   if t.strip()),
        skills=columns.split_list(values.get("skills", "")),
        qualifications=columns.split_list(values.get("qualifications", "")),
        career=values.get("career", ""), desired_role=values.get("desired_role", ""),
        interviewer=values.get("interviewer", ""),
        rating=unicodedata.normalize("NFKC", values.get("rating", "")).strip(),
        **row_values,
    ), []


# -- writing ------------------------------------------------------------------------------------

@dataclass
class ImportReport:
    dry_run: bool
    created: int = 0
    merged: int = 0
    unchanged: int = 0
    refused: list[RowProblem] = field(default_factory=list)
    encoding: str = ""
    ignored_columns: list[str] = field(default_factory=list)

    def as_json(self) -> Doc:
        return {"imported": self.created + self.merged + self.unchanged, "merged": self.merged,
                "created": self.created, "unchanged": self.unchanged,
                "refused": [{"row": p.line, "column": p.column, "message": p.message}
                            for p in self.refused],
                "dry_run": self.dry_run, "encoding": self.encoding,
                "ignored_columns": self.ignored_columns}


class Scratch:
    """A store for a dry run: reads fall through to the real store, writes stay here and are
    forgotten, so the real steps can run and count without changing anything."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.read_only = False
        self.docs: dict[tuple[str, str], Doc | None] = {}
        self.logs: dict[str, list[Doc]] = {}
        self.index: dict[tuple[str, str, str], set[str]] = {}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        yield

    def put(self, kind: str, key: str, doc: Mapping[str, Any]) -> None:
        self._unindex(kind, key)
        self.docs[kind, key] = copy.deepcopy(dict(doc))
        for name in INDEXES[kind]:
            for value in index_values(doc, name):
                self.index.setdefault((kind, name, value), set()).add(key)

    def _unindex(self, kind: str, key: str) -> None:
        old = self.docs.get((kind, key))
        for name in INDEXES[kind] if old else ():
            for value in index_values(old or {}, name):
                self.index[kind, name, value].discard(key)

    def get(self, kind: str, key: str) -> Doc | None:
        if (kind, key) in self.docs:
            return copy.deepcopy(self.docs[kind, key])
        return self.inner.get(kind, key)

    def delete(self, kind: str, key: str) -> bool:
        existed = self.get(kind, key) is not None
        self._unindex(kind, key)
        self.docs[kind, key] = None
        return existed

    def find(self, kind: str, field: str, value: str) -> list[Doc]:
        mine = [copy.deepcopy(doc) for key in sorted(self.index.get((kind, field, value), ()))
                if (doc := self.docs[kind, key]) is not None]
        mine += [d for d in self.logs.get(kind, []) if value in index_values(d, field)]
        return mine + [d for d in self.inner.find(kind, field, value)
                       if kind in LOGS or (kind, d.get("id", "")) not in self.docs]

    def below(self, kind: str, field: str, bound: str, limit: int = 1000) -> list[Doc]:
        return self.inner.below(kind, field, bound, limit)

    def scan(self, kind: str, after: str | None = None, limit: int | None = None) -> Iterator[Doc]:
        return self.inner.scan(kind, after, limit)

    def append(self, kind: str, doc: Mapping[str, Any]) -> int:
        self.logs.setdefault(kind, []).append(dict(doc))
        return self.inner.count(kind) + len(self.logs[kind])

    def log(self, kind: str, after: int = 0) -> Iterator[tuple[int, Doc]]:
        return self.inner.log(kind, after)

    def count(self, kind: str) -> int:
        return self.inner.count(kind) + len(self.logs.get(kind, []))

    def find_keys(self, kind: str, field: str, value: str) -> list[str]:
        return self.inner.find_keys(kind, field, value)  # a dry run erases nothing

    def redact(self, kind: str, seq: int, doc: Mapping[str, Any]) -> None:
        raise NotImplementedError("a dry run erases nothing")

    def claim(self, kind: str, field: str, value: str, *, up_to: bool = False,
              limit: int = 100, now: str = "") -> list[Doc]:
        raise NotImplementedError("a dry run claims nothing")

    def lock_until_commit(self, name: str) -> None:
        return None  # nothing is written

    def scrub(self) -> bool:
        return True

    def close(self) -> None:
        self.docs.clear()


def import_sheet(pool: TalentPool, sheet: Sheet, origin: str, dry_run: bool = False,
                 batch: int = 200, dictionary: SkillDictionary | None = None) -> ImportReport:
    """Take the sheet's rows into the pool (or only count what would happen, on a dry run);
    "merged" counts the rows that changed a record, "unchanged" those that did not."""
    report = ImportReport(dry_run, encoding=sheet.encoding,
                          ignored_columns=list(sheet.ignored_columns))
    if dry_run:  # the same steps on a scratch copy: the counts are the real run's
        pool = TalentPool(Scratch(pool.store), pool.clock)
    for chunk in _chunks(sheet.rows, batch):
        with pool.store.transaction():
            for row in chunk:
                _candidate, outcome = pool.import_row(row, origin,
                                                      profile_of(row, dictionary, pool.now()))
                report.created += outcome == "created"
                report.merged += outcome == "merged"
                report.unchanged += outcome == "unchanged"
    report.refused = list(sheet.refused)  # complete once every row was read
    return report


def import_file(store: Store, clock: Clock, zone: ZoneInfo, path: str | Path,
                dry_run: bool = False, purposes: Collection[str] = tuple(PURPOSES),
                dictionary: SkillDictionary | None = None) -> Doc:
    """The `import.csv` command (the daemon's control channel, or the CLI under the lock);
    `purposes`: the config's declared purposes of use (`config.privacy.purposes`);
    `dictionary`: `skills.toml`, for the canonical names of the skills and qualifications."""
    path = Path(path)
    encoding = encoding_of(path)
    with path.open(encoding=encoding, newline="") as lines:  # streamed: one row at a time
        sheet = stream_sheet(lines, zone, str(path), purposes)
        sheet.encoding = encoding
        return import_sheet(TalentPool(store, clock), sheet, path.name, dry_run,
                            dictionary=dictionary).as_json()


def encoding_of(path: Path, chunk: int = 2**20) -> str:
    """UTF-8 (BOM or not), else CP932, read through once in chunks: never more than `chunk` in
    memory, and never more than `MAX_BYTES` read (`import /dev/zero` ends)."""
    for encoding in ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)()
        read = 0
        try:
            with path.open("rb") as file:
                while data := file.read(chunk):
                    read += len(data)
                    if read > MAX_BYTES:
                        raise UsageError(f"{path}: larger than {MAX_BYTES // 2**20} MiB, the "
                                         "most one import takes; split the list into several "
                                         "files")
                    if NOT_TEXT.search(decoder.decode(data)):
                        break
                else:
                    if not NOT_TEXT.search(decoder.decode(b"", final=True)):
                        return encoding
        except UnicodeDecodeError:
            continue
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    raise UsageError(f"{path}: neither UTF-8 nor CP932 (Shift_JIS) text; "
                     "save it from Excel as \"CSV UTF-8\" or \"CSV\"")


def _chunks(rows: Iterable[ImportRow], size: int) -> Iterator[list[ImportRow]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
