"""The `BlobStore` / `StagedBlob` contract, run against every blob backend."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Iterator

import pytest

from homeport.errors import NotFound
from homeport.store.interfaces import BlobStore
from tests.backends.factories import BlobBackend

MiB = 1024 * 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def publish(store: BlobStore, data: bytes) -> str:
    staged = store.stage([data])
    staged.publish()
    return staged.content_hash


def read_all(store: BlobStore, key: str) -> bytes:
    return b"".join(store.open(key))


@pytest.mark.parametrize(
    "chunks",
    [[], [b""], [b"hello"], [b"he", b"", b"llo"], [bytes(range(256)) * 300, b"tail"]],
    ids=["no-chunks", "one-empty-chunk", "one-chunk", "split", "large"],
)
def test_stage_reports_hash_and_size_of_all_chunks(
    blob_store: BlobStore, chunks: list[bytes]
) -> None:
    data = b"".join(chunks)
    staged = blob_store.stage(iter(chunks))
    assert staged.content_hash == sha(data)
    assert staged.size == len(data)
    staged.publish()
    assert read_all(blob_store, sha(data)) == data
    assert blob_store.size(sha(data)) == len(data)


def test_staged_blob_is_invisible_until_published(blob_store: BlobStore) -> None:
    staged = blob_store.stage([b"not yet"])
    key = staged.content_hash
    assert not blob_store.exists(key)
    assert key not in set(blob_store.keys())
    with pytest.raises(NotFound):
        read_all(blob_store, key)
    staged.publish()
    assert blob_store.exists(key)
    assert set(blob_store.keys()) == {key}
    assert read_all(blob_store, key) == b"not yet"


def test_open_honours_chunk_size_and_returns_exact_bytes(blob_store: BlobStore) -> None:
    data = bytes(range(256)) * 1000  # 256000 bytes
    key = publish(blob_store, data)
    chunks = list(blob_store.open(key, chunk_size=4096))
    assert b"".join(chunks) == data
    assert len(chunks) > 1
    assert blob_store.size(key) == len(data)


def test_keys_lists_every_published_blob_once(blob_store: BlobStore) -> None:
    bodies = [f"body {i}".encode() for i in range(20)]
    expected = {publish(blob_store, b) for b in bodies}
    publish(blob_store, bodies[0])  # again: still one key
    keys = list(blob_store.keys())
    assert sorted(keys) == sorted(expected)


def test_publishing_equal_content_twice_is_idempotent(blob_store: BlobStore) -> None:
    first = blob_store.stage([b"same ", b"bytes"])
    second = blob_store.stage([b"same bytes"])
    assert first.content_hash == second.content_hash
    first.publish()
    second.publish()
    first.publish()  # publishing one staged blob twice is harmless too
    assert list(blob_store.keys()) == [first.content_hash]
    assert read_all(blob_store, first.content_hash) == b"same bytes"


def test_discard_drops_staged_bytes(blob_backend: BlobBackend, blob_store: BlobStore) -> None:
    staged = blob_store.stage([b"refused"])
    staged.discard()
    staged.discard()  # twice is harmless
    assert not blob_store.exists(staged.content_hash)
    assert list(blob_store.keys()) == []
    assert blob_backend.staging_leftovers() == []


def test_discard_never_touches_a_published_blob(blob_store: BlobStore) -> None:
    published = blob_store.stage([b"kept"])
    published.publish()
    again = blob_store.stage([b"kept"])
    again.discard()
    published.discard()  # a late discard of the published handle
    assert blob_store.exists(published.content_hash)
    assert read_all(blob_store, published.content_hash) == b"kept"


def test_missing_blob_raises_not_found(blob_store: BlobStore) -> None:
    publish(blob_store, b"something else")
    key = sha(b"never stored")
    assert not blob_store.exists(key)
    with pytest.raises(NotFound):
        read_all(blob_store, key)
    with pytest.raises(NotFound):
        blob_store.size(key)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "abc",
        sha(b"x")[:-1],
        sha(b"x") + "0",
        sha(b"x").upper(),
        "g" * 64,
        "../" * 21 + "a",
        "/" + sha(b"x")[1:],
        "00/" + sha(b"x")[3:],
        sha(b"x")[:63] + "\n",
    ],
    ids=[
        "empty",
        "short",
        "63-chars",
        "65-chars",
        "uppercase",
        "not-hex",
        "dotdot",
        "absolute",
        "slash",
        "newline",
    ],
)
def test_bad_keys_are_never_found(blob_store: BlobStore, key: str) -> None:
    publish(blob_store, b"x")
    assert not blob_store.exists(key)
    with pytest.raises(NotFound):
        read_all(blob_store, key)
    with pytest.raises(NotFound):
        blob_store.size(key)


def test_published_blobs_survive_reopen(blob_backend: BlobBackend) -> None:
    store = blob_backend.open()
    keys = {publish(store, f"durable {i}".encode()): f"durable {i}".encode() for i in range(5)}
    reopened = blob_backend.open()
    assert set(reopened.keys()) == set(keys)
    for key, data in keys.items():
        assert reopened.exists(key)
        assert read_all(reopened, key) == data


def test_staging_leftovers_are_cleared_on_reopen(blob_backend: BlobBackend) -> None:
    store = blob_backend.open()
    kept = publish(store, b"published before the crash")
    store.stage([b"staged, then the process died"])  # neither published nor discarded
    store.stage([b"another one"])
    assert len(blob_backend.staging_leftovers()) == 2
    # A second opener (a CLI command beside a running server) leaves fresh files alone...
    blob_backend.open()
    assert len(blob_backend.staging_leftovers()) == 2
    # ...and the first open after they went stale clears them.
    blob_backend.make_staging_stale()
    reopened = blob_backend.open()
    assert blob_backend.staging_leftovers() == []
    assert list(reopened.keys()) == [kept]
    assert read_all(reopened, kept) == b"published before the crash"


def test_a_failing_chunk_source_leaves_nothing(
    blob_backend: BlobBackend, blob_store: BlobStore
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"a" * 100_000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        blob_store.stage(chunks())
    assert list(blob_store.keys()) == []
    assert blob_backend.staging_leftovers() == []


def _numbered_chunks(count: int, size: int, digest: hashlib._Hash) -> Iterator[bytes]:
    """`count` distinct chunks of `size` bytes, made one at a time (never all in memory)."""
    for i in range(count):
        chunk = i.to_bytes(4, "big") * (size // 4)
        digest.update(chunk)
        yield chunk


def test_a_50_mib_body_streams_through_with_flat_memory(blob_store: BlobStore) -> None:
    chunk_size = 64 * 1024
    count = 50 * MiB // chunk_size
    expected = hashlib.sha256()
    tracemalloc.start()
    try:
        staged = blob_store.stage(_numbered_chunks(count, chunk_size, expected))
        staged.publish()
        _, stage_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        got = hashlib.sha256()
        size = 0
        for chunk in blob_store.open(staged.content_hash):
            got.update(chunk)
            size += len(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert staged.size == size == 50 * MiB
    assert staged.content_hash == expected.hexdigest() == got.hexdigest()
    # The body is 50 MiB; a few chunks in flight is all a streaming backend may hold.
    assert stage_peak < 4 * MiB, f"staging held {stage_peak} bytes"
    assert read_peak < 4 * MiB, f"reading held {read_peak} bytes"


def test_publish_over_a_damaged_copy_leaves_the_good_bytes(
    blob_backend: BlobBackend, blob_store: BlobStore
) -> None:
    data = b"a photo, uploaded again after the stored copy was damaged"
    key = publish(blob_store, data)
    blob_backend.truncate(key)
    assert blob_store.size(key) == len(data) - 1
    # "Make the blob durable and readable under its hash": a damaged copy under the key
    # must not swallow the good bytes in hand (the upload would be acknowledged, yet lost).
    publish(blob_store, data)
    assert blob_store.size(key) == len(data)
    assert read_all(blob_store, key) == data


# -- removal (garbage collection) ----------------------------------------------------


def test_remove_deletes_an_old_blob_and_is_idempotent(
    blob_backend: BlobBackend, blob_store: BlobStore
) -> None:
    key = publish(blob_store, b"garbage now")
    other = publish(blob_store, b"still wanted")
    blob_backend.make_old(key, 7200)
    assert blob_store.remove(key, min_age=3600)
    assert not blob_store.exists(key)
    assert key not in set(blob_store.keys())
    with pytest.raises(NotFound):
        read_all(blob_store, key)
    assert blob_store.remove(key, min_age=3600), "absent already: gone is gone"
    assert blob_store.remove(sha(b"never published"))
    assert read_all(blob_store, other) == b"still wanted", "nothing else is touched"


def test_remove_keeps_a_young_blob(blob_backend: BlobBackend, blob_store: BlobStore) -> None:
    key = publish(blob_store, b"just written")
    assert not blob_store.remove(key, min_age=3600)
    assert read_all(blob_store, key) == b"just written"
    assert blob_store.remove(key, min_age=0)
    assert not blob_store.exists(key)


def test_publishing_equal_content_again_makes_a_blob_young(
    blob_backend: BlobBackend, blob_store: BlobStore
) -> None:
    """A write that publishes content equal to an old, unreferenced blob is about to
    record it: the collector must leave it alone from then on."""
    key = publish(blob_store, b"old content")
    blob_backend.make_old(key, 7200)
    assert publish(blob_store, b"old content") == key
    assert not blob_store.remove(key, min_age=3600)
    assert read_all(blob_store, key) == b"old content"


def test_a_removed_blob_can_be_published_again(
    blob_backend: BlobBackend, blob_store: BlobStore
) -> None:
    key = publish(blob_store, b"comes back")
    assert blob_store.remove(key)
    assert publish(blob_store, b"comes back") == key
    assert read_all(blob_store, key) == b"comes back"
    reopened = blob_backend.open()
    assert read_all(reopened, key) == b"comes back"
