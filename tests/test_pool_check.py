"""Issue 20 part 1: `mailflow pool check [--json]` lists the records with missing contact,
source or role, and suspected duplicates (name + birth date, name + phone), and only those."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from harness import MAILFLOW, PASSWORD_ENV
from test_profile import NOW, SKILLS_TOML_SHIPPED, _site

from mailflow.clock import FrozenClock, parse_iso
from mailflow.mail.people import normalise_name
from mailflow.pool.records import Candidate
from mailflow.pool.talent import TalentPool, new_candidate
from mailflow.profile.gaps import pool_gaps
from mailflow.settings.config import load_config
from mailflow.store import open_store


def _person(cid: str, name: str, emails: list[str], phones: list[str], source: str = "doda",
            role: str = "営業", birth: str | None = None) -> Candidate:
    candidate = new_candidate(cid, NOW)
    candidate.update({"name": name, "name_normalized": normalise_name(name), "emails": emails,
                      "phones": phones, "source": source, "desired_role": role})
    if birth:
        candidate["birth_date"] = birth
    return candidate


POOL = [
    _person("c_good", "山田 太郎", ["taro@example.net"], ["09011112222"]),
    _person("c_nocontact", "鈴木 一郎", [], []),
    _person("c_nosource", "高橋 次郎", ["jiro@example.net"], [], source=""),
    _person("c_norole", "田中 三郎", ["saburo@example.net"], [], role=""),
    _person("c_born1", "佐藤 花子", ["hanako@example.net"], [], birth="1990-04-01"),
    _person("c_born2", "佐藤花子", ["h.sato@example.org"], [], birth="1990-04-01"),
    _person("c_phone1", "伊藤 健", ["ken@example.net"], ["08033334444"]),
    _person("c_phone2", "伊藤 健", ["ken.ito@example.org"], ["08033334444"]),
    _person("c_namesake", "山田 太郎", ["other.taro@example.net"], ["07099998888"],
            birth="1985-01-01"),  # the same name, nothing else in common: not a duplicate
]
POOL[3]["applications"] = [{"position": "", "applied_at": NOW, "source": "doda",
                            "message_ids": []}]


def test_pool_gaps_names_each_bad_record_with_its_reason() -> None:
    found = [(g.candidate_id, g.reason, g.other) for g in pool_gaps(POOL)]
    assert found == [
        ("c_nocontact", "no contact", ""), ("c_nosource", "no source", ""),
        ("c_norole", "no role", ""),
        ("c_born1", "duplicate", "c_born2"), ("c_born2", "duplicate", "c_born1"),
        ("c_phone1", "duplicate", "c_phone2"), ("c_phone2", "duplicate", "c_phone1")]


def test_a_position_applied_for_is_a_role() -> None:
    candidate = _person("c_x", "A", ["a@example.net"], [], role="")
    candidate["applications"] = [{"position": "経理", "applied_at": NOW, "source": "doda",
                                  "message_ids": []}]
    assert pool_gaps([candidate]) == []


def _check(config: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, "pool", "check", *options, "-c", str(config)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, PASSWORD_ENV: "unused"})


def test_pool_check_command_lists_them_and_exits_1(tmp_path: Path) -> None:
    config = _site(tmp_path, SKILLS_TOML_SHIPPED)
    settings = load_config(config)
    store = open_store(settings.data_dir, settings.store.engine)
    pool = TalentPool(store, FrozenClock(parse_iso(NOW)))
    pool.save(POOL[0])
    store.close()
    clean = _check(config)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout == "the pool has no gaps and no suspected duplicates\n"
    store = open_store(settings.data_dir, settings.store.engine)
    for candidate in POOL[1:]:
        TalentPool(store, FrozenClock(parse_iso(NOW))).save(candidate)
    store.close()
    done = _check(config, "--json")
    assert done.returncode == 1 and done.stderr == ""
    listed = json.loads(done.stdout)
    assert {(item["id"], item["reason"]) for item in listed} == {
        ("c_nocontact", "no contact"), ("c_nosource", "no source"), ("c_norole", "no role"),
        ("c_born1", "duplicate"), ("c_born2", "duplicate"), ("c_phone1", "duplicate"),
        ("c_phone2", "duplicate")}
    assert not {"c_good", "c_namesake"} & {item["id"] for item in listed}
    human = _check(config)
    assert human.returncode == 1
    assert "c_born1  duplicate: same name and birth date (with c_born2)\n" in human.stdout
