"""Issue 5 part 5: `mailflow import FILE.csv`, the candidate list kept before mailflow."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from harness import (
    MAILFLOW,
    PASSWORD_ENV,
    PROJECT,
    DaemonThread,
    env_for,
    offline_config,
    wait_until,
    write_config,
)
from servers import Dovecot, ImapAccount

from mailflow.clock import SystemClock
from mailflow.intake.importer import ALIASES, STATUSES, YES_NO, read_sheet
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import load_config
from mailflow.store import open_store, store_path

TOKYO = ZoneInfo("Asia/Tokyo")

JAPANESE = (
    "氏名,メールアドレス,電話番号,応募経路,応募職種,応募日,ステータス,不採用日,不採用理由,"
    "再スカウト可,タグ\n"
    "山田 太郎,Taro.Yamada@Example.net,090-1234-5678,doda,営業職,2023年4月1日,不採用,"
    "2023/05/10,経験不足,○,営業、東京\n"
    "佐藤 花子,hanako.sato@example.org,03-1234-5678,リクナビ,経理,2023/04/02,選考中,,,,"
    "経理;簿記2級\n"
)

BAD_ROWS = """\
name,email,phone,source,position,applied_at,status
Good One,good.one@example.net,,doda,sales,2024-01-05,applied
Bad Email,not-an-address,,doda,sales,2024-01-05,applied
Bad Status,bad.status@example.net,,doda,sales,2024-01-05,maybe
Bad Date,bad.date@example.net,,doda,sales,2024-02-30,applied
,,090-0000-1111,doda,sales,2024-01-05,applied
Good Two,good.two@example.net,,doda,sales,2024/01/06,応募
"""


def _config(directory: Path) -> Path:
    return offline_config(directory)


def _import(config: Path, csv_file: Path, *options: str,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, "import", str(csv_file), *options, "-c", str(config)],
                          capture_output=True, text=True, timeout=120,
                          env=env or {**os.environ, PASSWORD_ENV: "unused"})


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return _config(tmp_path)


def _people(config: Path) -> dict[str, dict[str, Any]]:
    settings = load_config(config)
    store = open_store(settings.data_dir, settings.store.engine, read_only=True)
    try:
        pool = TalentPool(store, SystemClock())
        return {c["emails"][0] if c["emails"] else c["phones"][0]:
                {**c, "timeline": pool.timeline(c["id"])} for c in pool.all()}
    finally:
        store.close()


def test_cp932_with_japanese_headers_marks_a_person_rejected(config: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "応募者一覧.csv"
    csv_file.write_bytes(JAPANESE.encode("cp932"))
    done = _import(config, csv_file)
    assert done.returncode == 0, done.stderr
    assert "imported 2 row(s) (2 new, 0 merged" in done.stdout
    people = _people(config)
    yamada = people["taro.yamada@example.net"]
    assert (yamada["name"], yamada["phones"], yamada["source"]) == (
        "山田 太郎", ["09012345678"], "doda")
    assert yamada["status"] == "rejected" and yamada["rescout_ok"] is True
    assert yamada["rejection"] == {"reason": "経験不足", "at": "2023-05-09T15:00:00.000000Z",
                                   "stage": None, "source": "import"}
    assert yamada["applications"] == [{"position": "営業職", "source": "doda",
                                       "applied_at": "2023-03-31T15:00:00.000000Z",
                                       "message_ids": []}]
    assert yamada["tags"] == ["営業", "東京"]
    events = [(e["type"], e["data"]) for e in yamada["timeline"]]
    assert [t for t, _d in events] == ["candidate_created", "imported", "rejected"]
    assert events[2][1]["reason"] == "経験不足" and events[2][1]["source"] == "import"
    sato = people["hanako.sato@example.org"]
    assert (sato["status"], sato["rejection"], sato["rescout_ok"]) == ("screening", None, None)
    assert sato["tags"] == ["経理", "簿記2級"] and sato["phones"] == ["0312345678"]


def test_utf8_with_bom_and_english_headers(config: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "list.csv"
    text = ("Name,E-mail,Phone,Status,Rescout OK,Tags\r\n"
            "Ichiro Suzuki,ichiro@example.jp,+81 80-9876-5432,Rejected,no,java,python\r\n")
    csv_file.write_bytes(text.encode("utf-8-sig"))
    done = _import(config, csv_file, "--json")
    assert done.returncode == 1, done.stderr  # "python" is a seventh cell the header lacks
    report = json.loads(done.stdout)
    assert report["refused"] == [{"row": 2, "column": "*",
                                  "message": "7 cells, the header names 6"}]
    csv_file.write_bytes(text.replace("java,python", '"java, python"').encode("utf-8-sig"))
    done = _import(config, csv_file, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["encoding"] == "utf-8-sig"
    suzuki = _people(config)["ichiro@example.jp"]
    assert suzuki["name"] == "Ichiro Suzuki" and suzuki["phones"] == ["08098765432"]
    assert (suzuki["status"], suzuki["rescout_ok"], suzuki["tags"]) == (
        "rejected", False, ["java", "python"])


def test_bad_rows_are_named_and_the_good_ones_imported(config: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text(BAD_ROWS, encoding="utf-8")
    done = _import(config, csv_file)
    assert done.returncode == 1
    errors = done.stderr.strip().splitlines()
    assert errors == [
        f"mailflow: error: {csv_file}:3: column email: not an email address: 'not-an-address'",
        f"mailflow: error: {csv_file}:4: column status: unknown status 'maybe'; known: applied, "
        "screening, interviewing, offered, hired, rejected, withdrawn (or 応募, 選考中, 面接, "
        "内定, 採用, 不採用, 辞退)",
        f"mailflow: error: {csv_file}:5: column applied_at: not a date: '2024-02-30'; expected "
        "YYYY-MM-DD, YYYY/MM/DD or YYYY年M月D日",
        f"mailflow: error: {csv_file}:6: column name: name and email are both empty; one is "
        "needed",
    ]
    assert "imported 2 row(s)" in done.stdout and "refused 4 row(s)" in done.stdout
    assert set(_people(config)) == {"good.one@example.net", "good.two@example.net"}


def test_duplicates_merge_within_the_file_and_with_the_pool(config: Path, tmp_path: Path) -> None:
    settings = load_config(config)
    store = open_store(settings.data_dir, settings.store.engine)
    TalentPool(store, SystemClock()).apply(Applicant(
        name="", email="misaki.takahashi@example.com", phones=(), position="デザイナー",
        note="", source="direct"), "<m1@example.com>")
    store.close()
    csv_file = tmp_path / "dups.csv"
    csv_file.write_text(
        "名前,メール,電話,媒体,職種,応募日,状態\n"
        "高橋 美咲,MISAKI.Takahashi@Example.COM ,070-1111-2222,doda,デザイナー,2022-06-01,面接\n"
        "高橋美咲,,(070)1111-2222,wantedly,UIデザイナー,2022-09-01,辞退\n"
        "伊藤 健,ken.ito@example.net,080-3333-4444,doda,営業,2022-07-01,応募\n"
        "伊藤 健,Ken.Ito@EXAMPLE.net,+81-80-3333-4444,doda,営業,2022/7/1,応募\n"
        "伊藤 健,ken.ito@example.net,,,,,\n",
        encoding="utf-8")
    dry = _import(config, csv_file, "--dry-run", "--json")
    done = _import(config, csv_file, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["imported"], report["created"], report["merged"], report["unchanged"]) == (
        5, 1, 2, 2)  # merged: the rows that changed a record
    assert {**json.loads(dry.stdout), "dry_run": False} == report  # the rehearsal is exact
    people = _people(config)
    assert set(people) == {"misaki.takahashi@example.com", "ken.ito@example.net"}
    takahashi = people["misaki.takahashi@example.com"]
    assert takahashi["name"] == "高橋 美咲" and takahashi["phones"] == ["07011112222"]
    assert takahashi["status"] == "applied"  # a value already there is kept
    assert takahashi["source"] == "direct" and takahashi["sources"] == [
        "direct", "doda", "wantedly"]
    assert [a["position"] for a in takahashi["applications"]] == [
        "デザイナー", "デザイナー", "UIデザイナー"]
    assert [m["reason"] for m in takahashi["merges"]] == [
        "same email misaki.takahashi@example.com", "same phone 07011112222"]
    ito = people["ken.ito@example.net"]
    assert len(ito["applications"]) == 1 and ito["phones"] == ["08033334444"]
    again = json.loads(_import(config, csv_file, "--json").stdout)
    assert (again["created"], again["merged"], again["unchanged"]) == (0, 0, 5)  # nothing new


def test_dry_run_writes_nothing(config: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "list.csv"
    csv_file.write_bytes(JAPANESE.encode("cp932"))
    assert _import(config, csv_file).returncode == 0
    settings = load_config(config)
    data = settings.data_dir
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    csv_file.write_bytes((JAPANESE + "新井 一,arai@example.net,,,,,,,,,\n").encode("cp932"))
    done = _import(config, csv_file, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "would import 3 row(s) (1 new, 0 merged, 2 unchanged)" in done.stdout
    after = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    for path, content in after.items():  # a reader may leave SQLite an empty WAL
        if path.name.endswith(("-wal", "-shm", ".lock")):
            assert path in before or not path.name.endswith("-wal") or content == b""
        else:
            assert content == before[path], path
    assert "arai@example.net" not in _people(config)


def test_json_shape(config: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "list.csv"
    csv_file.write_text(BAD_ROWS, encoding="utf-8")
    done = _import(config, csv_file, "--json", "--dry-run")
    assert done.returncode == 1 and done.stderr == ""
    report = json.loads(done.stdout)
    assert {"imported", "merged", "created", "refused", "dry_run"} <= set(report)
    assert (report["imported"], report["merged"], report["created"]) == (2, 0, 2)
    assert report["dry_run"] is True
    settings = load_config(config)  # a dry run before the first import leaves no store behind
    assert not store_path(settings.data_dir, settings.store.engine).exists()
    assert report["refused"][0] == {"row": 3, "column": "email",
                                    "message": "not an email address: 'not-an-address'"}
    assert [(r["row"], r["column"]) for r in report["refused"]] == [
        (3, "email"), (4, "status"), (5, "applied_at"), (6, "name")]


def test_usage_errors_exit_2(config: Path, tmp_path: Path) -> None:
    missing = _import(config, tmp_path / "missing.csv")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    utf16 = tmp_path / "unicode.txt"
    utf16.write_bytes("name,email\nA,a@example.net\n".encode("utf-16"))
    done = _import(config, utf16)
    assert done.returncode == 2
    assert done.stderr == (f"mailflow: error: {utf16.resolve()}: neither UTF-8 nor CP932 "
                           "(Shift_JIS) text; save it from Excel as \"CSV UTF-8\" or \"CSV\"\n")
    headless = tmp_path / "headless.csv"
    headless.write_text("山田 太郎,taro@example.net\n", encoding="utf-8")
    done = _import(config, headless)
    assert done.returncode == 2 and f"{headless.resolve()}:1: no usable header" in done.stderr
    assert not _people(config)


def test_reading_is_pure_and_positions_rows_by_line() -> None:
    sheet = read_sheet('name,email,position,applied_at,rescout_ok\n'
                       '"Multi\nLine",ml@example.net,x,２０２４年１月２日,不可\n'
                       '\n'
                       'Late,late@example.net,y,2024/1/2 9:30,maybe\n', TOKYO)
    assert [r.line for r in sheet.rows] == [2]
    assert sheet.rows[0].applied_at == "2024-01-01T15:00:00.000000Z"
    assert sheet.rows[0].rescout_ok is False
    assert [(p.line, p.column) for p in sheet.refused] == [(5, "rescout_ok")]


def test_every_column_alias_status_and_answer_is_documented() -> None:
    readme = (PROJECT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = readme.split("## Importing an existing list")[1].split("\n## ")[0]
    for word in [*ALIASES, *STATUSES, *YES_NO]:
        assert (f"`{word}`" if word.isascii() else word) in section.replace("-", "_"), word


def test_imported_rejection_then_reapplication_over_imap(
        tmp_path: Path, dovecot: Dovecot, imap_account: ImapAccount,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The must-hold: an imported CSV (CP932) marks a person rejected; a new application from
    them over IMAP sets `reapplied` and raises the event."""
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    config = write_config(tmp_path, imap_account)
    csv_file = tmp_path / "不採用者.csv"
    csv_file.write_bytes(
        ("氏名,メールアドレス,応募経路,応募職種,応募日,ステータス,不採用日,不採用理由,再応募可\n"
         "高橋 美咲,Misaki.Takahashi@example.com,doda,デザイナー,2023/3/1,不採用,2023/3/20,"
         "ポートフォリオ不足,可\n").encode("cp932"))
    with DaemonThread(config) as running:
        done = _import(config, csv_file, "--json", env=env_for(imap_account))
        assert done.returncode == 0, done.stderr  # through the control channel: the daemon
        store = running.daemon.store  # holds the writer lock, so no other writer could
        imported = store.find("candidates", "emails", "misaki.takahashi@example.com")
        assert imported[0]["status"] == "rejected" and imported[0]["rescout_ok"] is True
        mail = (f"From: =?UTF-8?B?6auY5qmLIOe+juWSsg==?= <MISAKI.TAKAHASHI@example.com>\r\n"
                f"To: {imap_account.address}\r\nSubject: =?UTF-8?B?5b+c5Yuf?=\r\n"
                f"Message-ID: <again-{time.time_ns()}@example.com>\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
                "\r\n採用ご担当者様\r\nデザイナー職に再度応募いたします。高橋美咲\r\n").encode()
        dovecot.append(imap_account.username, "INBOX", mail)
        wait_until(lambda: store.find("events", "type", "reapplied"), what="the re-application")
        candidate = store.find("candidates", "emails", "misaki.takahashi@example.com")[0]
        assert candidate["reapplied"] is True and "reapplied" in candidate["tags"]
        assert candidate["rejection"]["reason"] == "ポートフォリオ不足"
        events = [e["type"] for e in TalentPool(store, SystemClock()).timeline(candidate["id"])]
        assert events == ["candidate_created", "imported", "rejected", "merged", "reapplied"]
        assert len(store.find("candidates", "emails", "misaki.takahashi@example.com")) == 1
