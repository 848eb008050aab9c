"""What the history, trash, rollback and status commands share.

They open the data directory directly (SQLite in WAL mode lets them run beside a
running `homeport serve`; a write waits for the server's commit, never the other way
round for long), act as an administrator, and print either rich tables or, with
`--json`, the same JSON shapes as the HTTP API (`homeport.server.api_schema`).
"""

from __future__ import annotations

import getpass
import json
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from rich.console import Console

from homeport.config import Config
from homeport.services import Services
from homeport.services.accounts import Actor
from homeport.store.model import us_to_datetime
from homeport.wiring import DB_NAME, build_services

F = TypeVar("F", bound=Callable[..., Any])

CLI_CLIENT = "homeport-cli"


def cli_actor() -> Actor:
    """The command line acts as an administrator; the log records the OS user."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no LOGNAME
        name = ""
    return Actor(name or "admin", CLI_CLIENT, is_admin=True)


@contextmanager
def open_services(cfg: Config) -> Iterator[Services]:
    """The services on an existing data directory (never creates one by accident)."""
    if not (cfg.data_dir / DB_NAME).exists():
        raise click.UsageError(f"{cfg.data_dir} holds no Homeport data")
    services = build_services(cfg)
    try:
        # The same [guards] policy as the server: a rollback that deletes much is watched too.
        services.configure(cfg)
        yield services
    finally:
        services.close()


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)


def user_option(func: F) -> F:
    return click.option("--user", required=True, help="The account whose data this is.")(func)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def console() -> Console:
    # A pipe or a file gets wide lines rather than summaries cut at 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=160)


def local_time(at_us: int) -> str:
    """A log time as the machine's local time, the way people type moments back."""
    return f"{us_to_datetime(at_us).astimezone():%Y-%m-%d %H:%M:%S}"


def command(*words: str) -> str:
    """A shell command line, quoted so it can be pasted as it is printed."""
    return shlex.join(["homeport", *words])
