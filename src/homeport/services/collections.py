"""Collections: calendars, address books and plain folders in a user's home."""

from __future__ import annotations

from collections.abc import Iterable

from homeport.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
    ValidationError,
)
from homeport.namespaces import CALDAV
from homeport.services.accounts import Actor
from homeport.store.core import Store
from homeport.store.interfaces import MetadataReader, MetadataWriter
from homeport.store.model import (
    Collection,
    CollectionKind,
    CollectionProps,
    Item,
    NewRevision,
    Op,
)

CALENDAR_COMPONENTS = ("VEVENT", "VTODO", "VJOURNAL")
MAX_NAME = 255


def validate_segment(segment: str) -> str:
    """A resource or collection name: one path segment, printable, not . or .."""
    if not segment or segment in (".", "..") or len(segment) > MAX_NAME:
        raise InvalidRequest(f"invalid resource name {segment[:40]!r}")
    if "/" in segment or any(ord(c) < 32 or ord(c) == 127 for c in segment):
        raise InvalidRequest("a resource name may not contain '/' or control characters")
    return segment


def validate_path(path: str) -> str:
    for segment in path.split("/"):
        validate_segment(segment)
    return path


def authorize(actor: Actor, owner: str) -> None:
    """A user acts on their own data; an admin on anyone's."""
    if actor.user != owner and not actor.is_admin:
        raise Forbidden("this belongs to another user")


class Collections:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, actor: Actor, owner: str, path: str) -> Collection:
        authorize(actor, owner)
        with self.store.read() as r:
            coll = r.get_collection(owner, path)
        if coll is None:
            raise NotFound(f"no collection {path!r}")
        return coll

    def find(self, actor: Actor, owner: str, path: str) -> Collection | None:
        authorize(actor, owner)
        with self.store.read() as r:
            return r.get_collection(owner, path)

    def children(self, actor: Actor, owner: str, parent: str = "") -> list[Collection]:
        authorize(actor, owner)
        with self.store.read() as r:
            return r.list_collections(owner, parent)

    def refresh(self, coll: Collection) -> Collection:
        with self.store.read() as r:
            fresh = r.get_collection_by_id(coll.id)
        if fresh is None or fresh.deleted_seq is not None:
            raise NotFound(f"collection {coll.path!r} was deleted")
        return fresh

    def create(
        self,
        actor: Actor,
        owner: str,
        path: str,
        kind: CollectionKind,
        props: CollectionProps | None = None,
    ) -> Collection:
        """Create a collection; its parent must exist and be a plain folder (or the home)."""
        authorize(actor, owner)
        validate_path(path)
        props = props or CollectionProps()
        if kind is CollectionKind.CALENDAR:
            comps = props.components or CALENDAR_COMPONENTS
            bad = [c for c in comps if c not in CALENDAR_COMPONENTS]
            if bad:
                raise ValidationError(
                    f"unsupported calendar component {bad[0]}",
                    CALDAV,
                    "supported-calendar-component",
                )
            props = CollectionProps(
                props.displayname, props.description, props.color, props.order, tuple(comps)
            )

        def tx(w: MetadataWriter) -> Collection:
            self._check_parent(w, owner, path)
            if w.get_collection(owner, path) is not None:
                raise AlreadyExists(f"{path!r} already exists")
            seq = w.max_seq() + 1
            coll = w.create_collection(owner, path, kind, props, seq)
            self.store.append(w, NewRevision(actor.user, actor.client, Op.MKCOL, coll.id, ""))
            return coll

        return self.store.commit(tx)

    @staticmethod
    def _check_parent(r: MetadataReader, owner: str, path: str) -> None:
        parent, _, name = path.rpartition("/")
        if r.get_user(owner) is None:
            raise NotFound(f"no user {owner!r}")
        if parent:
            pcoll = r.get_collection(owner, parent)
            if pcoll is None:
                raise Conflict(f"the parent collection {parent!r} does not exist")
            if pcoll.kind is not CollectionKind.PLAIN:
                raise Forbidden("calendars and address books cannot hold other collections")
            if r.get_item(pcoll.id, name) is not None:
                raise AlreadyExists(f"a resource named {name!r} already exists")

    def update(self, actor: Actor, coll: Collection, props: CollectionProps) -> Collection:
        authorize(actor, coll.owner)
        if props.components is not None and coll.kind is CollectionKind.CALENDAR:
            bad = [c for c in props.components if c not in CALENDAR_COMPONENTS]
            if bad or not props.components:
                raise Conflict("supported-calendar-component-set must list VEVENT/VTODO/VJOURNAL")
        return self.store.commit(lambda w: w.update_collection(coll.id, props))

    def delete(self, actor: Actor, coll: Collection) -> None:
        """Tombstone the collection and every collection below it; items stay in history."""
        authorize(actor, coll.owner)

        def tx(w: MetadataWriter) -> None:
            self.delete_tree_in(w, actor, coll)

        self.store.commit(tx)

    def delete_tree_in(self, w: MetadataWriter, actor: Actor, coll: Collection) -> None:
        """Inside a commit: tombstone `coll` and every collection below it."""
        live = w.get_collection_by_id(coll.id)
        if live is None or live.deleted_seq is not None:
            raise NotFound(f"collection {coll.path!r} was already deleted")
        for sub in w.list_collections(coll.owner):
            if sub.path.startswith(coll.path + "/"):
                rev = self.store.append(
                    w, NewRevision(actor.user, actor.client, Op.RMCOL, sub.id, "")
                )
                w.mark_collection_deleted(sub.id, rev.seq)
        rev = self.store.append(w, NewRevision(actor.user, actor.client, Op.RMCOL, coll.id, ""))
        w.mark_collection_deleted(coll.id, rev.seq)

    def copy_or_move(
        self,
        actor: Actor,
        src: Collection,
        dst_owner: str,
        dst_path: str,
        *,
        move: bool,
        overwrite: bool,
        depth_infinity: bool = True,
    ) -> bool:
        """COPY/MOVE a collection tree in one transaction. Returns True if dst was created."""
        authorize(actor, src.owner)
        authorize(actor, dst_owner)
        validate_path(dst_path)
        if dst_owner == src.owner and (dst_path == src.path or dst_path.startswith(src.path + "/")):
            raise Forbidden("cannot copy or move a collection into itself")

        def tx(w: MetadataWriter) -> bool:
            created = True
            existing = w.get_collection(dst_owner, dst_path)
            parent, _, leaf = dst_path.rpartition("/")
            pcoll = w.get_collection(dst_owner, parent) if parent else None
            existing_item = w.get_item(pcoll.id, leaf) if pcoll else None
            if existing is not None or existing_item is not None:
                if not overwrite:
                    raise PreconditionFailed(f"{dst_path!r} exists and Overwrite is F")
                created = False
                if existing is not None:
                    self.delete_tree_in(w, actor, existing)
                if existing_item is not None and pcoll is not None:
                    self.store.append(
                        w, NewRevision(actor.user, actor.client, Op.DELETE, pcoll.id, leaf)
                    )
            self._check_parent(w, dst_owner, dst_path)
            tree = [src] + (
                [c for c in w.list_collections(src.owner) if c.path.startswith(src.path + "/")]
                if depth_infinity
                else []
            )
            for coll in tree:
                new_path = dst_path + coll.path[len(src.path) :]
                props = CollectionProps(
                    coll.displayname, coll.description, coll.color, coll.order, coll.components
                )
                seq = w.max_seq() + 1
                new = w.create_collection(dst_owner, new_path, coll.kind, props, seq)
                self.store.append(w, NewRevision(actor.user, actor.client, Op.MKCOL, new.id, ""))
                w.copy_dead_props(coll.id, "", new.id, "")
                if coll is src or depth_infinity:
                    self._copy_items(w, actor, coll.id, new.id, w.list_items(coll.id))
            if move:
                self.delete_tree_in(w, actor, src)
            return created

        return self.store.commit(tx)

    def _copy_items(
        self, w: MetadataWriter, actor: Actor, src_id: int, dst_id: int, items: Iterable[Item]
    ) -> None:
        for item in items:
            rev = w.item_history(src_id, item.name)[-1]
            self.store.append(
                w,
                NewRevision(
                    actor.user,
                    actor.client,
                    Op.PUT,
                    dst_id,
                    item.name,
                    item.content_hash,
                    item.size,
                    item.content_type,
                    item.uid,
                    item.component,
                    rev.start_us,
                    rev.end_us,
                ),
            )
            w.copy_dead_props(src_id, item.name, dst_id, item.name)
