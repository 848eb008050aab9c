"""Frozen replica archives (tests/fixtures/replicas): what an earlier Homeport wrote still
restores exactly, and every deliberately broken one fails plainly, leaving nothing behind."""

from __future__ import annotations

import json
import re
import tarfile
from datetime import datetime
from pathlib import Path

import pytest

from homeport.replication.crypto import load_identities
from homeport.replication.errors import ReplicaCorrupt, ReplicaIncomplete, WrongKey
from homeport.replication.restore import plan_restore, restore
from homeport.replication.targets import FileTarget
from homeport.store.model import datetime_to_us
from homeport.wiring import open_store
from tests.replication.support import state_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "replicas"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


def _unpack(name: str, tmp_path: Path) -> FileTarget:
    root = tmp_path / name
    with tarfile.open(FIXTURES / f"{name}.tar.gz") as tar:
        tar.extractall(root, filter="data")
    return FileTarget(root)


def _json(value: object) -> object:
    return json.loads(json.dumps(value))


def _restore(target: FileTarget, dest: Path, **kw: object) -> None:
    opener = load_identities(FIXTURES / "identity.txt")
    restore(target, opener, dest, open_store, **kw)  # type: ignore[arg-type]


def _nothing_left(tmp_path: Path, dest: Path) -> None:
    assert not dest.exists()
    assert not list(tmp_path.glob(".*restoring*"))


def test_the_good_archive_restores_exactly(tmp_path: Path) -> None:
    target = _unpack("good", tmp_path)
    dest = tmp_path / "restored"
    _restore(target, dest)
    assert _json(state_of(dest / "homeport.sqlite3", full=False)) == EXPECTED["newest"]
    for name, moment in EXPECTED["moments"].items():
        at = tmp_path / f"at-{name}"
        _restore(target, at, at_us=moment["at_us"])
        assert _json(state_of(at / "homeport.sqlite3", full=False)) == moment["state"], name


def test_wrong_key(tmp_path: Path) -> None:
    target = _unpack("good", tmp_path)
    with pytest.raises(WrongKey, match="encrypted to other recipients"):
        plan_restore(target, load_identities(FIXTURES / "other-identity.txt"))


@pytest.mark.parametrize(
    ("archive", "error", "message"),
    [
        ("missing-blob", ReplicaIncomplete, "blob object"),
        ("corrupt-segment", ReplicaCorrupt, "damaged or truncated"),
        ("missing-segment", ReplicaIncomplete, "gap"),
        ("truncated-snapshot", ReplicaCorrupt, "damaged or truncated"),
    ],
)
def test_broken_archives_fail_plainly(
    archive: str, error: type[Exception], message: str, tmp_path: Path
) -> None:
    target = _unpack(archive, tmp_path)
    dest = tmp_path / "restored"
    with pytest.raises(error, match=message):
        _restore(target, dest)
    _nothing_left(tmp_path, dest)


def test_a_gap_still_restores_up_to_its_start(tmp_path: Path) -> None:
    target = _unpack("missing-segment", tmp_path)
    with pytest.raises(ReplicaIncomplete) as info:
        plan_restore(target, load_identities(FIXTURES / "identity.txt"))
    assert "pass --at" in info.value.message
    # The moment the message offers is the last one before the gap: that restores.
    offered = re.search(r"can restore is (\S+) ", info.value.message)
    assert offered is not None
    at_us = datetime_to_us(datetime.fromisoformat(offered.group(1)))
    dest = tmp_path / "restored"
    _restore(target, dest, at_us=at_us)
    moment = EXPECTED["moments"]["after_snapshot_2"]  # nothing was written in between
    assert _json(state_of(dest / "homeport.sqlite3", full=False)) == moment["state"]


def test_damage_before_the_newest_snapshot(tmp_path: Path) -> None:
    """The newest restore does not need the damaged old segment; an older moment does."""
    target = _unpack("corrupt-old-segment", tmp_path)
    _restore(target, tmp_path / "newest")
    assert (
        _json(state_of(tmp_path / "newest" / "homeport.sqlite3", full=False)) == EXPECTED["newest"]
    )
    dest = tmp_path / "old"
    with pytest.raises(ReplicaCorrupt, match="segments/"):
        _restore(target, dest, at_us=EXPECTED["moments"]["after_segment_1"]["at_us"])
    _nothing_left(tmp_path, dest)
