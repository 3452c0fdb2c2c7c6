"""Issue 20 part 2: follow-up rules' conditions name any fact of the candidate (`when.tags`,
`when.skills`, `when.reapply_intent` …, the vocabulary of pool/facts.py); a rule with a tag
condition fires only for the candidates that have the tag (frozen clock, real SQLite store,
the real scheduler)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailflow.clock import FrozenClock
from mailflow.errors import ProblemsError
from mailflow.followups.rules import load_followups
from mailflow.followups.scheduler import FollowUpScheduler
from mailflow.pool.records import Applicant
from mailflow.pool.tagging import tagging_store
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import PURPOSES, Config, load_config
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES
from mailflow.store import open_store
from mailflow.store.base import Store

TOKYO = ZoneInfo("Asia/Tokyo")
RULE = """
[[followup]]
name = "scout-java-targets"
after = { event = "rejected", delay = "1d" }
when = { tags = ["スカウト対象"], skills.any = ["Java", "Kotlin"], reapply_intent.not = false }
tag_add = ["contacted"]
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Config, Store, FrozenClock]]:
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(SHIPPED_RULES / "tags.toml", rules / "tags.toml")
    (rules / "followups.toml").write_text(RULE, encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text('[privacy]\nnotified_purposes = ["selection", "rescout"]\n\n'
                    f'[rules]\ndir = "{rules}"\ntemplates_dir = "{SHIPPED_TEMPLATES}"\n',
                    encoding="utf-8")
    config = load_config(path)
    clock = FrozenClock(datetime(2026, 4, 1, 10, 0, tzinfo=TOKYO))
    store = tagging_store(open_store(config.data_dir), config, clock)
    try:
        yield config, store, clock
    finally:
        store.close()


def tags_of(pool: TalentPool, candidate_id: str) -> list[str]:
    found = pool.get(candidate_id)
    assert found is not None
    return found["tags"]


def test_a_rule_with_a_tag_condition_fires_only_for_tagged_candidates(
        site: tuple[Config, Store, FrozenClock]) -> None:
    config, store, clock = site
    pool = TalentPool(store, clock)
    people = {}
    for name, rescout in (("tagged", True), ("untagged", False)):
        candidate, _ = pool.apply(Applicant(name, f"{name}@example.net", (), "開発", "",
                                            "direct"), None)
        candidate["skills"] = ["Java"]
        pool.record_rejection(candidate, "経験不足", "一次面接", rescout, None)
        people[name] = candidate["id"]
    assert "スカウト対象" in tags_of(pool, people["tagged"])
    assert "スカウト対象" not in tags_of(pool, people["untagged"])
    scheduler = FollowUpScheduler(store, clock, config, None)
    assert scheduler.tick()["planned"] == 2
    clock.advance(timedelta(days=1, minutes=1))
    outcomes = scheduler.tick()
    assert (outcomes["sent"], outcomes["skipped"]) == (1, 1)
    assert "contacted" in tags_of(pool, people["tagged"])
    assert "contacted" not in tags_of(pool, people["untagged"])
    skipped = store.find("followups", "candidate_id", people["untagged"])[0]
    assert skipped["state"] == "skipped"
    assert skipped["reason"].startswith("tags.all = ['スカウト対象'] does not hold")


@pytest.mark.parametrize(("when", "message"), [
    ('when = { skils = ["Java"] }', "unknown key 'skils'; did you mean 'skills'?"),
    ('when = { reapply_intent = "yes" }',
     "reapply_intent: reapply_intent is a flag: use true/false, `not` or `set`"),
    ('when = { tags.amy = ["x"] }', "unknown operator 'amy'; did you mean 'any'?"),
])
def test_a_wrong_fact_condition_in_followups_is_named_with_its_line(
        tmp_path: Path, when: str, message: str) -> None:
    path = tmp_path / "followups.toml"
    path.write_text(RULE.replace(RULE.splitlines()[4], when), encoding="utf-8")
    with pytest.raises(ProblemsError) as caught:
        load_followups(tmp_path, SHIPPED_TEMPLATES, PURPOSES)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:5: followup[0].when: {message}"]
