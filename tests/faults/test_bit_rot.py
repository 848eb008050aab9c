"""Bit rot: bytes flipped in stored bodies, inline (inside the database) and external.

`homeport check` detects it; a GET never returns wrong bytes with a 200; the other
items are unaffected; an external blob is repaired by uploading the same bytes again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from tests.faults.damage import DB, blob_path, checkpoint, find_unique, flip_byte
from tests.faults.harness import Launcher, Proc, check, fresh_data, launcher

MARKER = b"ROT-MARKER-7f3a"


def vcard(uid: str, fn: str) -> bytes:
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{fn}\r\nN:{uid};;;;\r\nEND:VCARD\r\n"
    ).encode()


ROTTEN = vcard("rotten", MARKER.decode())
GOOD = vcard("good", "Good Contact")
PHOTO = os.urandom(250_000)


def store_and_stop(starter: Launcher, data: Path) -> None:
    server = starter.start(data)
    with server.client() as c:
        assert c.put("/dav/alice/contacts/rotten.vcf", content=ROTTEN).status_code == 201
        assert c.put("/dav/alice/contacts/good.vcf", content=GOOD).status_code == 201
        assert c.request("MKCOL", "/dav/alice/files/").status_code == 201
        assert c.put("/dav/alice/files/photo.jpg", content=PHOTO).status_code == 201
    server.stop()
    checkpoint(data)


def rot_inline(data: Path) -> None:
    db = data / DB
    flip_byte(db, find_unique(db, MARKER) + 3)


def rot_external(data: Path) -> None:
    flip_byte(blob_path(data, hashlib.sha256(PHOTO).hexdigest()), len(PHOTO) - 10, 0x80)


@pytest.fixture
def rotten(tmp_path: Path) -> Iterator[tuple[Launcher, Proc, Path]]:
    data = fresh_data(tmp_path, users=("alice",))
    starter = Launcher()
    try:
        store_and_stop(starter, data)
        rot_inline(data)
        rot_external(data)
        server = starter.start(data)
    except BaseException:
        starter.close()
        raise
    yield starter, server, data
    starter.close()


def test_check_detects_inline_and_external_rot(tmp_path: Path) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        store_and_stop(starter, data)
    assert check(data)["ok"]
    rot_inline(data)
    report = check(data)
    assert report["exit"] == 1
    rotten_hash = hashlib.sha256(ROTTEN).hexdigest()
    assert [p for p in report["problems"] if rotten_hash[:16] in p and "inline" in p], report
    rot_external(data)
    report = check(data)
    photo_hash = hashlib.sha256(PHOTO).hexdigest()
    assert [p for p in report["problems"] if photo_hash[:16] in p and "blob store" in p], report
    assert len(report["problems"]) == 2


def test_rotten_bodies_are_never_served_as_good(rotten: tuple[Launcher, Proc, Path]) -> None:
    _, server, _ = rotten
    with server.client() as c:
        for url, body in (
            ("/dav/alice/contacts/rotten.vcf", ROTTEN),
            ("/dav/alice/files/photo.jpg", PHOTO),
        ):
            r = c.get(url)
            assert r.status_code == 500, (url, r.status_code)
            assert body[:20] not in r.content
        r = c.get("/dav/alice/contacts/good.vcf")
        assert r.status_code == 200 and r.content == GOOD
        # A stream of the damaged blob must not reach a client as a complete 200 either.
        with c.stream("GET", "/dav/alice/files/photo.jpg") as s:
            got = b"".join(s.iter_bytes()) if s.status_code == 200 else b""
            assert s.status_code != 200 or got == PHOTO
    assert "stored body" in server.log_text() or "does not match" in server.log_text()


def test_reports_never_carry_rotten_data(rotten: tuple[Launcher, Proc, Path]) -> None:
    _, server, _ = rotten
    with server.client() as c:
        for body in (
            b'<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">'
            b"<D:prop><D:getetag/><C:address-data/></D:prop>"
            b"<D:href>/dav/alice/contacts/rotten.vcf</D:href></C:addressbook-multiget>",
            b'<sync-collection xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">'
            b"<sync-token/><sync-level>1</sync-level><prop><getetag/><C:address-data/></prop>"
            b"</sync-collection>",
        ):
            r = c.request("REPORT", "/dav/alice/contacts/", content=body)
            assert r.status_code in (207, 500)
            damaged = MARKER[:3] + bytes([MARKER[3] ^ 1]) + MARKER[4:]
            assert damaged not in r.content


def test_external_rot_is_repaired_by_the_same_upload(rotten: tuple[Launcher, Proc, Path]) -> None:
    _, server, data = rotten
    with server.client() as c:
        assert c.put("/dav/alice/files/copy.jpg", content=PHOTO).status_code == 201
        r = c.get("/dav/alice/files/photo.jpg")
        assert r.status_code == 200 and r.content == PHOTO
    problems = check(data)["problems"]
    assert len(problems) == 1 and "inline" in problems[0], problems


def test_one_rotten_item_does_not_stop_the_collection_from_syncing(
    rotten: tuple[Launcher, Proc, Path],
) -> None:
    _, server, _ = rotten
    with server.client() as c:
        r = c.request(
            "REPORT",
            "/dav/alice/contacts/",
            content=b'<C:addressbook-multiget xmlns:D="DAV:" '
            b'xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/><C:address-data/>'
            b"</D:prop><D:href>/dav/alice/contacts/rotten.vcf</D:href>"
            b"<D:href>/dav/alice/contacts/good.vcf</D:href></C:addressbook-multiget>",
        )
        assert r.status_code == 207, r.status_code
        assert b"Good Contact" in r.content
        damaged = MARKER[:3] + bytes([MARKER[3] ^ 1]) + MARKER[4:]
        assert damaged not in r.content and MARKER not in r.content
        responses = etree.fromstring(r.content).findall("{DAV:}response")
        status = {
            x.findtext("{DAV:}href"): x.findtext("{DAV:}status")
            or x.findtext("{DAV:}propstat/{DAV:}status")
            for x in responses
        }
        assert status == {
            "/dav/alice/contacts/rotten.vcf": "HTTP/1.1 500 Internal Server Error",
            "/dav/alice/contacts/good.vcf": "HTTP/1.1 200 OK",
        }, status
        # The initial sync with bodies goes on too: the rotten item alone reports 500.
        r = c.request(
            "REPORT",
            "/dav/alice/contacts/",
            content=b'<sync-collection xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">'
            b"<sync-token/><sync-level>1</sync-level><prop><getetag/><C:address-data/></prop>"
            b"</sync-collection>",
        )
        assert r.status_code == 207 and b"Good Contact" in r.content
        assert b"HTTP/1.1 500 Internal Server Error" in r.content


def test_check_names_the_damaged_item(tmp_path: Path) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        store_and_stop(starter, data)
    rot_inline(data)
    problems = " ".join(check(data)["problems"])
    assert "rotten.vcf" in problems and "contacts" in problems, problems
