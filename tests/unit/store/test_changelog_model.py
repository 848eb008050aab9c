"""The change log against a model: random puts, overwrites, deletes and conflicts in a
few collections, applied to the real Store and to a dictionary, compared after every
step. The central property is the sync token's: whatever token a client holds, applying
`changes_since(token)` to what it had then gives exactly the current state."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from homeport.store.check import check_store
from homeport.store.interfaces import MetadataWriter
from homeport.store.model import Collection, NewRevision, Op, Revision
from tests.unit.store.support import CLIENT, OWNER, mkcol, open_store, put_rev, sha

INLINE_MAX = 64
NAMES = st.sampled_from(["a.ics", "b.ics", "c.ics", "d.vcf", "e.jpg"])
BODIES = st.one_of(
    # Shared bodies (stored once, named by several items), around the inline threshold.
    st.sampled_from([b"", b"same", b"x" * INLINE_MAX, b"y" * (INLINE_MAX + 1), b"z" * 300]),
    st.binary(max_size=2 * INLINE_MAX),
)
Snapshot = dict[int, dict[str, str]]  # collection id -> item name -> content hash
Step = tuple[Op, Collection, str, bytes]
Job = Callable[[MetadataWriter], list[Revision]]


class ChangeLogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="homeport-changelog-"))
        self.store = open_store(self.root, inline_max=INLINE_MAX)
        self.collections: list[Collection] = []
        self.model: dict[int, dict[str, bytes]] = {}
        self.last_change: dict[int, dict[str, int]] = {}  # newest PUT/DELETE seq per name
        self.seq = 0
        self.tokens: dict[int, Snapshot] = {}

    # -- the model ------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return {cid: {n: sha(b) for n, b in items.items()} for cid, items in self.model.items()}

    def remember_token(self) -> None:
        self.tokens.setdefault(self.seq, self.snapshot())

    def apply(self, rev: Revision, body: bytes | None) -> None:
        """Bring the model up to date with one revision the store returned."""
        assert rev.seq == self.seq + 1, f"seq {rev.seq} after {self.seq}"
        self.seq = rev.seq
        if rev.op is Op.PUT:
            assert body is not None
            self.model[rev.collection_id][rev.name] = body
            self.last_change[rev.collection_id][rev.name] = rev.seq
        elif rev.op is Op.DELETE:
            self.model[rev.collection_id].pop(rev.name)
            self.last_change[rev.collection_id][rev.name] = rev.seq

    def job(self, ops: list[Step]) -> tuple[list[bytes | None], Job]:
        """Stage the bodies, then build one commit job that appends every op in order."""
        bodies = [
            self.store.stage_bytes(data) if op is not Op.DELETE else None for op, *_, data in ops
        ]

        def fn(w: MetadataWriter) -> list[Revision]:
            revs: list[Revision] = []
            for (op, coll, name, _), body in zip(ops, bodies, strict=True):
                if body is None:
                    rev = NewRevision(OWNER, CLIENT, Op.DELETE, coll.id, name)
                else:
                    self.store.record_body(w, body)
                    rev = put_rev(coll, name, body, op)
                revs.append(self.store.append(w, rev))
            return revs

        return [None if op is Op.DELETE else data for op, *_, data in ops], fn

    def commit(self, ops: list[Step]) -> None:
        datas, fn = self.job(ops)
        revs = self.store.commit(fn)
        for rev, data in zip(revs, datas, strict=True):
            self.apply(rev, data)
        self.remember_token()

    # -- steps ----------------------------------------------------------------------

    @initialize(count=st.integers(min_value=2, max_value=3))
    def make_collections(self, count: int) -> None:
        self.tokens[0] = {}
        for i in range(count):
            coll = mkcol(self.store, f"coll-{i}")
            self.seq += 1
            self.collections.append(coll)
            self.model[coll.id] = {}
            self.last_change[coll.id] = {}
        for snapshot in self.tokens.values():
            for coll in self.collections:
                snapshot.setdefault(coll.id, {})
        self.remember_token()

    @rule(which=st.integers(0, 2), name=NAMES, data=BODIES)
    def put(self, which: int, name: str, data: bytes) -> None:
        coll = self.collections[which % len(self.collections)]
        self.commit([(Op.PUT, coll, name, data)])

    @precondition(lambda self: any(self.model.values()))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        cid, name = data.draw(
            st.sampled_from(sorted((c, n) for c, items in self.model.items() for n in items))
        )
        coll = next(c for c in self.collections if c.id == cid)
        self.commit([(Op.DELETE, coll, name, b"")])

    @rule(which=st.integers(0, 2), name=NAMES, data=BODIES)
    def conflict(self, which: int, name: str, data: bytes) -> None:
        coll = self.collections[which % len(self.collections)]
        self.commit([(Op.CONFLICT, coll, name, data)])

    @rule(
        steps=st.lists(
            st.tuples(
                st.sampled_from([Op.PUT, Op.DELETE, Op.CONFLICT]), st.integers(0, 2), NAMES, BODIES
            ),
            min_size=1,
            max_size=6,
        )
    )
    def several_in_one_commit(self, steps: list[tuple[Op, int, str, bytes]]) -> None:
        existing = {(cid, n) for cid, items in self.model.items() for n in items}
        ops: list[Step] = []
        for op, which, name, data in steps:
            coll = self.collections[which % len(self.collections)]
            if op is Op.DELETE:
                if (coll.id, name) not in existing:
                    continue  # the domain layer only deletes what exists
                existing.discard((coll.id, name))
            elif op is Op.PUT:
                existing.add((coll.id, name))
            ops.append((op, coll, name, data))
        if ops:
            self.commit(ops)

    @rule(which=st.integers(0, 2), name=NAMES, data=BODIES)
    def refused_job(self, which: int, name: str, data: bytes) -> None:
        """A job that appends and then fails leaves no trace."""
        coll = self.collections[which % len(self.collections)]
        body = self.store.stage_bytes(data)

        def fn(w: MetadataWriter) -> None:
            self.store.record_body(w, body)
            self.store.append(w, put_rev(coll, name, body))
            raise LookupError("refused after appending")

        try:
            self.store.commit(fn)
        except LookupError:
            pass
        else:
            raise AssertionError("the job's exception was swallowed")

    @rule(
        puts=st.lists(
            st.tuples(st.integers(0, 2), NAMES, BODIES),
            min_size=2,
            max_size=6,
        )
    )
    def concurrent_puts(self, puts: list[tuple[int, str, bytes]]) -> None:
        """Writers on several threads at once (group commit); each sees its own result."""
        jobs: list[tuple[list[bytes | None], Job]] = []
        for which, name, data in puts:
            coll = self.collections[which % len(self.collections)]
            jobs.append(self.job([(Op.PUT, coll, name, data)]))
        results: list[tuple[Revision, bytes | None]] = []
        lock = threading.Lock()

        def run(datas: list[bytes | None], fn: Job) -> None:
            revs = self.store.commit(fn)
            with lock:
                results.extend(zip(revs, datas, strict=True))

        threads = [threading.Thread(target=run, args=j) for j in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(results) == len(puts)
        for rev, body in sorted(results, key=lambda pair: pair[0].seq):
            self.apply(rev, body)
        self.remember_token()

    @rule()
    def restart(self) -> None:
        """Close and reopen: nothing acknowledged may be lost."""
        self.store.close()
        self.store = open_store(self.root, inline_max=INLINE_MAX)

    # -- invariants -----------------------------------------------------------------

    @invariant()
    def current_items_equal_the_model(self) -> None:
        with self.store.read() as r:
            for coll in self.collections:
                items = r.list_items(coll.id)
                assert {i.name: i.content_hash for i in items} == {
                    n: sha(b) for n, b in self.model[coll.id].items()
                }
                for item in items:
                    body = self.model[coll.id][item.name]
                    assert item.size == len(body)
                    assert item.seq == self.last_change[coll.id][item.name]
                    assert self.store.read_body(item.content_hash, r) == body
                got = r.get_collection_by_id(coll.id)
                assert got is not None
                assert got.sync_seq == max(
                    self.last_change[coll.id].values(), default=coll.created_seq
                )

    @invariant()
    def every_token_syncs_to_the_current_state(self) -> None:
        with self.store.read() as r:
            for token, then in self.tokens.items():
                for coll in self.collections:
                    changes = r.changes_since(coll.id, token)
                    state = dict(then.get(coll.id, {}))
                    for change in changes:
                        assert change.seq > token
                        if change.item is None:
                            state.pop(change.name, None)
                        else:
                            assert change.item.seq == change.seq
                            state[change.name] = change.item.content_hash
                    assert state == {n: sha(b) for n, b in self.model[coll.id].items()}
                    # Exactly the names whose newest change is after the token, once each.
                    assert sorted((c.name, c.seq) for c in changes) == sorted(
                        (n, s) for n, s in self.last_change[coll.id].items() if s > token
                    )

    @invariant()
    def the_log_is_gap_free(self) -> None:
        with self.store.read() as r:
            assert r.max_seq() == self.seq
            assert [rev.seq for rev in r.log()] == list(range(1, self.seq + 1))

    @invariant()
    def check_finds_nothing(self) -> None:
        report = check_store(self.store)
        assert report.ok, report.problems
        assert report.log_entries == self.seq

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.root, ignore_errors=True)


TestChangeLog = ChangeLogMachine.TestCase
TestChangeLog.settings = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
