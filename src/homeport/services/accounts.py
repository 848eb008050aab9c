"""Accounts: users, passwords (argon2) and the collections a new user starts with."""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from homeport.errors import AuthenticationFailed, ConfigError, InvalidRequest, NotFound
from homeport.store.core import Store
from homeport.store.interfaces import MetadataWriter
from homeport.store.model import (
    CollectionKind,
    CollectionProps,
    NewRevision,
    Op,
    User,
    now_us,
)

if TYPE_CHECKING:
    from homeport.services.guards import SettingSource

#: One of OWASP's equally strong argon2id settings (9 MiB, 4 passes, 1 lane; the list
#: trades memory for passes at the same cost to an attacker). Of those, the one that needs
#: least memory above the 8 MiB floor: a home server may be a small board, and each check
#: holds its block for tens of milliseconds. argon2-cffi's own default (64 MiB, 3 passes,
#: 4 lanes) would double a small server's memory with two checks at once. Hashes made
#: with the earlier default (19 MiB, 2 passes) are upgraded at the next successful login.
#: Configurable in [auth].
ARGON2_MEMORY_KIB = 9 * 1024
ARGON2_TIME_COST = 4
ARGON2_PARALLELISM = 1


def hasher_from_config(settings: SettingSource | None = None) -> PasswordHasher:
    """The password hasher the `[auth]` settings ask for (ConfigError if invalid)."""
    if settings is None:
        memory, passes, lanes = ARGON2_MEMORY_KIB, ARGON2_TIME_COST, ARGON2_PARALLELISM
    else:
        memory = int(settings.get("auth", "argon2_memory_kib"))
        passes = int(settings.get("auth", "argon2_time_cost"))
        lanes = int(settings.get("auth", "argon2_parallelism"))
    if not 1 <= lanes <= 16:
        raise ConfigError("auth.argon2_parallelism must be between 1 and 16")
    if memory < 8 * 1024 or memory < 8 * lanes:
        raise ConfigError("auth.argon2_memory_kib must be at least 8192 (8 MiB)")
    if passes < 1:
        raise ConfigError("auth.argon2_time_cost must be at least 1")
    return PasswordHasher(time_cost=passes, memory_cost=memory, parallelism=lanes)


USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")

DEFAULT_COLLECTIONS: tuple[tuple[str, CollectionKind, CollectionProps], ...] = (
    ("contacts", CollectionKind.ADDRESSBOOK, CollectionProps(displayname="Contacts")),
    (
        "calendar",
        CollectionKind.CALENDAR,
        CollectionProps(displayname="Calendar", components=("VEVENT",), color="#2F6FDEFF"),
    ),
    (
        "tasks",
        CollectionKind.CALENDAR,
        CollectionProps(displayname="Tasks", components=("VTODO",), color="#2FA84FFF"),
    ),
)


@dataclass(frozen=True)
class Actor:
    """Who is acting, and through which client: recorded on every revision."""

    user: str
    client: str = ""
    is_admin: bool = False


def validate_username(name: str) -> str:
    if not USERNAME_RE.match(name):
        raise InvalidRequest(
            "a user name is 1-64 characters: letters, digits and . _ @ + - "
            "(starting with a letter or digit)"
        )
    return name


def generate_password() -> str:
    return secrets.token_urlsafe(18)


class Accounts:
    def __init__(self, store: Store, hasher: PasswordHasher | None = None) -> None:
        self.store = store
        self.hasher = hasher or hasher_from_config()
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    def _dummy(self) -> str:
        """A hash to verify against for unknown users, so that the timing is the same.

        Made on first need, not at start-up: a hash costs as much memory as a check, and
        most servers never see an unknown user name.
        """
        with self._dummy_lock:
            if self._dummy_hash is None or self.hasher.check_needs_rehash(self._dummy_hash):
                self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
            return self._dummy_hash

    def add(
        self, name: str, password: str, *, admin: bool = False, client: str = "homeport-cli"
    ) -> User:
        """Create a user with the default address book, calendar and task list."""
        validate_username(name)
        if not password:
            raise InvalidRequest("the password must not be empty")
        user = User(name, self.hasher.hash(password), admin, now_us())

        def tx(w: MetadataWriter) -> User:
            w.add_user(user)
            for path, kind, props in DEFAULT_COLLECTIONS:
                seq = w.max_seq() + 1
                coll = w.create_collection(name, path, kind, props, seq)
                self.store.append(w, NewRevision(name, client, Op.MKCOL, coll.id, ""))
            return user

        return self.store.commit(tx)

    def get(self, name: str) -> User:
        with self.store.read() as r:
            user = r.get_user(name)
        if user is None:
            raise NotFound(f"no user {name!r}")
        return user

    def list_users(self) -> list[User]:
        with self.store.read() as r:
            return r.list_users()

    def count(self) -> int:
        return len(self.list_users())

    def set_password(self, name: str, password: str) -> None:
        if not password:
            raise InvalidRequest("the password must not be empty")
        hashed = self.hasher.hash(password)
        self.store.commit(lambda w: w.set_password_hash(name, hashed))

    def remove(self, name: str, *, client: str = "homeport-cli") -> None:
        """Remove the login and tombstone the user's collections; no data is erased."""

        def tx(w: MetadataWriter) -> None:
            if w.get_user(name) is None:
                raise NotFound(f"no user {name!r}")
            for coll in w.list_collections(name):
                rev = self.store.append(w, NewRevision(name, client, Op.RMCOL, coll.id, ""))
                w.mark_collection_deleted(coll.id, rev.seq)
            w.remove_user(name)

        self.store.commit(tx)

    def authenticate(self, name: str, password: str) -> User:
        """Check a password in constant time whether or not the user exists."""
        with self.store.read() as r:
            user = r.get_user(name)
        target = user.password_hash if user else self._dummy()
        try:
            self.hasher.verify(target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError) as exc:
            raise AuthenticationFailed("wrong user name or password") from exc
        if user is None:
            raise AuthenticationFailed("wrong user name or password")
        if self.hasher.check_needs_rehash(user.password_hash):
            # The [auth] settings changed since this hash was made: the right password
            # is at hand, so store it again with the current ones.
            hashed = self.hasher.hash(password)
            self.store.commit(lambda w: w.set_password_hash(user.name, hashed))
        return user
