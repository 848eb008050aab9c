"""A server with two users whose data must never mix: alice (the victim) and bob."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.faults.harness import Proc, fresh_data, launcher

SECRET = "ALICE-SECRET-4d9c"
"""Appears in every body alice stores; it must never appear in an answer to bob."""

ALICE_VCARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:alice-card\r\n"
    f"FN:{SECRET} Card\r\nN:Card;Alice;;;\r\nEND:VCARD\r\n"
).encode()
ALICE_EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
    "UID:alice-event\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260301T100000Z\r\n"
    f"DTEND:20260301T110000Z\r\nSUMMARY:{SECRET} Event\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
).encode()
ALICE_TODO = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VTODO\r\n"
    f"UID:alice-todo\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:{SECRET} Todo\r\n"
    "END:VTODO\r\nEND:VCALENDAR\r\n"
).encode()
BOB_VCARD = (
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bob-card\r\nFN:Bob Card\r\nN:Card;Bob;;;\r\nEND:VCARD\r\n"
)


@dataclass
class TwoUsers:
    server: Proc
    alice_items: dict[str, bytes] = field(default_factory=dict)


def populate(server: Proc) -> TwoUsers:
    world = TwoUsers(server)
    with server.client("alice") as a:
        assert a.request("MKCOL", "/dav/alice/files/").status_code == 201
        assert a.request("MKCOL", "/dav/alice/files/deep/").status_code == 201
        for url, body in (
            ("/dav/alice/contacts/card.vcf", ALICE_VCARD),
            ("/dav/alice/calendar/event.ics", ALICE_EVENT),
            ("/dav/alice/tasks/todo.ics", ALICE_TODO),
            ("/dav/alice/files/deep/secret.txt", SECRET.encode() * 3),
        ):
            assert a.put(url, content=body).status_code == 201
            world.alice_items[url] = body
        r = a.request(
            "PROPPATCH",
            "/dav/alice/contacts/",
            content=(
                '<propertyupdate xmlns="DAV:"><set><prop><x:note xmlns:x="urn:x">'
                f"{SECRET}</x:note></prop></set></propertyupdate>"
            ).encode(),
        )
        assert r.status_code == 207
    with server.client("bob") as b:
        assert b.put("/dav/bob/contacts/bob.vcf", content=BOB_VCARD).status_code == 201
        assert b.request("MKCOL", "/dav/bob/files/").status_code == 201
    return world


@pytest.fixture(scope="module")
def two_users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoUsers]:
    data = fresh_data(tmp_path_factory.mktemp("two"), users=("alice", "bob"))
    with launcher() as starter:
        yield populate(starter.start(data))
