"""`homeport serve`: run the DAV server (and, later, the web UI) on one port."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

import click

from homeport.cli.common import data_options
from homeport.config import Config
from homeport.errors import ConfigError
from homeport.services import Services

log = logging.getLogger("homeport.serve")


@click.command()
@click.option("--listen", default=None, help="HOST:PORT to listen on (default 127.0.0.1:5232).")
@click.option("--cert", default=None, help="TLS certificate file (PEM).")
@click.option("--key", default=None, help="TLS private key file (PEM).")
@click.option(
    "--replica",
    "replicas",
    multiple=True,
    help="Replicate continuously to this target (file:///path or s3://bucket/prefix); "
    "repeatable, adds to [replica.NAME] tables.",
)
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    help="age public key (age1...) that can decrypt the replica; repeatable.",
)
@data_options
def serve(replicas: tuple[str, ...], recipients: tuple[str, ...], cfg: Config) -> None:
    """Serve CalDAV, CardDAV and WebDAV from the data directory."""
    import uvicorn

    tune_malloc()  # before any worker thread exists
    from homeport.replication import settings as replica_settings
    from homeport.server.app import SECURITY_HEADERS, create_app
    from homeport.server.transport import MAX_HEADER_BYTES, protocol_class
    from homeport.services.retention import RetentionTask
    from homeport.wiring import build_services

    level = str(cfg.get("log", "level")).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"log.level must be debug, info, warning or error, not {level!r}")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    host, port = cfg.listen
    cert, key = cfg.get("server", "cert"), cfg.get("server", "key")
    if bool(cert) != bool(key):
        raise ConfigError("--cert and --key go together")
    interval_hours = int(cfg.get("retention", "prune_interval_hours"))
    if interval_hours < 0:
        raise ConfigError("retention.prune_interval_hours must not be negative")
    http_protocol = protocol_class(
        str(cfg.get("server", "http_parser")),
        float(cfg.get("server", "idle_timeout")),
        SECURITY_HEADERS,
    )
    rsettings = replica_settings.load(cfg.source, replicas, recipients)
    services = build_services(cfg)
    try:
        services.configure(cfg)  # [guards] and [retention]
        background = start_background(cfg, services, rsettings)
    except Exception:
        services.close()
        raise
    retention_task = (
        RetentionTask(services.retention, interval_hours * 3600.0).start()
        if interval_hours
        else None
    )
    if services.accounts.count() == 0:
        click.echo(
            "No users yet. Create the first one (in another terminal) with:\n"
            f"    homeport user add YOURNAME --data {cfg.data_dir}\n"
            "then point your phone or desktop at "
            f"{'https' if cert else 'http'}://{host}:{port}/ with that name and password.",
            err=True,
        )
    app = create_app(services, cfg, metrics_exposition(cfg, services, background))
    scheme = "https" if cert else "http"
    click.echo(
        f"homeport serving {cfg.data_dir} at {scheme}://{host}:{port}/ "
        f"(HTTP parser: {http_protocol.parser_name})",
        err=True,
    )
    freeze_startup_objects()
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            ssl_certfile=cert or None,
            ssl_keyfile=key or None,
            log_level=level.lower(),
            access_log=False,
            server_header=False,
            timeout_keep_alive=30,
            h11_max_incomplete_event_size=MAX_HEADER_BYTES,
            http=http_protocol,
            ws="none",
        )
    finally:
        if retention_task is not None:
            retention_task.stop()
        background.stop()
        services.close()


def tune_malloc(mmap_threshold: int = 1 << 20, arenas: int = 2) -> bool:
    """Keep glibc from holding on to memory the server has freed (False if not glibc).

    glibc raises its mmap threshold to the size of each large block freed (up to 32 MiB),
    so after the first password check every later argon2 block (9 MiB by default, 19 MiB
    when this was measured) comes from a thread's heap arena, and each of the worker
    threads that ever checked a password keeps it resident: eight wrong passwords left the
    server 155 MiB larger. A
    fixed threshold sends such blocks to mmap, which returns them on free; two arenas
    (instead of eight per core) bound fragmentation across the worker threads, which
    take turns on the GIL anyway.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_arena_max, m_mmap_threshold = -8, -3
    return bool(mallopt(m_mmap_threshold, mmap_threshold)) and bool(mallopt(m_arena_max, arenas))


def freeze_startup_objects() -> None:
    """Take what is alive before serving (modules, the app, its caches) out of the cyclic
    collector's sight: none of it is ever freed, yet each full collection walked all of
    it, about 12 ms for the ~50,000 objects of a started server, paid by whichever
    request happened to trigger it."""
    gc.collect()
    gc.freeze()


class Background:
    """What `serve` runs beside the HTTP server: the replicator and scheduled drills."""

    def __init__(self) -> None:
        self.replicator: Any = None
        self.drills: Any = None

    def stop(self) -> None:
        if self.drills is not None:
            self.drills.stop()
        if self.replicator is not None:
            self.replicator.stop()


def start_background(cfg: Config, services: Services, rsettings: Any) -> Background:
    """Start replication (if any target is set) and drills (if an identity is set)."""
    bg = Background()
    if not rsettings.targets:
        log.warning("replication is not set up: every byte lives only in %s", cfg.data_dir)
        return bg
    from homeport.replication import start as start_replication
    from homeport.replication.crypto import load_identities
    from homeport.replication.drill import DrillScheduler
    from homeport.replication.status import replicated_floor
    from homeport.replication.targets import open_target
    from homeport.wiring import DB_NAME, open_store

    if not rsettings.recipients and not all(t.recipients for t in rsettings.targets):
        raise ConfigError("replication needs at least one --recipient (an age public key)")
    data_dir = cfg.data_dir
    services.retention.replica_floor = lambda: replicated_floor(data_dir)
    bg.replicator = start_replication(services, rsettings)
    if rsettings.drill_identity:
        identity = load_identities(Path(rsettings.drill_identity))
        bg.drills = DrillScheduler(
            data_dir,
            data_dir / DB_NAME,
            lambda: [open_target(t) for t in rsettings.targets],
            identity,
            open_store,
            rsettings.drill_interval,
        ).start()
    return bg


def metrics_exposition(cfg: Config, services: Services, bg: Background) -> Any:
    """/metrics: the services' counters plus replication lag and drill results (built at
    the first scrape, see `exposition`)."""
    from homeport.server.metrics import exposition

    def build() -> Any:
        from homeport.replication.metrics import ReplicationCollector
        from homeport.server.metrics import registry_for
        from homeport.wiring import DB_NAME

        if bg.replicator is not None:
            collector = ReplicationCollector(bg.replicator.status, cfg.data_dir)
        else:
            collector = ReplicationCollector.for_data_dir(cfg.data_dir, cfg.data_dir / DB_NAME)
        return registry_for(services.metrics, [collector])

    return exposition(build)
