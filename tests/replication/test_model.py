"""Property: whatever the changes, however they are cut into segments and snapshots, a
restore to any moment equals the live data as of that moment (the log is the model)."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeport.errors import HomeportError
from homeport.replication.crypto import generate_identity, load_identities
from homeport.replication.restore import restore
from homeport.replication.settings import ReplicationSettings, TargetSettings
from homeport.replication.shipper import Replicator
from homeport.replication.targets import open_target
from homeport.services import Actor, Services
from homeport.store.model import CollectionKind, CollectionProps, now_us
from homeport.wiring import open_store
from tests.replication.conftest import SLOW
from tests.replication.support import state_of, vcard

KINDS = (
    "put",
    "put",
    "put",
    "delete",
    "file",
    "mkcol",
    "rmcol",
    "undelete",
    "props",
    "password",
    "bob",
    "replicate",
    "snapshot",
)

ops = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 4)), min_size=3, max_size=35)


def _apply(svc: Services, kind: str, k: int, rep: Replicator) -> None:
    alice = Actor("alice")
    contacts = svc.collections.get(alice, "alice", "contacts")
    if kind == "put":
        svc.items.put(
            alice, contacts, f"i{k}.vcf", [vcard(f"u{k}", f"N{k} {now_us()}")], "text/vcard"
        )
    elif kind == "delete":
        svc.items.delete(alice, contacts, f"i{k}.vcf")
    elif kind == "file":
        coll = svc.collections.find(alice, "alice", f"box{k % 2}")
        if coll is not None:
            svc.items.put(alice, coll, f"f{k}.bin", [os.urandom(70_000)], "image/png")
    elif kind == "mkcol":
        svc.collections.create(alice, "alice", f"box{k % 2}", CollectionKind.PLAIN)
    elif kind == "rmcol":
        coll = svc.collections.find(alice, "alice", f"box{k % 2}")
        if coll is not None:
            svc.collections.delete(alice, coll)
    elif kind == "undelete":
        for coll in svc.history.deleted_collections(alice, "alice")[:1]:
            svc.history.undelete_collection(alice, coll)
    elif kind == "props":
        svc.collections.update(alice, contacts, CollectionProps(displayname=f"d{k}"))
        svc.items.set_dead_props(alice, contacts, "", {f"{{urn:t}}p{k}": b"<v/>"}, [])
    elif kind == "password":
        svc.accounts.set_password("alice", f"pw{k}")
    elif kind == "bob":
        if svc.accounts.count() < 2:
            svc.accounts.add("bob", "pw")
    elif kind == "replicate":
        assert rep.replicate_once()[0].error is None
    elif kind == "snapshot":
        assert rep.replicate_once(force_snapshot=True)[0].error is None


def _seq_at(db: Path, at_us: int) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(
            conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM log WHERE at_us <= ?", (at_us,)
            ).fetchone()[0]
        )
    finally:
        conn.close()


@settings(
    max_examples=40 if SLOW else 8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    steps=ops,
    max_entries=st.sampled_from([1, 2, 5, 10_000]),
    max_inline=st.sampled_from([300, 10_000_000]),
    picks=st.lists(st.integers(0, 1000), min_size=1, max_size=3),
)
def test_any_moment_restores_to_the_live_state(
    steps: list[tuple[str, int]], max_entries: int, max_inline: int, picks: list[int]
) -> None:
    secret, recipient = generate_identity()
    with tempfile.TemporaryDirectory(prefix="hp-model-") as tmp:
        root = Path(tmp)
        (root / "key.txt").write_text(secret + "\n")
        (root / "replica").mkdir()
        target = TargetSettings(name="nas", url=f"file://{root / 'replica'}")
        svc = Services.build(open_store(root / "data"))
        try:
            rep = Replicator(svc.store, ReplicationSettings((target,), (recipient,)))
            for worker in rep._workers:
                worker.shipper.max_entries = max_entries
                worker.shipper.max_inline_bytes = max_inline
            moments: list[int] = []
            try:
                svc.accounts.add("alice", "pw")
                rep.replicate_once()
                for kind, k in steps:
                    try:
                        _apply(svc, kind, k, rep)
                    except HomeportError:
                        pass
                    time.sleep(0.001)
                    moments.append(now_us())
                    time.sleep(0.001)
                assert rep.replicate_once()[0].error is None
            finally:
                rep.stop()
            db = Path(svc.store.meta.path)  # type: ignore[attr-defined]
            opener = load_identities(root / "key.txt")
            newest = root / "newest"
            restore(open_target(target), opener, newest, open_store)
            assert state_of(newest / "homeport.sqlite3") == state_of(db)
            for n, pick in enumerate(picks):
                at = moments[pick % len(moments)]
                dest = root / f"at{n}"
                restore(open_target(target), opener, dest, open_store, at_us=at)
                expected = state_of(db, upto=_seq_at(db, at), full=False)
                assert state_of(dest / "homeport.sqlite3", full=False) == expected, n
        finally:
            svc.close()
