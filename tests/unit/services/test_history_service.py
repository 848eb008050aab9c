"""History, trash, undelete and rollback on a real store (SQLite + a folder in tmp_path)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from homeport.errors import Conflict, Forbidden, InvalidRequest, NotFound
from homeport.services import Accounts, Actor, Collections, History, Items, Services
from homeport.store.check import check_store
from homeport.store.model import CollectionKind, Op
from homeport.wiring import open_store

ALICE = Actor("alice", "DAVx5/4.3")
PHONE = Actor("alice", "PhoneReset/1.0")
BOB = Actor("bob", "pytest")
ADMIN = Actor("root", "homeport-cli", is_admin=True)


def vcf(uid: str, fn: str, email: str = "") -> bytes:
    extra = f"EMAIL:{email}\r\n" if email else ""
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{fn}\r\n{extra}END:VCARD\r\n".encode()


def ics(uid: str, summary: str) -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261201T100000Z\r\n"
        f"DTEND:20261201T110000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Services]:
    services = Services.build(open_store(tmp_path))
    services.accounts.add("alice", "pw")
    services.accounts.add("bob", "pw")
    yield services
    assert check_store(services.store).ok
    services.close()


def put(svc: Services, path: str, name: str, body: bytes, actor: Actor = ALICE) -> int:
    coll = svc.collections.get(actor, "alice", path)
    kind = "text/vcard" if path == "contacts" else "text/calendar"
    item, _ = svc.items.put(actor, coll, name, [body], kind)
    return item.seq


def state(svc: Services, path: str) -> dict[str, bytes]:
    coll = svc.collections.find(ADMIN, "alice", path)
    if coll is None:
        return {}
    return {i.name: svc.items.body(i) for i in svc.items.list_items(ADMIN, coll)}


def max_seq(svc: Services) -> int:
    with svc.store.read() as r:
        return r.max_seq()


def test_item_history_marks_current_and_summarises(svc: Services) -> None:
    put(svc, "contacts", "a.vcf", vcf("a", "Ada"))
    put(svc, "contacts", "a.vcf", vcf("a", "Ada King", "ada@example.org"))
    coll = svc.history.find_collection(ALICE, "alice", "contacts")
    svc.items.delete(PHONE, coll, "a.vcf")
    revs = svc.history.item_history(ALICE, coll, "a.vcf")
    assert [r.revision.op for r in revs] == [Op.PUT, Op.PUT, Op.DELETE]
    assert revs[0].summary == "created: FN 'Ada'"
    assert "FN: 'Ada' → 'Ada King'" in revs[1].summary and "EMAIL" in revs[1].summary
    assert revs[2].revision.client == "PhoneReset/1.0" and not any(r.current for r in revs)
    restored = svc.history.restore_revision(ALICE, coll, "a.vcf", revs[0].revision.seq)
    again = svc.history.item_history(ALICE, coll, "a.vcf")
    assert again[-1].current and again[-1].revision.seq == restored.seq
    assert svc.history.revision_body(ALICE, coll, "a.vcf", revs[1].revision.seq) == vcf(
        "a", "Ada King", "ada@example.org"
    )
    assert svc.items.body(restored) == vcf("a", "Ada")


def test_revision_errors(svc: Services) -> None:
    seq = put(svc, "contacts", "a.vcf", vcf("a", "Ada"))
    other = put(svc, "contacts", "b.vcf", vcf("b", "Bea"))
    coll = svc.history.find_collection(ALICE, "alice", "contacts")
    svc.items.delete(ALICE, coll, "a.vcf")
    tomb = max_seq(svc)
    before = max_seq(svc)
    with pytest.raises(NotFound):
        svc.history.item_history(ALICE, coll, "never.vcf")
    with pytest.raises(NotFound):
        svc.history.revision_body(ALICE, coll, "a.vcf", other)  # another item's revision
    with pytest.raises(NotFound):
        svc.history.revision_body(ALICE, coll, "a.vcf", tomb)  # a deletion has no body
    with pytest.raises(NotFound):
        svc.history.restore_revision(ALICE, coll, "a.vcf", 10**9)
    with pytest.raises(InvalidRequest):
        svc.history.restore_revision(ALICE, coll, "a.vcf", tomb)
    with pytest.raises(Conflict):
        svc.history.undelete_item(ALICE, coll, "b.vcf")  # not deleted
    with pytest.raises(NotFound):
        svc.history.undelete_item(ALICE, coll, "never.vcf")
    with pytest.raises(NotFound):
        svc.history.find_collection(ALICE, "alice", "nope")
    with pytest.raises(Forbidden):
        svc.history.find_collection(BOB, "alice", "contacts")
    with pytest.raises(Forbidden):
        svc.history.item_history(BOB, coll, "a.vcf")
    assert max_seq(svc) == before, "a refused request changed nothing"
    assert svc.history.item_history(ADMIN, coll, "a.vcf")[0].revision.seq == seq


def test_restore_refuses_a_uid_now_held_by_another_item(svc: Services) -> None:
    seq = put(svc, "contacts", "a.vcf", vcf("u", "Ada"))
    coll = svc.history.find_collection(ALICE, "alice", "contacts")
    svc.items.delete(ALICE, coll, "a.vcf")
    put(svc, "contacts", "b.vcf", vcf("u", "Ada again"))
    with pytest.raises(Conflict, match=r"b\.vcf"):
        svc.history.restore_revision(ALICE, coll, "a.vcf", seq)


def test_trash_newest_first_with_labels_and_clients(svc: Services) -> None:
    put(svc, "contacts", "a.vcf", vcf("a", "Ada"))
    put(svc, "calendar", "e.ics", ics("e", "Standup"))
    put(svc, "contacts", "b.vcf", vcf("b", "Bea"))
    contacts = svc.history.find_collection(ALICE, "alice", "contacts")
    calendar = svc.history.find_collection(ALICE, "alice", "calendar")
    svc.items.delete(PHONE, contacts, "a.vcf")
    svc.items.delete(PHONE, calendar, "e.ics")
    entries = svc.history.trash_entries(ALICE, "alice")
    assert [(e.collection.path, e.name, e.label) for e in entries] == [
        ("calendar", "e.ics", "Standup"),
        ("contacts", "a.vcf", "Ada"),
    ]
    assert {e.deletion.client for e in entries} == {"PhoneReset/1.0"}
    only = svc.history.trash_entries(ALICE, "alice", contacts)
    assert [e.name for e in only] == ["a.vcf"]
    assert only[0].last is not None and only[0].last.uid == "a"
    with pytest.raises(Forbidden):
        svc.history.trash_entries(BOB, "alice")


def test_undelete_collection_and_a_reused_path(svc: Services) -> None:
    put(svc, "contacts", "a.vcf", vcf("a", "Ada"))
    contacts = svc.history.find_collection(ALICE, "alice", "contacts")
    svc.collections.delete(PHONE, contacts)
    gone = svc.history.collection_trash(ALICE, "alice")
    assert [(d.collection.path, d.items) for d in gone] == [("contacts", 1)]
    assert gone[0].deletion is not None and gone[0].deletion.client == "PhoneReset/1.0"
    # The path is taken again before anyone notices.
    svc.collections.create(ALICE, "alice", "contacts", CollectionKind.ADDRESSBOOK)
    old = svc.history.deleted_collection(ALICE, "alice", "contacts")
    assert old.id == contacts.id
    before = max_seq(svc)
    with pytest.raises(Conflict, match="another collection now uses"):
        svc.history.undelete_collection(ALICE, old)
    assert max_seq(svc) == before
    svc.collections.delete(ALICE, svc.collections.get(ALICE, "alice", "contacts"))
    back = svc.history.undelete_collection(ALICE, old)
    assert back.deleted_seq is None and state(svc, "contacts") == {"a.vcf": vcf("a", "Ada")}
    with pytest.raises(Conflict):
        svc.history.deleted_collection(ALICE, "alice", "calendar")  # live, never deleted
    with pytest.raises(NotFound):
        svc.history.deleted_collection(ALICE, "alice", "nothing")


def test_rollback_restores_deletes_and_can_be_undone(svc: Services) -> None:
    put(svc, "contacts", "a.vcf", vcf("a", "Ada"))
    put(svc, "contacts", "b.vcf", vcf("b", "Bea"))
    put(svc, "calendar", "e.ics", ics("e", "Standup"))
    moment = f"@{max_seq(svc)}"
    then = {p: state(svc, p) for p in ("contacts", "calendar")}
    contacts = svc.history.find_collection(ALICE, "alice", "contacts")
    put(svc, "contacts", "a.vcf", vcf("a", "Ada (edited)"))
    svc.items.delete(PHONE, contacts, "b.vcf")
    put(svc, "contacts", "c.vcf", vcf("c", "Cy"))
    svc.collections.delete(PHONE, svc.collections.get(ALICE, "alice", "calendar"))
    now = {p: state(svc, p) for p in ("contacts", "calendar")}

    plan = svc.history.plan_rollback(ALICE, "alice", moment)
    assert plan.counts() == {
        "restore": 2,
        "delete": 1,
        "undelete_collection": 1,
        "delete_collection": 0,
    }
    assert {(p.name, p.description) for p in plan.items} == {
        ("a.vcf", "revert"),
        ("b.vcf", "bring back"),
        ("c.vcf", "delete"),
    }
    result = svc.history.rollback(ALICE, "alice", moment)
    assert {p: state(svc, p) for p in ("contacts", "calendar")} == then
    assert result.first_seq is not None and result.undo_position == f"@{result.first_seq - 1}"
    with svc.store.read() as r:
        written = r.log(result.first_seq - 1)
    assert {rev.client for rev in written} == {"DAVx5/4.3"}, "the rollback names its actor"

    assert svc.history.plan_rollback(ALICE, "alice", moment).empty
    svc.history.rollback(ALICE, "alice", result.undo_position)
    assert {p: state(svc, p) for p in ("contacts", "calendar")} == now


def test_collection_rollback_leaves_others_alone(svc: Services) -> None:
    put(svc, "contacts", "a.vcf", vcf("a", "Ada"))
    moment = f"@{max_seq(svc)}"
    put(svc, "contacts", "a.vcf", vcf("a", "Ada 2"))
    put(svc, "calendar", "e.ics", ics("e", "New"))
    contacts = svc.history.find_collection(ALICE, "alice", "contacts")
    svc.history.rollback(ALICE, "alice", moment, contacts)
    assert state(svc, "contacts") == {"a.vcf": vcf("a", "Ada")}
    assert state(svc, "calendar") == {"e.ics": ics("e", "New")}


def test_rollback_refuses_bad_moments_and_changes_nothing(svc: Services) -> None:
    put(svc, "contacts", "a.vcf", vcf("a", "Ada"))
    before = max_seq(svc)
    for moment, error in (
        ("yesterday", "before the account"),
        ("2001-01-01T00:00:00Z", "before the account"),
        ("@0", "before the account"),
        ("in a while", "cannot read the time"),
        ("@abc", "log position"),
        (f"@{before + 5}", "in the future"),
        ("2999-01-01T00:00:00Z", "in the future"),
    ):
        with pytest.raises(InvalidRequest, match=error):
            svc.history.plan_rollback(ALICE, "alice", moment)
        with pytest.raises(InvalidRequest, match=error):
            svc.history.rollback(ALICE, "alice", moment)
    # bob's account was created after @3 (alice's three collections).
    with pytest.raises(InvalidRequest, match="before the account 'bob'"):
        svc.history.rollback(BOB, "bob", "@3")
    with pytest.raises(Forbidden):
        svc.history.rollback(BOB, "alice", "1 hour ago")
    with pytest.raises(NotFound):
        svc.history.rollback(ADMIN, "nobody", "@3")
    assert max_seq(svc) == before


def test_admin_may_roll_back_anyone(svc: Services) -> None:
    seq = put(svc, "contacts", "a.vcf", vcf("a", "Ada"))
    put(svc, "contacts", "a.vcf", vcf("a", "Ada 2"))
    result = svc.history.rollback(ADMIN, "alice", f"@{seq}")
    assert result.first_seq is not None
    assert state(svc, "contacts") == {"a.vcf": vcf("a", "Ada")}
    with svc.store.read() as r:
        assert r.get_revision(result.first_seq).user == "root"  # type: ignore[union-attr]


# -- the model: the state at any moment is what it was then --------------------------------

NAMES = ("a.vcf", "b.vcf", "c.vcf", "d.vcf")
_TMP = tempfile.TemporaryDirectory()


class HistoryMachine(RuleBasedStateMachine):
    """Random puts, deletes, collection deletes/undeletes and rollbacks of one address
    book; after every step, the stored state equals a dictionary model, and rolling back
    to any earlier log position gives back exactly the state recorded at it. A deleted
    collection keeps what it held when it was last deleted (undelete brings that back)."""

    moments = Bundle("moments")

    shared: Services | None = None
    runs = 0

    def __init__(self) -> None:
        super().__init__()
        # One store for every run, a new account per run: argon2 and opening cost.
        if HistoryMachine.shared is None:
            store = open_store(Path(_TMP.name))
            HistoryMachine.shared = Services(
                store,
                Accounts(store, PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)),
                Collections(store),
                Items(store),
                History(store),
            )
        self.svc = HistoryMachine.shared
        HistoryMachine.runs += 1
        self.owner = f"user{HistoryMachine.runs}"
        self.actor = Actor(self.owner, "DAVx5/4.3")
        self.phone = Actor(self.owner, "PhoneReset/1.0")
        self.svc.accounts.add(self.owner, "pw")
        self.coll = self.svc.collections.get(self.actor, self.owner, "contacts")
        self.model: dict[str, bytes] = {}
        self.live = True
        self.snapshots: dict[int, tuple[bool, dict[str, bytes]]] = {}
        self.version = 0

    def teardown(self) -> None:
        assert check_store(self.svc.store, verify_contents=False).ok

    @precondition(lambda self: self.live)
    @rule(name=st.sampled_from(NAMES))
    def put(self, name: str) -> None:
        self.version += 1
        body = vcf(name, f"{name} v{self.version}")
        self.svc.items.put(self.actor, self.coll, name, [body], "text/vcard")
        self.model[name] = body

    @precondition(lambda self: self.live)
    @rule(name=st.sampled_from(NAMES))
    def delete(self, name: str) -> None:
        if name in self.model:
            self.svc.items.delete(self.phone, self.coll, name)
            del self.model[name]

    @precondition(lambda self: self.live)
    @rule()
    def delete_collection(self) -> None:
        self.svc.collections.delete(self.phone, self.coll)
        self.live = False

    @precondition(lambda self: not self.live)
    @rule()
    def undelete_collection(self) -> None:
        self.svc.history.undelete_collection(self.actor, self.coll)
        self.live = True

    @rule(target=moments)
    def remember(self) -> int:
        seq = max_seq(self.svc)
        self.snapshots[seq] = (self.live, dict(self.model))
        return seq

    @rule(seq=moments, scoped=st.booleans())
    def rollback(self, seq: int, scoped: bool) -> None:
        coll = self.coll if scoped else None
        self.svc.history.rollback(self.actor, self.owner, f"@{seq}", coll)
        self.live, model = self.snapshots[seq]
        if self.live:
            self.model = dict(model)
        # else: deleted then, deleted now; it keeps what it held when last deleted.

    @invariant()
    def matches_model(self) -> None:
        with self.svc.store.read() as r:
            fresh = r.get_collection_by_id(self.coll.id)
            assert fresh is not None
            assert (fresh.deleted_seq is None) == self.live
            stored = {
                i.name: self.svc.store.read_body(i.content_hash, r) for i in r.list_items(fresh.id)
            }
        assert stored == self.model


HistoryMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestHistoryModel = HistoryMachine.TestCase
