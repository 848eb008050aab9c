"""RFC 6352 REPORT bodies from real clients and the RFC's own examples."""

from __future__ import annotations

import pytest
from lxml import etree

from homeport.dav.carddav import (
    AddressDataRequest,
    address_data_element,
    parse_addressbook_multiget,
    parse_addressbook_query,
)
from homeport.dav.webdav import PropfindRequest
from homeport.dav.xml import parse_body, serialize
from homeport.errors import InvalidRequest, ValidationError
from homeport.formats.filters import ParamFilter, PropFilter, TextMatch

CARDDAV = "urn:ietf:params:xml:ns:carddav"


def parse(body: str) -> etree._Element:
    root = parse_body(body.encode())
    assert root is not None
    return root


RFC6352_8_6_3 = """<?xml version="1.0" encoding="utf-8" ?>
<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
  <D:prop>
    <D:getetag/>
    <C:address-data>
      <C:prop name="VERSION"/>
      <C:prop name="UID"/>
      <C:prop name="NICKNAME"/>
      <C:prop name="EMAIL"/>
      <C:prop name="FN"/>
    </C:address-data>
  </D:prop>
  <C:filter>
    <C:prop-filter name="NICKNAME">
      <C:text-match collation="i;unicode-casemap" match-type="equals">me</C:text-match>
    </C:prop-filter>
  </C:filter>
</C:addressbook-query>
"""

RFC6352_8_6_4_LIMIT = """<?xml version="1.0" encoding="utf-8" ?>
<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
  <D:prop>
    <D:getetag/>
    <C:address-data>
      <C:prop name="VERSION"/>
      <C:prop name="UID"/>
      <C:prop name="NICKNAME"/>
      <C:prop name="EMAIL"/>
      <C:prop name="FN"/>
    </C:address-data>
  </D:prop>
  <C:filter test="anyof">
    <C:prop-filter name="FN">
      <C:text-match collation="i;unicode-casemap" match-type="contains">daboo</C:text-match>
    </C:prop-filter>
    <C:prop-filter name="EMAIL">
      <C:text-match collation="i;unicode-casemap" match-type="contains">daboo</C:text-match>
    </C:prop-filter>
  </C:filter>
  <C:limit>
    <C:nresults>2</C:nresults>
  </C:limit>
</C:addressbook-query>
"""

EVOLUTION_UID_QUERY = """<?xml version="1.0" encoding="utf-8"?>
<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
 <D:prop><D:getetag/><C:address-data/></D:prop>
 <C:filter test="allof">
  <C:prop-filter name="UID" test="allof">
   <C:text-match collation="i;octet" negate-condition="no"
       match-type="equals">abc-123</C:text-match>
  </C:prop-filter>
  <C:prop-filter name="EMAIL">
   <C:param-filter name="TYPE">
    <C:text-match match-type="starts-with">work</C:text-match>
   </C:param-filter>
   <C:param-filter name="PREF"><C:is-not-defined/></C:param-filter>
  </C:prop-filter>
  <C:prop-filter name="X-DELETED"><C:is-not-defined/></C:prop-filter>
 </C:filter>
</C:addressbook-query>
"""

DAVX5_MULTIGET = (
    "<?xml version='1.0' encoding='UTF-8' ?><CARD:addressbook-multiget xmlns=\"DAV:\" "
    'xmlns:CARD="urn:ietf:params:xml:ns:carddav"><prop><getcontenttype /><getetag />'
    '<CARD:address-data content-type="text/vcard" version="4.0" /></prop>'
    "<href>/dav/alice/contacts/2f1e.vcf</href><href>/dav/alice/contacts/J%C3%BCrgen.vcf</href>"
    "</CARD:addressbook-multiget>"
)

IOS_MULTIGET = """<?xml version="1.0" encoding="UTF-8"?>
<B:addressbook-multiget xmlns:B="urn:ietf:params:xml:ns:carddav">
  <A:prop xmlns:A="DAV:">
    <A:getetag/>
    <B:address-data/>
  </A:prop>
  <A:href xmlns:A="DAV:">/dav/alice/contacts/ABCD-1234.vcf</A:href>
</B:addressbook-multiget>
"""

VDIRSYNCER_MULTIGET = """<?xml version="1.0" encoding="utf-8" ?>
<C:addressbook-multiget xmlns="DAV:"
    xmlns:C="urn:ietf:params:xml:ns:carddav">
    <prop>
        <getetag/>
        <C:address-data/>
    </prop>
    <href>/dav/alice/contacts/a.vcf</href>
</C:addressbook-multiget>
"""


def test_rfc_equals_query_with_partial_address_data() -> None:
    request = parse_addressbook_query(parse(RFC6352_8_6_3))
    assert request.props.names == ("{DAV:}getetag", f"{{{CARDDAV}}}address-data")
    assert request.data == AddressDataRequest(props=("VERSION", "UID", "NICKNAME", "EMAIL", "FN"))
    assert request.query.prop_filters == (
        PropFilter(
            "NICKNAME",
            text_matches=(TextMatch("me", collation="i;unicode-casemap", match_type="equals"),),
        ),
    )
    assert request.query.limit is None
    assert request.query.test == "anyof"


def test_rfc_limit() -> None:
    request = parse_addressbook_query(parse(RFC6352_8_6_4_LIMIT))
    assert request.query.limit == 2
    assert [f.name for f in request.query.prop_filters] == ["FN", "EMAIL"]


def test_evolution_query_with_params_and_allof() -> None:
    query = parse_addressbook_query(parse(EVOLUTION_UID_QUERY)).query
    assert query.test == "allof"
    uid, email, deleted = query.prop_filters
    assert uid.test == "allof"
    assert uid.text_matches == (TextMatch("abc-123", collation="i;octet", match_type="equals"),)
    assert email.param_filters == (
        ParamFilter(
            "TYPE",
            text_match=TextMatch("work", collation="i;unicode-casemap", match_type="starts-with"),
        ),
        ParamFilter("PREF", is_not_defined=True),
    )
    assert deleted == PropFilter("X-DELETED", is_not_defined=True)


def test_empty_filter_matches_everything() -> None:
    body = (
        '<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">'
        "<D:prop><D:getetag/></D:prop><C:filter/></C:addressbook-query>"
    )
    request = parse_addressbook_query(parse(body))
    assert request.query.prop_filters == ()
    assert request.props == PropfindRequest("prop", ("{DAV:}getetag",))


def test_multigets() -> None:
    request = parse_addressbook_multiget(parse(DAVX5_MULTIGET))
    assert request.data == AddressDataRequest(version="4.0")
    assert request.paths == ("/dav/alice/contacts/2f1e.vcf", "/dav/alice/contacts/Jürgen.vcf")
    request = parse_addressbook_multiget(parse(IOS_MULTIGET))
    assert request.paths == ("/dav/alice/contacts/ABCD-1234.vcf",)
    assert request.data == AddressDataRequest()
    request = parse_addressbook_multiget(parse(VDIRSYNCER_MULTIGET))
    assert request.props.names == ("{DAV:}getetag", f"{{{CARDDAV}}}address-data")


def query_with(filter_xml: str, extra: str = "", prop: str = "") -> str:
    return (
        '<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">'
        f"{prop}<C:filter>{filter_xml}</C:filter>{extra}</C:addressbook-query>"
    )


@pytest.mark.parametrize(
    ("body", "precondition"),
    [
        (
            query_with(
                '<C:prop-filter name="FN"><C:text-match collation="i;x">a</C:text-match>'
                "</C:prop-filter>"
            ),
            "supported-collation",
        ),
        (query_with('<C:comp-filter name="VCARD"/>'), "supported-filter"),
        (
            query_with(
                "", prop='<D:prop><C:address-data content-type="application/vcard+json"/></D:prop>'
            ),
            "supported-address-data",
        ),
        (
            query_with("", prop='<D:prop><C:address-data version="2.1"/></D:prop>'),
            "supported-address-data",
        ),
    ],
)
def test_preconditions(body: str, precondition: str) -> None:
    root = parse(body)
    with pytest.raises(ValidationError) as info:
        parse_addressbook_query(root)
    assert (info.value.namespace, info.value.precondition) == (CARDDAV, precondition)


@pytest.mark.parametrize(
    "body",
    [
        '<C:addressbook-query xmlns:C="urn:ietf:params:xml:ns:carddav"/>',
        query_with("", extra="<C:limit><C:nresults>0</C:nresults></C:limit>"),
        query_with("", extra="<C:limit><C:nresults>-3</C:nresults></C:limit>"),
        query_with("", extra="<C:limit><C:nresults>x</C:nresults></C:limit>"),
        query_with("", extra="<C:limit><C:nresults>9999999999999</C:nresults></C:limit>"),
        query_with("", extra="<C:limit/>"),
        query_with('<C:prop-filter name="FN" test="oneof"/>'),
        query_with("<C:prop-filter/>"),
        query_with(
            '<C:prop-filter name="FN"><C:is-not-defined/><C:text-match>a</C:text-match>'
            "</C:prop-filter>"
        ),
        query_with(
            '<C:prop-filter name="FN"><C:text-match match-type="regex">a</C:text-match>'
            "</C:prop-filter>"
        ),
        query_with(
            '<C:prop-filter name="FN"><C:param-filter name="TYPE"><C:is-not-defined/>'
            "<C:text-match>a</C:text-match></C:param-filter></C:prop-filter>"
        ),
        query_with("", prop="<D:prop><C:address-data><C:prop/></C:address-data></D:prop>"),
    ],
)
def test_malformed_queries(body: str) -> None:
    root = parse(body)
    with pytest.raises(InvalidRequest):
        parse_addressbook_query(root)


def test_missing_bodies_and_hrefs() -> None:
    with pytest.raises(InvalidRequest):
        parse_addressbook_query(None)
    with pytest.raises(InvalidRequest):
        parse_addressbook_multiget(None)
    with pytest.raises(InvalidRequest):
        parse_addressbook_multiget(
            parse('<C:addressbook-multiget xmlns:C="urn:ietf:params:xml:ns:carddav"/>')
        )


def test_address_data_element() -> None:
    vcard = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Zoë <z@example.com>\r\nEND:VCARD\r\n"
    reparsed = etree.fromstring(serialize(address_data_element(vcard)))
    assert reparsed.tag == f"{{{CARDDAV}}}address-data"
    assert reparsed.text == vcard
