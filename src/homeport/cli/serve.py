"""`homeport serve`: run the DAV server (and, later, the web UI) on one port."""

from __future__ import annotations

import logging

import click

from homeport.cli.common import data_options
from homeport.config import Config
from homeport.errors import ConfigError


@click.command()
@click.option("--listen", default=None, help="HOST:PORT to listen on (default 127.0.0.1:5232).")
@click.option("--cert", default=None, help="TLS certificate file (PEM).")
@click.option("--key", default=None, help="TLS private key file (PEM).")
@data_options
def serve(cfg: Config) -> None:
    """Serve CalDAV, CardDAV and WebDAV from the data directory."""
    import uvicorn

    from homeport.server.app import create_app
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
    services = build_services(cfg)
    try:
        services.configure(cfg)  # [guards] and [retention]
    except ConfigError:
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
    app = create_app(services, cfg)
    scheme = "https" if cert else "http"
    click.echo(f"homeport serving {cfg.data_dir} at {scheme}://{host}:{port}/", err=True)
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
            h11_max_incomplete_event_size=64 * 1024,
        )
    finally:
        if retention_task is not None:
            retention_task.stop()
        services.close()
