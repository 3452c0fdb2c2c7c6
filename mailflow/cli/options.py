"""Options every command shares: `-c/--config PATH` (after the command's own name, and also
before it: `mailflow -c site.toml candidates`), `--json`; and how commands open the store.

`-c` is remembered in the click context's object (`CliState`) wherever it is given; the last one
on the command line wins, so the one after the command's name beats the one before it. Without
any, `find_config` falls back to `$MAILFLOW_CONFIG`, then `./config.toml`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mailflow.errors import NoStore

if TYPE_CHECKING:
    from mailflow.daemon.local import Service
    from mailflow.settings.config import Config
    from mailflow.store.base import Store

F = TypeVar("F", bound=Callable[..., Any])
CONFIG_HELP = "Config file (default: $MAILFLOW_CONFIG, then ./config.toml)."


@dataclass
class CliState:
    """What the command line says for every command (the click context's object)."""

    config_path: Path | None = None


def _remember_config(ctx: click.Context, _param: click.Parameter,
                     value: Path | None) -> Path | None:
    if value is not None:
        ctx.ensure_object(CliState).config_path = value
    return value


def config_option(func: F) -> F:
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        callback=_remember_config,
        help=CONFIG_HELP,
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(func)


def config_path_given(config_path: Path | None = None) -> Path | None:
    """The `-c` of this command, else the last one given before it on the command line."""
    if config_path is not None:
        return config_path
    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(CliState) if ctx is not None else None
    return state.config_path if state is not None else None


def load(config_path: Path | None) -> Config:
    from mailflow.settings.config import find_config, load_config  # not for `--help`

    return load_config(find_config(config_path_given(config_path)))


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def print_json_array(items: Iterable[Any]) -> int:
    """The same text as `print_json(list(items))`, one item at a time: a whole pool is never held
    in memory. Returns how many there were."""
    out = sys.stdout
    count = 0
    for item in items:
        text = json.dumps(item, ensure_ascii=False, indent=2, default=str)
        out.write(("[\n  " if count == 0 else ",\n  ") + text.replace("\n", "\n  "))
        count += 1
    out.write("\n]\n" if count else "[]\n")
    out.flush()
    return count


def read_store(config: Config) -> Store:
    """The store, read-only: consistent while the daemon writes. On a new installation, before
    anything made the store, an empty one: read commands show an empty pool, not an error."""
    from mailflow.store import configured_store, empty_store

    try:
        return configured_store(config, read_only=True)
    except NoStore:
        return empty_store()


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
