"""`homeport check`: verify the store's invariants and say plainly what is wrong."""

from __future__ import annotations

import json

import click

from homeport.cli.common import EXIT_PROBLEMS, data_options
from homeport.config import Config
from homeport.store.check import check_store
from homeport.wiring import open_store


@click.command()
@click.option("--quick", is_flag=True, help="Check that blobs exist without re-hashing them.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@data_options
def check(quick: bool, as_json: bool, cfg: Config) -> None:
    """Verify every invariant of the data directory; exit 1 if anything is wrong."""
    if not (cfg.data_dir / "homeport.sqlite3").exists():
        raise click.UsageError(f"{cfg.data_dir} holds no Homeport data")
    store = open_store(cfg.data_dir, cfg.get("storage", "inline_max"))
    try:
        report = check_store(store, verify_contents=not quick)
    finally:
        store.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "log_entries": report.log_entries,
                    "items": report.items,
                    "blobs_checked": report.blobs_checked,
                    "bytes_checked": report.bytes_checked,
                    "problems": report.problems,
                }
            )
        )
    else:
        click.echo(
            f"checked {report.log_entries} log entries, {report.items} current items, "
            f"{report.blobs_checked} blobs ({report.bytes_checked} bytes)"
        )
        for problem in report.problems:
            click.echo(f"PROBLEM: {problem}")
        click.echo("all invariants hold" if report.ok else f"{len(report.problems)} problem(s)")
    if not report.ok:
        raise SystemExit(EXIT_PROBLEMS)
