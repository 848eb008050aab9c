"""`homeport prune`: apply the retention policy now, or see what it would free."""

from __future__ import annotations

import json

import click

from homeport.cli.common import data_options
from homeport.config import Config
from homeport.services.retention import PruneReport, Retention, RetentionPolicy
from homeport.store.model import us_to_datetime
from homeport.wiring import open_store


@click.command()
@click.option(
    "--dry-run", "dry_run", is_flag=True, help="Report what would be freed; change nothing."
)
@click.option(
    "--apply", "apply", is_flag=True, help="Prune now: drop bodies the policy does not keep."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@data_options
def prune(dry_run: bool, apply: bool, as_json: bool, cfg: Config) -> None:
    """Thin old revisions by the [retention] policy and remove bodies nothing keeps.

    The change log is never shortened: sync tokens stay valid and history still lists
    every revision; pruned ones just have no body any more. Current items and every
    revision the policy keeps are never touched. Safe while the server runs.
    """
    if dry_run == apply:
        raise click.UsageError("choose one of --dry-run (report only) or --apply")
    if not (cfg.data_dir / "homeport.sqlite3").exists():
        raise click.UsageError(f"{cfg.data_dir} holds no Homeport data")
    policy = RetentionPolicy.from_config(cfg)
    store = open_store(cfg.data_dir, cfg.get("storage", "inline_max"))
    try:
        report = Retention(store, policy).prune(apply=apply)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(report.as_json()))
    else:
        click.echo(_describe(report, policy))


def _describe(report: PruneReport, policy: RetentionPolicy) -> str:
    if policy.keeps_everything:
        head = "retention.keep_all_days is 0: every revision is kept"
    else:
        horizon = us_to_datetime(report.horizon_us).strftime("%Y-%m-%d %H:%M UTC")
        verb = "would prune" if report.dry_run else "pruned"
        head = f"{verb} {report.revisions} of {report.examined} revisions replaced before {horizon}"
    verb = "would remove" if report.dry_run else "removed"
    lines = [
        head,
        f"{verb} {report.blobs} bodies: {_size(report.inline_bytes)} inline, "
        f"{_size(report.external_bytes)} in files",
    ]
    if report.orphan_files:
        lines.append(
            f"{verb} {report.orphan_files} leftover files nothing refers to "
            f"({_size(report.orphan_bytes)})"
        )
    total = "would free" if report.dry_run else "freed"
    lines.append(f"{total} {_size(report.bytes_freed)} in all")
    if report.dry_run:
        lines.append("nothing was changed (run with --apply to prune)")
    return "\n".join(lines)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"
