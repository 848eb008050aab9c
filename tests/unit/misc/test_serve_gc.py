"""`homeport serve` takes the objects alive at startup out of the cyclic collector's sight."""

from __future__ import annotations

import gc

from homeport.cli.serve import freeze_startup_objects


def test_startup_objects_are_frozen_and_later_collections_skip_them() -> None:
    before = gc.get_freeze_count()
    try:
        freeze_startup_objects()
        frozen = gc.get_freeze_count()
        assert frozen > before
        # A full collection now walks only what was made since, not the frozen objects.
        assert len(gc.get_objects(generation=2)) < frozen
    finally:
        gc.unfreeze()
