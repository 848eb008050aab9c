"""The `homeport` command: one module per command group, domain errors become exit codes."""

from __future__ import annotations

import sys

import click

from homeport import __version__
from homeport.cli import (
    check,
    config_cmd,
    history,
    prune,
    replica,
    rollback,
    serve,
    status,
    trash,
    user,
)
from homeport.cli.common import run_guarded


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="homeport")
def cli() -> None:
    """Homeport: contacts, calendars, to-dos and files that are never lost."""


cli.add_command(serve.serve)
cli.add_command(user.user)
cli.add_command(check.check)
cli.add_command(config_cmd.config)
cli.add_command(history.history)
cli.add_command(trash.trash)
cli.add_command(trash.undelete)
cli.add_command(rollback.rollback)
cli.add_command(status.status)
cli.add_command(prune.prune)
cli.add_command(replica.replicate)
cli.add_command(replica.restore)
cli.add_command(replica.drill)
cli.add_command(replica.replica)


def main() -> None:
    sys.exit(run_guarded(cli))
