"""Issue 17: the commands `mailflow demo` tells its viewer to try run as printed, from any
directory, in a shell that has neither the venv on its PATH nor the demo's secrets."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from html import unescape
from pathlib import Path

import httpx
import pytest
from harness import MAILFLOW, PROJECT

from mailflow.demo import mailflow_command

# what each hinted command shows once the demo's samples went through
EXPECTED = {
    "candidates": ("ID", "STATUS", "山田 太郎", "佐藤 花子", "鈴木 一郎"),
    "candidate show": ("candidate c_", "emails", "JST", "invited to Career Relay"),
    "quarantine list": (),
    "outbox --all": ("sent",),
    "ledger verify": ("ledger verified",),
    "ledger": ("registrations", "verified         yes"),
    "rules test": (),
}


def _plain_env() -> dict[str, str]:
    """A new terminal's environment: no MAILFLOW_* variable, no venv on the PATH."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p != venv_bin)
    return {k: v for k, v in os.environ.items()
            if not k.startswith("MAILFLOW_") and k != "VIRTUAL_ENV"} | {"PATH": path}


def _demo_command() -> tuple[list[str], Path | None]:
    """The demo as `make demo` starts it (`.venv/bin/mailflow demo` from the project)."""
    script = Path(sys.executable).with_name("mailflow")
    if not script.is_file():
        return [*MAILFLOW, "demo"], None
    try:
        return [str(script.relative_to(PROJECT)), "demo"], PROJECT
    except ValueError:
        return [str(script), "demo"], None


def _read_hints(process: subprocess.Popen[str], deadline: float) -> tuple[list[str], list[str]]:
    assert process.stdout is not None
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "demo: press Ctrl-C to stop" in line:
            break
    start = next((n for n, line in enumerate(lines) if "try these in another terminal" in line),
                 None)
    assert start is not None, "".join(lines)
    hints = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        hints.append(line.strip())
    return hints, lines


def test_every_hint_runs_as_printed(tmp_path: Path) -> None:
    command, cwd = _demo_command()
    elsewhere = tmp_path / "a-new-terminal"
    elsewhere.mkdir()
    env = _plain_env()
    process = subprocess.Popen([*command, "--dir", str(tmp_path / "demo")], cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    try:
        hints, lines = _read_hints(process, time.monotonic() + 90)
        output = "".join(lines)
        assert process.poll() is None, output  # the demo is still running
        export, commands = hints[0], hints[1:]
        assert re.fullmatch(r"export( MAILFLOW_DEMO_\w+=\S+)+", export), export
        assert "MAILFLOW_DEMO_LEDGER_KEY=" in export
        assert len(commands) == len(EXPECTED), hints
        _dashboard_shows_the_demo(output)
        for hint in commands:
            assert Path(hint.split()[0]).is_absolute(), hint
            done = subprocess.run(["sh", "-c", f"{export}\n{hint}"], cwd=elsewhere, env=env,
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"{hint}\n{done.stdout}\n{done.stderr}"
            assert "error:" not in done.stderr and "Traceback" not in done.stderr, hint
            assert done.stdout.strip(), hint
            name = next(key for key in EXPECTED if f" {key} " in hint)
            for expected in EXPECTED[name]:
                assert expected in done.stdout, f"{hint}: {expected!r} not in\n{done.stdout}"
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, rest
    assert "Traceback" not in rest


def _dashboard_shows_the_demo(output: str) -> None:
    """The printed dashboard address and token log in, and the overview is not empty."""
    found = re.search(r"demo: dashboard (http://127\.0\.0\.1:\d+/admin) — token (\S+)", output)
    assert found, output
    base, token = found[1].removesuffix("/admin"), found[2]
    with httpx.Client(base_url=base, timeout=20) as browser:
        login = browser.get("/admin/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', login)
        assert csrf, login
        answer = browser.post("/admin/login", data={"csrf": unescape(csrf[1]), "token": token})
        assert answer.status_code == 303, answer.text
        overview = browser.get("/admin/").text
        applications = re.search(r'data-kpi="applications">([\d,]+)<', overview)
        assert applications and int(applications[1].replace(",", "")) >= 3, overview
        assert "<rect" in overview  # the chart has bars
        pool = browser.get("/admin/pool").text
        assert "山田 太郎" in pool


def test_the_command_started_with_python_m_runs_from_anywhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m mailflow demo`: argv[0] is a module file, not a command to print."""
    monkeypatch.setattr(sys, "argv", [str(PROJECT / "mailflow" / "__main__.py"), "demo"])
    shown = mailflow_command()
    assert "__main__" not in shown
    done = subprocess.run(["sh", "-c", f"{shown} --version"], cwd=tmp_path, env=_plain_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "mailflow" in done.stdout, done.stderr
