"""The `MetadataStore` / `MetadataReader` / `MetadataWriter` contract, run against every
metadata backend. Writes go through `write()` on one thread at a time, as the storage
core's committer does; reads may come from any thread."""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from homeport.errors import AlreadyExists, NotFound, WouldBlock
from homeport.store.interfaces import MetadataReader, MetadataStore, MetadataWriter
from homeport.store.model import (
    AlertRecord,
    Change,
    Collection,
    CollectionKind,
    CollectionProps,
    DeletionBurst,
    Item,
    NewRevision,
    Op,
    Revision,
    User,
)
from tests.backends.factories import MetadataBackend

REPO = Path(__file__).resolve().parents[2]
OWNER = "alice"
CLIENT = "suite"
_clock = itertools.count(1_700_000_000_000_000, 1_000)


def tick() -> int:
    return next(_clock)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_user(w: MetadataWriter, name: str = OWNER, admin: bool = False) -> User:
    user = User(name, f"hash-of-{name}", admin, tick())
    w.add_user(user)
    return user


def mkcol(
    w: MetadataWriter,
    path: str,
    owner: str = OWNER,
    kind: CollectionKind = CollectionKind.CALENDAR,
    props: CollectionProps | None = None,
) -> Collection:
    """Create a collection the way the domain layer does: row first, then its MKCOL entry."""
    coll = w.create_collection(owner, path, kind, props or CollectionProps(), w.max_seq() + 1)
    w.append(NewRevision(owner, CLIENT, Op.MKCOL, coll.id, ""), tick())
    return coll


def rmcol(w: MetadataWriter, coll: Collection) -> Revision:
    rev = w.append(NewRevision(coll.owner, CLIENT, Op.RMCOL, coll.id, ""), tick())
    w.mark_collection_deleted(coll.id, rev.seq)
    return rev


def put(
    w: MetadataWriter,
    coll: Collection,
    name: str,
    data: bytes,
    *,
    uid: str | None = None,
    start: int | None = None,
    end: int | None = None,
    op: Op = Op.PUT,
    inline: bool = True,
) -> Revision:
    w.record_blob(sha(data), len(data), data if inline else None)
    rev = NewRevision(
        user=coll.owner,
        client=CLIENT,
        op=op,
        collection_id=coll.id,
        name=name,
        content_hash=sha(data),
        size=len(data),
        content_type="text/calendar",
        uid=uid,
        component="VEVENT",
        start_us=start,
        end_us=end,
    )
    return w.append(rev, tick())


def delete(w: MetadataWriter, coll: Collection, name: str) -> Revision:
    return w.append(NewRevision(coll.owner, CLIENT, Op.DELETE, coll.id, name), tick())


def current(r: MetadataReader, coll: Collection) -> dict[str, str]:
    return {item.name: item.content_hash for item in r.list_items(coll.id)}


# -- users -------------------------------------------------------------------------


def test_users_can_be_added_listed_and_read(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        bob = add_user(w, "bob", admin=True)
        alice = add_user(w, "alice")
    with metadata_store.read() as r:
        assert r.get_user("bob") == bob
        assert r.get_user("alice") == alice
        assert r.get_user("carol") is None
        assert r.list_users() == [alice, bob]


def test_a_duplicate_user_is_refused(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        first = add_user(w, "bob")
    with pytest.raises(AlreadyExists), metadata_store.write() as w:
        w.add_user(User("bob", "other", True, tick()))
    with metadata_store.read() as r:
        assert r.list_users() == [first]


def test_users_can_be_removed_and_rehashed(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        add_user(w, "bob")
        add_user(w, "carol")
    with metadata_store.write() as w:
        w.remove_user("bob")
        w.set_password_hash("carol", "new-hash")
    with metadata_store.read() as r:
        assert r.get_user("bob") is None
        carol = r.get_user("carol")
        assert carol is not None and carol.password_hash == "new-hash"
    with pytest.raises(NotFound), metadata_store.write() as w:
        w.remove_user("bob")
    with pytest.raises(NotFound), metadata_store.write() as w:
        w.set_password_hash("nobody", "x")


# -- collections -------------------------------------------------------------------


def test_a_created_collection_reads_back_with_its_props(metadata_store: MetadataStore) -> None:
    props = CollectionProps(
        displayname="Work",
        description="meetings",
        color="#ff0000",
        order="3",
        components=("VEVENT", "VTODO"),
    )
    with metadata_store.write() as w:
        coll = mkcol(w, "work", props=props)
    assert coll.path == "work" and coll.owner == OWNER
    assert coll.kind is CollectionKind.CALENDAR
    assert coll.sync_seq == coll.created_seq == 1
    assert coll.deleted_seq is None
    with metadata_store.read() as r:
        got = r.get_collection(OWNER, "work")
        assert got is not None
        assert got == r.get_collection_by_id(coll.id)
    assert (got.displayname, got.description, got.color, got.order, got.components) == (
        "Work",
        "meetings",
        "#ff0000",
        "3",
        ("VEVENT", "VTODO"),
    )


def test_a_live_path_is_unique_per_owner(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        mkcol(w, "contacts", kind=CollectionKind.ADDRESSBOOK)
        mkcol(w, "contacts", owner="bob", kind=CollectionKind.ADDRESSBOOK)
    with pytest.raises(AlreadyExists), metadata_store.write() as w:
        mkcol(w, "contacts", kind=CollectionKind.CALENDAR)
    with metadata_store.read() as r:
        assert [c.path for c in r.list_collections(OWNER)] == ["contacts"]
        assert [c.path for c in r.list_collections("bob")] == ["contacts"]


def test_a_path_is_reusable_after_its_collection_is_deleted(
    metadata_store: MetadataStore,
) -> None:
    with metadata_store.write() as w:
        old = mkcol(w, "cal")
        put(w, old, "a.ics", b"old item")
    with metadata_store.write() as w:
        gone = rmcol(w, old)
        new = mkcol(w, "cal")
    assert new.id != old.id
    with metadata_store.read() as r:
        assert r.get_collection(OWNER, "cal") == new
        old_now = r.get_collection_by_id(old.id)
        assert old_now is not None and old_now.deleted_seq == gone.seq
        assert r.list_collections(OWNER) == [new]
        assert r.list_items(new.id) == []
        assert list(current(r, old)) == ["a.ics"]  # the old collection's rows are kept


def test_list_collections_gives_direct_children(metadata_store: MetadataStore) -> None:
    plain = CollectionKind.PLAIN
    with metadata_store.write() as w:
        for path in ["files", "files/photos", "files/photos/2024", "files/docs", "cal"]:
            mkcol(w, path, kind=plain)
        mkcol(w, "files/other-owner", owner="bob", kind=plain)
        dead = mkcol(w, "files/trash", kind=plain)
        rmcol(w, dead)

    def paths(parent: str | None) -> list[str]:
        with metadata_store.read() as r:
            return sorted(c.path for c in r.list_collections(OWNER, parent))

    assert paths(None) == sorted(
        ["files", "files/photos", "files/photos/2024", "files/docs", "cal"]
    )
    assert paths("") == ["cal", "files"]
    assert paths("files") == ["files/docs", "files/photos"]
    assert paths("files/photos") == ["files/photos/2024"]
    assert paths("cal") == []


def test_update_collection_changes_only_given_props(metadata_store: MetadataStore) -> None:
    props = CollectionProps(displayname="A", description="d", color="#111", order="1")
    with metadata_store.write() as w:
        coll = mkcol(w, "cal", props=props)
    with metadata_store.write() as w:
        updated = w.update_collection(coll.id, CollectionProps(displayname="B", color="#222"))
    assert (updated.displayname, updated.description, updated.color, updated.order) == (
        "B",
        "d",
        "#222",
        "1",
    )
    with metadata_store.read() as r:
        assert r.get_collection_by_id(coll.id) == updated


def test_update_collection_clears_props(metadata_store: MetadataStore) -> None:
    props = CollectionProps(
        displayname="A", description="d", color="#111", order="1", components=("VTODO",)
    )
    with metadata_store.write() as w:
        coll = mkcol(w, "cal", props=props)
    with metadata_store.write() as w:
        w.update_collection(
            coll.id,
            CollectionProps(
                description="kept", clear=frozenset({"displayname", "order", "components"})
            ),
        )
    with metadata_store.read() as r:
        got = r.get_collection_by_id(coll.id)
    assert got is not None
    assert got.displayname is None and got.order is None and got.components == ()
    assert got.description == "kept" and got.color == "#111"


def test_update_of_a_missing_collection_raises_not_found(metadata_store: MetadataStore) -> None:
    with pytest.raises(NotFound), metadata_store.write() as w:
        w.update_collection(12345, CollectionProps(displayname="x"))


# -- the change log and the current-state index ------------------------------------


def test_append_gives_gap_free_increasing_seqs_across_transactions(
    metadata_store: MetadataStore,
) -> None:
    with metadata_store.read() as r:
        assert r.max_seq() == 0
        assert r.log() == []
    returned: list[Revision] = []
    with metadata_store.write() as w:
        coll = mkcol(w, "cal")
    for round_ in range(5):
        with metadata_store.write() as w:
            for i in range(round_ + 1):
                returned.append(put(w, coll, f"{round_}-{i}.ics", f"{round_} {i}".encode()))
            if round_ % 2:
                returned.append(delete(w, coll, f"{round_}-0.ics"))
    with metadata_store.read() as r:
        log = r.log()
        assert [rev.seq for rev in log] == list(range(1, len(log) + 1))
        assert r.max_seq() == len(log)
        assert log[1:] == returned  # what append returned is what the log keeps
        assert r.log(after_seq=5, limit=3) == log[5:8]
        assert r.log(after_seq=len(log)) == []


def test_the_current_state_follows_the_newest_put_and_delete(
    metadata_store: MetadataStore,
) -> None:
    with metadata_store.write() as w:
        coll = mkcol(w, "cal")
        v1 = put(w, coll, "a.ics", b"v1", uid="u1")
    with metadata_store.write() as w:
        v2 = put(w, coll, "a.ics", b"v2", uid="u1")
        put(w, coll, "b.ics", b"b", uid="u2")
    with metadata_store.read() as r:
        item = r.get_item(coll.id, "a.ics")
        assert item == Item(
            collection_id=coll.id,
            name="a.ics",
            seq=v2.seq,
            content_hash=sha(b"v2"),
            size=2,
            content_type="text/calendar",
            uid="u1",
            modified_us=v2.at_us,
            component="VEVENT",
        )
        assert [i.name for i in r.list_items(coll.id)] == ["a.ics", "b.ics"]
    with metadata_store.write() as w:
        gone = delete(w, coll, "a.ics")
    with metadata_store.read() as r:
        assert r.get_item(coll.id, "a.ics") is None
        assert [i.name for i in r.list_items(coll.id)] == ["b.ics"]
        assert [rev.seq for rev in r.item_history(coll.id, "a.ics")] == [
            v1.seq,
            v2.seq,
            gone.seq,
        ]
        rows = {(row[0], row[1]): (row[2], row[3]) for row in r.item_rows()}
        assert rows[(coll.id, "a.ics")] == (gone.seq, True)  # the tombstone is indexed
        hashes = {(row[0], row[1]): row[4] for row in r.item_rows() if not row[3]}
        assert hashes == {(coll.id, "b.ics"): sha(b"b")}
    with metadata_store.write() as w:
        back = put(w, coll, "a.ics", b"v3")
    with metadata_store.read() as r:
        item = r.get_item(coll.id, "a.ics")
        assert item is not None and item.seq == back.seq and item.content_hash == sha(b"v3")


def test_sync_seq_is_the_newest_item_change(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        other = mkcol(w, "other")
        first = put(w, cal, "a.ics", b"a")
        put(w, other, "x.ics", b"x")
    with metadata_store.read() as r:
        got = r.get_collection_by_id(cal.id)
        assert got is not None and got.sync_seq == first.seq
    with metadata_store.write() as w:
        gone = delete(w, cal, "a.ics")
        put(w, cal, "b.ics", b"conflicting", op=Op.CONFLICT)
    with metadata_store.read() as r:
        got = r.get_collection_by_id(cal.id)
        assert got is not None and got.sync_seq == gone.seq  # a CONFLICT changes nothing


def test_conflict_entries_never_become_current(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        coll = mkcol(w, "cal")
        kept = put(w, coll, "a.ics", b"kept")
    with metadata_store.write() as w:
        refused = put(w, coll, "a.ics", b"refused", op=Op.CONFLICT)
        put(w, coll, "new.ics", b"refused new", op=Op.CONFLICT)
    with metadata_store.read() as r:
        assert current(r, coll) == {"a.ics": sha(b"kept")}
        assert r.get_item(coll.id, "new.ics") is None
        assert r.changes_since(coll.id, kept.seq) == []
        assert [c.name for c in r.changes_since(coll.id, 0)] == ["a.ics"]
        assert r.log()[-2] == refused  # kept in the log, with its body's hash
        assert r.get_inline_blob(sha(b"refused")) == b"refused"
        assert {(row[0], row[1]) for row in r.item_rows()} == {(coll.id, "a.ics")}


def test_changes_since_is_exactly_the_newest_state_per_name(
    metadata_store: MetadataStore,
) -> None:
    revs: list[Revision] = []
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        other = mkcol(w, "other")
    script: list[tuple[str, Collection, str, bytes]] = [
        ("put", cal, "a", b"a1"),
        ("put", cal, "b", b"b1"),
        ("put", other, "a", b"other a"),
        ("put", cal, "a", b"a2"),
        ("del", cal, "b", b""),
        ("conflict", cal, "c", b"c0"),
        ("put", cal, "c", b"c1"),
        ("del", cal, "a", b""),
        ("put", cal, "b", b"b2"),
        ("put", cal, "d", b"d1"),
        ("del", cal, "d", b""),
    ]
    for start in range(0, len(script), 3):  # several transactions
        with metadata_store.write() as w:
            for what, coll, name, data in script[start : start + 3]:
                if what == "put":
                    revs.append(put(w, coll, name, data))
                elif what == "del":
                    revs.append(delete(w, coll, name))
                else:
                    revs.append(put(w, coll, name, data, op=Op.CONFLICT))
    with metadata_store.read() as r:
        top = r.max_seq()
        for token in range(top + 1):
            newest: dict[str, Revision] = {}
            for rev in revs:
                if rev.collection_id == cal.id and rev.op in (Op.PUT, Op.DELETE):
                    newest[rev.name] = rev
            expected = {
                name: (rev.seq, None if rev.op is Op.DELETE else rev.content_hash)
                for name, rev in newest.items()
                if rev.seq > token
            }
            changes = r.changes_since(cal.id, token)
            names = [c.name for c in changes]
            assert len(names) == len(set(names)), f"a name twice after {token}"
            got = {
                c.name: (c.seq, None if c.item is None else c.item.content_hash) for c in changes
            }
            assert got == expected, f"after token {token}"
            for change in changes:
                if change.item is not None:
                    assert change.item == r.get_item(cal.id, change.name)
                    assert change.item.seq == change.seq
        assert r.changes_since(cal.id, top) == []
        assert r.changes_since(other.id, 0) == [Change("a", revs[2].seq, r.get_item(other.id, "a"))]


def test_find_uid_ignores_deleted_and_replaced_items(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        other = mkcol(w, "other")
        put(w, cal, "a.ics", b"a", uid="uid-a")
        put(w, cal, "b.ics", b"b", uid="uid-b")
        put(w, other, "a.ics", b"other", uid="uid-a")
    with metadata_store.read() as r:
        found = r.find_uid(cal.id, "uid-a")
        assert found is not None and found.name == "a.ics" and found.content_hash == sha(b"a")
    with metadata_store.write() as w:
        delete(w, cal, "a.ics")
        put(w, cal, "b.ics", b"b renamed uid", uid="uid-b2")
    with metadata_store.read() as r:
        assert r.find_uid(cal.id, "uid-a") is None
        assert r.find_uid(cal.id, "uid-b") is None
        found = r.find_uid(cal.id, "uid-b2")
        assert found is not None and found.name == "b.ics"
        found = r.find_uid(other.id, "uid-a")
        assert found is not None and found.collection_id == other.id
    with metadata_store.write() as w:
        put(w, cal, "c.ics", b"c", uid="uid-a")  # the uid is free again
    with metadata_store.read() as r:
        found = r.find_uid(cal.id, "uid-a")
        assert found is not None and found.name == "c.ics"


def test_list_items_page_walks_the_listing_in_name_order(metadata_store: MetadataStore) -> None:
    names = [f"{i:04d}.ics" for i in range(0, 1200, 3)] + ["é.ics", "a b&<c>.ics"]
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        other = mkcol(w, "other")
        for name in names:
            put(w, cal, name, name.encode())
        put(w, other, "0001.ics", b"elsewhere")
        delete(w, cal, "0003.ics")
    with metadata_store.read() as r:
        everything = r.list_items(cal.id)
        pages: list[list[Item]] = []
        after: str | None = None
        while True:
            page = r.list_items_page(cal.id, after, 7)
            if not page:
                break
            assert len(page) <= 7
            pages.append(page)
            after = page[-1].name
        assert [i for p in pages for i in p] == everything
        assert "0003.ics" not in {i.name for i in everything}
        assert r.list_items_page(cal.id, None, 2) == everything[:2]
        assert r.list_items_page(cal.id, everything[-1].name, 5) == []
        assert r.list_items_page(cal.id, "0100", 1) == [r.get_item(cal.id, "0102.ics")]


def test_items_and_inline_bodies_are_fetched_in_one_batch(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        other = mkcol(w, "other")
        for i in range(1100):  # more than one IN (...) chunk
            put(w, cal, f"{i:05d}.ics", f"body {i}".encode())
        put(w, cal, "big.ics", b"external body", inline=False)
        put(w, cal, "gone.ics", b"gone")
        delete(w, cal, "gone.ics")
        put(w, other, "00001.ics", b"other collection")
    wanted = [f"{i:05d}.ics" for i in range(1099, -1, -1)]
    asked = [*wanted, "big.ics", "gone.ics", "missing.ics", "00001.ics"]
    with metadata_store.read() as r:
        got = r.get_items_with_inline(cal.id, asked)
        assert [item.name for item, _ in got] == sorted([*wanted, "big.ics"])
        for item, body in got:
            assert item == r.get_item(cal.id, item.name)
            if item.name == "big.ics":
                assert body is None
            else:
                assert body == f"body {int(item.name[:5])}".encode()
                assert sha(body) == item.content_hash
        assert r.get_items_with_inline(cal.id, []) == []
        few = r.get_items_with_inline(cal.id, ["00005.ics", "00003.ics", "big.ics", "00004.ics"])
        assert [item.name for item, _ in few] == ["00003.ics", "00004.ics", "00005.ics", "big.ics"]
        assert r.get_items_with_inline(other.id, ["00001.ics"])[0][1] == b"other collection"
        hashes = [sha(b"body 1"), sha(b"body 2"), sha(b"external body"), sha(b"unknown")]
        assert r.get_inline_blobs(hashes * 2) == {
            sha(b"body 1"): b"body 1",
            sha(b"body 2"): b"body 2",
        }
        many = [sha(f"body {i}".encode()) for i in range(1100)]
        assert len(r.get_inline_blobs(many)) == 1100
        assert r.get_inline_blobs([]) == {}


def test_dead_props_of_many_items_at_once(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        other = mkcol(w, "other")
        w.set_dead_props(cal.id, "", {"{x:}coll": b"c"}, ())
        w.set_dead_props(cal.id, "a.ics", {"{x:}one": b"1", "{x:}two": b"2"}, ())
        w.set_dead_props(cal.id, "b.ics", {"{x:}three": b"3"}, ())
        w.set_dead_props(other.id, "a.ics", {"{x:}other": b"o"}, ())
        for i in range(600):
            w.set_dead_props(cal.id, f"m{i:03d}", {"{x:}n": str(i).encode()}, ())
    with metadata_store.read() as r:
        assert r.get_dead_props_many(cal.id, ["a.ics", "b.ics", "none.ics", "a.ics"]) == {
            "a.ics": {"{x:}one": b"1", "{x:}two": b"2"},
            "b.ics": {"{x:}three": b"3"},
        }
        many = r.get_dead_props_many(cal.id, [f"m{i:03d}" for i in range(600)])
        assert len(many) == 600 and many["m599"] == {"{x:}n": b"599"}
        assert r.get_dead_props_many(cal.id, []) == {}


def test_items_overlapping_returns_every_candidate(metadata_store: MetadataStore) -> None:
    spans: dict[str, tuple[int | None, int | None]] = {
        "early": (10, 20),
        "late": (30, 40),
        "long": (0, 100),
        "no-span": (None, None),
        "from-25": (25, None),
        "until-15": (None, 15),
        "far": (1000, 2000),
    }
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        other = mkcol(w, "other")
        for name, (start, end) in spans.items():
            put(w, cal, name, name.encode(), start=start, end=end)
        put(w, cal, "deleted", b"deleted", start=10, end=40)
        delete(w, cal, "deleted")
        put(w, cal, "deleted-no-span", b"deleted-no-span")
        delete(w, cal, "deleted-no-span")
        put(w, other, "elsewhere", b"elsewhere", start=10, end=40)

    def names(start: int | None, end: int | None) -> set[str]:
        with metadata_store.read() as r:
            return {i.name for i in r.items_overlapping(cal.id, start, end)}

    everything = set(spans)
    assert names(None, None) == everything
    # Items that do overlap, and items without a span, must be among the candidates;
    # deleted items and other collections' items never are.
    must = {
        (12, 18): {"early", "long", "no-span", "until-15"},
        (32, 35): {"late", "long", "no-span", "from-25"},
        (None, 5): {"long", "no-span", "until-15"},
        (1500, None): {"far", "no-span", "from-25"},
        (500, 600): {"no-span", "from-25"},
    }
    # Items whose span is clearly elsewhere are not candidates (the index is used).
    must_not = {
        (12, 18): {"late", "far", "from-25"},
        (32, 35): {"early", "far", "until-15"},
        (None, 5): {"early", "late", "far", "from-25"},
        (1500, None): {"early", "late", "long", "until-15"},
        (500, 600): {"early", "late", "long", "until-15", "far"},
    }
    for (start, end), expected in must.items():
        got = names(start, end)
        assert expected <= got, (start, end)
        assert not got & must_not[(start, end)], (start, end)
        assert got <= everything


DAY_US = 86_400_000_000


def test_items_overlapping_is_exactly_the_span_test(metadata_store: MetadataStore) -> None:
    """The contract is exact (the evaluator relies on it for single events): every item
    whose span meets the range, with its span, and no other; short spans (found through
    the start index) and long or open ones (found apart) alike."""
    rnd = random.Random(7)
    spans: dict[str, tuple[int | None, int | None]] = {}
    for i in range(300):
        start = rnd.randrange(0, 400) * DAY_US // 4
        kind = rnd.random()
        if kind < 0.6:
            end: int | None = start + rnd.choice([1, 3_600_000_000, 8 * DAY_US, 8 * DAY_US + 1])
        elif kind < 0.8:
            end = start + rnd.randrange(9, 200) * DAY_US
        elif kind < 0.9:
            end = None
        else:
            start, end = None, rnd.choice([None, start])  # type: ignore[assignment]
        spans[f"i{i:03d}"] = (start, end)
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        for name, (start, end) in spans.items():
            put(w, cal, name, name.encode(), start=start, end=end)

    for _ in range(60):
        lo = rnd.choice([None, rnd.randrange(-10, 110) * DAY_US])
        hi = None if rnd.random() < 0.15 else (lo or 0) + rnd.choice([1, DAY_US, 31 * DAY_US])
        with metadata_store.read() as r:
            found = r.items_overlapping(cal.id, lo, hi)
        expected = {
            n
            for n, (s, e) in spans.items()
            if (s is None or hi is None or s < hi) and (e is None or lo is None or e > lo)
        }
        assert [i.name for i in found] == sorted(expected), (lo, hi)
        assert all((i.start_us, i.end_us) == spans[i.name] for i in found)


# -- transactions ------------------------------------------------------------------


def test_a_savepoint_rollback_undoes_only_its_scope(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        before = put(w, cal, "before.ics", b"before")
        with pytest.raises(RuntimeError), w.savepoint():
            add_user(w, "ghost")
            put(w, cal, "ghost.ics", b"ghost")
            w.set_dead_props(cal.id, "", {"{x:}ghost": b"1"}, ())
            raise RuntimeError("refused")
        with w.savepoint():
            after = put(w, cal, "after.ics", b"after")
            with pytest.raises(ValueError), w.savepoint():
                put(w, cal, "inner.ics", b"inner")
                raise ValueError("inner refused")
        assert w.get_item(cal.id, "ghost.ics") is None  # visible inside the transaction
    assert after.seq == before.seq + 1  # the undone append left no gap
    with metadata_store.read() as r:
        assert set(current(r, cal)) == {"before.ics", "after.ics"}
        assert r.get_user("ghost") is None
        assert r.get_dead_props(cal.id, "") == {}
        assert [rev.seq for rev in r.log()] == [1, 2, 3]


def test_a_failed_write_transaction_leaves_nothing(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        put(w, cal, "kept.ics", b"kept")
    with pytest.raises(RuntimeError), metadata_store.write() as w:
        add_user(w, "ghost")
        ghost_cal = mkcol(w, "ghost-cal")
        put(w, cal, "kept.ics", b"overwritten")
        put(w, ghost_cal, "ghost.ics", b"ghost body")
        w.set_dead_props(cal.id, "kept.ics", {"{x:}p": b"v"}, ())
        w.update_collection(cal.id, CollectionProps(displayname="ghost"))
        raise RuntimeError("the transaction fails")
    with metadata_store.read() as r:
        assert r.max_seq() == 2
        assert r.get_user("ghost") is None
        assert r.get_collection(OWNER, "ghost-cal") is None
        assert current(r, cal) == {"kept.ics": sha(b"kept")}
        assert r.blob_location(sha(b"ghost body")) is None
        assert r.get_dead_props(cal.id, "kept.ics") == {}
        got = r.get_collection_by_id(cal.id)
        assert got is not None and got.displayname is None
    with metadata_store.write() as w:
        assert put(w, cal, "next.ics", b"next").seq == 3  # no gap after the rollback


def test_a_read_view_does_not_change_while_a_write_commits(
    metadata_store: MetadataStore,
) -> None:
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        put(w, cal, "a.ics", b"a1")

    def writer() -> None:
        with metadata_store.write() as w:
            put(w, cal, "a.ics", b"a2")
            put(w, cal, "b.ics", b"b")
            w.update_collection(cal.id, CollectionProps(displayname="changed"))

    with ThreadPoolExecutor(1) as committer, metadata_store.read() as r:
        seq = r.max_seq()
        state = current(r, cal)
        coll = r.get_collection_by_id(cal.id)
        committer.submit(writer).result()  # committed and durable now
        assert r.max_seq() == seq
        assert current(r, cal) == state == {"a.ics": sha(b"a1")}
        assert r.get_collection_by_id(cal.id) == coll
        assert r.changes_since(cal.id, seq) == []
        assert r.get_inline_blob(sha(b"b")) is None
    with metadata_store.read() as r:
        assert current(r, cal) == {"a.ics": sha(b"a2"), "b.ics": sha(b"b")}


def test_many_readers_read_concurrently_with_the_writer(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
    stop = threading.Event()
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            with metadata_store.read() as r:
                top = r.max_seq()
                seqs = [rev.seq for rev in r.log()]
                if seqs != list(range(1, top + 1)):
                    problems.append(f"inconsistent view: max {top}, log {seqs[-3:]}")
                if len(r.list_items(cal.id)) != top - 1:
                    problems.append("items and log disagree inside one view")

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(50):
            with metadata_store.write() as w:
                put(w, cal, f"{i}.ics", f"{i}".encode())
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert problems == []


# -- blobs, dead properties, usage -------------------------------------------------


def test_record_blob_keeps_inline_bodies_and_notes_external_ones(
    metadata_store: MetadataStore,
) -> None:
    small, big, both = b"inline body", b"external body", b"first external, then inline"
    with metadata_store.write() as w:
        w.record_blob(sha(small), len(small), small)
        w.record_blob(sha(small), len(small), small)  # idempotent
        w.record_blob(sha(big), len(big), None)
        w.record_blob(sha(both), len(both), None)
    with metadata_store.write() as w:
        w.record_blob(sha(both), len(both), both)
        w.record_blob(sha(small), len(small), None)  # an inline copy is never dropped
    with metadata_store.read() as r:
        assert r.get_inline_blob(sha(small)) == small
        assert r.get_inline_blob(sha(big)) is None
        assert r.get_inline_blob(sha(both)) == both
        assert r.blob_location(sha(small)) == "inline"
        assert r.blob_location(sha(big)) == "external"
        assert r.blob_location(sha(both)) == "inline"
        assert r.blob_location(sha(b"unknown")) is None
        assert r.get_inline_blob(sha(b"unknown")) is None
        assert sorted(r.blob_refs()) == sorted(
            [
                (sha(small), len(small), True),
                (sha(big), len(big), False),
                (sha(both), len(both), True),
            ]
        )


def test_dead_props_are_set_removed_and_copied(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        other = mkcol(w, "other")
        w.set_dead_props(cal.id, "", {"{x:}coll": b"c"}, ())
        w.set_dead_props(cal.id, "a.ics", {"{x:}one": b"1", "{x:}two": b"2"}, ())
        w.set_dead_props(other.id, "b.ics", {"{x:}old": b"o"}, ())
    with metadata_store.write() as w:
        w.set_dead_props(cal.id, "a.ics", {"{x:}two": b"two", "{x:}three": b"3"}, ["{x:}one"])
        w.set_dead_props(cal.id, "a.ics", {}, ["{x:}absent"])  # removing nothing is fine
    with metadata_store.read() as r:
        assert r.get_dead_props(cal.id, "") == {"{x:}coll": b"c"}
        assert r.get_dead_props(cal.id, "a.ics") == {"{x:}two": b"two", "{x:}three": b"3"}
        assert r.get_dead_props(cal.id, "nothing.ics") == {}
    with metadata_store.write() as w:
        w.copy_dead_props(cal.id, "a.ics", other.id, "b.ics")
        w.copy_dead_props(cal.id, "nothing.ics", cal.id, "")  # copying nothing clears
    with metadata_store.read() as r:
        assert r.get_dead_props(other.id, "b.ics") == {"{x:}two": b"two", "{x:}three": b"3"}
        assert r.get_dead_props(cal.id, "a.ics") == {"{x:}two": b"two", "{x:}three": b"3"}
        assert r.get_dead_props(cal.id, "") == {}


def test_usage_bytes_counts_current_items_of_live_collections(
    metadata_store: MetadataStore,
) -> None:
    with metadata_store.read() as r:
        assert r.usage_bytes(OWNER) == 0
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        doomed = mkcol(w, "doomed")
        bobs = mkcol(w, "cal", owner="bob")
        put(w, cal, "a", b"x" * 100)
        put(w, cal, "a", b"y" * 10)  # only the current body counts
        put(w, cal, "b", b"z" * 1000, inline=False)
        put(w, cal, "c", b"w" * 7)
        delete(w, cal, "c")
        put(w, cal, "d", b"v" * 5000, op=Op.CONFLICT)
        put(w, doomed, "e", b"u" * 300)
        put(w, bobs, "f", b"t" * 50)
    with metadata_store.read() as r:
        assert r.usage_bytes(OWNER) == 10 + 1000 + 300
        assert r.usage_bytes("bob") == 50
        assert r.usage_bytes("nobody") == 0
    with metadata_store.write() as w:
        rmcol(w, doomed)
    with metadata_store.read() as r:
        assert r.usage_bytes(OWNER) == 10 + 1000


# -- durability --------------------------------------------------------------------


def populate(store: MetadataStore) -> None:
    with store.write() as w:
        add_user(w, OWNER, admin=True)
        cal = mkcol(w, "cal", props=CollectionProps(displayname="Cal", components=("VEVENT",)))
        files = mkcol(w, "files", kind=CollectionKind.PLAIN)
        put(w, cal, "a.ics", b"a", uid="a", start=1, end=2)
        put(w, cal, "b.ics", b"b")
        put(w, files, "photo.jpg", b"jpeg" * 1000, inline=False)
        w.set_dead_props(cal.id, "a.ics", {"{x:}p": b"v"}, ())
    with store.write() as w:
        delete(w, cal, "b.ics")
        put(w, cal, "c.ics", b"refused", op=Op.CONFLICT)
        rmcol(w, mkcol(w, "gone"))


def dump(r: MetadataReader) -> dict[str, Any]:
    colls = r.list_collections(OWNER)
    every = [r.get_collection_by_id(cid) for cid in sorted({rev.collection_id for rev in r.log()})]
    return {
        "users": r.list_users(),
        "collections": every,
        "items": {c.id: r.list_items(c.id) for c in colls},
        "log": r.log(),
        "rows": sorted(r.item_rows()),
        "blobs": sorted(r.blob_refs()),
        "inline": {h: r.get_inline_blob(h) for h, _, inline in r.blob_refs() if inline},
        "props": {c.id: r.get_dead_props(c.id, "a.ics") for c in colls},
        "usage": r.usage_bytes(OWNER),
    }


def test_everything_survives_close_and_reopen(metadata_backend: MetadataBackend) -> None:
    first = metadata_backend.open()
    populate(first)
    with first.read() as r:
        before = dump(r)
    first.close()
    second = metadata_backend.open()
    try:
        with second.read() as r:
            assert dump(r) == before
        with second.write() as w:  # and the log goes on where it stopped
            coll = w.get_collection(OWNER, "cal")
            assert coll is not None
            assert put(w, coll, "z.ics", b"z").seq == before["log"][-1].seq + 1
    finally:
        second.close()


CHILD = """
import os, signal, sys
from tests.backends.factories import metadata_backend
from tests.backends.test_metadata_store import populate

store = metadata_backend(sys.argv[1], sys.argv[2]).open()
populate(store)
with store.read() as r:
    print(r.max_seq(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # right after the commit returned: no close, no cleanup
"""


def test_a_commit_survives_sigkill_right_after_it_returns(
    metadata_backend: MetadataBackend, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, metadata_backend.name, metadata_backend.location],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    acknowledged = int(proc.stdout.strip())
    reference = type(metadata_backend).create(tmp_path / "reference")
    ref_store = reference.open()
    populate(ref_store)
    store = metadata_backend.open()
    try:
        with store.read() as r, ref_store.read() as ref:
            assert r.max_seq() == acknowledged
            got, want = dump(r), dump(ref)
        # The child wrote at other moments: compare everything but timestamps.
        for view in (got, want):
            view["users"] = [replace(u, created_us=0) for u in view["users"]]
            view["log"] = [replace(rev, at_us=0) for rev in view["log"]]
            view["items"] = {
                cid: [replace(i, modified_us=0) for i in items]
                for cid, items in view["items"].items()
            }
        assert got == want
        with store.read() as r:
            assert [rev.seq for rev in r.log()] == list(range(1, acknowledged + 1))
            assert [u.name for u in r.list_users()] == [OWNER]
    finally:
        store.close()
        ref_store.close()


# -- retention: pruned entries and unreferenced blobs -------------------------------


def test_count_items_counts_current_items_only(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        other = mkcol(w, "other")
        assert w.count_items(cal.id) == 0
        for name in ("a", "b", "c"):
            put(w, cal, name, name.encode())
        put(w, cal, "a", b"a2")  # an overwrite is still one item
        delete(w, cal, "b")
        put(w, cal, "x", b"refused", op=Op.CONFLICT)  # never current
        put(w, other, "o", b"o")
    with metadata_store.read() as r:
        assert r.count_items(cal.id) == 2
        assert r.count_items(other.id) == 1
        assert r.count_items(999) == 0
    with metadata_store.write() as w:
        rmcol(w, cal)
    with metadata_store.read() as r:
        assert r.count_items(cal.id) == 2, "a deleted collection keeps its index"


def test_superseded_revisions_say_when_each_stopped_being_current(
    metadata_store: MetadataStore,
) -> None:
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        v1 = put(w, cal, "a", b"v1")
        v2 = put(w, cal, "a", b"v2")
        gone = put(w, cal, "b", b"b")
        tomb = delete(w, cal, "b")
        refused = put(w, cal, "a", b"refused", op=Op.CONFLICT)
        v3 = put(w, cal, "a", b"v3")  # current: never superseded
        late = tick()
    with metadata_store.read() as r:
        got = list(r.superseded_revisions(late))
        assert [s.seq for s in got] == [v1.seq, v2.seq, gone.seq, refused.seq]
        by_seq = {s.seq: s for s in got}
        assert by_seq[v1.seq].end_us == v2.at_us and not by_seq[v1.seq].ended_by_delete
        assert by_seq[v2.seq].end_us == v3.at_us, "a conflict in between does not end it"
        assert by_seq[gone.seq].end_us == tomb.at_us and by_seq[gone.seq].ended_by_delete
        assert by_seq[refused.seq].end_us == refused.at_us
        assert by_seq[refused.seq].op is Op.CONFLICT
        assert (by_seq[v1.seq].content_hash, by_seq[v1.seq].size) == (sha(b"v1"), 2)
        # Only what stopped before the given moment.
        assert [s.seq for s in r.superseded_revisions(v3.at_us)] == [v1.seq, gone.seq, refused.seq]
        assert list(r.superseded_revisions(v2.at_us)) == []


def test_mark_pruned_marks_only_superseded_bodies(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        v1 = put(w, cal, "a", b"v1")
        v2 = put(w, cal, "a", b"v2")  # current
        refused = put(w, cal, "a", b"refused", op=Op.CONFLICT)
        gone = put(w, cal, "b", b"b")
        tomb = delete(w, cal, "b")
    with metadata_store.write() as w:
        marked = w.mark_pruned([v1.seq, v2.seq, refused.seq, tomb.seq, 1, 10_000])
        assert marked == 2, "v1 and the conflict; never the current v2, a delete or mkcol"
        assert w.mark_pruned([v1.seq]) == 0, "already pruned"
    with metadata_store.read() as r:
        assert [(x.seq, x.pruned) for x in r.item_history(cal.id, "a")] == [
            (v1.seq, True),
            (v2.seq, False),
            (refused.seq, True),
        ]
        pruned = r.get_revision(v1.seq)
        assert pruned is not None and pruned.content_hash == sha(b"v1"), "the hash stays"
        assert [x.seq for x in r.log() if x.pruned] == [v1.seq, refused.seq]
        assert r.max_seq() == tomb.seq, "no entry is removed"
        assert [x.seq for x in r.superseded_revisions(tick())] == [gone.seq]
        item = r.get_item(cal.id, "a")
        assert item is not None and item.seq == v2.seq
    with metadata_store.write() as w:
        assert w.mark_pruned([gone.seq]) == 1, "the last body of a deleted item can go"


def test_a_blob_is_removable_only_when_no_kept_entry_names_it(
    metadata_store: MetadataStore,
) -> None:
    shared, alone, big = b"shared body", b"alone", b"external body"
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        a1 = put(w, cal, "a", shared)
        put(w, cal, "a", b"a now")
        b1 = put(w, cal, "b", shared)  # current: keeps `shared`
        c1 = put(w, cal, "c", alone)
        put(w, cal, "c", b"c now")
        e1 = put(w, cal, "e", big, inline=False)
        delete(w, cal, "e")
        w.record_blob(sha(b"never used"), 10, b"never used")
    with metadata_store.read() as r:
        assert r.blob_referrers(sha(shared)) == [a1.seq, b1.seq]
        assert sorted(r.unreferenced_blobs()) == [(sha(b"never used"), 10, True)]
    with metadata_store.write() as w:
        assert not w.remove_blob(sha(alone)), "a kept entry names it"
        assert w.mark_pruned([a1.seq, c1.seq, e1.seq]) == 3
    with metadata_store.read() as r:
        assert r.blob_referrers(sha(shared)) == [b1.seq]
        assert sorted(r.unreferenced_blobs()) == sorted(
            [
                (sha(b"never used"), 10, True),
                (sha(alone), len(alone), True),
                (sha(big), len(big), False),
            ]
        )
    with metadata_store.write() as w:
        assert not w.remove_blob(sha(shared)), "the current b still names it"
        assert w.remove_blob(sha(alone))
        assert w.remove_blob(sha(big))
        assert not w.remove_blob(sha(alone)), "already gone"
        assert not w.remove_blob(sha(b"no such blob"))
    with metadata_store.read() as r:
        assert r.blob_location(sha(alone)) is None and r.get_inline_blob(sha(alone)) is None
        assert r.blob_location(sha(big)) is None
        assert r.blob_location(sha(shared)) == "inline"
        assert r.get_inline_blob(sha(shared)) == shared


def test_a_removed_blob_comes_back_when_recorded_again(metadata_store: MetadataStore) -> None:
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        old = put(w, cal, "a", b"old")
        put(w, cal, "a", b"new")
        w.mark_pruned([old.seq])
        assert w.remove_blob(sha(b"old"))
    with metadata_store.write() as w:
        put(w, cal, "a", b"old")  # the same content, sent again
    with metadata_store.read() as r:
        assert r.get_inline_blob(sha(b"old")) == b"old"
        assert r.blob_referrers(sha(b"old")) == [old.seq + 2]


# -- alerts ------------------------------------------------------------------------


def alert_record(coll: Collection, **changes: Any) -> AlertRecord:
    base = AlertRecord(
        id=0,
        kind="mass_deletion",
        created_us=tick(),
        updated_us=tick(),
        owner=coll.owner,
        collection_id=coll.id,
        collection_path=coll.path,
        user=coll.owner,
        client="PhoneReset/1.0",
        deleted=60,
        collection_size=100,
        first_seq=5,
        last_seq=64,
        rollback_command=f"homeport rollback --data DIR --user {coll.owner} --to @4",
    )
    return replace(base, **changes)


def test_deletion_bursts_are_kept_per_collection_user_and_client(
    metadata_store: MetadataStore,
) -> None:
    with metadata_store.write() as w:
        cal = mkcol(w, "cal")
        assert w.get_deletion_burst(cal.id, OWNER, "phone") is None
        burst = DeletionBurst(cal.id, OWNER, "phone", 100, 7, 1, 20, 100, 7)
        w.save_deletion_burst(burst)
        w.save_deletion_burst(replace(burst, client="laptop", count=3))
    with metadata_store.write() as w:
        grown = replace(
            burst, count=2, last_us=200, last_seq=9, prev_first_seq=3, prev_count=4,
            prev_size_before=25, alert_id=11,
        )  # fmt: skip
        w.save_deletion_burst(grown)
    with metadata_store.read() as r:
        assert r.get_deletion_burst(cal.id, OWNER, "phone") == grown
        laptop = r.get_deletion_burst(cal.id, OWNER, "laptop")
        assert laptop is not None and laptop.count == 3
        assert r.get_deletion_burst(cal.id, "bob", "phone") is None


def test_alerts_are_added_listed_extended_and_acknowledged(
    metadata_store: MetadataStore,
) -> None:
    with metadata_store.write() as w:
        add_user(w)
        add_user(w, "bob")
        cal = mkcol(w, "cal")
        bobs = mkcol(w, "cal", owner="bob")
        first = w.add_alert(alert_record(cal, id=12345))
        second = w.add_alert(alert_record(bobs))
        third = w.add_alert(alert_record(cal, client="vdirsyncer"))
    assert first.id < second.id < third.id, "ids are assigned, increasing"
    assert first == alert_record(cal, id=first.id, created_us=first.created_us,
                                 updated_us=first.updated_us)  # fmt: skip
    with metadata_store.read() as r:
        assert [a.id for a in r.list_alerts()] == [third.id, second.id, first.id]
        assert [a.id for a in r.list_alerts(OWNER)] == [third.id, first.id]
        assert r.list_alerts("nobody") == []
        assert r.get_alert(second.id) == second
        assert r.get_alert(99_999) is None
    with metadata_store.write() as w:
        w.extend_alert(first.id, 80, 90, 5_000)
        assert w.acknowledge_alert(third.id, "root", 6_000)
        assert not w.acknowledge_alert(third.id, "alice", 7_000), "already acknowledged"
        with pytest.raises(NotFound):
            w.extend_alert(99_999, 1, 1, 1)
        with pytest.raises(NotFound):
            w.acknowledge_alert(99_999, "root", 1)
    with metadata_store.read() as r:
        grown = r.get_alert(first.id)
        assert grown is not None
        assert (grown.deleted, grown.last_seq, grown.updated_us) == (80, 90, 5_000)
        assert (grown.first_seq, grown.created_us) == (first.first_seq, first.created_us)
        seen = r.get_alert(third.id)
        assert seen is not None and (seen.acknowledged_us, seen.acknowledged_by) == (6_000, "root")
        assert [a.id for a in r.list_alerts(OWNER)] == [first.id]
        assert [a.id for a in r.list_alerts(OWNER, include_acknowledged=True)] == [
            third.id,
            first.id,
        ]


def test_alerts_and_pruning_marks_survive_reopen(metadata_backend: MetadataBackend) -> None:
    store = metadata_backend.open()
    with store.write() as w:
        cal = mkcol(w, "cal")
        old = put(w, cal, "a", b"old")
        put(w, cal, "a", b"new")
        w.mark_pruned([old.seq])
        alert = w.add_alert(alert_record(cal))
        burst = DeletionBurst(cal.id, OWNER, "c", 1, 2, 3, 4, 5, 6, alert_id=alert.id)
        w.save_deletion_burst(burst)
    store.close()
    store = metadata_backend.open()
    try:
        with store.read() as r:
            rev = r.get_revision(old.seq)
            assert rev is not None and rev.pruned
            assert r.get_alert(alert.id) == alert
            burst = r.get_deletion_burst(cal.id, OWNER, "c")
            assert burst is not None and burst.alert_id == alert.id
    finally:
        store.close()


def test_a_read_that_must_not_wait_refuses_instead(metadata_backend: MetadataBackend) -> None:
    """`read(wait=False)` (the server's event loop) gets WouldBlock at once where a
    plain read would wait for the lock; both work again once it is released."""
    store = metadata_backend.open()
    try:
        with store.write() as w:
            mkcol(w, "cal")
        store.close()  # a reopen: the handle holds no connection when the lock is taken
        with metadata_backend.exclusive_lock():
            started = time.monotonic()
            with pytest.raises(WouldBlock), store.read(wait=False) as r:
                r.get_collection(OWNER, "cal")
            assert time.monotonic() - started < 2, "it waited for the lock"
        for wait in (False, True):
            with store.read(wait=wait) as r:
                assert r.get_collection(OWNER, "cal") is not None
    finally:
        store.close()
