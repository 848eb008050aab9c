"""A model-based test of the change log, history and rollback (CONVENTIONS.md, habit 6).

Random sequences of puts, overwrites, refused writes (kept as conflicts), deletes,
moves, item restores, undeletes and rollbacks (collection and account scope, to random
earlier log positions) run against the real services on SQLite and a local folder, and
against a model that is only a dictionary per log position. After every step:

- the current state equals the model's;
- the state at *every* earlier recorded position, as the log reports it
  (`state_at`), equals the model's state at that position;
- every item's history (op and body, in order) equals the model's;
- `check_store` finds nothing wrong.

Some bodies are larger than the inline threshold, so both blob kinds are exercised.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from homeport.errors import (
    Conflict,
    HomeportError,
    NotFound,
    PreconditionFailed,
    UidConflict,
)
from homeport.services import Actor, Preconditions
from homeport.store.check import check_store
from homeport.store.model import Collection, CollectionKind, Op
from homeport.wiring import open_store
from tests.unit.services.support import build, ics

ALICE = Actor("alice", "DAVx5/4.3")
ADMIN = Actor("root", "homeport-cli", is_admin=True)
COLLS = ("calendar", "work")
NAMES = ("a.ics", "b.ics", "c.ics")
UIDS = ("u1", "u2", "u3")
SUMMARIES = ("x", "y", "long")
INLINE_MAX = 300

Key = tuple[str, str]  # (collection path, item name)
Body = tuple[str, bytes]  # (uid, bytes)
State = dict[Key, Body]


def make_body(uid: str, summary: str) -> Body:
    text = "L" * 400 if summary == "long" else summary  # "long" is stored externally
    return uid, ics(uid, text)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class HistoryModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="homeport-model-"))
        self.svc = build(open_store(self.root, inline_max=INLINE_MAX), users=("alice",))
        self.svc.collections.create(ALICE, "alice", "work", CollectionKind.CALENDAR)
        self.colls: dict[str, Collection] = {
            path: self.svc.collections.get(ALICE, "alice", path) for path in COLLS
        }
        self.current: State = {}
        self.revisions: dict[Key, list[tuple[Op, bytes | None]]] = {}
        self.states: dict[int, State] = {}
        self.record()

    def teardown(self) -> None:
        self.svc.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- the model ---------------------------------------------------------------------

    def max_seq(self) -> int:
        with self.svc.store.read() as r:
            return r.max_seq()

    def record(self) -> None:
        self.states[self.max_seq()] = dict(self.current)

    def note(self, key: Key, op: Op, body: bytes | None) -> None:
        self.revisions.setdefault(key, []).append((op, body))

    def uid_holder(self, coll: str, uid: str) -> str | None:
        return next((k[1] for k, b in self.current.items() if k[0] == coll and b[0] == uid), None)

    def set_state(self, target: State, scope: str | None) -> None:
        """Move the model to `target` (within `scope`), noting a revision per change."""
        keys = {k for k in self.current.keys() | target.keys() if scope in (None, k[0])}
        for key in sorted(keys):
            now, then = self.current.get(key), target.get(key)
            if (now and now[1]) == (then and then[1]):
                continue
            if then is None:
                self.note(key, Op.DELETE, None)
                del self.current[key]
            else:
                self.note(key, Op.PUT, then[1])
                self.current[key] = then

    # -- rules ---------------------------------------------------------------------------

    @rule(
        coll=st.sampled_from(COLLS),
        name=st.sampled_from(NAMES),
        uid=st.sampled_from(UIDS),
        summary=st.sampled_from(SUMMARIES),
    )
    def put(self, coll: str, name: str, uid: str, summary: str) -> None:
        body = make_body(uid, summary)
        holder = self.uid_holder(coll, uid)
        try:
            self.svc.items.put(ALICE, self.colls[coll], name, [body[1]], "text/calendar")
        except UidConflict:
            assert holder not in (None, name)
        else:
            assert holder in (None, name)
            self.current[(coll, name)] = body
            self.note((coll, name), Op.PUT, body[1])
        self.record()

    @rule(
        coll=st.sampled_from(COLLS),
        name=st.sampled_from(NAMES),
        uid=st.sampled_from(UIDS),
        summary=st.sampled_from(SUMMARIES),
    )
    def put_with_a_stale_etag(self, coll: str, name: str, uid: str, summary: str) -> None:
        """A client's edit that lost a race: refused (412), yet kept as a conflict."""
        body = make_body(uid, summary)
        key = (coll, name)
        stale = Preconditions(if_match=('"stale"',))
        try:
            self.svc.items.put(ALICE, self.colls[coll], name, [body[1]], "text/calendar", stale)
        except PreconditionFailed:
            pass
        else:
            raise AssertionError("a stale If-Match was accepted")
        now = self.current.get(key)
        newest = self.revisions.get(key, [])[-1:]
        if (now is None or now[1] != body[1]) and newest != [(Op.CONFLICT, body[1])]:
            self.note(key, Op.CONFLICT, body[1])
        self.record()

    @rule(coll=st.sampled_from(COLLS), name=st.sampled_from(NAMES))
    def delete(self, coll: str, name: str) -> None:
        key = (coll, name)
        try:
            self.svc.items.delete(ALICE, self.colls[coll], name)
        except NotFound:
            assert key not in self.current
        else:
            del self.current[key]
            self.note(key, Op.DELETE, None)
        self.record()

    @rule(
        src=st.sampled_from(COLLS),
        name=st.sampled_from(NAMES),
        dst=st.sampled_from(COLLS),
        dst_name=st.sampled_from(NAMES),
        overwrite=st.booleans(),
    )
    def move(self, src: str, name: str, dst: str, dst_name: str, overwrite: bool) -> None:
        item = self.current.get((src, name))
        holder = self.uid_holder(dst, item[0]) if item else None
        expect_ok = (
            item is not None
            and (src, name) != (dst, dst_name)
            and (overwrite or (dst, dst_name) not in self.current)
            and (src == dst or holder in (None, dst_name))
        )
        try:
            self.svc.items.transfer(
                ALICE, self.colls[src], name, self.colls[dst], dst_name,
                move=True, overwrite=overwrite,
            )  # fmt: skip
        except (NotFound, PreconditionFailed, UidConflict):
            assert not expect_ok
        else:
            assert expect_ok and item is not None
            del self.current[(src, name)]
            self.note((src, name), Op.DELETE, None)
            self.current[(dst, dst_name)] = item
            self.note((dst, dst_name), Op.PUT, item[1])
        self.record()

    @precondition(lambda self: any(self.revisions.values()))
    @rule(data=st.data())
    def restore_a_revision(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(k for k, v in self.revisions.items() if v)))
        with_body = [(i, b) for i, (op, b) in enumerate(self.revisions[key]) if b is not None]
        if not with_body:
            return
        index = data.draw(st.sampled_from([n for n in range(len(with_body))]))
        coll = self.colls[key[0]]
        history = self.svc.history.item_history(ALICE, coll, key[1])
        revs = [h.revision for h in history if h.revision.op in (Op.PUT, Op.CONFLICT)]
        target = revs[index]
        body = with_body[index][1]
        assert target.content_hash == sha(body)
        uid = target.uid or ""
        holder = self.uid_holder(key[0], uid)
        try:
            self.svc.history.restore_revision(ALICE, coll, key[1], target.seq)
        except Conflict:
            assert holder not in (None, key[1])
        else:
            assert holder in (None, key[1])
            self.current[key] = (uid, body)
            self.note(key, Op.PUT, body)
        self.record()

    @rule(coll=st.sampled_from(COLLS), name=st.sampled_from(NAMES))
    def undelete(self, coll: str, name: str) -> None:
        key = (coll, name)
        puts = [b for op, b in self.revisions.get(key, []) if op is Op.PUT and b is not None]
        try:
            self.svc.history.undelete_item(ALICE, self.colls[coll], name)
        except Conflict:
            uid = puts[-1] and _uid(puts[-1]) if puts else None
            assert key in self.current or self.uid_holder(coll, uid or "") not in (None, name)
        except NotFound:
            assert key not in self.current and not puts
        else:
            assert key not in self.current and puts
            body = puts[-1]
            self.current[key] = (_uid(body), body)
            self.note(key, Op.PUT, body)
        self.record()

    @rule(data=st.data(), scope=st.sampled_from((None, *COLLS)))
    def rollback(self, data: st.DataObject, scope: str | None) -> None:
        position = data.draw(st.sampled_from(sorted(self.states)))
        coll = self.colls[scope] if scope else None
        try:
            self.svc.history.rollback(ADMIN, "alice", f"@{position}", coll)
        except HomeportError as exc:
            raise AssertionError(f"rollback to @{position} refused: {exc.message}") from exc
        self.set_state(self.states[position], scope)
        self.record()

    @rule(data=st.data())
    def plan_matches_the_model(self, data: st.DataObject) -> None:
        position = data.draw(st.sampled_from(sorted(self.states)))
        plan = self.svc.history.plan_rollback(ADMIN, "alice", f"@{position}")
        then = self.states[position]
        expected = {
            key: ("restore" if key in then else "delete")
            for key in self.current.keys() | then.keys()
            if (self.current.get(key) or (None, None))[1] != (then.get(key) or (None, None))[1]
        }
        got = {(p.collection.path, p.name): p.action for p in plan.items}
        assert got == expected and plan.collections == []

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def the_present_matches(self) -> None:
        stored = {}
        for path, coll in self.colls.items():
            for item in self.svc.items.list_items(ALICE, coll):
                stored[(path, item.name)] = self.svc.items.body(item)
        assert stored == {k: b[1] for k, b in self.current.items()}

    @invariant()
    def every_past_position_matches(self) -> None:
        with self.svc.store.read() as r:
            for position, state in self.states.items():
                for path, coll in self.colls.items():
                    got = {
                        rev.name: rev.content_hash
                        for rev in r.state_at(coll.id, position)
                        if rev.op is Op.PUT
                    }
                    want = {k[1]: sha(b[1]) for k, b in state.items() if k[0] == path}
                    assert got == want, f"state of {path} at @{position}"

    @invariant()
    def every_history_matches(self) -> None:
        with self.svc.store.read() as r:
            for (path, name), revs in self.revisions.items():
                got = [(x.op, x.content_hash) for x in r.item_history(self.colls[path].id, name)]
                assert got == [(op, sha(b) if b else None) for op, b in revs], (path, name)

    @invariant()
    def the_store_is_sound(self) -> None:
        report = check_store(self.svc.store)
        assert report.ok, report.problems


def _uid(body: bytes) -> str:
    return body.split(b"UID:", 1)[1].split(b"\r\n", 1)[0].decode()


HistoryModel.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestHistoryModel = HistoryModel.TestCase
