"""Composition: the only place that knows which backends are in use.

It reads the configuration, opens the metadata and blob backends under the data
directory, and assembles the services (and, for `serve`, the ASGI app).
"""

from __future__ import annotations

from pathlib import Path

from homeport.backends.localfs import LocalBlobStore
from homeport.backends.sqlite import SqliteMetadataStore
from homeport.config import Config
from homeport.services import Limits, Services
from homeport.store.core import Store

DB_NAME = "homeport.sqlite3"


def open_store(data_dir: Path, inline_max: int = 65536) -> Store:
    """Open (creating if needed) the embedded default: SQLite + a local blob folder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    meta = SqliteMetadataStore(data_dir / DB_NAME)
    blobs = LocalBlobStore(data_dir)
    return Store(meta, blobs, inline_max=inline_max)


def build_services(config: Config) -> Services:
    store = open_store(config.data_dir, config.get("storage", "inline_max"))
    limits = Limits(
        max_object_size=config.get("limits", "max_object_size"),
        max_file_size=config.get("limits", "max_file_size"),
    )
    return Services.build(store, limits, config)
