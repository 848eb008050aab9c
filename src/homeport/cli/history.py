"""`homeport history [list|show|restore]`: every revision of an item, and putting one back."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.table import Table

from homeport.cli.common import data_options
from homeport.cli.session import (
    cli_actor,
    command,
    console,
    emit_json,
    json_option,
    local_time,
    open_services,
)
from homeport.config import Config
from homeport.server.api_schema import history_json, item_json
from homeport.services.history import RevisionInfo
from homeport.store.model import Op

F = TypeVar("F", bound=Callable[..., Any])


def item_options(required: bool) -> Callable[[F], F]:
    def wrap(func: F) -> F:
        for decl, text in reversed(
            (
                ("--user", "The account the item belongs to."),
                ("--collection", "The collection's path in that account, e.g. contacts."),
                ("--item", "The item's name in the collection, e.g. ab12.vcf."),
            )
        ):
            func = click.option(decl, required=required, help=text)(func)
        return func

    return wrap


def _mark(info: RevisionInfo) -> str:
    if info.revision.op is Op.CONFLICT:
        return "conflict"
    if info.current:
        return "current"
    if info.revision.op is Op.DELETE:
        return "deleted"
    return ""


def _size(n: int) -> str:
    if n < 10_000:
        return f"{n} B"
    if n < 10_000_000:
        return f"{n / 1000:.0f} kB"
    return f"{n / 1_000_000:.0f} MB"


def print_history(cfg: Config, user: str, collection: str, item: str, as_json: bool) -> None:
    actor = cli_actor()
    with open_services(cfg) as svc:
        coll = svc.history.find_collection(actor, user, collection)
        revisions = svc.history.item_history(actor, coll, item)
    if as_json:
        emit_json(history_json(coll, item, revisions))
        return
    deleted = " (collection deleted)" if coll.deleted_seq is not None else ""
    table = Table(
        "seq",
        "time",
        "who",
        "client",
        "size",
        "what changed",
        "",
        title=f"{user}/{coll.path}/{item}{deleted}",
        title_justify="left",
    )
    for info in revisions:
        rev = info.revision
        mark = _mark(info)
        style = "bold" if info.current else ("yellow" if mark == "conflict" else None)
        table.add_row(
            str(rev.seq),
            local_time(rev.at_us),
            rev.user,
            rev.client or "-",
            _size(rev.size) if rev.op is not Op.DELETE else "",
            info.summary,
            mark,
            style=style,
        )
    where = ["--data", str(cfg.data_dir), "--user", user, "--collection", coll.path]
    where += ["--item", item, "--seq", "SEQ"]
    out = console()
    out.print(table)
    out.print(
        "Body of a revision:  " + command("history", "show", *where),
        soft_wrap=True,
        highlight=False,
    )
    out.print(
        "Make one current:    " + command("history", "restore", *where),
        soft_wrap=True,
        highlight=False,
    )


@click.group(invoke_without_command=True)
@item_options(required=False)
@json_option
@data_options
@click.pass_context
def history(
    ctx: click.Context,
    user: str | None,
    collection: str | None,
    item: str | None,
    as_json: bool,
    cfg: Config,
) -> None:
    """Every revision of an item (`history --user U --collection C --item I` lists them)."""
    if ctx.invoked_subcommand is not None:
        if any(ctx.params.values()):
            raise click.UsageError(
                f"give the options after the subcommand: homeport history "
                f"{ctx.invoked_subcommand} --user ...",
                ctx,
            )
        return
    missing = [
        flag
        for flag, value in (("--user", user), ("--collection", collection), ("--item", item))
        if not value
    ]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)}", ctx)
    assert user and collection and item
    print_history(cfg, user, collection, item, as_json)


@history.command("list")
@item_options(required=True)
@json_option
@data_options
def list_(user: str, collection: str, item: str, as_json: bool, cfg: Config) -> None:
    """Every revision of an item: time, who, client, size, what changed (= `history`)."""
    print_history(cfg, user, collection, item, as_json)


@history.command("show")
@item_options(required=True)
@click.option("--seq", type=click.IntRange(min=0), required=True, help="The revision.")
@data_options
def show(user: str, collection: str, item: str, seq: int, cfg: Config) -> None:
    """Write the exact body of one revision to standard output."""
    actor = cli_actor()
    with open_services(cfg) as svc:
        coll = svc.history.find_collection(actor, user, collection)
        body = svc.history.revision_body(actor, coll, item, seq)
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()


@history.command("restore")
@item_options(required=True)
@click.option("--seq", type=click.IntRange(min=0), required=True, help="The revision.")
@json_option
@data_options
def restore(user: str, collection: str, item: str, seq: int, as_json: bool, cfg: Config) -> None:
    """Make revision SEQ of an item current again (a new revision; also undeletes)."""
    actor = cli_actor()
    with open_services(cfg) as svc:
        coll = svc.history.find_collection(actor, user, collection)
        restored = svc.history.restore_revision(actor, coll, item, seq)
    if as_json:
        emit_json({"item": item_json(coll, restored)})
        return
    click.echo(
        f"restored {user}/{coll.path}/{item} to revision {seq} "
        f"(now revision {restored.seq}; clients see it at their next sync)"
    )
