"""Replication settings: `[replication]` and `[replica.NAME]` tables, environment, flags.

Until `homeport.config` declares these tables itself, this module reads them straight
from the TOML file (see the lead's note in the replication report). Secrets (S3 keys)
come from the environment or a credentials file, are kept out of `repr`, and are never
logged.

```toml
[replication]
recipients = ["age1…"]          # default recipients for every target
interval = 0.2                  # least seconds between two segments to one target
snapshot_interval = 86400       # seconds between metadata snapshots
drill_interval = 86400          # seconds between scheduled drills (serve)
drill_identity = "/etc/homeport/drill-key.txt"  # scheduled drills need an identity
prune_interval = 86400          # replica retention (serve; needs drill_identity); 0 = off

[replica.offsite]
url = "s3://bucket/homeport"
endpoint = "https://s3.example.net"
region = "eu-central-1"
credentials_file = "/etc/homeport/s3-credentials.toml"   # access_key_id, secret_access_key
lock = "auto"                   # auto | off | governance | compliance
lock_days = 30

[replica.nas]
url = "file:///mnt/nas/homeport"
```
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from homeport.errors import ConfigError

LOCK_MODES = ("auto", "off", "governance", "compliance")
VERIFY_MODES = ("checksum", "read")


@dataclass(frozen=True)
class TargetSettings:
    """One replica target. `url` is `file:///path`, a plain path, or `s3://bucket/prefix`."""

    name: str
    url: str
    recipients: tuple[str, ...] = ()
    endpoint: str | None = None
    region: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    lock: str = "auto"
    lock_days: int = 30
    verify: str = "checksum"

    @property
    def scheme(self) -> str:
        return "s3" if self.url.startswith("s3://") else "file"

    @property
    def display_url(self) -> str:
        """The URL without its query (no endpoint details): safe for logs and status."""
        return self.url.split("?", 1)[0]


@dataclass(frozen=True)
class ReplicationSettings:
    targets: tuple[TargetSettings, ...] = ()
    recipients: tuple[str, ...] = ()
    interval: float = 0.2
    poll: float = 0.05
    snapshot_interval: float = 86400.0
    snapshot_segments: int = 20_000
    max_backoff: float = 30.0
    drill_interval: float = 86400.0
    drill_identity: str | None = None  # identity file for scheduled drills (serve)
    prune_interval: float = 86400.0  # seconds between replica retention runs (serve); 0 off

    def recipients_for(self, target: TargetSettings) -> tuple[str, ...]:
        return target.recipients or self.recipients


_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOP_KEYS = {
    "recipients",
    "interval",
    "poll",
    "snapshot_interval",
    "snapshot_segments",
    "max_backoff",
    "drill_interval",
    "drill_identity",
    "prune_interval",
}
_TARGET_KEYS = {
    "url",
    "recipients",
    "endpoint",
    "region",
    "credentials_file",
    "lock",
    "lock_days",
    "verify",
}


def target_from_url(url: str, name: str | None = None, **kwargs: Any) -> TargetSettings:
    """Settings for a target given as a URL on the command line."""
    check_url(url)
    return TargetSettings(name=name or url.split("?", 1)[0], url=url, **kwargs)


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigError(f"an S3 replica URL needs a bucket: s3://BUCKET/PREFIX, not {url!r}")
        if "@" in parts.netloc:
            raise ConfigError(
                "credentials do not go into a replica URL: use the environment "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or credentials_file"
            )
        unknown = set(parse_qs(parts.query)) - {"endpoint", "region"}
        if unknown:
            raise ConfigError(f"unknown S3 URL option(s): {', '.join(sorted(unknown))}")
    elif parts.scheme == "file":
        if not parts.path.startswith("/"):
            raise ConfigError(
                f"a file replica URL needs an absolute path: file:///PATH, not {url!r}"
            )
    elif parts.scheme:
        raise ConfigError(f"replica URLs are file:///PATH or s3://BUCKET/PREFIX, not {url!r}")


def _float(table: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: {key} must be a number of seconds")
    return float(value)


def _optional_str(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: replication.{key} must be a string")
    return value


def _strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of strings")
    return tuple(value)


def _credentials_file(path: Path, where: str) -> tuple[str | None, str | None]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{where}: credentials_file {path} does not exist") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: credentials_file {path} is not valid TOML") from exc
    key, secret = doc.get("access_key_id"), doc.get("secret_access_key")
    if not isinstance(key, str) or not isinstance(secret, str):
        raise ConfigError(
            f"{where}: credentials_file {path} needs access_key_id and secret_access_key"
        )
    return key, secret


def _target(name: str, table: Mapping[str, Any], where: str) -> TargetSettings:
    if not _NAME_RE.match(name):
        raise ConfigError(f"{where}: replica names are letters, digits, - and _ ({name!r})")
    unknown = set(table) - _TARGET_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
    url = table.get("url")
    if not isinstance(url, str):
        raise ConfigError(f"{where}: url is required (file:///PATH or s3://BUCKET/PREFIX)")
    check_url(url)
    lock = str(table.get("lock", "auto")).lower()
    if lock not in LOCK_MODES:
        raise ConfigError(f"{where}: lock must be one of {', '.join(LOCK_MODES)}")
    verify = str(table.get("verify", "checksum")).lower()
    if verify not in VERIFY_MODES:
        raise ConfigError(f"{where}: verify must be checksum or read")
    lock_days = table.get("lock_days", 30)
    if isinstance(lock_days, bool) or not isinstance(lock_days, int) or lock_days < 1:
        raise ConfigError(f"{where}: lock_days must be a whole number of days, at least 1")
    key = secret = None
    if "credentials_file" in table:
        key, secret = _credentials_file(Path(str(table["credentials_file"])), where)
    for k in ("endpoint", "region"):
        if k in table and not isinstance(table[k], str):
            raise ConfigError(f"{where}: {k} must be a string")
    return TargetSettings(
        name=name,
        url=url,
        recipients=_strings(table.get("recipients", []), where, "recipients"),
        endpoint=table.get("endpoint"),
        region=table.get("region"),
        access_key_id=key,
        secret_access_key=secret,
        lock=lock,
        lock_days=lock_days,
        verify=verify,
    )


def from_document(doc: Mapping[str, Any], where: str = "config") -> ReplicationSettings:
    """Settings from a parsed TOML document (only its `replication` and `replica` tables)."""
    top = doc.get("replication", {})
    if not isinstance(top, dict):
        raise ConfigError(f"{where}: [replication] must be a table")
    unknown = set(top) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) replication.{', '.join(sorted(unknown))}")
    replicas = doc.get("replica", {})
    if not isinstance(replicas, dict):
        raise ConfigError(f"{where}: [replica.NAME] must be tables")
    targets = []
    for name, table in replicas.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [replica.{name}] must be a table")
        targets.append(_target(name, table, f"{where} [replica.{name}]"))
    snapshot_segments = top.get("snapshot_segments", 20_000)
    if isinstance(snapshot_segments, bool) or not isinstance(snapshot_segments, int):
        raise ConfigError(f"{where}: replication.snapshot_segments must be a whole number")
    return ReplicationSettings(
        targets=tuple(targets),
        recipients=_strings(top.get("recipients", []), where, "replication.recipients"),
        interval=_float(top, "interval", 0.2, where),
        poll=_float(top, "poll", 0.05, where),
        snapshot_interval=_float(top, "snapshot_interval", 86400.0, where),
        snapshot_segments=max(1, snapshot_segments),
        max_backoff=_float(top, "max_backoff", 30.0, where),
        drill_interval=_float(top, "drill_interval", 86400.0, where),
        drill_identity=_optional_str(top, "drill_identity", where),
        prune_interval=_float(top, "prune_interval", 86400.0, where),
    )


def load(
    config_path: Path | None,
    urls: Sequence[str] = (),
    recipients: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> ReplicationSettings:
    """The effective settings: the config file's tables, then HOMEPORT_REPLICA_* variables,
    then command-line `--replica URL` / `--recipient KEY` (which add to the file's)."""
    environ = os.environ if environ is None else environ
    if config_path is None and environ.get("HOMEPORT_CONFIG"):
        config_path = Path(environ["HOMEPORT_CONFIG"])
    settings = ReplicationSettings()
    if config_path is not None:
        try:
            doc = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {config_path} does not exist") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {config_path} is not valid TOML: {exc}") from exc
        settings = from_document(doc, str(config_path))
    env_urls = [u for u in environ.get("HOMEPORT_REPLICA_URLS", "").split() if u]
    env_recipients = [
        r for r in re.split(r"[\s,]+", environ.get("HOMEPORT_REPLICA_RECIPIENTS", "")) if r
    ]
    extra = [target_from_url(u) for u in [*env_urls, *urls]]
    names = {t.name for t in settings.targets}
    targets = [*settings.targets, *(t for t in extra if t.name not in names)]
    return replace(
        settings,
        targets=tuple(targets),
        recipients=(*settings.recipients, *env_recipients, *recipients),
    )


def find_target(settings: ReplicationSettings, name_or_url: str) -> TargetSettings:
    """The configured target called `name_or_url`, or a new one for that URL."""
    for target in settings.targets:
        if name_or_url in (target.name, target.url, target.display_url):
            return target
    if "://" in name_or_url or name_or_url.startswith("/"):
        return target_from_url(name_or_url)
    raise ConfigError(f"no replica target named {name_or_url!r} in the configuration")


def data_dir_from(config_path: Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """`server.data` as `homeport.config` would resolve it, for commands run without --data."""
    environ = os.environ if environ is None else environ
    if environ.get("HOMEPORT_SERVER_DATA"):
        return Path(environ["HOMEPORT_SERVER_DATA"]).expanduser()
    if config_path is None and environ.get("HOMEPORT_CONFIG"):
        config_path = Path(environ["HOMEPORT_CONFIG"])
    if config_path is not None and config_path.exists():
        doc = tomllib.loads(config_path.read_text(encoding="utf-8"))
        data = doc.get("server", {}).get("data")
        if isinstance(data, str):
            return Path(data).expanduser()
    return Path("./homeport-data")
