"""Brute-force throttling in `homeport.server.auth`, on a fake clock and fake accounts.

The limits (docs/security.md, "Password guessing"): 5 free failures per (user,
address) pair, 20 per address, 50 per user; then waits that double from 1 s.
"""

from __future__ import annotations

import threading
import time
from base64 import b64encode
from dataclasses import dataclass
from typing import Any, cast

import pytest

from homeport.errors import AuthenticationFailed, TooManyRequests
from homeport.server.auth import (
    ADDRESS_LIMIT,
    PAIR_LIMIT,
    USER_LIMIT,
    Authenticator,
    Limit,
    Throttle,
)
from homeport.server.errors import error_response


@dataclass
class FakeUser:
    name: str
    is_admin: bool = False


class FakeAccounts:
    """Passwords in a dict; counts how many (expensive) checks were made."""

    def __init__(self, passwords: dict[str, str], delay: float = 0.0) -> None:
        self.passwords = passwords
        self.checks = 0
        self.delay = delay
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()

    def authenticate(self, name: str, password: str) -> FakeUser:
        with self._lock:
            self.checks += 1
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            if self.delay:
                time.sleep(self.delay)
            if self.passwords.get(name) != password:
                raise AuthenticationFailed("wrong user name or password")
            return FakeUser(name)
        finally:
            with self._lock:
                self.running -= 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def basic(user: str, password: str) -> str:
    return "Basic " + b64encode(f"{user}:{password}".encode()).decode()


def make(**kw: Any) -> tuple[Authenticator, FakeAccounts, Clock]:
    accounts = FakeAccounts({"alice": "right-a", "bob": "right-b"})
    clock = Clock()
    auth = Authenticator(cast(Any, accounts), clock=clock, **kw)
    return auth, accounts, clock


def attempt(auth: Authenticator, user: str, password: str, address: str | None) -> str:
    try:
        auth.authenticate(basic(user, password), "test", address)
    except TooManyRequests as exc:
        return f"429:{exc.retry_after}"
    except AuthenticationFailed:
        return "401"
    return "ok"


def test_limit_waits_double_up_to_the_cap() -> None:
    limit = Limit("x", 3, 1.0, 10.0, 60.0)
    assert [limit.wait_after(n) for n in range(1, 9)] == [0, 0, 0, 1, 2, 4, 8, 10]


def test_pair_is_refused_after_free_failures_without_checking_the_password() -> None:
    auth, accounts, clock = make()
    results = [attempt(auth, "bob", f"guess{i}", "198.51.100.7") for i in range(PAIR_LIMIT.free)]
    assert results == ["401"] * PAIR_LIMIT.free
    assert attempt(auth, "bob", "guess-x", "198.51.100.7") == "401"  # the one that starts a wait
    checks = accounts.checks
    # While waiting, even the right password is refused, and nothing is checked.
    assert attempt(auth, "bob", "right-b", "198.51.100.7") == "429:1"
    assert attempt(auth, "bob", "nope", "198.51.100.7") == "429:1"
    assert accounts.checks == checks
    clock.now += 1.01
    assert attempt(auth, "bob", "right-b", "198.51.100.7") == "ok"
    # A success clears the pair: the next failures are free again.
    assert attempt(auth, "bob", "nope", "198.51.100.7") == "401"
    assert attempt(auth, "bob", "nope", "198.51.100.7") == "401"


def test_waits_grow_and_refusals_do_not_extend_them() -> None:
    auth, _, clock = make()
    for _ in range(PAIR_LIMIT.free + 1):
        attempt(auth, "bob", "x", "203.0.113.5")
    for expected in (2, 4, 8):
        for _ in range(3):
            assert attempt(auth, "bob", "x", "203.0.113.5").startswith("429")
        clock.now += expected / 2 + 0.01  # refused attempts do not reset the wait
        clock.now += expected / 2
        assert attempt(auth, "bob", "x", "203.0.113.5") == "401"
        assert attempt(auth, "bob", "x", "203.0.113.5") == f"429:{expected}"


def test_the_real_user_is_not_locked_out_by_guessing_at_another_name() -> None:
    auth, _, _ = make()
    for i in range(40):
        attempt(auth, "bob", f"g{i}", "192.0.2.66")
    assert attempt(auth, "bob", "g", "192.0.2.66").startswith("429")
    assert attempt(auth, "alice", "right-a", "192.0.2.10") == "ok"
    assert attempt(auth, "bob", "right-b", "192.0.2.10") == "ok"  # bob, from his own address


def test_guessing_from_one_address_at_many_names_is_refused() -> None:
    auth, _, _ = make()
    results = [attempt(auth, f"user{i}", "x", "192.0.2.99") for i in range(ADDRESS_LIMIT.free)]
    assert results == ["401"] * ADDRESS_LIMIT.free
    assert attempt(auth, "user-next", "x", "192.0.2.99") == "401"
    assert attempt(auth, "alice", "right-a", "192.0.2.99").startswith("429")
    assert attempt(auth, "alice", "right-a", "192.0.2.1") == "ok"


def test_signing_in_to_ones_own_account_does_not_reset_the_address() -> None:
    auth, _, _ = make()
    for i in range(ADDRESS_LIMIT.free + 1):
        attempt(auth, f"victim{i % 3}", "x", "192.0.2.77")
        if i % 5 == 0:
            assert attempt(auth, "bob", "right-b", "192.0.2.77") == "ok"
    assert attempt(auth, "victim0", "x", "192.0.2.77").startswith("429")


def test_distributed_guessing_at_one_user_spares_her_signed_in_devices() -> None:
    auth, accounts, clock = make()
    assert attempt(auth, "alice", "right-a", "192.0.2.10") == "ok"  # her phone, cached
    for i in range(USER_LIMIT.free + 1):
        attempt(auth, "alice", "wrong", f"10.0.{i // 250}.{i % 250}")
    assert attempt(auth, "alice", "wrong", "10.9.9.9").startswith("429")
    checks = accounts.checks
    assert attempt(auth, "alice", "right-a", "192.0.2.10") == "ok"  # no argon2: cached
    assert accounts.checks == checks
    # A device that must check the password afresh waits like everyone else.
    auth.forget("alice")
    assert attempt(auth, "alice", "right-a", "192.0.2.11").startswith("429")
    clock.now += USER_LIMIT.max_wait + 1
    assert attempt(auth, "alice", "right-a", "192.0.2.11") == "ok"


def test_without_an_address_the_pair_limit_applies_per_user() -> None:
    auth, _, _ = make()
    for _ in range(PAIR_LIMIT.free + 1):
        assert attempt(auth, "bob", "x", None) == "401"
    assert attempt(auth, "bob", "right-b", None).startswith("429")
    assert attempt(auth, "alice", "right-a", None) == "ok"


def test_counts_are_forgotten_after_a_quiet_period() -> None:
    auth, _, clock = make()
    for _ in range(PAIR_LIMIT.free):
        attempt(auth, "bob", "x", "192.0.2.3")
    clock.now += PAIR_LIMIT.forget_after + 1
    for _ in range(PAIR_LIMIT.free):
        assert attempt(auth, "bob", "x", "192.0.2.3") == "401"


def test_overlong_user_names_are_refused_cheaply_and_counted() -> None:
    auth, accounts, _ = make()
    for _ in range(PAIR_LIMIT.free + 1):
        assert attempt(auth, "a" * 5000, "x", "192.0.2.4") == "401"
    assert accounts.checks == 0
    assert attempt(auth, "a" * 5000, "x", "192.0.2.4").startswith("429")


def test_throttle_memory_is_bounded() -> None:
    throttle = Throttle(PAIR_LIMIT, max_keys=100)
    for i in range(10_000):
        throttle.fail(("u", str(i)), 0.0)
    assert len(throttle) == 100


def test_password_checks_run_a_few_at_a_time() -> None:
    accounts = FakeAccounts({"alice": "right-a"}, delay=0.05)
    auth = Authenticator(cast(Any, accounts), argon2_slots=2)
    threads = [
        threading.Thread(target=attempt, args=(auth, "alice", f"w{i}", f"192.0.2.{i}"))
        for i in range(12)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert accounts.checks == 12
    assert accounts.most_running <= 2


def test_429_carries_retry_after() -> None:
    response = error_response(TooManyRequests("slow down", 7))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert b"too-many-requests" in bytes(response.body)


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer x", "Basic !!!", "Basic " + "YQ==", "Basic \xff\xfe", "Basic w6k="],
)
def test_missing_or_malformed_credentials_are_not_counted(header: str | None) -> None:
    auth, accounts, _ = make()
    for _ in range(PAIR_LIMIT.free + 3):
        with pytest.raises(AuthenticationFailed):
            auth.authenticate(header, "test", "192.0.2.8")
    assert accounts.checks == 0
    assert attempt(auth, "alice", "right-a", "192.0.2.8") == "ok"


def test_guesses_sent_all_at_once_do_not_get_past_the_limit() -> None:
    """Concurrent guesses queue for a password-check slot; the throttle is consulted
    again once a slot is free, so only about one slot's worth slip past the limit."""
    accounts = FakeAccounts({"bob": "right-b"}, delay=0.02)
    auth = Authenticator(cast(Any, accounts), argon2_slots=1)
    results: list[str] = []
    lock = threading.Lock()

    def guess(i: int) -> None:
        outcome = attempt(auth, "bob", f"g{i}", "192.0.2.200")
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert accounts.checks <= PAIR_LIMIT.free + 2, accounts.checks
    assert results.count("401") == accounts.checks
