"""Cross-account isolation: bob can neither read nor change anything of alice's.

Every method and every report, aimed at alice's principal, collections and items,
with alice's hrefs smuggled inside bob's own multiget and sync bodies, and with
COPY/MOVE destinations inside alice's account. Each is refused (403, or a 404 inside a
207 for a foreign href), no answer carries alice's data, and alice's state is unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from homeport.errors import Forbidden, NotFound
from homeport.services import Services
from homeport.services.accounts import Actor
from homeport.wiring import open_store
from tests.faults.harness import fresh_data
from tests.security.conftest import SECRET, TwoUsers, populate

CAL = "urn:ietf:params:xml:ns:caldav"
CARD = "urn:ietf:params:xml:ns:carddav"

ALICE_URLS = [
    "/dav/alice/",
    "/dav/alice/contacts/",
    "/dav/alice/calendar/",
    "/dav/alice/tasks/",
    "/dav/alice/files/",
    "/dav/alice/files/deep/",
    "/dav/alice/contacts/card.vcf",
    "/dav/alice/calendar/event.ics",
    "/dav/alice/tasks/todo.ics",
    "/dav/alice/files/deep/secret.txt",
    "/dav/alice/contacts/missing.vcf",
    "/dav/alice/nothing/",
]

PROPFIND_ALL = b'<propfind xmlns="DAV:"><allprop/></propfind>'
PROPPATCH = (
    b'<propertyupdate xmlns="DAV:"><set><prop><displayname>pwned</displayname>'
    b'<x:y xmlns:x="urn:x">pwned</x:y></prop></set></propertyupdate>'
)
MKCALENDAR = (
    b'<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
    b"<D:displayname>bob's</D:displayname></D:prop></D:set></C:mkcalendar>"
)
MKCOL_EXT = (
    b'<D:mkcol xmlns:D="DAV:" xmlns:A="urn:ietf:params:xml:ns:carddav"><D:set><D:prop>'
    b"<D:resourcetype><D:collection/><A:addressbook/></D:resourcetype></D:prop></D:set>"
    b"</D:mkcol>"
)


def multiget(kind: str, hrefs: list[str]) -> bytes:
    ns, data = (CAL, "calendar-data") if kind == "calendar" else (CARD, "address-data")
    refs = "".join(f"<D:href>{h}</D:href>" for h in hrefs)
    return (
        f'<X:{kind}-multiget xmlns:D="DAV:" xmlns:X="{ns}"><D:prop><D:getetag/>'
        f"<X:{data}/></D:prop>{refs}</X:{kind}-multiget>"
    ).encode()


REPORTS = {
    "sync-collection": b'<sync-collection xmlns="DAV:"><sync-token/><sync-level>1</sync-level>'
    b"<prop><getetag/></prop></sync-collection>",
    "calendar-query": b'<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    b'<D:prop><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter>'
    b"</C:calendar-query>",
    "free-busy-query": b'<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
    b'<C:time-range start="20260101T000000Z" end="20270101T000000Z"/></C:free-busy-query>',
    "addressbook-query": b'<A:addressbook-query xmlns:D="DAV:" '
    b'xmlns:A="urn:ietf:params:xml:ns:carddav"><D:prop><A:address-data/></D:prop>'
    b"<A:filter/></A:addressbook-query>",
    "calendar-multiget": multiget("calendar", ["/dav/alice/calendar/event.ics"]),
    "addressbook-multiget": multiget("addressbook", ["/dav/alice/contacts/card.vcf"]),
}


def snapshot(client: httpx.Client) -> dict[str, str]:
    """Everything alice can see of her own account, as text (etags, tokens, props)."""
    out: dict[str, str] = {}
    for url in ("/dav/alice/", "/dav/alice/contacts/", "/dav/alice/calendar/"):
        r = client.request("PROPFIND", url, headers={"Depth": "1"}, content=PROPFIND_ALL)
        assert r.status_code == 207
        out[url] = re.sub(r"<d:getlastmodified>[^<]*</d:getlastmodified>", "", r.text)
    for url in ("/dav/alice/tasks/", "/dav/alice/files/", "/dav/alice/files/deep/"):
        r = client.request("PROPFIND", url, headers={"Depth": "1"}, content=PROPFIND_ALL)
        out[url] = r.text
    for url in (
        "/dav/alice/contacts/card.vcf",
        "/dav/alice/calendar/event.ics",
        "/dav/alice/tasks/todo.ics",
        "/dav/alice/files/deep/secret.txt",
    ):
        out[url] = client.get(url).text
    return out


def attempts() -> list[tuple[str, str, dict[str, str], bytes]]:
    """(method, url, headers, body) for every way bob might reach alice's data."""
    out: list[tuple[str, str, dict[str, str], bytes]] = []
    for url in ALICE_URLS:
        out += [
            ("GET", url, {}, b""),
            ("HEAD", url, {}, b""),
            ("PROPFIND", url, {"Depth": "0"}, PROPFIND_ALL),
            ("PROPFIND", url, {"Depth": "1"}, PROPFIND_ALL),
            ("PROPFIND", url, {"Depth": "1"}, b""),
            ("PROPPATCH", url, {}, PROPPATCH),
            ("DELETE", url, {}, b""),
            ("PUT", url, {"Content-Type": "text/plain"}, b"bob was here"),
            ("MKCOL", url, {}, b""),
            ("MKCOL", url, {"Content-Type": "application/xml"}, MKCOL_EXT),
            ("MKCALENDAR", url, {}, MKCALENDAR),
            ("COPY", url, {"Destination": "/dav/bob/files/stolen"}, b""),
            ("MOVE", url, {"Destination": "/dav/bob/files/stolen"}, b""),
            ("LOCK", url, {}, b""),
        ]
        out += [("REPORT", url, {"Depth": "1"}, body) for body in REPORTS.values()]
    # bob's own resources sent into alice's account
    for src in ("/dav/bob/contacts/bob.vcf", "/dav/bob/files/", "/dav/bob/contacts/"):
        for dst in (
            "/dav/alice/contacts/bob.vcf",
            "/dav/alice/contacts/card.vcf",
            "/dav/alice/contacts/",
            "/dav/alice/newcoll/",
            "/dav/alice/",
            "http://127.0.0.1/dav/alice/contacts/x.vcf",
        ):
            for method in ("COPY", "MOVE"):
                out.append((method, src, {"Destination": dst, "Overwrite": "T"}, b""))
    return out


def test_bob_reaches_nothing_of_alices(two_users: TwoUsers) -> None:
    server = two_users.server
    with server.client("alice") as alice, server.client("bob") as bob:
        before = snapshot(alice)
        statuses: dict[int, int] = {}
        for method, url, headers, body in attempts():
            if "Destination" in headers and headers["Destination"].startswith("http://127.0"):
                headers = {
                    **headers,
                    "Destination": headers["Destination"].replace(
                        "127.0.0.1", f"127.0.0.1:{server.port}"
                    ),
                }
            r = bob.request(method, url, headers=headers, content=body)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            where = f"bob {method} {url} {headers}"
            assert SECRET not in r.text, f"{where} leaked alice's data"
            assert r.status_code < 500, f"{where}: {r.status_code}"
            if method == "LOCK":
                assert r.status_code == 405
            elif url.startswith("/dav/alice/"):
                assert r.status_code == 403, f"{where}: {r.status_code} {r.text[:200]}"
            else:  # bob's own source, alice's destination
                assert r.status_code in (403, 502), f"{where}: {r.status_code} {r.text[:200]}"
        assert snapshot(alice) == before
        # bob's own things are where he left them
        assert bob.get("/dav/bob/contacts/bob.vcf").status_code == 200
        assert bob.request("PROPFIND", "/dav/bob/files/", headers={"Depth": "0"}).status_code == 207
        print(f"\nisolation: {sum(statuses.values())} requests by bob, statuses {statuses}")


def test_hrefs_smuggled_into_bobs_own_reports_are_not_found(two_users: TwoUsers) -> None:
    server = two_users.server
    alice_hrefs = [
        "/dav/alice/contacts/card.vcf",
        "/dav/alice/calendar/event.ics",
        "/dav/alice/contacts/",
        "/dav/alice/",
        f"http://127.0.0.1:{server.port}/dav/alice/contacts/card.vcf",
        "/dav/alice/contacts/card.vcf/",
    ]
    with server.client("bob") as bob:
        for kind, coll in (("addressbook", "contacts"), ("calendar", "calendar")):
            r = bob.request(
                "REPORT",
                f"/dav/bob/{coll}/",
                headers={"Depth": "1"},
                content=multiget(kind, alice_hrefs),
            )
            assert r.status_code == 207, r.text
            assert SECRET not in r.text
            assert "200 OK" not in r.text, r.text
            responses = r.text.count("<d:response>")
            assert responses >= len(alice_hrefs) - 1  # two hrefs name the same path
            assert r.text.count("404 Not Found") == responses


def test_alices_sync_token_is_refused_in_bobs_collection(two_users: TwoUsers) -> None:
    server = two_users.server
    with server.client("alice") as alice, server.client("bob") as bob:
        r = alice.request(
            "PROPFIND",
            "/dav/alice/contacts/",
            headers={"Depth": "0"},
            content=b'<propfind xmlns="DAV:"><prop><sync-token/></prop></propfind>',
        )
        token = re.search(r"<d:sync-token>([^<]+)<", r.text)
        assert token
        for coll in ("contacts", "calendar"):
            r = bob.request(
                "REPORT",
                f"/dav/bob/{coll}/",
                content=(
                    f'<sync-collection xmlns="DAV:"><sync-token>{token.group(1)}</sync-token>'
                    "<sync-level>1</sync-level><prop><getetag/></prop></sync-collection>"
                ).encode(),
            )
            assert r.status_code == 403 and "valid-sync-token" in r.text
            assert SECRET not in r.text and "card.vcf" not in r.text


def test_discovery_shows_bob_only_himself(two_users: TwoUsers) -> None:
    server = two_users.server
    with server.client("bob") as bob:
        for url in ("/", "/dav/"):
            r = bob.request("PROPFIND", url, headers={"Depth": "1"}, content=PROPFIND_ALL)
            assert r.status_code == 207
            assert "/dav/alice" not in r.text
            assert "/dav/bob/" in r.text
        r = bob.get("/dav/")
        assert "/dav/alice" not in r.text


def test_other_accounts_existence_is_not_disclosed(two_users: TwoUsers) -> None:
    """A user that exists and one that does not look the same to bob."""
    server = two_users.server
    with server.client("bob") as bob:
        for method in ("GET", "PROPFIND", "PUT", "DELETE", "MKCOL"):
            real = bob.request(method, "/dav/alice/contacts/card.vcf")
            ghost = bob.request(method, "/dav/nobody-here/contacts/card.vcf")
            assert (real.status_code, real.text) == (ghost.status_code, ghost.text)


def test_wrong_password_never_reaches_data(two_users: TwoUsers) -> None:
    server = two_users.server
    with httpx.Client(base_url=server.url, auth=("alice", "wrong"), timeout=30) as c:
        r = c.get("/dav/alice/contacts/card.vcf")
        assert r.status_code == 401 and SECRET not in r.text
    with httpx.Client(base_url=server.url, timeout=30) as anon:
        for method in ("GET", "PROPFIND", "REPORT", "PUT", "DELETE"):
            r = anon.request(method, "/dav/alice/contacts/card.vcf")
            assert r.status_code == 401, method
            assert r.headers["www-authenticate"].startswith("Basic")


@pytest.fixture
def services(tmp_path: Path) -> Services:
    data = fresh_data(tmp_path, users=("alice", "bob"))
    from tests.faults.harness import launcher

    with launcher() as starter:
        populate(starter.start(data))
    services = Services.build(open_store(data))
    return services


def test_history_is_isolated_too(services: Services) -> None:
    """The history service (trash, undelete, rollback) refuses bob on alice's data."""
    bob = Actor("bob", "test")
    h = services.history
    with services.store.read() as r:
        contacts = r.get_collection("alice", "contacts")
        bob_contacts = r.get_collection("bob", "contacts")
        seq = r.max_seq()
    assert contacts is not None and bob_contacts is not None
    services.items.delete(Actor("alice", "test"), contacts, "card.vcf")
    with services.store.read() as r:
        seq = r.max_seq()
    calls = {
        "collection_by_id": lambda: h.collection_by_id(bob, contacts.id),
        "find_collection": lambda: h.find_collection(bob, "alice", "contacts"),
        "item_history": lambda: h.item_history(bob, contacts, "card.vcf"),
        "revision": lambda: h.revision(bob, contacts, "card.vcf", seq),
        "revision_body": lambda: h.revision_body(bob, contacts, "card.vcf", seq - 1),
        "trash": lambda: h.trash(bob, contacts),
        "trash_entries": lambda: h.trash_entries(bob, "alice"),
        "trash_entries_mixed": lambda: h.trash_entries(bob, "bob", contacts),
        "deleted_collections": lambda: h.deleted_collections(bob, "alice"),
        "collection_trash": lambda: h.collection_trash(bob, "alice"),
        "restore_revision": lambda: h.restore_revision(bob, contacts, "card.vcf", seq - 1),
        "undelete_item": lambda: h.undelete_item(bob, contacts, "card.vcf"),
        "undelete_collection": lambda: h.undelete_collection(bob, contacts),
        "plan_rollback": lambda: h.plan_rollback(bob, "alice", f"@{seq}"),
        "plan_rollback_mixed": lambda: h.plan_rollback(bob, "bob", f"@{seq}", contacts),
        "rollback": lambda: h.rollback(bob, "alice", f"@{seq}"),
        "rollback_mixed": lambda: h.rollback(bob, "bob", f"@{seq}", contacts),
    }
    try:
        for name, call in calls.items():
            try:
                result = call()
            except (Forbidden, NotFound):
                continue
            except Exception as exc:  # a refusal of another kind is still a refusal
                assert SECRET not in str(exc), name
                continue
            raise AssertionError(f"history.{name} let bob through: {result!r}")
        with services.store.read() as r:
            assert r.max_seq() == seq, "bob changed alice's history"
    finally:
        services.close()


def test_the_history_api_refuses_bob_on_alices_data(two_users: TwoUsers) -> None:
    """The JSON history API (/api/v1/) keeps the same boundary as DAV."""
    server = two_users.server
    item = "collection=contacts&item=card.vcf"
    with server.client("alice") as alice, server.client("bob") as bob:
        before = snapshot(alice)
        attempts: list[tuple[str, str, dict[str, object] | None]] = [
            ("GET", f"/api/v1/users/alice/history?{item}", None),
            ("GET", f"/api/v1/users/alice/history/1?{item}", None),
            ("GET", "/api/v1/users/alice/trash", None),
            ("GET", "/api/v1/users/alice/trash?collection=contacts", None),
            (
                "POST",
                "/api/v1/users/alice/restore",
                {"collection": "contacts", "item": "card.vcf", "seq": 1},
            ),
            ("POST", "/api/v1/users/alice/undelete", {"collection": "contacts"}),
            ("POST", "/api/v1/users/alice/rollback", {"to": "@1"}),
            ("POST", "/api/v1/users/alice/rollback", {"to": "@1", "dry_run": True}),
            ("GET", "/api/v1/alerts?user=alice", None),
            ("POST", "/api/v1/alerts/1/acknowledge", None),
        ]
        for method, url, body in attempts:
            r = bob.request(method, url, json=body)
            assert r.status_code in (403, 404), (method, url, r.status_code, r.text[:200])
            assert SECRET not in r.text, (method, url)
        assert snapshot(alice) == before
