"""Issue 20 part 2 at the command line: `mailflow tag ID|EMAIL add|remove TAG` by id and by
email (timeline and audit log), `mailflow intent`, the rule tags given when the store is opened
with rules it had not seen, and `rules check` naming a tags.toml problem with file and line."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import DaemonThread
from test_callbacks import env  # noqa: F401  (fixture)
from test_consent_page import rejected, site  # noqa: F401  (fixture)

from mailflow.cli import main
from mailflow.clock import SystemClock
from mailflow.pool.records import Applicant
from mailflow.pool.talent import TalentPool
from mailflow.settings.config import load_config
from mailflow.starter import SHIPPED_RULES, SHIPPED_TEMPLATES
from mailflow.store import open_store


def _site(tmp_path: Path, rules: Path = SHIPPED_RULES) -> Path:
    config = tmp_path / "config.toml"
    config.write_text('[privacy]\nnotified_purposes = ["selection", "rescout"]\n\n'
                      f'[rules]\ndir = "{rules}"\ntemplates_dir = "{SHIPPED_TEMPLATES}"\n')
    return config


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


Run = Callable[..., Done]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """`mailflow ARGS -c CONFIG` in this process (as `python -m mailflow` runs it)."""
    umask = os.umask(0o077)
    os.umask(umask)

    def command(config: Path, *args: str) -> Done:
        capsys.readouterr()
        try:
            main([*args, "-c", str(config)])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            os.umask(umask)
        out = capsys.readouterr()
        return Done(code, out.out, out.err)

    return command


def test_tags_by_id_and_by_email_with_the_rules_tags_kept_apart(tmp_path: Path, run: Run) -> None:
    config = _site(tmp_path)
    store = open_store(load_config(config).data_dir)  # written before mailflow knew tags.toml
    try:
        pool = TalentPool(store, SystemClock())
        taro, _ = pool.apply(Applicant("山田 太郎", "taro@example.net", (), "営業", "", "direct"),
                             None)
        pool.record_rejection(taro, "経験不足", "一次面接", True, None)
    finally:
        store.close()
    done = run(config, "tag", taro["id"], "add", "VIP")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{taro['id']}: VIP added; tags: ")
    shown = json.loads(run(config, "candidate", "show", "taro@example.net", "--json").stdout)
    assert set(shown["tags"]) == {"VIP", "スカウト対象"}  # the rule's given on opening
    assert shown["rule_tags"] == ["スカウト対象"]
    done = run(config, "tag", "Taro@Example.net", "remove", "スカウト対象", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tags"] == ["VIP"]
    shown = json.loads(run(config, "candidate", "show", taro["id"], "--json").stdout)
    assert shown["tags"] == ["VIP"] and shown["rule_tags"] == []
    events = [(e["type"], e.get("tag"), e.get("action")) for e in shown["timeline"]
              if e["type"] == "tag"]
    assert events == [("tag", "VIP", "add"), ("tag", "スカウト対象", "remove")]
    again = run(config, "tag", taro["id"], "add", "VIP")
    assert again.returncode == 0 and "VIP unchanged" in again.stdout
    assert run(config, "tag", "nobody@example.net", "add", "x").returncode == 1
    bad = run(config, "tag", taro["id"], "add", " ")
    assert bad.returncode == 2 and "mailflow: error: tag ''" in bad.stderr
    done = run(config, "intent", "taro@example.net", "yes", "--note", "電話 2026-11-20")
    assert done.returncode == 0, done.stderr
    shown = json.loads(run(config, "candidate", "show", taro["id"], "--json").stdout)
    intent = shown["reapply_intent"]
    assert (intent["wish"], intent["how"]) == (True, "hr")
    assert intent["evidence"].endswith(": 電話 2026-11-20")
    card = run(config, "candidate", "show", taro["id"]).stdout
    assert "wishes to hear about openings" in card and "tag by HR" in card


def test_rules_check_names_a_tags_problem_with_file_and_line(tmp_path: Path, run: Run) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, rules)
    path = rules / "tags.toml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        'consent = "rescout"\nrescout_ok.not', 'consnet = "rescout"\nrescout_ok.not'),
        encoding="utf-8")
    line = path.read_text(encoding="utf-8").splitlines().index('consnet = "rescout"') + 1
    done = run(_site(tmp_path, rules), "rules", "check")
    assert done.returncode == 2
    assert done.stderr.strip() == (f"mailflow: error: {path}:{line}: tag[0].when.consnet: "
                                   "unknown fact 'consnet'; did you mean 'consent'?")
    shutil.copy(SHIPPED_RULES / "tags.toml", path)
    done = run(_site(tmp_path, rules), "rules", "check")
    assert done.returncode == 0 and "5 tag rules" in done.stdout


def _tags(pool: TalentPool, candidate_id: str) -> list[str]:
    found = pool.get(candidate_id)
    assert found is not None
    return found["tags"]


def test_a_reload_with_changed_tag_rules_retags_the_pool_and_a_broken_file_is_refused(
        tmp_path: Path) -> None:
    from mailflow.daemon.service import Daemon
    from mailflow.errors import ProblemsError

    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, rules)
    config = load_config(_site(tmp_path, rules))
    service = Daemon(config)  # as a command run without a daemon opens it
    try:
        pool = TalentPool(service.store, service.clock)
        taro, _ = pool.apply(Applicant("山田 太郎", "taro@example.net", (), "営業", "", "direct"),
                             None)
        assert taro["tags"] == []
        path = rules / "tags.toml"
        path.write_text('[[tag]]\ntag = "営業志望"\nwhen = { desired_role = "営業" }\n',
                        encoding="utf-8")
        service.reload()
        assert _tags(pool, taro["id"]) == ["営業志望"]
        path.write_text('[[tag]]\ntag = "x"\nwhen = { desired_rol = "営業" }\n',
                        encoding="utf-8")
        with pytest.raises(ProblemsError):
            service.reload()
        current = pool.get(taro["id"])
        assert current is not None
        pool.record_stage(current, "一次面接", pool.now(), "test")
        assert _tags(pool, taro["id"]) == ["営業志望"]  # the old rules stay
    finally:
        service.store.close()


def test_tag_and_intent_go_through_the_running_daemon(
        tmp_path: Path, site: tuple[DaemonThread, str], run: Run) -> None:  # noqa: F811
    running, _base = site
    candidate_id, _link = rejected(running)
    config = tmp_path / "config.toml"  # the site's
    done = run(config, "tag", "taro.yamada@example.net", "add", "要フォロー", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tags"] == ["要フォロー"]
    assert run(config, "intent", candidate_id, "no").returncode == 0
    found = TalentPool(running.daemon.store, running.daemon.clock).get(candidate_id)
    assert found is not None and found["tags"] == ["要フォロー"]
    assert found["reapply_intent"]["how"] == "hr" and found["reapply_intent"]["wish"] is False
    audit = [doc["action"] for _seq, doc in running.daemon.store.log("audit")]
    assert audit == ["tag", "intent"]


def test_a_start_with_changed_tag_rules_retags_every_page_of_the_pool(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mailflow.pool import tagging

    monkeypatch.setattr(tagging, "RETAG_PAGE", 2)  # five candidates: three pages
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, rules)
    config = load_config(_site(tmp_path, rules))
    store = tagging.tagging_store(open_store(config.data_dir), config, SystemClock())
    try:
        pool = TalentPool(store, SystemClock())
        ids = [pool.apply(Applicant(f"候補 {n}", f"c{n}@example.net", (), "営業", "", "direct"),
                          None)[0]["id"] for n in range(5)]
    finally:
        store.close()
    (rules / "tags.toml").write_text(
        '[[tag]]\ntag = "営業志望"\nwhen = { desired_role = "営業" }\n', encoding="utf-8")
    store = tagging.tagging_store(open_store(config.data_dir), config, SystemClock())
    try:
        pool = TalentPool(store, SystemClock())
        assert [_tags(pool, cid) for cid in ids] == [["営業志望"]] * 5
    finally:
        store.close()
