"""Password hashing settings: validated, applied to new hashes, and old hashes upgraded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError

from homeport.errors import AuthenticationFailed, ConfigError
from homeport.services.accounts import Accounts, hasher_from_config
from homeport.store.core import Store
from homeport.wiring import open_store


class Settings:
    def __init__(self, **auth: Any) -> None:
        self.auth = {"argon2_memory_kib": 8192, "argon2_time_cost": 1, "argon2_parallelism": 1}
        self.auth.update(auth)

    def get(self, section: str, key: str) -> Any:
        assert section == "auth"
        return self.auth[key]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "data")
    yield s
    s.close()


def params(encoded: str) -> str:
    """The `m=..,t=..,p=..` part of an encoded argon2 hash."""
    return encoded.split("$")[3]


def test_the_default_is_owasps_9_mib_argon2id_setting() -> None:
    h = hasher_from_config()
    assert (h.memory_cost, h.time_cost, h.parallelism) == (9 * 1024, 4, 1)
    assert params(h.hash("x")) == "m=9216,t=4,p=1"


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("argon2_memory_kib", 1024, "at least 8192"),
        ("argon2_time_cost", 0, "at least 1"),
        ("argon2_parallelism", 0, "between 1 and 16"),
        ("argon2_parallelism", 64, "between 1 and 16"),
    ],
)
def test_bad_settings_are_config_errors(setting: str, value: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        hasher_from_config(Settings(**{setting: value}))


def test_a_login_upgrades_a_hash_made_with_other_settings(store: Store) -> None:
    old = Accounts(store, PasswordHasher(time_cost=1, memory_cost=8192, parallelism=2))
    old.add("alice", "secret")
    assert params(old.get("alice").password_hash) == "m=8192,t=1,p=2"
    new = Accounts(store, hasher_from_config(Settings(argon2_memory_kib=9000)))
    with pytest.raises(AuthenticationFailed):
        new.authenticate("alice", "wrong")
    assert params(new.get("alice").password_hash) == "m=8192,t=1,p=2"  # not on a failure
    new.authenticate("alice", "secret")
    assert params(new.get("alice").password_hash) == "m=9000,t=1,p=1"
    new.authenticate("alice", "secret")  # and the upgraded hash verifies
    with pytest.raises(AuthenticationFailed):
        old.authenticate("alice", "wrong")


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8192, parallelism=1)
        self.made: list[str | bytes] = []

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.made.append(password)
        return super().hash(password, salt=salt)


def test_unknown_users_cost_a_check_but_no_hash_at_start_up(store: Store) -> None:
    hasher = CountingHasher()
    made = hasher.made
    accounts = Accounts(store, hasher)
    assert made == []  # nothing hashed until an unknown name is tried
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            accounts.authenticate("nobody", "whatever")
    assert len(made) == 1  # one dummy hash, reused


def test_a_damaged_stored_hash_is_a_failed_login_not_a_crash(store: Store) -> None:
    accounts = Accounts(store, hasher_from_config(Settings()))
    accounts.add("alice", "secret")
    store.commit(lambda w: w.set_password_hash("alice", "not-a-hash"))
    with pytest.raises(AuthenticationFailed) as info:
        accounts.authenticate("alice", "secret")
    assert isinstance(info.value.__cause__, InvalidHashError)
