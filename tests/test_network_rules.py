"""The network pool's pure parts (issue 23 part 5): what a company publishes
(`mailflow.network.entries`) and who may move an entry from 推薦 to 紹介 to 採用
(`mailflow.network.stages`). No store, no server."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from mailflow.errors import ProblemsError
from mailflow.network.entries import fields_of, plan_publish
from mailflow.network.stages import (
    HIRED,
    INTRODUCED,
    RECOMMENDED,
    Move,
    Refused,
    check,
    introduced_to,
    progress,
)
from mailflow.pool.anonymised import FIELDS
from mailflow.pool.records import Candidate
from mailflow.settings.config import load_config
from mailflow.settings.secrets import needed_secrets

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = "2026-12-01T00:00:00.000000Z"
NOTIFIED = ("selection", "talent_pool", "network")  # notified is not enough: a grant is needed


def _candidate(number: int, network: str | None = "granted") -> Candidate:
    doc: dict[str, Any] = {
        "id": f"c{number:04d}", "name": f"山田 太郎{number}",
        "emails": [f"taro{number}@example.jp"],
        "phones": [f"090-1234-{number:04d}"], "skills": ["Python", f"山田 太郎{number}"],
        "qualifications": ["基本情報技術者"], "desired_role": "経理", "source": "indeed",
        "status": "rejected", "applications": [{"position": "経理",
                                                "applied_at": "2026-03-01T00:00:00Z"}],
        "consents": {},
    }
    if network is not None:
        doc["consents"]["network"] = {"state": network, "at": NOW, "how": "consent page"}
    return cast(Candidate, doc)


def _ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"e{next(counter):032d}"


def test_only_explicit_grants_are_published_with_the_export_fields_and_no_identity() -> None:
    pool = [_candidate(1), _candidate(2, None), _candidate(3, "withdrawn"), _candidate(4)]
    plan = plan_publish(pool, {}, {}, "client-a", NOTIFIED, TOKYO, NOW, _ids())
    assert (plan.added, plan.left_out, plan.updated, plan.unchanged) == (2, 2, 0, 0)
    assert sorted(plan.links.values()) == ["c0001", "c0004"]
    assert set(plan.links) == {doc["entry"] for doc in plan.upserts}
    for doc in plan.upserts:
        assert set(doc) == {"entry", "company", "fields", "published_at", "updated_at"}
        assert set(doc["fields"]) == set(FIELDS) - {"id"}
        assert doc["fields"]["skills"] == ["Python"]  # the tag naming the person is dropped
        text = json.dumps(doc, ensure_ascii=False)
        for secret in ("c0001", "c0004", "山田", "taro", "1234", "example.jp"):
            assert secret not in text


def test_publishing_again_changes_nothing_and_a_change_updates_the_same_entry() -> None:
    pool = [_candidate(1), _candidate(2)]
    first = plan_publish(pool, {}, {}, "client-a", NOTIFIED, TOKYO, NOW, _ids())
    links = dict(first.links)
    published = {doc["entry"]: doc for doc in first.upserts}
    again = plan_publish(pool, links, published, "client-a", NOTIFIED, TOKYO, "later", _ids())
    assert again.summary() == {"published": 0, "updated": 0, "unchanged": 2, "withdrawn": 0,
                               "left_out": 0}
    assert not (again.links or again.upserts or again.removals or again.dropped_links)
    cast(dict[str, Any], pool[0])["desired_role"] = "人事"
    changed = plan_publish(pool, links, published, "client-a", NOTIFIED, TOKYO, "later", _ids())
    assert (changed.updated, changed.unchanged, changed.links) == (1, 1, {})
    [doc] = changed.upserts
    assert links[doc["entry"]] == "c0001"
    assert (doc["published_at"], doc["updated_at"]) == (NOW, "later")


def test_withdrawal_and_erasure_take_the_entry_out() -> None:
    pool = [_candidate(1), _candidate(2), _candidate(3)]
    first = plan_publish(pool, {}, {}, "client-a", NOTIFIED, TOKYO, NOW, _ids())
    links = dict(first.links)
    published = {doc["entry"]: doc for doc in first.upserts}
    entry_of = {c: e for e, c in links.items()}
    pool[0]["consents"]["network"] = {"state": "withdrawn", "at": NOW, "how": "reply keyword"}
    del pool[2]  # erased
    plan = plan_publish(pool, links, published, "client-a", NOTIFIED, TOKYO, "later", _ids())
    gone = sorted([entry_of["c0001"], entry_of["c0003"]])
    assert plan.removals == gone and plan.dropped_links == gone
    assert (plan.unchanged, plan.left_out) == (1, 1)


def test_the_fields_are_the_anonymised_exports() -> None:
    assert list(fields_of(_candidate(1), TOKYO)) == [f for f in FIELDS if f != "id"]


MEMBERS = ("client-a", "client-b", "agency-d")


def _flow(*moves: Move, publisher: str = "client-a", live: bool = True) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for move in moves:
        event = check(move, publisher, live, events, MEMBERS, NOW)
        if event is not None:
            events.append(event)
    return events


def test_the_stage_flow_across_companies_once_each() -> None:
    events = _flow(Move("e1", RECOMMENDED, "agency-d", "client-b"),
                   Move("e1", RECOMMENDED, "client-b", "client-b"),  # the same move: no event
                   Move("e1", INTRODUCED, "client-a", "client-b"),
                   Move("e1", INTRODUCED, "client-a", "client-b"),
                   Move("e1", HIRED, "client-b", "client-b"),
                   Move("e1", HIRED, "client-b", "client-b"))
    assert [e["stage"] for e in events] == [RECOMMENDED, INTRODUCED, HIRED]
    [row] = progress(events, "client-b", {"e1": True})
    assert (row["stage"], row["publisher"], row["company"]) == (HIRED, "client-a", "client-b")
    assert set(row["at"]) == {RECOMMENDED, INTRODUCED, HIRED}
    assert progress(events, "agency-d", {}) == [dict(row, live=False)]  # it recommended it
    assert progress(events, "client-c", {}) == []  # not involved: sees nothing of it


@pytest.mark.parametrize(("move", "why"), [
    (Move("e1", INTRODUCED, "client-b", "client-b"), "only client-a"),
    (Move("e1", INTRODUCED, "client-a", "client-b"), "not recommended to client-b yet"),
    (Move("e1", HIRED, "client-b", "client-b"), "not introduced to client-b yet"),
    (Move("e1", HIRED, "agency-d", "client-b"), "only client-b can record its own hire"),
    (Move("e1", RECOMMENDED, "client-b", "client-a"), "client-a's own"),
    (Move("e1", RECOMMENDED, "client-b", "client-x"), "not a member"),
    (Move("e1", "内定", "client-b", "client-b"), "unknown stage"),
])
def test_a_move_the_company_is_not_entitled_to_is_refused(move: Move, why: str) -> None:
    with pytest.raises(Refused, match=why):
        check(move, "client-a", True, [], MEMBERS, NOW)


def test_a_withdrawn_entry_moves_no_further_but_its_hire_is_still_recorded() -> None:
    events = _flow(Move("e1", RECOMMENDED, "client-b", "client-b"),
                   Move("e1", INTRODUCED, "client-a", "client-b"))
    with pytest.raises(Refused, match="no longer in the pool"):
        check(Move("e1", RECOMMENDED, "client-b", "agency-d"), "client-a", False, events,
              MEMBERS, NOW)
    assert check(Move("e1", HIRED, "client-b", "client-b"), "client-a", False, events, MEMBERS,
                 NOW) is not None


def test_introduce_without_to_needs_exactly_one_company_waiting() -> None:
    one = _flow(Move("e1", RECOMMENDED, "client-b", "client-b"))
    assert introduced_to("e1", one) == "client-b"
    with pytest.raises(Refused, match="no company"):
        introduced_to("e1", [])
    two = _flow(Move("e1", RECOMMENDED, "client-b", "client-b"),
                Move("e1", RECOMMENDED, "agency-d", "agency-d"))
    with pytest.raises(Refused, match=r"several companies \(agency-d, client-b\)"):
        introduced_to("e1", two)


def _site(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_joining_needs_names_the_purpose_and_the_pools_secret(tmp_path: Path) -> None:
    config = load_config(_site(tmp_path, '[network]\nid = "d-network"\ncompany = "client-a"\n'
                                         "publish = true\n"))
    assert "network.dsn_env" in needed_secrets(config)
    assert "network.dsn_env" not in needed_secrets(load_config(_site(tmp_path, "")))
    with pytest.raises(ProblemsError, match="company: with publish = true"):
        load_config(_site(tmp_path, '[network]\nid = "d-network"\npublish = true\n'))
    with pytest.raises(ProblemsError, match='needs the purpose "network"'):
        load_config(_site(tmp_path, '[network]\nid = "d"\ncompany = "a"\npublish = true\n'
                                    '[privacy.purposes]\nselection = { ja = "選考", en = "s" }\n'
                                    '[privacy]\nnotified_purposes = ["selection"]\n'))
