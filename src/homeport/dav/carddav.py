"""CardDAV (RFC 6352): the address book REPORT bodies and the address-data element.

Sections implemented here:

* 8.6 / 10.3 CARDDAV:addressbook-query (`parse_addressbook_query`), with 10.5 filter,
  prop-filter, param-filter, is-not-defined, text-match (10.5.1-10.5.4) and 8.6.1 /
  10.6 limit with nresults;
* 8.7 / 10.7 CARDDAV:addressbook-multiget (`parse_addressbook_multiget`);
* 10.4 CARDDAV:address-data in a request: content-type, version and the vCard
  properties asked for (`AddressDataRequest`).

Section 8.6 defines three preconditions, raised as `ValidationError`:
supported-address-data, supported-filter, supported-collation. A body that is simply
malformed raises `InvalidRequest`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from lxml import etree

from homeport import namespaces
from homeport.dav.caldav import parse_text_match
from homeport.dav.webdav import (
    Hrefs,
    PropfindRequest,
    parse_nresults,
    parse_prop_selection,
    request_hrefs,
)
from homeport.dav.xml import children, clark, element, require_tag
from homeport.errors import InvalidRequest, ValidationError
from homeport.formats.filters import AddressbookQuery, ParamFilter, PropFilter, TextMatch

CARDDAV: Final = namespaces.CARDDAV

SUPPORTED_VERSIONS: Final = ("3.0", "4.0")
"""vCard versions a client may ask for in address-data (8.6 supported-address-data)."""

_ADDRESS_DATA = clark(CARDDAV, "address-data")
_FILTER = clark(CARDDAV, "filter")
_PROP_FILTER = clark(CARDDAV, "prop-filter")
_PARAM_FILTER = clark(CARDDAV, "param-filter")
_IS_NOT_DEFINED = clark(CARDDAV, "is-not-defined")
_TEXT_MATCH = clark(CARDDAV, "text-match")
_LIMITS = (clark(CARDDAV, "limit"), clark(namespaces.DAV, "limit"))
_DAV_PROP = clark(namespaces.DAV, "prop")


@dataclass(frozen=True)
class AddressDataRequest:
    """How address-data is to be returned (section 10.4).

    `props` lists the vCard property names asked for (upper-case); empty means the
    whole vCard. Returning more than asked is allowed, so a handler may ignore it.
    """

    content_type: str = "text/vcard"
    version: str = "3.0"
    props: tuple[str, ...] = ()


@dataclass(frozen=True)
class AddressbookQueryRequest:
    """An addressbook-query REPORT: properties to return for the cards `query` selects."""

    props: PropfindRequest
    query: AddressbookQuery = field(default_factory=AddressbookQuery)
    data: AddressDataRequest = field(default_factory=AddressDataRequest)


@dataclass(frozen=True)
class AddressbookMultigetRequest:
    """An addressbook-multiget REPORT: properties for each href (`request_hrefs`)."""

    props: PropfindRequest
    hrefs: Hrefs
    data: AddressDataRequest = field(default_factory=AddressDataRequest)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.hrefs)


def _unsupported_filter(message: str) -> ValidationError:
    return ValidationError(message, CARDDAV, "supported-filter")


def parse_address_data(elem: etree._Element | None) -> AddressDataRequest:
    """Read a CARDDAV:address-data element of a request's DAV:prop (section 10.4)."""
    if elem is None:
        return AddressDataRequest()
    content_type = (elem.get("content-type") or "text/vcard").strip().lower()
    version = (elem.get("version") or "3.0").strip()
    if content_type != "text/vcard" or version not in SUPPORTED_VERSIONS:
        raise ValidationError(
            f"address data is available as text/vcard 3.0 or 4.0, not {content_type} {version}",
            CARDDAV,
            "supported-address-data",
        )
    names: list[str] = []
    for child in children(elem):
        if child.tag == clark(CARDDAV, "allprop"):
            return AddressDataRequest(content_type, version)
        if child.tag == clark(CARDDAV, "prop"):
            name = (child.get("name") or "").strip().upper()
            if not name:
                raise InvalidRequest("CARDDAV:prop in address-data needs a name attribute")
            names.append(name)
    return AddressDataRequest(content_type, version, tuple(dict.fromkeys(names)))


def _address_data_in(root: etree._Element) -> etree._Element | None:
    for prop in children(root, _DAV_PROP):
        for child in children(prop, _ADDRESS_DATA):
            return child
    return None


def _test_of(elem: etree._Element) -> Literal["anyof", "allof"]:
    test = (elem.get("test") or "anyof").strip().lower()
    if test == "anyof":
        return "anyof"
    if test == "allof":
        return "allof"
    raise InvalidRequest(f"test must be anyof or allof, not {test!r}")


def _name_of(elem: etree._Element) -> str:
    name = (elem.get("name") or "").strip()
    if not name:
        raise InvalidRequest(f"{elem.tag} needs a name attribute")
    return name.upper()


def _filter_children(elem: etree._Element, allowed: tuple[str, ...]) -> list[etree._Element]:
    """The CardDAV children of a filter element; one out of place is an unsupported filter."""
    found: list[etree._Element] = []
    for child in children(elem):
        tag = str(child.tag)
        if tag in allowed:
            found.append(child)
        elif tag.startswith(f"{{{CARDDAV}}}"):
            raise _unsupported_filter(f"{tag} is not allowed inside {elem.tag}")
    return found


def _text_match(elem: etree._Element) -> TextMatch:
    # CardDAV's default collation differs from CalDAV's (section 10.5.4).
    return parse_text_match(elem, namespace=CARDDAV, default_collation="i;unicode-casemap")


def _param_filter(elem: etree._Element) -> ParamFilter:
    name = _name_of(elem)
    kids = _filter_children(elem, (_IS_NOT_DEFINED, _TEXT_MATCH))
    if len(kids) > 1:
        raise InvalidRequest(f"param-filter {name} has more than one test")
    if kids and kids[0].tag == _IS_NOT_DEFINED:
        return ParamFilter(name, is_not_defined=True)
    return ParamFilter(name, text_match=_text_match(kids[0]) if kids else None)


def _prop_filter(elem: etree._Element) -> PropFilter:
    name = _name_of(elem)
    test = _test_of(elem)
    kids = _filter_children(elem, (_IS_NOT_DEFINED, _TEXT_MATCH, _PARAM_FILTER))
    if any(child.tag == _IS_NOT_DEFINED for child in kids):
        if len(kids) > 1:
            raise InvalidRequest(f"prop-filter {name}: is-not-defined must stand alone")
        return PropFilter(name, is_not_defined=True, test=test)
    return PropFilter(
        name,
        text_matches=tuple(_text_match(k) for k in kids if k.tag == _TEXT_MATCH),
        param_filters=tuple(_param_filter(k) for k in kids if k.tag == _PARAM_FILTER),
        test=test,
    )


def _limit(root: etree._Element) -> int | None:
    limits = [child for child in children(root) if child.tag in _LIMITS]
    if not limits:
        return None
    if len(limits) > 1:
        raise InvalidRequest("more than one limit element")
    return parse_nresults(limits[0])


def parse_addressbook_query(root: etree._Element | None) -> AddressbookQueryRequest:
    """Parse a CARDDAV:addressbook-query body (sections 8.6 and 10.3)."""
    if root is None:
        raise InvalidRequest("addressbook-query needs a body")
    require_tag(root, clark(CARDDAV, "addressbook-query"))
    filters = [child for child in children(root) if child.tag == _FILTER]
    if len(filters) != 1:
        raise InvalidRequest("addressbook-query must hold exactly one CARDDAV:filter")
    filter_elem = filters[0]
    query = AddressbookQuery(
        prop_filters=tuple(
            _prop_filter(child) for child in _filter_children(filter_elem, (_PROP_FILTER,))
        ),
        test=_test_of(filter_elem),
        limit=_limit(root),
    )
    props = parse_prop_selection(root) or PropfindRequest("prop")
    return AddressbookQueryRequest(props, query, parse_address_data(_address_data_in(root)))


def parse_addressbook_multiget(
    root: etree._Element | None, origin: str | None = None
) -> AddressbookMultigetRequest:
    """Parse a CARDDAV:addressbook-multiget body (sections 8.7 and 10.7); `origin` as
    for `request_hrefs`."""
    if root is None:
        raise InvalidRequest("addressbook-multiget needs a body")
    require_tag(root, clark(CARDDAV, "addressbook-multiget"))
    return AddressbookMultigetRequest(
        parse_prop_selection(root) or PropfindRequest("prop"),
        request_hrefs(root, origin),
        parse_address_data(_address_data_in(root)),
    )


def address_data_element(vcard: str) -> etree._Element:
    """The CARDDAV:address-data property holding a vCard's text."""
    return element(_ADDRESS_DATA, vcard)
