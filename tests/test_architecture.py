"""Issue 15: the layers and the dependency list are checked by a machine, and each check can fail.

Each case copies the package and pyproject.toml into a temporary folder, adds one module that
breaks one rule, and runs the same tool `make test` runs against the copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def copy_of_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(PROJECT / "mailflow", root / "mailflow",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT / "pyproject.toml", root / "pyproject.toml")
    return root


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy, not the installed package
    return subprocess.run([str(BIN / "lint-imports"), "--config", str(root / "pyproject.toml"),
                           "--no-cache"], capture_output=True, text=True, cwd=root, env=env,
                          timeout=120)


def test_the_contracts_hold_on_the_tree_as_it_is(tmp_path: Path) -> None:
    done = lint_imports(copy_of_project(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(("module", "source", "broken"), [
    ("mail/probe.py", "import imapclient\n", "imports no I/O library"),
    ("rejection/recognise/probe.py", "import sqlite3\n", "imports no I/O library"),
    ("pool/probe.py", "from mailflow.daemon import service\n", "No domain package imports"),
    ("mail/probe.py", "from mailflow.pool import talent\n", "Commands and the daemon on top"),
    ("web/probe.py", "from mailflow.cli import main\n", "Commands and the daemon on top"),
    ("intake/probe.py", "from mailflow.intake import applications\n", "No import cycles"),
])
def test_each_contract_can_fail(tmp_path: Path, module: str, source: str, broken: str) -> None:
    root = copy_of_project(tmp_path)
    (root / "mailflow" / module).write_text(source, encoding="utf-8")
    if "cycles" in broken:  # and the other way round: applications imports the probe
        target = root / "mailflow" / "intake" / "applications.py"
        target.write_text(target.read_text(encoding="utf-8") +
                          "\nfrom mailflow.intake import probe  # noqa\n", encoding="utf-8")
    done = lint_imports(root)
    said = " ".join(done.stdout.split())  # the report wraps long contract names
    assert done.returncode != 0
    assert f"{broken}" in said and "BROKEN" in said, done.stdout


def deptry(root: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(BIN / "deptry"), "."], capture_output=True, text=True, cwd=root,
                          timeout=120)
    done.stdout += done.stderr  # deptry reports on stderr
    return done


def test_the_dependency_list_is_exact_and_the_check_can_fail(tmp_path: Path) -> None:
    root = copy_of_project(tmp_path)
    assert deptry(root).returncode == 0, deptry(root).stdout
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace('  "jinja2>=3.1",\n', '  "jinja2>=3.1",\n  "six",\n'),
                         encoding="utf-8")
    unused = deptry(root)
    assert unused.returncode != 0 and "DEP002" in unused.stdout and "six" in unused.stdout
    pyproject.write_text(text, encoding="utf-8")
    (root / "mailflow" / "probe.py").write_text("import yaml\n", encoding="utf-8")
    missing = deptry(root)
    assert missing.returncode != 0 and "DEP001" in missing.stdout and "yaml" in missing.stdout
