"""Shared helpers for the replication tests: data that exercises every kind of change, and
a complete description of a data directory's state to compare two of them."""

from __future__ import annotations

import hashlib
import random
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homeport.services import Actor, Services
from homeport.store.model import CollectionKind, CollectionProps

PASSWORD = "correct horse battery staple"


def vcard(uid: str, name: str, note: str = "") -> bytes:
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:{uid}", f"FN:{name}", f"N:{name};;;;"]
    if note:
        lines.append(f"NOTE:{note}")
    lines.append("END:VCARD")
    return ("\r\n".join(lines) + "\r\n").encode()


def vevent(uid: str, summary: str, day: int = 1, hour: int = 9) -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//homeport tests//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20250101T000000Z\r\n"
        f"DTSTART:202506{day:02d}T{hour:02d}0000Z\r\nDTEND:202506{day:02d}T{hour + 1:02d}0000Z\r\n"
        f"SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def vtodo(uid: str, summary: str) -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//homeport tests//EN\r\n"
        f"BEGIN:VTODO\r\nUID:{uid}\r\nDTSTAMP:20250101T000000Z\r\nSUMMARY:{summary}\r\n"
        "END:VTODO\r\nEND:VCALENDAR\r\n"
    ).encode()


@dataclass
class Secrets:
    """Plaintext that must never appear in a replica."""

    words: list[str]
    hashes: list[str]


class Workload:
    """Writes through the domain services, like a server would; remembers what it wrote."""

    def __init__(self, svc: Services, seed: int = 7) -> None:
        self.svc = svc
        self.rng = random.Random(seed)
        self.words: list[str] = []
        self.hashes: list[str] = []
        self.n = 0

    def _note(self, *words: str) -> None:
        self.words.extend(words)

    def _body(self, data: bytes) -> bytes:
        self.hashes.append(hashlib.sha256(data).hexdigest())
        return data

    def add_user(self, name: str) -> None:
        self.svc.accounts.add(name, PASSWORD)
        self._note(name)

    def contacts(self, user: str, count: int) -> None:
        actor = Actor(user)
        coll = self.svc.collections.get(actor, user, "contacts")
        for _ in range(count):
            self.n += 1
            name = f"Zyxtarius Quibblewick{self.n}"
            uid = f"uid-contact-{user}-{self.n}"
            body = self._body(vcard(uid, name, note=f"secret-note-{self.n}"))
            self.svc.items.put(actor, coll, f"{uid}.vcf", [body], "text/vcard")
            self._note(name, uid, f"secret-note-{self.n}")

    def events(self, user: str, count: int) -> None:
        actor = Actor(user)
        cal = self.svc.collections.get(actor, user, "calendar")
        tasks = self.svc.collections.get(actor, user, "tasks")
        for _ in range(count):
            self.n += 1
            uid = f"uid-event-{user}-{self.n}"
            summary = f"Clandestine rendezvous {self.n}"
            body = self._body(vevent(uid, summary, day=1 + self.n % 28))
            self.svc.items.put(actor, cal, f"{uid}.ics", [body], "text/calendar")
            tuid = f"uid-todo-{user}-{self.n}"
            todo = self._body(vtodo(tuid, f"Buy marmalade {self.n}"))
            self.svc.items.put(actor, tasks, f"{tuid}.ics", [todo], "text/calendar")
            self._note(uid, summary, tuid, f"Buy marmalade {self.n}")

    def files(self, user: str, sizes: list[int], folder: str = "Photos-Holiday") -> None:
        actor = Actor(user)
        coll = self.svc.collections.find(actor, user, folder)
        if coll is None:
            coll = self.svc.collections.create(
                actor, user, folder, CollectionKind.PLAIN, CollectionProps("Holiday pictures")
            )
            self._note(folder, "Holiday pictures")
        for size in sizes:
            self.n += 1
            # Recognisable, incompressible-ish content: a marker and random bytes.
            data = f"PHOTO-MARKER-{self.n}-".encode() + self.rng.randbytes(size)
            self.svc.items.put(
                actor, coll, f"IMG_{self.n:04d}.jpg", [self._body(data)], "image/jpeg"
            )
            self._note(f"PHOTO-MARKER-{self.n}-", f"IMG_{self.n:04d}.jpg")

    def edits(self, user: str) -> None:
        """Updates, deletions, a collection made and removed, properties, a password."""
        actor = Actor(user)
        coll = self.svc.collections.get(actor, user, "contacts")
        items = self.svc.items.list_items(actor, coll)
        for item in items[:3]:
            self.n += 1
            uid = item.uid or f"x{self.n}"
            self.svc.items.put(
                actor, coll, item.name, [self._body(vcard(uid, f"Renamed {self.n}"))], "text/vcard"
            )
        for item in items[3:5]:
            self.svc.items.delete(actor, coll, item.name)
        self.svc.collections.update(
            actor, coll, CollectionProps(displayname="Friends and foes", color="#aa0000")
        )
        self._note("Friends and foes")
        self.svc.items.set_dead_props(
            actor, coll, "", {"{urn:test}flavour": b"<flavour>pistachio</flavour>"}, []
        )
        self._note("pistachio")
        temp = self.svc.collections.create(
            actor, user, "Scratchpad-Temporary", CollectionKind.ADDRESSBOOK, CollectionProps()
        )
        self.svc.items.put(
            actor, temp, "t.vcf", [self._body(vcard("uid-temp", "Temporary Tom"))], "text/vcard"
        )
        self.svc.collections.delete(actor, temp)
        self._note("Scratchpad-Temporary", "Temporary Tom")
        # A new collection at the same path: the old one stays as a tombstone.
        again = self.svc.collections.create(
            actor, user, "Scratchpad-Temporary", CollectionKind.ADDRESSBOOK, CollectionProps()
        )
        self.svc.items.put(
            actor, again, "t.vcf", [self._body(vcard("uid-temp2", "Second Sam"))], "text/vcard"
        )
        self._note("Second Sam")
        box = self.svc.collections.create(
            actor, user, "Archive-Box", CollectionKind.PLAIN, CollectionProps()
        )
        self.svc.collections.delete(actor, box)
        self.svc.history.undelete_collection(actor, box)
        self._note("Archive-Box")
        self.svc.accounts.set_password(user, PASSWORD + "!")

    def secrets(self) -> Secrets:
        return Secrets(sorted(set(self.words)), sorted(set(self.hashes)))


# -- state ------------------------------------------------------------------------------


def state_of(db: Path, upto: int | None = None, full: bool = True) -> dict[str, Any]:
    """Everything a data directory's database says, as plain data, as of entry `upto`.

    With `upto`, only what the log determines is compared (items, log, collections'
    stable fields and positions); `full` adds users, properties and dead properties.
    """
    conn = sqlite3.connect(db)
    try:
        top = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM log").fetchone()[0]
        upto = top if upto is None else upto
        log = conn.execute(
            "SELECT seq, at_us, user, client, op, collection_id, name, content_hash, size, "
            "content_type, uid, component, start_us, end_us FROM log WHERE seq <= ? ORDER BY seq",
            (upto,),
        ).fetchall()
        items = conn.execute(
            "SELECT collection_id, name, seq, op, content_hash, size, content_type, uid FROM log "
            "WHERE seq IN (SELECT MAX(seq) FROM log WHERE seq <= ? AND op IN ('put', 'delete') "
            "GROUP BY collection_id, name) AND op = 'put' ORDER BY collection_id, name",
            (upto,),
        ).fetchall()
        colls = conn.execute(
            "SELECT c.id, c.owner, c.path, c.kind, c.created_seq, "
            "(SELECT CASE WHEN l.op = 'rmcol' THEN l.seq END FROM log l WHERE "
            "l.collection_id = c.id AND l.name = '' AND l.op IN ('mkcol','rmcol') AND l.seq <= ? "
            "ORDER BY l.seq DESC LIMIT 1) FROM collections c WHERE c.created_seq <= ? "
            "ORDER BY c.id",
            (upto, upto),
        ).fetchall()
        bodies = {}
        for (h,) in conn.execute(
            "SELECT DISTINCT content_hash FROM log WHERE seq <= ? AND op = 'put'", (upto,)
        ):
            row = conn.execute("SELECT size, data FROM blobs WHERE hash = ?", (h,)).fetchone()
            if row is None:  # a body the retention policy removed
                bodies[h] = None
                continue
            bodies[h] = (row[0], hashlib.sha256(row[1]).hexdigest() if row[1] else "external")
        state: dict[str, Any] = {
            "log": log,
            "items": items,
            "collections": colls,
            "bodies": bodies,
        }
        if full:
            state["users"] = conn.execute(
                "SELECT name, password_hash, is_admin, created_us FROM users ORDER BY name"
            ).fetchall()
            state["collection_rows"] = conn.execute(
                "SELECT id, owner, path, kind, created_seq, sync_seq, displayname, description, "
                "color, sort_order, components, deleted_seq FROM collections ORDER BY id"
            ).fetchall()
            state["index"] = conn.execute(
                "SELECT collection_id, name, seq, deleted, content_hash, size, content_type, "
                "uid, component, start_us, end_us, modified_us FROM items "
                "ORDER BY collection_id, name"
            ).fetchall()
            state["dead_props"] = conn.execute(
                "SELECT collection_id, name, prop, value FROM dead_props "
                "ORDER BY collection_id, name, prop"
            ).fetchall()
        return state
    finally:
        conn.close()


def meta(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())
    finally:
        conn.close()


def external_files(data_dir: Path) -> dict[str, str]:
    """hash -> sha256 of the file content, for every blob file of a data directory."""
    out = {}
    for path in (data_dir / "blobs").glob("*/*/*"):
        out[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out
