"""The domain services on a real store (SQLite + a local folder in tmp_path)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from homeport.errors import (
    AlreadyExists,
    AuthenticationFailed,
    Conflict,
    Forbidden,
    InvalidRequest,
    InvalidSyncToken,
    NotFound,
    PreconditionFailed,
    TooLarge,
    UidConflict,
    ValidationError,
)
from homeport.services import Actor, Limits, Preconditions, Services
from homeport.store.check import check_store
from homeport.store.model import CollectionKind, CollectionProps
from homeport.wiring import open_store

ALICE = Actor("alice", "pytest")
BOB = Actor("bob", "pytest")


def ics(uid: str, summary: str = "x", comp: str = "VEVENT") -> bytes:
    times = "DTSTART:20261201T100000Z\r\nDTEND:20261201T110000Z\r\n" if comp == "VEVENT" else ""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        f"BEGIN:{comp}\r\nUID:{uid}\r\nDTSTAMP:20261101T000000Z\r\n{times}"
        f"SUMMARY:{summary}\r\nEND:{comp}\r\nEND:VCALENDAR\r\n"
    ).encode()


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Services]:
    services = Services.build(open_store(tmp_path), Limits(max_object_size=4096))
    services.accounts.add("alice", "pw")
    services.accounts.add("bob", "pw")
    yield services
    assert check_store(services.store).ok
    services.close()


def test_new_user_gets_default_collections(svc: Services) -> None:
    colls = svc.collections.children(ALICE, "alice")
    assert {(c.path, c.kind) for c in colls} == {
        ("contacts", CollectionKind.ADDRESSBOOK),
        ("calendar", CollectionKind.CALENDAR),
        ("tasks", CollectionKind.CALENDAR),
    }


def test_authenticate(svc: Services) -> None:
    assert svc.accounts.authenticate("alice", "pw").name == "alice"
    with pytest.raises(AuthenticationFailed):
        svc.accounts.authenticate("alice", "wrong")
    with pytest.raises(AuthenticationFailed):
        svc.accounts.authenticate("nobody", "pw")
    with pytest.raises(AlreadyExists):
        svc.accounts.add("alice", "x")
    with pytest.raises(InvalidRequest):
        svc.accounts.add("a/b", "x")


def test_put_overwrite_delete_and_history(svc: Services) -> None:
    cal = svc.collections.get(ALICE, "alice", "calendar")
    item, created = svc.items.put(ALICE, cal, "e.ics", [ics("u1")], "text/calendar")
    assert created and item.uid == "u1" and svc.items.body(item) == ics("u1")
    item2, created = svc.items.put(
        ALICE, cal, "e.ics", [ics("u1", "y")], "text/calendar", Preconditions(if_match=(item.etag,))
    )
    assert not created and item2.etag != item.etag
    with pytest.raises(PreconditionFailed):
        svc.items.put(ALICE, cal, "e.ics", [ics("u1")], "t", Preconditions(if_match=(item.etag,)))
    svc.items.delete(ALICE, cal, "e.ics")
    with pytest.raises(NotFound):
        svc.items.get(ALICE, cal, "e.ics")
    with svc.store.read() as r:
        ops = [(rev.op.value, rev.user, rev.client) for rev in r.item_history(cal.id, "e.ics")]
    # The body the failed If-Match refused is kept aside as a conflict revision.
    assert ops == [("put", "alice", "pytest")] * 2 + [
        ("conflict", "alice", "pytest"),
        ("delete", "alice", "pytest"),
    ]


def test_validation_stores_nothing(svc: Services) -> None:
    cal = svc.collections.get(ALICE, "alice", "calendar")
    tasks = svc.collections.get(ALICE, "alice", "tasks")
    with pytest.raises(ValidationError):
        svc.items.put(ALICE, cal, "x.ics", [b"garbage"], "text/calendar")
    with pytest.raises(ValidationError):
        svc.items.put(ALICE, tasks, "x.ics", [ics("e", comp="VEVENT")], "text/calendar")
    with pytest.raises(TooLarge):
        svc.items.put(ALICE, cal, "x.ics", [b"x" * 5000], "text/calendar")
    svc.items.put(ALICE, cal, "a.ics", [ics("same")], "text/calendar")
    with pytest.raises(UidConflict) as exc:
        svc.items.put(ALICE, cal, "b.ics", [ics("same")], "text/calendar")
    assert exc.value.existing_name == "a.ics"
    assert [i.name for i in svc.items.list_items(ALICE, cal)] == ["a.ics"]


def test_isolation(svc: Services) -> None:
    cal = svc.collections.get(ALICE, "alice", "calendar")
    with pytest.raises(Forbidden):
        svc.collections.get(BOB, "alice", "calendar")
    with pytest.raises(Forbidden):
        svc.items.put(BOB, cal, "x.ics", [ics("x")], "text/calendar")
    with pytest.raises(Forbidden):
        svc.items.list_items(BOB, cal)
    admin = Actor("root", "pytest", is_admin=True)
    assert svc.items.list_items(admin, cal) == []


def test_sync_tokens(svc: Services) -> None:
    cal = svc.collections.get(ALICE, "alice", "calendar")
    changes, t0 = svc.items.changes(ALICE, cal, None)
    assert changes == []
    svc.items.put(ALICE, cal, "a.ics", [ics("a")], "text/calendar")
    svc.items.put(ALICE, cal, "b.ics", [ics("b")], "text/calendar")
    svc.items.delete(ALICE, cal, "a.ics")
    changes, t1 = svc.items.changes(ALICE, cal, t0)
    assert {(c.name, c.item is None) for c in changes} == {("a.ics", True), ("b.ics", False)}
    assert svc.items.changes(ALICE, cal, t1)[0] == []
    other = svc.collections.get(ALICE, "alice", "contacts")
    for bad in ("nonsense", t1 + "0", f"urn:homeport:sync:{other.id}:1"):
        with pytest.raises(InvalidSyncToken):
            svc.items.changes(ALICE, cal, bad)


def test_sync_pages_hold_exactly_the_changes_up_to_their_token(svc: Services) -> None:
    cal = svc.collections.get(ALICE, "alice", "calendar")
    for i in range(10):
        svc.items.put(ALICE, cal, f"{i}.ics", [ics(str(i))], "text/calendar")
    svc.items.delete(ALICE, cal, "3.ics")
    token, pages = svc.items.change_pages(ALICE, cal, None, 3)
    first = next(pages)
    assert [c.name for c in first] == ["0.ics", "1.ics", "2.ics"]
    # Changes made while the sync is being sent: a new item, an item not yet sent
    # changed, an item already sent changed, an item not yet sent deleted.
    svc.items.put(ALICE, cal, "new.ics", [ics("new")], "text/calendar")
    svc.items.put(ALICE, cal, "8.ics", [ics("8", "changed")], "text/calendar")
    svc.items.put(ALICE, cal, "1.ics", [ics("1", "changed")], "text/calendar")
    svc.items.delete(ALICE, cal, "9.ics")
    rest = [c.name for page in pages for c in page]
    assert [c.name for c in first] + rest == [f"{i}.ics" for i in (0, 1, 2, 4, 5, 6, 7)]
    # Everything this sync left out or sent in an older state is in the next one.
    changes, _ = svc.items.changes(ALICE, cal, token)
    assert {(c.name, c.item is None) for c in changes} == {
        ("new.ics", False),
        ("8.ics", False),
        ("1.ics", False),
        ("9.ics", True),
    }
    # From a token: deletions are reported, and paging gives what one read gives.
    all_at_once, t_all = svc.items.changes(ALICE, cal, token)
    t_paged, paged = svc.items.change_pages(ALICE, cal, token, 1)
    assert [c for page in paged for c in page] == all_at_once and t_paged == t_all


def test_move_and_copy_items(svc: Services) -> None:
    cal = svc.collections.get(ALICE, "alice", "calendar")
    other = svc.collections.create(ALICE, "alice", "work", CollectionKind.CALENDAR)
    svc.items.put(ALICE, cal, "a.ics", [ics("a")], "text/calendar")
    assert svc.items.transfer(ALICE, cal, "a.ics", other, "a.ics", move=True, overwrite=False)
    assert svc.items.find(ALICE, cal, "a.ics") is None
    assert svc.items.find(ALICE, other, "a.ics") is not None
    # A copy into the same collection would duplicate the UID.
    with pytest.raises(UidConflict):
        svc.items.transfer(ALICE, other, "a.ics", other, "b.ics", move=False, overwrite=False)
    svc.items.put(ALICE, cal, "c.ics", [ics("c")], "text/calendar")
    with pytest.raises(PreconditionFailed):
        svc.items.transfer(ALICE, cal, "c.ics", other, "a.ics", move=False, overwrite=False)


def test_collections_tree(svc: Services) -> None:
    svc.collections.create(ALICE, "alice", "files", CollectionKind.PLAIN)
    svc.collections.create(ALICE, "alice", "files/photos", CollectionKind.PLAIN)
    files = svc.collections.get(ALICE, "alice", "files/photos")
    svc.items.put(ALICE, files, "p.jpg", [b"\xff\xd8" + b"x" * 100_000], "image/jpeg")
    with pytest.raises(Conflict):
        svc.collections.create(ALICE, "alice", "nope/deeper", CollectionKind.PLAIN)
    with pytest.raises(Forbidden):
        svc.collections.create(ALICE, "alice", "calendar/sub", CollectionKind.PLAIN)
    with pytest.raises(AlreadyExists):
        svc.collections.create(ALICE, "alice", "files", CollectionKind.PLAIN)
    root = svc.collections.get(ALICE, "alice", "files")
    svc.collections.copy_or_move(ALICE, root, "alice", "backup", move=True, overwrite=False)
    moved = svc.collections.get(ALICE, "alice", "backup/photos")
    assert [i.name for i in svc.items.list_items(ALICE, moved)] == ["p.jpg"]
    with pytest.raises(NotFound):
        svc.collections.get(ALICE, "alice", "files/photos")
    svc.collections.update(ALICE, moved, CollectionProps(displayname="Pics"))
    assert svc.collections.get(ALICE, "alice", "backup/photos").displayname == "Pics"
    svc.collections.delete(ALICE, svc.collections.get(ALICE, "alice", "backup"))
    assert svc.collections.find(ALICE, "alice", "backup/photos") is None


def test_remove_user_keeps_history(svc: Services) -> None:
    cal = svc.collections.get(BOB, "bob", "calendar")
    svc.items.put(BOB, cal, "a.ics", [ics("a")], "text/calendar")
    svc.accounts.remove("bob")
    with svc.store.read() as r:
        assert r.get_user("bob") is None
        assert r.item_history(cal.id, "a.ics")
