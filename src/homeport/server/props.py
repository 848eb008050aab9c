"""Live properties: what each kind of resource says about itself in PROPFIND and REPORTs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate

from lxml import etree

from homeport.dav.webdav import dead_property_from_bytes, quote_href
from homeport.dav.xml import clark, element, sub_element
from homeport.namespaces import APPLE_ICAL, CALDAV, CALENDARSERVER, CARDDAV, DAV
from homeport.server.resources import (
    CollectionRes,
    Home,
    ItemRes,
    Missing,
    Resource,
    Root,
    home_href,
)
from homeport.services import Services
from homeport.services.accounts import Actor
from homeport.store.model import CollectionKind, us_to_datetime

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


def _href(name: str, path: str) -> etree._Element:
    elem = element(name)
    sub_element(elem, D("href"), quote_href(path))
    return elem


def _text(name: str, value: str | int | None) -> etree._Element | None:
    if value is None:
        return None
    return element(name, str(value))


def _httpdate(us: int) -> str:
    return formatdate(us / 1_000_000, usegmt=True)


def _privileges(name: str) -> etree._Element:
    elem = element(name)
    for priv in (
        "read",
        "write",
        "write-properties",
        "write-content",
        "bind",
        "unbind",
        "read-current-user-privilege-set",
    ):
        p = sub_element(elem, D("privilege"))
        sub_element(p, D(priv))
    return elem


def _reports(kind: CollectionKind | None) -> etree._Element:
    names = [D("sync-collection")] if kind is not None else []
    if kind is CollectionKind.CALENDAR:
        names += [C("calendar-query"), C("calendar-multiget"), C("free-busy-query")]
    elif kind is CollectionKind.ADDRESSBOOK:
        names += [R("addressbook-query"), R("addressbook-multiget")]
    elem = element(D("supported-report-set"))
    for name in names:
        sr = sub_element(elem, D("supported-report"))
        rep = sub_element(sr, D("report"))
        sub_element(rep, name)
    return elem


def _resourcetype(res: Resource) -> etree._Element:
    elem = element(D("resourcetype"))
    if isinstance(res, Root | Home | CollectionRes):
        sub_element(elem, D("collection"))
    if isinstance(res, Home):
        sub_element(elem, D("principal"))
    if isinstance(res, CollectionRes):
        kind = res.collection.kind
        if kind is CollectionKind.CALENDAR:
            sub_element(elem, C("calendar"))
        elif kind is CollectionKind.ADDRESSBOOK:
            sub_element(elem, R("addressbook"))
    return elem


Getter = Callable[[PropContext, Resource], "etree._Element | None"]


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


def _owner_href(res: Resource) -> etree._Element | None:
    owner = _owner(res)
    return _href(D("owner"), home_href(owner)) if owner else None


def _owner(res: Resource) -> str | None:
    if isinstance(res, Home):
        return res.owner
    if isinstance(res, CollectionRes | ItemRes):
        return res.collection.owner
    return None


def _quota(ctx: PropContext, res: Resource, used: bool) -> etree._Element | None:
    owner = _owner(res)
    if owner is None:
        return None
    if used:
        return element(D("quota-used-bytes"), str(ctx.usage(owner)))
    import shutil

    free = shutil.disk_usage(ctx.services.store.blobs.root).free  # type: ignore[attr-defined]
    return element(D("quota-available-bytes"), str(free))


def _collection_props() -> dict[str, Getter]:
    def coll(res: Resource) -> CollectionRes:
        assert isinstance(res, CollectionRes)
        return res

    def displayname(ctx: PropContext, res: Resource) -> etree._Element | None:
        c = coll(res).collection
        return _text(D("displayname"), c.displayname if c.displayname else c.basename)

    def components(ctx: PropContext, res: Resource) -> etree._Element | None:
        c = coll(res).collection
        if c.kind is not CollectionKind.CALENDAR:
            return None
        elem = element(C("supported-calendar-component-set"))
        for comp in c.components or ("VEVENT", "VTODO", "VJOURNAL"):
            sub_element(elem, C("comp")).set("name", comp)
        return elem

    def caldata(ctx: PropContext, res: Resource) -> etree._Element | None:
        if coll(res).collection.kind is not CollectionKind.CALENDAR:
            return None
        elem = element(C("supported-calendar-data"))
        cd = sub_element(elem, C("calendar-data"))
        cd.set("content-type", "text/calendar")
        cd.set("version", "2.0")
        return elem

    def addrdata(ctx: PropContext, res: Resource) -> etree._Element | None:
        if coll(res).collection.kind is not CollectionKind.ADDRESSBOOK:
            return None
        elem = element(R("supported-address-data"))
        for version in ("3.0", "4.0"):
            ad = sub_element(elem, R("address-data-type"))
            ad.set("content-type", "text/vcard")
            ad.set("version", version)
        return elem

    def maxsize(ns: str) -> Getter:
        def get(ctx: PropContext, res: Resource) -> etree._Element | None:
            kind = coll(res).collection.kind
            want = CollectionKind.CALENDAR if ns == CALDAV else CollectionKind.ADDRESSBOOK
            if kind is not want:
                return None
            return element(clark(ns, "max-resource-size"), str(ctx.max_object_size))

        return get

    def described(name: str, kind: CollectionKind) -> Getter:
        def get(ctx: PropContext, res: Resource) -> etree._Element | None:
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


def getters_for(res: Resource) -> dict[str, Getter]:
    table = dict(COMMON)
    if isinstance(res, Root | Home):
        table.update(PRINCIPAL if isinstance(res, Home) else {})
        table[D("displayname")] = lambda ctx, r: _text(
            D("displayname"), r.owner if isinstance(r, Home) else "Homeport"
        )
    if isinstance(res, Home):
        table[D("quota-used-bytes")] = lambda ctx, r: _quota(ctx, r, True)
        table[D("quota-available-bytes")] = lambda ctx, r: _quota(ctx, r, False)
    if isinstance(res, CollectionRes):
        table.update(COLLECTION)
    if isinstance(res, ItemRes):
        table.update(ITEM)
    return table


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
) -> dict[int, list[etree._Element | str]]:
    """Values of `names` grouped by status: 200 with a value, 404 without."""
    table = getters_for(res)
    if extra:
        table.update(extra)
    if dead is None and not isinstance(res, Missing):
        dead = dead_props(ctx, res) if any(n not in table for n in names) else {}
    out: dict[int, list[etree._Element | str]] = {200: [], 404: []}
    for name in names:
        getter = table.get(name)
        value = getter(ctx, res) if getter else None
        if value is None and dead and name in dead:
            value = dead_property_from_bytes(dead[name])
        if value is None:
            out[404].append(name)
        else:
            out[200].append(value)
    return out


def allprop(
    ctx: PropContext, res: Resource, include: tuple[str, ...] = ()
) -> dict[int, list[etree._Element | str]]:
    dead = dead_props(ctx, res)
    names = [n for n in ALLPROP_LIVE if n in getters_for(res)] + list(include)
    result = render(ctx, res, names, dead)
    result[404] = [n for n in result[404] if n in include]
    for value in dead.values():
        result[200].append(dead_property_from_bytes(value))
    return result


def propname(ctx: PropContext, res: Resource) -> dict[int, list[etree._Element | str]]:
    names = live_names(ctx, res) + list(dead_props(ctx, res))
    return {200: [element(n) for n in dict.fromkeys(names)]}


PROTECTED = frozenset(
    set(COMMON)
    | set(COLLECTION)
    | set(ITEM)
    | set(PRINCIPAL)
    | {D("lockdiscovery"), D("supportedlock"), C("supported-calendar-component-set")}
) - set(SETTABLE)
"""Live properties no client may set or remove (RFC 4918 section 15)."""
