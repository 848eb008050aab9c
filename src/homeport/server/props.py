"""Live properties: what each kind of resource says about itself in PROPFIND and REPORTs."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import cache

from lxml import etree

from homeport.dav.webdav import (
    PropfindRequest,
    PropValue,
    dead_property_from_bytes,
    propstat_markup,
    quote_href,
    response_markup,
    status_response_markup,
)
from homeport.dav.xml import (
    Markup,
    clark,
    element_markup,
    empty_markup,
    end_tag,
    escape_attr,
    escape_text,
    escape_utf8,
    qualified,
    start_tag,
    text_markup,
)
from homeport.errors import HomeportError
from homeport.namespaces import APPLE_ICAL, CALDAV, CALENDARSERVER, CARDDAV, DAV
from homeport.server.errors import status_for
from homeport.server.resources import (
    CollectionRes,
    Home,
    ItemRes,
    Missing,
    Resource,
    Root,
    collection_href,
    home_href,
)
from homeport.services import Services
from homeport.services.accounts import Actor
from homeport.store.model import Collection, CollectionKind, Item, us_to_datetime

log = logging.getLogger("homeport.server")

D = lambda n: clark(DAV, n)  # noqa: E731
C = lambda n: clark(CALDAV, n)  # noqa: E731
R = lambda n: clark(CARDDAV, n)  # noqa: E731
CS = lambda n: clark(CALENDARSERVER, n)  # noqa: E731
AI = lambda n: clark(APPLE_ICAL, n)  # noqa: E731

# RFC 4918 section 9.1: allprop returns dead properties and these live ones.
ALLPROP_LIVE = (
    D("creationdate"),
    D("displayname"),
    D("getcontentlength"),
    D("getcontenttype"),
    D("getetag"),
    D("getlastmodified"),
    D("resourcetype"),
)

# Live properties a client may set (stored on the collection); everything else that is
# live is protected (RFC 4918 section 15).
SETTABLE = {
    D("displayname"): "displayname",
    C("calendar-description"): "description",
    R("addressbook-description"): "description",
    AI("calendar-color"): "color",
    AI("calendar-order"): "order",
}


@dataclass
class PropContext:
    """Per-request facts the properties need; computed lazily and once."""

    services: Services
    actor: Actor
    max_object_size: int
    _usage: int | None = field(default=None)

    def usage(self, owner: str) -> int:
        if self._usage is None:
            self._usage = self.services.items.usage(owner)
        return self._usage


def _href(name: str, path: str) -> Markup:
    return Markup(f"{start_tag(name)}<d:href>{quote_href(path)}</d:href>{end_tag(name)}")


def _text(name: str, value: str | int | None) -> Markup | None:
    if value is None:
        return None
    return text_markup(name, str(value))


def _httpdate(us: int) -> str:
    return formatdate(us / 1_000_000, usegmt=True)


def _container(name: str, children: Iterable[str]) -> Markup:
    return Markup(f"{start_tag(name)}{''.join(children)}{end_tag(name)}")


@cache
def _privileges(name: str) -> Markup:
    privileges = (
        "read",
        "write",
        "write-properties",
        "write-content",
        "bind",
        "unbind",
        "read-current-user-privilege-set",
    )
    return _container(
        name,
        (f"<d:privilege>{empty_markup(D(p)).xml}</d:privilege>" for p in privileges),
    )


@cache
def _reports(kind: CollectionKind | None) -> Markup:
    names = [D("sync-collection")] if kind is not None else []
    if kind is CollectionKind.CALENDAR:
        names += [C("calendar-query"), C("calendar-multiget"), C("free-busy-query")]
    elif kind is CollectionKind.ADDRESSBOOK:
        names += [R("addressbook-query"), R("addressbook-multiget")]
    return _container(
        D("supported-report-set"),
        (
            f"<d:supported-report><d:report>{empty_markup(n).xml}</d:report></d:supported-report>"
            for n in names
        ),
    )


def _resourcetype(res: Resource) -> Markup:
    types = []
    if isinstance(res, Root | Home | CollectionRes):
        types.append(D("collection"))
    if isinstance(res, Home):
        types.append(D("principal"))
    if isinstance(res, CollectionRes):
        kind = res.collection.kind
        if kind is CollectionKind.CALENDAR:
            types.append(C("calendar"))
        elif kind is CollectionKind.ADDRESSBOOK:
            types.append(R("addressbook"))
    return _resourcetype_of(tuple(types))


@cache
def _resourcetype_of(types: tuple[str, ...]) -> Markup:
    if not types:
        return empty_markup(D("resourcetype"))
    return _container(D("resourcetype"), (empty_markup(t).xml for t in types))


Getter = Callable[[PropContext, Resource], "Markup | etree._Element | None"]


def _principal_props() -> dict[str, Getter]:
    def home(ctx: PropContext, res: Resource) -> str:
        return home_href(res.owner if isinstance(res, Home) else ctx.actor.user)

    return {
        D("current-user-principal"): lambda ctx, res: _href(
            D("current-user-principal"), home_href(ctx.actor.user)
        ),
        D("principal-URL"): lambda ctx, res: _href(D("principal-URL"), home(ctx, res)),
        C("calendar-home-set"): lambda ctx, res: _href(C("calendar-home-set"), home(ctx, res)),
        R("addressbook-home-set"): lambda ctx, res: _href(
            R("addressbook-home-set"), home(ctx, res)
        ),
        D("principal-collection-set"): lambda ctx, res: _href(
            D("principal-collection-set"), "/dav/"
        ),
        C("calendar-user-address-set"): lambda ctx, res: _href(
            C("calendar-user-address-set"), home(ctx, res)
        ),
    }


def _common_props() -> dict[str, Getter]:
    return {
        D("resourcetype"): lambda ctx, res: _resourcetype(res),
        D("current-user-principal"): lambda ctx, res: _href(
            D("current-user-principal"), home_href(ctx.actor.user)
        ),
        D("current-user-privilege-set"): lambda ctx, res: _privileges(
            D("current-user-privilege-set")
        ),
        D("owner"): lambda ctx, res: _owner_href(res),
        D("supported-report-set"): lambda ctx, res: _reports(
            res.collection.kind if isinstance(res, CollectionRes) else None
        ),
    }


def _owner_href(res: Resource) -> Markup | None:
    owner = _owner(res)
    return _href(D("owner"), home_href(owner)) if owner else None


def _owner(res: Resource) -> str | None:
    if isinstance(res, Home):
        return res.owner
    if isinstance(res, CollectionRes | ItemRes):
        return res.collection.owner
    return None


def _quota(ctx: PropContext, res: Resource, used: bool) -> Markup | None:
    owner = _owner(res)
    if owner is None:
        return None
    if used:
        return text_markup(D("quota-used-bytes"), str(ctx.usage(owner)))
    import shutil

    free = shutil.disk_usage(ctx.services.store.blobs.root).free  # type: ignore[attr-defined]
    return text_markup(D("quota-available-bytes"), str(free))


def _collection_props() -> dict[str, Getter]:
    def coll(res: Resource) -> CollectionRes:
        assert isinstance(res, CollectionRes)
        return res

    def displayname(ctx: PropContext, res: Resource) -> Markup | None:
        c = coll(res).collection
        return _text(D("displayname"), c.displayname if c.displayname else c.basename)

    def components(ctx: PropContext, res: Resource) -> Markup | None:
        c = coll(res).collection
        if c.kind is not CollectionKind.CALENDAR:
            return None
        tag, declaration = qualified(C("comp"))
        return _container(
            C("supported-calendar-component-set"),
            (
                f'<{tag}{declaration} name="{escape_attr(comp)}"/>'
                for comp in c.components or ("VEVENT", "VTODO", "VJOURNAL")
            ),
        )

    def caldata(ctx: PropContext, res: Resource) -> Markup | None:
        if coll(res).collection.kind is not CollectionKind.CALENDAR:
            return None
        return _container(
            C("supported-calendar-data"),
            ['<cal:calendar-data content-type="text/calendar" version="2.0"/>'],
        )

    def addrdata(ctx: PropContext, res: Resource) -> Markup | None:
        if coll(res).collection.kind is not CollectionKind.ADDRESSBOOK:
            return None
        return _container(
            R("supported-address-data"),
            (
                f'<card:address-data-type content-type="text/vcard" version="{version}"/>'
                for version in ("3.0", "4.0")
            ),
        )

    def maxsize(ns: str) -> Getter:
        def get(ctx: PropContext, res: Resource) -> Markup | None:
            kind = coll(res).collection.kind
            want = CollectionKind.CALENDAR if ns == CALDAV else CollectionKind.ADDRESSBOOK
            if kind is not want:
                return None
            return text_markup(clark(ns, "max-resource-size"), str(ctx.max_object_size))

        return get

    def described(name: str, kind: CollectionKind) -> Getter:
        def get(ctx: PropContext, res: Resource) -> Markup | None:
            c = coll(res).collection
            return _text(name, c.description) if c.kind is kind else None

        return get

    return {
        D("displayname"): displayname,
        CS("getctag"): lambda ctx, res: _text(
            CS("getctag"), ctx.services.items.sync_token(coll(res).collection)
        ),
        D("sync-token"): lambda ctx, res: _text(
            D("sync-token"), ctx.services.items.sync_token(coll(res).collection)
        ),
        C("supported-calendar-component-set"): components,
        C("supported-calendar-data"): caldata,
        R("supported-address-data"): addrdata,
        C("max-resource-size"): maxsize(CALDAV),
        R("max-resource-size"): maxsize(CARDDAV),
        C("calendar-description"): described(C("calendar-description"), CollectionKind.CALENDAR),
        R("addressbook-description"): described(
            R("addressbook-description"), CollectionKind.ADDRESSBOOK
        ),
        AI("calendar-color"): lambda ctx, res: (
            _text(AI("calendar-color"), coll(res).collection.color)
            if coll(res).collection.kind is CollectionKind.CALENDAR
            else None
        ),
        AI("calendar-order"): lambda ctx, res: (
            _text(AI("calendar-order"), coll(res).collection.order)
            if coll(res).collection.kind is CollectionKind.CALENDAR
            else None
        ),
        D("quota-used-bytes"): lambda ctx, res: _quota(ctx, res, True),
        D("quota-available-bytes"): lambda ctx, res: _quota(ctx, res, False),
    }


def _item_props() -> dict[str, Getter]:
    def item(res: Resource) -> ItemRes:
        assert isinstance(res, ItemRes)
        return res

    return {
        D("getetag"): lambda ctx, res: _text(D("getetag"), item(res).item.etag),
        D("getcontenttype"): lambda ctx, res: _text(
            D("getcontenttype"), item(res).item.content_type
        ),
        D("getcontentlength"): lambda ctx, res: _text(D("getcontentlength"), item(res).item.size),
        D("getlastmodified"): lambda ctx, res: _text(
            D("getlastmodified"), _httpdate(item(res).item.modified_us)
        ),
        D("creationdate"): lambda ctx, res: _text(
            D("creationdate"),
            us_to_datetime(item(res).item.modified_us).strftime("%Y-%m-%dT%H:%M:%SZ"),
        ),
    }


PRINCIPAL = _principal_props()
COMMON = _common_props()
COLLECTION = _collection_props()
ITEM = _item_props()


_ROOT_TABLE: dict[str, Getter] = {
    **COMMON,
    D("displayname"): lambda ctx, r: _text(D("displayname"), "Homeport"),
}
_HOME_TABLE: dict[str, Getter] = {
    **COMMON,
    **PRINCIPAL,
    D("displayname"): lambda ctx, r: _text(
        D("displayname"), r.owner if isinstance(r, Home) else None
    ),
    D("quota-used-bytes"): lambda ctx, r: _quota(ctx, r, True),
    D("quota-available-bytes"): lambda ctx, r: _quota(ctx, r, False),
}
_COLLECTION_TABLE: dict[str, Getter] = {**COMMON, **COLLECTION}
ITEM_TABLE: dict[str, Getter] = {**COMMON, **ITEM}


def getters_for(res: Resource) -> dict[str, Getter]:
    """The live properties of `res`, by Clark name (a shared table: do not modify)."""
    if isinstance(res, ItemRes):
        return ITEM_TABLE
    if isinstance(res, CollectionRes):
        return _COLLECTION_TABLE
    if isinstance(res, Home):
        return _HOME_TABLE
    if isinstance(res, Root):
        return _ROOT_TABLE
    return COMMON


def live_names(ctx: PropContext, res: Resource) -> list[str]:
    """Names of the live properties this resource has (for propname)."""
    return [name for name, get in getters_for(res).items() if get(ctx, res) is not None]


def dead_props(ctx: PropContext, res: Resource) -> dict[str, bytes]:
    if isinstance(res, CollectionRes):
        return ctx.services.items.dead_props(res.collection, "")
    if isinstance(res, ItemRes):
        return ctx.services.items.dead_props(res.collection, res.item.name)
    return {}


def render(
    ctx: PropContext,
    res: Resource,
    names: tuple[str, ...] | list[str],
    dead: dict[str, bytes] | None = None,
    extra: dict[str, Getter] | None = None,
) -> dict[int, list[PropValue]]:
    """Values of `names` grouped by status: 200 with a value, 404 without."""
    table = getters_for(res)
    if extra:
        table = {**table, **extra}
    if dead is None and not isinstance(res, Missing):
        dead = dead_props(ctx, res) if any(n not in table for n in names) else {}
    out: dict[int, list[PropValue]] = {200: [], 404: []}
    for name in names:
        getter = table.get(name)
        value: PropValue | None = getter(ctx, res) if getter else None
        if value is None and dead and name in dead:
            value = dead_property_from_bytes(dead[name])
        if value is None:
            out[404].append(name)
        else:
            out[200].append(value)
    return out


def allprop(
    ctx: PropContext,
    res: Resource,
    include: tuple[str, ...] = (),
    extra: dict[str, Getter] | None = None,
) -> dict[int, list[PropValue]]:
    """RFC 4918 9.1 allprop; `include` may name `extra` ones (calendar-data in a REPORT)."""
    dead = dead_props(ctx, res)
    table = getters_for(res)
    names = [n for n in ALLPROP_LIVE if n in table] + list(include)
    result = render(ctx, res, names, dead, extra)
    result[404] = [n for n in result[404] if n in include]
    for value in dead.values():
        result[200].append(dead_property_from_bytes(value))
    return result


def propname(ctx: PropContext, res: Resource) -> dict[int, list[PropValue]]:
    names = live_names(ctx, res) + list(dead_props(ctx, res))
    return {200: [empty_markup(n) for n in dict.fromkeys(names)]}


def props_for(
    ctx: PropContext,
    res: Resource,
    pf: PropfindRequest,
    extra: dict[str, Getter] | None = None,
) -> dict[int, list[PropValue]]:
    """The properties a PROPFIND-like request asks of one resource, grouped by status."""
    if pf.kind == "propname":
        return propname(ctx, res)
    if pf.kind == "allprop":
        return allprop(ctx, res, pf.include, extra)
    return render(ctx, res, pf.names, extra=extra)


# --- Many items at once --------------------------------------------------------------
#
# A listing, a sync or a multiget writes the same properties for thousands of items of
# one collection. `ItemResponses` works out once per request which properties are
# constant for every item (resourcetype, owner, privileges...), which are read from
# the item (getetag, getcontenttype...) and which need dead properties, then writes
# each response as text. `render` stays the reference: tests check both agree.

_ITEM_TEXT: dict[str, Callable[[Item], str | None]] = {
    D("getetag"): lambda item: item.etag,
    D("getcontenttype"): lambda item: item.content_type,
    D("getcontentlength"): lambda item: str(item.size),
    D("getlastmodified"): lambda item: _httpdate(item.modified_us),
    D("creationdate"): lambda item: us_to_datetime(item.modified_us).strftime("%Y-%m-%dT%H:%M:%SZ"),
}
assert set(_ITEM_TEXT) == set(ITEM), "every item property needs its fast form"

# Values made by the server from hex digests, digits and dates: nothing to escape.
_ITEM_TEXT_SAFE = frozenset(
    {D("getetag"), D("getcontentlength"), D("getlastmodified"), D("creationdate")}
)
# Values that repeat across items (a few content types): escaped once per request.
_ITEM_TEXT_REPEATING = frozenset({D("getcontenttype")})
_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9_.~-]*\Z")

_STATIC, _SAFE, _REPEATING, _TEXT, _DATA, _DEAD = range(6)


class ItemResponses:
    """Writes the DAV:response of many items of one collection for one property request.

    `data_name` (calendar-data or address-data) is the property whose value is the
    item's body, given per item to `response`.
    """

    def __init__(
        self,
        ctx: PropContext,
        coll: Collection,
        pf: PropfindRequest,
        data_name: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.coll = coll
        self.pf = pf
        self.data_name = data_name
        self._href_prefix = quote_href(collection_href(coll))
        self._statics: dict[str, str | None] = {}
        self._all_dead = pf.kind == "allprop"
        self._include = frozenset(pf.include)
        if pf.kind == "allprop":
            names = [n for n in ALLPROP_LIVE if n in ITEM_TABLE] + list(pf.include)
        else:
            names = list(pf.names)
        self._plan: list[tuple[int, str, str, str, Callable[[Item], str | None] | None]] = []
        for name in names:
            tag, declaration = qualified(name)
            opening, closing = f"<{tag}{declaration}>", f"</{tag}>"
            if name == data_name:
                self._plan.append((_DATA, name, opening, closing, None))
            elif name in _ITEM_TEXT_SAFE:
                self._plan.append((_SAFE, name, opening, closing, _ITEM_TEXT[name]))
            elif name in _ITEM_TEXT_REPEATING:
                self._plan.append((_REPEATING, name, opening, closing, _ITEM_TEXT[name]))
            elif name in _ITEM_TEXT:
                self._plan.append((_TEXT, name, opening, closing, _ITEM_TEXT[name]))
            elif name in ITEM_TABLE:
                self._plan.append((_STATIC, name, opening, closing, None))
            else:
                self._plan.append((_DEAD, name, opening, closing, None))
        self.needs_dead = pf.kind != "prop" or any(kind == _DEAD for kind, *_ in self._plan)
        self._repeating: dict[str, str] = {}
        # Only values read from the item or its body (a sync's getetag, a multiget's
        # getetag and data): each response is then a few constants around them.
        self._simple: list[tuple[str, Callable[[Item], str | None] | None, str]] | None = None
        if pf.kind == "prop" and self._plan and all(p[0] in (_SAFE, _DATA) for p in self._plan):
            self._simple = [
                (opening, text_of, closing) for _, _, opening, closing, text_of in self._plan
            ]
        self._simple_data = any(kind == _DATA for kind, *_ in self._plan)

    def href(self, item: Item) -> str:
        name = item.name
        if _SAFE_SEGMENT.match(name) is None:
            name = quote_href(name)
        return self._href_prefix + name

    def _static(self, name: str, item: Item) -> str | None:
        # The COMMON getters look only at the collection, never at the item itself.
        if name not in self._statics:
            value = ITEM_TABLE[name](self.ctx, ItemRes(self.coll, item))
            self._statics[name] = None if value is None else _value_xml(value)
        return self._statics[name]

    def response(
        self,
        item: Item,
        data: bytes | HomeportError | None = None,
        dead: dict[str, bytes] | None = None,
    ) -> str:
        """The response for `item`; `data` is its body when `data_name` is asked for,
        `dead` its dead properties when `needs_dead`. A body or property that cannot be
        served gives this one response an error status instead of its properties."""
        try:
            if isinstance(data, HomeportError):
                raise data
            if self._simple is not None and (data is not None or not self._simple_data):
                simple = self._simple_response(item, data)
                if simple is not None:
                    return simple
            if self.pf.kind == "propname":
                return response_markup(
                    item_path(self.coll, item), propname(self.ctx, ItemRes(self.coll, item))
                )
            return self._response(item, data, dead or {})
        except (HomeportError, ValueError) as exc:
            return error_response_markup(item_path(self.coll, item), exc)

    def _simple_response(self, item: Item, data: bytes | None) -> str | None:
        """`_response` for a simple plan (None: a value is missing after all)."""
        assert self._simple is not None
        out = ["<d:response><d:href>", self.href(item), "</d:href><d:propstat><d:prop>"]
        for opening, text_of, closing in self._simple:
            if text_of is None:
                text = escape_utf8(data) if data is not None else None
            else:
                text = text_of(item)
            if text is None:
                return None
            out += (opening, text, closing)
        out.append("</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>")
        return "".join(out)

    def _response(self, item: Item, data: bytes | None, dead: dict[str, bytes]) -> str:
        found: list[str] = []
        missing: list[str] = []
        for kind, name, opening, closing, text_of in self._plan:
            value: str | None = None
            if kind == _SAFE:
                text = text_of(item)  # type: ignore[misc]
                if text is not None:
                    value = opening + text + closing
            elif kind == _STATIC:
                value = self._static(name, item)
            elif kind == _REPEATING:
                text = text_of(item)  # type: ignore[misc]
                if text is not None:
                    value = self._repeating.get(text)
                    if value is None:
                        value = opening + escape_text(text) + closing
                        if len(self._repeating) < 64:
                            self._repeating[text] = value
            elif kind == _TEXT:
                text = text_of(item)  # type: ignore[misc]
                if text is not None:
                    value = opening + escape_text(text) + closing
            elif kind == _DATA and data is not None:
                value = opening + escape_utf8(data) + closing
            if value is None and name in dead:
                value = element_markup(dead_property_from_bytes(dead[name])).xml
            if value is not None:
                found.append(value)
            elif not self._all_dead or name in self._include:
                missing.append(opening[:-1] + "/>")
        if self._all_dead:
            found.extend(element_markup(dead_property_from_bytes(v)).xml for v in dead.values())
        href = self.href(item)
        if not missing:
            return (
                f"<d:response><d:href>{href}</d:href><d:propstat><d:prop>{''.join(found)}"
                "</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
            )
        parts = [f"<d:response><d:href>{href}</d:href>"]
        if found:
            parts.append(propstat_markup(200, found))
        parts.append(propstat_markup(404, missing))
        parts.append("</d:response>")
        return "".join(parts)


def _value_xml(value: Markup | etree._Element) -> str:
    return value.xml if isinstance(value, Markup) else element_markup(value).xml


def item_path(coll: Collection, item: Item) -> str:
    return f"{collection_href(coll)}{item.name}"


def error_response_markup(path: str, exc: HomeportError | ValueError) -> str:
    """A response that reports, for one href only, why it could not be served."""
    if isinstance(exc, HomeportError):
        status, message = status_for(exc), exc.message
    else:
        status, message = 500, "the stored data cannot be written as XML"
    if status >= 500:
        log.error("response_failed path=%r status=%d reason=%s", path, status, message)
    return status_response_markup(path, status, description=message)


PROTECTED = frozenset(
    set(COMMON)
    | set(COLLECTION)
    | set(ITEM)
    | set(PRINCIPAL)
    | {D("lockdiscovery"), D("supportedlock"), C("supported-calendar-component-set")}
) - set(SETTABLE)
"""Live properties no client may set or remove (RFC 4918 section 15)."""
