"""The backends the shared suites run against: one factory class per backend.

To run the suites on a new backend, write one factory here (how to create fresh,
empty storage for one test and how to open a handle on it) and add it to
`METADATA_BACKENDS` or `BLOB_BACKENDS`. A backend that needs a server (PostgreSQL,
an S3 endpoint) takes its address from the environment in `create`; it must not be
skipped silently in CI (CONVENTIONS.md, habit 4).

A factory is identified by `name` and rebuilt from its `location` string alone, so a
child process can reopen the same storage (the crash tests use that).
"""

from __future__ import annotations

import os
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import ClassVar, Self

from homeport.backends.localfs import LocalBlobStore
from homeport.backends.sqlite import SqliteMetadataStore
from homeport.store.interfaces import BlobStore, MetadataStore


class MetadataBackend(ABC):
    """Fresh storage for one test, and a way to open (and reopen) handles on it."""

    name: ClassVar[str]

    def __init__(self, location: str) -> None:
        self.location = location

    @classmethod
    @abstractmethod
    def create(cls, workdir: Path) -> Self:
        """New, empty storage for one test; `workdir` is the test's private folder."""

    @abstractmethod
    def open(self) -> MetadataStore:
        """A new handle on this storage; calling it again after `close()` is a reopen."""

    @abstractmethod
    def exclusive_lock(self) -> AbstractContextManager[None]:
        """Hold, from outside any handle, a lock under which reads would have to wait."""

    def destroy(self) -> None:  # noqa: B027 - optional hook
        """Drop the storage after the test (a folder under `workdir` needs nothing)."""


class BlobBackend(ABC):
    """Fresh blob storage for one test, plus the inspection the contract tests need."""

    name: ClassVar[str]

    def __init__(self, location: str) -> None:
        self.location = location

    @classmethod
    @abstractmethod
    def create(cls, workdir: Path) -> Self: ...

    @abstractmethod
    def open(self) -> BlobStore:
        """A new handle on this storage (a reopen, as after a restart)."""

    @abstractmethod
    def staging_leftovers(self) -> list[str]:
        """Names of staged-but-unpublished uploads still held by the backend."""

    @abstractmethod
    def make_staging_stale(self) -> None:
        """Age every staged upload past the backend's crash-leftover threshold."""

    @abstractmethod
    def truncate(self, content_hash: str) -> None:
        """Damage a published blob behind the interface's back: drop its last byte."""

    @abstractmethod
    def make_old(self, content_hash: str, seconds: float) -> None:
        """Make a published blob look published `seconds` ago (for `BlobStore.remove`)."""

    def destroy(self) -> None:  # noqa: B027 - optional hook
        """Drop the storage after the test (a folder under `workdir` needs nothing)."""


class SqliteBackend(MetadataBackend):
    name = "sqlite"

    @classmethod
    def create(cls, workdir: Path) -> Self:
        return cls(str(workdir / "meta.sqlite3"))

    def open(self) -> SqliteMetadataStore:
        return SqliteMetadataStore(Path(self.location))

    @contextmanager
    def exclusive_lock(self) -> Iterator[None]:
        # In WAL mode only a connection in exclusive locking mode keeps readers out.
        conn = sqlite3.connect(self.location, isolation_level=None, timeout=5)
        try:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            conn.execute("BEGIN EXCLUSIVE")
            yield
        finally:
            conn.close()


class LocalFsBackend(BlobBackend):
    name = "localfs"

    @classmethod
    def create(cls, workdir: Path) -> Self:
        return cls(str(workdir / "blobroot"))

    def open(self) -> LocalBlobStore:
        return LocalBlobStore(Path(self.location))

    def staging_leftovers(self) -> list[str]:
        staging = Path(self.location) / "staging"
        return sorted(p.name for p in staging.iterdir()) if staging.exists() else []

    def make_staging_stale(self) -> None:
        for path in (Path(self.location) / "staging").iterdir():
            os.utime(path, (0, 0))

    def truncate(self, content_hash: str) -> None:
        # Computed by hand: constructing a LocalBlobStore would clear the staging area.
        h = content_hash
        path = Path(self.location) / "blobs" / h[:2] / h[2:4] / h
        os.truncate(path, path.stat().st_size - 1)

    def make_old(self, content_hash: str, seconds: float) -> None:
        h = content_hash
        path = Path(self.location) / "blobs" / h[:2] / h[2:4] / h
        then = time.time() - seconds
        os.utime(path, (then, then))


# Add `PostgresBackend` / `S3Backend` here; every test in tests/backends/ then runs on them.
METADATA_BACKENDS: list[type[MetadataBackend]] = [SqliteBackend]
BLOB_BACKENDS: list[type[BlobBackend]] = [LocalFsBackend]


def metadata_backend(name: str, location: str) -> MetadataBackend:
    """Rebuild a factory from its name and location (used in child processes)."""
    for cls in METADATA_BACKENDS:
        if cls.name == name:
            return cls(location)
    raise LookupError(f"no metadata backend named {name!r}")


def blob_backend(name: str, location: str) -> BlobBackend:
    for cls in BLOB_BACKENDS:
        if cls.name == name:
            return cls(location)
    raise LookupError(f"no blob backend named {name!r}")
