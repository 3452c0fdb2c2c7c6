"""The chaos package's fixtures: the form to run (`--chaos=full` / `--soak=full`, or
MAILFLOW_CHAOS=full / MAILFLOW_SOAK=full; short otherwise), the seed (`--chaos-seed`, or
MAILFLOW_CHAOS_SEED; random otherwise, always printed), and a Dovecot of the test's own (the
chaos test restarts it)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest
from servers import Dovecot, ImapAccount


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos")
    group.addoption("--chaos", choices=("short", "full"), default=None,
                    help="the chaos harness's form (default: short, or $MAILFLOW_CHAOS)")
    group.addoption("--soak", choices=("short", "full"), default=None,
                    help="the soak's form (default: short, or $MAILFLOW_SOAK)")
    group.addoption("--chaos-seed", type=int, default=None,
                    help="the chaos harness's seed (default: random, or $MAILFLOW_CHAOS_SEED)")


def _form(config: pytest.Config, name: str) -> str:
    chosen = config.getoption(f"--{name}", default=None)
    return str(chosen or os.environ.get(f"MAILFLOW_{name.upper()}") or "short")


@pytest.fixture
def chaos_form(request: pytest.FixtureRequest) -> str:
    return _form(request.config, "chaos")


@pytest.fixture
def soak_form(request: pytest.FixtureRequest) -> str:
    return _form(request.config, "soak")


@pytest.fixture
def chaos_seed(request: pytest.FixtureRequest) -> int:
    chosen = request.config.getoption("--chaos-seed", default=None)
    seed = int(chosen if chosen is not None else
               os.environ.get("MAILFLOW_CHAOS_SEED") or random.SystemRandom().randrange(2**31))
    print(f"\nchaos seed: {seed} (again: --chaos-seed={seed})")
    return seed


@pytest.fixture
def own_dovecot() -> Iterator[Dovecot]:
    """A Dovecot for this test alone: the chaos test restarts it under load."""
    try:
        server = Dovecot("sdbox")
    except Exception as exc:  # not installed: fail, never skip (see tests/conftest.py)
        pytest.fail(f"Dovecot: {exc}", pytrace=False)
    with server:
        yield server


@pytest.fixture
def own_account(own_dovecot: Dovecot) -> ImapAccount:
    return own_dovecot.add_user("chaos", "secret")
