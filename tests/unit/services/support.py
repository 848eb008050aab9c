"""Helpers shared by the service tests: cheap services on a real store, a movable clock."""

from __future__ import annotations

import itertools

import pytest
from argon2 import PasswordHasher

from homeport.services import (
    Accounts,
    Collections,
    History,
    Items,
    Limits,
    Services,
    accounts,
    retention,
)
from homeport.store import core
from homeport.store.core import Store

MINUTE = 60_000_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def vcf(uid: str, fn: str = "x") -> bytes:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{fn}\r\nEND:VCARD\r\n".encode()


def ics(uid: str, summary: str = "x") -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261201T100000Z\r\n"
        f"DTEND:20261201T110000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def build(store: Store, users: tuple[str, ...] = ("alice", "bob")) -> Services:
    """Services with a cheap password hasher (these tests are about data, not logins)."""
    accounts = Accounts(store, PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    limits = Limits(max_object_size=1024 * 1024)
    svc = Services(store, accounts, Collections(store), Items(store, limits), History(store))
    for user in users:
        accounts.add(user, "pw")
    return svc


class Clock:
    """The store's clock, moved by hand: log timestamps come from it."""

    def __init__(self, start: int = 1_800_000_000_000_000) -> None:
        self.now = start
        self._tick = itertools.count()

    def __call__(self) -> int:
        return self.now + next(self._tick)

    def advance(self, us: float) -> None:
        self.now += int(us)

    def set(self, us: int) -> None:
        self.now = us
        self._tick = itertools.count()


def install_clock(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Clock:
    monkeypatch.setattr(core, "now_us", clock)
    monkeypatch.setattr(retention, "now_us", clock)
    monkeypatch.setattr(accounts, "now_us", clock)
    return clock
