"""`homeport config`: show the effective settings and the generated reference."""

from __future__ import annotations

import click

from homeport import config as config_mod
from homeport.cli.common import data_options
from homeport.config import Config


@click.group()
def config() -> None:
    """Inspect configuration."""


@config.command("reference")
def reference() -> None:
    """Print the configuration reference (Markdown)."""
    click.echo(config_mod.reference_markdown(), nl=False)


@config.command("show")
@data_options
def show(cfg: Config) -> None:
    """Print the effective settings after file, environment and flags."""
    for s in config_mod.SETTINGS:
        click.echo(f"{s.section}.{s.key} = {cfg.get(s.section, s.key)!r}")


@config.command("cli-reference")
def cli_reference() -> None:
    """Print the command-line reference (Markdown)."""
    from homeport.cli import cli
    from homeport.cli.docs import cli_reference as build

    click.echo(build(cli), nl=False)
