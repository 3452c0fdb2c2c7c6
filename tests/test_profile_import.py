"""Issue 20 part 1: the import takes スキル, 資格, 職歴, 面接担当者, 評価, 希望職種 and 生年月日,
and its counts say what happened (four unchanged rows again: `0 merged, 4 unchanged`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from harness import MAILFLOW, PASSWORD_ENV
from test_profile import SKILLS_TOML_SHIPPED, _site

from mailflow.clock import SystemClock
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import load_config
from mailflow.store import open_store

LIST = (
    "氏名,メールアドレス,電話番号,応募経路,応募職種,応募日,ステータス,不採用日,スキル,資格,職歴,"
    "面接担当者,評価,希望職種,生年月日\n"
    "山田 太郎,taro@example.net,090-1234-5678,doda,エンジニア,2023/04/01,不採用,2023/05/10,"
    "\"java、Python 3年\",\"簿記2級;普通免許\",株式会社テストで受発注システム開発 5年,佐藤,B,"
    "バックエンドエンジニア,1990/04/01\n"
    "佐藤 花子,hanako@example.org,,リクナビ,経理,2023/04/02,選考中,,エクセル,日商簿記1級,,,A,,"
    "1992-12-24\n"
    "鈴木 一郎,ichiro@example.net,,doda,営業,2023/04/03,応募,,COBOL Z,,,,,,\n"
    "田中 三郎,saburo@example.net,,doda,営業,2023/04/04,応募,,,,,,,,\n"
)


def _import(config: Path, csv_file: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, "import", str(csv_file), *options, "-c", str(config)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, PASSWORD_ENV: "unused"})


def _people(config: Path) -> dict[str, dict]:
    settings = load_config(config)
    store = open_store(settings.data_dir, settings.store.engine, read_only=True)
    try:
        return {c["emails"][0]: dict(c) for c in TalentPool(store, SystemClock()).all()}
    finally:
        store.close()


def test_the_profile_and_selection_columns_reach_the_record(tmp_path: Path) -> None:
    config = _site(tmp_path, SKILLS_TOML_SHIPPED)
    csv_file = tmp_path / "list.csv"
    csv_file.write_text(LIST, encoding="utf-8")
    done = _import(config, csv_file, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ignored_columns"] == []  # スキル, 資格, 職歴, 面接担当者, 評価 … are read
    assert (report["created"], report["merged"], report["unchanged"]) == (4, 0, 0)
    people = _people(config)
    taro = people["taro@example.net"]
    assert taro["skills"] == ["Java", "Python"]
    assert taro["qualifications"] == ["日商簿記2級", "普通自動車第一種運転免許"]
    assert taro["career"] == "株式会社テストで受発注システム開発 5年"
    assert taro["desired_role"] == "バックエンドエンジニア"  # the column wins over the position
    assert taro["birth_date"] == "1990-04-01"
    assert taro["stages"] == [{"stage": "面接", "interviewer": "佐藤", "rating": "B",
                               "at": "2023-05-09T15:00:00.000000Z", "note": "",
                               "source": "import"}]
    python = next(p for p in taro["provenance"] if p["value"] == "Python")
    assert (python["source"], python["matched"], python["years"]) == ("import", "Python 3年", 3.0)
    hanako = people["hanako@example.org"]
    assert hanako["skills"] == ["Excel"] and hanako["qualifications"] == ["日商簿記1級"]
    assert hanako["desired_role"] == "経理" and hanako["birth_date"] == "1992-12-24"
    assert hanako["stages"][0]["stage"] == "選考" and hanako["stages"][0]["rating"] == "A"
    assert people["ichiro@example.net"]["skills"] == ["COBOL"]  # "COBOL Z": the known word
    assert people["saburo@example.net"]["stages"] == []


def test_reimporting_four_unchanged_rows_says_unchanged_4(tmp_path: Path) -> None:
    config = _site(tmp_path, SKILLS_TOML_SHIPPED)
    csv_file = tmp_path / "list.csv"
    csv_file.write_text(LIST, encoding="utf-8")
    assert _import(config, csv_file).returncode == 0
    again = _import(config, csv_file)
    assert again.returncode == 0, again.stderr
    assert "imported 4 row(s) (0 new, 0 merged, 4 unchanged)" in again.stdout
    changed = LIST.replace("COBOL Z", "COBOL;Java")  # one row adds a skill: merged 1
    csv_file.write_text(changed, encoding="utf-8")
    third = json.loads(_import(config, csv_file, "--json").stdout)
    assert (third["imported"], third["created"], third["merged"], third["unchanged"]) == (
        4, 0, 1, 3)
    assert _people(config)["ichiro@example.net"]["skills"] == ["COBOL", "Java"]
