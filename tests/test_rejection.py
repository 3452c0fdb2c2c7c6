"""Recognising rejections (pure): the shipped rules, HR's markers, and broken rule files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailflow.errors import ProblemsError
from mailflow.mail.parse import parse_mail
from mailflow.pool.talent import new_candidate
from mailflow.rejection.recognise import (
    FILE,
    NO_RULE,
    Decision,
    RuleSpec,
    check,
    decide,
    load_rejection_rules,
)
from mailflow.rejection.rewriting import HEADER, RewriteSettings, rewrite_rejection
from mailflow.relay.desk import Invite, RejectionFacts
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES
from mailflow.store.base import Doc

PROJECT = Path(__file__).resolve().parents[1]
RULES = load_rejection_rules(SHIPPED_RULES)
CANDIDATE = "hanako@example.com"
URL = "https://jobs.example.co.jp"


def _mail(body: str, subject: str = "ご応募の件", to: str = CANDIDATE, html: bool = False,
          extra: str = "") -> bytes:
    kind = "html" if html else "plain"
    return (f"From: jobs@example.co.jp\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}"
            f"MIME-Version: 1.0\r\nContent-Type: text/{kind}; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + body.encode()


def _known(email: str) -> bool:
    return email == CANDIDATE


def _decide(raw: bytes) -> Decision:
    return decide(parse_mail(raw), RULES, _known)


@pytest.mark.parametrize(("subject", "body", "cue", "phrase"), [
    ("選考結果のご連絡", "残念ながら、今回は採用を見合わせることとなりました。",
     "見合わせ", "見合わせ"),
    ("ご応募の件", "誠に残念ですが、今回はご縁がなかったものとご了承ください。",
     "ご縁がない", "ご縁がなかった"),
    ("ご応募の件", "慎重に検討した結果、今回は見送らせていただくこととなりました。",
     "見送り", "見送"),
    ("ご応募の件", "今回はご期待に沿えない結果となりました。", "今回は沿えない",
     "今回はご期待に沿えな"),
    ("ご応募の件", "選考の結果、不採用となりました。", "不採用", "不採用"),
    ("ご応募の件", "今回は見送りとさせていただきます。", "見送り", "見送"),
    ("【不採用】ご応募の件", "ご応募ありがとうございました。", "不採用", "不採用"),
    ("面接の結果について", "残念ながら今回はご縁がありませんでした。", "ご縁がない",
     "ご縁がありません"),
    ("Your application", "We regret to inform you that we will not be moving forward.",
     "we regret to inform", "regret to inform"),
])
def test_the_evidence_recognises_rejections_and_says_why(subject: str, body: str, cue: str,
                                                         phrase: str) -> None:
    decision = _decide(_mail(f"山田 花子 様\r\n\r\n{body}\r\n", subject))
    assert decision.rejection and decision.verdict == "rejection"
    assert (decision.rule, decision.phrase) == ("recognised", phrase)
    assert decision.assessment is not None
    assert cue in [e.cue for e in decision.assessment.evidence if e.kind == "rejection"]
    assert decision.candidate == CANDIDATE
    assert "not-to-a-candidate" in decision.tried
    assert "recognised" in decision.describe() and cue in decision.describe()


def test_not_a_rejection_is_named_too() -> None:
    passed = _decide(_mail("一次選考を通過されました。二次面接の日程をご連絡ください。\r\n",
                           "選考結果のご連絡"))
    assert not passed.rejection and passed.verdict == "not_rejection"
    assert passed.rule == "recognised" and passed.phrase is None
    assert passed.assessment is not None
    assert "選考通過" in [e.cue for e in passed.assessment.evidence]
    assert passed.tried == tuple(rule.name for rule in RULES.rules[:-1])
    stranger = _decide(_mail("今回はご縁がなかったということで。\r\n", to="partner@vendor.jp"))
    assert not stranger.rejection and stranger.rule == "not-to-a-candidate"
    assert "partner@vendor.jp" in stranger.why


def test_without_an_evidence_rule_no_rule_decides(tmp_path: Path) -> None:
    (tmp_path / FILE).write_text('[[rule]]\nname = "said"\nbody_phrases = ["不採用"]\n',
                                 encoding="utf-8")
    rules = load_rejection_rules(tmp_path)
    silent = decide(parse_mail(_mail("今回はご縁がありませんでした。\r\n")), rules, _known)
    assert (silent.rejection, silent.rule, silent.tried) == (False, NO_RULE, ("said",))
    said = decide(parse_mail(_mail("不採用です。\r\n")), rules, _known)
    assert said.rejection and said.rule == "said" and said.assessment is None


def test_quoted_original_does_not_count() -> None:
    body = ("山田様\r\n\r\n面接日程の件、承知しました。\r\n\r\n"
            "2024年4月1日(月) 10:00 山田 花子 <hanako@example.com>:\r\n"
            "> 残念ながらその日は不採用…ではなく、ご縁がなかったら困ります\r\n")
    assert not _decide(_mail(body)).rejection


def test_marker_forces_a_rejection_and_carries_reason_and_rescout() -> None:
    decision = _decide(_mail("山田様\r\n#mailflow reason=スキル不足 rescout=yes\r\n"
                             "ご連絡いたします。\r\n"))
    assert decision.rejection and decision.rule == "marked-by-hr"
    assert decision.note.reason == "スキル不足" and decision.note.rescout is True
    assert "reason=スキル不足" in decision.why
    bare = _decide(_mail("山田様\r\n＃mailflow rejection\r\n", to="someone@else.jp"))
    assert bare.rejection and bare.rule == "marked-by-hr" and bare.candidate is None
    staged = _decide(_mail("#mailflow rejection stage=一次面接 rescout=いいえ\r\n"))
    assert staged.note.stage == "一次面接" and staged.note.rescout is False


def test_marker_in_html_forces_too() -> None:
    html = "<html><body><p>山田様</p><p>#mailflow reason=経験不足</p></body></html>"
    decision = _decide(_mail(html, html=True))
    assert decision.rejection and decision.note.reason == "経験不足"


def test_marker_forbids_a_rejection() -> None:
    decision = _decide(_mail("今回はご縁がなかったものと…\r\n#mailflow rejection=no\r\n"))
    assert not decision.rejection and decision.rule == "forbidden-by-marker"
    assert decision.tried == ()


def test_unreadable_marker_value_is_a_problem_not_a_guess() -> None:
    decision = _decide(_mail("ご連絡です。\r\n#mailflow rescout=maybe oops\r\n"))
    assert decision.rule == "marked-by-hr" and decision.note.rescout is None
    assert any("rescout=maybe" in p for p in decision.note.problems)
    assert any("'oops'" in p for p in decision.note.problems)


# -- left alone: the rewrite's preconditions, with a pool in memory ------------------------------

class MemoryDesk:
    def __init__(self) -> None:
        self.candidate = new_candidate("c_1", "2024-04-01T00:00:00.000000Z")
        self.candidate["emails"] = [CANDIDATE]
        self.issued: list[RejectionFacts] = []

    def candidate_for(self, email: str) -> Doc | None:
        return self.candidate if email == CANDIDATE else None

    def issue(self, candidate: Doc, facts: RejectionFacts) -> Invite:
        self.issued.append(facts)
        return Invite(f"{URL}/r/TOKEN{len(self.issued)}", "TOKEN", "rj_1", "ref", True)


SETTINGS = RewriteSettings(RULES, SHIPPED_TEMPLATES, URL, "株式会社テスト")
REJECTION = "山田様\r\n\r\n今回はご縁がなかったものとご了承ください。\r\n"


def test_rejection_is_rewritten_with_the_facts_from_the_marker() -> None:
    desk = MemoryDesk()
    raw = _mail(REJECTION + "#mailflow reason=スキル不足 rescout=yes stage=最終面接\r\n")
    result = rewrite_rejection(raw, SETTINGS, desk)
    assert result.rewritten and f"{URL}/r/TOKEN1".encode() in result.raw
    assert desk.issued == [RejectionFacts("スキル不足", "最終面接", True, None)]
    assert f"{HEADER}: rj_1\r\n".encode() in result.raw and b"#mailflow" not in result.raw


def test_not_a_rejection_is_left_alone() -> None:
    desk = MemoryDesk()
    raw = _mail("二次面接のご案内です。\r\n")
    result = rewrite_rejection(raw, SETTINGS, desk)
    assert result.outcome == "left_alone" and result.raw == raw and not desk.issued
    assert "not a rejection" in result.why


def test_already_invited_is_left_alone() -> None:
    desk = MemoryDesk()
    by_header = _mail(REJECTION, extra=f"{HEADER}: rj_0\r\n")
    by_link = _mail(REJECTION + f"\r\n{URL}/r/AbCdEf\r\n")
    for raw in (by_header, by_link):
        result = rewrite_rejection(raw, SETTINGS, desk)
        assert result.outcome == "left_alone" and result.raw == raw
        assert result.decision.rejection
    assert not desk.issued


def test_marked_rejection_to_a_stranger_is_left_alone_unless_forced_to_a_candidate() -> None:
    desk = MemoryDesk()
    raw = _mail("ご連絡\r\n#mailflow rejection\r\n", to="someone@else.jp")
    left = rewrite_rejection(raw, SETTINGS, desk)
    assert left.outcome == "left_alone" and "no recipient is a known candidate" in left.why
    forced = rewrite_rejection(raw, SETTINGS, desk, to_candidate=CANDIDATE)
    assert forced.rewritten and forced.candidate_id == "c_1"


# -- the rule file ------------------------------------------------------------------------------

BROKEN = """\
[[rule]]
name = "wording"
body_phrase = ["ご縁がなかった"]

[[rule]]
name = "pattern"
body_patterns = ["見送(り|らせ"]
decide = "maybe"

[[rule]]
name = "empty"

[[rule]]
name = "pattern"
subject_phrases = ["不採用"]
"""


def test_broken_rule_file_reports_every_problem_positioned(tmp_path: Path) -> None:
    (tmp_path / FILE).write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ProblemsError) as caught:
        load_rejection_rules(tmp_path)
    path = tmp_path / FILE
    lines = [str(p) for p in caught.value.problems]
    assert lines[0] == f"{path}:3: rule[0].body_phrase: unknown key; did you mean 'body_phrases'?"
    assert re.match(rf"{re.escape(str(path))}:7: rule\[1\]\.body_patterns\[0\]: bad regular "
                    r"expression", lines[1])
    assert lines[2].startswith(f"{path}:8: rule[1].decide: ") and "'maybe'" in lines[2]
    assert len(lines) == 3
    assert check(tmp_path) == caught.value.problems


def test_rule_without_condition_and_twice_used_name(tmp_path: Path) -> None:
    text = BROKEN.replace("body_phrase =", "body_phrases =").replace("見送(り|らせ", "見送")
    (tmp_path / FILE).write_text(text.replace('"maybe"', '"not_rejection"'), encoding="utf-8")
    path = tmp_path / FILE
    assert [str(p) for p in check(tmp_path)] == [
        f"{path}:10: rule[2] (empty): needs a condition: marker, recipient, subject_phrases, "
        "body_phrases, subject_patterns, body_patterns",
        f"{path}:14: rule name 'pattern' used twice",
    ]


def test_missing_and_syntax_broken_files(tmp_path: Path) -> None:
    assert "cannot read" in str(check(tmp_path)[0])
    (tmp_path / FILE).write_text("[[rule]\nname = 1\n", encoding="utf-8")
    (problem,) = check(tmp_path)
    assert problem.line == 1 and problem.message.startswith("TOML syntax")


def test_every_rule_key_is_documented() -> None:
    shipped = (SHIPPED_RULES / FILE).read_text(encoding="utf-8")
    readme = (PROJECT / "docs" / "reference.md").read_text(encoding="utf-8")
    for key in RuleSpec.model_fields:
        assert re.search(rf"^#\s+{key}\b", shipped, re.MULTILINE), key
        assert f"`{key}`" in readme, key
