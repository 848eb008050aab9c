"""URL space: what a request path names.

/                          root (discovery answers current-user-principal)
/dav/                      root of the DAV tree (same)
/dav/<user>/               the user's principal, which is also their home set
/dav/<user>/<path>/        a collection (plain collections nest)
/dav/<user>/<path>/<name>  an item in a collection
"""

from __future__ import annotations

from dataclasses import dataclass, field

from homeport.errors import InvalidRequest
from homeport.services import Services
from homeport.services.accounts import Actor
from homeport.store.model import Collection, Item

DAV_PREFIX = "/dav"


@dataclass(frozen=True)
class Root:
    path: str


@dataclass(frozen=True)
class Home:
    """A principal and its home set in one."""

    owner: str


@dataclass(frozen=True)
class CollectionRes:
    collection: Collection


@dataclass(frozen=True)
class ItemRes:
    collection: Collection
    item: Item
    inline: bytes | None = field(default=None, compare=False, repr=False)
    """The body as stored inline, when `resolve` was asked for it (unverified)."""


@dataclass(frozen=True)
class Missing:
    """Nothing lives here. `parent` is the collection it would go into, if that exists."""

    owner: str
    path: str  # relative to the owner's home
    parent: Collection | None
    parent_is_home: bool

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]


Resource = Root | Home | CollectionRes | ItemRes | Missing


def home_href(owner: str) -> str:
    return f"{DAV_PREFIX}/{owner}/"


def collection_href(coll: Collection) -> str:
    return f"{DAV_PREFIX}/{coll.owner}/{coll.path}/"


def item_href(coll: Collection, name: str) -> str:
    return f"{DAV_PREFIX}/{coll.owner}/{coll.path}/{name}"


def href_of(res: Resource) -> str:
    if isinstance(res, Root):
        return res.path
    if isinstance(res, Home):
        return home_href(res.owner)
    if isinstance(res, CollectionRes):
        return collection_href(res.collection)
    if isinstance(res, ItemRes):
        return item_href(res.collection, res.item.name)
    return f"{DAV_PREFIX}/{res.owner}/{res.path}"


def split_path(path: str) -> tuple[str, str] | None:
    """(owner, relative path) for a path under /dav/<owner>/, None for the roots."""
    if path in ("", "/"):
        return None
    if not path.startswith(DAV_PREFIX + "/") and path != DAV_PREFIX:
        raise InvalidRequest(f"no resource at {path[:80]!r}")
    rest = path[len(DAV_PREFIX) :].strip("/")
    if not rest:
        return None
    owner, _, rel = rest.partition("/")
    rel = rel.strip("/")
    if "//" in rel:
        raise InvalidRequest("empty path segment")
    for segment in rel.split("/") if rel else ():
        if segment in (".", ".."):
            raise InvalidRequest("'.' and '..' are not allowed in paths")
    return owner, rel


def resolve(services: Services, actor: Actor, path: str, with_body: bool = False) -> Resource:
    """What `path` (decoded) names, as seen by `actor`.

    With `with_body`, an item comes with its inline body (`ItemRes.inline`, unverified)
    read in the same view: a GET then needs no second read.

    Raises Forbidden for another user's space (so existence is not disclosed beyond
    the user name) and NotFound for a user that does not exist.
    """
    parts = split_path(path)
    if parts is None:
        return Root(path if path.endswith("/") else path + "/")
    owner, rel = parts
    from homeport.services.collections import authorize

    authorize(actor, owner)
    if not rel:
        return Home(owner)
    with services.store.read() as r:
        coll = r.get_collection(owner, rel)
        if coll is not None:
            return CollectionRes(coll)
        parent_path, _, name = rel.rpartition("/")
        parent = r.get_collection(owner, parent_path) if parent_path else None
        if parent is not None:
            if with_body:
                found = r.get_items_with_inline(parent.id, [name])
                if found:
                    return ItemRes(parent, found[0][0], found[0][1])
            else:
                item = r.get_item(parent.id, name)
                if item is not None:
                    return ItemRes(parent, item)
    return Missing(owner, rel, parent, parent_is_home=not parent_path)
