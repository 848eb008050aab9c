"""`homeport serve` loads what serving needs and no more: each module below is resident
memory (together about 6 MB) that a server nobody scrapes and without replicas never uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: Loaded only when their feature is used: replication (age, zstd), the CLI's tables,
#: the other commands, and the metrics library (until the first scrape of /metrics).
NOT_AT_START = (
    "pyrage",
    "zstandard",
    "rich",
    "prometheus_client",
    "homeport.replication.crypto",
    "homeport.replication.shipper",
    "homeport.cli.replica",
    "homeport.cli.status",
    "homeport.cli.history",
)

SCRIPT = """
import json, sys
from pathlib import Path
import click
from homeport.cli import cli
from homeport import config
command = cli.get_command(click.Context(cli), "serve")  # as `homeport serve` resolves it
from homeport.cli import serve
from homeport.replication import settings as replica_settings
from homeport.server.app import create_app
from homeport.wiring import build_services
cfg = config.load(None, {("server", "data"): sys.argv[1]}, environ={})
services = build_services(cfg)
services.configure(cfg)
bg = serve.start_background(cfg, services, replica_settings.load(None, (), ()))
app = create_app(services, cfg, serve.metrics_exposition(cfg, services, bg))
at_start = sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)
services.metrics.inc("probe_total", 3)
body, content_type = app.metrics()
print(json.dumps({
    "at_start": at_start,
    "command": command.name,
    "metrics": body.decode(),
    "content_type": content_type,
    "after_scrape": "prometheus_client" in sys.modules,
}))
services.close()
"""


def test_serve_starts_without_the_tools_it_does_not_use(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "data"), json.dumps(NOT_AT_START)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["command"] == "serve"
    assert seen["at_start"] == []
    # The first scrape builds the registry: the domain counters and the replication gauges.
    assert seen["after_scrape"] is True
    assert seen["content_type"].startswith("text/plain")
    assert "homeport_probe_total 3.0" in seen["metrics"]
    assert "# TYPE homeport_replica_lag_seconds gauge" in seen["metrics"]


def test_every_command_resolves() -> None:
    import click

    from homeport.cli import COMMANDS, cli

    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command), name
    assert cli.get_command(ctx, "no-such-command") is None


def test_the_replication_package_exports_every_name_lazily() -> None:
    import importlib

    import homeport.replication as replication

    assert sorted(replication.__all__) == sorted(replication._HOME)
    for name, home in replication._HOME.items():
        module = importlib.import_module(f"homeport.replication.{home}")
        assert getattr(replication, name) is getattr(module, name), name
