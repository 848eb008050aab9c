"""Fixtures for the replication tests: an age identity, a data directory with services,
replica targets (a local folder and a real S3 server, SeaweedFS, started here)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from homeport.replication.crypto import generate_identity
from homeport.replication.settings import ReplicationSettings, TargetSettings
from homeport.replication.targets import ReplicaTarget, open_target
from homeport.services import Services
from homeport.store.core import Store
from homeport.wiring import open_store
from tests.conftest import require_tool
from tests.replication.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedFS

SLOW = bool(os.environ.get("HOMEPORT_SLOW"))
_buckets = itertools.count(1)


@dataclass
class Identity:
    key_file: Path
    recipient: str


@pytest.fixture
def identity(tmp_path: Path) -> Identity:
    secret, recipient = generate_identity()
    key = tmp_path / "key.txt"
    key.write_text(f"# test identity\n{secret}\n")
    key.chmod(0o600)
    return Identity(key, recipient)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    weed = require_tool("weed")
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"), weed)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Replica:
    """A replica target for one test: its settings and a way to open it."""

    kind: str
    settings: TargetSettings
    seaweed: SeaweedFS | None = None
    bucket: str | None = None

    def open(self) -> ReplicaTarget:
        return open_target(self.settings)

    def raw_objects(self) -> dict[str, bytes]:
        """Every stored object's raw bytes, by key (what someone with the disk sees)."""
        target = self.open()
        try:
            return {info.key: target.get_bytes(info.key) for info in target.list_objects("")}
        finally:
            target.close()

    def replication(self, recipient: str, **kwargs: object) -> ReplicationSettings:
        return ReplicationSettings(targets=(self.settings,), recipients=(recipient,), **kwargs)  # type: ignore[arg-type]


def s3_settings(
    seaweed: SeaweedFS, bucket: str, prefix: str | None = None, **kw: object
) -> TargetSettings:
    prefix = prefix or f"homeport-{next(_buckets)}"
    return TargetSettings(
        name=f"s3-{bucket}-{prefix}",
        url=f"s3://{bucket}/{prefix}?endpoint={seaweed.endpoint}",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        **kw,  # type: ignore[arg-type]
    )


def new_bucket(seaweed: SeaweedFS, lock: bool = False) -> str:
    """The session's bucket (with or without Object Lock); tests keep apart by prefix.

    (Every SeaweedFS bucket takes volumes of its own: one bucket per test would exhaust
    them.)"""
    name = "hp-locked" if lock else "hp-shared"
    if name not in seaweed.buckets:
        seaweed.bucket(name, lock=lock)
        seaweed.buckets.add(name)
    return name


@pytest.fixture(params=["file", "s3"])
def replica(request: pytest.FixtureRequest, tmp_path: Path) -> Replica:
    if request.param == "file":
        root = tmp_path / "replica"
        root.mkdir()
        return Replica("file", TargetSettings(name="nas", url=f"file://{root}"))
    seaweed = request.getfixturevalue("seaweed")
    bucket = new_bucket(seaweed)
    return Replica("s3", s3_settings(seaweed, bucket), seaweed, bucket)


@pytest.fixture
def file_replica(tmp_path: Path) -> Replica:
    root = tmp_path / "replica"
    root.mkdir()
    return Replica("file", TargetSettings(name="nas", url=f"file://{root}"))


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    store = open_store(tmp_path / "data")
    svc = Services.build(store)
    try:
        yield svc
    finally:
        svc.close()


OpenStore = Callable[[Path], Store]
