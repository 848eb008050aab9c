"""Sync tokens across a restore: a token from before the restore is trusted only at or
below the restore floor, where the restored log is the same as the old one."""

from __future__ import annotations

import pytest

from homeport.errors import InvalidSyncToken
from homeport.services.items import SyncEpoch, make_sync_token, parse_sync_token
from homeport.store.model import Collection, CollectionKind

COLL = Collection(7, "alice", "calendar", CollectionKind.CALENDAR, created_seq=3, sync_seq=50)


def token(seq: int, epoch: str | None = None) -> str:
    return make_sync_token(
        Collection(7, "alice", "calendar", CollectionKind.CALENDAR, 3, seq), SyncEpoch(epoch)
    )


def test_never_restored() -> None:
    assert parse_sync_token(COLL, token(40), 60) == 40
    assert token(40) == "urn:homeport:sync:7:40"
    with pytest.raises(InvalidSyncToken):
        parse_sync_token(COLL, token(61), 60)  # from the future
    with pytest.raises(InvalidSyncToken):
        parse_sync_token(COLL, token(2), 60)  # older than the collection


def test_after_a_restore_old_tokens_are_trusted_only_up_to_the_floor() -> None:
    restored = SyncEpoch("ab12", floor=45)
    assert parse_sync_token(COLL, token(40), 60, restored) == 40
    assert parse_sync_token(COLL, token(45), 60, restored) == 45
    # Issued before the restore but after the restored moment: the new log reuses 46...
    with pytest.raises(InvalidSyncToken, match="restored"):
        parse_sync_token(COLL, token(50), 60, restored)
    # Tokens of the new epoch are fine anywhere.
    assert parse_sync_token(COLL, token(50, "ab12"), 60, restored) == 50
    assert token(50, "ab12").endswith(":50:ab12")


@pytest.mark.parametrize(
    "bad",
    ["", "urn:homeport:sync:", "urn:homeport:sync:7", "urn:homeport:sync:x:1",
     "urn:homeport:sync:8:10", "urn:homeport:sync:7:10:a:b", "http://other/7/10"],
)  # fmt: skip
def test_malformed(bad: str) -> None:
    with pytest.raises(InvalidSyncToken):
        parse_sync_token(COLL, bad, 60)
