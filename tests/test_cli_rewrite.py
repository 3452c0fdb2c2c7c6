"""`mailflow rewrite` previews (and records only when asked); `mailflow check` reports templates."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailflow.clock import FrozenClock
from mailflow.mail.rewrite.render import TEMPLATES
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES
from mailflow.store import open_store

PROJECT = Path(__file__).resolve().parents[1]
MAILFLOW = [sys.executable, "-m", "mailflow"]
CANDIDATE = "hanako@example.com"
BODY = (
    "山田 花子 様\n\nこの度はご応募いただき、誠にありがとうございました。\n"
    "#mailflow reason=スキル不足 rescout=no\n"
    "慎重に選考いたしました結果、今回はご縁がなかったものとご了承ください。\n\n"
    "-- \n株式会社テスト 人事部\nTEL: 03-1234-5678\n"
)


def _config(tmp_path: Path, templates: Path = SHIPPED_TEMPLATES) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[company]
name = "株式会社テスト"

[store]
path = "data"

[web]
public_url = "https://jobs.example.co.jp"

[rules]
dir = "{SHIPPED_RULES}"
templates_dir = "{templates}"
""", encoding="utf-8")
    return path


def _pool(tmp_path: Path) -> None:
    store = open_store(tmp_path / "data", "sqlite")
    try:
        pool = TalentPool(store, FrozenClock(datetime(2024, 4, 1, tzinfo=UTC)))
        pool.apply(Applicant("山田 花子", CANDIDATE, (), "営業職", "", "direct"), None)
    finally:
        store.close()


def _snapshot(tmp_path: Path) -> dict[str, Any]:
    store = open_store(tmp_path / "data", "sqlite", read_only=True)
    try:
        return {kind: list(store.scan(kind)) for kind in ("candidates", "tokens")} | {
            "events": list(store.log("events"))}
    finally:
        store.close()


def _eml(tmp_path: Path, to: str = CANDIDATE, marker: bool = True) -> Path:
    path = tmp_path / ("draft.eml" if marker else "unmarked.eml")
    lines = BODY.splitlines(keepends=True)
    body = "".join(line for line in lines if marker or not line.startswith("#mailflow"))
    head = (f"From: jobs@example.co.jp\r\nTo: {to}\r\nSubject: ご応募の件\r\nMIME-Version: 1.0\r\n"
            'Content-Type: text/plain; charset="ISO-2022-JP"\r\n'
            "Content-Transfer-Encoding: 7bit\r\n")
    path.write_bytes(head.encode() + b"\r\n" + body.replace("\n", "\r\n").encode("iso2022_jp"))
    return path


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILFLOW, *map(str, args)], capture_output=True, text=True,
                          timeout=60, cwd=PROJECT)


def test_preview_prints_decision_and_diff_and_changes_nothing(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _pool(tmp_path)
    before = _snapshot(tmp_path)
    out = tmp_path / "rewritten.eml"
    done = _run("rewrite", _eml(tmp_path), "-c", config, "-o", out)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "decision: rejection" in lines and "  rule: marked-by-hr" in lines
    assert "  why: #mailflow reason=スキル不足 rescout=no" in lines
    assert any(line.startswith("candidate: c_") and CANDIDATE in line for line in lines)
    assert "  reason: スキル不足  stage: -  rescout: no" in lines
    assert "result: rewritten: invitation added (preview, nothing recorded)" in lines
    assert "--- text/plain (before)" in lines and "+++ text/plain (after)" in lines
    assert "-#mailflow reason=スキル不足 rescout=no" in lines
    assert "+https://jobs.example.co.jp/r/preview" in lines
    assert any(line.startswith("+") and "キャリアリレー制度" in line for line in lines)
    assert b"X-Mailflow-Relay: preview\r\n" in out.read_bytes()
    unmarked = _run("rewrite", _eml(tmp_path, marker=False), "-c", config)
    assert "  rule: recognised" in unmarked.stdout.splitlines()
    assert "  phrase: ご縁がなかった" in unmarked.stdout.splitlines()
    assert "  tried before: forbidden-by-marker, marked-by-hr, not-to-a-candidate" \
        in unmarked.stdout.splitlines()
    evidence = [line for line in unmarked.stdout.splitlines() if line.startswith("    +")]
    assert any(line.startswith("    +3 body rejection ご縁がない: ") for line in evidence)
    assert _snapshot(tmp_path) == before


def test_preview_json_and_left_alone(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _pool(tmp_path)
    done = _run("rewrite", _eml(tmp_path, to="someone@else.jp"), "-c", config, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["outcome"] == "left_alone" and report["decision"]["rule"] == "marked-by-hr"
    assert report["changed"] == [] and report["recorded"] is False
    forced = _run("rewrite", _eml(tmp_path, to="someone@else.jp"), "-c", config, "--json",
                  "--to-candidate", CANDIDATE)
    report = json.loads(forced.stdout)
    assert report["outcome"] == "rewritten" and report["reason"] == "スキル不足"
    assert "+https://jobs.example.co.jp/r/preview" in report["changed"][0]["diff"]


def test_preview_without_a_store_uses_a_stand_in(tmp_path: Path) -> None:
    done = _run("rewrite", _eml(tmp_path), "-c", _config(tmp_path), "--to-candidate",
                "any@example.jp")
    assert done.returncode == 0, done.stderr
    assert "(not in the talent pool: a stand-in)" in done.stdout
    assert not (tmp_path / "data").exists()


def test_record_writes_the_rejection(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _pool(tmp_path)
    done = _run("rewrite", _eml(tmp_path), "-c", config, "--record", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["recorded"] is True and report["rejection_id"].startswith("rj_")
    after = _snapshot(tmp_path)
    (candidate,) = after["candidates"]
    assert candidate["status"] == "rejected" and candidate["relay_status"] == "invited"
    assert candidate["rejection"]["reason"] == "スキル不足" and candidate["rescout_ok"] is False
    (token,) = [t for t in after["tokens"] if t.get("kind") != "consent"]  # the link's
    assert token["candidate_id"] == candidate["id"]
    assert token["rejection_id"] == report["rejection_id"]
    assert re.fullmatch(r"https://jobs\.example\.co\.jp/r/[A-Za-z0-9_-]{32}", report["link"])
    assert [e["type"] for _seq, e in after["events"]][-2:] == ["rejected", "invited"]


def test_refused_mail_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "broken.eml"
    path.write_bytes(b"From: jobs@example.co.jp\r\nTo: " + CANDIDATE.encode()
                     + b"\r\nContent-Type: text/plain; charset=Shift_JIS\r\n\r\n"
                     + "不採用\r\n".encode("cp932") + b"\x82\xa0\xff\xfe\xfd\r\n")
    done = _run("rewrite", path, "-c", _config(tmp_path), "--to-candidate", CANDIDATE)
    assert done.returncode == 1
    assert "result: refused" in done.stdout
    assert done.stderr.startswith("mailflow: error: ") and "not decodable" in done.stderr


def test_check_names_a_template_with_an_undefined_variable(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    for name in TEMPLATES:
        shutil.copy(SHIPPED_TEMPLATES / name, templates / name)
    html = templates / "relay_invitation.html.j2"
    lines = html.read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines, 1) if "{{ link }}</a>" in line)
    lines[number - 1] += "{{ candidate_nmae }}"
    html.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = _run("check", "-c", _config(tmp_path, templates))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"mailflow: error: {html}:{number}: unknown variable 'candidate_nmae' "
        "(known: link, candidate_name, company_name, position, consent_url)"]
    assert _run("check", "-c", _config(tmp_path)).returncode == 0
