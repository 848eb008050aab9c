"""HTTP Basic authentication: a short-lived cache of verified credentials, and a
throttle that makes password guessing slow.

argon2 is slow on purpose (tens of milliseconds) and memory-hard (9 MiB per check by
default, see [auth]); a phone syncing sends hundreds of requests, so a verified (user,
password) pair is remembered as a keyed digest, never as the password itself: for five
minutes after its last use, and half an hour at most after the check. A failed check is
never remembered. Requests that arrive together with the same credential share one check.

Password guessing (docs/security.md, "Password guessing") is slowed down per key:
every failed check counts against the (user, address) pair, the client address and
the user name. A key may fail a few times for free; after that each further failure
doubles a wait (1 s, 2 s, 4 s, ... up to a cap) during which attempts on that key are
answered 429 with a Retry-After *before* the password is looked at: a refused attempt
costs no argon2 and says nothing about whether the password was right. A success
clears the pair's and the user's counts, never the address's (signing in to one's own
account must not buy more guesses at someone else's). Counts are forgotten after a
quiet period. The user-wide limit does not stop a credential verified in the last
few minutes, so a person's own devices keep syncing while strangers guess at the name.

At most `ARGON2_SLOTS` checks run at once: each one holds its argon2 memory, and a burst
of wrong passwords must not be able to take the server's memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from homeport.errors import AuthenticationFailed, TooManyRequests
from homeport.services.accounts import Accounts, Actor

log = logging.getLogger("homeport.auth")

CACHE_SECONDS = 300.0
"""A verified credential is remembered while it is used at least this often (sliding)."""
CACHE_MAX_AGE = 1800.0
"""... and never longer than this after the password check itself."""
CACHE_MAX = 10_000
MAX_USER_NAME = 64
"""No account name is longer (see `homeport.services.accounts.USERNAME_RE`)."""

ARGON2_SLOTS = 2
"""Password checks running at the same time (each holds its argon2 memory for tens of ms)."""
ARGON2_WAIT = 10.0
"""Seconds a sign-in may wait for a free slot before it is answered 429."""


@dataclass(frozen=True)
class Limit:
    """How many failures a key may have before it must wait, and how long it waits."""

    name: str
    free: int
    first_wait: float
    max_wait: float
    forget_after: float

    def wait_after(self, failures: int) -> float:
        """Seconds a key must wait after its `failures`-th failure (0 while free)."""
        over = failures - self.free
        if over <= 0:
            return 0.0
        return min(self.max_wait, self.first_wait * 2.0 ** min(over - 1, 40))


PAIR_LIMIT = Limit("this user from this address", 5, 1.0, 300.0, 900.0)
ADDRESS_LIMIT = Limit("this address", 20, 1.0, 900.0, 3600.0)
USER_LIMIT = Limit("this user", 50, 1.0, 300.0, 900.0)


@dataclass
class _Verified:
    digest: bytes
    verified: float
    expires: float
    is_admin: bool


class _Flight:
    """One password check under way; requests with the same credential wait for it."""

    __slots__ = ("done", "error", "is_admin")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.is_admin: bool | None = None
        self.error: BaseException | None = None


@dataclass
class _Record:
    failures: int
    last: float
    until: float


class Throttle:
    """Failure counts for one kind of key, bounded in size (least recently failed go first).

    Not thread-safe on its own: `Authenticator` holds one lock around all of them.
    """

    def __init__(self, limit: Limit, max_keys: int = 50_000) -> None:
        self.limit = limit
        self.max_keys = max_keys
        self._records: OrderedDict[Hashable, _Record] = OrderedDict()

    def _live(self, key: Hashable, now: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and now - record.last > self.limit.forget_after:
            del self._records[key]
            return None
        return record

    def wait(self, key: Hashable, now: float) -> float:
        """Seconds `key` must still wait before its next attempt; 0 when it may try."""
        record = self._live(key, now)
        if record is None:
            return 0.0
        return max(0.0, record.until - now)

    def fail(self, key: Hashable, now: float) -> float:
        """Count a failure; the wait it starts (0 while the key still has free failures)."""
        record = self._live(key, now)
        if record is None:
            record = _Record(0, now, now)
            self._records[key] = record
            while len(self._records) > self.max_keys:
                self._records.popitem(last=False)
        record.failures += 1
        record.last = now
        wait = self.limit.wait_after(record.failures)
        record.until = now + wait
        self._records.move_to_end(key)
        return wait

    def clear(self, key: Hashable) -> None:
        self._records.pop(key, None)

    def __len__(self) -> int:
        return len(self._records)


def parse_basic(header: str | None) -> tuple[str, str]:
    if not header:
        raise AuthenticationFailed("authentication required")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise AuthenticationFailed("only HTTP Basic authentication is supported")
    try:
        # A str with non-ASCII characters makes b64decode raise a plain ValueError.
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise AuthenticationFailed("malformed Basic credentials") from exc
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        raise AuthenticationFailed("malformed Basic credentials")
    return user, password


class Authenticator:
    def __init__(
        self,
        accounts: Accounts,
        *,
        clock: Callable[[], float] = time.monotonic,
        pair_limit: Limit = PAIR_LIMIT,
        address_limit: Limit = ADDRESS_LIMIT,
        user_limit: Limit = USER_LIMIT,
        argon2_slots: int = ARGON2_SLOTS,
    ) -> None:
        self.accounts = accounts
        self._clock = clock
        self._salt = secrets.token_bytes(16)
        self._cache: dict[str, _Verified] = {}
        self._flights: dict[tuple[str, bytes], _Flight] = {}
        self._lock = threading.Lock()
        self._pairs = Throttle(pair_limit)
        self._addresses = Throttle(address_limit)
        self._users = Throttle(user_limit)
        self._slots = threading.BoundedSemaphore(argon2_slots)

    def _digest(self, user: str, password: str) -> bytes:
        return hashlib.blake2b(
            f"{user}\0{password}".encode(), key=self._salt, digest_size=32
        ).digest()

    def cached(self, header: str | None, client: str, address: str | None = None) -> Actor | None:
        """The acting user when this credential was verified recently, else None.

        Cheap and non-blocking (no argon2): the ASGI layer calls it in the event loop
        and goes to `authenticate` in a worker thread only when it answers None. Raises
        TooManyRequests while this pair or address must wait, like `authenticate`.
        A hit slides the entry's expiry (see `_remember`).
        """
        if not header:
            return None
        try:
            user, password = parse_basic(header)
        except AuthenticationFailed:
            return None
        if len(user) > MAX_USER_NAME:
            return None
        return self._from_cache(user, self._digest(user, password), client, address)

    def _from_cache(
        self, user: str, digest: bytes, client: str, address: str | None
    ) -> Actor | None:
        now = self._clock()
        with self._lock:
            entry = self._cache.get(user)
            if (
                entry is None
                or entry.expires <= now
                or not hmac.compare_digest(entry.digest, digest)
            ):
                return None
            self._refuse_if_waiting(user, address, (user, address), now, check_user=False)
            entry.expires = min(now + CACHE_SECONDS, entry.verified + CACHE_MAX_AGE)
            return Actor(user, client, entry.is_admin)

    def authenticate(self, header: str | None, client: str, address: str | None = None) -> Actor:
        """The acting user for an Authorization header.

        Raises AuthenticationFailed (401) for missing or wrong credentials, and
        TooManyRequests (429) while this user, this address or this pair must wait
        after too many failures. `address` is the client's IP address; without it only
        the per-user limits apply. Blocking (argon2): call it from a worker thread.

        Concurrent requests with the same credential share one password check (the
        first runs it, the others wait for its outcome), and at most `argon2_slots`
        checks run at once: memory stays bounded however many clients sign in together.
        """
        user, password = parse_basic(header)
        digest = self._digest(user[:MAX_USER_NAME], password)
        pair = (user[:MAX_USER_NAME], address)
        actor = (
            self._from_cache(user, digest, client, address) if len(user) <= MAX_USER_NAME else None
        )
        if actor is not None:
            return actor
        with self._lock:
            self._refuse_if_waiting(user, address, pair, self._clock(), check_user=True)
        if len(user) > MAX_USER_NAME:
            self._failed(user[:MAX_USER_NAME], address, pair)
            raise AuthenticationFailed("wrong user name or password")
        key = (user, digest)
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            return self._follow(flight, user, client, address, pair)
        try:
            is_admin = self._verify(user, password, address, pair)
        except BaseException as exc:
            flight.error = exc
            raise
        else:
            flight.is_admin = is_admin
            self._remember(user, digest, is_admin)
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()
        return Actor(user, client, is_admin)

    def _follow(
        self,
        flight: _Flight,
        user: str,
        client: str,
        address: str | None,
        pair: tuple[str, str | None],
    ) -> Actor:
        """Wait for the check another request with the same credential is running."""
        if not flight.done.wait(ARGON2_WAIT + 30.0):
            raise TooManyRequests("the server is busy checking passwords; try again", 2)
        if flight.is_admin is not None:
            return Actor(user, client, flight.is_admin)
        if isinstance(flight.error, AuthenticationFailed):
            # The same wrong password: one more failed attempt, without another argon2.
            self._failed(user, address, pair)
            raise AuthenticationFailed(flight.error.message)
        if isinstance(flight.error, TooManyRequests):
            raise TooManyRequests(flight.error.message, flight.error.retry_after)
        raise TooManyRequests("the password check failed; try again", 2)

    def _verify(
        self, user: str, password: str, address: str | None, pair: tuple[str, str | None]
    ) -> bool:
        """Run the password check (argon2) in one of the slots; whether the user is an admin."""
        if not self._slots.acquire(timeout=ARGON2_WAIT):
            raise TooManyRequests("the server is busy checking passwords; try again", 2)
        try:
            # Look again: guesses sent all at once have queued for a slot meanwhile, and
            # the failures of those ahead of this one may have started a wait.
            with self._lock:
                self._refuse_if_waiting(user, address, pair, self._clock(), check_user=True)
            account = self.accounts.authenticate(user, password)
        except AuthenticationFailed:
            self._failed(user, address, pair)
            raise
        finally:
            self._slots.release()
        with self._lock:
            self._pairs.clear(pair)
            self._users.clear(user)
        return account.is_admin

    def _remember(self, user: str, digest: bytes, is_admin: bool) -> None:
        """Cache a verified credential: it stays valid while used at least every
        CACHE_SECONDS, and for CACHE_MAX_AGE at most after its check (so a password
        changed by another process stops working within that time)."""
        now = self._clock()
        with self._lock:
            if len(self._cache) >= CACHE_MAX and user not in self._cache:
                self._cache.clear()
            self._cache[user] = _Verified(digest, now, now + CACHE_SECONDS, is_admin)

    def _refuse_if_waiting(
        self,
        user: str,
        address: str | None,
        pair: tuple[str, str | None],
        now: float,
        *,
        check_user: bool,
    ) -> None:
        waits = [(self._pairs.wait(pair, now), self._pairs.limit)]
        if address is not None:
            waits.append((self._addresses.wait(address, now), self._addresses.limit))
        if check_user:
            waits.append((self._users.wait(user[:MAX_USER_NAME], now), self._users.limit))
        wait, limit = max(waits, key=lambda w: w[0])
        if wait > 0:
            log.debug("sign-in refused: user=%r address=%r wait=%.0fs", user[:64], address, wait)
            raise TooManyRequests(
                f"too many failed sign-ins for {limit.name}; try again later", math.ceil(wait)
            )

    def _failed(self, user: str, address: str | None, pair: tuple[str, str | None]) -> None:
        now = self._clock()
        with self._lock:
            started = [(self._pairs.fail(pair, now), self._pairs.limit)]
            if address is not None:
                started.append((self._addresses.fail(address, now), self._addresses.limit))
            started.append((self._users.fail(user, now), self._users.limit))
        for wait, limit in started:
            if wait > 0:
                log.warning(
                    "sign-in failures: %s must wait %.0fs (user=%r address=%r)",
                    limit.name,
                    wait,
                    user,
                    address,
                )

    def forget(self, user: str) -> None:
        with self._lock:
            self._cache.pop(user, None)
