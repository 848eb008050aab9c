"""Creating collections with properties: extended MKCOL (RFC 5689) and MKCALENDAR.

* RFC 5689 section 5.1: the DAV:mkcol request body, whose DAV:set elements give the
  new collection's DAV:resourcetype (e.g. a CardDAV address book) and other properties;
  section 5.2: the DAV:mkcol-response body returned when properties fail.
* RFC 4791 section 5.3.1: the CALDAV:mkcalendar body (same DAV:set content; the
  resource type is implied) and section 5.3.1.2's CALDAV:mkcalendar-response.

Both parse to one `MkcolRequest`, so the handler creates every kind of collection the
same way: check `resourcetypes`, then apply `props` as a PROPPATCH would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lxml import etree

from homeport import namespaces
from homeport.dav.webdav import PropSet, PropValue, append_propstats, parse_set_props
from homeport.dav.xml import children, clark, element, require_tag, serialize
from homeport.errors import InvalidRequest

COLLECTION = clark(namespaces.DAV, "collection")
CALENDAR = clark(namespaces.CALDAV, "calendar")
ADDRESSBOOK = clark(namespaces.CARDDAV, "addressbook")

_RESOURCETYPE = clark(namespaces.DAV, "resourcetype")
_SET = clark(namespaces.DAV, "set")
_PROP = clark(namespaces.DAV, "prop")


@dataclass(frozen=True)
class MkcolRequest:
    """What to create: the resource types (Clark names, DAV:collection first) and properties.

    `props` never contains DAV:resourcetype; it is folded into `resourcetypes`.
    """

    resourcetypes: tuple[str, ...] = (COLLECTION,)
    props: list[PropSet] = field(default_factory=list)


def _parse_sets(root: etree._Element) -> tuple[tuple[str, ...] | None, list[PropSet]]:
    sets = [child for child in children(root) if child.tag == _SET]
    if not sets:
        raise InvalidRequest(f"{root.tag} body needs at least one DAV:set")
    resourcetypes: tuple[str, ...] | None = None
    props: list[PropSet] = []
    for set_elem in sets:
        prop_elems = [child for child in children(set_elem) if child.tag == _PROP]
        if not prop_elems:
            raise InvalidRequest("DAV:set without a DAV:prop")
        for prop in prop_elems:
            for prop_set in parse_set_props(prop):
                if prop_set.name == _RESOURCETYPE:
                    names = [child.tag for child in children(prop_set.value)]
                    resourcetypes = tuple(dict.fromkeys(str(name) for name in names))
                else:
                    props.append(prop_set)
    return resourcetypes, props


def _with_collection_first(types: Iterable[str]) -> tuple[str, ...]:
    rest = [name for name in dict.fromkeys(types) if name != COLLECTION]
    return (COLLECTION, *rest)


def parse_mkcol(root: etree._Element | None) -> MkcolRequest:
    """Parse an extended MKCOL body (RFC 5689 section 5.1); no body is a plain collection.

    A DAV:resourcetype without DAV:collection gets it added: MKCOL only ever makes
    collections.
    """
    if root is None:
        return MkcolRequest()
    require_tag(root, clark(namespaces.DAV, "mkcol"))
    resourcetypes, props = _parse_sets(root)
    return MkcolRequest(_with_collection_first(resourcetypes or ()), props)


def parse_mkcalendar(root: etree._Element | None) -> MkcolRequest:
    """Parse a MKCALENDAR body (RFC 4791 section 5.3.1); the result is always a calendar."""
    if root is None:
        return MkcolRequest((COLLECTION, CALENDAR))
    require_tag(root, clark(namespaces.CALDAV, "mkcalendar"))
    resourcetypes, props = _parse_sets(root)
    return MkcolRequest(_with_collection_first((CALENDAR, *(resourcetypes or ()))), props)


def mkcol_response(
    props_by_status: Mapping[int, Iterable[PropValue]], *, mkcalendar: bool = False
) -> bytes:
    """The body of a failed extended MKCOL or MKCALENDAR: each property with its status.

    Failed properties carry their own status (403, 409, ...) and the rest 424, as in a
    PROPPATCH multistatus (RFC 5689 section 5.2, RFC 4791 section 5.3.1.2).
    """
    name = (
        clark(namespaces.CALDAV, "mkcalendar-response")
        if mkcalendar
        else clark(namespaces.DAV, "mkcol-response")
    )
    root = element(name)
    append_propstats(root, props_by_status)
    return serialize(root)
