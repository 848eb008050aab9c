"""Items: the resources inside collections, their validation, sync and queries."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from homeport.errors import (
    Conflict,
    HomeportError,
    IntegrityError,
    InvalidSyncToken,
    NotFound,
    PreconditionFailed,
    TooLarge,
    UidConflict,
    ValidationError,
)
from homeport.formats import calquery, cardquery
from homeport.formats.calindex import (
    Index,
    InstanceIndex,
    SingleInstance,
    instance_index,
    is_single_instance,
    simple_time_range,
    span_index,
)
from homeport.formats.filters import (
    AddressbookQuery,
    CalendarDataRequest,
    CalendarQuery,
    CompFilter,
    TimeRange,
)
from homeport.formats.icalendar import EPSILON, CalendarObject, parse_calendar_object
from homeport.formats.simpleseries import series_index
from homeport.formats.textexpand import expand_text
from homeport.formats.vcard import parse_vcard
from homeport.namespaces import CALDAV, CARDDAV
from homeport.services.accounts import Actor
from homeport.services.collections import Collections, authorize, validate_segment
from homeport.services.guards import Metrics
from homeport.store.core import Body, CommitSteps, Store, Transaction
from homeport.store.interfaces import MetadataReader, MetadataWriter
from homeport.store.model import (
    Change,
    Collection,
    CollectionKind,
    Item,
    NewRevision,
    Op,
    Revision,
    datetime_to_us,
)

log = logging.getLogger("homeport.items")

SYNC_TOKEN_PREFIX = "urn:homeport:sync:"
#: Series instances one calendar-query may list for the instance cache (beyond the
#: first 200 of each object); past it the remaining series are evaluated in full.
LISTING_BUDGET = 20_000


@dataclass(frozen=True)
class Limits:
    """Size limits (bytes) for bodies, by kind of collection."""

    max_object_size: int = 10 * 1024 * 1024
    max_file_size: int = 16 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class Preconditions:
    """The HTTP conditions a write must satisfy, checked inside its transaction."""

    if_match: tuple[str, ...] | None = None  # None = no header; ("*",) = any existing
    if_none_match_any: bool = False  # If-None-Match: *
    if_none_match: tuple[str, ...] = ()

    def check(self, current: Item | None) -> None:
        etag = current.etag if current else None
        if self.if_match is not None and (
            etag is None or ("*" not in self.if_match and etag not in self.if_match)
        ):
            raise PreconditionFailed("the resource changed or does not exist (If-Match)")
        if self.if_none_match_any and current is not None:
            raise PreconditionFailed("the resource already exists (If-None-Match: *)")
        if etag is not None and etag in self.if_none_match:
            raise PreconditionFailed("the resource matches If-None-Match")


@dataclass(frozen=True)
class Parsed:
    uid: str | None
    component: str | None
    start_us: int | None
    end_us: int | None
    index: Index | None = None  # a non-recurring calendar object's instance


class _Unlistable:
    """Marks a body whose instances `instance_index` cannot list (full evaluation)."""


UNLISTABLE = _Unlistable()


class InstanceCache:
    """Content hash -> instance index of that calendar body, least recently used first
    out, bounded by the (approximate) words the entries hold, their keys included.

    Bodies are immutable under their hash, so an entry never goes stale; a series'
    index covers a window around the query that built it and is replaced when a query
    falls outside it. Derived data only: losing it (a restart) costs time, not answers.
    """

    def __init__(self, max_words: int = 3_000_000) -> None:
        self.max_words = max_words
        self._entries: OrderedDict[bytes, Index | _Unlistable] = OrderedDict()
        self._words = 0
        self._lock = threading.Lock()

    def get(self, content_hash: str) -> Index | _Unlistable | None:
        key = _key(content_hash)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, content_hash: str, entry: Index | _Unlistable) -> None:
        key = _key(content_hash)
        with self._lock:
            old = self._entries.pop(key, None)
            self._words -= self._size(old)
            self._entries[key] = entry
            self._words += self._size(entry)
            while self._words > self.max_words and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self._words -= self._size(dropped)

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _size(entry: Index | _Unlistable | None) -> int:
        if entry is None:
            return 0
        # + the key and the dictionary's own bookkeeping
        return 20 + (8 if isinstance(entry, _Unlistable) else entry.size())


def _key(content_hash: str) -> bytes:
    """Hex digests take half the memory as bytes."""
    try:
        return bytes.fromhex(content_hash)
    except ValueError:
        return content_hash.encode()


def _us(value: datetime | None) -> int | None:
    return None if value is None else datetime_to_us(value)


def _exact_span(item: Item) -> bool:
    """Whether the indexed span of a single VEVENT is its interval itself: bounded, and
    not the one-second padding the index gives an instant (EPSILON)."""
    if item.start_us is None or item.end_us is None:
        return False
    return item.end_us - item.start_us != EPSILON // timedelta(microseconds=1)


@dataclass(frozen=True)
class SyncEpoch:
    """Which life of the store a sync token belongs to.

    A restore from a replica starts a new epoch: the log up to `floor` is the same as
    before, but later sequence numbers are reused by new writes. A token from another
    epoch is therefore only trusted at or below the floor (docs/replica-format.md).
    """

    epoch: str | None = None
    floor: int = 0


def make_sync_token(coll: Collection, epoch: SyncEpoch | None = None) -> str:
    token = f"{SYNC_TOKEN_PREFIX}{coll.id}:{coll.sync_seq}"
    if epoch is not None and epoch.epoch:
        token += f":{epoch.epoch}"
    return token


def parse_sync_token(
    coll: Collection, token: str, max_seq: int, epoch: SyncEpoch | None = None
) -> int:
    """The sequence a token stands for; InvalidSyncToken unless it is this collection's,
    not from the future, and from this epoch or below its restore floor (RFC 6578 3.2)."""
    epoch = epoch or SyncEpoch()
    if not token.startswith(SYNC_TOKEN_PREFIX):
        raise InvalidSyncToken("this sync token was not issued by this server")
    parts = token[len(SYNC_TOKEN_PREFIX) :].split(":")
    if len(parts) not in (2, 3) or not (parts[0].isdigit() and parts[1].isdigit()):
        raise InvalidSyncToken("this sync token was not issued by this server")
    if int(parts[0]) != coll.id:
        raise InvalidSyncToken("this sync token belongs to another collection")
    value = int(parts[1])
    token_epoch = parts[2] if len(parts) == 3 else None
    if token_epoch != epoch.epoch and value > epoch.floor:
        raise InvalidSyncToken("the server was restored from a backup since this token")
    if value > max_seq or value < coll.created_seq:
        raise InvalidSyncToken("this sync token is not valid any more")
    return value


def _namespace(coll: Collection) -> str:
    return CARDDAV if coll.kind is CollectionKind.ADDRESSBOOK else CALDAV


class Items:
    def __init__(
        self, store: Store, limits: Limits | None = None, metrics: Metrics | None = None
    ) -> None:
        self.store = store
        self.limits = limits or Limits()
        self.metrics = metrics or Metrics()
        self._epoch: SyncEpoch | None = None
        self.instances = InstanceCache()

    # -- reading -----------------------------------------------------------------

    def get(self, actor: Actor, coll: Collection, name: str) -> Item:
        authorize(actor, coll.owner)
        with self.store.read() as r:
            item = r.get_item(coll.id, name)
        if item is None:
            raise NotFound(f"no item {name!r}")
        return item

    def find(self, actor: Actor, coll: Collection, name: str) -> Item | None:
        authorize(actor, coll.owner)
        with self.store.read() as r:
            return r.get_item(coll.id, name)

    def list_items(self, actor: Actor, coll: Collection) -> list[Item]:
        authorize(actor, coll.owner)
        with self.store.read() as r:
            return r.list_items(coll.id)

    def body(self, item: Item) -> bytes:
        return self.store.read_body(item.content_hash)

    def stream(self, item: Item) -> Iterator[bytes]:
        return self.store.stream_body(item.content_hash)

    def multiget(
        self, actor: Actor, coll: Collection, names: Iterable[str]
    ) -> list[tuple[str, Item | None, bytes | None]]:
        authorize(actor, coll.owner)
        out: list[tuple[str, Item | None, bytes | None]] = []
        with self.store.read() as r:
            for name in names:
                item = r.get_item(coll.id, name)
                body = self.store.read_body(item.content_hash, r) if item else None
                out.append((name, item, body))
        return out

    def list_page(
        self, actor: Actor, coll: Collection, after: str | None, limit: int
    ) -> list[Item]:
        """One page of `list_items`: up to `limit` items named after `after`, by name."""
        authorize(actor, coll.owner)
        with self.store.read() as r:
            return r.list_items_page(coll.id, after, limit)

    def fetch(
        self, actor: Actor, coll: Collection, names: Sequence[str], with_bodies: bool = True
    ) -> dict[str, tuple[Item, bytes | HomeportError | None]]:
        """The current items among `names` (a multiget), by name, from one read view,
        each with its verified body (with `with_bodies`), or the error that stopped it
        (`IntegrityError` for a damaged or missing body): one bad body does not stop
        the others. Absent names are left out. A few queries, not a few per name.
        """
        authorize(actor, coll.owner)
        out: dict[str, tuple[Item, bytes | HomeportError | None]] = {}
        with self.store.read() as r:
            for item, inline in r.get_items_with_inline(coll.id, names):
                body: bytes | HomeportError | None = None
                if with_bodies:
                    body = self._verified_body(r, item.content_hash, inline)
                out[item.name] = (item, body)
        return out

    def read_bodies(self, items: Iterable[Item]) -> dict[str, bytes | HomeportError]:
        """The verified bodies of `items`, by content hash, from one read view; a body
        that cannot be served maps to its error instead of raising."""
        hashes = list(dict.fromkeys(item.content_hash for item in items))
        out: dict[str, bytes | HomeportError] = {}
        with self.store.read() as r:
            inline = r.get_inline_blobs(hashes)
            for content_hash in hashes:
                out[content_hash] = self._verified_body(r, content_hash, inline.get(content_hash))
        return out

    def _verified_body(
        self, r: MetadataReader, content_hash: str, inline: bytes | None
    ) -> bytes | HomeportError:
        if inline is None:
            try:
                return self.store.read_body(content_hash, r)
            except HomeportError as exc:
                return exc
        if hashlib.sha256(inline).hexdigest() != content_hash:
            return IntegrityError(f"stored body {content_hash[:12]} does not match its hash")
        return inline

    def dead_props_many(
        self, coll: Collection, names: Iterable[str]
    ) -> dict[str, dict[str, bytes]]:
        """`dead_props` of many items at once; items without any are left out."""
        with self.store.read() as r:
            return r.get_dead_props_many(coll.id, names)

    def bodies(self, actor: Actor, coll: Collection) -> list[tuple[Item, bytes]]:
        """Every current item with its body, from one consistent snapshot."""
        authorize(actor, coll.owner)
        with self.store.read() as r:
            return [(i, self.store.read_body(i.content_hash, r)) for i in r.list_items(coll.id)]

    def changes(
        self, actor: Actor, coll: Collection, token: str | None
    ) -> tuple[list[Change], str]:
        """RFC 6578: what changed since `token` (everything when None), and the new token."""
        new_token, pages = self.change_pages(actor, coll, token, 5000)
        return [c for page in pages for c in page], new_token

    def change_pages(
        self, actor: Actor, coll: Collection, token: str | None, page: int
    ) -> tuple[str, Iterator[list[Change]]]:
        """`changes`, a page at a time, so that a sync of a large collection can stream.

        The token (and the bad-token error) come from one read, at the collection's
        newest change S; the pages then hold exactly the changes up to S, read as the
        caller asks for them. A name changed again meanwhile moves past S: this sync
        leaves it out and the next one, from the token at S, reports it. The first page
        is read before returning, so an error in it surfaces before any byte is sent.
        """
        authorize(actor, coll.owner)
        epoch = self.epoch()
        present_only = token is None
        with self.store.read() as r:
            fresh = r.get_collection_by_id(coll.id)
            if fresh is None or fresh.deleted_seq is not None:
                raise NotFound("the collection was deleted")
            after = 0 if token is None else parse_sync_token(fresh, token, r.max_seq(), epoch)
            upto = fresh.sync_seq
            first = r.changes_since(
                fresh.id, after, upto_seq=upto, limit=page, present_only=present_only
            )

        def pages() -> Iterator[list[Change]]:
            batch = first
            while True:
                yield batch
                if len(batch) < page:
                    return
                with self.store.read() as r:
                    batch = r.changes_since(
                        coll.id,
                        batch[-1].seq,
                        upto_seq=upto,
                        limit=page,
                        present_only=present_only,
                    )

        return make_sync_token(fresh, epoch), pages()

    def epoch(self) -> SyncEpoch:
        """This store's sync epoch (read once: only a restore, offline, changes it)."""
        if self._epoch is None:
            with self.store.read() as r:
                floor = r.get_meta("sync_floor")
                self._epoch = SyncEpoch(
                    r.get_meta("epoch"), int(floor) if floor and floor.isdigit() else 0
                )
        return self._epoch

    def sync_token(self, coll: Collection, seq: int | None = None) -> str:
        """The collection's sync token (also its getctag); at `seq` for a truncated sync."""
        if seq is not None:
            coll = dataclasses.replace(coll, sync_seq=seq)
        return make_sync_token(coll, self.epoch())

    def usage(self, owner: str) -> int:
        with self.store.read() as r:
            return r.usage_bytes(owner)

    def dead_props(self, coll: Collection, name: str) -> dict[str, bytes]:
        with self.store.read() as r:
            return r.get_dead_props(coll.id, name)

    def set_dead_props(
        self,
        actor: Actor,
        coll: Collection,
        name: str,
        set_props: dict[str, bytes],
        remove: Iterable[str],
    ) -> None:
        authorize(actor, coll.owner)
        remove = list(remove)
        self.store.commit(lambda w: w.set_dead_props(coll.id, name, set_props, remove))

    # -- queries -----------------------------------------------------------------

    def calendar_query(
        self, actor: Actor, coll: Collection, query: CalendarQuery, *, with_data: bool = True
    ) -> list[tuple[Item, bytes]]:
        """Items matching a calendar-query, with the calendar-data to return for each.

        With `with_data` False (the client asked for no calendar-data) the bytes are
        empty. A bare time-range on one component type is answered from the instance
        index of each candidate (`formats.calindex`), cached per body; other filters,
        and objects the index cannot list, are evaluated in full. Raises
        ValidationError when the request would expand too many recurrence instances.
        """
        authorize(actor, coll.owner)
        window = query.time_window()
        simple = simple_time_range(query.filter)
        budget = calquery.InstanceBudget()
        listing = calquery.InstanceBudget(LISTING_BUDGET)
        plain_data = query.data == CalendarDataRequest()
        out: list[tuple[Item, bytes]] = []
        with self.store.read() as r:
            if window is not None:
                candidates = r.items_overlapping(coll.id, _us(window.start), _us(window.end))
            else:
                candidates = r.list_items(coll.id)
            for item in candidates:
                body: bytes | None = None
                obj: CalendarObject | None = None
                if simple is not None:
                    if item.component is not None and item.component != simple[0]:
                        continue  # the object holds no component of that type
                    hit, body, obj = self._indexed_match(
                        item, simple[1], query.filter, budget, listing, r
                    )
                    if hit is False:
                        continue
                    if hit and (not with_data or plain_data):
                        data = b""
                        if with_data:
                            data = body if body is not None else self._read(item, r)
                        out.append((item, data))
                        continue
                    if hit and with_data and query.data.expand is not None:
                        body = body if body is not None else self._read(item, r)
                        text = self._expanded_text(item, body, query.data.expand)
                        if text is not None:
                            out.append((item, text))
                            continue
                if obj is None:
                    body = body if body is not None else self._read(item, r)
                    try:
                        obj = parse_calendar_object(body)
                    except ValidationError:
                        continue
                if simple is None and not calquery.matches(obj, query.filter, budget=budget):
                    continue
                assert body is not None
                data = b""
                if with_data:
                    data = calquery.render_calendar_data(obj, body, query.data, budget=budget)
                out.append((item, data))
        return out

    def _expanded_text(self, item: Item, body: bytes, rng: TimeRange) -> bytes | None:
        """CALDAV:expand written from the stored text and the cached instance index,
        when both allow it (`formats.textexpand`); None for the full path."""
        entry = self.instances.get(item.content_hash)
        if not isinstance(entry, InstanceIndex | SingleInstance):
            return None
        if rng.start is None or rng.end is None:
            return None
        found = entry.overlapping(datetime_to_us(rng.start), datetime_to_us(rng.end))
        if found is None:
            return None
        return expand_text(body, entry.component, found, entry.recurring)

    def _read(self, item: Item, r: MetadataReader) -> bytes:
        return self.store.read_body(item.content_hash, r)

    def _indexed_match(
        self,
        item: Item,
        rng: TimeRange,
        flt: CompFilter,
        budget: calquery.InstanceBudget,
        listing: calquery.InstanceBudget,
        r: MetadataReader,
    ) -> tuple[bool, bytes | None, CalendarObject | None]:
        """Whether `item` has an instance overlapping `rng`, from its instance index
        (built and cached when missing or not covering `rng`), with the body and the
        parsed object when they had to be read.

        Listing series is charged to `listing`; once it runs out, this request stops
        listing and evaluates the remaining series in full (which stops at the first
        instance that matches) instead of failing."""
        start, end = _us(rng.start), _us(rng.end)
        entry = self.instances.get(item.content_hash)
        if isinstance(entry, InstanceIndex | SingleInstance):
            hit = entry.overlaps(start, end)
            if hit is not None:
                return hit, None, None
        body = self._read(item, r)
        if (
            entry is None
            and item.component == "VEVENT"
            and _exact_span(item)
            and is_single_instance(body, item.component)
        ):
            assert item.start_us is not None and item.end_us is not None
            single = span_index(item.component, item.start_us, item.end_us)
            self.instances.put(item.content_hash, single)
            return bool(single.overlaps(start, end)), body, None
        if (
            item.component == "VEVENT"
            and not isinstance(entry, _Unlistable)
            and start is not None
            and end is not None
        ):
            # a plain series, listed from its text (`formats.simpleseries`): at most
            # MAX_LISTED_INSTANCES cheap steps, so not charged to `listing`
            series = series_index(body, start, end)
            if series is not None:
                self.instances.put(item.content_hash, series)
                return bool(series.overlaps(start, end)), body, None
        try:
            obj = parse_calendar_object(body)
        except ValidationError:
            return False, body, None
        if not isinstance(entry, _Unlistable) and listing.used <= listing.limit:
            bounded = rng.start is not None and rng.end is not None
            try:
                index = instance_index(obj, rng if bounded else None, listing.meter())
            except ValidationError:  # this request's listing budget is spent
                index, bounded = None, False
            if index is not None:
                self.instances.put(item.content_hash, index)
                hit = index.overlaps(start, end)
                if hit is not None:
                    return hit, body, obj
            elif bounded:
                self.instances.put(item.content_hash, UNLISTABLE)
        return calquery.matches(obj, flt, budget=budget), body, obj

    def addressbook_query(
        self, actor: Actor, coll: Collection, query: AddressbookQuery
    ) -> list[tuple[Item, bytes]]:
        authorize(actor, coll.owner)
        out: list[tuple[Item, bytes]] = []
        with self.store.read() as r:
            for item in r.list_items(coll.id):
                body = self.store.read_body(item.content_hash, r)
                if cardquery.matches(body, query):
                    out.append((item, body))
                    if query.limit is not None and len(out) >= query.limit:
                        break
        return out

    def freebusy(self, actor: Actor, coll: Collection, rng: TimeRange) -> bytes:
        authorize(actor, coll.owner)
        objects: list[CalendarObject] = []
        with self.store.read() as r:
            candidates = r.items_overlapping(
                coll.id,
                datetime_to_us(rng.start) if rng.start else None,
                datetime_to_us(rng.end) if rng.end else None,
            )
            for item in candidates:
                try:
                    objects.append(
                        parse_calendar_object(self.store.read_body(item.content_hash, r))
                    )
                except ValidationError:
                    continue
        return calquery.freebusy(objects, rng, budget=calquery.InstanceBudget())

    # -- writing -----------------------------------------------------------------

    def _parse(self, coll: Collection, data: bytes) -> Parsed:
        """Validate a body for its collection; raise ValidationError (nothing stored)."""
        if coll.kind is CollectionKind.CALENDAR:
            obj = parse_calendar_object(data)
            if coll.components and obj.component not in coll.components:
                raise ValidationError(
                    f"this calendar does not accept {obj.component} components",
                    CALDAV,
                    "supported-calendar-component",
                )
            return Parsed(
                obj.uid,
                obj.component,
                datetime_to_us(obj.span_start) if obj.span_start else None,
                datetime_to_us(obj.span_end) if obj.span_end else None,
                instance_index(obj),  # None for a series: listed when first queried
            )
        if coll.kind is CollectionKind.ADDRESSBOOK:
            card = parse_vcard(data)
            return Parsed(card.uid, "VCARD", None, None)
        return Parsed(None, None, None, None)

    def put(
        self,
        actor: Actor,
        coll: Collection,
        name: str,
        chunks: Iterable[bytes],
        content_type: str,
        pre: Preconditions | None = None,
    ) -> tuple[Item, bool]:
        """Store a new current body for `name`. Returns (item, created).

        A body refused by its If-Match / If-None-Match precondition is still kept, as a
        conflict revision of `name` (never current, listed by history, restorable):
        PreconditionFailed is raised all the same.
        """
        return self.store.run_steps(self.put_steps(actor, coll, name, chunks, content_type, pre))

    def put_steps(
        self,
        actor: Actor,
        coll: Collection,
        name: str,
        chunks: Iterable[bytes],
        content_type: str,
        pre: Preconditions | None = None,
    ) -> CommitSteps[tuple[Item, bool]]:
        """`put` as commit steps, for a caller that drives the commits itself."""
        authorize(actor, coll.owner)
        validate_segment(name)
        pre = pre or Preconditions()
        if coll.kind is CollectionKind.PLAIN:
            body = self.store.stage_stream(chunks, self.limits.max_file_size)
            parsed = Parsed(None, None, None, None)
        else:
            limit = self.limits.max_object_size
            buf = bytearray()
            for chunk in chunks:
                buf += chunk
                if len(buf) > limit:
                    raise TooLarge(
                        f"the body is larger than the limit of {limit} bytes",
                        _namespace(coll),
                        limit,
                    )
            data = bytes(buf)
            parsed = self._parse(coll, data)
            body = self.store.stage_bytes(data)
            if parsed.index is not None:
                self.instances.put(body.content_hash, parsed.index)
        try:
            tx = self._put_tx(actor, coll, name, body, content_type, parsed, pre)
            done: tuple[Item, bool] = yield tx
        except PreconditionFailed:
            yield from self._keep_conflict(actor, coll, name, body, content_type, parsed)
            raise
        return done

    def _keep_conflict(
        self,
        actor: Actor,
        coll: Collection,
        name: str,
        body: Body,
        content_type: str,
        parsed: Parsed,
    ) -> CommitSteps[Revision | None]:
        """Keep a body its precondition refused, in a commit of its own (the refused
        write's transaction was rolled back). Never raises: the client gets its 412
        whether or not this worked. Nothing is kept when nothing would be lost: the
        body is the current one, or the newest revision is already this conflict."""

        def tx(w: MetadataWriter) -> Revision | None:
            live = w.get_collection_by_id(coll.id)
            if live is None or live.deleted_seq is not None:
                return None
            current = w.get_item(coll.id, name)
            if current is not None and current.content_hash == body.content_hash:
                return None
            history = w.item_history(coll.id, name)
            newest = history[-1] if history else None
            if newest and newest.op is Op.CONFLICT and newest.content_hash == body.content_hash:
                return None
            self.store.record_body(w, body)
            return self.store.append(
                w,
                NewRevision(
                    actor.user,
                    actor.client,
                    Op.CONFLICT,
                    coll.id,
                    name,
                    body.content_hash,
                    body.size,
                    content_type,
                    parsed.uid,
                    parsed.component,
                    parsed.start_us,
                    parsed.end_us,
                ),
            )

        try:
            rev: Revision | None = yield tx
        except HomeportError as exc:
            log.warning(
                "conflict_not_kept collection=%d name=%r reason=%s",
                coll.id,
                name,
                type(exc).__name__,
            )
            return None
        if rev is not None:
            self.metrics.inc("conflicts_kept_total")
            log.info(
                "conflict_kept collection=%d name=%r seq=%d user=%s client=%r",
                coll.id,
                name,
                rev.seq,
                actor.user,
                actor.client,
            )
        return rev

    def _put_tx(
        self,
        actor: Actor,
        coll: Collection,
        name: str,
        body: Body,
        content_type: str,
        parsed: Parsed,
        pre: Preconditions,
    ) -> Transaction:
        """The transaction of a PUT: its checks, then the new revision."""

        def tx(w: MetadataWriter) -> tuple[Item, bool]:
            self._require_live(w, coll)
            current = w.get_item(coll.id, name)
            pre.check(current)
            if coll.kind is CollectionKind.PLAIN and w.get_collection(
                coll.owner, f"{coll.path}/{name}"
            ):
                raise Conflict(f"{name!r} is a collection")
            self._check_uid(w, coll, name, parsed.uid)
            self.store.record_body(w, body)
            rev = self.store.append(
                w,
                NewRevision(
                    actor.user,
                    actor.client,
                    Op.PUT,
                    coll.id,
                    name,
                    body.content_hash,
                    body.size,
                    content_type,
                    parsed.uid,
                    parsed.component,
                    parsed.start_us,
                    parsed.end_us,
                ),
            )
            item = Item(
                coll.id,
                name,
                rev.seq,
                body.content_hash,
                body.size,
                content_type,
                parsed.uid,
                rev.at_us,
                parsed.component,
            )
            return item, current is None

        return tx

    @staticmethod
    def _require_live(r: MetadataReader, coll: Collection) -> None:
        fresh = r.get_collection_by_id(coll.id)
        if fresh is None or fresh.deleted_seq is not None:
            raise Conflict(f"collection {coll.path!r} does not exist any more")

    @staticmethod
    def _check_uid(r: MetadataReader, coll: Collection, name: str, uid: str | None) -> None:
        if uid is None or coll.kind is CollectionKind.PLAIN:
            return
        other = r.find_uid(coll.id, uid)
        if other is not None and other.name != name:
            raise UidConflict(
                f"another item ({other.name}) in this collection has the same UID",
                _namespace(coll),
                other.name,
            )

    def delete(
        self, actor: Actor, coll: Collection, name: str, pre: Preconditions | None = None
    ) -> None:
        """Write a tombstone; the body stays in history."""
        self.store.run_steps(self.delete_steps(actor, coll, name, pre))

    def delete_steps(
        self, actor: Actor, coll: Collection, name: str, pre: Preconditions | None = None
    ) -> CommitSteps[None]:
        """`delete` as commit steps, for a caller that drives the commits itself."""
        authorize(actor, coll.owner)
        pre = pre or Preconditions()

        def tx(w: MetadataWriter) -> None:
            current = w.get_item(coll.id, name)
            if current is None:
                raise NotFound(f"no item {name!r}")
            pre.check(current)
            self.store.append(w, NewRevision(actor.user, actor.client, Op.DELETE, coll.id, name))

        yield tx

    def transfer(
        self,
        actor: Actor,
        src: Collection,
        name: str,
        dst: Collection,
        dst_name: str,
        *,
        move: bool,
        overwrite: bool,
        pre: Preconditions | None = None,
    ) -> bool:
        """COPY or MOVE one item atomically. Returns True when the destination was created."""
        authorize(actor, src.owner)
        authorize(actor, dst.owner)
        validate_segment(dst_name)
        pre = pre or Preconditions()
        if src.id == dst.id and name == dst_name:
            raise PreconditionFailed("source and destination are the same")

        def tx(w: MetadataWriter) -> bool:
            self._require_live(w, src)
            self._require_live(w, dst)
            item = w.get_item(src.id, name)
            if item is None:
                raise NotFound(f"no item {name!r}")
            pre.check(item)
            existing = w.get_item(dst.id, dst_name)
            if existing is not None and not overwrite:
                raise PreconditionFailed("the destination exists and Overwrite is F")
            replaced = w.get_collection(dst.owner, f"{dst.path}/{dst_name}")
            if dst.kind is CollectionKind.PLAIN and replaced is not None:
                if not overwrite:
                    raise PreconditionFailed("the destination exists and Overwrite is F")
                # Overwrite: T replaces a folder with the item, in this same transaction,
                # so a later refusal (UID, precondition) leaves the folder untouched.
                Collections(self.store).delete_tree_in(w, actor, replaced)
            else:
                replaced = None
            rev = w.item_history(src.id, name)[-1]
            parsed = Parsed(item.uid, item.component, rev.start_us, rev.end_us)
            if dst.kind is not src.kind or (
                dst.kind is CollectionKind.CALENDAR
                and dst.components
                and item.component not in dst.components
            ):
                data = self.store.read_body(item.content_hash, w)
                parsed = self._parse(dst, data)
            # A move within one collection takes its UID along: no conflict with itself.
            if not (move and src.id == dst.id):
                uid_owner = w.find_uid(dst.id, parsed.uid) if parsed.uid else None
                if uid_owner is not None and uid_owner.name != dst_name:
                    raise UidConflict(
                        f"another item ({uid_owner.name}) in the destination has the same UID",
                        _namespace(dst),
                        uid_owner.name,
                    )
            if move:
                self.store.append(w, NewRevision(actor.user, actor.client, Op.DELETE, src.id, name))
            self.store.append(
                w,
                NewRevision(
                    actor.user,
                    actor.client,
                    Op.PUT,
                    dst.id,
                    dst_name,
                    item.content_hash,
                    item.size,
                    item.content_type,
                    parsed.uid,
                    parsed.component,
                    parsed.start_us,
                    parsed.end_us,
                ),
            )
            w.copy_dead_props(src.id, name, dst.id, dst_name)
            return existing is None and replaced is None

        return self.store.commit(tx)


__all__ = [
    "InstanceCache",
    "Items",
    "Limits",
    "Preconditions",
    "make_sync_token",
    "parse_sync_token",
]
