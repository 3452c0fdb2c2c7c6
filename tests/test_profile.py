"""Issue 20 part 1: skills, qualifications, career and desired role read from application mails
and from résumés (PDF, DOCX, XLSX, text) made here, with provenance; `skills.toml` checked."""

from __future__ import annotations

import io
import itertools
import os
import shutil
import subprocess
from email.message import EmailMessage
from pathlib import Path

import docx
import openpyxl
import pytest
from harness import MAILFLOW, PASSWORD_ENV, offline_config
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from mailflow.clock import FrozenClock, parse_iso
from mailflow.mail.parse import parse_mail
from mailflow.pool.talent import TalentPool, new_candidate
from mailflow.profile.dictionary import check, load_skills
from mailflow.profile.documents import read_document
from mailflow.profile.extract import read_profile, terms
from mailflow.profile.provenance import add_found, by_value
from mailflow.profile.reading import read_mail, record_profile
from mailflow.starter import SHIPPED_RULES
from mailflow.store import open_store

SKILLS = load_skills(SHIPPED_RULES)
SKILLS_TOML_SHIPPED = (SHIPPED_RULES / "skills.toml").read_text(encoding="utf-8")
NOW = "2026-03-01T00:00:00.000000Z"

PDF_LINES = ["職務経歴書", "氏名　山田 太郎", "希望職種：バックエンドエンジニア",
             "スキル：Java 5年、Python歴3年、ＳＱＬ", "資格：基本情報技術者試験 合格、TOEIC 800点",
             "■職務経歴", "2019年4月 株式会社テスト入社 受発注システムの開発", "【自己PR】",
             "粘り強く取り組みます"]


def pdf_resume(lines: list[str] = PDF_LINES) -> bytes:
    """A PDF with Japanese text (reportlab's built-in Japanese CID font: no font file)."""
    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    out = io.BytesIO()
    page = canvas.Canvas(out, invariant=1)
    page.setFont("HeiseiKakuGo-W5", 11)
    for number, line in enumerate(lines):
        page.drawString(50, 800 - 20 * number, line)
    page.save()
    return out.getvalue()


def docx_resume() -> bytes:
    """A 職務経歴書 in Word: paragraphs and a skills table (名称 | 経験年数)."""
    document = docx.Document()
    document.add_heading("職務経歴書", 0)
    document.add_paragraph("希望職種：インフラエンジニア")
    document.add_paragraph("職務要約")
    document.add_paragraph("Webサービスの基盤を5年間運用。")
    table = document.add_table(rows=3, cols=2)
    for row, (name, years) in zip(table.rows, [("言語", "経験年数"), ("ｼﾞｬﾊﾞ", "3年"),
                                               ("Kubernetes", "2年半")], strict=True):
        row.cells[0].text, row.cells[1].text = name, years
    document.add_paragraph("保有資格：応用情報技術者、普通自動車第一種運転免許")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def xlsx_resume() -> bytes:
    """A 履歴書 in Excel: the 学歴・職歴 rows and the 免許・資格 rows of the usual form."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in [("履歴書",), ("氏名", "佐藤 花子"), ("年", "月", "学歴・職歴"),
                (None, None, "職歴"), (2018, 4, "株式会社サンプル 入社 経理部"),
                (None, None, "以上"), ("年", "月", "免許・資格"), (2017, 6, "日商簿記検定2級 合格"),
                (2019, 1, "普通免許 取得"), ("本人希望記入欄",), ("希望職種", "経理"),
                ("スキル", "Excel", "経験年数：4年")]:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def application(body: str, attachments: list[tuple[str, str, bytes]]) -> bytes:
    mail = EmailMessage()
    mail["From"] = "山田 太郎 <taro@example.net>"
    mail["To"] = "jobs@example.co.jp"
    mail["Subject"] = "【応募】エンジニア職"
    mail["Message-ID"] = "<profile-1@example.net>"
    mail.set_content(body)
    for name, content_type, data in attachments:
        main, sub = content_type.split("/")
        mail.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return mail.as_bytes()


PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def pool(tmp_path: Path) -> TalentPool:
    store = open_store(tmp_path / "data")
    yield TalentPool(store, FrozenClock(parse_iso(NOW)))
    store.close()


def test_resumes_in_pdf_docx_and_xlsx_yield_skills_with_their_provenance(
        pool: TalentPool) -> None:
    raw = application("応募いたします。Excelは日常的に使っています。",
                      [("職務経歴書.pdf", PDF, pdf_resume()),
                       ("職務経歴書.docx", DOCX, docx_resume()),
                       ("履歴書.xlsx", XLSX, xlsx_resume())])
    readings = read_mail(parse_mail(raw), SKILLS)
    assert [r.source for r in readings] == ["mail", "attachment:職務経歴書.pdf",
                                            "attachment:職務経歴書.docx", "attachment:履歴書.xlsx"]
    assert all(r.problem == "" for r in readings)
    candidate = new_candidate("c_1", NOW)
    pool.save(candidate)
    record_profile(pool, candidate, readings)
    stored = pool.get("c_1")
    assert stored is not None
    assert stored["skills"] == ["Excel", "Java", "Python", "SQL", "Kubernetes", "経理"]
    assert stored["qualifications"] == ["基本情報技術者", "TOEIC", "応用情報技術者",
                                        "普通自動車第一種運転免許", "日商簿記2級"]
    assert stored["desired_role"] == "バックエンドエンジニア"  # the first résumé's; kept after
    assert stored["career"].startswith("2019年4月 株式会社テスト入社")
    said = {(p["field"], p["value"], p["source"]): p for p in stored["provenance"]}
    assert said["skills", "Java", "attachment:職務経歴書.pdf"]["matched"] == "Java 5年"
    assert said["skills", "Java", "attachment:職務経歴書.pdf"]["years"] == 5.0
    assert said["skills", "Java", "attachment:職務経歴書.docx"]["matched"] == "ジャバ\t3年"
    assert said["skills", "Kubernetes", "attachment:職務経歴書.docx"]["years"] == 2.5
    assert said["skills", "Excel", "mail"]["years"] is None
    assert said["skills", "Excel", "attachment:履歴書.xlsx"]["years"] == 4.0
    assert said["qualifications", "TOEIC", "attachment:職務経歴書.pdf"]["score"] == 800
    boki = said["qualifications", "日商簿記2級", "attachment:履歴書.xlsx"]
    assert boki["matched"] == "日商簿記検定2級"
    assert said["qualifications", "普通自動車第一種運転免許", "attachment:履歴書.xlsx"][
        "matched"] == "普通免許"
    assert all(p["at"] == NOW for p in stored["provenance"])
    view = by_value(stored)
    java = next(v for v in view["skills"] if v["value"] == "Java")
    assert java["years"] == 5.0 and len(java["provenance"]) == 2
    assert view["career"]["provenance"][0]["source"] == "attachment:職務経歴書.pdf"
    event = [e for e in pool.timeline("c_1") if e["type"] == "profile"]
    assert len(event) == 1 and set(event[0]["data"]["fields"]) == {
        "mail", "attachment:職務経歴書.pdf", "attachment:職務経歴書.docx", "attachment:履歴書.xlsx"}
    record_profile(pool, stored, readings)  # the same mail again changes nothing
    assert len([e for e in pool.timeline("c_1") if e["type"] == "profile"]) == 1


def test_the_xlsx_resume_gives_the_career_section_and_desired_role() -> None:
    text = read_document(xlsx_resume(), "履歴書.xlsx", XLSX).text
    found = {f.field: f for f in read_profile(text, SKILLS)}
    assert found["career"].value == "2018 4 株式会社サンプル 入社 経理部"  # up to 以上
    assert found["desired_role"].value == "経理"


@pytest.mark.parametrize(("text", "names"), [
    ("ＪＡＶＡ", ["Java"]), ("java", ["Java"]), ("ｼﾞｬﾊﾞ", ["Java"]), ("ジャバ", ["Java"]),
    ("JavaScript", ["JavaScript"]), ("Spring Boot", ["Spring"]), ("C社にてC言語", ["C"]),
    ("C/C++とC#", ["C", "C++", "C#"]), ("普通免許", ["普通自動車第一種運転免許"]),
    ("普通自動車第一種運転免許", ["普通自動車第一種運転免許"]), ("簿記２級", ["日商簿記2級"]),
    ("日商簿記2級", ["日商簿記2級"]), ("基本情報技術者試験", ["基本情報技術者"]),
    ("Ruby未経験、Go勉強中", []), ("golang", ["Go"]), ("Google", []),
])
def test_a_synonym_maps_to_its_canonical_name(text: str, names: list[str]) -> None:
    assert [f.value for f in terms(text, SKILLS)] == names


@pytest.mark.parametrize(("text", "years"), [
    ("Java 5年", 5.0), ("Python歴3年", 3.0), ("Java（経験年数：3年）", 3.0), ("Java: 3年半", 3.5),
    ("Java 6ヶ月", 0.5), ("Java 2 years", 2.0), ("Java", None), ("Java、2019年入社", None),
])
def test_years_of_experience_are_read(text: str, years: float | None) -> None:
    assert terms(text, SKILLS)[0].years == years


def test_toeic_keeps_its_score() -> None:
    toeic = terms("TOEIC L&R 850点取得", SKILLS)[0]
    assert (toeic.value, toeic.score, toeic.matched) == ("TOEIC", 850, "TOEIC L&R 850点")


def test_hr_owned_field_is_not_changed_by_extraction() -> None:
    candidate = new_candidate("c_1", NOW)
    candidate["provenance"] = [{"field": "skills", "value": "COBOL", "source": "hr",
                                "matched": "COBOL", "years": None, "at": NOW}]
    candidate["skills"] = ["COBOL"]
    changed = add_found(candidate, terms("Java 5年、普通免許", SKILLS), "mail", NOW)
    assert changed == ["qualifications"] and candidate["skills"] == ["COBOL"]


def test_a_broken_pdf_is_noted_and_the_rest_is_read(pool: TalentPool) -> None:
    broken = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\n%%EOF garbage"
    raw = application("スキル：Python", [("履歴書.pdf", PDF, broken),
                                         ("zip.docx", DOCX, b"PK\x03\x04 not a zip")])
    readings = read_mail(parse_mail(raw), SKILLS)
    assert [bool(r.problem) for r in readings] == [False, True, True]
    assert readings[1].problem.startswith("not readable as PDF")
    assert readings[2].problem.startswith("not readable as DOCX")
    candidate = new_candidate("c_2", NOW)
    pool.save(candidate)
    record_profile(pool, candidate, readings)
    assert candidate["skills"] == ["Python"]
    noted = [e["data"] for e in pool.timeline("c_2") if e["type"] == "document_unreadable"]
    assert [n["sha256"] for n in noted] == [readings[1].sha256, readings[2].sha256]
    assert noted[0]["reason"].startswith("not readable as PDF")


def test_reading_stops_at_the_time_and_size_bounds() -> None:
    ticks = itertools.count(0, 100)  # every look at the clock: 100 s later
    slow = read_document(pdf_resume(), "a.pdf", PDF, clock=lambda: float(next(ticks)))
    assert slow.problem.startswith("reading took more than 10 s") and slow.text == ""
    huge = read_document(b"x" * (10 * 2**20 + 1), "a.txt", "text/plain")
    assert huge.problem.startswith("larger than 10 MiB") and huge.text == ""
    other = read_document(b"\x89PNG", "photo.png", "image/png")
    assert other.kind == "" and other.text == ""
    text = read_document("スキル：Java".encode("cp932"), "a.txt", "text/plain")
    assert text.text == "スキル：Java" and text.problem == ""


def _site(tmp_path: Path, skills: str) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, rules)
    (rules / "skills.toml").write_text(skills, encoding="utf-8")
    return offline_config(tmp_path, "rules")


def test_rules_check_names_every_problem_of_skills_toml_with_its_line(tmp_path: Path) -> None:
    config = _site(tmp_path, '[[skill]]\nname = "Java"\n\n[[skill]]\nname = "Python"\n'
                             'synonyms = ["JAVA"]\n\n[[qualification]]\nname = "普通免許"\n'
                             'scor = true\n')
    done = subprocess.run([*MAILFLOW, "rules", "check", "-c", str(config)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, PASSWORD_ENV: "unused"})
    path = tmp_path / "rules" / "skills.toml"
    assert done.returncode == 2, done.stderr
    assert f"mailflow: error: {path}:10: qualification[0].scor: unknown key; did you mean " \
           "'score'?" in done.stderr
    problems = check(tmp_path / "rules")
    assert [(p.line, p.message) for p in problems] == [
        (10, "qualification[0].scor: unknown key; did you mean 'score'?")]
    (tmp_path / "rules" / "skills.toml").write_text(
        '[[skill]]\nname = "Java"\n\n[[skill]]\nname = "Python"\nsynonyms = ["JAVA"]\n',
        encoding="utf-8")
    assert [(p.line, p.message) for p in check(tmp_path / "rules")] == [
        (4, "skill[1] (Python): 'java' already stands for 'Java'")]


def test_a_rules_folder_without_skills_toml_uses_the_shipped_one(tmp_path: Path) -> None:
    assert check(tmp_path) == []
    assert load_skills(tmp_path).canonical("ジャバ") is not None
