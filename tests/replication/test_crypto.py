"""age + zstd: every object round-trips, and nothing damaged or foreign reads as good."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pyrage
import pytest

from homeport.errors import ConfigError
from homeport.replication.crypto import Opener, Sealer, generate_identity, load_identities
from homeport.replication.errors import ReplicaCorrupt, WrongKey


def _pair() -> tuple[Sealer, Opener]:
    secret, recipient = generate_identity()
    return Sealer([recipient]), Opener([pyrage.x25519.Identity.from_str(secret)])


def test_round_trip_small_and_streamed() -> None:
    sealer, opener = _pair()
    assert opener.open(sealer.seal(b"hello" * 1000), "x") == b"hello" * 1000
    data = os.urandom(3 << 20)
    sealed_buf = io.BytesIO()
    sealed = sealer.seal_stream(io.BytesIO(data), sealed_buf)
    assert sealed.plain_size == len(data) and sealed.sealed_size == len(sealed_buf.getvalue())
    out = io.BytesIO()
    size, sha = opener.open_stream(io.BytesIO(sealed_buf.getvalue()), out, "x")
    assert out.getvalue() == data and size == len(data) and sha == sealed.plain_sha256


def test_any_recipient_decrypts() -> None:
    s1, r1 = generate_identity()
    s2, r2 = generate_identity()
    sealed = Sealer([r1, r2]).seal(b"both")
    for secret in (s1, s2):
        assert Opener([pyrage.x25519.Identity.from_str(secret)]).open(sealed, "x") == b"both"


def test_wrong_key_then_damage() -> None:
    sealer, opener = _pair()
    _, stranger = _pair()
    sealed = sealer.seal(b"payload" * 100)
    with pytest.raises(WrongKey, match="other recipients"):
        stranger.open(sealed, "x")
    assert opener.open(sealed, "x")  # the key is proven now
    damaged = sealed[:-10] + bytes(b ^ 0xFF for b in sealed[-10:])
    with pytest.raises(ReplicaCorrupt, match="damaged"):
        opener.open(damaged, "segments/y")
    with pytest.raises(ReplicaCorrupt):
        opener.open(sealed[: len(sealed) // 2], "segments/y")
    with pytest.raises(ReplicaCorrupt):
        opener.open_stream(io.BytesIO(sealed[:-1]), io.BytesIO(), "blob")


def test_identity_files(tmp_path: Path) -> None:
    secret, recipient = generate_identity()
    plain = tmp_path / "key.txt"
    plain.write_text(f"# created: now\n# public key: {recipient}\n{secret}\n")
    sealed = Sealer([recipient]).seal(b"x")
    assert load_identities(plain).open(sealed, "x") == b"x"

    protected = tmp_path / "key.age"
    protected.write_bytes(pyrage.passphrase.encrypt(plain.read_bytes(), "open sesame"))
    # (scrypt takes seconds by design: the environment variable path is in test_cli)
    assert load_identities(protected, lambda: "open sesame", environ={}).open(sealed, "x") == b"x"
    with pytest.raises(WrongKey, match="passphrase"):
        load_identities(protected, environ={"HOMEPORT_IDENTITY_PASSPHRASE": "nope"})
    with pytest.raises(ConfigError, match="passphrase-protected"):
        load_identities(protected, environ={})

    junk = tmp_path / "junk.txt"
    junk.write_text("not a key\n")
    with pytest.raises(ConfigError):
        load_identities(junk)


def test_recipients_are_checked() -> None:
    with pytest.raises(ConfigError, match="not an age recipient"):
        Sealer(["age1notreally"])
    with pytest.raises(ConfigError, match="at least one"):
        Sealer([])
