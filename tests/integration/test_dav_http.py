"""The DAV protocol over real HTTP against a real `homeport serve` (one per module)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from lxml import etree

from tests.conftest import Server

NS = {
    "d": "DAV:",
    "c": "urn:ietf:params:xml:ns:caldav",
    "r": "urn:ietf:params:xml:ns:carddav",
    "cs": "http://calendarserver.org/ns/",
}


def ics(uid: str, summary: str = "Meeting", comp: str = "VEVENT", extra: str = "") -> bytes:
    times = "DTSTART:20261201T100000Z\r\nDTEND:20261201T110000Z\r\n" if comp == "VEVENT" else ""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        f"BEGIN:{comp}\r\nUID:{uid}\r\nDTSTAMP:20261101T000000Z\r\n{times}"
        f"SUMMARY:{summary}\r\n{extra}END:{comp}\r\nEND:VCALENDAR\r\n"
    ).encode()


def vcf(uid: str, fn: str = "Ada Lovelace") -> bytes:
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{fn}\r\nN:{fn};;;;\r\n"
        "EMAIL;TYPE=INTERNET:ada@example.org\r\nEND:VCARD\r\n"
    ).encode()


def propfind(client: httpx.Client, url: str, body: str, depth: str = "0") -> etree._Element:
    r = client.request("PROPFIND", url, content=body, headers={"Depth": depth})
    assert r.status_code == 207, r.text
    return etree.fromstring(r.content)


@pytest.fixture
def alice(shared_server: Server) -> httpx.Client:
    return shared_server.client("alice")


def test_well_known_redirects_before_auth(shared_server: Server) -> None:
    with httpx.Client(base_url=shared_server.url) as anon:
        for path in ("/.well-known/caldav", "/.well-known/carddav"):
            r = anon.get(path)
            assert r.status_code == 301
            assert r.headers["location"].endswith("/dav/")
        assert anon.request("PROPFIND", "/dav/").status_code == 401


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/dav",
        "/dav/",
        "/dav/alice",
        "/dav/alice/",
        "/dav/alice/calendar",
        "/dav/alice/contacts/",
    ],
)
def test_any_url_leads_to_principal(alice: httpx.Client, url: str) -> None:
    body = '<propfind xmlns="DAV:"><prop><current-user-principal/></prop></propfind>'
    root = propfind(alice, url, body)
    hrefs = root.xpath("//d:current-user-principal/d:href/text()", namespaces=NS)
    assert hrefs == ["/dav/alice/"]


def test_principal_has_home_sets(alice: httpx.Client) -> None:
    body = (
        '<propfind xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" '
        'xmlns:A="urn:ietf:params:xml:ns:carddav"><prop><C:calendar-home-set/>'
        "<A:addressbook-home-set/><principal-URL/></prop></propfind>"
    )
    root = propfind(alice, "/dav/alice/", body)
    for prop in ("c:calendar-home-set", "r:addressbook-home-set", "d:principal-URL"):
        assert root.xpath(f"//{prop}/d:href/text()", namespaces=NS) == ["/dav/alice/"]


def test_default_collections(alice: httpx.Client) -> None:
    body = (
        '<propfind xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><prop><displayname/>'
        "<resourcetype/><C:supported-calendar-component-set/></prop></propfind>"
    )
    root = propfind(alice, "/dav/alice/", body, depth="1")
    names = root.xpath("//d:displayname/text()", namespaces=NS)
    assert {"Contacts", "Calendar", "Tasks"} <= set(names)
    comps = root.xpath("//d:response[d:href='/dav/alice/tasks/']//c:comp/@name", namespaces=NS)
    assert comps == ["VTODO"]


def test_options_advertises_dav_classes(alice: httpx.Client) -> None:
    r = alice.options("/dav/alice/")
    dav = r.headers["dav"]
    for cls in ("1", "3", "calendar-access", "addressbook", "extended-mkcol"):
        assert cls in [c.strip() for c in dav.split(",")]
    assert "2" not in [c.strip() for c in dav.split(",")]


def test_put_get_etag_and_preconditions(alice: httpx.Client) -> None:
    uid = str(uuid.uuid4())
    url = f"/dav/alice/calendar/{uid}.ics"
    r = alice.put(
        url, content=ics(uid), headers={"If-None-Match": "*", "Content-Type": "text/calendar"}
    )
    assert r.status_code == 201
    etag = r.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    g = alice.get(url)
    assert g.status_code == 200 and g.content == ics(uid) and g.headers["etag"] == etag
    # If-None-Match: * on an existing item fails; a stale If-Match fails; nothing changes.
    assert alice.put(url, content=ics(uid, "x"), headers={"If-None-Match": "*"}).status_code == 412
    assert alice.put(url, content=ics(uid, "x"), headers={"If-Match": '"stale"'}).status_code == 412
    assert alice.get(url).content == ics(uid)
    r2 = alice.put(url, content=ics(uid, "Moved"), headers={"If-Match": etag})
    assert r2.status_code == 204 and r2.headers["etag"] != etag
    assert alice.get(url, headers={"If-None-Match": r2.headers["etag"]}).status_code == 304
    assert alice.head(url).headers["etag"] == r2.headers["etag"]


def test_invalid_bodies_are_refused_and_not_stored(alice: httpx.Client) -> None:
    url = "/dav/alice/calendar/bad.ics"
    r = alice.put(url, content=b"this is not a calendar")
    assert r.status_code == 403 and b"valid-calendar-data" in r.content
    assert alice.get(url).status_code == 404
    r = alice.put("/dav/alice/contacts/bad.vcf", content=b"BEGIN:VCARD\r\nFN:x\r\n")
    assert r.status_code == 403 and b"valid-address-data" in r.content
    # A to-do in an events-only calendar.
    r = alice.put("/dav/alice/calendar/todo.ics", content=ics("t1", comp="VTODO"))
    assert r.status_code == 403 and b"supported-calendar-component" in r.content


def test_uid_conflict(alice: httpx.Client) -> None:
    uid = str(uuid.uuid4())
    assert alice.put(f"/dav/alice/contacts/{uid}-a.vcf", content=vcf(uid)).status_code == 201
    r = alice.put(f"/dav/alice/contacts/{uid}-b.vcf", content=vcf(uid))
    assert r.status_code == 409 and b"no-uid-conflict" in r.content
    assert f"{uid}-a.vcf".encode() in r.content
    assert alice.get(f"/dav/alice/contacts/{uid}-b.vcf").status_code == 404


def test_oversized_body(shared_server: Server, alice: httpx.Client) -> None:
    big = ics("big", extra="DESCRIPTION:" + "x" * (11 * 1024 * 1024) + "\r\n")
    r = alice.put("/dav/alice/calendar/big.ics", content=big)
    assert r.status_code == 413
    assert alice.get("/dav/alice/calendar/big.ics").status_code == 404


def test_sync_collection_and_ctag(alice: httpx.Client) -> None:
    assert alice.request("MKCALENDAR", "/dav/alice/sync-test/").status_code == 201
    body = (
        '<sync-collection xmlns="DAV:"><sync-token/><sync-level>1</sync-level>'
        "<prop><getetag/></prop></sync-collection>"
    )
    root = etree.fromstring(alice.request("REPORT", "/dav/alice/sync-test/", content=body).content)
    token0 = root.findtext("d:sync-token", namespaces=NS)
    assert token0 and not root.findall("d:response", NS)
    for i in range(3):
        alice.put(f"/dav/alice/sync-test/{i}.ics", content=ics(f"s{i}"))
    alice.delete("/dav/alice/sync-test/0.ics")
    body1 = body.replace("<sync-token/>", f"<sync-token>{token0}</sync-token>")
    r = alice.request(
        "REPORT", "/dav/alice/sync-test/", content=body1, headers={"Depth": "1"}
    )  # Thunderbird sends Depth: 1
    root = etree.fromstring(r.content)
    gone = root.xpath("//d:response[d:status[contains(., '404')]]/d:href/text()", namespaces=NS)
    present = root.xpath("//d:response[d:propstat]/d:href/text()", namespaces=NS)
    assert gone == ["/dav/alice/sync-test/0.ics"]
    assert sorted(present) == ["/dav/alice/sync-test/1.ics", "/dav/alice/sync-test/2.ics"]
    token1 = root.findtext("d:sync-token", namespaces=NS)
    # Nothing changed since token1: an empty delta.
    body2 = body.replace("<sync-token/>", f"<sync-token>{token1}</sync-token>")
    root = etree.fromstring(alice.request("REPORT", "/dav/alice/sync-test/", content=body2).content)
    assert not root.findall("d:response", NS)
    # Unknown token: 403 with valid-sync-token.
    bad = body.replace("<sync-token/>", "<sync-token>urn:homeport:sync:1:999999</sync-token>")
    r = alice.request("REPORT", "/dav/alice/sync-test/", content=bad)
    assert r.status_code == 403 and b"valid-sync-token" in r.content
    ctag = propfind(
        alice,
        "/dav/alice/sync-test/",
        '<propfind xmlns="DAV:" xmlns:CS="http://calendarserver.org/ns/">'
        "<prop><CS:getctag/></prop></propfind>",
    ).findtext(".//cs:getctag", namespaces=NS)
    assert ctag == token1


def test_a_large_sync_streams_with_its_token_last_and_truncates_across_pages(
    alice: httpx.Client,
) -> None:
    """1,203 items: more than two pages of 500, so the answer streams (chunked)."""
    assert alice.request("MKCALENDAR", "/dav/alice/big-sync/").status_code == 201
    names = [f"{i:04}.ics" for i in range(1203)]
    for name in names:
        r = alice.put(f"/dav/alice/big-sync/{name}", content=ics(name))
        assert r.status_code == 201
    alice.delete("/dav/alice/big-sync/0007.ics")
    body = (
        '<sync-collection xmlns="DAV:"><sync-token/><sync-level>1</sync-level>'
        "<prop><getetag/></prop>{limit}</sync-collection>"
    )
    r = alice.request("REPORT", "/dav/alice/big-sync/", content=body.format(limit=""))
    assert r.status_code == 207 and r.headers.get("transfer-encoding") == "chunked"
    root = etree.fromstring(r.content)
    hrefs = root.xpath("d:response/d:href/text()", namespaces=NS)
    assert hrefs == [f"/dav/alice/big-sync/{n}" for n in names if n != "0007.ics"]
    assert root[-1].tag == "{DAV:}sync-token"
    full_token = root.findtext("d:sync-token", namespaces=NS)
    # A client limit of 700 cuts the second page: 700 items, a 507, and a token that
    # gives the rest.
    limited = body.format(limit="<limit><nresults>700</nresults></limit>")
    root = etree.fromstring(
        alice.request("REPORT", "/dav/alice/big-sync/", content=limited).content
    )
    got = root.xpath("d:response[d:propstat]/d:href/text()", namespaces=NS)
    assert got == hrefs[:700]
    assert root.xpath("d:response[contains(d:status, '507')]/d:href/text()", namespaces=NS) == [
        "/dav/alice/big-sync/"
    ]
    partial = root.findtext("d:sync-token", namespaces=NS)
    assert partial and partial != full_token
    rest_body = body.format(limit="").replace(
        "<sync-token/>", f"<sync-token>{partial}</sync-token>"
    )
    root = etree.fromstring(
        alice.request("REPORT", "/dav/alice/big-sync/", content=rest_body).content
    )
    rest = root.xpath("d:response[d:propstat]/d:href/text()", namespaces=NS)
    assert got + rest == hrefs
    assert root.findtext("d:sync-token", namespaces=NS) == full_token


def test_multiget(alice: httpx.Client) -> None:
    uid = str(uuid.uuid4())
    alice.put(f"/dav/alice/contacts/{uid}.vcf", content=vcf(uid, "Grace Hopper"))
    body = (
        f'<A:addressbook-multiget xmlns="DAV:" xmlns:A="urn:ietf:params:xml:ns:carddav">'
        f"<prop><getetag/><A:address-data/></prop><href>/dav/alice/contacts/{uid}.vcf</href>"
        "<href>/dav/alice/contacts/missing.vcf</href></A:addressbook-multiget>"
    )
    r = alice.request("REPORT", "/dav/alice/contacts/", content=body, headers={"Depth": "1"})
    root = etree.fromstring(r.content)
    data = root.xpath("//r:address-data/text()", namespaces=NS)
    assert data and "Grace Hopper" in data[0]
    assert root.xpath(
        "//d:response[d:href='/dav/alice/contacts/missing.vcf']/d:status/text()", namespaces=NS
    ) == ["HTTP/1.1 404 Not Found"]


def test_proppatch_collection(alice: httpx.Client) -> None:
    body = (
        '<propertyupdate xmlns="DAV:" xmlns:I="http://apple.com/ns/ical/"><set><prop>'
        "<displayname>Work</displayname><I:calendar-color>#FF0000FF</I:calendar-color>"
        "</prop></set></propertyupdate>"
    )
    r = alice.request("PROPPATCH", "/dav/alice/calendar/", content=body)
    assert r.status_code == 207 and "200 OK" in r.text
    root = propfind(
        alice,
        "/dav/alice/calendar/",
        '<propfind xmlns="DAV:" xmlns:I="http://apple.com/ns/ical/"><prop>'
        "<displayname/><I:calendar-color/></prop></propfind>",
    )
    assert root.xpath("//d:displayname/text()", namespaces=NS) == ["Work"]
    # Protected properties are refused atomically.
    bad = body.replace("<displayname>Work</displayname>", "<getetag>x</getetag>")
    r = alice.request("PROPPATCH", "/dav/alice/calendar/", content=bad)
    assert "403" in r.text and "424" in r.text


def test_move_item_between_collections(alice: httpx.Client) -> None:
    alice.request("MKCALENDAR", "/dav/alice/move-a/")
    alice.request("MKCALENDAR", "/dav/alice/move-b/")
    alice.put("/dav/alice/move-a/e.ics", content=ics("move-1"))
    r = alice.request(
        "MOVE",
        "/dav/alice/move-a/e.ics",
        headers={"Destination": f"{alice.base_url}/dav/alice/move-b/e.ics"},
    )
    assert r.status_code == 201
    assert alice.get("/dav/alice/move-a/e.ics").status_code == 404
    assert alice.get("/dav/alice/move-b/e.ics").content == ics("move-1")


def test_extended_mkcol_addressbook(alice: httpx.Client) -> None:
    body = (
        '<D:mkcol xmlns:D="DAV:" xmlns:A="urn:ietf:params:xml:ns:carddav"><D:set><D:prop>'
        "<D:resourcetype><D:collection/><A:addressbook/></D:resourcetype>"
        "<D:displayname>Family</D:displayname></D:prop></D:set></D:mkcol>"
    )
    assert alice.request("MKCOL", "/dav/alice/family/", content=body).status_code == 201
    root = propfind(
        alice,
        "/dav/alice/family/",
        '<propfind xmlns="DAV:"><prop><resourcetype/><displayname/></prop></propfind>',
    )
    assert root.xpath("//r:addressbook", namespaces=NS)
    assert alice.request("MKCOL", "/dav/alice/family/").status_code == 405


def test_isolation_between_users(shared_server: Server, alice: httpx.Client) -> None:
    alice.put("/dav/alice/contacts/secret.vcf", content=vcf("secret"))
    bob = shared_server.client("bob")
    assert bob.get("/dav/alice/contacts/secret.vcf").status_code in (403, 404)
    assert bob.request("PROPFIND", "/dav/alice/", headers={"Depth": "1"}).status_code in (403, 404)
    assert bob.put("/dav/alice/contacts/x.vcf", content=vcf("x")).status_code in (403, 404)
    assert bob.delete("/dav/alice/contacts/secret.vcf").status_code in (403, 404)
    body = (
        '<A:addressbook-multiget xmlns="DAV:" xmlns:A="urn:ietf:params:xml:ns:carddav">'
        "<prop><A:address-data/></prop><href>/dav/alice/contacts/secret.vcf</href>"
        "</A:addressbook-multiget>"
    )
    r = bob.request("REPORT", "/dav/bob/contacts/", content=body)
    assert b"BEGIN:VCARD" not in r.content
    r = bob.request(
        "MOVE",
        "/dav/bob/contacts/",
        headers={"Destination": f"{shared_server.url}/dav/alice/stolen/"},
    )
    assert r.status_code in (403, 404)
    assert alice.get("/dav/alice/contacts/secret.vcf").status_code == 200


def test_wrong_password(shared_server: Server) -> None:
    r = shared_server.client("alice", "nope").request("PROPFIND", "/dav/alice/")
    assert r.status_code == 401 and "Basic" in r.headers["www-authenticate"]


def test_bad_xml_is_400(alice: httpx.Client) -> None:
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        '<propfind xmlns="DAV:"><prop><displayname>&e;</displayname></prop></propfind>'
    )
    assert alice.request("PROPFIND", "/dav/alice/", content=xxe).status_code == 400
    assert alice.request("PROPFIND", "/dav/alice/", content=b"<notxml").status_code == 400
    r = alice.request("PROPFIND", "/dav/alice/", headers={"Depth": "infinity"})
    assert r.status_code == 403 and b"propfind-finite-depth" in r.content


def test_plain_files_stream(alice: httpx.Client) -> None:
    assert alice.request("MKCOL", "/dav/alice/files/").status_code == 201
    assert alice.request("MKCOL", "/dav/alice/files/photos/").status_code == 201
    payload = bytes(range(256)) * 8192  # 2 MiB, stored as an external blob
    r = alice.put(
        "/dav/alice/files/photos/p.jpg", content=payload, headers={"Content-Type": "image/jpeg"}
    )
    assert r.status_code == 201
    g = alice.get("/dav/alice/files/photos/p.jpg")
    assert g.content == payload and g.headers["content-type"] == "image/jpeg"
    root = propfind(
        alice, "/dav/alice/files/", '<propfind xmlns="DAV:"><allprop/></propfind>', depth="1"
    )
    assert "/dav/alice/files/photos/" in root.xpath("//d:href/text()", namespaces=NS)


def _address_data(client: httpx.Client, report: str, version: str | None) -> dict[str, str]:
    attr = f' version="{version}"' if version else ""
    if report == "addressbook-query":
        which = '<A:filter><A:prop-filter name="UID"/></A:filter>'
    else:
        which = "<href>/dav/alice/contacts/v3.vcf</href><href>/dav/alice/contacts/v4.vcf</href>"
    r = client.request(
        "REPORT",
        "/dav/alice/contacts/",
        content=(
            f'<A:{report} xmlns="DAV:" xmlns:A="urn:ietf:params:xml:ns:carddav">'
            f'<prop><getetag/><A:address-data content-type="text/vcard"{attr}/></prop>'
            f"{which}</A:{report}>"
        ),
        headers={"Depth": "1"},
    )
    assert r.status_code == 207, r.text
    root = etree.fromstring(r.content)
    out: dict[str, str] = {}
    for resp in root.xpath("//d:response", namespaces=NS):
        href = resp.xpath("d:href/text()", namespaces=NS)[0]
        data = resp.xpath(".//r:address-data/text()", namespaces=NS)
        if href.endswith(("v3.vcf", "v4.vcf")):
            out[href.rsplit("/", 1)[1]] = data[0]
    return out


def test_address_data_in_the_version_asked_for(alice: httpx.Client) -> None:
    """An iPhone (3.0) and DAVx5 (4.0) read each other's cards in their own version."""
    v3 = vcf("conv-3").replace(b"EMAIL;TYPE=INTERNET", b"EMAIL;TYPE=INTERNET,pref")
    v4 = (
        b"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:conv-4\r\nFN:Grace\r\nKIND:individual\r\n"
        b"EMAIL;PREF=1:grace@example.org\r\nTEL;VALUE=uri:tel:+1-555-0100\r\nEND:VCARD\r\n"
    )
    for name, body in (("v3.vcf", v3), ("v4.vcf", v4)):
        r = alice.put(f"/dav/alice/contacts/{name}", content=body)
        assert r.status_code in (201, 204), r.text
    for report in ("addressbook-multiget", "addressbook-query"):
        as3 = _address_data(alice, report, "3.0")
        assert as3["v3.vcf"] == v3.decode(), "same version: untouched"
        assert "VERSION:3.0" in as3["v4.vcf"] and "TEL:+1-555-0100" in as3["v4.vcf"]
        assert "EMAIL;TYPE=PREF:grace@example.org" in as3["v4.vcf"]
        as4 = _address_data(alice, report, "4.0")
        assert "VERSION:4.0" in as4["v3.vcf"] and "PREF=1" in as4["v3.vcf"]
        assert as4["v4.vcf"] == v4.decode()
        # No version: RFC 6352 section 10.4 makes vCard 3.0 the default.
        assert "VERSION:3.0" in _address_data(alice, report, None)["v4.vcf"]
    # The stored bytes never change: GET returns what was PUT.
    assert alice.get("/dav/alice/contacts/v4.vcf").content == v4
