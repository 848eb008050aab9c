"""`homeport trash` and `homeport undelete`: what was deleted, and bringing it back."""

from __future__ import annotations

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
    user_option,
)
from homeport.config import Config
from homeport.server.api_schema import collection_json, item_json, trash_json


@click.command()
@user_option
@click.option("--collection", default=None, help="Only this collection's deleted items.")
@json_option
@data_options
def trash(user: str, collection: str | None, as_json: bool, cfg: Config) -> None:
    """Deleted items (newest first, with the client that deleted them) and collections."""
    actor = cli_actor()
    with open_services(cfg) as svc:
        if collection is not None:
            coll = svc.history.find_collection(actor, user, collection)
            items = svc.history.trash_entries(actor, user, coll)
            colls = []
        else:
            items = svc.history.trash_entries(actor, user)
            colls = svc.history.collection_trash(actor, user)
    if as_json:
        emit_json(trash_json(user, items, colls))
        return
    out = console()
    if not items and not colls:
        where = f"{user}/{collection}" if collection else user
        out.print(f"The trash of {where} is empty.", highlight=False)
        return
    if items:
        table = Table(
            "deleted",
            "collection",
            "item",
            "what it was",
            "by",
            "client",
            title=f"Deleted items of {user} ({len(items)})",
            title_justify="left",
        )
        for e in items:
            table.add_row(
                local_time(e.deletion.at_us),
                e.collection.path,
                e.name,
                e.label or "",
                e.deletion.user,
                e.deletion.client or "-",
            )
        out.print(table)
    if colls:
        table = Table(
            "deleted",
            "collection",
            "kind",
            "items",
            "by",
            "client",
            title=f"Deleted collections of {user} ({len(colls)})",
            title_justify="left",
        )
        for dc in colls:
            table.add_row(
                local_time(dc.deletion.at_us) if dc.deletion else "?",
                dc.collection.path,
                dc.collection.kind.value,
                str(dc.items),
                dc.deletion.user if dc.deletion else "?",
                (dc.deletion.client or "-") if dc.deletion else "?",
            )
        out.print(table)
    out.print(
        "Bring one back:  "
        + command("undelete", "--data", str(cfg.data_dir), "--user", user)
        + " --collection PATH --item NAME",
        soft_wrap=True,
        highlight=False,
    )


@click.command()
@user_option
@click.option("--collection", required=True, help="The collection's path, e.g. contacts.")
@click.option("--item", default=None, help="The deleted item; omit to undelete the collection.")
@json_option
@data_options
def undelete(user: str, collection: str, item: str | None, as_json: bool, cfg: Config) -> None:
    """Bring back a deleted item as it was, or a deleted collection with all its items."""
    actor = cli_actor()
    with open_services(cfg) as svc:
        if item is None:
            coll = svc.history.deleted_collection(actor, user, collection)
            back = svc.history.undelete_collection(actor, coll)
            count = len(svc.items.list_items(actor, back))
            if as_json:
                emit_json({"collection": collection_json(back), "item": None})
                return
            click.echo(f"undeleted collection {user}/{back.path} with {count} item(s)")
            return
        coll = svc.history.find_collection(actor, user, collection)
        restored = svc.history.undelete_item(actor, coll, item)
    if as_json:
        emit_json({"collection": collection_json(coll), "item": item_json(coll, restored)})
        return
    click.echo(f"undeleted {user}/{coll.path}/{item} (now revision {restored.seq})")
