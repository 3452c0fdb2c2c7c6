"""Options every command shares: `-c/--config PATH` after the command's own name, `--json`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mailflow.settings.config import Config, find_config, load_config
from mailflow.store.base import Store

if TYPE_CHECKING:
    from mailflow.daemon.local import Service

F = TypeVar("F", bound=Callable[..., Any])


def config_option(func: F) -> F:
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Config file (default: $MAILFLOW_CONFIG, then ./config.toml).",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(func)


def load(config_path: Path | None) -> Config:
    return load_config(find_config(config_path))


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def read_store(config: Config) -> Store:
    """The store, read-only: consistent while the daemon writes."""
    from mailflow.store import open_store

    return open_store(config.data_dir, config.store.engine, read_only=True)


def carry_out(config: Config, command: str, args: dict[str, Any],
              local: Callable[[Service], Any]) -> Any:
    """A write command: through the running daemon when there is one, else here under the
    store's writer lock (a second writer is refused)."""
    from mailflow.daemon import control
    from mailflow.daemon.local import open_service

    if control.daemon_running(config.data_dir):
        return control.call(config.data_dir, command, args)
    service = open_service(config)
    try:
        return local(service)
    finally:
        service.store.close()
