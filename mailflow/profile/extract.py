"""Reading a profile out of text (pure): the skills and qualifications `skills.toml` knows, with
the years of experience or the score written after them, the 職歴 section as a short career
summary, and the 希望職種 line as the desired role.

The text is NFKC-normalised and lower-cased before matching, so full-width and half-width forms
and any case match. After a skill, a number of years within the same phrase is its experience:
"Java 5年", "Python歴3年", "Java（経験年数：3年）", "3年半" (3.5), "6ヶ月" (0.5). A mention
followed by 未経験, なし, 未取得, 取得予定, 勉強中 or 学習中 is not taken. A section starts at a
heading line (職歴, 職務経歴, 職務要約, 希望職種 … alone on a line, or followed by ":" and text)
and ends at the next heading or 以上.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from mailflow.profile.dictionary import SkillDictionary

CAREER_CHARS = 400
ROLE_CHARS = 80

_YEARS = re.compile(r"\s*[(\[]?\s*(?:歴|経験|実務|年数|使用|開発|期間|約|:|=|\s)*?"
                    r"(\d{1,2}(?:\.\d)?)\s*(年半|年|years?|yrs?|ヶ月|か月|カ月|ヵ月)")
_SCORE = re.compile(r"\s*(?:l&r|スコア|score|:|\s)*?(\d{2,3})(?!\d)\s*(?:点|points?)?")
_NOT_HELD = re.compile(r"\s*(?:は|:)?\s*(?:未経験|なし|無し|未取得|取得予定|勉強中|学習中)")

CAREER_HEADINGS = ("職務経歴詳細", "職務経歴", "職務要約", "職務概要", "職歴", "経歴",
                   "work experience", "career")
ROLE_HEADINGS = ("希望職種", "応募職種", "志望職種", "希望する職種", "desired position")
OTHER_HEADINGS = ("学歴・職歴", "学歴", "資格", "免許", "スキル", "保有資格", "活かせる経験",
                  "自己pr", "志望動機", "本人希望", "趣味", "特技", "氏名", "住所", "連絡先",
                  "テクニカルスキル", "開発環境", "education", "skills", "qualifications")
_HEADING = re.compile(r"^[\s■□●◆◇【\[<《〈・*#-]*("
                      + "|".join(re.escape(h) for h in sorted(
                          (*CAREER_HEADINGS, *ROLE_HEADINGS, *OTHER_HEADINGS), key=len,
                          reverse=True))
                      + r")[\s】\]>》〉]*(?:[:\t]\s*(.*)|\s*)$")


@dataclass(frozen=True)
class Found:
    """One value found: which field, its canonical value, the text as written, the years of
    experience (or a qualification's score) stated with it."""

    field: str  # "skills" | "qualifications" | "career" | "desired_role"
    value: str
    matched: str
    years: float | None = None
    score: int | None = None


def _years(after: str) -> tuple[float | None, int]:
    """The years stated at the start of `after`, and how many characters said it."""
    match = _YEARS.match(after)
    if match is None:
        return None, 0
    number, unit = float(match.group(1)), match.group(2)
    if unit == "年半":
        number += 0.5
    elif unit.endswith("月"):
        number = round(number / 12, 1)
    return number, match.end()


def _score(after: str) -> tuple[int | None, int]:
    """The score stated at the start of `after`, and how many characters said it."""
    match = _SCORE.match(after)
    return (int(match.group(1)), match.end()) if match else (None, 0)


def terms(text: str, dictionary: SkillDictionary) -> list[Found]:
    """Every skill and qualification the text names, once each (years: the largest stated)."""
    shown = unicodedata.normalize("NFKC", text)
    low = shown.lower()
    if len(low) != len(shown):
        shown = low
    found: dict[tuple[str, str], Found] = {}
    for match in dictionary.pattern.finditer(low):
        term = dictionary.canonical(match.group())
        after = low[match.end():match.end() + 24]
        if term is None or _NOT_HELD.match(after):
            continue
        years, said = _years(after) if term.kind == "skills" else (None, 0)
        if term.score:
            score, said = _score(after)
        else:
            score = None
        key = (term.kind, term.name)
        before = found.get(key)
        matched = shown[match.start():match.end() + said].strip()
        if before is None:
            found[key] = Found(term.kind, term.name, matched, years, score)
        elif (years or 0) > (before.years or 0) or (score or 0) > (before.score or 0):
            found[key] = Found(term.kind, term.name, matched,
                               max(years or 0, before.years or 0) or None,
                               max(score or 0, before.score or 0) or None)
    return list(found.values())


def sections(text: str) -> dict[str, list[str]]:
    """The lines under each career or role heading ("career", "desired_role"), first one wins."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in unicodedata.normalize("NFKC", text).splitlines():
        line = raw.strip()
        heading = _HEADING.match(line.lower())
        if heading is not None:
            name = heading.group(1)
            field = "career" if name in CAREER_HEADINGS else (
                "desired_role" if name in ROLE_HEADINGS else None)
            current = None if field is None or field in out else out.setdefault(field, [])
            rest = line[len(line) - len(heading.group(2)):] if heading.group(2) else ""
            if current is not None and rest.strip():
                current.append(rest.strip())
            continue
        if line == "以上":
            current = None
        elif current is not None and line:
            current.append(line)
    return out


def _summary(lines: list[str], limit: int) -> str:
    text = " / ".join(re.sub(r"\s+", " ", line) for line in lines)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def read_profile(text: str, dictionary: SkillDictionary) -> list[Found]:
    """Skills, qualifications, career and desired role as the text states them."""
    found = terms(text, dictionary)
    parts = sections(text)
    if parts.get("career"):
        summary = _summary(parts["career"][:8], CAREER_CHARS)
        found.append(Found("career", summary, parts["career"][0][:80]))
    if parts.get("desired_role"):
        role = _summary(parts["desired_role"][:1], ROLE_CHARS)
        found.append(Found("desired_role", role, parts["desired_role"][0][:80]))
    return found
