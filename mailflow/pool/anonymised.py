"""The anonymised pool export (`mailflow export --anonymized`; the inter-company talent pool,
issue 18 part 6), pure: candidate records in, rows that name no one out.

Who is in it. Only candidates who gave an explicit `talent_pool` grant (`may_share`): the rule
is that a purpose the application notice states (`[privacy] notified_purposes`, which holds
`talent_pool` by default) covers keeping the profile inside the company (APPI 法17, 21), not
providing it to other companies, which needs the person's own prior consent (法27). A withdrawal
excludes, whatever the notice says.

What a row holds, field by field (JSON: one object per person; CSV: one column each, lists
joined with ";", no value an empty cell):
- `id`: a random id made for this export (`secrets.token_hex(8)`), never the candidate's id, so
  two exports cannot be joined; rows come shuffled, not in the store's order.
- `skills`, `qualifications`: the record's tags in canonical form (NFKC, single spaces, ";" made
  ","), deduplicated case-insensitively, sorted; a tag that looks like anything but a tag (see
  `usable`) is dropped.
- `desired_role`: the record's desired role, under the same test as a tag; else null.
- `prefecture`: one of the 47 (`PREFECTURES`, e.g. 東京都), found in the record's `address`
  (a line or a list of lines) and output alone; else null. The first written wins.
- `experience`: a band of the record's `experience_years` (`EXPERIENCE_BANDS`: 0-2y, 3-5y,
  6-10y, 10y+); "unknown" without one.
- `stage_reached`: the highest step of `STAGES` (応募 … 内定) the record's stages name; HR's own
  wording of a stage is never output, only the step it is recognised as.
- `rejection_category`: the rejection's reason by keyword (`REJECTION_CATEGORIES`): the first
  of position_filled, skills, experience, culture_fit whose words the reason holds, else other
  (also for a rejection without a reason); never the reason's text; null when not rejected.
- `source`: the channel the candidate came through (e.g. "indeed", "direct"), as a tag.
- `applied_month`: the month of the latest application, YYYY-MM in the company's time zone.

Never in it: names, emails, phones, addresses beyond the prefecture, career text, notes,
interviewers and ratings, the rejection's text, mail ids and bodies, documents, consents,
timeline, relay codes, ids of the store. A value that contains the candidate's name (whole, family
or given), email or phone is dropped even where a tag is allowed.

Records today have no `address` or `experience_years` (nothing takes them in yet): until
something does, `prefecture` is null and `experience` "unknown" for everyone.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, TypedDict

from mailflow.clock import parse_iso
from mailflow.mail.people import normalise_phone
from mailflow.pool import consent
from mailflow.pool.consent import Held
from mailflow.pool.records import Candidate
from mailflow.spreadsheets import csv_cell

PURPOSE = "talent_pool"

PREFECTURES = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県",
    "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県",
    "山梨県", "長野県", "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府",
    "兵庫県", "奈良県", "和歌山県", "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県",
    "香川県", "愛媛県", "高知県", "福岡県", "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県",
    "鹿児島県", "沖縄県",
)
# leftmost match wins: "東京都府中市" is 東京都, though 京都府 is written inside it
_PREFECTURE = re.compile("|".join(sorted(PREFECTURES, key=len, reverse=True)))

EXPERIENCE_BANDS = ("0-2y", "3-5y", "6-10y", "10y+", "unknown")

# the selection's steps, lowest first, each with the words that recognise it (first match wins,
# from the highest step down)
STAGES = ("応募", "書類選考通過", "面接", "一次面接", "二次面接", "最終面接", "内定")
_STAGE_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("内定", ("内定", "offer")),
    ("最終面接", ("最終", "final")),
    ("二次面接", ("二次", "2次", "三次", "3次", "second", "third")),
    ("一次面接", ("一次", "1次", "first")),
    ("面接", ("面接", "面談", "interview")),
    ("書類選考通過", ("書類", "screening")),
)

REJECTION_CATEGORIES = ("skills", "experience", "culture_fit", "position_filled", "other")
_REASON_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("position_filled", ("充足", "採用枠", "枠が埋ま", "募集終了", "募集を終了", "締め切", "締切",
                         "他の方", "他の候補", "filled", "closed")),
    ("skills", ("スキル", "技術", "技能", "能力", "知識", "skill", "technical")),
    ("experience", ("経験", "実務", "年数", "experience")),
    ("culture_fit", ("社風", "価値観", "カルチャー", "文化", "志向", "相性", "マッチ", "適性",
                     "人物", "fit", "culture")),
)

FIELDS = ("id", "skills", "qualifications", "desired_role", "prefecture", "experience",
          "stage_reached", "rejection_category", "source", "applied_month")


class AnonymousRow(TypedDict):
    id: str
    skills: list[str]
    qualifications: list[str]
    desired_role: str | None
    prefecture: str | None
    experience: str
    stage_reached: str
    rejection_category: str | None
    source: str | None
    applied_month: str | None


@dataclass(frozen=True)
class Export:
    rows: list[AnonymousRow]
    left_out: int  # candidates without an explicit talent_pool grant


def may_share(candidate: Candidate, notified: Iterable[str], purpose: str = PURPOSE) -> Held:
    """Sharing outside the company needs an explicit grant of `purpose` (`talent_pool` for the
    export; `network` for the network pool): being notified of it is not enough (see the
    module's docstring)."""
    held = consent.state(candidate, purpose, notified)
    entry = (candidate.get("consents") or {}).get(purpose)
    if held.holds and not (isinstance(entry, dict) and entry.get("state") == "granted"):
        return Held(False, f"{purpose} only notified: sharing needs the candidate's own grant")
    return held


# -- what identifies the person -----------------------------------------------------------------


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def identifiers(candidate: Mapping[str, Any]) -> frozenset[str]:
    """Folded, spaceless pieces of the candidate's name, emails and phones no value may hold."""
    found: set[str] = set()
    for name in (candidate.get(k) for k in ("name", "name_normalized", "name_kana")):
        parts = _fold(str(name or "")).split()
        found.update(p for p in (*parts, "".join(parts)) if len(p) >= 2)
    for email in candidate.get("emails") or ():
        address = _fold(str(email)).strip()
        found.update(p for p in (address, address.partition("@")[0]) if len(p) >= 3)
    for phone in candidate.get("phones") or ():
        digits = normalise_phone(str(phone)) or re.sub(r"\D", "", _fold(str(phone)))
        found.update(d for d in (digits, digits.lstrip("0")) if len(d) >= 7)
    return frozenset(found)


def usable(value: object, known: frozenset[str] = frozenset()) -> str | None:
    """`value` in canonical form if it may stand in the export as a tag, else None: no longer
    than 40 characters, on one line, no @ or URL, no run of 7 digits (a phone), none of `known`."""
    text = " ".join(unicodedata.normalize("NFKC", str(value or "")).split()).replace(";", ",")
    folded = text.casefold()
    compact = "".join(folded.split())
    if not text or len(text) > 40 or "@" in text or "://" in text:
        return None
    if any(unicodedata.category(c) == "Cc" for c in str(value)) or re.search(
            r"\d{7,}", re.sub(r"[\s\-()]", "", folded)):
        return None
    digits = re.sub(r"\D", "", folded)
    if any(k in compact or (k.isdigit() and k in digits) for k in known):
        return None
    return text


def _tags(values: Iterable[object], known: frozenset[str]) -> list[str]:
    kept: dict[str, str] = {}
    for value in values:
        tag = usable(value, known)
        if tag is not None:
            kept.setdefault(tag.casefold(), tag)
    return sorted(kept.values(), key=str.casefold)


# -- the generalised fields ---------------------------------------------------------------------


def prefecture(address: object) -> str | None:
    """The first of the 47 prefectures written in an address line (or list of lines)."""
    lines = address if isinstance(address, list | tuple) else [address]
    for line in lines:
        found = _PREFECTURE.search(unicodedata.normalize("NFKC", str(line or "")))
        if found:
            return found.group(0)
    return None


def experience_band(years: object) -> str:
    try:
        value = -1.0 if years is None or isinstance(years, bool) else float(str(years))
    except ValueError:
        value = -1.0
    if not 0 <= value < 100:
        return "unknown"
    return "0-2y" if value < 3 else "3-5y" if value < 6 else "6-10y" if value <= 10 else "10y+"


def stage_step(stage: str) -> str | None:
    """The step of `STAGES` a stage's name is recognised as; None for none."""
    folded = _fold(stage)
    return next((step for step, words in _STAGE_WORDS if any(w in folded for w in words)), None)


def stage_reached(candidate: Candidate) -> str:
    steps = [stage_step(str(s.get("stage", ""))) for s in candidate.get("stages") or ()]
    if candidate.get("status") in ("offered", "hired"):
        steps.append("内定")
    return max((s for s in steps if s), key=STAGES.index, default=STAGES[0])


def rejection_category(reason: str) -> str:
    folded = _fold(reason)
    return next((c for c, words in _REASON_WORDS if any(w in folded for w in words)), "other")


def applied_month(candidate: Candidate, zone: tzinfo) -> str | None:
    months = []
    for application in candidate.get("applications") or ():
        try:
            months.append(parse_iso(str(application.get("applied_at"))).astimezone(zone))
        except ValueError:
            continue
    return max(months).strftime("%Y-%m") if months else None


# -- the export ---------------------------------------------------------------------------------


def row(candidate: Candidate, zone: tzinfo, new_id: str) -> AnonymousRow:
    """One candidate, generalised (the module's docstring says what each field is)."""
    extra: Mapping[str, Any] = candidate  # keys records may carry beyond the typed ones
    known = identifiers(candidate)
    rejection = candidate.get("rejection")
    reason = str(rejection.get("reason") or "") if rejection else ""
    rejected = rejection is not None or candidate.get("status") == "rejected"
    return {
        "id": new_id,
        "skills": _tags(candidate.get("skills") or (), known),
        "qualifications": _tags(candidate.get("qualifications") or (), known),
        "desired_role": usable(candidate.get("desired_role"), known),
        "prefecture": prefecture(extra.get("address")),
        "experience": experience_band(extra.get("experience_years")),
        "stage_reached": stage_reached(candidate),
        "rejection_category": rejection_category(reason) if rejected else None,
        "source": usable(candidate.get("source"), known),
        "applied_month": applied_month(candidate, zone),
    }


def _new_id() -> str:
    return secrets.token_hex(8)


_shuffle = secrets.SystemRandom().shuffle


def anonymised_pool(candidates: Iterable[Candidate], notified: Iterable[str], zone: tzinfo,
                    new_id: Callable[[], str] = _new_id,
                    shuffle: Callable[[list[AnonymousRow]], None] = _shuffle
                    ) -> Export:
    """The rows of the candidates who may be shared, each with a fresh id, shuffled."""
    notified = tuple(notified)
    rows: list[AnonymousRow] = []
    ids: set[str] = set()
    left_out = 0
    for candidate in candidates:
        if not may_share(candidate, notified).holds:
            left_out += 1
            continue
        fresh = new_id()
        while fresh in ids:
            fresh = new_id()
        ids.add(fresh)
        rows.append(row(candidate, zone, fresh))
    shuffle(rows)
    return Export(rows, left_out)


# -- CSV ------------------------------------------------------------------------------------------

def csv_text(rows: Sequence[AnonymousRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for item in rows:
        cells: Mapping[str, object] = item
        writer.writerow([csv_cell(cells[field]) for field in FIELDS])
    return out.getvalue()
