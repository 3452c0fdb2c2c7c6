"""Issue 20 parts 4 and 5: openings ranked against the pool (who is left out, the parts of each
score), `openings.toml` checked with file and line, HR's shortlist once per change,
`opening_matched` re-contacting through a follow-up with the opening in the template, the
commands, and the weights learned from outcomes (or the defaults kept, and why)."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import random
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import MAILFLOW, PROJECT

from mailflow.clock import CLOCK_FILE_ENV, FrozenClock, iso
from mailflow.daemon.checks import static_problems
from mailflow.errors import ProblemsError
from mailflow.followups.scheduler import FollowUpScheduler
from mailflow.openings import learning, text
from mailflow.openings.desk import WEIGHTS, OpeningDesk
from mailflow.openings.ranking import DEFAULT_WEIGHTS, FEATURES, Want, rank, score
from mailflow.openings.rules import load_openings
from mailflow.outgoing.outbox import Outbox
from mailflow.pool.records import Candidate
from mailflow.pool.talent import TalentPool, new_candidate
from mailflow.settings.config import Config, load_config
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES
from mailflow.store import open_store
from mailflow.store.base import Store

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # Wednesday 10:00 in Tokyo
JAVA = Want("Javaエンジニア", "自社サービスのサーバーサイド開発", ("Java",), ("Spring",),
            ("基本情報技術者",))
JAVA_TOML = """
[[opening]]
id = "java-backend"
title = "Javaエンジニア"
description = "自社サービスのサーバーサイド開発"
required_skills = ["Java"]
preferred_skills = ["Spring"]
required_qualifications = ["基本情報技術者"]
location = "東京都"
"""


def person(cid: str, skills: list[str], qualifications: list[str], role: str,
           rescout: str | None = "granted", career: str = "", at: str = "2026-05-01T00:00:00Z",
           **more: Any) -> Candidate:
    c = new_candidate(cid, at)
    c.update(name=f"候補者 {cid}", emails=[f"{cid}@example.net"], skills=skills,
             qualifications=qualifications, desired_role=role, career=career, status="rejected")
    if rescout:
        how = "unsubscribe link, one-click (RFC 8058)" if rescout == "withdrawn" else "import"
        c["consents"] = {"rescout": {"state": rescout, "at": at, "how": how}}
    c.update(more)  # type: ignore[typeddict-item]
    return c


def java_pool() -> list[Candidate]:
    return [
        person("a", ["Java", "Spring"], ["基本情報技術者"], "Javaエンジニア"),
        person("b", ["ＪＡＶＡ"], ["基本情報技術者"], "サーバーサイドエンジニア",
               career="Javaでの業務システム開発 3年"),
        person("c", ["Excel"], ["普通自動車第一種運転免許"], "法人営業"),
        person("no-consent", ["Java", "Spring"], ["基本情報技術者"], "Javaエンジニア",
               rescout=None),
        person("opted-out", ["Java", "Spring"], ["基本情報技術者"], "Javaエンジニア",
               rescout="withdrawn"),
    ]


# -- ranking (pure) ------------------------------------------------------------------------------


def test_a_java_opening_ranks_the_two_who_match_above_the_one_who_does_not() -> None:
    ranking = rank(JAVA, java_pool(), ["selection", "talent_pool"], text.terms, NOW)
    ids = [m.candidate_id for m in ranking.matches]
    assert sorted(ids[:2]) == ["a", "b"] and ids[2:] == ["c"]
    assert ranking.left_out == {"no rescout consent": 1, "opted out of rescout": 1}
    b = next(m for m in ranking.matches if m.candidate_id == "b")
    assert b.features["required_skills"] == 1.0  # ＪＡＶＡ is Java (NFKC, case-folded)
    assert b.features["role"] > 0  # サーバーサイド … 開発 in the description and the career
    c = ranking.matches[2]
    assert c.score < 0.2 < b.score


def test_each_score_is_the_sum_of_its_parts() -> None:
    for match in rank(JAVA, java_pool(), [], text.terms, NOW).matches:
        assert match.score == pytest.approx(sum(match.parts.values()))
        assert set(match.parts) == set(FEATURES)
    total, parts = score({"required_skills": 1.0}, DEFAULT_WEIGHTS)
    assert total == pytest.approx(3.0 / sum(DEFAULT_WEIGHTS.values()))
    assert parts["role"] == 0.0


def test_stage_rating_recency_and_intent_each_count() -> None:
    base = dict(skills=["Java"], qualifications=[], role="営業")
    plain = person("p", **base)  # type: ignore[arg-type]
    furthest = person("f", **base, stages=[{"stage": "最終面接", "interviewer": "", "at":  # type: ignore[arg-type]
                                            "2026-06-01T00:00:00Z", "rating": "A", "note": "",
                                            "source": ""}])
    wishes = person("w", **base, reapply_intent={"wish": True, "at": "2026-07-01",  # type: ignore[arg-type]
                                                 "how": "consent page"})
    refuses = person("r", **base, reapply_intent={"wish": False})  # type: ignore[arg-type]
    old = person("o", **base, at="2020-01-01T00:00:00Z")  # type: ignore[arg-type]
    found = {m.candidate_id: m for m in rank(JAVA, [plain, furthest, wishes, refuses, old], [],
                                             text.terms, NOW).matches}
    assert found["f"].features["stage"] == 0.8 and found["f"].features["rating"] == 1.0
    assert found["w"].features["intent"] == 1.0 and found["r"].features["intent"] == -1.0
    assert found["f"].score > found["p"].score > found["r"].score
    assert found["w"].score > found["p"].score > found["o"].score  # recency halves each year


def test_japanese_terms_normalise_spellings() -> None:
    assert "ドライバー" in text.terms("トラックドライバ")
    assert "java" in text.terms("ＪＡＶＡプログラマー")
    assert "経理" in text.terms("経理事務")  # two characters: what trigram cannot match


# -- openings.toml -------------------------------------------------------------------------------


def rules_dir(tmp_path: Path, openings: str = JAVA_TOML) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, rules)
    (rules / "openings.toml").write_text(openings, encoding="utf-8")
    return rules


def test_the_shipped_openings_file_loads() -> None:
    shipped = load_openings(SHIPPED_RULES)
    assert shipped.openings == () and shipped.shortlist.size == 10


def test_every_problem_of_the_file_with_its_line(tmp_path: Path) -> None:
    rules = rules_dir(tmp_path, JAVA_TOML + """
[[opening]]
id = "java-backend"
title = "二つ目"

[[opening]]
id = "op-1"
title = "x"
required_skils = ["Java"]
""")
    with pytest.raises(ProblemsError) as caught:
        load_openings(rules)
    text_ = [str(p) for p in caught.value.problems]
    path = rules / "openings.toml"
    assert any(t.startswith(f"{path}:18: ") and "did you mean 'required_skills'" in t
               for t in text_), text_
    assert any(t.startswith(f"{path}:16: ") and "'op-'" in t for t in text_), text_
    rules = rules_dir(tmp_path / "two", JAVA_TOML + '\n[[opening]]\nid = "java-backend"\n'
                      'title = "二つ目"\n')
    with pytest.raises(ProblemsError) as caught:
        load_openings(rules)
    assert [str(p) for p in caught.value.problems] == [
        f"{rules / 'openings.toml'}:12: opening id 'java-backend' used twice"]


def test_check_and_reload_report_the_file(tmp_path: Path) -> None:
    config = site(tmp_path, openings='[[opening]]\nid = "x"\ntitel = "typo"\n')
    problems = [str(p) for p in static_problems(config)]
    path = config.rules_dir / "openings.toml"
    assert f"{path}:3: opening[0].titel: unknown key; did you mean 'title'?" in problems
    assert f"{path}:1: opening[0].title: required key is missing" in problems


# -- the desk: the store, HR's shortlist, opening_matched ----------------------------------------


def site(tmp_path: Path, openings: str = JAVA_TOML, followups: str | None = None) -> Config:
    rules = rules_dir(tmp_path, openings)
    if followups is not None:
        (rules / "followups.toml").write_text(followups, encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(f"""
[company]
name = "株式会社テスト"
domains = ["example.co.jp"]
[mailbox]
address = "jobs@example.co.jp"
[smtp]
from = "jobs@example.co.jp"
[store]
path = "data"
[rules]
dir = "{rules}"
templates_dir = "{SHIPPED_TEMPLATES}"
""", encoding="utf-8")
    return load_config(path)


def seed(store: Store, candidates: list[Candidate]) -> None:
    with store.transaction():
        for c in candidates:
            store.put("candidates", c["id"], c)


def outbox_mails(store: Store) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(base64.b64decode(doc["raw"]),  # type: ignore[misc]
                                     policy=email.policy.default) for doc in store.scan("outbox")]


def test_hr_gets_the_shortlist_once_per_change(tmp_path: Path) -> None:
    config = site(tmp_path)
    clock = FrozenClock(NOW)
    with open_store(config.data_dir) as store:
        seed(store, java_pool())
        lane = threading.RLock()
        desk = OpeningDesk(store, clock, config, Outbox(store, clock, config, lane), lane)
        assert desk.sync() == ["java-backend"]
        assert desk.sync() == []  # unchanged: nothing again
        (mail,) = outbox_mails(store)
        assert mail["To"] == "jobs@example.co.jp"
        assert mail["Subject"] == "【mailflow】候補者リスト: Javaエンジニア（2名）"
        body = mail.get_content()
        assert "候補者 a" in body and "候補者 b" in body and "候補者 c" not in body
        assert "opted-out" not in body and "no-consent@" not in body
        assert "opted out of rescout: 1 名" in body
        matched = store.find("events", "type", "opening_matched")
        assert sorted(e["candidate_id"] for e in matched) == ["a", "b"]
        assert matched[0]["data"]["opening_id"] == "java-backend"
        assert set(matched[0]["data"]["features"]) == set(FEATURES)

        desk.close("java-backend")
        assert desk.sync() == []  # closed by command: holds while the entry is unchanged
        (config.rules_dir / "openings.toml").write_text(
            JAVA_TOML.replace("東京都", "大阪府"), encoding="utf-8")
        assert desk.sync() == ["java-backend"]  # changed: open again, ranked again
        assert len(outbox_mails(store)) == 2
        assert len(store.find("events", "type", "opening_matched")) == 2  # once per person
        (config.rules_dir / "openings.toml").write_text("", encoding="utf-8")
        desk.sync()
        assert store.get("openings", "java-backend")["state"] == "closed"  # type: ignore[index]

        added = desk.add({"title": "経理スタッフ", "required_skills": ["簿記"]})
        assert added["id"].startswith("op-") and added["source"] == "command"
        (told,) = [m for m in outbox_mails(store) if "経理スタッフ" in m["Subject"]]
        assert len(outbox_mails(store)) == 3  # even an empty shortlist is told
        assert "条件に合う候補者は見つかりませんでした" in told.get_content()


RESCOUT_ON_MATCH = """
[[followup]]
name = "opening-match"
after = { event = "opening_matched", delay = "1h" }
send = "opening_match.txt.j2"
subject = "【{{ company_name }}】{{ opening_title }}のご案内"
purpose = "rescout"
once = false
"""


def test_opening_matched_re_contacts_the_top_matches_with_the_opening(tmp_path: Path) -> None:
    config = site(tmp_path, followups=RESCOUT_ON_MATCH)
    clock = FrozenClock(NOW)
    with open_store(config.data_dir) as store:
        seed(store, java_pool())
        lane = threading.RLock()
        outbox = Outbox(store, clock, config, lane)
        OpeningDesk(store, clock, config, outbox, lane).sync()
        scheduler = FollowUpScheduler(store, clock, config, outbox, lane)
        assert scheduler.tick()["planned"] == 2
        clock.advance(timedelta(hours=2))
        assert scheduler.tick()["sent"] == 2
        mails = [m for m in outbox_mails(store) if m["To"] != "jobs@example.co.jp"]
        assert sorted(m["To"] for m in mails) == ["a@example.net", "b@example.net"]
        assert {m["Subject"] for m in mails} == {"【株式会社テスト】Javaエンジニアのご案内"}
        body = mails[0].get_content()
        assert "Javaエンジニア" in body and "東京都" in body


# -- the commands ----------------------------------------------------------------------------


def cli(config: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clock = tmp_path / "clock"
    clock.write_text(iso(NOW), encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT), CLOCK_FILE_ENV: str(clock)}
    return subprocess.run([*MAILFLOW, *args, "-c", str(config)], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_the_commands_add_list_match_and_close(tmp_path: Path) -> None:
    config = site(tmp_path, openings="")
    with open_store(config.data_dir) as store:
        seed(store, java_pool())
    path = config.source
    assert path is not None
    done = cli(path, tmp_path, "opening", "add", "--title", "Javaエンジニア", "--skills",
               "Java", "--qualifications", "基本情報技術者", "--description", "サーバーサイド開発",
               "--json")
    assert done.returncode == 0, done.stderr
    added = json.loads(done.stdout)
    assert added["required_skills"] == ["Java"]
    assert added["required_qualifications"] == ["基本情報技術者"] and added["shortlisted"] == 2
    listed = json.loads(cli(path, tmp_path, "opening", "list", "--json").stdout)
    assert [o["id"] for o in listed] == [added["id"]]
    shown = cli(path, tmp_path, "opening", "match", added["id"], "--json")
    matches = json.loads(shown.stdout)
    assert [m["id"] for m in matches][2:] == ["c"]
    assert {"id", "email", "score", "parts"} <= set(matches[0])
    assert matches[0]["score"] == pytest.approx(sum(matches[0]["parts"].values()), abs=1e-3)
    assert cli(path, tmp_path, "opening", "close", added["id"]).returncode == 0
    assert json.loads(cli(path, tmp_path, "opening", "list", "--json").stdout)[0][
        "state"] == "closed"
    missing = cli(path, tmp_path, "opening", "match", "nope")
    assert missing.returncode == 1 and missing.stderr == "mailflow: error: no opening nope\n"


# -- learning from outcomes ----------------------------------------------------------------------


def history(store: Store, clock: FrozenClock, people: int, depends_on: str) -> None:
    """`people` proposed for an opening; those with `depends_on` re-applied afterwards (nine in
    ten), the others seldom (one in ten); every other feature is noise."""
    rng = random.Random(3)
    pool = TalentPool(store, clock)
    with store.transaction():
        for n in range(people):
            values = {f: rng.random() for f in FEATURES}
            values[depends_on] = float(rng.random() < 0.5)
            positive = rng.random() < (0.9 if values[depends_on] else 0.1)
            c = person(f"h{n:03d}", [], [], "")
            if positive:
                c["applications"] = [{"position": "x", "applied_at": "2026-11-01T00:00:00Z",
                                      "source": "direct", "message_ids": []}]
            store.put("candidates", c["id"], c)
            pool.event(c["id"], "opening_matched", opening_id="old", features=values)


def test_learning_finds_the_skill_outcomes_depend_on(tmp_path: Path) -> None:
    config = site(tmp_path, openings="")
    clock = FrozenClock(datetime(2026, 6, 1, tzinfo=UTC))
    with open_store(config.data_dir) as store:
        history(store, clock, 200, "preferred_skills")
        desk = OpeningDesk(store, clock, config, None)
        found = desk.model()
        assert found["used"] == "learned", found["reason"]
        learned = found["weights"]
        assert max(learned, key=learned.get) == "preferred_skills"
        auc = found["held_out"]["auc"]
        assert auc["learned"] > auc["default"]
        assert desk.weights() == pytest.approx(learned)  # what `match` ranks with now


def test_on_too_little_data_the_defaults_stay_and_it_says_so(tmp_path: Path) -> None:
    config = site(tmp_path, openings="")
    clock = FrozenClock(datetime(2026, 6, 1, tzinfo=UTC))
    with open_store(config.data_dir) as store:
        history(store, clock, 20, "preferred_skills")
        desk = OpeningDesk(store, clock, config, None)
        found = desk.model()
        assert found["used"] == "default" and found["weights"] == DEFAULT_WEIGHTS
        assert found["reason"].startswith("too little data: 20 outcomes")
        assert desk.weights() == DEFAULT_WEIGHTS
        assert store.get("settings", WEIGHTS)["used"] == "default"  # type: ignore[index]


def test_learned_weights_that_do_not_beat_the_defaults_are_not_used() -> None:
    rng = random.Random(5)
    noise = [learning.Example({f: rng.random() for f in FEATURES}, rng.random() < 0.5)
             for _ in range(200)]
    # the defaults already rank perfectly: outcomes follow the default score
    perfect = [learning.Example(e.features, score(e.features, DEFAULT_WEIGHTS)[0] > 0.5)
               for e in noise]
    found = learning.fit(perfect)
    assert found.used == "default" and "do not beat the defaults" in found.reason
    assert found.weights == DEFAULT_WEIGHTS and found.learned is not None


def test_the_benchmark_figures_are_in_the_reference() -> None:
    reference = (PROJECT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert "benchmarks/japanese_matching.py" in reference


def test_skills_and_careers_with_their_provenance_are_read_too() -> None:
    """Another part of issue 20 keeps each extracted value with where it came from."""
    c = person("p", [], [], "")
    c["skills"] = [{"name": "Java", "source": "職務経歴書.pdf", "matched": "JAVA"}]  # type: ignore[list-item]
    c["qualifications"] = [{"name": "基本情報技術者", "source": "mail body"}]  # type: ignore[list-item]
    c["career"] = [{"text": "Javaエンジニアとして5年", "source": "職務経歴書.pdf"}]  # type: ignore[typeddict-item]
    (found,) = rank(JAVA, [c], [], text.terms, NOW).matches
    assert found.features["required_skills"] == 1.0
    assert found.features["required_qualifications"] == 1.0
    assert found.features["role"] >= 0.7


def test_an_openings_when_leaves_out_who_does_not_meet_it_and_its_errors_have_lines(
        tmp_path: Path) -> None:
    rules = rules_dir(tmp_path, JAVA_TOML + 'when = { tags.none = ["他社推薦"], status = '
                      '"rejected" }\n')
    spec = load_openings(rules).get("java-backend")
    assert spec is not None and spec.when == {"tags": {"none": ["他社推薦"]},
                                              "status": "rejected"}
    pool = java_pool()
    pool[0]["tags"] = ["他社推薦"]  # a, the best match, is being introduced elsewhere
    ranking = rank(Want.of(spec.model_dump()), pool, [], text.terms, NOW)
    assert [m.candidate_id for m in ranking.matches][:1] == ["b"]
    assert ranking.left_out["not tags.none = ['他社推薦']"] == 1
    broken = rules_dir(tmp_path / "broken", JAVA_TOML + 'when = { tag = ["x"] }\n')
    with pytest.raises(ProblemsError) as caught:
        load_openings(broken)
    assert [str(p) for p in caught.value.problems] == [
        f"{broken / 'openings.toml'}:10: opening.when: unknown fact 'tag'; did you mean "
        "'tags'?"]
