"""REPORT handlers: sync-collection (RFC 6578), calendar-query/multiget and
free-busy-query (RFC 4791), addressbook-query/multiget (RFC 6352)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from lxml import etree
from starlette.responses import Response

from homeport.dav import caldav, carddav, sync, webdav
from homeport.dav.carddav import AddressDataRequest
from homeport.dav.xml import Markup, clark, text_markup
from homeport.errors import HomeportError, NotFound, ValidationError, WouldBlock
from homeport.formats.calquery import render_calendar_data
from homeport.formats.filters import CalendarDataRequest
from homeport.formats.icalendar import parse_calendar_object
from homeport.formats.vcard_convert import convert_vcard
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
from homeport.server.responses import multistatus, multistatus_response
from homeport.store.model import Change, Collection, CollectionKind, Item

if TYPE_CHECKING:
    from homeport.server.handlers import DavRequest, Handlers

CALENDAR_DATA = clark(CALDAV, "calendar-data")
ADDRESS_DATA = clark(CARDDAV, "address-data")


def _data_getter(name: str, body: bytes) -> dict[str, P.Getter]:
    text = body.decode("utf-8", errors="replace")

    def get(ctx: P.PropContext, res: Resource) -> Markup:
        return text_markup(name, text)

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


IN_LOOP_HREFS = 100
"""A multiget of at most this many hrefs may be answered in the event loop: 100 inline
bodies cost about 1.7 ms (DAVx5 asks for 10 to 100 at a time)."""

_MULTIGETS = (clark(CALDAV, "calendar-multiget"), clark(CARDDAV, "addressbook-multiget"))


def multiget_without_waiting(h: Handlers, req: DavRequest) -> Response | None:
    """`report` for a multiget when it is small (see `Handlers.answer_without_waiting`);
    None for every other report. `_multiget` raises `WouldBlock` when it is not."""
    root = req.xml()
    if root is None or root.tag not in _MULTIGETS:
        return None
    return report(h, req)


def _data_name(coll: Collection) -> str | None:
    """The property that carries an item's body in this collection's reports."""
    if coll.kind is CollectionKind.CALENDAR:
        return CALENDAR_DATA
    if coll.kind is CollectionKind.ADDRESSBOOK:
        return ADDRESS_DATA
    return None


def _wants_data(props: webdav.PropfindRequest, data_name: str | None) -> bool:
    if data_name is None:
        return False
    return data_name in (props.names if props.kind == "prop" else props.include)


DataRequest = CalendarDataRequest | AddressDataRequest
"""How a report asks for item bodies to be shaped."""

BATCH = 500
"""Items whose bodies and dead properties are read together in one step."""


def _item_batch_responses(
    h: Handlers,
    items: P.ItemResponses,
    batch: list[Item],
    bodies: dict[str, bytes | HomeportError] | None,
) -> list[str]:
    dead: dict[str, dict[str, bytes]] = {}
    if items.needs_dead and batch:
        dead = h.services.items.dead_props_many(items.coll, [i.name for i in batch])
    return [
        items.response(
            item,
            None if bodies is None else bodies[item.content_hash],
            dead.get(item.name),
        )
        for item in batch
    ]


def _sync_collection(h: Handlers, req: DavRequest, root: etree._Element, res: Resource) -> Response:
    sr = sync.parse_sync_collection(root)
    coll = _require_collection(res)
    token, pages = h.services.items.change_pages(req.actor, coll, sr.token, BATCH)
    data_name = _data_name(coll)
    wants_data = sr.props.kind == "prop" and data_name in sr.props.names
    items = P.ItemResponses(h.ctx(req), coll, sr.props, data_name if wants_data else None)
    limit = sr.limit

    def rendered(page: list[Change]) -> list[str]:
        present = [c.item for c in page if c.item is not None]
        bodies = h.services.items.read_bodies(present) if wants_data else None
        made = iter(_item_batch_responses(h, items, present, bodies))
        return [
            webdav.status_response_markup(item_href(coll, c.name), 404)
            if c.item is None
            else next(made)
            for c in page
        ]

    def responses() -> Iterator[str]:
        sent, last_seq, truncated = 0, None, False
        for page in pages:
            if limit is not None and sent + len(page) > limit:
                page, truncated = page[: limit - sent], True
            yield from rendered(page)
            sent += len(page)
            last_seq = page[-1].seq if page else last_seq
            if truncated:
                break
        tail = ""
        final = token
        if truncated:
            tail = webdav.status_response_markup(
                href_of(res), 507, error=(DAV, "number-of-matches-within-limits")
            )
            if last_seq is not None:
                final = h.services.items.sync_token(coll, last_seq)
        yield tail + webdav.sync_token_markup(final)

    # The first page is rendered before the first byte (its errors are still a clean
    # status); a large collection then streams a page at a time, so memory stays flat.
    body = responses()
    head = [next(body)]
    for part in body:
        head.append(part)
        if len(head) > BATCH:
            return multistatus_response(head, body)
    return multistatus_response(head)


def _item_data(h: Handlers, coll: Collection, item: Item, data: DataRequest) -> dict[str, P.Getter]:
    body = h.services.items.body(item)
    if coll.kind is CollectionKind.CALENDAR:
        return _data_getter(CALENDAR_DATA, _shaped(body, data))
    if coll.kind is CollectionKind.ADDRESSBOOK:
        return _data_getter(ADDRESS_DATA, _shaped(body, data))
    return {}


def _shaped(body: bytes, data: DataRequest) -> bytes:
    """A body as the request shapes it: calendar-data expanded or limited
    (RFC 4791 9.6), address-data in the vCard version asked for (RFC 6352 10.4)."""
    shape = _shaper(data)
    return body if shape is None else shape(body)


def _shaper(data: DataRequest) -> Callable[[bytes], bytes] | None:
    """`_shaped` for one request, worked out once for its many bodies (None: as stored).
    A body that cannot be shaped is served as stored."""
    convert: Callable[[bytes], bytes]
    if isinstance(data, AddressDataRequest):
        version = data.version

        def convert(body: bytes) -> bytes:
            return convert_vcard(body, version)

    elif data.expand or data.limit_recurrence_set:

        def convert(body: bytes) -> bytes:
            return render_calendar_data(parse_calendar_object(body), body, data)

    else:
        return None

    def shape(body: bytes) -> bytes:
        try:
            return convert(body)
        except HomeportError:
            return body

    return shape


def _multiget(
    h: Handlers,
    req: DavRequest,
    res: Resource,
    props: webdav.PropfindRequest,
    hrefs: webdav.Hrefs,
    data: DataRequest,
    kind: CollectionKind,
) -> Response:
    """calendar-multiget / addressbook-multiget: hrefs are grouped by collection, each
    collection is resolved once and its items and bodies are read in one batch."""
    if not h.services.store.may_wait() and (
        len(hrefs) > IN_LOOP_HREFS
        or (isinstance(data, CalendarDataRequest) and (data.expand or data.limit_recurrence_set))
    ):
        raise WouldBlock("a multiget too large (or expanding) to answer in the event loop")
    ctx = h.ctx(req)
    shape = _shaper(data)
    answers: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for key, path in hrefs:
        if path is None:
            answers[key] = webdav.status_response_markup(
                key, 404, description="this href names another server", quoted=True
            )
            continue
        parent, _, name = path.rpartition("/")
        if name:
            groups.setdefault(parent, []).append(name)
        else:
            answers[key] = _one_href(h, req, ctx, props, path, data, kind)
    for parent, names in groups.items():
        try:
            target = h.resolve(req, parent + "/")
        except HomeportError:  # not found, another user's, malformed: all just absent
            target = None
        coll = target.collection if isinstance(target, CollectionRes) else None
        if coll is None or coll.kind is not kind:
            for name in names:
                answers[f"{parent}/{name}"] = _one_href(
                    h, req, ctx, props, f"{parent}/{name}", data, kind
                )
            continue
        data_name = _data_name(coll)
        wants = _wants_data(props, data_name)
        items = P.ItemResponses(ctx, coll, props, data_name if wants else None)
        response = items.response
        prefix = parent + "/"
        for start in range(0, len(names), BATCH):
            chunk = names[start : start + BATCH]
            found = h.services.items.fetch(req.actor, coll, chunk, with_bodies=wants)
            dead: dict[str, dict[str, bytes]] = {}
            if items.needs_dead and found:
                dead = h.services.items.dead_props_many(coll, list(found))
            for name in chunk:
                got = found.get(name)
                if got is None:
                    # Not an item of this collection; maybe a sub-collection, or nothing.
                    path = prefix + name
                    answers[path] = _one_href(h, req, ctx, props, path, data, kind)
                    continue
                item, body = got
                if shape is not None and isinstance(body, bytes):
                    body = shape(body)
                answers[prefix + name] = response(item, body, dead.get(name) if dead else None)
    return multistatus_response([answers[key] for key, _ in hrefs])


def _one_href(
    h: Handlers,
    req: DavRequest,
    ctx: P.PropContext,
    props: webdav.PropfindRequest,
    path: str,
    data: DataRequest,
    kind: CollectionKind,
) -> str:
    """One multiget href resolved on its own (a collection, or something absent)."""
    try:
        target = h.resolve(req, path)
    except HomeportError:  # not found, another user's, malformed: all just absent
        return webdav.status_response_markup(path, 404)
    try:
        if isinstance(target, ItemRes) and target.collection.kind is kind:
            extra = _item_data(h, target.collection, target.item, data)
            return webdav.response_markup(path, h._props_for(ctx, target, props, extra))
        if isinstance(target, CollectionRes):
            return webdav.response_markup(path, h._props_for(ctx, target, props))
    except (HomeportError, ValueError) as exc:
        return P.error_response_markup(path, exc)
    return webdav.status_response_markup(path, 404)


def _calendar_multiget(
    h: Handlers, req: DavRequest, root: etree._Element, res: Resource
) -> Response:
    mg = caldav.parse_calendar_multiget(root, req.base_url)
    return _multiget(h, req, res, mg.props, mg.hrefs, mg.data, CollectionKind.CALENDAR)


def _addressbook_multiget(
    h: Handlers, req: DavRequest, root: etree._Element, res: Resource
) -> Response:
    mg = carddav.parse_addressbook_multiget(root, req.base_url)
    return _multiget(h, req, res, mg.props, mg.hrefs, mg.data, CollectionKind.ADDRESSBOOK)


def _query_responses(
    h: Handlers,
    req: DavRequest,
    coll: Collection,
    props: webdav.PropfindRequest,
    results: list[tuple[Item, bytes]],
    ms: webdav.Multistatus,
    data: DataRequest | None = None,
) -> None:
    data_name = _data_name(coll)
    items = P.ItemResponses(h.ctx(req), coll, props, data_name)
    shape = None if data is None else _shaper(data)
    for start in range(0, len(results), BATCH):
        batch = results[start : start + BATCH]
        dead: dict[str, dict[str, bytes]] = {}
        if items.needs_dead:
            dead = h.services.items.dead_props_many(coll, [i.name for i, _ in batch])
        for item, body in batch:
            if shape is not None and body:
                body = shape(body)
            ms.add_markup(items.response(item, body, dead.get(item.name)))


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
    ms = webdav.Multistatus()
    _query_responses(h, req, coll, cq.props, results, ms)
    return multistatus(ms)


def _addressbook_query(
    h: Handlers, req: DavRequest, root: etree._Element, res: Resource
) -> Response:
    aq = carddav.parse_addressbook_query(root)
    coll = _require_collection(res, CollectionKind.ADDRESSBOOK)
    limit = aq.query.limit
    results = h.services.items.addressbook_query(req.actor, coll, aq.query)
    ms = webdav.Multistatus()
    _query_responses(h, req, coll, aq.props, results, ms, aq.data)
    if limit is not None and len(results) >= limit:
        ms.add_status(href_of(res), 507, error=(DAV, "number-of-matches-within-limits"))
    return multistatus(ms)


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
