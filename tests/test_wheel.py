"""Issue 17: mailflow as a user installs it — a wheel built from the checkout, and `pipx install .`,
each into a fresh virtual environment outside the checkout, run with no source tree in reach:
`--version`, `init`, `check`, the shipped rules, and a short demo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailflow import __version__

PROJECT = Path(__file__).resolve().parents[1]
SECRETS = {"MAILFLOW_IMAP_PASSWORD": "p", "MAILFLOW_SMTP_PASSWORD": "s",
           "MAILFLOW_RELAY_SECRET": "r", "MAILFLOW_LEDGER_KEY": "k"}


def _clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH, no virtualenv of the tests, no mailflow settings: a new user's shell."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("MAILFLOW_")}
    return {**env, **extra}


def _fresh_venv(where: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    return where / "bin"


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env or _clean_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(bin folder of a fresh venv with the wheel installed, a work folder outside the checkout)."""
    root = tmp_path_factory.mktemp("wheel")
    wheels = root / "dist"
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, PROJECT,
                 cwd=root)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("mailflow-*.whl")
    bin_ = _fresh_venv(root / "venv")
    done = _run(bin_ / "python", "-m", "pip", "install", "-q", wheel, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    work = root / "work"
    work.mkdir()
    yield bin_, work


def test_the_wheel_runs_version_init_and_check_from_outside_the_checkout(
        installed: tuple[Path, Path]) -> None:
    bin_, work = installed
    assert not str(work).startswith(str(PROJECT))
    version = _run(bin_ / "mailflow", "--version", cwd=work)
    assert version.returncode == 0 and version.stdout.strip() == f"mailflow, version {__version__}"
    where = _run(bin_ / "python", "-c", "import mailflow; print(mailflow.__file__)", cwd=work)
    assert "site-packages" in where.stdout and str(PROJECT) not in where.stdout

    init = _run(bin_ / "mailflow", "init", "site", "--company", "テスト株式会社", cwd=work)
    assert init.returncode == 0, init.stderr
    check = _run(bin_ / "mailflow", "check", "-c", "site/config.toml", cwd=work,
                 env=_clean_env(**SECRETS))
    assert check.returncode == 0, check.stderr
    missing = _run(bin_ / "mailflow", "check", "-c", "site/config.toml", cwd=work)
    assert missing.returncode == 2 and "MAILFLOW_LEDGER_KEY" in missing.stderr


def test_a_config_naming_no_rules_uses_the_ones_in_the_wheel(
        installed: tuple[Path, Path]) -> None:
    bin_, work = installed
    (work / "bare.toml").write_text('[company]\nname = "株式会社ベア"\n', encoding="utf-8")
    rules = _run(bin_ / "mailflow", "rules", "check", "-c", "bare.toml", cwd=work,
                 env=_clean_env(**SECRETS))
    assert rules.returncode == 0, rules.stderr
    assert "site-packages/mailflow/starter/rules" in rules.stdout
    check = _run(bin_ / "mailflow", "check", "-c", "bare.toml", cwd=work,
                 env=_clean_env(**SECRETS))
    assert check.returncode == 0, check.stderr


def test_a_short_demo_runs_from_the_wheel(installed: tuple[Path, Path]) -> None:
    """The whole demo loop, then Ctrl-C as its last line asks."""
    bin_, work = installed
    process = subprocess.Popen([str(bin_ / "mailflow"), "demo", "--dir", "demo"], cwd=work,
                               env=_clean_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 240
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "press Ctrl-C to stop" in line or time.monotonic() > deadline:
                break
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        lines.append(rest)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "".join(lines)
    assert process.returncode == 0, output[-3000:]
    assert "the candidate registered at Career Relay" in output, output[-3000:]
    assert "ledger: 1 registration(s)" in output
    assert "Traceback" not in output


def test_pipx_install_of_the_checkout(tmp_path: Path) -> None:
    """`pipx install .` (pipx's own venv runs `pip install .`: not editable, shipped data
    included); pipx itself comes from PyPI into a throw-away venv."""
    tool = _fresh_venv(tmp_path / "pipx-venv")
    done = _run(tool / "python", "-m", "pip", "install", "-q", "pipx", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    homes = _clean_env(PIPX_HOME=str(tmp_path / "pipx"), PIPX_BIN_DIR=str(tmp_path / "bin"))
    installed = _run(tool / "pipx", "install", PROJECT, cwd=tmp_path, env=homes)
    assert installed.returncode == 0, installed.stderr[-2000:]
    mailflow = tmp_path / "bin" / "mailflow"
    version = _run(mailflow, "--version", cwd=tmp_path)
    assert version.stdout.strip() == f"mailflow, version {__version__}"
    init = _run(mailflow, "init", "site", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "site" / "rules" / "rejection.toml").is_file()
    rules = _run(mailflow, "rules", "check", "-c", "site/config.toml", cwd=tmp_path,
                 env=_clean_env(**SECRETS))
    assert rules.returncode == 0, rules.stderr
