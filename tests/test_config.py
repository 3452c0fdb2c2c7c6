"""Issue 2: the config — every problem at once, positioned; every key documented."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from harness import MAILFLOW, PROJECT
from model_keys import model_keys

from mailflow.errors import MissingSecret, ProblemsError
from mailflow.settings.config import Config, load_config
from mailflow.settings.tomlpos import locate

THREE_MISTAKES = """\
[mailbox]
host = "imap.example.co.jp"
prot = 993
security = "ssl"

[web]
listen = "localhost"
"""


def test_three_mistakes_reported_at_once_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(THREE_MISTAKES, encoding="utf-8")
    with pytest.raises(ProblemsError) as caught:
        load_config(path)
    lines = [str(p) for p in caught.value.problems]
    assert len(lines) == 3
    assert lines[0] == f"{path}:3: mailbox.prot: unknown key; did you mean 'port'?"
    assert lines[1].startswith(f"{path}:4: mailbox.security:") and "'ssl'" in lines[1]
    assert lines[2].startswith(f"{path}:7: web.listen: expected HOST:PORT")


def test_cli_prints_each_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(THREE_MISTAKES, encoding="utf-8")
    done = subprocess.run([*MAILFLOW, "check", "-c", str(path)], capture_output=True, text=True)
    assert done.returncode == 2
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 3
    assert all(re.match(rf"mailflow: error: {re.escape(str(path))}:\d+: ", e) for e in errors)
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_toml_syntax_error_is_positioned(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[mailbox]\nhost = "x"\nport = = 3\n', encoding="utf-8")
    with pytest.raises(ProblemsError) as caught:
        load_config(path)
    assert caught.value.problems[0].line == 3


def test_unknown_section_and_bad_zone(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[mailbx]\nhost = "x"\n\n[rules]\ntimezone = "Asia/Tokio"\n')
    with pytest.raises(ProblemsError) as caught:
        load_config(path)
    text = str(caught.value)
    assert ":1: mailbx: unknown key; did you mean 'mailbox'?" in text
    assert ":5: rules.timezone: unknown time zone" in text


def test_secret_comes_from_the_named_variable(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[mailbox]\npassword_env = "MF_TEST_PW"\n')
    config = load_config(path)
    monkeypatch.delenv("MF_TEST_PW", raising=False)
    with pytest.raises(MissingSecret, match=r"MF_TEST_PW .*mailbox.password_env"):
        config.secret("mailbox.password_env")
    monkeypatch.setenv("MF_TEST_PW", "s3cret")
    assert config.secret("mailbox.password_env") == "s3cret"


def test_every_key_is_documented_in_the_example() -> None:
    example = PROJECT / "config.example.toml"
    positions = locate(example.read_text(encoding="utf-8"))
    documented = {".".join(str(p) for p in path) for path in positions}
    missing = [key for key in model_keys(Config, skip=("source",)) if key not in documented]
    assert not missing, f"undocumented config keys: {missing}"
    config = load_config(example)
    assert config.rules.timezone == "Asia/Tokyo"
    for line in example.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\w+ = ", line):
            assert "#" in line, f"key without a comment: {line}"


def test_plain_imap_only_to_this_machine(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[mailbox]\nhost = "imap.example.co.jp"\nsecurity = "none"\n')
    with pytest.raises(ProblemsError, match="password in clear"):
        load_config(path)
    for host in ("127.0.0.1", "localhost", "::1"):
        path.write_text(f'[mailbox]\nhost = "{host}"\nsecurity = "none"\n')
        assert load_config(path).mailbox.security == "none"


def test_demo_refuses_a_folder_that_is_not_its_own(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me")
    done = subprocess.run([*MAILFLOW, "demo", "--dir", str(precious)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "is not a demo folder" in done.stderr
    assert (precious / "thesis.txt").read_text() == "keep me"
