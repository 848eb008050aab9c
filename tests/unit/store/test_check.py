"""`check_store`: silent on a healthy store, and names each kind of damage in plain words."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from homeport.store.check import check_store
from homeport.store.core import Store
from homeport.store.interfaces import MetadataWriter
from homeport.store.model import Collection, NewRevision, Op
from tests.unit.store.support import (
    CLIENT,
    DB_NAME,
    OWNER,
    blob_path,
    delete,
    mkcol,
    open_store,
    put,
    raw_db,
    sha,
)

SMALL = b"BEGIN:VCALENDAR\r\nSUMMARY:small\r\nEND:VCALENDAR\r\n"
SMALL_V2 = b"BEGIN:VCALENDAR\r\nSUMMARY:small, edited\r\nEND:VCALENDAR\r\n"
PHOTO = bytes(range(256)) * 40  # 10 KiB: external with the 1 KiB inline threshold
VIDEO = b"\x00\x01video" * 2000
REFUSED = b"a body refused by a precondition"


@dataclass
class Healthy:
    cal: Collection
    photos: Collection
    gone: Collection


def make_healthy(store: Store) -> Healthy:
    """A store with every kind of entry: inline and external bodies, an overwrite,
    a delete, a conflict, and a deleted collection."""
    cal = mkcol(store, "cal")
    photos = mkcol(store, "photos")
    gone = mkcol(store, "gone")
    put(store, cal, "a.ics", SMALL)  # seq 4
    put(store, cal, "a.ics", SMALL_V2)  # seq 5
    put(store, cal, "b.ics", SMALL)  # seq 6: same body as a.ics once had
    put(store, photos, "p.jpg", PHOTO)  # seq 7
    put(store, photos, "v.mp4", VIDEO)  # seq 8
    delete(store, cal, "b.ics")  # seq 9
    put(store, cal, "c.ics", REFUSED, op=Op.CONFLICT)  # seq 10
    put(store, gone, "x.ics", b"in a collection that goes")  # seq 11

    def rmcol(w: MetadataWriter) -> None:
        rev = store.append(w, NewRevision(OWNER, CLIENT, Op.RMCOL, gone.id, ""))
        w.mark_collection_deleted(gone.id, rev.seq)

    store.commit(rmcol)  # seq 12
    return Healthy(cal, photos, gone)


@pytest.fixture
def healthy(store: Store) -> Healthy:
    return make_healthy(store)


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def sql(root: Path, statement: str, *args: object) -> int:
    with raw_db(root) as db:
        return db.execute(statement, args).rowcount


def test_an_empty_store_is_healthy(store: Store) -> None:
    report = check_store(store)
    assert report.ok and report.problems == []
    assert (report.log_entries, report.items, report.blobs_checked) == (0, 0, 0)


def test_a_healthy_store_passes_and_is_counted(store: Store, healthy: Healthy) -> None:
    report = check_store(store)
    assert report.ok, report.problems
    assert report.log_entries == 12
    assert report.items == 4  # a.ics, p.jpg, v.mp4, x.ics (b.ics is a tombstone)
    referenced = [SMALL, SMALL_V2, PHOTO, VIDEO, REFUSED, b"in a collection that goes"]
    assert report.blobs_checked == len(referenced)
    assert report.bytes_checked == sum(len(b) for b in referenced)
    quick = check_store(store, verify_contents=False)
    assert quick.ok and quick.log_entries == 12


def test_a_flipped_byte_in_an_external_blob_is_named(
    tmp_path: Path, store: Store, healthy: Healthy
) -> None:
    flip_byte(blob_path(tmp_path, sha(PHOTO)), 1234)
    report = check_store(store)
    assert len(report.problems) == 1, report.problems
    assert sha(PHOTO)[:16] in report.problems[0]
    assert "in the blob store" in report.problems[0]
    assert "does not match its hash" in report.problems[0]
    # The quick mode only looks for the file, so it cannot see this.
    assert check_store(store, verify_contents=False).ok


def test_a_deleted_blob_file_is_named(tmp_path: Path, store: Store, healthy: Healthy) -> None:
    blob_path(tmp_path, sha(VIDEO)).unlink()
    for full in (True, False):
        report = check_store(store, verify_contents=full)
        assert len(report.problems) == 1, report.problems
        assert sha(VIDEO)[:16] in report.problems[0]
        assert "missing" in report.problems[0]


def test_a_corrupted_inline_blob_is_named(tmp_path: Path, store: Store, healthy: Healthy) -> None:
    damaged = SMALL_V2.replace(b"edited", b"EDITED")
    assert sql(tmp_path, "UPDATE blobs SET data = ? WHERE hash = ?", damaged, sha(SMALL_V2)) == 1
    report = check_store(store)
    assert len(report.problems) == 1, report.problems
    assert sha(SMALL_V2)[:16] in report.problems[0]
    assert "inline" in report.problems[0]


def test_an_unrecorded_blob_is_named(tmp_path: Path, store: Store, healthy: Healthy) -> None:
    assert sql(tmp_path, "DELETE FROM blobs WHERE hash = ?", sha(REFUSED)) == 1
    report = check_store(store)
    assert report.problems == [f"blob {sha(REFUSED)[:16]} is referenced but unrecorded"]


def test_a_gap_in_the_log_is_named(tmp_path: Path, store: Store, healthy: Healthy) -> None:
    # seq 4 is a.ics's first version: later overwritten, so only the gap is wrong.
    assert sql(tmp_path, "DELETE FROM log WHERE seq = 4") == 1
    report = check_store(store)
    assert report.problems == ["change log has a gap: expected sequence 4, found 5"]
    assert report.log_entries == 11


def test_a_missing_first_log_entry_is_a_gap(tmp_path: Path, store: Store, healthy: Healthy) -> None:
    sql(tmp_path, "DELETE FROM log WHERE seq = 1")
    report = check_store(store)
    assert "change log has a gap: expected sequence 1, found 2" in report.problems


def test_an_items_row_that_disagrees_with_the_log_is_named(
    tmp_path: Path, store: Store, healthy: Healthy
) -> None:
    cid = healthy.photos.id
    sql(tmp_path, "UPDATE items SET deleted = 1 WHERE collection_id = ? AND name = ?", cid, "p.jpg")
    report = check_store(store)
    assert len(report.problems) == 1, report.problems
    problem = report.problems[0]
    assert problem.startswith(
        f"current-state index disagrees with the log for item 'p.jpg' in collection {cid}: "
    )
    assert "log says present at sequence 7" in problem
    assert "index says deleted at sequence 7" in problem


def test_an_items_row_pointing_at_an_older_revision_is_named(
    tmp_path: Path, store: Store, healthy: Healthy
) -> None:
    cid = healthy.cal.id
    sql(
        tmp_path,
        "UPDATE items SET seq = 4, content_hash = ? WHERE collection_id = ? AND name = 'a.ics'",
        sha(SMALL),
        cid,
    )
    report = check_store(store)
    assert len(report.problems) == 1, report.problems
    assert "'a.ics'" in report.problems[0] and f"collection {cid}" in report.problems[0]
    assert "log says present at sequence 5" in report.problems[0]
    assert "index says present at sequence 4" in report.problems[0]


def test_a_missing_and_an_invented_items_row_are_named(
    tmp_path: Path, store: Store, healthy: Healthy
) -> None:
    cid = healthy.cal.id
    sql(tmp_path, "DELETE FROM items WHERE collection_id = ? AND name = 'b.ics'", cid)
    sql(
        tmp_path,
        "INSERT INTO items (collection_id, name, seq, deleted, content_hash, size, modified_us)"
        " VALUES (?, 'invented.ics', 6, 0, ?, ?, 0)",
        cid,
        sha(SMALL),
        len(SMALL),
    )
    report = check_store(store)
    assert sorted(report.problems) == sorted(
        [
            f"current-state index disagrees with the log for item 'b.ics' in collection {cid}: "
            "log says deleted at sequence 9, index says nothing",
            f"current-state index has item 'invented.ics' in collection {cid} "
            "that the log never wrote",
        ]
    )


def test_a_log_entry_naming_a_missing_collection_is_named(
    tmp_path: Path, store: Store, healthy: Healthy
) -> None:
    sql(tmp_path, "DELETE FROM collections WHERE id = ?", healthy.gone.id)
    report = check_store(store)
    assert report.problems == [f"log names collection {healthy.gone.id}, which does not exist"]


def test_every_problem_is_reported_and_nothing_is_changed(
    tmp_path: Path, store: Store, healthy: Healthy
) -> None:
    flip_byte(blob_path(tmp_path, sha(PHOTO)), 0)
    blob_path(tmp_path, sha(VIDEO)).unlink()
    sql(tmp_path, "UPDATE blobs SET data = ? WHERE hash = ?", b"junk", sha(REFUSED))
    sql(tmp_path, "DELETE FROM log WHERE seq = 4")
    sql(tmp_path, "UPDATE items SET seq = 99 WHERE name = 'x.ics'")
    first = check_store(store)
    assert len(first.problems) == 5, first.problems
    for needle in (sha(PHOTO)[:16], sha(VIDEO)[:16], sha(REFUSED)[:16], "gap", "'x.ics'"):
        assert sum(needle in p for p in first.problems) == 1, needle
    second = check_store(store)
    assert second.problems == first.problems  # check repaired nothing, broke nothing
    assert not store.blobs.exists(sha(VIDEO))


def test_a_damaged_database_page_is_reported(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    make_healthy(store)
    store.close()  # the last connection checkpoints the WAL into the main file
    with raw_db(tmp_path) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'log'").fetchone()[0]
    with open(tmp_path / DB_NAME, "r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(b"\xff" * 16)  # a page header SQLite cannot read
    store = open_store(tmp_path)
    try:
        report = check_store(store)
    finally:
        store.close()
    assert not report.ok
    assert all(p.startswith("metadata database damaged") for p in report.problems)


def test_an_items_row_with_the_wrong_body_is_named(
    tmp_path: Path, store: Store, healthy: Healthy
) -> None:
    cid = healthy.cal.id
    sql(
        tmp_path,
        "UPDATE items SET content_hash = ?, size = ? WHERE collection_id = ? AND name = 'a.ics'",
        sha(SMALL),
        len(SMALL),
        cid,
    )
    with store.read() as r:
        item = r.get_item(cid, "a.ics")
        assert item is not None and store.read_body(item.content_hash, r) == SMALL  # wrong one
    # The seq is right, the body is another version's: GET would serve the wrong one.
    report = check_store(store)
    assert len(report.problems) == 1, report.problems
    assert "'a.ics'" in report.problems[0] and f"collection {cid}" in report.problems[0]
