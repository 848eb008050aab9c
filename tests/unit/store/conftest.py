from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from homeport.store.core import Store
from tests.unit.store.support import open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A Store on SQLite + a local folder in `tmp_path`, inline bodies up to 1 KiB."""
    s = open_store(tmp_path)
    yield s
    s.close()
