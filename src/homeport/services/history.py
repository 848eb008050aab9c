"""History, trash, undelete and point-in-time rollback.

Nothing here overwrites: a restore, an undelete and a rollback are new revisions
appended to the log, so clients pick them up through their normal sync and every
one of them can itself be undone. A rollback is planned by one function that is used
twice: on a read snapshot for `--dry-run`, and inside the write transaction that
applies it, so what is applied is exactly the plan for the state at that instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from homeport.errors import Conflict, InvalidRequest, NotFound
from homeport.formats.changes import describe_change, properties
from homeport.services.accounts import Actor
from homeport.services.collections import authorize
from homeport.services.moments import format_moment, parse_moment
from homeport.store.core import Store
from homeport.store.interfaces import MetadataReader, MetadataWriter
from homeport.store.model import (
    Collection,
    Item,
    NewRevision,
    Op,
    Revision,
    datetime_to_us,
    us_to_datetime,
)


@dataclass(frozen=True)
class RevisionInfo:
    """One revision of an item, with a readable summary of what it changed."""

    revision: Revision
    summary: str
    current: bool = False


@dataclass(frozen=True)
class TrashEntry:
    """A deleted item: its tombstone, and the last revision that had a body."""

    collection: Collection
    deletion: Revision
    last: Revision | None
    label: str | None  # FN or SUMMARY of the last body, to recognise it by

    @property
    def name(self) -> str:
        return self.deletion.name


@dataclass(frozen=True)
class DeletedCollection:
    """A deleted collection, who deleted it, and how many items it held then."""

    collection: Collection
    deletion: Revision | None
    items: int


@dataclass(frozen=True)
class PlannedChange:
    collection: Collection
    name: str
    action: str  # "restore" (put an older body back) or "delete"
    target: Revision | None  # the revision to bring back (restore)
    current_seq: int | None  # the item's current revision, if any

    @property
    def description(self) -> str:
        if self.action == "restore":
            return "bring back" if self.current_seq is None else "revert"
        return "delete"


@dataclass(frozen=True)
class CollectionChange:
    collection: Collection
    action: str  # "undelete" or "delete"


@dataclass
class RollbackPlan:
    owner: str
    seq: int  # the log position rolled back to
    moment: str
    items: list[PlannedChange] = field(default_factory=list)
    collections: list[CollectionChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.items and not self.collections

    def counts(self) -> dict[str, int]:
        out = {"restore": 0, "delete": 0, "undelete_collection": 0, "delete_collection": 0}
        for item in self.items:
            out[item.action] += 1
        for coll in self.collections:
            out[f"{coll.action}_collection"] += 1
        return out


@dataclass(frozen=True)
class RollbackResult:
    plan: RollbackPlan
    first_seq: int | None  # the first log entry the rollback wrote (None: nothing to do)
    last_seq: int | None

    @property
    def undo_position(self) -> str | None:
        """A moment (`@SEQ`) that names the state just before this rollback."""
        return None if self.first_seq is None else f"@{self.first_seq - 1}"


class History:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- looking back ------------------------------------------------------------

    def collection_by_id(self, actor: Actor, collection_id: int) -> Collection:
        with self.store.read() as r:
            coll = r.get_collection_by_id(collection_id)
        if coll is None:
            raise NotFound(f"no collection {collection_id}")
        authorize(actor, coll.owner)
        return coll

    def find_collection(
        self, actor: Actor, owner: str, path: str, *, deleted_ok: bool = True
    ) -> Collection:
        """The live collection at `path`, or (if none) the most recently deleted one."""
        authorize(actor, owner)
        with self.store.read() as r:
            if r.get_user(owner) is None:
                raise NotFound(f"no user {owner!r}")
            coll = r.get_collection(owner, path)
            if coll is None and deleted_ok:
                coll = next((c for c in r.deleted_collections(owner) if c.path == path), None)
        if coll is None:
            raise NotFound(f"{owner} has no collection {path!r}")
        return coll

    def item_history(self, actor: Actor, coll: Collection, name: str) -> list[RevisionInfo]:
        """Every revision of one item, oldest first, each with what it changed."""
        authorize(actor, coll.owner)
        with self.store.read() as r:
            revs = r.item_history(coll.id, name)
            if not revs:
                raise NotFound(f"{coll.path} has never held an item {name!r}")
            current = r.get_item(coll.id, name)
            out: list[RevisionInfo] = []
            previous: bytes | None = None
            for rev in revs:
                if rev.op is Op.PUT or rev.op is Op.CONFLICT:
                    body = self._body_or_none(r, rev)
                    summary = describe_change(previous, body) if body is not None else "?"
                    if rev.op is Op.CONFLICT:
                        summary = "conflict (rejected edit, kept): " + summary
                    else:
                        previous = body
                else:
                    summary = "deleted"
                    previous = None
                is_current = current is not None and current.seq == rev.seq
                out.append(RevisionInfo(rev, summary, is_current))
        return out

    def _body_or_none(self, r: MetadataReader, rev: Revision) -> bytes | None:
        if rev.content_hash is None:
            return None
        try:
            return self.store.read_body(rev.content_hash, r)
        except Exception:  # a damaged body must not hide the history
            return None

    def revision(self, actor: Actor, coll: Collection, name: str, seq: int) -> Revision:
        """Revision `seq` of one item; NotFound if `seq` is not a revision of that item."""
        return self._revision_of(actor, coll, name, seq)

    def revision_body(self, actor: Actor, coll: Collection, name: str, seq: int) -> bytes:
        rev = self._revision_of(actor, coll, name, seq)
        if rev.content_hash is None:
            raise NotFound(f"revision {seq} is a deletion and has no body")
        return self.store.read_body(rev.content_hash)

    def _revision_of(self, actor: Actor, coll: Collection, name: str, seq: int) -> Revision:
        authorize(actor, coll.owner)
        with self.store.read() as r:
            rev = r.get_revision(seq)
        if rev is None or rev.collection_id != coll.id or rev.name != name:
            raise NotFound(f"{name!r} in {coll.path} has no revision {seq}")
        return rev

    def trash(self, actor: Actor, coll: Collection) -> list[Revision]:
        """Deleted items of a collection, newest deletion first."""
        authorize(actor, coll.owner)
        with self.store.read() as r:
            return r.trash(coll.id)

    def trash_entries(
        self, actor: Actor, owner: str, coll: Collection | None = None
    ) -> list[TrashEntry]:
        """Deleted items of one collection, or of every live collection of `owner`,
        newest deletion first, each with what it was (its last body's FN or SUMMARY)."""
        authorize(actor, owner)
        if coll is not None and coll.owner != owner:
            raise NotFound(f"{owner} has no collection {coll.path!r}")
        with self.store.read() as r:
            if r.get_user(owner) is None:
                raise NotFound(f"no user {owner!r}")
            colls = [coll] if coll is not None else r.list_collections(owner)
            out: list[TrashEntry] = []
            for c in colls:
                for tomb in r.trash(c.id):
                    revs = r.item_history(c.id, tomb.name)
                    last = next((rv for rv in reversed(revs) if rv.op is Op.PUT), None)
                    body = self._body_or_none(r, last) if last is not None else None
                    out.append(TrashEntry(c, tomb, last, _label(body)))
        out.sort(key=lambda e: e.deletion.seq, reverse=True)
        return out

    def deleted_collections(self, actor: Actor, owner: str) -> list[Collection]:
        authorize(actor, owner)
        with self.store.read() as r:
            return r.deleted_collections(owner)

    def deleted_collection(self, actor: Actor, owner: str, path: str) -> Collection:
        """The most recently deleted collection at `path` (Conflict if only a live one is)."""
        authorize(actor, owner)
        with self.store.read() as r:
            if r.get_user(owner) is None:
                raise NotFound(f"no user {owner!r}")
            coll = next((c for c in r.deleted_collections(owner) if c.path == path), None)
            live = r.get_collection(owner, path)
        if coll is None:
            if live is not None:
                raise Conflict(f"{path!r} is not deleted")
            raise NotFound(f"{owner} has no collection {path!r}")
        return coll

    def collection_trash(self, actor: Actor, owner: str) -> list[DeletedCollection]:
        """Deleted collections of `owner`, newest deletion first, with who deleted them."""
        authorize(actor, owner)
        with self.store.read() as r:
            if r.get_user(owner) is None:
                raise NotFound(f"no user {owner!r}")
            out: list[DeletedCollection] = []
            for c in r.deleted_collections(owner):
                tomb = next(
                    (e for e in reversed(r.collection_events(c.id)) if e.op is Op.RMCOL), None
                )
                out.append(DeletedCollection(c, tomb, len(r.list_items(c.id))))
        return out

    # -- putting back ------------------------------------------------------------

    def restore_revision(self, actor: Actor, coll: Collection, name: str, seq: int) -> Item:
        """Make revision `seq` of an item current again (also undeletes it)."""
        rev = self._revision_of(actor, coll, name, seq)
        if rev.op not in (Op.PUT, Op.CONFLICT) or rev.content_hash is None:
            raise InvalidRequest(f"revision {seq} is a deletion; pick a revision with a body")

        def tx(w: MetadataWriter) -> Item:
            live = w.get_collection_by_id(coll.id)
            if live is None or live.deleted_seq is not None:
                raise Conflict(f"collection {coll.path!r} is deleted: undelete it first")
            if rev.uid:
                other = w.find_uid(coll.id, rev.uid)
                if other is not None and other.name != name:
                    raise Conflict(
                        f"{other.name!r} now holds the same UID; delete or move it first"
                    )
            new = self._put_back(w, actor, coll.id, name, rev)
            item = w.get_item(coll.id, name)
            assert item is not None and item.seq == new.seq
            return item

        return self.store.commit(tx)

    def undelete_item(self, actor: Actor, coll: Collection, name: str) -> Item:
        """Bring back a deleted item as it was just before it was deleted."""
        authorize(actor, coll.owner)
        with self.store.read() as r:
            if r.get_item(coll.id, name) is not None:
                raise Conflict(f"{name!r} is not deleted")
            revs = r.item_history(coll.id, name)
        last_put = next((rv for rv in reversed(revs) if rv.op is Op.PUT), None)
        if last_put is None:
            raise NotFound(f"{coll.path} has no deleted item {name!r}")
        return self.restore_revision(actor, coll, name, last_put.seq)

    def undelete_collection(self, actor: Actor, coll: Collection) -> Collection:
        """Bring back a deleted collection with every item it held when deleted."""
        authorize(actor, coll.owner)

        def tx(w: MetadataWriter) -> Collection:
            live = w.get_collection_by_id(coll.id)
            if live is None:
                raise NotFound("no such collection")
            if live.deleted_seq is None:
                raise Conflict(f"{coll.path!r} is not deleted")
            self._undelete(w, actor, live)
            fresh = w.get_collection_by_id(coll.id)
            assert fresh is not None
            return fresh

        return self.store.commit(tx)

    def _undelete(self, w: MetadataWriter, actor: Actor, coll: Collection) -> None:
        parent = coll.parent_path
        if parent and w.get_collection(coll.owner, parent) is None:
            raise Conflict(f"its parent folder {parent!r} is deleted: undelete that first")
        if w.get_collection(coll.owner, coll.path) is not None:
            raise Conflict(
                f"another collection now uses the path {coll.path!r}: "
                "move or delete it first, then undelete this one"
            )
        w.mark_collection_live(coll.id)
        self.store.append(w, NewRevision(actor.user, actor.client, Op.MKCOL, coll.id, ""))

    def _put_back(
        self, w: MetadataWriter, actor: Actor, collection_id: int, name: str, rev: Revision
    ) -> Revision:
        return self.store.append(
            w,
            NewRevision(
                actor.user,
                actor.client,
                Op.PUT,
                collection_id,
                name,
                rev.content_hash,
                rev.size,
                rev.content_type,
                rev.uid,
                rev.component,
                rev.start_us,
                rev.end_us,
            ),
        )

    # -- rolling back --------------------------------------------------------------

    def resolve_moment(self, r: MetadataReader, text: str) -> tuple[int, str]:
        """(log position, canonical moment) for a moment or an exact `@SEQ` position."""
        if text.startswith("@"):
            if not (text[1:].isascii() and text[1:].isdigit()):
                raise InvalidRequest(f"{text!r}: a log position is @ followed by a number")
            seq = int(text[1:])
            if seq > r.max_seq():
                raise InvalidRequest(f"log position {seq} is in the future")
            rev = r.get_revision(seq)
            moment = format_moment(us_to_datetime(rev.at_us)) if rev else "the beginning"
            return seq, moment
        when = parse_moment(text)
        if when > datetime.now(when.tzinfo):
            raise InvalidRequest(f"{text!r} is in the future")
        return r.seq_at(datetime_to_us(when)), format_moment(when)

    def plan_rollback(
        self, actor: Actor, owner: str, moment: str, collection: Collection | None = None
    ) -> RollbackPlan:
        """What a rollback would change, without changing anything (`--dry-run`)."""
        authorize(actor, owner)
        with self.store.read() as r:
            return self._plan(r, owner, moment, collection)

    def rollback(
        self, actor: Actor, owner: str, moment: str, collection: Collection | None = None
    ) -> RollbackResult:
        """Return the account (or one collection) to its state at `moment`, atomically."""
        authorize(actor, owner)

        def tx(w: MetadataWriter) -> RollbackResult:
            plan = self._plan(w, owner, moment, collection)
            return self._apply(w, actor, plan)

        return self.store.commit(tx)

    def _plan(
        self, r: MetadataReader, owner: str, moment: str, collection: Collection | None
    ) -> RollbackPlan:
        user = r.get_user(owner)
        if user is None:
            raise NotFound(f"no user {owner!r}")
        seq, canonical = self.resolve_moment(r, moment)
        if moment.startswith("@"):
            # A log position names the moment of its entry; @0 is before everything.
            at_seq = r.get_revision(seq) if seq else None
            when = at_seq.at_us if at_seq is not None else -1
        else:
            when = datetime_to_us(parse_moment(moment))
        if when < user.created_us:
            created = format_moment(us_to_datetime(user.created_us))
            raise InvalidRequest(
                f"{canonical} is before the account {owner!r} existed (created {created})"
            )
        plan = RollbackPlan(owner, seq, canonical)
        if collection is not None:
            fresh = r.get_collection_by_id(collection.id)
            if fresh is None or fresh.owner != owner:
                raise NotFound("no such collection")
            if not any(e.seq <= seq for e in r.collection_events(fresh.id)):
                raise InvalidRequest(f"{canonical} is before the collection {fresh.path!r} existed")
            # Deleted at that moment but live now: the plan deletes it again.
            targets = [fresh]
        else:
            targets = r.list_collections(owner) + r.deleted_collections(owner)
        for coll in targets:
            existed = self._existed(r, coll, seq)
            live = coll.deleted_seq is None
            if existed and not live:
                plan.collections.append(CollectionChange(coll, "undelete"))
            elif not existed and live:
                plan.collections.append(CollectionChange(coll, "delete"))
                continue
            if existed:
                plan.items.extend(self._plan_items(r, coll, seq))
        return plan

    @staticmethod
    def _existed(r: MetadataReader, coll: Collection, seq: int) -> bool:
        events = [e for e in r.collection_events(coll.id) if e.seq <= seq]
        return bool(events) and events[-1].op is Op.MKCOL

    @staticmethod
    def _plan_items(r: MetadataReader, coll: Collection, seq: int) -> list[PlannedChange]:
        changed = r.changes_since(coll.id, seq)  # only names touched since the moment
        if not changed:
            return []
        then = {rev.name: rev for rev in r.state_at(coll.id, seq)}
        out: list[PlannedChange] = []
        for change in changed:
            target = then.get(change.name)
            current = change.item
            wanted_hash = target.content_hash if target and target.op is Op.PUT else None
            current_hash = current.content_hash if current else None
            if wanted_hash == current_hash:
                continue
            if wanted_hash is None:
                out.append(PlannedChange(coll, change.name, "delete", None, change.seq))
            else:
                out.append(
                    PlannedChange(
                        coll, change.name, "restore", target, current.seq if current else None
                    )
                )
        return out

    def _apply(self, w: MetadataWriter, actor: Actor, plan: RollbackPlan) -> RollbackResult:
        before = w.max_seq()
        # Collections that did not exist go first, so an undeleted one can take its path back.
        for cc in plan.collections:
            if cc.action == "delete":
                for sub in w.list_collections(cc.collection.owner):
                    if sub.path.startswith(cc.collection.path + "/") and not any(
                        x.collection.id == sub.id for x in plan.collections
                    ):
                        raise Conflict(
                            f"{sub.path!r} would lose its parent; roll back the whole account"
                        )
                rev = self.store.append(
                    w, NewRevision(actor.user, actor.client, Op.RMCOL, cc.collection.id, "")
                )
                w.mark_collection_deleted(cc.collection.id, rev.seq)
        for cc in sorted(
            (c for c in plan.collections if c.action == "undelete"),
            key=lambda c: c.collection.path.count("/"),
        ):
            self._undelete(w, actor, cc.collection)
        # Deletes before restores: a UID that moved between names stays unique.
        for pc in sorted(plan.items, key=lambda p: p.action != "delete"):
            if pc.action == "delete":
                self.store.append(
                    w, NewRevision(actor.user, actor.client, Op.DELETE, pc.collection.id, pc.name)
                )
            else:
                assert pc.target is not None
                self._put_back(w, actor, pc.collection.id, pc.name, pc.target)
        after = w.max_seq()
        if after == before:
            return RollbackResult(plan, None, None)
        return RollbackResult(plan, before + 1, after)


def _label(body: bytes | None) -> str | None:
    """What a person recognises an item by: a contact's FN, an event's SUMMARY."""
    if body is None:
        return None
    props = properties(body)
    for key in ("FN", "SUMMARY"):
        values = props.get(key)
        if values and values[0].strip():
            return values[0].strip()
    return None
