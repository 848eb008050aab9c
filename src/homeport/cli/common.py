"""What every command shares: the --data/--config options and error-to-exit-code mapping."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from homeport import config as config_mod
from homeport.errors import (
    AlreadyExists,
    ConfigError,
    HomeportError,
    InsufficientStorage,
    IntegrityError,
    InvalidRequest,
    NotFound,
)

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_PROBLEMS = 1  # the command ran and found something wrong (check)
EXIT_USAGE = 2  # bad arguments or configuration
EXIT_NOT_FOUND = 3
EXIT_EXISTS = 4
EXIT_STORAGE = 5

_EXIT_CODES: tuple[tuple[type[HomeportError], int], ...] = (
    (ConfigError, EXIT_USAGE),
    (InvalidRequest, EXIT_USAGE),
    (NotFound, EXIT_NOT_FOUND),
    (AlreadyExists, EXIT_EXISTS),
    (InsufficientStorage, EXIT_STORAGE),
    (IntegrityError, EXIT_STORAGE),
)


def exit_code_for(exc: HomeportError) -> int:
    for cls, code in _EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_PROBLEMS


def run_guarded(group: click.Group) -> int:
    """Run the CLI; a domain error prints one line on stderr, never a traceback."""
    try:
        group.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_PROBLEMS
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except HomeportError as exc:
        click.echo(f"error: {exc.message}", err=True)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int | None) else EXIT_PROBLEMS
    return EXIT_OK


_FLAG_SETTINGS = {
    "listen": ("server", "listen"),
    "cert": ("server", "cert"),
    "key": ("server", "key"),
}


def data_options(func: F) -> F:
    """Add --data and --config, and pass a loaded `Config` as `cfg`."""

    @click.option(
        "--data",
        "data",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Data directory (default ./homeport-data, or server.data from the config).",
    )
    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="TOML configuration file (or HOMEPORT_CONFIG).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, data: Path | None, config_path: Path | None, **kwargs: Any) -> Any:
        overrides: dict[tuple[str, str], Any] = {}
        for flag, key in _FLAG_SETTINGS.items():
            if flag in kwargs:
                overrides[key] = kwargs.pop(flag)
        if data is not None:
            overrides[("server", "data")] = str(data)
        cfg = config_mod.load(config_path, overrides)
        return func(*args, cfg=cfg, **kwargs)

    return wrapper  # type: ignore[return-value]
