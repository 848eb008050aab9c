"""Hostile input over real HTTP: each refused cleanly (4xx, never 5xx), nothing stored.

XML external entities, entity expansion, deep nesting, huge attributes and property
lists, bodies over the limits, invalid UTF-8, header injection, path traversal in the
request line, in Destination and in hrefs, Depth: infinity. After all of it the server
is healthy, alice's data is exactly what it was, and `homeport check` passes.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.faults.harness import Proc, assert_healthy, check, fresh_data, launcher
from tests.security.rawhttp import raw_request, request_bytes

ALICE_CARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:card\r\nFN:Card\r\nN:Card;;;;\r\nEND:VCARD\r\n"
PROPFIND_ETAGS = b'<propfind xmlns="DAV:"><prop><getetag/><sync-token/></prop></propfind>'


def snapshot(server: Proc) -> list[str]:
    out: list[str] = []
    with server.client(timeout=60) as c:
        r = c.request("PROPFIND", "/dav/alice/", headers={"Depth": "1"}, content=PROPFIND_ETAGS)
        out.append(r.text)
        for href in sorted(set(re.findall(r"<d:href>(/dav/alice/[^<]+/)</d:href>", r.text))):
            r = c.request("PROPFIND", href, headers={"Depth": "1"}, content=PROPFIND_ETAGS)
            out.append(r.text)
    return out


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    data = fresh_data(tmp_path_factory.mktemp("hostile"), users=("alice", "bob"))
    with launcher() as starter:
        server = starter.start(data)
        with server.client() as c:
            assert c.put("/dav/alice/contacts/card.vcf", content=ALICE_CARD).status_code == 201
            assert c.request("MKCOL", "/dav/alice/files/").status_code == 201
            assert c.put("/dav/alice/files/a.txt", content=b"a").status_code == 201
        before = snapshot(server)
        yield server
        assert server.alive(), "the server died"
        assert_healthy(server)
        assert snapshot(server) == before, "hostile input changed alice's data"
        log = server.log_text()
        assert "Traceback" not in log, log[-4000:]
        server.stop()
        report = check(data)
        assert report["ok"], report


def assert_refused(r: httpx.Response, allowed: tuple[int, ...] = ()) -> None:
    assert r.status_code < 500 or r.status_code in allowed, (r.status_code, r.text[:300])
    assert not 200 <= r.status_code < 300 or r.status_code in allowed, (r.status_code, r.text)


# -- XML ---------------------------------------------------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b']><propfind xmlns="DAV:"><prop><displayname>&lol9;</displayname></prop></propfind>'
)

REFUSED_XML: dict[str, bytes] = {
    "xxe-file": b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<propfind xmlns="DAV:"><prop><displayname>&x;</displayname></prop></propfind>',
    "xxe-network": b'<!DOCTYPE d [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>'
    b'<propfind xmlns="DAV:"/>',
    "external-dtd": b'<!DOCTYPE propfind SYSTEM "file:///etc/passwd"><propfind xmlns="DAV:"/>',
    "doctype-after-comment": b'<!-- x --><!DOCTYPE x [<!ENTITY a "b">]>'
    b'<propfind xmlns="DAV:"><prop>&a;</prop></propfind>',
    "billion-laughs": BILLION_LAUGHS,
    "deep-100k": b"<a>" * 100_000 + b"</a>" * 100_000,
    "deep-70": b'<propfind xmlns="DAV:"><prop>'
    + b"<x>" * 70
    + b"</x>" * 70
    + b"</prop></propfind>",
    "invalid-utf8": b'<propfind xmlns="DAV:"><prop><displayname>\xff\xfe</displayname>'
    b"</prop></propfind>",
    "overlong-utf8": b'<propfind xmlns="DAV:"><prop><a\xc0\xae/></prop></propfind>',
    "nul": b'<propfind xmlns="DAV:"><prop>\x00</prop></propfind>',
    "not-xml": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "unclosed": b'<propfind xmlns="DAV:"><prop>',
    "undefined-prefix": b"<D:propfind><D:prop/></D:propfind>",
    "entity-reference-only": b'<propfind xmlns="DAV:"><prop>&undefined;</prop></propfind>',
}

XML_TARGETS = [
    ("PROPFIND", "/dav/alice/", {"Depth": "0"}),
    ("REPORT", "/dav/alice/contacts/", {"Depth": "1"}),
    ("PROPPATCH", "/dav/alice/contacts/", {}),
    ("MKCOL", "/dav/alice/hostile-new/", {"Content-Type": "application/xml"}),
    ("MKCALENDAR", "/dav/alice/hostile-cal/", {}),
]


@pytest.mark.parametrize("name", sorted(REFUSED_XML))
def test_hostile_xml_is_refused_with_400(target: Proc, name: str) -> None:
    body = REFUSED_XML[name]
    with target.client() as c:
        for method, url, headers in XML_TARGETS:
            start = time.monotonic()
            r = c.request(method, url, headers=headers, content=body)
            took = time.monotonic() - start
            assert r.status_code == 400, (name, method, r.status_code, r.text[:300])
            assert b"root:" not in r.content
            assert took < 5, (name, method, took)


def _many(n: int, fmt: str) -> str:
    return "".join(fmt.format(i=i) for i in range(n))


ODD_BUT_WELL_FORMED: dict[str, bytes] = {
    "huge-attribute": b'<propfind xmlns="DAV:" a="'
    + b"x" * 3_000_000
    + b'"><prop><getetag/></prop></propfind>',
    "many-attributes": (
        '<propfind xmlns="DAV:" ' + _many(50_000, 'a{i}="1" ') + "><prop/></propfind>"
    ).encode(),
    "many-namespaces": (
        '<propfind xmlns="DAV:" ' + _many(20_000, 'xmlns:p{i}="urn:p{i}" ') + "><prop/></propfind>"
    ).encode(),
    "many-props": (
        '<propfind xmlns="DAV:" xmlns:x="urn:x"><prop>' + _many(50_000, "<x:p{i}/>") + "</prop>"
        "</propfind>"
    ).encode(),
    "huge-cdata": b'<propfind xmlns="DAV:"><prop><![CDATA['
    + b"c" * 3_000_000
    + b"]]></prop></propfind>",
    "xinclude": b'<propfind xmlns="DAV:" xmlns:xi="http://www.w3.org/2001/XInclude"><prop>'
    b'<xi:include href="file:///etc/passwd" parse="text"/></prop></propfind>',
    "utf16-declared": b'<?xml version="1.0" encoding="UTF-16"?><propfind xmlns="DAV:"/>',
}


@pytest.mark.parametrize("name", sorted(ODD_BUT_WELL_FORMED))
def test_odd_xml_is_answered_without_error_in_bounded_time(target: Proc, name: str) -> None:
    body = ODD_BUT_WELL_FORMED[name]
    rss = target.rss_kib()
    with target.client(timeout=60) as c:
        for method, url, headers in XML_TARGETS[:2]:
            start = time.monotonic()
            r = c.request(method, url, headers=headers, content=body)
            assert r.status_code in (207, 400, 403, 413), (
                name,
                method,
                r.status_code,
                r.text[:200],
            )
            assert b"root:" not in r.content
            assert time.monotonic() - start < 10, name
    assert target.rss_kib() - rss < 300_000, "one request grew the server by 300 MB"


def test_bodies_over_the_limit_are_413(target: Proc) -> None:
    big_xml = b'<propfind xmlns="DAV:"><prop>' + b" " * (5 * 1024 * 1024) + b"</prop></propfind>"
    with target.client(timeout=60) as c:
        r = c.request("PROPFIND", "/dav/alice/", headers={"Depth": "0"}, content=big_xml)
        assert r.status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while reading
            for _ in range(100):
                yield b" " * 65536

        r = c.request("REPORT", "/dav/alice/contacts/", content=chunks())
        assert r.status_code == 413
        card = ALICE_CARD.replace(b"FN:Card", b"FN:" + b"x" * (11 * 1024 * 1024))
        r = c.put("/dav/alice/contacts/huge.vcf", content=card)
        assert r.status_code == 413 and b"max-resource-size" in r.content
        r = c.put(
            "/dav/alice/contacts/huge2.vcf", content=iter([card[:6_000_000], card[6_000_000:]])
        )
        assert r.status_code == 413


# -- paths ------------------------------------------------------------------------------

TRAVERSALS = [
    b"/dav/alice/../bob/",
    b"/dav/alice/contacts/../../bob/contacts/",
    b"/dav/alice/%2e%2e/bob/",
    b"/dav/alice/%2E%2E/bob/",
    b"/dav/alice/.%2e/bob/",
    b"/dav/alice/contacts%2Fcard.vcf",
    b"/dav/alice/contacts%2fcard.vcf",
    b"/dav/alice/./contacts/",
    b"/dav//alice/contacts/",
    b"/dav/alice/contacts/%00",
    b"/dav/alice/contacts/%0d%0aX-Injected:%201",
    b"/dav/alice/contacts/%ff",
    b"/dav/alice/contacts/%c0%ae%c0%ae",
    b"/dav/alice/contacts/\xff",
    b"/dav/alice/contacts/\xc3\xa9.vcf",
    b"/dav/alice/contacts/a b",
    b"/%2e%2e/%2e%2e/etc/passwd",
    b"/.well-known/../dav/alice/",
    b"http://evil.example/dav/alice/",
    b"//evil.example/dav/alice/",
    b"*",
]

HARMLESS_NAMES = [  # odd but literal names: not found, and nothing escapes
    b"/dav/alice/contacts/..%5c..%5cetc%5cpasswd",
    b"/dav/alice/contacts/%252e%252e",
    b"/dav/alice/contacts/%",
    b"/dav/alice/contacts/" + b"a" * 8000,
]


@pytest.mark.parametrize("path", TRAVERSALS, ids=lambda p: p.decode("latin-1")[:40])
def test_traversal_in_the_request_line_is_400(target: Proc, path: bytes) -> None:
    for method in (b"GET", b"PUT", b"PROPFIND", b"DELETE", b"MKCOL"):
        body = b"traversal" if method == b"PUT" else b""
        status, answer = raw_request(target.port, request_bytes(method, path, body=body))
        assert status == 400, (method, path, status, answer[:300])


@pytest.mark.parametrize("path", HARMLESS_NAMES, ids=lambda p: p.decode()[:40])
def test_odd_literal_names_are_just_not_found(target: Proc, path: bytes) -> None:
    for method in (b"GET", b"DELETE", b"PROPFIND"):
        headers = [(b"Depth", b"0")] if method == b"PROPFIND" else []
        status, answer = raw_request(target.port, request_bytes(method, path, headers=headers))
        assert status == 404, (method, path, status, answer[:300])


def test_hrefs_with_traversal_in_reports_are_refused(target: Proc) -> None:
    bad = [
        "/dav/alice/contacts/../../bob/contacts/x.vcf",
        "/dav/alice/contacts/%2e%2e/x",
        "/dav/alice/contacts%2Fx",
        "/dav/alice/contacts/%ff",
        "ftp://127.0.0.1/dav/alice/contacts/card.vcf",
        "/dav/alice/contacts/card.vcf?x=1",
        "javascript:alert(1)",
    ]
    with target.client() as c:
        for href in bad:
            body = (
                '<A:addressbook-multiget xmlns:D="DAV:" xmlns:A="urn:ietf:params:xml:ns:carddav">'
                f"<D:prop><D:getetag/></D:prop><D:href>{href}</D:href></A:addressbook-multiget>"
            ).encode()
            r = c.request("REPORT", "/dav/alice/contacts/", content=body)
            assert r.status_code in (207, 400), (href, r.status_code)
            if r.status_code == 207:
                assert "200 OK" not in r.text, href


# -- headers ----------------------------------------------------------------------------

DESTINATIONS: list[tuple[bytes, tuple[int, ...]]] = [
    (b"/dav/alice/files/../../bob/files/x", (400,)),
    (b"/dav/alice/files/%2e%2e/x", (400,)),
    (b"/dav/alice/files%2Fx", (400,)),
    (b"/dav/alice/files/%0d%0aSet-Cookie:%20a=b", (400,)),
    (b"/dav/alice/files/%00", (400,)),
    (b"/dav/alice/files/%ff", (400,)),
    (b"../bob/files/x", (400,)),
    (b"files/x", (400,)),
    (b"http://evil.example/dav/alice/files/x", (502,)),
    (b"http://127.0.0.1:1@evil.example/dav/alice/files/x", (502,)),
    (b"https://127.0.0.1/dav/alice/files/x", (502,)),
    (b"/dav/alice/files/x?y=1", (400,)),
    (b"/dav/alice/files/x#frag", (400,)),
    (b"/dav/bob/files/x", (403,)),
    (b"", (400,)),
]


@pytest.mark.parametrize("dest", DESTINATIONS, ids=lambda d: d[0].decode()[:40])
def test_hostile_destinations_are_refused(
    target: Proc, dest: tuple[bytes, tuple[int, ...]]
) -> None:
    value, expected = dest
    for method in (b"COPY", b"MOVE"):
        for src in (b"/dav/alice/files/a.txt", b"/dav/alice/contacts/"):
            headers = [(b"Destination", value)] if value else []
            status, answer = raw_request(target.port, request_bytes(method, src, headers=headers))
            assert status in expected, (method, src, value, status, answer[:300])


def test_header_injection_and_smuggling_are_refused(target: Proc) -> None:
    cases: list[tuple[bytes, list[tuple[bytes, bytes]], tuple[int | None, ...]]] = [
        # a bare LF ends the header: the rest must not become a header of the answer
        (b"GET", [(b"X-Note", b"a\nX-Injected: 1")], (200, 400, None)),
        (b"GET", [(b"Content-Length", b"5"), (b"Transfer-Encoding", b"chunked")], (400, None)),
        (b"GET", [(b"Content-Length", b"-1")], (400, None)),
        (b"GET", [(b"Content-Length", b"1"), (b"Content-Length", b"2")], (400, None)),
        (b"GET", [(b"X-Big", b"a" * 70_000)], (200, 400, 431, None)),
        (b"GET", [(b"X-Huge", b"a" * 2_000_000)], (400, 431, None)),
        (b"PROPFIND", [(b"Depth", b"infinity")], (403,)),
        (b"PROPFIND", [(b"Depth", b"2")], (400,)),
        (b"PROPFIND", [(b"Depth", b"1\r\nX: y")], (207, 400)),  # bare CRLF ends the header
        (b"COPY", [(b"Destination", b"/dav/alice/files/c"), (b"Overwrite", b"maybe")], (400,)),
        (b"PUT", [(b"Content-Range", b"bytes 0-1/2")], (400,)),
    ]
    for method, headers, expected in cases:
        url = b"/dav/alice/files/a.txt" if method != b"PROPFIND" else b"/dav/alice/"
        if method == b"PUT":
            url = b"/dav/alice/files/new-by-header.txt"
        status, answer = raw_request(target.port, request_bytes(method, url, headers=headers))
        assert status in expected, (method, headers[0][0], status, answer[:300])
        assert b"X-Injected" not in answer.split(b"\r\n\r\n")[0]


@pytest.mark.parametrize(
    "authorization",
    [b"Basic \xff\xfe", b"Basic " + b"A" * 60_000, b"Basic YWxpY2U=", b"Digest x", b"Basic ="],
    ids=["non-ascii", "huge", "no-colon", "digest", "padding"],
)
def test_malformed_credentials_are_401(target: Proc, authorization: bytes) -> None:
    request = (
        b"GET /dav/alice/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Authorization: " + authorization + b"\r\n\r\n"
    )
    status, answer = raw_request(target.port, request)
    assert status in (400, 401, 431), (status, answer[:300])


# -- iCalendar / vCard bodies ------------------------------------------------------------

HOSTILE_BODIES: dict[str, tuple[str, bytes]] = {
    "vcard-invalid-utf8": (
        "contacts/bad.vcf",
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u\r\nFN:\xff\xfe\r\nEND:VCARD\r\n",
    ),
    "vcard-nul-line": ("contacts/nul.vcf", b"BEGIN:VCARD\r\nVERSION:3.0\r\n\x00\r\nEND:VCARD\r\n"),
    "vcard-nested": (
        "contacts/nest.vcf",
        b"BEGIN:VCARD\r\nVERSION:3.0\r\n"
        + b"BEGIN:VCARD\r\n" * 3000
        + b"END:VCARD\r\n" * 3000
        + b"UID:x\r\nFN:x\r\nEND:VCARD\r\n",
    ),
    "ical-nested": (
        "calendar/nest.ics",
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n"
        + b"BEGIN:VEVENT\r\n" * 5000
        + b"UID:n\r\n"
        + b"END:VEVENT\r\n" * 5000
        + b"END:VCALENDAR\r\n",
    ),
    "ical-invalid-utf8": (
        "calendar/bad.ics",
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:\xc3\x28\r\n"
        b"DTSTAMP:20260101T000000Z\r\nDTSTART:20260101T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    ),
    "ical-bad-dates": (
        "calendar/dates.ics",
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:d\r\n"
        b"DTSTAMP:99999999T999999Z\r\nDTSTART:00000000T000000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    ),
    "ical-two-uids": (
        "calendar/two.ics",
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:a\r\n"
        b"DTSTAMP:20260101T000000Z\r\nDTSTART:20260101T000000Z\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\n"
        b"UID:b\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260101T000000Z\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR\r\n",
    ),
    "ical-in-addressbook": (
        "contacts/event.vcf",
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nEND:VCALENDAR\r\n",
    ),
    "binary": ("calendar/bin.ics", bytes(range(256)) * 10),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_calendar_and_contact_bodies_are_refused(target: Proc, name: str) -> None:
    path, body = HOSTILE_BODIES[name]
    with target.client() as c:
        r = c.put(f"/dav/alice/{path}", content=body)
        assert r.status_code in (400, 403, 409, 413, 415), (name, r.status_code, r.text[:300])
        assert c.get(f"/dav/alice/{path}").status_code == 404


def test_concurrent_hostile_requests_leave_the_server_serving(target: Proc) -> None:
    """Many hostile bodies at once: ordinary requests are still answered meanwhile."""
    stop = threading.Event()
    errors: list[str] = []

    def attacker(n: int) -> None:
        bodies = list(REFUSED_XML.values())
        with target.client(timeout=60) as c:
            i = n
            while not stop.is_set():
                r = c.request("PROPFIND", "/dav/alice/", content=bodies[i % len(bodies)])
                if r.status_code >= 500:
                    errors.append(f"{r.status_code}")
                i += 1

    threads = [threading.Thread(target=attacker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    try:
        with target.client(timeout=10) as c:
            for _ in range(10):
                start = time.monotonic()
                assert c.get("/dav/alice/contacts/card.vcf").content == ALICE_CARD
                assert time.monotonic() - start < 3
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
