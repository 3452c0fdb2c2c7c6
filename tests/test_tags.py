"""Issue 20 part 2: rules/tags.toml tags exactly the candidates whose facts meet it, on a frozen
clock and a real SQLite store, and re-tags when a fact changes — a consent withdrawn takes
スカウト対象 away, HR's own tags stay; the file is checked like the other rule files."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailflow.clock import FrozenClock
from mailflow.errors import ProblemsError
from mailflow.pool import consent
from mailflow.pool.facts import Facts, parse_when
from mailflow.pool.intent import HR, record_intent
from mailflow.pool.records import Applicant, Candidate
from mailflow.pool.tagging import TaggingStore, hr_tag
from mailflow.pool.tags import load_tags
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import PURPOSES
from mailflow.starter import SHIPPED_RULES
from mailflow.store import open_store

TOKYO = ZoneInfo("Asia/Tokyo")
NOTIFIED = frozenset({"selection", "talent_pool", "rescout"})
RESCOUT, RELAY, TARGET = "再スカウト可能", "他社推薦", "スカウト対象"


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[TalentPool]:
    inner = open_store(tmp_path / "data")
    clock = FrozenClock(datetime(2026, 3, 2, 10, 0, tzinfo=TOKYO))
    store = TaggingStore(inner, load_tags(SHIPPED_RULES, PURPOSES), NOTIFIED, clock)
    try:
        yield TalentPool(store, clock)
    finally:
        store.close()


def applied(pool: TalentPool, name: str) -> Candidate:
    candidate, _ = pool.apply(Applicant(name, f"{name}@example.net", (), "営業", "", "direct"),
                              f"<{name}@example.net>")
    return candidate


def rejected_at(pool: TalentPool, candidate: Candidate, stage: str,
                rescout: bool | None) -> None:
    pool.record_stage(candidate, stage, pool.now(), "test")
    pool.record_rejection(candidate, "経験不足", stage, rescout, None)


def tags_of(pool: TalentPool, candidate: Candidate) -> set[str]:
    found = pool.get(candidate["id"])
    assert found is not None
    return set(found["tags"])


def constructed(pool: TalentPool) -> dict[str, Candidate]:
    """Seven candidates, each meeting (or just missing) one shipped rule."""
    people = {name: applied(pool, name) for name in
              ("late", "early", "late_no", "wisher", "hr_yes", "registered", "fresh")}
    rejected_at(pool, people["late"], "最終面接", None)  # late stage, HR said nothing
    rejected_at(pool, people["early"], "一次面接", True)  # early stage, HR: rescout ok
    rejected_at(pool, people["late_no"], "二次面接", False)  # late stage, HR: no
    record_intent(pool, people["wisher"], True, HR, "test")
    rejected_at(pool, people["hr_yes"], "書類選考通過", True)
    people["registered"]["relay_status"] = "registered"
    pool.save(people["registered"])
    return people


def test_the_shipped_rules_tag_exactly_the_expected_candidates(pool: TalentPool) -> None:
    people = constructed(pool)
    expected = {"late": {RESCOUT}, "early": {TARGET}, "late_no": set(), "wisher": {TARGET},
                "hr_yes": {TARGET}, "registered": {RELAY}, "fresh": set()}
    for name, tags in expected.items():
        assert tags_of(pool, people[name]) == tags, name
    late = pool.get(people["late"]["id"])
    assert late is not None and late["rule_tags"] == [RESCOUT]
    kinds = [(e["type"], e["data"].get("added")) for e in pool.timeline(late["id"])]
    assert ("tags", [RESCOUT]) in kinds  # the change is on the timeline


def test_a_consent_withdrawn_removes_the_rule_tag_and_hrs_tag_stays(pool: TalentPool) -> None:
    people = constructed(pool)
    wisher = people["wisher"]
    hr_tag(pool.store, pool.clock, {"candidate": wisher["id"], "tag": "VIP", "action": "add",
                                    "actor": "cli:hr"})
    hr_tag(pool.store, pool.clock, {"candidate": "wisher@example.net", "tag": RELAY,
                                    "action": "add", "actor": "cli:hr"})
    assert tags_of(pool, wisher) == {TARGET, "VIP", RELAY}
    with pool.store.transaction():
        current = pool.get(wisher["id"])
        assert current is not None
        pool.consent_change(current, "rescout", False, consent.REPLY, "reply <r@x>")
    assert tags_of(pool, wisher) == {"VIP", RELAY}  # HR's stay, the rule's went
    removed = [e["data"] for e in pool.timeline(wisher["id"]) if e["type"] == "tags"][-1]
    assert removed == {"added": [], "removed": [TARGET], "by": "tags.toml"}
    with pool.store.transaction():
        current = pool.get(wisher["id"])
        assert current is not None
        pool.consent_change(current, "rescout", True, consent.PAGE, "request rq_1")
    assert tags_of(pool, wisher) == {TARGET, "VIP", RELAY}  # and it comes back with its fact


def test_a_rule_tag_hr_removed_is_not_given_again_until_hr_adds_it(pool: TalentPool) -> None:
    late = constructed(pool)["late"]
    args = {"candidate": late["id"], "tag": RESCOUT, "actor": "cli:hr"}
    done = hr_tag(pool.store, pool.clock, {**args, "action": "remove"})
    assert done["changed"] and RESCOUT not in done["tags"]
    current = pool.get(late["id"])
    assert current is not None
    pool.record_stage(current, "役員面接", pool.now(), "test")  # a fact changes: rules run again
    assert RESCOUT not in tags_of(pool, late)
    hr_tag(pool.store, pool.clock, {**args, "action": "add"})
    current = pool.get(late["id"])
    assert current is not None and RESCOUT in current["tags"]
    assert RESCOUT not in current.get("rule_tags", [])  # HR's now: a rule never removes it
    entries = [doc for _seq, doc in pool.store.log("audit")]
    assert [(e["action"], e["detail"]["action"]) for e in entries] == [
        ("tag", "remove"), ("tag", "add")]


def test_an_unknown_candidate_is_named() -> None:
    from mailflow.errors import MailflowError
    from mailflow.store import empty_store

    with pytest.raises(MailflowError, match=r"no candidate nobody@example\.net"):
        hr_tag(empty_store(), FrozenClock(datetime(2026, 1, 1, tzinfo=TOKYO)),
               {"candidate": "nobody@example.net", "tag": "x", "action": "add"})


# -- the condition vocabulary -------------------------------------------------------------


def _candidate(**fields: object) -> Candidate:
    from mailflow.pool.talent import new_candidate

    candidate = new_candidate("c_1", "2026-01-01T00:00:00Z")
    candidate.update(fields)  # type: ignore[typeddict-item]
    return candidate


@pytest.mark.parametrize(("when", "holds"), [
    ({"skills": "Java"}, True),
    ({"skills": ["Java", "SQL"]}, True),
    ({"skills": ["Java", "Go"]}, False),
    ({"skills": {"any": ["Go", "SQL"]}}, True),
    ({"skills": {"none": ["Go"]}}, True),
    ({"qualifications": {"matches": "基本情報"}}, True),
    ({"status": ["rejected", "withdrawn"]}, True),
    ({"status": {"none": ["rejected"]}}, False),
    ({"reapply_intent": True}, False),
    ({"reapply_intent": {"set": False}}, True),
    ({"rescout_ok": {"not": False}}, True),
    ({"rescout_ok": False}, True),  # never recorded counts as false
    ({"rating": "A"}, True),
    ({"rejection_stage": "最終面接"}, True),
    ({"desired_role": {"set": True}}, False),
])
def test_conditions_over_the_candidates_facts(when: dict[str, object], holds: bool) -> None:
    candidate = _candidate(
        status="rejected", skills=["Java", {"name": "SQL", "source": "resume.pdf"}],
        qualifications=["基本情報技術者"],
        stages=[{"stage": "最終面接", "rating": "A", "interviewer": "", "at": "", "note": "",
                 "source": ""}],
        rejection={"reason": "", "at": None, "stage": None})
    conditions, problems = parse_when(when)
    assert problems == []
    assert all(c.fails(Facts(candidate, NOTIFIED)) is None for c in conditions) == holds


def test_every_problem_of_a_tag_file_is_named_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "tags.toml").write_text(
        '[[tag]]\ntag = "a"\n[tag.when]\nskils = "Java"\n\n'
        '[[tag]]\ntag = "b"\n[tag.when]\nstatus.amy = ["rejected"]\nconsent = "rescuot"\n'
        'stages.matches = "("\n\n[[tag]]\ntagg = "c"\nwhen = {}\n', encoding="utf-8")
    with pytest.raises(ProblemsError) as caught:
        load_tags(tmp_path, PURPOSES)
    path = tmp_path / "tags.toml"
    messages = [str(p) for p in caught.value.problems]
    assert messages[:2] == [
        f"{path}:4: tag[0].when.skils: unknown fact 'skils'; did you mean 'skills'?",
        f"{path}:9: tag[1].when.status.amy: unknown operator 'amy'; did you mean 'any'?"]
    assert messages[2].startswith(f"{path}:10: tag[1].when.consent.any: unknown purpose "
                                  "'rescuot'")
    assert messages[3].startswith(f"{path}:11: tag[1].when.stages.matches: stages: bad "
                                  "regular expression")
    assert messages[4:] == [f"{path}:13: tag[2].tag: required key is missing",
                            f"{path}:14: tag[2].tagg: unknown key; did you mean 'tag'?",
                            f"{path}:15: tag[2].when: give at least one condition"]
