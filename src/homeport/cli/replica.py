"""`homeport replicate`, `restore`, `drill`, `replica prune`: the replica from the shell.

The replica format is docs/replica-format.md. Until `homeport.cli` registers these
commands, they run as `homeport COMMAND …`.
"""

from __future__ import annotations

import functools
import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from homeport.cli.common import EXIT_PROBLEMS
from homeport.errors import ConfigError
from homeport.replication import settings as replica_settings
from homeport.replication.crypto import load_identities
from homeport.replication.drill import default_scratch, record_drill, run_drill
from homeport.replication.errors import ReplicatorBusy
from homeport.replication.prune import ReplicaPruneReport, prune_replica
from homeport.replication.restore import restore as run_restore
from homeport.replication.settings import ReplicationSettings, TargetSettings
from homeport.replication.shipper import Replicator
from homeport.replication.source import DB_FILE_NAME
from homeport.replication.state import ReplicatorLock, read_states
from homeport.replication.targets import open_target
from homeport.services.moments import parse_moment
from homeport.services.retention import RetentionPolicy
from homeport.store.model import datetime_to_us, us_to_datetime
from homeport.wiring import open_store

F = TypeVar("F", bound=Callable[..., Any])


def _common(func: F) -> F:
    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="TOML configuration file (or HOMEPORT_CONFIG): [replication], [replica.NAME].",
    )
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _data_option(func: F) -> F:
    return click.option(
        "--data",
        "data",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Data directory (default ./homeport-data, or server.data from the config).",
    )(func)


def _data_dir(data: Path | None, config_path: Path | None) -> Path:
    data_dir = data if data is not None else replica_settings.data_dir_from(config_path)
    if not (data_dir / DB_FILE_NAME).exists():
        raise click.UsageError(f"{data_dir} holds no Homeport data")
    return data_dir


def _ask_passphrase() -> str:
    return str(click.prompt("Passphrase for the identity file", hide_input=True, err=True))


class _RichProgress:
    """The restore's progress, as a rich progress bar on stderr."""

    def __init__(self, console: Console) -> None:
        self.bar = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task: TaskID | None = None
        self._lock = threading.Lock()

    def phase(self, name: str, total: int) -> None:
        with self._lock:
            if self.task is not None:
                task = self.bar.tasks[-1]
                self.bar.update(self.task, completed=task.total or task.completed)
            self.task = self.bar.add_task(name, total=max(total, 1))

    def advance(self, amount: int) -> None:
        with self._lock:
            if self.task is not None:
                self.bar.advance(self.task, amount)


def _moment(text: str | None) -> int | None:
    return None if text is None else datetime_to_us(parse_moment(text))


def _iso(us: int) -> str:
    return us_to_datetime(us).isoformat(timespec="microseconds").replace("+00:00", "Z")


# -- replicate --------------------------------------------------------------------


@click.command()
@click.option("--once", is_flag=True, help="Ship what is waiting, then exit.")
@click.option(
    "--replica",
    "urls",
    multiple=True,
    metavar="URL",
    help="A replica target (file:///PATH or s3://BUCKET/PREFIX); repeatable.",
)
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    metavar="KEY",
    help="An age recipient (age1…) or a file of them; repeatable.",
)
@click.option("--snapshot", is_flag=True, help="Also ship a metadata snapshot now.")
@_data_option
@_common
def replicate(
    once: bool,
    urls: tuple[str, ...],
    recipients: tuple[str, ...],
    snapshot: bool,
    data: Path | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Ship the change log, new bodies and snapshots, encrypted, to every replica target."""
    settings = replica_settings.load(config_path, urls, recipients)
    data_dir = _data_dir(data, config_path)
    store = open_store(data_dir)
    try:
        replicator = Replicator(store, settings)
        try:
            if once:
                reports = replicator.replicate_once(force_snapshot=snapshot)
                statuses = replicator.status()
            else:
                _run_until_signal(replicator)
                return
        finally:
            replicator.stop()
    finally:
        store.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "targets": [
                        {**r.__dict__, "lag": s.to_json()}
                        for r, s in zip(reports, statuses, strict=True)
                    ]
                }
            )
        )
    else:
        for r, s in zip(reports, statuses, strict=True):
            if r.error:
                click.echo(f"{s.name}: FAILED: {r.error}")
                continue
            extra = f", snapshot at entry {r.snapshot_seq}" if r.snapshot_seq is not None else ""
            click.echo(
                f"{s.name}: shipped to entry {r.shipped_seq} ({r.entries} entries in "
                f"{r.segments} segment(s), {r.blobs_uploaded} new blob(s), "
                f"{r.bytes_uploaded} bytes{extra}); {s.lag_revisions} entries waiting"
            )
    if any(r.error for r in reports):
        raise SystemExit(EXIT_PROBLEMS)


def _run_until_signal(replicator: Replicator) -> None:
    done = threading.Event()

    def stop(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    replicator.start()
    click.echo("replicating; stop with Ctrl-C", err=True)
    done.wait()


# -- restore ------------------------------------------------------------------------


def _target_settings(name_or_url: str, config_path: Path | None) -> TargetSettings:
    settings = replica_settings.load(config_path)
    return replica_settings.find_target(settings, name_or_url)


@click.command()
@click.option(
    "--from",
    "source",
    required=True,
    metavar="URL|NAME",
    help="The replica: file:///PATH, s3://BUCKET/PREFIX, or a [replica.NAME] of the config.",
)
@click.option(
    "--identity",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="age identity file (AGE-SECRET-KEY-1…), possibly passphrase-protected.",
)
@click.option(
    "--to", "dest", required=True, type=click.Path(path_type=Path), help="New data directory."
)
@click.option(
    "--at",
    "moment",
    default=None,
    metavar="MOMENT",
    help='Restore as of this moment ("2026-11-27 10:00", "2 hours ago"); default: newest.',
)
@click.option("--generation", default=None, help="Restore this generation (default: newest).")
@_common
def restore(
    source: str,
    identity: Path,
    dest: Path,
    moment: str | None,
    generation: str | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Rebuild a complete data directory from a replica: plan, execute, verify."""
    at_us = _moment(moment)
    tsettings = _target_settings(source, config_path)
    opener = load_identities(identity, _ask_passphrase)
    target = open_target(tsettings)
    console = Console(stderr=True)
    progress = None if as_json else _RichProgress(console)
    try:
        if progress is not None:
            with progress.bar:
                plan, report = run_restore(
                    target,
                    opener,
                    dest,
                    open_store,
                    at_us=at_us,
                    generation=generation,
                    progress=progress,
                )
        else:
            plan, report = run_restore(
                target, opener, dest, open_store, at_us=at_us, generation=generation
            )
    finally:
        target.close()
    doc = {
        "path": str(report.path),
        "generation": plan.generation.generation,
        "restored_seq": report.restored_seq,
        "restored_moment": _iso(report.restored_at_us) if report.restored_at_us else None,
        "newest_seq": plan.newest_seq,
        "items": report.items,
        "revisions": report.revisions,
        "blobs": report.blobs,
        "bytes": report.bytes,
        "bytes_downloaded": report.bytes_downloaded,
        "seconds": round(report.seconds, 3),
        "notes": plan.notes,
    }
    if as_json:
        click.echo(json.dumps(doc))
        return
    for note in plan.notes:
        click.echo(f"note: {note}")
    click.echo(
        f"restored {report.path} to entry {report.restored_seq} "
        f"({doc['restored_moment'] or 'empty log'}) from generation {doc['generation']}\n"
        f"  {report.items} items, {report.revisions} revisions, {report.blobs} blobs, "
        f"{report.bytes} bytes verified ({report.bytes_downloaded} downloaded) "
        f"in {report.seconds:.1f} s\n"
        "  every body re-hashed and every invariant of `homeport check` holds\n"
        f"  serve it with: homeport serve --data {report.path}"
    )


# -- drill ----------------------------------------------------------------------------


def _drill_targets(
    settings: ReplicationSettings, data_dir: Path, target: str | None
) -> list[TargetSettings]:
    if target is not None:
        return [replica_settings.find_target(settings, target)]
    if settings.targets:
        return list(settings.targets)
    found = [
        replica_settings.target_from_url(st.url, name=st.name)
        for st in read_states(data_dir)
        if st.generation
    ]
    if not found:
        raise ConfigError(
            "no replica to drill: configure [replica.NAME], pass --target URL, or replicate first"
        )
    return found


@click.command()
@click.option(
    "--identity",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="age identity file (AGE-SECRET-KEY-1…), possibly passphrase-protected.",
)
@click.option(
    "--target",
    default=None,
    metavar="NAME|URL",
    help="Drill this target only (default: every configured or replicated one).",
)
@click.option(
    "--scratch",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the scratch restore goes (default DATA/replication/drill-scratch).",
)
@_data_option
@_common
def drill(
    identity: Path,
    target: str | None,
    scratch: Path | None,
    data: Path | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Restore the newest replica into a scratch place, check every byte against the live
    data, remove it, record the result; exit 1 if it failed."""
    data_dir = _data_dir(data, config_path)
    settings = replica_settings.load(config_path)
    targets = _drill_targets(settings, data_dir, target)
    opener = load_identities(identity, _ask_passphrase)
    results = []
    for tsettings in targets:
        where = scratch if scratch is not None else default_scratch(data_dir)
        where.mkdir(parents=True, exist_ok=True)
        replica = open_target(tsettings)
        try:
            result = run_drill(data_dir / DB_FILE_NAME, replica, opener, open_store, where)
        finally:
            replica.close()
        record_drill(data_dir, result)
        results.append(result)
    if as_json:
        click.echo(json.dumps({"drills": [r.to_json() for r in results]}))
    else:
        for r in results:
            if r.ok:
                click.echo(
                    f"drill {r.target}: PASSED in {r.seconds:.1f} s: entry {r.restored_seq} "
                    f"({_iso(r.restored_at_us) if r.restored_at_us else '-'}), {r.items} items, "
                    f"{r.revisions} revisions, {r.blobs} blobs, {r.bytes_verified} bytes "
                    "verified and equal to the live data"
                )
            else:
                click.echo(f"drill {r.target}: FAILED: {r.error}")
                for diff in r.differences:
                    click.echo(f"  - {diff}")
    if not all(r.ok for r in results):
        raise SystemExit(EXIT_PROBLEMS)


# -- replica retention ----------------------------------------------------------------


@click.group()
def replica() -> None:
    """Look after the replicas themselves (retention)."""


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"


def _describe_prune(name: str, report: ReplicaPruneReport) -> list[str]:
    total = report.removed_total
    verb = "would remove" if report.dry_run else "removed"
    kinds = ", ".join(
        f"{t.count} {kind}{'s' if t.count != 1 else ''}"
        for kind, t in report.removed.items()
        if t.count
    )
    lines = [
        f"{name}: {verb} {total.count} object(s), {_size(total.bytes)}"
        + (f" ({kinds})" if kinds else "")
        + f"; keeps {report.kept.count} object(s), {_size(report.kept.bytes)}"
    ]
    if report.continuous_from_us is not None:
        lines.append(
            f"  restorable: every moment since {_iso(report.continuous_from_us)} and "
            f"{report.restore_points - 1 if report.restore_points else 0} earlier checkpoint(s)"
            + (
                f", back to {_iso(report.oldest_kept_us)}"
                if report.oldest_kept_us is not None
                else ""
            )
        )
    if report.locked.count:
        until = _iso(report.locked_until_us) if report.locked_until_us else "a later date"
        lines.append(
            f"  {report.locked.count} object(s) ({_size(report.locked.bytes)}) are still "
            f"under Object Lock retention (up to {until}): left in place"
        )
    if report.refused.count:
        lines.append(
            f"  the storage refused to delete {report.refused.count} object(s): the "
            "credentials may lack delete permission; left in place"
        )
    lines.extend(f"  note: {note}" for note in report.notes)
    lines.extend(f"  error: {error}" for error in report.errors)
    if report.dry_run:
        lines.append("  nothing was changed (run with --apply to remove)")
    return lines


@replica.command("prune")
@click.option(
    "--identity",
    default=None,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="age identity file to read the replica's manifests (default: replication.drill_identity).",
)
@click.option(
    "--target",
    default=None,
    metavar="NAME|URL",
    help="Prune this target only (default: every configured or replicated one).",
)
@click.option("--dry-run", "dry_run", is_flag=True, help="Report what would go (the default).")
@click.option("--apply", "apply", is_flag=True, help="Remove what no kept restore point needs.")
@_data_option
@_common
def replica_prune(
    identity: Path | None,
    target: str | None,
    dry_run: bool,
    apply: bool,
    data: Path | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Apply the [retention] policy to the replicas: remove the snapshots, segments and
    blobs that no kept restore point needs; dry run unless --apply.

    What is kept is read from the replica's own manifests (hence the identity). Objects
    under S3 Object Lock retention are never removed (they are reported). With a data
    directory, its replicator lock is held while removing (so not while `homeport serve`
    runs: serve prunes its replicas itself every replication.prune_interval).
    """
    from homeport.config import load as load_config

    if dry_run and apply:
        raise click.UsageError("choose one of --dry-run (the default) or --apply")
    cfg = load_config(config_path)
    policy = RetentionPolicy.from_config(cfg)
    settings = replica_settings.load(config_path)
    key_file = identity or (Path(settings.drill_identity) if settings.drill_identity else None)
    if key_file is None:
        raise click.UsageError("--identity is needed to read the replica's manifests")
    data_dir = data if data is not None else replica_settings.data_dir_from(config_path)
    has_data = (data_dir / DB_FILE_NAME).exists()
    if target is not None:
        targets = [replica_settings.find_target(settings, target)]
    elif has_data:
        targets = _drill_targets(settings, data_dir, None)
    elif settings.targets:
        targets = list(settings.targets)
    else:
        raise click.UsageError("name the replica with --target URL (or configure [replica.NAME])")
    opener = load_identities(key_file, _ask_passphrase)
    lock = ReplicatorLock(data_dir) if apply and has_data else None
    if lock is not None:
        try:
            lock.acquire()
        except ReplicatorBusy as exc:
            raise ReplicatorBusy(
                f"`homeport serve` is replicating {data_dir}: it applies the replica's "
                "retention itself (replication.prune_interval, with drill_identity); stop it "
                "to prune now, or run without --apply to see what would go"
            ) from exc
    reports = []
    try:
        for tsettings in targets:
            handle = open_target(tsettings)
            try:
                reports.append(
                    (
                        tsettings.name,
                        prune_replica(
                            handle, opener, policy, apply=apply, exclusive=lock is not None
                        ),
                    )
                )
            finally:
                handle.close()
    finally:
        if lock is not None:
            lock.release()
    if as_json:
        click.echo(json.dumps({"targets": [r.as_json() for _, r in reports]}))
    else:
        for name, r in reports:
            click.echo("\n".join(_describe_prune(name, r)))
    if any(r.errors for _, r in reports):
        raise SystemExit(EXIT_PROBLEMS)
