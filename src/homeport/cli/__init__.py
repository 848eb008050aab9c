"""The `homeport` command: one module per command group, domain errors become exit codes.

Each command's module is imported only when that command runs (or help lists it): a
server started with `homeport serve` then carries neither the replication tools nor the
table renderer of `status` and `history` (about 3 MB of resident memory).
"""

from __future__ import annotations

import importlib
import sys

import click

from homeport import __version__
from homeport.cli.common import run_guarded

#: command name -> "module:attribute" under homeport.cli
COMMANDS: dict[str, str] = {
    "serve": "serve:serve",
    "user": "user:user",
    "check": "check:check",
    "config": "config_cmd:config",
    "history": "history:history",
    "trash": "trash:trash",
    "undelete": "trash:undelete",
    "rollback": "rollback:rollback",
    "status": "status:status",
    "prune": "prune:prune",
    "replicate": "replica:replicate",
    "restore": "replica:restore",
    "drill": "replica:drill",
    "replica": "replica:replica",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when first asked for."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module_name, attr = self.lazy[cmd_name].split(":")
            module = importlib.import_module(f"homeport.cli.{module_name}")
            command = getattr(module, attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"homeport.cli.{self.lazy[cmd_name]} is not a command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="homeport")
def cli() -> None:
    """Homeport: contacts, calendars, to-dos and files that are never lost."""


def main() -> None:
    sys.exit(run_guarded(cli))
