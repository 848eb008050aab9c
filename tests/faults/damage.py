"""Ways to damage a stopped server's files the way crashes and failing disks do."""

from __future__ import annotations

import os
import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path

DB = "homeport.sqlite3"


def checkpoint(data: Path) -> None:
    """Fold the WAL into the database file (server stopped), so every page is in one file."""
    conn = sqlite3.connect(data / DB)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "the database is in use"
    finally:
        conn.close()


def flip_byte(path: Path, offset: int, mask: int = 0x01) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ mask]))
        fh.flush()
        os.fsync(fh.fileno())


def find_unique(path: Path, marker: bytes) -> int:
    raw = path.read_bytes()
    at = raw.find(marker)
    assert at >= 0, f"{marker!r} not in {path.name}"
    assert raw.find(marker, at + 1) < 0, f"{marker!r} is in {path.name} more than once"
    return at


def blob_path(data: Path, content_hash: str) -> Path:
    return data / "blobs" / content_hash[:2] / content_hash[2:4] / content_hash


@dataclass(frozen=True)
class WalFrame:
    offset: int
    page: int
    commit: bool  # the last frame of a transaction (it records the database size)


def wal_frames(wal: Path) -> tuple[int, list[WalFrame]]:
    """(page size, the frames of the current WAL generation), per the SQLite file format.

    Frames left from an earlier generation (the WAL is reused after a checkpoint)
    carry other salts and are not part of the log.
    """
    raw = wal.read_bytes()
    magic, _, page_size, _, salt1, salt2 = struct.unpack(">IIIIII", raw[:24])
    assert magic in (0x377F0682, 0x377F0683), "not a WAL file"
    frames: list[WalFrame] = []
    offset = 32
    while offset + 24 + page_size <= len(raw):
        page, db_size, s1, s2 = struct.unpack(">IIII", raw[offset : offset + 16])
        if (s1, s2) != (salt1, salt2):
            break
        frames.append(WalFrame(offset, page, db_size != 0))
        offset += 24 + page_size
    return page_size, frames


def tear_last_transaction(wal: Path) -> int:
    """Cut the WAL in the middle of the last transaction's commit frame, as a power cut
    during its write would; returns how many frames that transaction had."""
    page_size, frames = wal_frames(wal)
    commits = [i for i, f in enumerate(frames) if f.commit]
    assert commits, "no committed transaction in the WAL"
    last = commits[-1]
    previous = commits[-2] if len(commits) > 1 else -1
    os.truncate(wal, frames[last].offset + 24 + page_size // 2)
    return last - previous
