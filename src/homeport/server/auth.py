"""HTTP Basic authentication, with a short-lived cache of verified credentials.

argon2 is slow on purpose (tens of milliseconds); a phone syncing sends hundreds of
requests, so a verified (user, password) pair is remembered for a few minutes as a
salted digest, never as the password itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time

from homeport.errors import AuthenticationFailed
from homeport.services.accounts import Accounts, Actor

CACHE_SECONDS = 300.0
CACHE_MAX = 10_000


def parse_basic(header: str | None) -> tuple[str, str]:
    if not header:
        raise AuthenticationFailed("authentication required")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise AuthenticationFailed("only HTTP Basic authentication is supported")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthenticationFailed("malformed Basic credentials") from exc
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        raise AuthenticationFailed("malformed Basic credentials")
    return user, password


class Authenticator:
    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self._salt = secrets.token_bytes(16)
        self._cache: dict[str, tuple[bytes, float, bool]] = {}
        self._lock = threading.Lock()

    def _digest(self, user: str, password: str) -> bytes:
        return hashlib.blake2b(
            f"{user}\0{password}".encode(), key=self._salt, digest_size=32
        ).digest()

    def authenticate(self, header: str | None, client: str) -> Actor:
        """The acting user for an Authorization header; AuthenticationFailed otherwise.

        Blocking (argon2): call it from a worker thread.
        """
        user, password = parse_basic(header)
        digest = self._digest(user, password)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(user)
        if cached is not None and cached[1] > now and hmac.compare_digest(cached[0], digest):
            return Actor(user, client, cached[2])
        account = self.accounts.authenticate(user, password)
        with self._lock:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[user] = (digest, now + CACHE_SECONDS, account.is_admin)
        return Actor(account.name, client, account.is_admin)

    def forget(self, user: str) -> None:
        with self._lock:
            self._cache.pop(user, None)
