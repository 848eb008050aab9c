"""`homeport rollback`: return an account or a collection to a moment, undoably.

Scripts rely on `homeport rollback --data DIR --user NAME --to MOMENT [--collection NAME]
[--dry-run] [--json]`; after applying, it prints the exact command that undoes it.
"""

from __future__ import annotations

import click
from rich.markup import escape

from homeport.cli.common import data_options
from homeport.cli.session import (
    cli_actor,
    command,
    console,
    emit_json,
    json_option,
    open_services,
    user_option,
)
from homeport.config import Config
from homeport.server.api_schema import plan_json
from homeport.services.history import RollbackPlan


def rollback_command(cfg: Config, user: str, to: str, collection: str | None) -> str:
    words = ["rollback", "--data", str(cfg.data_dir), "--user", user, "--to", to]
    if collection is not None:
        words += ["--collection", collection]
    return command(*words)


def _counts(plan: RollbackPlan, done: bool) -> str:
    counts = plan.counts()
    words = (
        ("restore", "restored" if done else "restore", "item(s)"),
        ("delete", "deleted" if done else "delete", "item(s)"),
        ("undelete_collection", "undeleted" if done else "undelete", "collection(s)"),
        ("delete_collection", "deleted" if done else "delete", "collection(s)"),
    )
    return ", ".join(
        f"{verb} {counts[key]} {noun}"
        for key, verb, noun in words
        if counts[key] or noun == "item(s)"
    )


def _plan_lines(plan: RollbackPlan) -> list[str]:
    lines = [
        f"  {cc.action} collection {cc.collection.path}"
        for cc in sorted(plan.collections, key=lambda c: c.collection.path)
    ]
    for pc in sorted(plan.items, key=lambda p: (p.collection.path, p.name)):
        where = f"{pc.collection.path}/{pc.name}"
        if pc.action == "restore":
            assert pc.target is not None
            lines.append(f"  {pc.description:<11} {where}  (revision {pc.target.seq})")
        else:
            lines.append(f"  {'delete':<11} {where}  (it was not there then)")
    return lines


@click.command()
@user_option
@click.option(
    "--to",
    "moment",
    required=True,
    help='A moment: "2026-11-27 10:00" (local time), "2026-11-27T10:00:00Z", '
    '"2 hours ago", or a log position "@SEQ".',
)
@click.option(
    "--collection", default=None, help="Only this collection (default: the whole account)."
)
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@json_option
@data_options
def rollback(
    user: str, moment: str, collection: str | None, dry_run: bool, as_json: bool, cfg: Config
) -> None:
    """Return an account or a collection to a moment, undoably (prints the undo command)."""
    actor = cli_actor()
    with open_services(cfg) as svc:
        coll = (
            svc.history.find_collection(actor, user, collection) if collection is not None else None
        )
        path = coll.path if coll is not None else None
        if dry_run:
            plan = svc.history.plan_rollback(actor, user, moment, coll)
            result = None
        else:
            result = svc.history.rollback(actor, user, moment, coll)
            plan = result.plan
    scope = f"{user}/{path}" if path else f"{user} (whole account)"
    undo = (
        rollback_command(cfg, user, result.undo_position, path)
        if result is not None and result.undo_position is not None
        else None
    )
    if as_json:
        out = plan_json(plan, result)
        out["undo_command"] = undo
        out["apply_command"] = (
            rollback_command(cfg, user, f"@{plan.seq}", path) if dry_run else None
        )
        emit_json(out)
        return
    con = console()

    def say(text: str) -> None:
        con.print(escape(text), soft_wrap=True, highlight=False)

    moment = f"{plan.moment} (log position {plan.seq})"
    if plan.empty:
        say(f"Nothing to roll back: {scope} is already as it was at {moment}.")
        return
    if dry_run:
        say(f"Dry run, nothing changed. Rolling back {scope} to {moment} would:")
        say(f"  {_counts(plan, done=False)}")
        for line in _plan_lines(plan):
            say(line)
        say("Apply it with:")
        say("  " + rollback_command(cfg, user, f"@{plan.seq}", path))
        return
    assert result is not None
    say(f"Rolled back {scope} to {moment}:")
    for line in _plan_lines(plan):
        say(line)
    say(f"  {_counts(plan, done=True)}")
    say(f"Clients see it at their next sync. Log entries {result.first_seq}-{result.last_seq}.")
    say("Undo with:")
    say(f"  {undo}")
