"""Settings: defaults, then the TOML file, then HOMEPORT_* environment variables, then flags.

Every setting is declared once in `SETTINGS`; docs/config.md is generated from it
(`homeport config reference`) and a test keeps the two equal.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homeport.errors import ConfigError


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    type: type
    default: Any
    help: str

    @property
    def env(self) -> str:
        return f"HOMEPORT_{self.section.upper()}_{self.key.upper()}"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "server",
        "data",
        str,
        "./homeport-data",
        "Data directory: the SQLite database and the blob folder live here.",
    ),
    Setting(
        "server",
        "listen",
        str,
        "127.0.0.1:5232",
        "Address and port to listen on, HOST:PORT (use [::1]:PORT for IPv6).",
    ),
    Setting(
        "server",
        "cert",
        str,
        "",
        "TLS certificate (PEM). With `key`, Homeport serves HTTPS itself.",
    ),
    Setting("server", "key", str, "", "TLS private key (PEM)."),
    Setting(
        "server",
        "base_url",
        str,
        "",
        "Public URL prefix when behind a reverse proxy that changes the path.",
    ),
    Setting(
        "server",
        "idle_timeout",
        int,
        30,
        "Seconds a client may stay silent while sending a request (its headers, or "
        "between two pieces of its body) before the connection is closed (408).",
    ),
    Setting(
        "server",
        "http_parser",
        str,
        "auto",
        "HTTP/1.1 parser: httptools (C, faster), h11 (pure Python), or auto (httptools "
        "when it is installed).",
    ),
    Setting(
        "auth",
        "argon2_memory_kib",
        int,
        9216,
        "Memory per password check (KiB, argon2id). Stored hashes are upgraded to new "
        "settings at the user's next successful login.",
    ),
    Setting("auth", "argon2_time_cost", int, 4, "Passes per password check (argon2id)."),
    Setting("auth", "argon2_parallelism", int, 1, "Lanes per password check (argon2id)."),
    Setting(
        "storage",
        "inline_max",
        int,
        65536,
        "Bodies up to this many bytes are kept inside the metadata database; "
        "larger ones (photos, files) go to the blob folder.",
    ),
    Setting(
        "limits",
        "max_object_size",
        int,
        10 * 1024 * 1024,
        "Largest accepted vCard or iCalendar object, in bytes (max-resource-size).",
    ),
    Setting(
        "limits",
        "max_file_size",
        int,
        16 * 1024 * 1024 * 1024,
        "Largest accepted file in a plain WebDAV collection, in bytes.",
    ),
    Setting(
        "limits",
        "max_xml_size",
        int,
        4 * 1024 * 1024,
        "Largest accepted XML request body (PROPFIND, REPORT, ...), in bytes.",
    ),
    Setting(
        "guards",
        "mass_delete_percent",
        int,
        50,
        "Mass-deletion alert: one client (user + User-Agent) deleting more than this share "
        "(%) of a collection within the window raises an alert with the command that "
        "undoes it. Deletes are never refused. 0 turns this rule off.",
    ),
    Setting(
        "guards",
        "mass_delete_min_items",
        int,
        10,
        "The share rule applies to collections that held at least this many items.",
    ),
    Setting(
        "guards",
        "mass_delete_count",
        int,
        100,
        "Mass-deletion alert: one client deleting more than this many items of a "
        "collection within the window raises an alert, whatever its size. 0 turns this "
        "rule off.",
    ),
    Setting(
        "guards",
        "mass_delete_window_seconds",
        int,
        600,
        "The mass-deletion window, in seconds. An alert grows while the same client goes "
        "on deleting with pauses shorter than this.",
    ),
    Setting(
        "retention",
        "keep_all_days",
        int,
        90,
        "Every revision is kept until it has been replaced (or deleted) for this many days; "
        "current items are always kept. 0 keeps every revision forever.",
    ),
    Setting(
        "retention",
        "daily_days",
        int,
        365,
        "Beyond keep_all_days and up to this age, the state of each item at each midnight "
        "(UTC) is kept; other revisions lose their body.",
    ),
    Setting(
        "retention",
        "weekly_days",
        int,
        730,
        "Beyond daily_days and up to this age, the state at each Monday midnight is kept.",
    ),
    Setting(
        "retention",
        "monthly_days",
        int,
        0,
        "Beyond weekly_days, the state on the first of each month is kept, up to this age "
        "(0 = forever).",
    ),
    Setting(
        "retention",
        "trash_days",
        int,
        90,
        "A deleted item's last body is kept at least this many days after the deletion "
        "(and never less than keep_all_days), so it can be undeleted.",
    ),
    Setting(
        "retention",
        "prune_interval_hours",
        int,
        24,
        "`homeport serve` applies the retention policy this often (the first run ten "
        "minutes after start). 0 disables the background task; `homeport prune` still works.",
    ),
    Setting("log", "level", str, "info", "Log level: debug, info, warning or error."),
)


EXTERNAL_SECTIONS = frozenset({"replication", "replica"})
"""Tables with their own reader: `[replication]` and `[replica.NAME]` are parsed and
validated by `homeport.replication.settings` (see docs/replica-format.md)."""


def _parse_value(setting: Setting, raw: Any, origin: str) -> Any:
    if setting.type is int:
        if isinstance(raw, bool):
            raise ConfigError(f"{origin}: {setting.key} must be a whole number")
        try:
            return int(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{origin}: {setting.key} must be a whole number") from exc
    if not isinstance(raw, str):
        raise ConfigError(f"{origin}: {setting.key} must be a string")
    return raw


@dataclass(frozen=True)
class Config:
    values: Mapping[tuple[str, str], Any]
    source: Path | None = None

    def get(self, section: str, key: str) -> Any:
        return self.values[(section, key)]

    @property
    def data_dir(self) -> Path:
        return Path(self.get("server", "data")).expanduser()

    @property
    def listen(self) -> tuple[str, int]:
        return parse_listen(self.get("server", "listen"))


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"listen address must be HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def load(
    path: Path | None = None,
    overrides: Mapping[tuple[str, str], Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build the effective configuration. Unknown keys are an error, not ignored."""
    environ = os.environ if environ is None else environ
    values: dict[tuple[str, str], Any] = {(s.section, s.key): s.default for s in SETTINGS}
    known = {(s.section, s.key): s for s in SETTINGS}
    if path is None and environ.get("HOMEPORT_CONFIG"):
        path = Path(environ["HOMEPORT_CONFIG"])
    if path is not None:
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        for section, table in doc.items():
            if section in EXTERNAL_SECTIONS:
                continue  # read and checked by their own module (see EXTERNAL_SECTIONS)
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: [{section}] must be a table")
            for key, raw in table.items():
                setting = known.get((section, key))
                if setting is None:
                    raise ConfigError(f"{path}: unknown setting {section}.{key}")
                values[(section, key)] = _parse_value(setting, raw, str(path))
    for setting in SETTINGS:
        if setting.env in environ:
            values[(setting.section, setting.key)] = _parse_value(
                setting, environ[setting.env], setting.env
            )
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _parse_value(known[key], value, "command line")
    return Config(values, path)


def reference_markdown() -> str:
    """The configuration reference, generated so that it cannot drift from the code."""
    lines = [
        "# Configuration reference",
        "",
        "Homeport reads, in order (later wins): built-in defaults, the TOML file given by",
        "`--config FILE` or `HOMEPORT_CONFIG`, environment variables, command-line flags.",
        "This page is generated by `homeport config reference`; a test keeps it current.",
        "",
        "| setting | environment variable | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default != "" else "(empty)"
        lines.append(f"| `{s.section}.{s.key}` | `{s.env}` | {default} | {s.help} |")
    lines += [
        "",
        "Replication targets are configured in `[replication]` and `[replica.NAME]` tables",
        "(or with `homeport serve --replica URL --recipient AGE_PUBKEY`); their keys are",
        "described in [replica-format.md](replica-format.md#configuration).",
        "",
        "Example `homeport.toml`:",
        "",
        "```toml",
        "[server]",
        'data = "/var/lib/homeport"',
        'listen = "127.0.0.1:5232"',
        "",
        "[limits]",
        "max_object_size = 10485760",
        "",
        "[retention]",
        "keep_all_days = 180",
        "```",
        "",
    ]
    return "\n".join(lines)
