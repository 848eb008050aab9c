"""`homeport status`: what is stored, how fresh it is, and what needs attention.

The report is a list of sections, each computed by one function from the same
`StatusContext` and shown both as text and (`--json`) under its own key. Later work adds
sections here rather than growing one function: replication lag and off-machine copies
(`replication`), restore drill results (`drills`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from homeport.cli.common import data_options
from homeport.cli.session import (
    cli_actor,
    console,
    emit_json,
    json_option,
    local_time,
    open_services,
)
from homeport.config import Config
from homeport.server.api_schema import alert_json, time_json
from homeport.services import Services
from homeport.services.accounts import Actor
from homeport.wiring import DB_NAME


@dataclass
class StatusContext:
    cfg: Config
    services: Services
    actor: Actor


@dataclass
class Section:
    """One part of the report: `data` goes into the JSON under `key`; `lines` and
    `table` are the text form."""

    key: str
    title: str
    data: Any
    lines: list[str] = field(default_factory=list)
    table: Table | None = None
    attention: bool = False  # something a person should look at


def _storage(ctx: StatusContext) -> Section:
    data_dir = ctx.cfg.data_dir
    db_bytes = sum(
        p.stat().st_size for p in (data_dir / DB_NAME, data_dir / f"{DB_NAME}-wal") if p.exists()
    )
    with ctx.services.store.read() as r:
        length = r.max_seq()
        last = r.get_revision(length) if length else None
    data = {
        "data_dir": str(data_dir),
        "database_bytes": db_bytes,
        "log_length": length,
        "last_write": time_json(last.at_us) if last else None,
        "last_write_by": last.user if last else None,
        "last_write_client": last.client if last else None,
    }
    lines = [
        f"data directory  {data_dir}  (database {db_bytes / 1_000_000:.1f} MB)",
        f"change log      {length} entries",
        "last write      "
        + (f"{local_time(last.at_us)} by {last.user} ({last.client or '-'})" if last else "never"),
    ]
    return Section("storage", "Storage", data, lines)


def _accounts(ctx: StatusContext) -> Section:
    users: list[dict[str, Any]] = []
    with ctx.services.store.read() as r:
        for user in r.list_users():
            colls = r.list_collections(user.name)
            users.append(
                {
                    "name": user.name,
                    "admin": user.is_admin,
                    "collections": len(colls),
                    "items": sum(r.count_items(c.id) for c in colls),
                    "bytes": r.usage_bytes(user.name),
                    "deleted_collections": len(r.deleted_collections(user.name)),
                }
            )
    totals = {
        "users": len(users),
        "collections": sum(u["collections"] for u in users),
        "items": sum(u["items"] for u in users),
        "bytes": sum(u["bytes"] for u in users),
    }
    table = Table("user", "collections", "items", "size", "deleted collections")
    for u in users:
        table.add_row(
            u["name"] + (" (admin)" if u["admin"] else ""),
            str(u["collections"]),
            str(u["items"]),
            f"{u['bytes'] / 1_000_000:.1f} MB",
            str(u["deleted_collections"]) if u["deleted_collections"] else "",
        )
    lines = [
        f"{totals['users']} user(s), {totals['collections']} collection(s), "
        f"{totals['items']} item(s)"
    ]
    return Section(
        "accounts", "Accounts", {"totals": totals, "users": users}, lines, table if users else None
    )


def _alerts(ctx: StatusContext) -> Section:
    alerts = ctx.services.guards.alerts(ctx.actor, None, include_acknowledged=False)
    data_dir = str(ctx.cfg.data_dir)
    lines: list[str] = []
    for a in alerts:
        lines.append(
            f"{local_time(a.at_us)}  {a.owner}/{a.collection_path}: {a.client or a.user} "
            f"deleted {a.deleted} of {a.collection_size} item(s)  [alert {a.id}]"
        )
        lines.append(f"    undo: {a.command(data_dir)}")
    if not alerts:
        lines.append("none open")
    return Section(
        "alerts",
        "Mass-deletion alerts",
        [alert_json(a, data_dir) for a in alerts],
        lines,
        attention=bool(alerts),
    )


def _replication(ctx: StatusContext) -> Section:
    """Targets, lag in seconds and changes, and whether each target is up."""
    from homeport.replication.metrics import replication_summary
    from homeport.replication.status import read_status
    from homeport.wiring import DB_NAME

    data_dir = ctx.cfg.data_dir
    data, lines, attention = replication_summary(read_status(data_dir, data_dir / DB_NAME))
    return Section("replication", "Off-machine copies", data, lines, attention=attention)


def _drills(ctx: StatusContext) -> Section:
    """When the last restore drill ran, how long it took and what it verified."""
    from homeport.replication.metrics import drill_summary

    data, lines, attention = drill_summary(ctx.cfg.data_dir)
    return Section("drills", "Restore drills", data, lines, attention=attention)


SECTIONS: tuple[Callable[[StatusContext], Section], ...] = (
    _storage,
    _accounts,
    _alerts,
    _replication,
    _drills,
)


@click.command()
@json_option
@data_options
def status(as_json: bool, cfg: Config) -> None:
    """What is stored, the last write, open mass-deletion alerts and how data is kept."""
    with open_services(cfg) as svc:
        ctx = StatusContext(cfg, svc, cli_actor())
        sections = [build(ctx) for build in SECTIONS]
    if as_json:
        emit_json({s.key: s.data for s in sections})
        return
    out = console()
    for s in sections:
        style = "bold yellow" if s.attention else "bold"
        out.print(f"[{style}]{escape(s.title)}[/{style}]")
        for line in s.lines:
            out.print("  " + escape(line), soft_wrap=True, highlight=False)
        if s.table is not None:
            out.print(s.table)
        out.print()
