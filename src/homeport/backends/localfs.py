"""Blob backend on a local folder: `blobs/ab/cd/<sha256>`, written via a fsynced rename.

Write order for one blob (docs/storage.md): stream into `staging/<random>` while
hashing, fsync the file, rename it to its final name, fsync the directory. A crash
before the rename leaves only staging garbage (cleared at a later start once stale); after it, a
complete blob. A published file is never rewritten.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from homeport.errors import InsufficientStorage, NotFound

STALE_STAGING_SECONDS = 6 * 3600.0
"""Staging files older than this are leftovers of a crash, removed when a store opens."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStagedBlob:
    def __init__(self, store: LocalBlobStore, tmp: Path, content_hash: str, size: int) -> None:
        self._store = store
        self._tmp = tmp
        self._hash = content_hash
        self._size = size

    @property
    def content_hash(self) -> str:
        return self._hash

    @property
    def size(self) -> int:
        return self._size

    def publish(self) -> None:
        final = self._store.path_for(self._hash)
        if final.exists() and self._store.verify(self._hash):
            # Same key, same (verified) bytes: keep the published copy, but make it young
            # again, so that garbage collection leaves it to the write about to record it.
            try:
                os.utime(final)
            except FileNotFoundError:
                pass  # collected just now: the staged copy takes its place below
            else:
                self.discard()
                return
        # Absent, or a damaged copy: the good bytes in hand take its place atomically.
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp, final)
        _fsync_dir(final.parent)
        _fsync_dir(final.parent.parent)

    def discard(self) -> None:
        try:
            self._tmp.unlink()
        except FileNotFoundError:
            pass


class LocalBlobStore:
    """`homeport.store.interfaces.BlobStore` on a folder."""

    def __init__(self, root: Path, stale_after: float = STALE_STAGING_SECONDS) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.staging = root / "staging"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(parents=True, exist_ok=True)
        # Only old leftovers go: another process (a running server) may be mid-upload.
        cutoff = time.time() - stale_after
        for leftover in self.staging.iterdir():
            try:
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink(missing_ok=True)
            except FileNotFoundError:
                pass

    def path_for(self, content_hash: str) -> Path:
        if len(content_hash) != 64 or any(c not in "0123456789abcdef" for c in content_hash):
            raise NotFound(f"not a blob key: {content_hash!r}")
        return self.blobs / content_hash[:2] / content_hash[2:4] / content_hash

    def stage(self, chunks: Iterable[bytes]) -> LocalStagedBlob:
        tmp = self.staging / secrets.token_hex(16)
        digest = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as fh:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise InsufficientStorage("no space left for this body") from exc
            raise
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return LocalStagedBlob(self, tmp, digest.hexdigest(), size)

    def verify(self, content_hash: str) -> bool:
        """True when the published file exists and hashes to its key."""
        digest = hashlib.sha256()
        try:
            with open(self.path_for(content_hash), "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
        except (FileNotFoundError, NotFound):
            return False
        return digest.hexdigest() == content_hash

    def exists(self, content_hash: str) -> bool:
        try:
            return self.path_for(content_hash).is_file()
        except NotFound:
            return False

    def open(self, content_hash: str, chunk_size: int = 65536) -> Iterator[bytes]:
        path = self.path_for(content_hash)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError as exc:
            raise NotFound(f"blob {content_hash} is missing") from exc
        return self._chunks(fh, chunk_size)

    @staticmethod
    def _chunks(fh: object, chunk_size: int) -> Iterator[bytes]:
        import io

        assert isinstance(fh, io.BufferedReader)
        with fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def size(self, content_hash: str) -> int:
        try:
            return self.path_for(content_hash).stat().st_size
        except FileNotFoundError as exc:
            raise NotFound(f"blob {content_hash} is missing") from exc

    def remove(self, content_hash: str, min_age: float = 0.0) -> bool:
        path = self.path_for(content_hash)
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return True
        if age < min_age:
            return False
        path.unlink(missing_ok=True)
        # No directory fsync: a removal lost in a crash leaves an orphan file, which the
        # next garbage collection removes again.
        return True

    def keys(self) -> Iterator[str]:
        for path in self.blobs.glob("*/*/*"):
            if path.is_file():
                yield path.name
