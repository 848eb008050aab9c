"""`ItemResponses`, the fast writer of item responses, says exactly what the generic
property path (`props_for` + `response_markup`) says, for any property request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from homeport.dav.webdav import PropfindRequest, response_markup
from homeport.dav.xml import NSMAP_DECLARATIONS, clark
from homeport.errors import IntegrityError
from homeport.namespaces import APPLE_ICAL, CALDAV, CALENDARSERVER, CARDDAV, DAV
from homeport.server import props as P
from homeport.server.resources import ItemRes
from homeport.services import Actor, Services
from homeport.store.model import Collection, Item
from homeport.wiring import open_store
from tests.unit.dav.test_markup import semantic

ALICE = Actor("alice", "pytest")
CARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{fn}\r\nN:x;;;;\r\nEND:VCARD\r\n"
NAMES = ["a.vcf", "b & c.vcf", "d <e> é.vcf", "plain.vcf"]

DEAD_ONE = b'<X:color xmlns:X="urn:x-test">red &amp; <X:b>blue</X:b></X:color>'
DEAD_TWO = b'<Y:note xmlns:Y="urn:y-test" xml:lang="fr">\xc3\xa9t\xc3\xa9</Y:note>'


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, Collection]]:
    services = Services.build(open_store(Path(tmp_path_factory.mktemp("props"))))
    services.accounts.add("alice", "pw")
    coll = services.collections.find(ALICE, "alice", "contacts")
    assert coll is not None
    for i, name in enumerate(NAMES):
        body = CARD.format(uid=f"u{i}", fn=f"Name {i} & <co>").encode()
        services.items.put(ALICE, coll, name, iter((body,)), "text/vcard; charset=utf-8")
    services.items.set_dead_props(ALICE, coll, "a.vcf", {"{urn:x-test}color": DEAD_ONE}, [])
    services.items.set_dead_props(
        ALICE,
        coll,
        "d <e> é.vcf",
        {"{urn:x-test}color": DEAD_ONE, "{urn:y-test}note": DEAD_TWO},
        [],
    )
    yield services, coll
    services.close()


def wrap(response: str) -> etree._Element:
    return etree.fromstring(f"<r{NSMAP_DECLARATIONS}>{response}</r>")[0]


PROPERTY_NAMES = [
    *P.ITEM_TABLE,
    clark(CARDDAV, "address-data"),
    clark(CALDAV, "calendar-data"),
    clark(DAV, "displayname"),
    clark(CALENDARSERVER, "getctag"),
    clark(APPLE_ICAL, "calendar-color"),
    "{urn:x-test}color",
    "{urn:y-test}note",
    "{urn:z}absent",
    "nonamespace",
]

requests = st.one_of(
    st.builds(
        lambda names: PropfindRequest("prop", tuple(dict.fromkeys(names))),
        st.lists(st.sampled_from(PROPERTY_NAMES), max_size=8),
    ),
    st.builds(
        lambda names: PropfindRequest("allprop", include=tuple(dict.fromkeys(names))),
        st.lists(st.sampled_from(PROPERTY_NAMES), max_size=3),
    ),
    st.just(PropfindRequest("propname")),
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(requests, st.sampled_from(NAMES), st.booleans())
def test_item_responses_match_the_generic_property_path(
    world: tuple[Services, Collection], pf: PropfindRequest, name: str, with_data: bool
) -> None:
    services, coll = world
    ctx = P.PropContext(services, ALICE, 1_000_000)
    item = services.items.get(ALICE, coll, name)
    body = services.items.body(item)
    data_name = clark(CARDDAV, "address-data") if with_data else None

    fast = P.ItemResponses(ctx, coll, pf, data_name)
    dead = services.items.dead_props_many(coll, [name]).get(name) if fast.needs_dead else None
    got = fast.response(item, body if with_data else None, dead)

    extra = None
    if with_data:
        text = body.decode()
        extra = {
            clark(CARDDAV, "address-data"): lambda c, r: P.text_markup(
                clark(CARDDAV, "address-data"), text
            )
        }
    want = response_markup(
        P.item_path(coll, item), P.props_for(ctx, ItemRes(coll, item), pf, extra)
    )
    assert semantic(wrap(got)) == semantic(wrap(want))


def test_a_body_that_cannot_be_served_gives_that_response_an_error(
    world: tuple[Services, Collection],
) -> None:
    services, coll = world
    ctx = P.PropContext(services, ALICE, 1_000_000)
    item: Item = services.items.get(ALICE, coll, "b & c.vcf")
    fast = P.ItemResponses(
        ctx,
        coll,
        PropfindRequest("prop", (clark(DAV, "getetag"), clark(CARDDAV, "address-data"))),
        clark(CARDDAV, "address-data"),
    )
    response = wrap(fast.response(item, IntegrityError("stored body 0123 does not match")))
    assert response.findtext("{DAV:}href") == "/dav/alice/contacts/b%20%26%20c.vcf"
    assert response.findtext("{DAV:}status") == "HTTP/1.1 500 Internal Server Error"
    assert "does not match" in (response.findtext("{DAV:}responsedescription") or "")
    assert response.find("{DAV:}propstat") is None
    # Text XML cannot carry (a control character in a body) is an error for this item only.
    response = wrap(fast.response(item, b"BEGIN:VCARD\x01"))
    assert response.findtext("{DAV:}status") == "HTTP/1.1 500 Internal Server Error"
