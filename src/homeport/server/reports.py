"""REPORT handlers: sync-collection (RFC 6578), calendar-query/multiget and
free-busy-query (RFC 4791), addressbook-query/multiget (RFC 6352)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lxml import etree
from starlette.responses import Response

from homeport.dav import caldav, carddav, sync, webdav
from homeport.dav.xml import clark, element
from homeport.errors import HomeportError, NotFound, ValidationError
from homeport.formats.calquery import render_calendar_data
from homeport.formats.filters import CalendarDataRequest
from homeport.formats.icalendar import parse_calendar_object
from homeport.namespaces import CALDAV, CARDDAV, DAV
from homeport.server import props as P
from homeport.server.resources import (
    CollectionRes,
    ItemRes,
    Missing,
    Resource,
    href_of,
    item_href,
)
from homeport.store.model import Collection, CollectionKind, Item

if TYPE_CHECKING:
    from homeport.server.handlers import DavRequest, Handlers

XML = "application/xml; charset=utf-8"
CALENDAR_DATA = clark(CALDAV, "calendar-data")
ADDRESS_DATA = clark(CARDDAV, "address-data")


def _data_getter(name: str, body: bytes) -> dict[str, P.Getter]:
    text = body.decode("utf-8", errors="replace")

    def get(ctx: P.PropContext, res: Resource) -> etree._Element:
        return element(name, text)

    return {name: get}


def _require_collection(res: Resource, kind: CollectionKind | None = None) -> Collection:
    if isinstance(res, CollectionRes) and (kind is None or res.collection.kind is kind):
        return res.collection
    raise ValidationError("this report is not supported on this resource", DAV, "supported-report")


def report(h: Handlers, req: DavRequest) -> Response:
    root = req.xml()
    if root is None:
        raise ValidationError("REPORT needs a body", DAV, "supported-report")
    handler = REPORTS.get(str(root.tag))
    if handler is None:
        raise ValidationError(f"unsupported report {root.tag}", DAV, "supported-report")
    res = h.resolve(req)
    if isinstance(res, Missing):
        raise NotFound("nothing here")
    if not isinstance(res, CollectionRes | ItemRes):
        raise ValidationError("reports work on collections and items", DAV, "supported-report")
    return handler(h, req, root, res)


def _sync_collection(h: Handlers, req: DavRequest, root: etree._Element, res: Resource) -> Response:
    sr = sync.parse_sync_collection(root)
    coll = _require_collection(res)
    changes, token = h.services.items.changes(req.actor, coll, sr.token)
    truncated = False
    if sr.limit is not None and len(changes) > sr.limit:
        changes = changes[: sr.limit]
        truncated = True
        token = h.services.items.sync_token(coll, changes[-1].seq) if changes else token
    ctx = h.ctx(req)
    ms = webdav.Multistatus()
    wants_data = sr.props.kind == "prop" and (
        CALENDAR_DATA in sr.props.names or ADDRESS_DATA in sr.props.names
    )
    for change in changes:
        href = item_href(coll, change.name)
        if change.item is None:
            ms.add_status(href, 404)
            continue
        extra = _item_data(h, coll, change.item, CalendarDataRequest()) if wants_data else None
        ms.add_propstat(href, h._props_for(ctx, ItemRes(coll, change.item), sr.props, extra))
    if truncated:
        ms.add_status(href_of(res), 507, error=(DAV, "number-of-matches-within-limits"))
    ms.sync_token = token
    return Response(ms.to_bytes(), 207, media_type=XML)


def _item_data(
    h: Handlers, coll: Collection, item: Item, data: CalendarDataRequest
) -> dict[str, P.Getter]:
    body = h.services.items.body(item)
    if coll.kind is CollectionKind.CALENDAR:
        if data.expand or data.limit_recurrence_set:
            try:
                body = render_calendar_data(parse_calendar_object(body), body, data)
            except HomeportError:
                pass
        return _data_getter(CALENDAR_DATA, body)
    if coll.kind is CollectionKind.ADDRESSBOOK:
        return _data_getter(ADDRESS_DATA, body)
    return {}


def _multiget(
    h: Handlers,
    req: DavRequest,
    res: Resource,
    props: webdav.PropfindRequest,
    paths: tuple[str, ...],
    data: CalendarDataRequest,
    kind: CollectionKind,
) -> Response:
    ctx = h.ctx(req)
    ms = webdav.Multistatus()
    for path in paths:
        try:
            target = h.resolve(req, path)
        except HomeportError:  # not found, another user's, malformed: all just absent
            ms.add_status(path, 404)
            continue
        if isinstance(target, ItemRes) and target.collection.kind is kind:
            extra = _item_data(h, target.collection, target.item, data)
            ms.add_propstat(path, h._props_for(ctx, target, props, extra))
        elif isinstance(target, CollectionRes):
            ms.add_propstat(path, h._props_for(ctx, target, props))
        else:
            ms.add_status(path, 404)
    return Response(ms.to_bytes(), 207, media_type=XML)


def _calendar_multiget(
    h: Handlers, req: DavRequest, root: etree._Element, res: Resource
) -> Response:
    mg = caldav.parse_calendar_multiget(root)
    return _multiget(h, req, res, mg.props, mg.paths, mg.data, CollectionKind.CALENDAR)


def _addressbook_multiget(
    h: Handlers, req: DavRequest, root: etree._Element, res: Resource
) -> Response:
    mg = carddav.parse_addressbook_multiget(root)
    return _multiget(
        h, req, res, mg.props, mg.paths, CalendarDataRequest(), CollectionKind.ADDRESSBOOK
    )


def _calendar_query(h: Handlers, req: DavRequest, root: etree._Element, res: Resource) -> Response:
    cq = caldav.parse_calendar_query(root)
    if isinstance(res, ItemRes):
        coll = res.collection
    else:
        coll = _require_collection(res, CollectionKind.CALENDAR)
    with_data = cq.props.kind != "prop" or CALENDAR_DATA in cq.props.names
    results = h.services.items.calendar_query(req.actor, coll, cq.query, with_data=with_data)
    if isinstance(res, ItemRes):
        results = [(i, b) for i, b in results if i.name == res.item.name]
    ctx = h.ctx(req)
    ms = webdav.Multistatus()
    for item, body in results:
        extra = _data_getter(CALENDAR_DATA, body)
        ms.add_propstat(
            item_href(coll, item.name), h._props_for(ctx, ItemRes(coll, item), cq.props, extra)
        )
    return Response(ms.to_bytes(), 207, media_type=XML)


def _addressbook_query(
    h: Handlers, req: DavRequest, root: etree._Element, res: Resource
) -> Response:
    aq = carddav.parse_addressbook_query(root)
    coll = _require_collection(res, CollectionKind.ADDRESSBOOK)
    limit = aq.query.limit
    results = h.services.items.addressbook_query(req.actor, coll, aq.query)
    ctx = h.ctx(req)
    ms = webdav.Multistatus()
    for item, body in results:
        extra = _data_getter(ADDRESS_DATA, body)
        ms.add_propstat(
            item_href(coll, item.name), h._props_for(ctx, ItemRes(coll, item), aq.props, extra)
        )
    if limit is not None and len(results) >= limit:
        ms.add_status(href_of(res), 507, error=(DAV, "number-of-matches-within-limits"))
    return Response(ms.to_bytes(), 207, media_type=XML)


def _free_busy(h: Handlers, req: DavRequest, root: etree._Element, res: Resource) -> Response:
    rng = caldav.parse_free_busy_query(root)
    coll = _require_collection(res, CollectionKind.CALENDAR)
    body = h.services.items.freebusy(req.actor, coll, rng)
    return Response(body, 200, media_type="text/calendar; charset=utf-8")


Report = Callable[["Handlers", "DavRequest", etree._Element, Resource], Response]

REPORTS: dict[str, Report] = {
    clark(DAV, "sync-collection"): _sync_collection,
    clark(CALDAV, "calendar-multiget"): _calendar_multiget,
    clark(CALDAV, "calendar-query"): _calendar_query,
    clark(CALDAV, "free-busy-query"): _free_busy,
    clark(CARDDAV, "addressbook-multiget"): _addressbook_multiget,
    clark(CARDDAV, "addressbook-query"): _addressbook_query,
}
