"""The verified-credential cache and the single-flight password check in
`homeport.server.auth`: one argon2 run for a burst of sign-ins with one credential,
a sliding expiry with an absolute cap, and wrong passwords never cached."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from homeport.errors import AuthenticationFailed
from homeport.server.auth import CACHE_MAX_AGE, CACHE_SECONDS, PAIR_LIMIT, Authenticator
from tests.conftest import PASSWORD
from tests.faults.harness import fresh_data, launcher
from tests.security.test_throttle import FakeAccounts, attempt, basic, make


def _burst(auth: Authenticator, user: str, password: str, count: int) -> list[str]:
    results: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(count)

    def one(i: int) -> None:
        start.wait()
        outcome = attempt(auth, user, password, f"192.0.2.{i}")
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_first_sign_ins_share_one_password_check() -> None:
    accounts = FakeAccounts({"alice": "right-a"}, delay=0.2)
    auth = Authenticator(cast(Any, accounts))
    assert _burst(auth, "alice", "right-a", 8) == ["ok"] * 8
    assert accounts.checks == 1
    # ... and the next request is answered from the cache, without a check.
    assert auth.cached(basic("alice", "right-a"), "test", "192.0.2.99") is not None
    assert accounts.checks == 1


def test_concurrent_wrong_passwords_share_one_check_and_each_counts() -> None:
    accounts = FakeAccounts({"alice": "right-a"}, delay=0.2)
    auth = Authenticator(cast(Any, accounts))
    results = _burst(auth, "alice", "wrong", 8)
    assert accounts.checks == 1
    assert results == ["401"] * 8
    # Every attempt counted against the user: the pair limit is reached from one address.
    assert attempt(auth, "alice", "wrong", "192.0.2.50") == "401"
    assert accounts.checks == 2


def test_wrong_passwords_are_never_cached_and_still_throttled() -> None:
    auth, accounts, _ = make()
    assert attempt(auth, "alice", "right-a", "192.0.2.1") == "ok"
    for _ in range(PAIR_LIMIT.free):
        assert attempt(auth, "alice", "wrong", "192.0.2.1") == "401"
    assert auth.cached(basic("alice", "wrong"), "test", "192.0.2.1") is None
    assert attempt(auth, "alice", "wrong", "192.0.2.1") == "401"
    assert attempt(auth, "alice", "wrong", "192.0.2.1").startswith("429:")
    checks = accounts.checks
    assert attempt(auth, "alice", "wrong", "192.0.2.1").startswith("429:")
    assert accounts.checks == checks  # a refused attempt costs no password check
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(basic("alice", "wrong"), "test", "192.0.2.2")


def test_the_cache_slides_with_use_up_to_an_absolute_cap() -> None:
    auth, accounts, clock = make()
    assert attempt(auth, "alice", "right-a", None) == "ok"
    assert accounts.checks == 1
    # Used every few minutes: it stays valid past CACHE_SECONDS after the check ...
    step = CACHE_SECONDS * 0.8
    while clock.now + step < 1000.0 + CACHE_MAX_AGE:
        clock.now += step
        assert auth.cached(basic("alice", "right-a"), "test", None) is not None
    assert accounts.checks == 1
    # ... but not past CACHE_MAX_AGE: then the password is checked again.
    clock.now += step
    assert auth.cached(basic("alice", "right-a"), "test", None) is None
    assert attempt(auth, "alice", "right-a", None) == "ok"
    assert accounts.checks == 2


def test_an_unused_entry_expires() -> None:
    auth, accounts, clock = make()
    assert attempt(auth, "alice", "right-a", None) == "ok"
    clock.now += CACHE_SECONDS + 1
    assert auth.cached(basic("alice", "right-a"), "test", None) is None
    assert attempt(auth, "alice", "right-a", None) == "ok"
    assert accounts.checks == 2


def test_a_changed_password_is_not_answered_from_the_cache() -> None:
    auth, accounts, _ = make()
    assert attempt(auth, "alice", "right-a", None) == "ok"
    assert auth.cached(basic("alice", "other"), "test", None) is None
    accounts.passwords["alice"] = "new"
    auth.forget("alice")
    assert auth.cached(basic("alice", "right-a"), "test", None) is None
    assert attempt(auth, "alice", "right-a", None) == "401"


def test_eight_concurrent_first_sign_ins_keep_memory_bounded(tmp_path: Path) -> None:
    """Eight clients signing in together (as the benchmark's 8 clients, or a family's
    phones after a restart) cost one argon2 run (9 MiB), not eight (72 MiB); eight
    wrong passwords for eight names run at most two at a time, and what they held is
    given back. VmHWM is the kernel's own high-water mark, so no peak is missed between
    samples."""
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        server = starter.start(data)
        with httpx.Client(base_url=server.url, timeout=60) as c:
            assert c.get("/").status_code == 200  # warm the app without any password check
        base = server.peak_rss_kib()
        statuses: list[int] = []
        lock = threading.Lock()

        def sign_in(user: str, password: str) -> None:
            with httpx.Client(base_url=server.url, auth=(user, password), timeout=60) as c:
                r = c.request("PROPFIND", f"/dav/{user}/", headers={"Depth": "0"})
            with lock:
                statuses.append(r.status_code)

        def burst(pairs: list[tuple[str, str]]) -> None:
            threads = [threading.Thread(target=sign_in, args=p) for p in pairs]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        started = time.monotonic()
        burst([("alice", PASSWORD)] * 8)
        right = server.peak_rss_kib()
        burst([(f"user{i}", f"wrong-{i}") for i in range(8)])
        wrong = server.peak_rss_kib()
        print(
            f"\n8 first sign-ins: VmHWM +{(right - base) / 1024:.0f} MiB; then 8 wrong "
            f"passwords: +{(wrong - base) / 1024:.0f} MiB ({time.monotonic() - started:.1f} s)"
        )
        assert statuses[:8] == [207] * 8
        assert set(statuses[8:]) <= {401, 429}
        # One shared check: one run's 9 MiB (eight at once would be 72 MiB).
        assert (right - base) / 1024 < 9 + 11, right - base
        # Eight wrong passwords for unknown names: the dummy hash made once, then two
        # slots; each run's memory returns to the system (cli/serve.py `tune_malloc`),
        # so eight worker threads do not each keep 9 MiB.
        assert (wrong - base) / 1024 < 3 * 9 + 11, wrong - base
        after = server.rss_kib()
        assert (after - base) / 1024 < 30, after - base


def test_the_history_api_429_carries_retry_after(tmp_path: Path) -> None:
    data = fresh_data(tmp_path, users=("alice",))
    with launcher() as starter:
        server = starter.start(data)
        url = server.url + "/api/v1/users/alice/trash"
        statuses = [
            httpx.get(url, auth=("alice", f"wrong-{i}"), timeout=30).status_code
            for i in range(PAIR_LIMIT.free + 1)
        ]
        assert statuses == [401] * (PAIR_LIMIT.free + 1)
        refused = httpx.get(url, auth=("alice", "wrong-again"), timeout=30)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"] == "too-many-requests"
        unauthenticated = httpx.get(url, timeout=30)
        assert unauthenticated.headers["www-authenticate"].startswith("Basic")
