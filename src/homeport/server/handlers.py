"""WebDAV method handlers (RFC 4918, 4791, 5689, 6352): parse with `homeport.dav`,
act through `homeport.services`, answer with `homeport.dav` builders.

Handlers are synchronous and run in a worker thread (the services block on SQLite);
the ASGI layer in `homeport.server.app` feeds them the request and streams bodies.
Small reads (`answer_without_waiting`) and PUT/DELETE (`write_steps`) are also written
so that the event loop can run them without blocking; anything that would wait raises
`WouldBlock` there and is redone in a worker thread.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterator
from dataclasses import dataclass, field

from lxml import etree
from starlette.responses import Response, StreamingResponse

from homeport.dav import extmkcol, webdav
from homeport.dav.caldav import parse_supported_calendar_component_set
from homeport.dav.webdav import PropRemove, PropSet
from homeport.dav.xml import clark, parse_body
from homeport.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    HomeportError,
    IntegrityError,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
    ValidationError,
)
from homeport.namespaces import CALDAV, CARDDAV, DAV
from homeport.server import props as P
from homeport.server.resources import (
    CollectionRes,
    Home,
    ItemRes,
    Missing,
    Resource,
    Root,
    href_of,
    resolve,
)
from homeport.server.responses import multistatus, multistatus_response
from homeport.services import Services
from homeport.services.accounts import Actor
from homeport.services.items import Preconditions
from homeport.store.core import CommitSteps
from homeport.store.model import CollectionKind, CollectionProps, Item

DAV_HEADER = "1, 3, calendar-access, addressbook, extended-mkcol"
ALLOW = (
    "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, MKCALENDAR, COPY, MOVE, REPORT"
)


@dataclass
class DavRequest:
    """What a handler needs of the HTTP request, already decoded and checked."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    base_url: str
    actor: Actor
    max_xml_size: int
    max_object_size: int
    chunks: Iterator[bytes] | None = None  # PUT bodies stream
    _parsed: list[etree._Element | None] = field(default_factory=list, repr=False)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def xml(self) -> etree._Element | None:
        """The body's root element, parsed once (an attempt in the event loop and its
        retry in a worker share it; an error is raised again by each call)."""
        if not self._parsed:
            self._parsed.append(parse_body(self.body, self.max_xml_size))
        return self._parsed[0]


WHOLE_BODY_MAX = 4 * 1024 * 1024
"""Bodies up to this size are read whole, verified once and sent with one write."""

LISTING_PAGE = 500
"""Members read and written per step of a PROPFIND Depth 1 (the rest streams)."""


def etag_list(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    tags = tuple(t.strip() for t in value.split(",") if t.strip())
    return tags


def preconditions(req: DavRequest, if_etag: str | None = None) -> Preconditions:
    """The conditions a write checks inside its transaction.

    `if_etag` is the entity tag an RFC 4918 If header relied on for the request URI
    (see `Handlers.preconditions`): it is checked again atomically, like If-Match.
    """
    if_match = etag_list(req.header("if-match"))
    if if_etag is not None and (if_match is None or "*" in if_match):
        if_match = (if_etag,)
    inm = etag_list(req.header("if-none-match")) or ()
    # Weak comparison for If-None-Match (RFC 9110 13.1.2): W/"x" matches "x".
    inm = tuple(t[2:] if t.startswith("W/") else t for t in inm)
    return Preconditions(
        if_match=if_match,
        if_none_match_any="*" in inm,
        if_none_match=tuple(t for t in inm if t != "*"),
    )


IN_LOOP_MAX = 65536
"""The largest inline body `answer_without_waiting` hashes and sends in the event loop."""


class Handlers:
    def __init__(self, services: Services) -> None:
        self.services = services

    def ctx(self, req: DavRequest) -> P.PropContext:
        return P.PropContext(self.services, req.actor, req.max_object_size)

    def dispatch(self, req: DavRequest) -> Response:
        method = getattr(self, "do_" + req.method.upper(), None)
        if method is None:
            return Response(
                f"{req.method} is not supported here\n",
                405,
                {"Allow": ALLOW},
                media_type="text/plain",
            )
        self._check_if_header(req)
        return method(req)

    # -- the If header (RFC 4918 section 10.4) --------------------------------------

    def _etag_of(self, req: DavRequest, path: str) -> str | None:
        """A resource's ETag for the If header; None for a collection (no ETag here),
        a missing resource, or one the actor may not see (nothing is revealed)."""
        try:
            res = self.resolve(req, path)
        except HomeportError:
            return None
        return res.item.etag if isinstance(res, ItemRes) else None

    def _check_if_header(self, req: DavRequest) -> None:
        """400 for a malformed If header, 412 when none of its lists holds (10.4.1).

        Homeport has no locks: a state-token condition is false, ``Not <token>`` true.
        """
        value = req.header("if")
        if value is None:
            return
        header = webdav.parse_if_header(value)
        if not header.evaluate(req.path, lambda path: self._etag_of(req, path)):
            raise PreconditionFailed("the conditions of the If header do not hold")

    def preconditions(self, req: DavRequest) -> Preconditions:
        """`preconditions(req)`, plus the If header's entity tag for the request URI.

        The If header was evaluated before the handler ran (`dispatch`); a list that
        held because the target has a given ETag is checked once more inside the write
        transaction, so a change committed in between still fails with 412.
        """
        value = req.header("if")
        if value is None:
            return preconditions(req)
        header = webdav.parse_if_header(value)
        target = req.path.rstrip("/")
        for if_list in header.lists:
            path = req.path if if_list.resource is None else if_list.resource
            current = self._etag_of(req, path)
            if not all(c.holds(current) for c in if_list.conditions):
                continue
            if path.rstrip("/") != target:
                return preconditions(req)  # held through another resource
            etag = next((c.etag for c in if_list.conditions if c.etag and not c.negated), None)
            return preconditions(req, etag)
        return preconditions(req)

    def resolve(self, req: DavRequest, path: str | None = None) -> Resource:
        return resolve(self.services, req.actor, req.path if path is None else path)

    # -- OPTIONS, GET, HEAD ---------------------------------------------------------

    def do_OPTIONS(self, req: DavRequest) -> Response:
        return Response(b"", 200, {"DAV": DAV_HEADER, "Allow": ALLOW, "Content-Length": "0"})

    def do_HEAD(self, req: DavRequest) -> Response:
        return self.do_GET(req, head=True)

    def answer_without_waiting(self, req: DavRequest) -> Response | None:
        """A request answered without blocking, or None when it needs a worker thread.

        Call inside `Store.without_waiting()`. What is cheap and bounded is answered
        here: a GET or HEAD of an item whose body is stored inline, a multiget of a few
        items, a refusal. A listing, a body in a file, a large or expanding multiget, and
        any read that raises `WouldBlock` are left to `dispatch`.
        """
        if req.method not in ("GET", "HEAD", "REPORT"):
            return None
        self._check_if_header(req)  # as `dispatch` does first
        if req.method == "REPORT":
            from homeport.server.reports import multiget_without_waiting

            return multiget_without_waiting(self, req)
        head = req.method == "HEAD"
        res = self._get_target(req, head)
        if isinstance(res, ItemRes) and (
            head or (res.inline is not None and res.item.size <= IN_LOOP_MAX)
        ):
            return self._get_item(req, res, head)
        return None

    def _get_target(self, req: DavRequest, head: bool) -> Resource:
        """What a GET or HEAD names; an item comes with its inline body for a GET."""
        res = resolve(self.services, req.actor, req.path, with_body=not head)
        if isinstance(res, Missing):
            raise NotFound("nothing here")
        return res

    def do_GET(self, req: DavRequest, head: bool = False) -> Response:
        res = self._get_target(req, head)
        if isinstance(res, ItemRes):
            return self._get_item(req, res, head)
        return self._listing(req, res, head)

    def _get_item(self, req: DavRequest, res: ItemRes, head: bool) -> Response:
        item = res.item
        headers = {
            "ETag": item.etag,
            "Last-Modified": P._httpdate(item.modified_us),
            "Content-Length": str(item.size),
            "Accept-Ranges": "none",
            # Stored files are the users' data, not this site's pages: an uploaded HTML or
            # SVG file must not run script with the server's origin (and its logins).
            "Content-Security-Policy": "sandbox; default-src 'none'",
        }
        inm = preconditions(req)
        if inm.if_none_match_any or item.etag in inm.if_none_match:
            return Response(b"", 304, {"ETag": item.etag})
        if inm.if_match is not None and "*" not in inm.if_match and item.etag not in inm.if_match:
            raise PreconditionFailed("the resource changed (If-Match)")
        if head:
            return Response(b"", 200, headers, media_type=item.content_type)
        if res.inline is not None:
            # Read with the item in one view; verified here, once.
            if hashlib.sha256(res.inline).hexdigest() != item.content_hash:
                raise IntegrityError(
                    f"stored body {item.content_hash[:12]} does not match its hash"
                )
            return Response(res.inline, 200, headers, media_type=item.content_type)
        if item.size <= WHOLE_BODY_MAX:
            # Read whole and verified once: a damaged body is a clean 500, never a 200.
            body = self.services.items.body(item)
            return Response(body, 200, headers, media_type=item.content_type)
        # Large files stream. Checking the blob before the first byte is what turns
        # damage into a 500 instead of a cut-off 200; the stream checks again as it goes,
        # so bytes that change in between never complete a response either.
        self.services.store.verify_external(item.content_hash)
        return StreamingResponse(
            self.services.items.stream(item), 200, headers, media_type=item.content_type
        )

    def _listing(self, req: DavRequest, res: Resource, head: bool) -> Response:
        title = href_of(res)
        rows: list[tuple[str, str]] = []
        for member in self._members(req, res):
            rows.append((href_of(member), href_of(member).rstrip("/").rpartition("/")[2]))
        body = (
            "<!doctype html><meta charset=utf-8><title>Homeport</title>"
            f"<h1>{html.escape(title)}</h1><ul>"
            + "".join(
                f'<li><a href="{html.escape(webdav.quote_href(h))}">{html.escape(n)}</a>'
                for h, n in rows
            )
            + "</ul>"
        ).encode()
        return Response(b"" if head else body, 200, media_type="text/html; charset=utf-8")

    # -- PROPFIND -------------------------------------------------------------------

    def _members(self, req: DavRequest, res: Resource) -> list[Resource]:
        if isinstance(res, Root):
            return [Home(req.actor.user)]
        if isinstance(res, Home):
            return [
                CollectionRes(c)
                for c in self.services.collections.children(req.actor, res.owner, "")
            ]
        if isinstance(res, CollectionRes):
            coll = res.collection
            out: list[Resource] = []
            if coll.kind is CollectionKind.PLAIN:
                out += [
                    CollectionRes(c)
                    for c in self.services.collections.children(req.actor, coll.owner, coll.path)
                ]
            out += [ItemRes(coll, i) for i in self.services.items.list_items(req.actor, coll)]
            return out
        return []

    def do_PROPFIND(self, req: DavRequest) -> Response:
        depth = webdav.parse_depth(req.header("depth"), "infinity")
        pf = webdav.parse_propfind(req.xml())
        if depth == "infinity":
            raise ValidationError(
                "Depth: infinity is not supported; use 0 or 1", DAV, "propfind-finite-depth"
            )
        res = self.resolve(req)
        if isinstance(res, Missing):
            raise NotFound("nothing here")
        ctx = self.ctx(req)
        # Everything that can fail for the request as a whole happens before the first
        # byte: the target, its own properties and the first page of members.
        head = [webdav.response_markup(href_of(res), self._props_for(ctx, res, pf))]
        if depth == "0":
            return multistatus_response(head)
        if not isinstance(res, CollectionRes):
            for member in self._members(req, res):
                head.append(
                    webdav.response_markup(href_of(member), self._props_for(ctx, member, pf))
                )
            return multistatus_response(head)
        coll = res.collection
        if coll.kind is CollectionKind.PLAIN:
            for child in self.services.collections.children(req.actor, coll.owner, coll.path):
                sub = CollectionRes(child)
                head.append(webdav.response_markup(href_of(sub), self._props_for(ctx, sub, pf)))
        items = P.ItemResponses(ctx, coll, pf)
        first = self.services.items.list_page(req.actor, coll, None, LISTING_PAGE)
        head.extend(self._item_responses(req, items, first))
        if len(first) < LISTING_PAGE:
            return multistatus_response(head)
        # A large collection streams, one page of members at a time: memory stays flat
        # whatever the collection's size.
        rest = self._listing_pages(req, items, first[-1].name)
        return multistatus_response(head, rest)

    def _item_responses(
        self, req: DavRequest, items: P.ItemResponses, page: list[Item]
    ) -> list[str]:
        dead: dict[str, dict[str, bytes]] = {}
        if items.needs_dead and page:
            dead = self.services.items.dead_props_many(items.coll, [i.name for i in page])
        return [items.response(item, dead=dead.get(item.name)) for item in page]

    def _listing_pages(self, req: DavRequest, items: P.ItemResponses, after: str) -> Iterator[str]:
        while True:
            page = self.services.items.list_page(req.actor, items.coll, after, LISTING_PAGE)
            if not page:
                return
            yield from self._item_responses(req, items, page)
            after = page[-1].name

    @staticmethod
    def _props_for(
        ctx: P.PropContext,
        res: Resource,
        pf: webdav.PropfindRequest,
        extra: dict[str, P.Getter] | None = None,
    ) -> dict[int, list[webdav.PropValue]]:
        return P.props_for(ctx, res, pf, extra)

    # -- PROPPATCH ------------------------------------------------------------------

    def do_PROPPATCH(self, req: DavRequest) -> Response:
        updates = webdav.parse_proppatch(req.xml())
        res = self.resolve(req)
        if isinstance(res, Missing):
            raise NotFound("nothing here")
        if not isinstance(res, CollectionRes | ItemRes):
            raise Forbidden("properties of this resource cannot be changed")
        coll = res.collection
        is_coll = isinstance(res, CollectionRes)
        failed: dict[str, int] = {}
        props = CollectionProps()
        settable: dict[str, str | None] = {}
        dead_set: dict[str, bytes] = {}
        dead_remove: list[str] = []
        for upd in updates:
            name = upd.name
            if is_coll and name in P.SETTABLE:
                settable[P.SETTABLE[name]] = (
                    "".join(str(t) for t in upd.value.itertext())
                    if isinstance(upd, PropSet)
                    else None
                )
            elif name in P.PROTECTED:
                failed[name] = 403
            elif isinstance(upd, PropSet):
                dead_set[name] = webdav.dead_property_to_bytes(upd.value)
                if name in dead_remove:
                    dead_remove.remove(name)
            else:
                dead_remove.append(name)
                dead_set.pop(name, None)
        names = list(dict.fromkeys(u.name for u in updates))
        ms = webdav.Multistatus()
        if failed:
            ms.add_propstat(
                href_of(res),
                {
                    403: [n for n in names if n in failed],
                    424: [n for n in names if n not in failed],
                },
            )
            return multistatus(ms)
        if settable:
            clear = frozenset(k for k, v in settable.items() if v is None)
            props = CollectionProps(
                displayname=settable.get("displayname"),
                description=settable.get("description"),
                color=settable.get("color"),
                order=settable.get("order"),
                clear=clear,
            )
            self.services.collections.update(req.actor, coll, props)
        if dead_set or dead_remove:
            self.services.items.set_dead_props(
                req.actor,
                coll,
                "" if is_coll else res.item.name,  # type: ignore[union-attr]
                dead_set,
                dead_remove,
            )
        ms.add_propstat(href_of(res), {200: names})
        return multistatus(ms)

    # -- MKCOL, MKCALENDAR ----------------------------------------------------------

    def do_MKCOL(self, req: DavRequest) -> Response:
        ctype = (req.header("content-type") or "").split(";")[0].strip().lower()
        if req.body and ctype and ctype not in ("application/xml", "text/xml"):
            return Response(
                "MKCOL accepts only an XML body (RFC 5689)\n", 415, media_type="text/plain"
            )
        return self._make_collection(req, extmkcol.parse_mkcol(req.xml()), calendar=False)

    def do_MKCALENDAR(self, req: DavRequest) -> Response:
        return self._make_collection(req, extmkcol.parse_mkcalendar(req.xml()), calendar=True)

    def _make_collection(
        self, req: DavRequest, mk: extmkcol.MkcolRequest, calendar: bool
    ) -> Response:
        res = self.resolve(req)
        if not isinstance(res, Missing):
            raise AlreadyExists("something already exists at this URL")
        if res.parent is None and not res.parent_is_home:
            raise Conflict("the parent collection does not exist")
        types = set(mk.resourcetypes) - {clark(DAV, "collection")}
        if types == {clark(CALDAV, "calendar")}:
            kind = CollectionKind.CALENDAR
        elif types == {clark(CARDDAV, "addressbook")}:
            kind = CollectionKind.ADDRESSBOOK
        elif not types:
            kind = CollectionKind.PLAIN
        else:
            raise ValidationError("unsupported resource type", DAV, "valid-resourcetype")
        values: dict[str, str] = {}
        components: tuple[str, ...] | None = None
        dead: dict[str, bytes] = {}
        for ps in mk.props:
            if ps.name in P.SETTABLE:
                values[P.SETTABLE[ps.name]] = "".join(str(t) for t in ps.value.itertext())
            elif ps.name == clark(CALDAV, "supported-calendar-component-set"):
                components = parse_supported_calendar_component_set(ps.value)
            elif ps.name in P.PROTECTED:
                raise ValidationError(
                    f"{ps.name} cannot be set", DAV, "cannot-modify-protected-property"
                )
            else:
                dead[ps.name] = webdav.dead_property_to_bytes(ps.value)
        props = CollectionProps(
            displayname=values.get("displayname"),
            description=values.get("description"),
            color=values.get("color"),
            order=values.get("order"),
            components=components,
        )
        coll = self.services.collections.create(req.actor, res.owner, res.path, kind, props)
        if dead:
            self.services.items.set_dead_props(req.actor, coll, "", dead, [])
        return Response(b"", 201, {"Content-Length": "0"})

    # -- PUT, DELETE (also driven by the event loop: `write_steps`) --------------------

    def write_steps(self, req: DavRequest) -> CommitSteps[Response] | None:
        """A PUT or DELETE as commit steps, after the If header (checked first, as
        `dispatch` does); None for other methods. The app drives them from the event
        loop, so a write takes no worker thread while its commit waits for the disk."""
        steps = {"PUT": self._put_steps, "DELETE": self._delete_steps}.get(req.method)
        if steps is None:
            return None
        self._check_if_header(req)
        return steps(req)

    def do_PUT(self, req: DavRequest) -> Response:
        return self.services.store.run_steps(self._put_steps(req))

    def do_DELETE(self, req: DavRequest) -> Response:
        return self.services.store.run_steps(self._delete_steps(req))

    def _put_steps(self, req: DavRequest) -> CommitSteps[Response]:
        res = self.resolve(req)
        if isinstance(res, Root | Home | CollectionRes):
            return Response(
                "cannot PUT to a collection\n", 405, {"Allow": ALLOW}, media_type="text/plain"
            )
        if isinstance(res, Missing):
            if res.parent is None:
                raise Conflict("the parent collection does not exist")
            coll, name = res.parent, res.name
        else:
            coll, name = res.collection, res.item.name
        if req.header("content-range"):
            raise InvalidRequest("partial PUT (Content-Range) is not supported")
        ctype = req.header("content-type") or _default_type(coll.kind)
        chunks = req.chunks if req.chunks is not None else iter((req.body,))
        item, created = yield from self.services.items.put_steps(
            req.actor, coll, name, chunks, ctype, self.preconditions(req)
        )
        return Response(b"", 201 if created else 204, {"ETag": item.etag})

    def _delete_steps(self, req: DavRequest) -> CommitSteps[Response]:
        res = self.resolve(req)
        if isinstance(res, Missing):
            raise NotFound("nothing here")
        if isinstance(res, Root | Home):
            raise Forbidden("a home or the root cannot be deleted")
        if isinstance(res, CollectionRes):
            if req.header("if-match") is not None:
                raise PreconditionFailed("collections have no ETag")
            self.services.collections.delete(req.actor, res.collection)
        else:
            yield from self.services.items.delete_steps(
                req.actor, res.collection, res.item.name, self.preconditions(req)
            )
        return Response(b"", 204)

    # -- COPY, MOVE -----------------------------------------------------------------

    def do_COPY(self, req: DavRequest) -> Response:
        return self._transfer(req, move=False)

    def do_MOVE(self, req: DavRequest) -> Response:
        return self._transfer(req, move=True)

    def _transfer(self, req: DavRequest, move: bool) -> Response:
        dest = webdav.parse_destination(req.header("destination"), req.base_url)
        overwrite = webdav.parse_overwrite(req.header("overwrite"))
        depth = webdav.parse_depth(req.header("depth"), "infinity")
        src = self.resolve(req)
        if isinstance(src, Missing):
            raise NotFound("nothing here")
        if isinstance(src, Root | Home):
            raise Forbidden("a home cannot be copied or moved")
        dst = self.resolve(req, dest)
        if isinstance(dst, Root | Home):
            raise Forbidden("cannot overwrite a home")
        if isinstance(src, CollectionRes):
            if move and depth != "infinity":
                raise InvalidRequest("MOVE of a collection requires Depth: infinity")
            if depth == "1":
                raise InvalidRequest("COPY of a collection takes Depth 0 or infinity")
            if isinstance(dst, Missing) and dst.parent is None and not dst.parent_is_home:
                raise Conflict("the destination's parent collection does not exist")
            owner, path = _dst_owner_path(dst)
            created = self.services.collections.copy_or_move(
                req.actor,
                src.collection,
                owner,
                path,
                move=move,
                overwrite=overwrite,
                depth_infinity=depth == "infinity",
            )
            return Response(b"", 201 if created else 204)
        # An item. Onto a folder with Overwrite: T, the folder is replaced in the same
        # transaction as the copy, after every check (items.transfer).
        if isinstance(dst, CollectionRes):
            if not overwrite:
                raise PreconditionFailed("the destination exists and Overwrite is F")
            parent_path = dst.collection.parent_path
            parent = (
                self.services.collections.find(req.actor, dst.collection.owner, parent_path)
                if parent_path
                else None
            )
            if parent is None:
                raise Conflict("an item cannot take the place of a top-level collection")
            dcoll, dname = parent, dst.collection.basename
        elif isinstance(dst, Missing):
            if dst.parent is None:
                raise Conflict("the destination's parent collection does not exist")
            dcoll, dname = dst.parent, dst.name
        elif isinstance(dst, ItemRes):
            dcoll, dname = dst.collection, dst.item.name
        else:
            raise Conflict("cannot copy or move here")
        created = self.services.items.transfer(
            req.actor,
            src.collection,
            src.item.name,
            dcoll,
            dname,
            move=move,
            overwrite=overwrite,
            pre=self.preconditions(req),
        )
        return Response(b"", 201 if created else 204)

    # -- REPORT ---------------------------------------------------------------------

    def do_REPORT(self, req: DavRequest) -> Response:
        from homeport.server.reports import report

        return report(self, req)


def _dst_owner_path(dst: Resource) -> tuple[str, str]:
    if isinstance(dst, Missing):
        return dst.owner, dst.path
    if isinstance(dst, CollectionRes):
        return dst.collection.owner, dst.collection.path
    if isinstance(dst, ItemRes):
        return dst.collection.owner, f"{dst.collection.path}/{dst.item.name}"
    raise Conflict("cannot copy or move here")


def _default_type(kind: CollectionKind) -> str:
    if kind is CollectionKind.CALENDAR:
        return "text/calendar; charset=utf-8"
    if kind is CollectionKind.ADDRESSBOOK:
        return "text/vcard; charset=utf-8"
    return "application/octet-stream"


__all__ = ["DavRequest", "Handlers", "PropRemove"]
