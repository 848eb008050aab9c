"""Logs never hold secrets or content; every answer carries the security headers.

The server runs at debug level while a client signs in (rightly and wrongly), gets
throttled, stores, reads, queries, fails validation and reads a damaged body; then its
whole log is searched for the passwords, the Authorization header and item contents.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import httpx

from tests.faults.damage import blob_path
from tests.faults.harness import add_user, fresh_data, launcher

PASSWORD = "Pw-LogCanary-91b2"
WRONG = "Wrong-LogCanary-77e1"
CONTENT = "Content-LogCanary-c0ffee"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def test_debug_logs_hold_no_passwords_headers_or_contents(tmp_path: Path) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    add_user(data, "carol", PASSWORD)
    card = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:log-card\r\n"
        f"FN:{CONTENT}\r\nN:Canary;;;;\r\nEND:VCARD\r\n"
    ).encode()
    event = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:log-ev\r\n"
        "DTSTAMP:20260101T000000Z\r\nDTSTART:20260301T100000Z\r\n"
        f"SUMMARY:{CONTENT}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()
    photo = (CONTENT * 10_000).encode()
    with launcher() as starter:
        server = starter.start(data, env={"HOMEPORT_LOG_LEVEL": "debug"})
        with httpx.Client(base_url=server.url, auth=("carol", PASSWORD), timeout=30) as c:
            assert c.put("/dav/carol/contacts/c.vcf", content=card).status_code == 201
            assert c.put("/dav/carol/calendar/e.ics", content=event).status_code == 201
            assert c.request("MKCOL", "/dav/carol/files/").status_code == 201
            assert c.put("/dav/carol/files/p.bin", content=photo).status_code == 201
            assert c.get("/dav/carol/contacts/c.vcf").content == card
            c.request(
                "REPORT",
                "/dav/carol/contacts/",
                content=b'<A:addressbook-multiget xmlns:D="DAV:" '
                b'xmlns:A="urn:ietf:params:xml:ns:carddav"><D:prop><A:address-data/></D:prop>'
                b"<D:href>/dav/carol/contacts/c.vcf</D:href></A:addressbook-multiget>",
            )
            c.request(
                "PROPPATCH",
                "/dav/carol/contacts/",
                content=(
                    '<propertyupdate xmlns="DAV:"><set><prop><x:n xmlns:x="urn:x">'
                    f"{CONTENT}</x:n></prop></set></propertyupdate>"
                ).encode(),
            )
            bad = card.replace(b"BEGIN:VCARD", b"BEGIN:VCALENDAR")
            assert c.put("/dav/carol/contacts/bad.vcf", content=bad).status_code >= 400
            assert c.put("/dav/carol/calendar/bad.ics", content=card).status_code >= 400
            c.request("PROPFIND", "/dav/carol/", content=f"<bad>{CONTENT}".encode())
        for _ in range(7):  # wrong passwords, up to a 429
            with httpx.Client(base_url=server.url, auth=("carol", WRONG), timeout=30) as w:
                w.get("/dav/carol/")
        server.stop()
        # A damaged body is logged as an integrity error: by hash, never by content.
        h = hashlib.sha256(photo).hexdigest()
        path = blob_path(data, h)
        path.write_bytes(path.read_bytes()[:-1] + b"!")
        server = starter.start(data, env={"HOMEPORT_LOG_LEVEL": "debug"})
        with httpx.Client(base_url=server.url, auth=("carol", PASSWORD), timeout=30) as c:
            assert c.get("/dav/carol/files/p.bin").status_code == 500
        server.stop()
        log = "".join(p.log_text() for p in starter.started)
    assert "DEBUG" in log or "debug" in log.lower()
    assert "must wait" in log and "integrity error" in log  # the events are logged...
    secret_forms = [
        PASSWORD,
        WRONG,
        CONTENT,
        base64.b64encode(f"carol:{PASSWORD}".encode()).decode(),
        base64.b64encode(f"carol:{WRONG}".encode()).decode(),
        "authorization",
        "Authorization",
    ]
    for secret in secret_forms:  # ...without what must stay out of them
        assert secret not in log, f"{secret!r} appears in the server log"


def test_every_answer_carries_the_security_headers(tmp_path: Path) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        server = starter.start(data)
        with server.client() as c:
            answers = [
                c.get("/"),
                c.get("/.well-known/caldav", follow_redirects=False),
                c.request("OPTIONS", "/dav/alice/"),
                c.request("PROPFIND", "/dav/alice/", headers={"Depth": "0"}),
                c.get("/dav/alice/contacts/"),
                c.get("/dav/alice/contacts/none.vcf"),
                c.get("/dav/bob/"),
                c.request("PROPFIND", "/dav/alice/", headers={"Depth": "infinity"}),
                c.request("PROPFIND", "/dav/alice/", content=b"<not-xml"),
                c.request("BREW", "/dav/alice/"),
                c.put("/dav/alice/contacts/x.vcf", content=b"not a vcard"),
            ]
        with httpx.Client(base_url=server.url, timeout=30) as anon:
            answers.append(anon.get("/dav/alice/"))
        for r in answers:
            for name, value in SECURITY_HEADERS.items():
                assert r.headers.get(name) == value, (r.request.method, r.url, r.status_code)
            assert "server" not in r.headers, "the server announces its software"
        statuses = sorted({r.status_code for r in answers})
        assert statuses == [200, 207, 301, 400, 401, 403, 404, 405], statuses
