"""The columns of the candidate list `mailflow import` reads (`intake.importer`): their names in
English and Japanese, the words the status and yes/no columns take, and how each cell is read
(pure). A cell that cannot be read raises ValueError with the message the refused row shows.

The profile columns (スキル, 資格, 職歴, 希望職種) and the selection columns (面接担当者, 評価) are
kept as written here; `importer` maps skills and qualifications to their canonical names.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from zoneinfo import ZoneInfo

from mailflow.clock import iso
from mailflow.mail.people import normalise_email, normalise_phone

COLUMNS = ("name", "email", "phone", "source", "position", "applied_at", "status",
           "rejected_at", "rejection_reason", "rescout_ok", "tags", "consent",
           "consent_withdrawn", "skills", "qualifications", "career", "desired_role",
           "interviewer", "rating", "birth_date")

ALIASES: dict[str, str] = {
    **{column: column for column in COLUMNS},
    "氏名": "name", "名前": "name", "mail": "email", "e_mail": "email", "メール": "email",
    "メールアドレス": "email", "tel": "phone", "電話": "phone", "電話番号": "phone",
    "応募経路": "source", "媒体": "source", "職種": "position", "応募職種": "position",
    "応募日": "applied_at", "ステータス": "status", "状態": "status", "不採用日": "rejected_at",
    "不採用理由": "rejection_reason", "再応募可": "rescout_ok", "再スカウト可": "rescout_ok",
    "タグ": "tags", "同意": "consent", "同意した目的": "consent", "同意撤回": "consent_withdrawn",
    "不同意": "consent_withdrawn", "スキル": "skills", "保有スキル": "skills",
    "資格": "qualifications",
    "保有資格": "qualifications", "免許・資格": "qualifications", "資格・免許": "qualifications",
    "職歴": "career", "経歴": "career", "職務経歴": "career", "希望職種": "desired_role",
    "面接担当者": "interviewer", "面接官": "interviewer", "評価": "rating", "面接評価": "rating",
    "生年月日": "birth_date", "誕生日": "birth_date",
}

STATUSES: dict[str, str] = {
    **{s: s for s in ("applied", "screening", "interviewing", "offered", "hired", "rejected",
                      "withdrawn")},
    "応募": "applied", "応募済": "applied", "選考中": "screening", "書類選考": "screening",
    "面接": "interviewing", "面接中": "interviewing", "内定": "offered", "採用": "hired",
    "不採用": "rejected", "辞退": "withdrawn",
}

YES_NO: dict[str, bool] = {
    "yes": True, "no": False, "true": True, "false": False, "1": True, "0": False,
    "y": True, "n": False, "可": True, "不可": False, "○": True, "〇": True, "◯": True,
    "×": False, "✕": False, "x": False,
}

ENCODINGS = ("utf-8-sig", "cp932")
DATE = re.compile(r"(\d{4})(?:-|/|年)(\d{1,2})(?:-|/|月)(\d{1,2})日?"
                   r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
EMAIL = re.compile(r"[^@\s,;<>()]+@[^@\s,;<>()]+\.[^@\s,;<>()]+")
LIST_SPLIT = re.compile(r"[;,、，；]")
NON_WORD = re.compile(r"[\s\-]+")
# control characters, and what Python's cp932 makes of bytes CP932 leaves unassigned (UTF-16 …)
NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\uf8f0-\uf8f3]")



def email(value: str) -> str:
    email = normalise_email(value)
    if email and not EMAIL.fullmatch(email):
        raise ValueError(f"not an email address: {value!r}")
    return email


def phone(value: str) -> str | None:
    if not value:
        return None
    phone = normalise_phone(value)
    if phone is None:
        raise ValueError(f"not a Japanese phone number: {value!r}")
    return phone


def status(value: str) -> str | None:
    if not value:
        return None
    status = STATUSES.get(unicodedata.normalize("NFKC", value).strip().lower())
    if status is None:
        known = ", ".join(dict.fromkeys(STATUSES.values()))
        raise ValueError(f"unknown status {value!r}; known: {known} (or 応募, 選考中, 面接, "
                         "内定, 採用, 不採用, 辞退)")
    return status


def date(value: str, zone: ZoneInfo) -> str | None:
    if not value:
        return None
    match = DATE.fullmatch(unicodedata.normalize("NFKC", value).strip())
    try:
        if match is None:
            raise ValueError
        y, m, d, hh, mm, ss = (int(g) if g else 0 for g in match.groups())
        return iso(datetime(y, m, d, hh, mm, ss, tzinfo=zone))
    except ValueError:
        raise ValueError(f"not a date: {value!r}; expected YYYY-MM-DD, YYYY/MM/DD or "
                         "YYYY年M月D日") from None


def purposes(value: str, known: tuple[str, ...]) -> tuple[str, ...]:
    named = tuple(dict.fromkeys(p.strip() for p in LIST_SPLIT.split(
        unicodedata.normalize("NFKC", value)) if p.strip()))
    for purpose in named:
        if purpose not in known:
            raise ValueError(f"unknown purpose {purpose!r}; known: {', '.join(known)}")
    return named


def yes_no(value: str) -> bool | None:
    if not value:
        return None
    answer = YES_NO.get(unicodedata.normalize("NFKC", value).strip().lower())
    if answer is None:
        raise ValueError(f"not yes or no: {value!r}; expected yes/no, true/false, 1/0, 可/不可, "
                         "○/×")
    return answer


def split_list(value: str) -> tuple[str, ...]:
    """A list cell (`Java;Python`, `Java、Python`) as its items."""
    return tuple(dict.fromkeys(v.strip() for v in LIST_SPLIT.split(value) if v.strip()))


def birth_date(value: str) -> str | None:
    """A date of birth as YYYY-MM-DD (the forms `date` reads, no time)."""
    if not value:
        return None
    match = DATE.fullmatch(unicodedata.normalize("NFKC", value).strip())
    try:
        if match is None or match.group(4):
            raise ValueError
        y, m, d = (int(g) for g in match.groups()[:3])
        return datetime(y, m, d).date().isoformat()
    except ValueError:
        raise ValueError(f"not a date: {value!r}; expected YYYY-MM-DD, YYYY/MM/DD or "
                         "YYYY年M月D日") from None
