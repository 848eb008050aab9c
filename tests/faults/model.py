"""What clients may expect of the server after crashes: a model of acknowledged writes.

Each key (an item URL) has a set of states it may be in: `None` (absent) or the
SHA-256 of a body. An acknowledged (2xx) write narrows the set to one state; a write
whose answer was lost (the server died mid-request) adds its outcome to the set, since
it may or may not have committed. Every answer is checked against the set before it
narrows it (a 404 for a key that must exist is a lost write), and after a restart a
GET of every key must land inside its set; the set then collapses to what was read.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

State = str | None
"""A key's content hash, or None for absent."""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def etag_for(content_hash: str) -> str:
    """The server's ETags are derived from the content hash (homeport.store.model.Item)."""
    return f'"{content_hash[:40]}"'


@dataclass
class Figures:
    acknowledged_writes: int = 0  # PUT/DELETE/MOVE answered 2xx
    acknowledged_deletes: int = 0  # DELETE and the source side of MOVE, answered 2xx
    unknown_outcomes: int = 0  # requests whose answer was lost to a kill
    states_checked: int = 0  # keys whose state, fixed by acknowledged writes, was re-read
    keys_read: int = 0


@dataclass
class KeyModel:
    """The possible states of every key, plus what was sent and acknowledged."""

    possible: dict[str, set[State]] = field(default_factory=dict)
    sent: set[str] = field(default_factory=set)  # hashes of every body a client sent
    etags: dict[str, str] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    figures: Figures = field(default_factory=Figures)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def states(self, key: str) -> set[State]:
        return self.possible.setdefault(key, {None})

    def present(self, key: str) -> set[State]:
        return {s for s in self.states(key) if s is not None}

    def definite(self, key: str) -> State | bool:
        """The one state `key` must be in, or False when several are possible."""
        states = self.states(key)
        return next(iter(states)) if len(states) == 1 else False

    def _violate(self, text: str) -> None:
        with self.lock:
            self.violations.append(text)

    def _expect(self, key: str, ok: bool, what: str) -> None:
        if not ok:
            self._violate(f"{key}: {what}; possible states were {self._show(key)}")

    def _show(self, key: str) -> list[str]:
        return sorted("absent" if s is None else s[:10] for s in self.states(key))

    def remember_body(self, body: bytes) -> str:
        h = sha(body)
        with self.lock:
            self.sent.add(h)
        return h

    # -- answers ---------------------------------------------------------------------

    def put_acked(self, key: str, body_hash: str, status: int, etag: str | None) -> None:
        if status == 201:
            self._expect(key, None in self.states(key), "PUT answered 201 (created)")
        else:
            self._expect(key, bool(self.present(key)), "PUT answered 204 (replaced)")
        self._expect(key, etag == etag_for(body_hash), f"PUT answered ETag {etag}")
        with self.lock:
            self.etags[body_hash] = etag or ""
            self.figures.acknowledged_writes += 1
        self.possible[key] = {body_hash}

    def put_unknown(self, key: str, body_hash: str) -> None:
        self.states(key).add(body_hash)
        with self.lock:
            self.figures.unknown_outcomes += 1

    def put_refused_if_match(self, key: str, expected: str) -> None:
        """A 412 for If-Match on the one state our own acknowledged writes left there."""
        self._expect(key, self.states(key) != {expected}, "If-Match on its own ETag gave 412")

    def delete_acked(self, key: str) -> None:
        self._expect(key, bool(self.present(key)), "DELETE answered 204")
        with self.lock:
            self.figures.acknowledged_writes += 1
            self.figures.acknowledged_deletes += 1
        self.possible[key] = {None}

    def absent_seen(self, key: str, how: str) -> None:
        self._expect(key, None in self.states(key), f"{how} answered 404")
        self.possible[key] = {None}

    def delete_unknown(self, key: str) -> None:
        self.states(key).add(None)
        with self.lock:
            self.figures.unknown_outcomes += 1

    def move_acked(self, src: str, dst: str, status: int) -> None:
        moved = self.present(src)
        self._expect(src, bool(moved), f"MOVE to {dst} answered {status}")
        if status == 201:
            self._expect(dst, None in self.states(dst), f"MOVE from {src} answered 201")
        else:
            self._expect(dst, bool(self.present(dst)), f"MOVE from {src} answered 204")
        with self.lock:
            self.figures.acknowledged_writes += 1
            self.figures.acknowledged_deletes += 1
        self.possible[dst] = set(moved) or {None}
        self.possible[src] = {None}

    def move_unknown(self, src: str, dst: str) -> None:
        self.states(dst).update(self.present(src))
        self.states(src).add(None)
        with self.lock:
            self.figures.unknown_outcomes += 1

    # -- reading back after a restart ----------------------------------------------------

    def observe(self, key: str, status: int, body: bytes, etag: str | None) -> None:
        """A GET after a restart: it must show a possible state; the set collapses to it."""
        states = self.states(key)
        if len(states) == 1:
            self.figures.states_checked += 1
        self.figures.keys_read += 1
        if status == 404:
            self._expect(key, None in states, "GET after restart answered 404")
            self.possible[key] = {None}
            return
        if status != 200:
            self._violate(f"{key}: GET after restart answered {status}")
            return
        got = sha(body)
        if got not in states:
            known = "a body no client ever sent" if got not in self.sent else "a stale body"
            self._violate(f"{key}: GET after restart returned {known} ({got[:10]})")
        if etag != etag_for(got):
            self._violate(f"{key}: GET returned ETag {etag} for body {got[:10]}")
        recorded = self.etags.get(got)
        if recorded and recorded != etag:
            self._violate(f"{key}: ETag {etag} differs from the acknowledged {recorded}")
        self.possible[key] = {got}
