"""Guards on a real store: the mass-deletion alert and conflict keeping."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from homeport.backends.localfs import LocalBlobStore
from homeport.backends.sqlite import SqliteMetadataStore, SqliteReader
from homeport.errors import Forbidden, NotFound, PreconditionFailed, ValidationError
from homeport.services import Actor, MassDeletionPolicy, Preconditions, Services
from homeport.services.guards import Alert
from homeport.store.check import check_store
from homeport.store.core import Store
from homeport.store.interfaces import MetadataReader, MetadataStore, MetadataWriter
from homeport.store.model import Collection, CollectionKind, Op
from homeport.wiring import open_store
from tests.unit.services.support import MINUTE, Clock, build, install_clock, vcf

ALICE = Actor("alice", "DAVx5/4.3")
PHONE = Actor("alice", "PhoneReset/1.0")
BOB = Actor("bob", "pytest")
ADMIN = Actor("root", "homeport-cli", is_admin=True)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch, Clock())


@pytest.fixture
def svc(tmp_path: Path, clock: Clock) -> Iterator[Services]:
    services = build(open_store(tmp_path))
    yield services
    report = check_store(services.store)
    assert report.ok, report.problems
    services.close()


def contacts(svc: Services, owner: str = "alice") -> Collection:
    return svc.collections.get(Actor(owner), owner, "contacts")


def fill(svc: Services, coll: Collection, n: int, actor: Actor = ALICE) -> list[str]:
    names = [f"c{i:03}.vcf" for i in range(n)]
    for name in names:
        svc.items.put(actor, coll, name, [vcf(name)], "text/vcard")
    return names


def delete_all(svc: Services, coll: Collection, names: list[str], actor: Actor = PHONE) -> int:
    """Delete `names`; the sequence of the first deletion."""
    first = 0
    for name in names:
        svc.items.delete(actor, coll, name)
        if not first:
            with svc.store.read() as r:
                first = r.max_seq()
    return first


def alerts(svc: Services) -> list[Alert]:
    return svc.guards.alerts(ADMIN, include_acknowledged=True)


# -- the mass-deletion alert -------------------------------------------------------


def test_one_alert_for_a_burst_with_the_command_that_undoes_it(svc: Services) -> None:
    coll = contacts(svc)
    names = fill(svc, coll, 20)
    first = delete_all(svc, coll, names[:10])
    assert alerts(svc) == [], "half of the collection is not more than half"
    delete_all(svc, coll, names[10:11])
    (alert,) = alerts(svc)
    assert (alert.owner, alert.collection_path, alert.user, alert.client) == (
        "alice",
        "contacts",
        "alice",
        "PhoneReset/1.0",
    )
    assert (alert.deleted, alert.collection_size, alert.first_seq) == (11, 20, first)
    assert alert.rollback_command == (
        f"homeport rollback --data DIR --user alice --collection contacts --to @{first - 1}"
    )
    assert alert.command("/srv/home port") == (
        "homeport rollback --data '/srv/home port' --user alice --collection contacts "
        f"--to @{first - 1}"
    )
    assert alert.undo_position == f"@{first - 1}" and not alert.acknowledged
    # The burst goes on: the same alert grows, no second one.
    last_seq = 0
    for name in names[11:]:
        svc.items.delete(PHONE, coll, name)
    with svc.store.read() as r:
        last_seq = r.max_seq()
    (alert,) = alerts(svc)
    assert (alert.deleted, alert.first_seq, alert.last_seq) == (20, first, last_seq)
    assert svc.metrics["mass_deletion_alerts_total"] == 1
    # The command's rollback brings every item back, byte for byte.
    svc.history.rollback(ADMIN, "alice", alert.undo_position, coll)
    assert {i.name: svc.items.body(i) for i in svc.items.list_items(ALICE, coll)} == {
        n: vcf(n) for n in names
    }


def test_other_clients_and_collections_are_counted_apart(svc: Services) -> None:
    coll = contacts(svc)
    cal = svc.collections.get(ALICE, "alice", "tasks")
    names = fill(svc, coll, 20)
    delete_all(svc, coll, names[:8], PHONE)
    delete_all(svc, coll, names[8:13], ALICE)  # another User-Agent: another client
    assert alerts(svc) == [], "8 of 20 by one client, 5 of 12 by the other"
    admin_deleting = Actor("alice", "PhoneReset/1.0", is_admin=True)
    delete_all(svc, coll, names[13:16], admin_deleting)  # same user and client as PHONE
    (alert,) = alerts(svc)
    assert (alert.client, alert.deleted, alert.collection_size) == ("PhoneReset/1.0", 11, 20)
    assert svc.items.list_items(ALICE, cal) == []


def test_the_count_rule_and_small_collections(svc: Services) -> None:
    svc.guards.policy = MassDeletionPolicy(percent=50, min_items=10, max_items=5)
    coll = contacts(svc)
    small = svc.collections.create(ALICE, "alice", "small", CollectionKind.ADDRESSBOOK)
    names = fill(svc, coll, 40)
    few = fill(svc, small, 4)
    delete_all(svc, small, few)  # all of a collection below min_items: no alert
    assert alerts(svc) == []
    delete_all(svc, coll, names[:6])  # 6 > 5 items, though only 15 %
    (alert,) = alerts(svc)
    assert (alert.collection_path, alert.deleted, alert.collection_size) == ("contacts", 6, 40)


def test_a_quiet_window_ends_a_burst(svc: Services, clock: Clock) -> None:
    coll = contacts(svc)
    names = fill(svc, coll, 20)
    delete_all(svc, coll, names[:6])
    clock.advance(11 * MINUTE)  # longer than the 10-minute window
    delete_all(svc, coll, names[6:12])
    assert alerts(svc) == [], "6 of 20, then 6 of 14: neither is more than half"


def test_a_burst_straddling_two_windows_is_seen_whole(svc: Services, clock: Clock) -> None:
    coll = contacts(svc)
    names = fill(svc, coll, 30)
    first = delete_all(svc, coll, names[:1])
    clock.advance(9.5 * MINUTE)
    delete_all(svc, coll, names[1:9])  # 9 of 30 in the first window
    clock.advance(1 * MINUTE)  # the first window is over, the deleting is not
    delete_all(svc, coll, names[9:16])  # 7 of 21 in the second: neither window alone
    (alert,) = alerts(svc)
    assert (alert.first_seq, alert.deleted, alert.collection_size) == (first, 16, 30)
    svc.history.rollback(ADMIN, "alice", alert.undo_position, coll)
    assert len(svc.items.list_items(ALICE, coll)) == 30


def test_deleting_after_an_acknowledgement_starts_a_new_alert(svc: Services, clock: Clock) -> None:
    coll = contacts(svc)
    names = fill(svc, coll, 40)
    delete_all(svc, coll, names[:25])
    (first,) = alerts(svc)
    svc.guards.acknowledge(ALICE, first.id)
    svc.guards.acknowledge(ALICE, first.id)  # twice is fine
    assert svc.guards.alerts(ALICE) == []
    (seen,) = svc.guards.alerts(ALICE, include_acknowledged=True)
    assert seen.acknowledged and seen.acknowledged_by == "alice" and seen.deleted == 25
    delete_all(svc, coll, names[25:])  # 15 more of the 15 left
    newest, older = alerts(svc)
    assert (newest.deleted, newest.collection_size) == (15, 15)
    assert older.id == first.id and older.deleted == 25, "an acknowledged alert stays as it was"
    assert svc.metrics["mass_deletion_alerts_total"] == 2


def test_deleting_a_whole_collection_counts(svc: Services) -> None:
    cal = svc.collections.create(ALICE, "alice", "work", CollectionKind.ADDRESSBOOK)
    names = fill(svc, cal, 12)
    empty = svc.collections.create(ALICE, "alice", "empty", CollectionKind.ADDRESSBOOK)
    svc.collections.delete(PHONE, empty)
    svc.collections.delete(PHONE, cal)
    (alert,) = alerts(svc)
    with svc.store.read() as r:
        rmcol = r.max_seq()
    assert (alert.collection_path, alert.deleted, alert.collection_size) == ("work", 12, 12)
    assert alert.first_seq == rmcol
    assert alert.rollback_command.endswith(f"--collection work --to @{rmcol - 1}")
    gone = svc.history.find_collection(ADMIN, "alice", "work")
    svc.history.rollback(ADMIN, "alice", alert.undo_position, gone)
    back = svc.collections.get(ALICE, "alice", "work")
    assert sorted(i.name for i in svc.items.list_items(ALICE, back)) == names


def test_removing_a_user_raises_no_alert(svc: Services) -> None:
    bobs = contacts(svc, "bob")
    fill(svc, bobs, 12, BOB)
    svc.accounts.remove("bob")
    assert alerts(svc) == []


def test_item_deletes_then_the_collection_make_one_burst(svc: Services) -> None:
    cal = svc.collections.create(ALICE, "alice", "work", CollectionKind.ADDRESSBOOK)
    names = fill(svc, cal, 20)
    first = delete_all(svc, cal, names[:5])
    svc.collections.delete(PHONE, cal)
    (alert,) = alerts(svc)
    assert (alert.first_seq, alert.deleted, alert.collection_size) == (first, 20, 20)


def test_moves_are_not_deletions(svc: Services) -> None:
    coll = contacts(svc)
    other = svc.collections.create(ALICE, "alice", "other", CollectionKind.ADDRESSBOOK)
    names = fill(svc, coll, 20)
    for name in names:
        svc.items.transfer(PHONE, coll, name, other, name, move=True, overwrite=False)
    folder = svc.collections.create(ALICE, "alice", "files", CollectionKind.PLAIN)
    for i in range(12):
        svc.items.put(ALICE, folder, f"f{i}.txt", [b"file %d" % i], "text/plain")
    svc.collections.copy_or_move(PHONE, folder, "alice", "moved", move=True, overwrite=False)
    assert alerts(svc) == []


def test_a_rollback_that_deletes_much_is_reported_too(svc: Services) -> None:
    coll = contacts(svc)
    with svc.store.read() as r:
        before = r.max_seq()
    fill(svc, coll, 15)
    svc.history.rollback(ADMIN, "alice", f"@{before}", coll)
    (alert,) = alerts(svc)
    assert (alert.client, alert.deleted, alert.collection_size) == ("homeport-cli", 15, 15)
    svc.history.rollback(ADMIN, "alice", alert.undo_position, coll)  # undoes the rollback
    assert len(svc.items.list_items(ALICE, coll)) == 15


def test_alerts_are_private_to_their_owner(svc: Services) -> None:
    coll = contacts(svc)
    delete_all(svc, coll, fill(svc, coll, 12))
    bobs = contacts(svc, "bob")
    delete_all(svc, bobs, fill(svc, bobs, 12, BOB), BOB)
    mine = svc.guards.alerts(ALICE)
    assert [a.owner for a in mine] == ["alice"]
    assert [a.owner for a in svc.guards.alerts(BOB)] == ["bob"]
    assert {a.owner for a in svc.guards.alerts(ADMIN)} == {"alice", "bob"}
    assert [a.owner for a in svc.guards.alerts(ADMIN, "bob")] == ["bob"]
    with pytest.raises(Forbidden):
        svc.guards.alerts(BOB, "alice")
    with pytest.raises(Forbidden):
        svc.guards.acknowledge(BOB, mine[0].id)
    with pytest.raises(NotFound):
        svc.guards.acknowledge(ADMIN, 10_000)
    svc.guards.acknowledge(ADMIN, mine[0].id)
    assert svc.guards.alerts(ALICE) == [] and svc.guards.open_count() == 1


def test_a_burst_counts_the_collection_once_not_per_delete(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    coll = contacts(svc)
    names = fill(svc, coll, 30)
    calls = []
    original = SqliteReader.count_items

    def counting(self: SqliteReader, collection_id: int) -> int:
        calls.append(collection_id)
        return original(self, collection_id)

    monkeypatch.setattr(SqliteReader, "count_items", counting)
    delete_all(svc, coll, names)
    assert calls == [coll.id], "one count when the burst starts, none per delete"
    assert alerts(svc)[0].deleted == 30


def test_disabled_rules_raise_nothing(svc: Services) -> None:
    svc.guards.policy = MassDeletionPolicy(percent=0, max_items=0)
    coll = contacts(svc)
    delete_all(svc, coll, fill(svc, coll, 20))
    assert alerts(svc) == []
    with svc.store.read() as r:
        assert r.get_deletion_burst(coll.id, "alice", PHONE.client) is None


class FailingCommits:
    """A metadata store whose write transactions fail at commit while `fail` is set."""

    def __init__(self, inner: MetadataStore) -> None:
        self.inner = inner
        self.fail = False

    def read(self, wait: bool = True) -> AbstractContextManager[MetadataReader]:
        return self.inner.read(wait)

    @contextmanager
    def _write(self) -> Iterator[MetadataWriter]:
        with self.inner.write() as w:
            yield w
            if self.fail:
                raise OSError("fsync failed")

    def write(self) -> AbstractContextManager[MetadataWriter]:
        return self._write()

    def close(self) -> None:
        self.inner.close()


def test_an_alert_commits_with_its_deletions_or_not_at_all(tmp_path: Path, clock: Clock) -> None:
    meta = FailingCommits(SqliteMetadataStore(tmp_path / "db.sqlite3"))
    svc = build(Store(meta, LocalBlobStore(tmp_path)))
    try:
        svc.guards.policy = MassDeletionPolicy(max_items=3, percent=0)
        coll = contacts(svc)
        names = fill(svc, coll, 6)
        delete_all(svc, coll, names[:3])
        meta.fail = True
        with pytest.raises(OSError):
            svc.items.delete(PHONE, coll, names[3])  # this one would raise the alert
        meta.fail = False
        assert alerts(svc) == [] and svc.metrics["mass_deletion_alerts_total"] == 0
        with svc.store.read() as r:
            burst = r.get_deletion_burst(coll.id, "alice", PHONE.client)
        assert burst is not None and burst.count == 3
        svc.items.delete(PHONE, coll, names[3])
        (alert,) = alerts(svc)
        assert alert.deleted == 4 and svc.metrics["mass_deletion_alerts_total"] == 1
        assert check_store(svc.store).ok
    finally:
        svc.close()


def test_a_failing_guard_never_fails_the_delete(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    coll = contacts(svc)
    names = fill(svc, coll, 12)

    def broken(*args: object) -> None:
        raise RuntimeError("guard bug")

    monkeypatch.setattr(svc.guards, "_count", broken)
    delete_all(svc, coll, names)
    assert svc.items.list_items(ALICE, coll) == []
    assert alerts(svc) == []


def test_policy_validation() -> None:
    from homeport.errors import ConfigError

    for bad in (
        {"percent": 101},
        {"percent": -1},
        {"max_items": -1},
        {"window_seconds": 0},
    ):
        with pytest.raises(ConfigError):
            MassDeletionPolicy(**bad)
    policy = MassDeletionPolicy()
    assert policy.exceeded(101, 1000) and not policy.exceeded(100, 1000)
    assert policy.exceeded(6, 10) and not policy.exceeded(5, 10) and not policy.exceeded(9, 9)


# -- conflict keeping ----------------------------------------------------------------


def put_vcf(svc: Services, coll: Collection, name: str, body: bytes, pre: Preconditions) -> None:
    svc.items.put(ALICE, coll, name, [body], "text/vcard", pre)


def test_a_body_refused_by_if_match_is_kept_as_a_conflict(svc: Services) -> None:
    coll = contacts(svc)
    item, _ = svc.items.put(ALICE, coll, "a.vcf", [vcf("a", "Ada")], "text/vcard")
    edited, _ = svc.items.put(PHONE, coll, "a.vcf", [vcf("a", "Ada King")], "text/vcard")
    _, token = svc.items.changes(ALICE, coll, None)
    stale = Preconditions(if_match=(item.etag,))
    with pytest.raises(PreconditionFailed):
        put_vcf(svc, coll, "a.vcf", vcf("a", "Ada Lovelace"), stale)
    # Never current, never in sync.
    assert svc.items.get(ALICE, coll, "a.vcf") == edited
    assert svc.items.changes(ALICE, coll, token) == ([], token)
    revs = svc.history.item_history(ALICE, coll, "a.vcf")
    assert [r.revision.op for r in revs] == [Op.PUT, Op.PUT, Op.CONFLICT]
    conflict = revs[-1]
    assert conflict.summary.startswith("conflict") and not conflict.current
    assert (conflict.revision.user, conflict.revision.client) == ("alice", "DAVx5/4.3")
    seq = conflict.revision.seq
    assert svc.history.revision_body(ALICE, coll, "a.vcf", seq) == vcf("a", "Ada Lovelace")
    # And restorable: the edit the client lost comes back as the current version.
    restored = svc.history.restore_revision(ALICE, coll, "a.vcf", seq)
    assert svc.items.body(restored) == vcf("a", "Ada Lovelace")
    assert svc.metrics["conflicts_kept_total"] == 1


def test_if_none_match_failures_are_kept_too(svc: Services) -> None:
    coll = contacts(svc)
    svc.items.put(ALICE, coll, "a.vcf", [vcf("a", "one")], "text/vcard")
    with pytest.raises(PreconditionFailed):
        put_vcf(svc, coll, "a.vcf", vcf("a", "two"), Preconditions(if_none_match_any=True))
    with pytest.raises(PreconditionFailed):  # If-Match on an item that does not exist
        put_vcf(svc, coll, "new.vcf", vcf("n", "new"), Preconditions(if_match=('"nope"',)))
    with svc.store.read() as r:
        ops = [(x.name, x.op) for x in r.log() if x.op is Op.CONFLICT]
    assert ops == [("a.vcf", Op.CONFLICT), ("new.vcf", Op.CONFLICT)]
    assert svc.items.find(ALICE, coll, "new.vcf") is None


def test_nothing_is_kept_when_nothing_would_be_lost(svc: Services) -> None:
    coll = contacts(svc)
    item, _ = svc.items.put(ALICE, coll, "a.vcf", [vcf("a", "one")], "text/vcard")
    svc.items.put(ALICE, coll, "a.vcf", [vcf("a", "two")], "text/vcard")
    stale = Preconditions(if_match=(item.etag,))
    with pytest.raises(PreconditionFailed):  # the current body itself
        put_vcf(svc, coll, "a.vcf", vcf("a", "two"), stale)
    for _ in range(3):  # a client retrying the same refused body: kept once
        with pytest.raises(PreconditionFailed):
            put_vcf(svc, coll, "a.vcf", vcf("a", "three"), stale)
    with pytest.raises(ValidationError):  # a body that does not validate is not kept
        put_vcf(svc, coll, "a.vcf", b"not a vcard", stale)
    with svc.store.read() as r:
        conflicts = [x for x in r.item_history(coll.id, "a.vcf") if x.op is Op.CONFLICT]
    assert len(conflicts) == 1


def test_a_large_refused_file_is_kept_and_checked(svc: Services) -> None:
    folder = svc.collections.create(ALICE, "alice", "files", CollectionKind.PLAIN)
    item, _ = svc.items.put(ALICE, folder, "p.jpg", [b"v1" * 50_000], "image/jpeg")
    svc.items.put(ALICE, folder, "p.jpg", [b"v2" * 50_000], "image/jpeg")
    with pytest.raises(PreconditionFailed):
        svc.items.put(
            ALICE, folder, "p.jpg", [b"v3" * 50_000], "image/jpeg",
            Preconditions(if_match=(item.etag,)),
        )  # fmt: skip
    (conflict,) = [r for r in svc.history.item_history(ALICE, folder, "p.jpg") if
                   r.revision.op is Op.CONFLICT]  # fmt: skip
    assert svc.history.revision_body(ALICE, folder, "p.jpg", conflict.revision.seq) == (
        b"v3" * 50_000
    )


def test_the_client_gets_its_412_even_if_keeping_fails(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    coll = contacts(svc)
    item, _ = svc.items.put(ALICE, coll, "a.vcf", [vcf("a", "one")], "text/vcard")
    svc.items.put(ALICE, coll, "a.vcf", [vcf("a", "two")], "text/vcard")
    real_commit = svc.store.commit
    calls: list[int] = []

    def second_fails(fn: Callable[[MetadataWriter], object]) -> object:
        calls.append(1)
        if len(calls) == 2:
            from homeport.errors import InsufficientStorage

            raise InsufficientStorage("disk full")
        return real_commit(fn)

    monkeypatch.setattr(svc.store, "commit", second_fails)
    with pytest.raises(PreconditionFailed):
        put_vcf(svc, coll, "a.vcf", vcf("a", "three"), Preconditions(if_match=(item.etag,)))
    assert len(calls) == 2
    monkeypatch.undo()
    with svc.store.read() as r:
        assert not [x for x in r.item_history(coll.id, "a.vcf") if x.op is Op.CONFLICT]
