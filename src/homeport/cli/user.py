"""`homeport user add|passwd|list|remove`: manage who may log in."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from homeport.cli.common import data_options
from homeport.config import Config
from homeport.services.accounts import Accounts, generate_password, hasher_from_config
from homeport.store.model import us_to_datetime
from homeport.wiring import open_store


def _accounts(cfg: Config) -> Accounts:
    return Accounts(
        open_store(cfg.data_dir, cfg.get("storage", "inline_max")), hasher_from_config(cfg)
    )


def _read_password(password_stdin: bool, generate: bool) -> tuple[str, bool]:
    if password_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise click.UsageError("no password on standard input")
        return password, False
    if generate:
        return generate_password(), True
    if not sys.stdin.isatty():
        raise click.UsageError("no terminal: use --password-stdin or --generate")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True), False


@click.group()
def user() -> None:
    """Add, list and remove users, and change passwords."""


@user.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--generate", is_flag=True, help="Generate a password and print it once.")
@click.option("--admin", is_flag=True, help="May act on every user's data (history, rollback).")
@data_options
def add(name: str, password_stdin: bool, generate: bool, admin: bool, cfg: Config) -> None:
    """Create user NAME with an address book, a calendar and a task list."""
    password, generated = _read_password(password_stdin, generate)
    accounts = _accounts(cfg)
    try:
        accounts.add(name, password, admin=admin)
    finally:
        accounts.store.close()
    click.echo(f"created user {name} (Contacts, Calendar, Tasks)")
    if generated:
        click.echo(f"password: {password}")
        click.echo("This password is shown once; store it in your password manager.")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--generate", is_flag=True, help="Generate a password and print it once.")
@data_options
def passwd(name: str, password_stdin: bool, generate: bool, cfg: Config) -> None:
    """Set a new password for NAME."""
    password, generated = _read_password(password_stdin, generate)
    accounts = _accounts(cfg)
    try:
        accounts.set_password(name, password)
    finally:
        accounts.store.close()
    click.echo(f"password changed for {name}")
    if generated:
        click.echo(f"password: {password}")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@data_options
def list_(as_json: bool, cfg: Config) -> None:
    """List users."""
    accounts = _accounts(cfg)
    try:
        users = accounts.list_users()
    finally:
        accounts.store.close()
    if as_json:
        import json

        click.echo(
            json.dumps(
                [
                    {
                        "name": u.name,
                        "admin": u.is_admin,
                        "created": us_to_datetime(u.created_us).isoformat(),
                    }
                    for u in users
                ]
            )
        )
        return
    table = Table("user", "admin", "created")
    for u in users:
        table.add_row(
            u.name, "yes" if u.is_admin else "", f"{us_to_datetime(u.created_us):%Y-%m-%d %H:%M}"
        )
    Console().print(table)


@user.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@data_options
def remove(name: str, yes: bool, cfg: Config) -> None:
    """Remove NAME's login. Their data stays in history (nothing is erased)."""
    if not yes and sys.stdin.isatty():
        click.confirm(f"Remove user {name}?", abort=True)
    accounts = _accounts(cfg)
    try:
        accounts.remove(name)
    finally:
        accounts.store.close()
    click.echo(f"removed user {name}; their collections are kept as deleted in history")
