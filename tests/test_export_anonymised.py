"""Issue 18 part 6: `mailflow export --anonymized`, the anonymised talent pool. A pool of 100
constructed candidates, half with an explicit talent_pool grant, exported through the real CLI:
only the consented appear, and nothing that identifies anyone survives."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import stat
import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from harness import MAILFLOW

from mailflow.clock import FrozenClock, iso
from mailflow.pool import anonymised
from mailflow.pool.anonymised import (
    EXPERIENCE_BANDS,
    FIELDS,
    PREFECTURES,
    REJECTION_CATEGORIES,
    STAGES,
    anonymised_pool,
    csv_text,
    experience_band,
    may_share,
    prefecture,
    rejection_category,
    usable,
)
from mailflow.pool.records import Applicant, Candidate
from mailflow.pool.talent import TalentPool, new_candidate
from mailflow.settings.config import load_config
from mailflow.spreadsheets import csv_cell
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES
from mailflow.store import open_store

TOKYO = ZoneInfo("Asia/Tokyo")
FAMILY = [("山田", "ヤマダ", "yamada"), ("佐藤", "サトウ", "sato"), ("鈴木", "スズキ", "suzuki"),
          ("高橋", "タカハシ", "takahashi"), ("田中", "タナカ", "tanaka"),
          ("伊藤", "イトウ", "ito"), ("渡辺", "ワタナベ", "watanabe"),
          ("中村", "ナカムラ", "nakamura"), ("小林", "コバヤシ", "kobayashi"),
          ("加藤", "カトウ", "kato")]
GIVEN = [("太郎", "タロウ", "taro"), ("花子", "ハナコ", "hanako"), ("健太", "ケンタ", "kenta"),
         ("美咲", "ミサキ", "misaki"), ("翔太", "ショウタ", "shota"), ("陽菜", "ヒナ", "hina"),
         ("大輔", "ダイスケ", "daisuke"), ("結衣", "ユイ", "yui"), ("拓海", "タクミ", "takumi"),
         ("真由美", "マユミ", "mayumi")]
ADDRESSES = [("東京都", "〒100-0005 東京都千代田区丸の内{i}-2-3 サンプルマンション{i}01号室"),
             ("大阪府", "〒530-0001 大阪府大阪市北区梅田{i}丁目4番5号"),
             ("北海道", "〒060-0001 北海道札幌市中央区北一条西{i}丁目"),
             ("神奈川県", "〒220-0012 神奈川県横浜市西区みなとみらい{i}-1"),
             ("東京都", "〒183-0023 東京都府中市宮町{i}-7-8 コーポ府中{i}号")]
REASONS = [("skills", "今回はスキル面で募集要件に満たないと判断いたしました（{n}名中）"),
           ("experience", "実務経験の年数が当社の基準に達していないため（第{n}回選考会議）"),
           ("culture_fit", "社風とのマッチングを総合的に検討した結果、第{n}回会議で見送り"),
           ("position_filled", "他の方の採用が決まり、ポジションが充足したため（{n}番目の応募）"),
           ("other", "総合的な判断により、今回はご縁がなかったものとさせていただきます{n}")]
SKILLS = ["Python", "Java", "SQL", "AWS", "Excel", "法人営業", "簿記", "Go"]
QUALIFICATIONS = ["日商簿記2級", "基本情報技術者", "TOEIC 800", "普通自動車免許"]
ROLES = ["法人営業", "バックエンドエンジニア", "経理", "人事", "カスタマーサクセス"]
SOURCES = ["indeed", "doda", "direct", "マイナビ転職", "リクナビNEXT"]
STAGE_PATHS: list[tuple[str, ...]] = [(), ("書類選考通過",), ("書類選考通過", "一次面接"),
                                      ("一次面接", "二次面接", "最終面接"), ("一次面接", "内定")]


@dataclass
class Person:
    """What the test knows about one constructed candidate: every identifier and free text."""

    consented: bool
    names: list[str]
    emails: list[str]
    phones: list[str]
    free_text: list[str]
    prefecture: str
    band: str
    stage: str
    category: str | None


def _config(directory: Path) -> Path:
    path = directory / "config.toml"
    path.write_text(f'[store]\npath = "data"\n\n[rules]\ndir = "{SHIPPED_RULES}"\n'
                    f'templates_dir = "{SHIPPED_TEMPLATES}"\n', encoding="utf-8")
    return path


def _band(years: int) -> str:
    return "0-2y" if years < 3 else "3-5y" if years < 6 else "6-10y" if years <= 10 else "10y+"


def _seed(pool: TalentPool, i: int) -> Person:
    (family, family_kana, family_latin), (given, given_kana, given_latin) = (
        FAMILY[i // 10], GIVEN[i % 10])
    email = f"{given_latin.title()}.{family_latin.title()}{i}@Example.co.jp"
    number = f"90-{1000 + i:04d}-{5000 + i:04d}"
    phone = f"+81 {number}" if i % 2 else f"0{number}"
    role, source = ROLES[i % 5], SOURCES[(i // 5) % 5]
    candidate, _ = pool.apply(Applicant(f"{family} {given}", email, (phone,), role,
                                        f"{family}と申します。前職では営業事務を{i}年担当しました。",
                                        source), f"<app{i}@mail.example.jp>",
                              iso(datetime(2024, 1 + i % 12, 1 + i % 28, 3, tzinfo=UTC)))
    years = (i * 7) % 17
    career = (f"株式会社サンプル商事{i}号店にて{years}年間、新規開拓を中心に従事し、"
              f"前年比{100 + i}%の売上を達成。チーム{i % 9 + 2}名の取りまとめも経験。")
    pref, address = ADDRESSES[i % 5]
    doc = cast(dict[str, Any], candidate)
    doc.update(name_kana=f"{family_kana} {given_kana}", address=address.format(i=i),
               experience_years=years, career=career,
               skills=[SKILLS[i % 8], SKILLS[(i + 3) % 8], " python "],
               qualifications=[QUALIFICATIONS[i % 4]])
    if i == 0:  # a tag and a role a spreadsheet would take for a formula
        doc.update(skills=["=SUM(A1:A9)", "Python"], desired_role="=営業部長")
    pool.save(candidate)
    notes = []
    for step in STAGE_PATHS[i % 5]:
        note = f"面接官所見：{given}さんは論理的思考力が高く、調整経験{i}件が豊富。"
        notes.append(note)
        pool.record_stage(candidate, step, pool.now(), "sent", interviewer="佐藤 部長",
                          rating="B", note=note)
    category = None
    if i % 3:
        category, reason = REASONS[i % 5]
        reason = reason.format(n=i + 10)
        notes.append(reason)
        pool.record_rejection(candidate, reason, "一次面接", True, f"<rej{i}@mail.example.jp>")
    consented = i % 2 == 0
    if consented:
        pool.record_consent({"candidate": candidate["id"], "purpose": "talent_pool",
                             "word": "grant", "how": "同意ページ"})
    elif i % 4 == 1:
        pool.record_consent({"candidate": candidate["id"], "purpose": "talent_pool",
                             "word": "withdraw", "how": "メール返信"})
    stage = max((s for s in STAGE_PATHS[i % 5]), key=STAGES.index, default="応募")
    digits = number.replace("-", "")
    return Person(
        consented,
        names=[f"{family} {given}", f"{family}{given}", family, given,
               f"{family_kana} {given_kana}", f"{family_kana}{given_kana}", family_kana,
               given_kana, family_latin, given_latin, candidate["id"]],
        emails=[email, email.lower(), email.partition("@")[0]],
        phones=[f"0{number}", f"0{digits}", f"+81 {number}", f"+81{digits}", f"+81-{number}",
                digits],
        free_text=[career, address.format(i=i), *notes, f"<app{i}@mail.example.jp>",
                   f"{family}と申します。前職では営業事務を{i}年担当しました。"],
        prefecture=pref, band=_band(years), stage=stage, category=category)


def _pool(tmp_path: Path) -> tuple[Path, list[Person]]:
    config = _config(tmp_path)
    store = open_store(load_config(config).data_dir)
    try:
        pool = TalentPool(store, FrozenClock(datetime(2025, 6, 1, tzinfo=UTC)))
        people = [_seed(pool, i) for i in range(100)]
    finally:
        store.close()
    return config, people


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, "export", *args, "-c", str(config)], capture_output=True,
                          text=True, timeout=120)


def _windows(text: str, size: int = 8) -> set[str]:
    return {text[k:k + size] for k in range(max(1, len(text) - size + 1))}


def _assert_nothing_identifies(output: str, people: list[Person]) -> None:
    folded = output.casefold()
    for person in people:
        for value in (*person.names, *person.emails, *person.phones):
            assert value.casefold() not in folded, value
        for text in person.free_text:
            for window in _windows(text):
                assert window.casefold() not in folded, (window, text)


def _assert_the_consented(rows: list[dict[str, Any]], people: list[Person]) -> None:
    consented = [p for p in people if p.consented]
    assert len(rows) == len(consented) == 50
    assert {r["prefecture"] for r in rows} <= set(PREFECTURES)
    assert {r["experience"] for r in rows} <= set(EXPERIENCE_BANDS)
    assert {r["stage_reached"] for r in rows} <= set(STAGES)
    assert {r["rejection_category"] for r in rows} <= {*REJECTION_CATEGORIES, None, ""}
    assert Counter(r["prefecture"] for r in rows) == Counter(p.prefecture for p in consented)
    assert Counter(r["experience"] for r in rows) == Counter(p.band for p in consented)
    assert Counter(r["stage_reached"] for r in rows) == Counter(p.stage for p in consented)
    assert Counter(r["rejection_category"] or None for r in rows) == Counter(
        p.category for p in consented)


def test_the_export_holds_only_the_consented_and_nothing_that_identifies_them(
        tmp_path: Path) -> None:
    config, people = _pool(tmp_path)
    first, second, as_csv = _run(config, "--anonymized", "--json"), _run(
        config, "--anonymized", "--json"), _run(config, "--anonymised", "--csv")
    for done in (first, second, as_csv):
        assert done.returncode == 0, done.stderr
        assert "50 candidate(s) exported; 50 left out" in done.stderr
        _assert_nothing_identifies(done.stdout, people)

    rows = json.loads(first.stdout)
    assert all(list(r) == list(FIELDS) for r in rows)
    _assert_the_consented(rows, people)
    assert {"python", "=sum(a1:a9)"} <= {s.casefold() for r in rows for s in r["skills"]}
    assert all(len({s.casefold() for s in r["skills"]}) == len(r["skills"]) for r in rows)
    assert {r["applied_month"][:4] for r in rows} == {"2024"}

    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert list(table[0]) == list(FIELDS)
    _assert_the_consented([{**r, "rejection_category": r["rejection_category"] or None}
                           for r in table], people)
    cells = [cell for r in table for cell in r.values()]
    assert "'=SUM(A1:A9);Python" in cells and "'=営業部長" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]

    ids = [{r["id"] for r in rows}, {r["id"] for r in json.loads(second.stdout)},
           {r["id"] for r in table}]
    assert all(len(found) == 50 for found in ids)
    assert not any(a & b for a, b in itertools.combinations(ids, 2))
    def order(found: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(r["stage_reached"], r["experience"], r["applied_month"]) for r in found]

    assert order(rows) != order(json.loads(second.stdout))  # shuffled, not in store order

    # each export is in the audit log, with its size and format and nothing about anyone
    store = open_store(load_config(config).data_dir, read_only=True)
    try:
        entries = [doc for _seq, doc in store.log("audit") if doc["action"] == "export"]
    finally:
        store.close()
    assert [(e["action"], e["detail"]) for e in entries] == [
        ("export", {"rows": 50, "format": "json"}), ("export", {"rows": 50, "format": "json"}),
        ("export", {"rows": 50, "format": "csv"})]
    assert all(e["actor"].startswith("cli:") for e in entries)


def test_the_file_is_owner_only_and_the_flag_is_required(tmp_path: Path) -> None:
    config, _people = _pool(tmp_path)
    target = tmp_path / "pool.csv"
    target.write_text("old\n")
    target.chmod(0o644)
    old = os.umask(0o022)
    try:
        done = _run(config, "--anonymized", "--csv", "-o", str(target))
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text(encoding="utf-8").startswith(",".join(FIELDS))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".pool")] == []

    bare = _run(config, "--json")
    assert bare.returncode == 2
    assert "only the anonymised export exists" in bare.stderr and "export-person" in bare.stderr
    assert _run(config, "--anonymized", "--json", "--csv").returncode == 2


# -- the pure module ------------------------------------------------------------------------------


def _candidate(clock: FrozenClock, **fields: Any) -> Candidate:
    candidate = new_candidate("c_1", iso(clock.now()))
    candidate.update(name="山田 太郎", name_normalized="山田 太郎", emails=["taro@example.jp"],
                     phones=["09012345678"], applications=[{
                         "position": "経理", "applied_at": iso(clock.now()), "source": "doda",
                         "message_ids": []}], source="doda")
    cast(dict[str, Any], candidate).update(fields)
    return candidate


def test_a_row_generalises_every_field() -> None:
    clock = FrozenClock(datetime(2024, 3, 31, 16, 30, tzinfo=UTC))  # 2024-04-01 01:30 in Tokyo
    candidate = _candidate(
        clock, consents={"talent_pool": {"state": "granted", "at": iso(clock.now()), "how": "x"}},
        skills=["Python", "python", "山田の推薦", "taro@example.jp", "090-1234-5678 連絡可"],
        qualifications=["日商簿記２級"], desired_role="経理", experience_years=4.5,
        address=["", "〒183-0023 東京都府中市宮町1-2-3"],
        stages=[{"stage": "一次面接のご案内", "interviewer": "", "rating": "", "at": "",
                 "note": "", "source": "sent"}],
        status="rejected", rejection={"reason": "ご経験が不足", "at": None, "stage": None})
    ids = iter(["a1", "a1", "b2"])
    done = anonymised_pool([candidate, candidate], ["talent_pool"], TOKYO,
                           new_id=lambda: next(ids), shuffle=lambda rows: None)
    assert [r["id"] for r in done.rows] == ["a1", "b2"]  # ids within one export are distinct
    assert done.rows[0] == {
        "id": "a1", "skills": ["Python"], "qualifications": ["日商簿記2級"],
        "desired_role": "経理", "prefecture": "東京都", "experience": "3-5y",
        "stage_reached": "一次面接", "rejection_category": "experience", "source": "doda",
        "applied_month": "2024-04"}


def test_only_an_explicit_grant_shares() -> None:
    clock = FrozenClock(datetime(2024, 1, 1, tzinfo=UTC))
    notified = ["selection", "talent_pool"]
    assert not may_share(_candidate(clock), notified).holds  # notified is not enough
    granted = {"talent_pool": {"state": "granted", "at": "2024-01-01", "how": "page"}}
    withdrawn = {"talent_pool": {"state": "withdrawn", "at": "2024-01-01", "how": "page"}}
    assert may_share(_candidate(clock, consents=granted), []).holds
    assert not may_share(_candidate(clock, consents=withdrawn), notified).holds
    done = anonymised_pool([_candidate(clock), _candidate(clock, consents=granted)], notified,
                           TOKYO)
    assert (len(done.rows), done.left_out) == (1, 1)
    assert done.rows[0]["rejection_category"] is None  # not rejected
    assert done.rows[0]["prefecture"] is None and done.rows[0]["experience"] == "unknown"


def test_the_fixed_sets() -> None:
    assert len(PREFECTURES) == len(set(PREFECTURES)) == 47
    assert prefecture("東京都府中市宮町") == "東京都"
    assert prefecture("〒600-8001 京都府京都市下京区") == "京都府"
    assert prefecture("北海道札幌市") == "北海道" and prefecture("New York") is None
    assert prefecture(None) is None
    assert [experience_band(y) for y in (0, 2.9, 3, 5, 6, 10, 10.5, 40)] == [
        "0-2y", "0-2y", "3-5y", "3-5y", "6-10y", "6-10y", "10y+", "10y+"]
    assert {experience_band(y) for y in (None, "", "abc", -1, True)} == {"unknown"}
    assert [rejection_category(r) for r in (
        "スキルが要件に満たない", "実務経験の不足", "社風との相性", "ポジションが充足", "",
        "諸般の事情", "他の方に決まりました（ご経験は十分でした）")] == [
        "skills", "experience", "culture_fit", "position_filled", "other", "other",
        "position_filled"]
    assert anonymised.stage_step("3次面接") == "二次面接" and anonymised.stage_step("雑談") is None


def test_values_that_are_not_tags_are_dropped() -> None:
    known = anonymised.identifiers({"name": "山田 太郎", "emails": ["Taro@Example.jp"],
                                    "phones": ["+81 90-1234-5678"]})
    assert usable(" Ｐｙｔｈｏｎ  3 ", known) == "Python 3"
    for value in ("太郎さん推薦", "TARO@example.jp", "taro-san", "9012345678", "x" * 41,
                  "two\nlines", "see https://example.jp", "03-1234-5678", None, ""):
        assert usable(value, known) is None, value


def test_the_csv_formula_guard() -> None:
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert csv_cell(f"{start}cmd") == f"'{start}cmd"
    assert csv_cell("Python") == "Python" and csv_cell(None) == ""
    assert csv_cell(["=A1", "Go"]) == "'=A1;Go"
    assert csv_text([]).splitlines() == [",".join(FIELDS)]
