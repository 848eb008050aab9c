"""Fixtures of the shared backend suites: every test here runs once per backend.

The parameter lists are `METADATA_BACKENDS` and `BLOB_BACKENDS` in `factories.py`;
adding a PostgreSQL or S3 factory there is all it takes to run the suites on it.
CI sets `HOMEPORT_REQUIRE_BACKENDS` (e.g. "sqlite,postgres,localfs,s3") so that a
backend missing from those lists fails the run instead of silently not running.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from homeport.store.interfaces import BlobStore, MetadataStore
from tests.backends.factories import (
    BLOB_BACKENDS,
    METADATA_BACKENDS,
    BlobBackend,
    MetadataBackend,
)

REQUIRE_ENV = "HOMEPORT_REQUIRE_BACKENDS"


@pytest.fixture(scope="session", autouse=True)
def required_backends_are_present() -> None:
    """Fail (never skip) when a backend that CI requires is not in the parameter lists."""
    wanted = {n.strip() for n in os.environ.get(REQUIRE_ENV, "").split(",") if n.strip()}
    present = {cls.name for cls in METADATA_BACKENDS} | {cls.name for cls in BLOB_BACKENDS}
    if wanted - present:
        pytest.fail(
            f"{REQUIRE_ENV} requires backends {sorted(wanted - present)} that the shared "
            f"suites do not run (they run: {sorted(present)})",
            pytrace=False,
        )


@pytest.fixture(params=METADATA_BACKENDS, ids=lambda cls: cls.name)
def metadata_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataBackend]:
    """Fresh, empty metadata storage of one backend (reopen with `.open()`)."""
    backend: MetadataBackend = request.param.create(tmp_path)
    yield backend
    backend.destroy()


@pytest.fixture
def metadata_store(metadata_backend: MetadataBackend) -> Iterator[MetadataStore]:
    """An open handle on `metadata_backend`, closed after the test."""
    store = metadata_backend.open()
    yield store
    store.close()


@pytest.fixture(params=BLOB_BACKENDS, ids=lambda cls: cls.name)
def blob_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobBackend]:
    """Fresh, empty blob storage of one backend (reopen with `.open()`)."""
    backend: BlobBackend = request.param.create(tmp_path)
    yield backend
    backend.destroy()


@pytest.fixture
def blob_store(blob_backend: BlobBackend) -> BlobStore:
    """An open handle on `blob_backend`."""
    return blob_backend.open()
