"""Torn writes: a blob file or the database (or its WAL) cut short by a crash.

What must hold: damaged content is never served as good (no 200 with wrong bytes),
the server either starts and refuses the damaged parts or refuses to start with a
plain message, and `homeport check` names what is damaged.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import httpx

from tests.faults.damage import DB, blob_path, checkpoint, tear_last_transaction
from tests.faults.harness import Launcher, check, fresh_data, launcher
from tests.faults.model import etag_for


def vcard(i: int) -> bytes:
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:torn-{i}\r\nFN:Torn {i}\r\nN:Torn;{i};;;\r\n"
        f"NOTE:{'n' * 400}\r\nEND:VCARD\r\n"
    ).encode()


def populate(starter: Launcher, data: Path, count: int) -> dict[str, bytes]:
    """`count` contacts and two files (one external blob); the server is SIGKILLed after."""
    server = starter.start(data)
    stored: dict[str, bytes] = {}
    with server.client() as c:
        assert c.request("MKCOL", "/dav/alice/files/").status_code == 201
        for i in range(count):
            url = f"/dav/alice/contacts/c{i}.vcf"
            assert c.put(url, content=vcard(i)).status_code == 201
            stored[url] = vcard(i)
        for name, size in (("small.bin", 2_000), ("photo.jpg", 300_000)):
            body = random.randbytes(size)
            assert c.put(f"/dav/alice/files/{name}", content=body).status_code == 201
            stored[f"/dav/alice/files/{name}"] = body
    server.kill()
    return stored


def assert_never_wrong(client: httpx.Client, stored: dict[str, bytes]) -> dict[str, int]:
    """GET every item: a 200 must carry exactly the stored bytes. Returns the statuses."""
    statuses: dict[str, int] = {}
    for url, body in stored.items():
        r = client.get(url)
        statuses[url] = r.status_code
        if r.status_code == 200:
            assert r.content == body, f"{url}: 200 with damaged content"
            assert r.headers["etag"] == etag_for(hashlib.sha256(body).hexdigest())
        else:
            assert r.status_code in (404, 500), (url, r.status_code)
    return statuses


def test_torn_blob_file_is_never_served_and_check_names_it(tmp_path: Path) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        stored = populate(starter, data, 3)
        photo = stored["/dav/alice/files/photo.jpg"]
        h = hashlib.sha256(photo).hexdigest()
        path = blob_path(data, h)
        os.truncate(path, len(photo) // 2)  # the rename happened, the data did not reach disk

        report = check(data)
        assert report["exit"] == 1 and not report["ok"]
        assert any(h[:16] in p and "blob store" in p for p in report["problems"]), report

        server = starter.start(data)
        with server.client() as c:
            statuses = assert_never_wrong(c, stored)
            assert statuses["/dav/alice/files/photo.jpg"] == 500
            assert all(s == 200 for u, s in statuses.items() if not u.endswith("photo.jpg"))
            head = c.head("/dav/alice/files/photo.jpg")
            assert head.status_code == 200  # metadata only: no bytes are claimed
            # The same bytes uploaded again take the damaged copy's place.
            assert c.put("/dav/alice/files/again.jpg", content=photo).status_code == 201
            r = c.get("/dav/alice/files/photo.jpg")
            assert r.status_code == 200 and r.content == photo
        server.stop()
    assert check(data)["ok"]


def test_empty_blob_file_after_a_crash_is_never_served(tmp_path: Path) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        stored = populate(starter, data, 1)
        h = hashlib.sha256(stored["/dav/alice/files/photo.jpg"]).hexdigest()
        os.truncate(blob_path(data, h), 0)
        assert check(data)["exit"] == 1
        server = starter.start(data)
        with server.client() as c:
            assert assert_never_wrong(c, stored)["/dav/alice/files/photo.jpg"] == 500


def test_torn_wal_tail_loses_only_the_transaction_in_flight(tmp_path: Path) -> None:
    """The last WAL transaction cut mid-frame (a crash during its fsync, so never
    acknowledged): SQLite's frame checksums drop it, everything before it stays, and
    the log has no gap."""
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        stored = populate(starter, data, 6)
        # The last transaction is the photo's PUT; treat it as the one in flight.
        frames = tear_last_transaction(data / f"{DB}-wal")
        assert frames >= 1
        report = check(data)
        assert report["ok"], report
        server = starter.start(data)
        with server.client() as c:
            statuses = assert_never_wrong(c, stored)
            in_flight = "/dav/alice/files/photo.jpg"
            assert all(s == 200 for u, s in statuses.items() if u != in_flight), statuses
            assert statuses[in_flight] in (200, 404)
            # The server goes on writing after the torn tail.
            assert c.put("/dav/alice/contacts/after.vcf", content=vcard(99)).status_code == 201
        server.stop()
    assert check(data)["ok"]


def test_garbage_after_the_wal_tail_is_ignored(tmp_path: Path) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        stored = populate(starter, data, 4)
        with open(data / f"{DB}-wal", "ab") as fh:
            fh.write(os.urandom(5000))  # half a frame of a write that never finished
        assert check(data)["ok"]
        server = starter.start(data)
        with server.client() as c:
            assert all(s == 200 for s in assert_never_wrong(c, stored).values())


def test_truncated_database_is_refused_with_a_plain_message(tmp_path: Path) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        populate(starter, data, 60)
        checkpoint(data)
        db = data / DB
        os.truncate(db, db.stat().st_size - 4096)  # the last page never reached the disk

        report = check(data)
        assert report["exit"] != 0
        said = report["stderr"] + " ".join(report["problems"])
        assert "database" in said and "damaged" in said, report
        assert "Traceback" not in said

        try:
            server = starter.start(data)
        except RuntimeError as exc:  # refusing to start is a correct answer
            assert "damaged" in str(exc) and "Traceback" not in str(exc), str(exc)[-2000:]
        else:
            with server.client() as c:
                r = c.get("/dav/alice/contacts/c0.vcf")
                assert r.status_code in (200, 500)


def test_damaged_database_page_is_detected_and_never_served_as_good(tmp_path: Path) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        stored = populate(starter, data, 60)
        checkpoint(data)
        db = data / DB
        size = db.stat().st_size
        with open(db, "r+b") as fh:  # the last page written as garbage (a torn sector write)
            fh.seek(size - 4096)
            fh.write(b"\x55" * 4096)

        report = check(data)
        assert report["exit"] == 1
        assert any("metadata database damaged" in p for p in report["problems"]), report

        server = starter.start(data)
        with server.client() as c:
            statuses = assert_never_wrong(c, stored)
        assert any(s == 200 for s in statuses.values())
