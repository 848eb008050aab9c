"""Every replica object is age(zstd(plaintext)): compressed, then encrypted to recipients.

The server holds only the recipients (public keys) and can write a replica but never read
it; `restore` and `drill` hold an identity. age (pyrage) authenticates every chunk and the
end of the stream, so a damaged or truncated object fails here instead of reading as good.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyrage
import zstandard

from homeport.errors import ConfigError
from homeport.replication.errors import ReplicaCorrupt, WrongKey

ZSTD_LEVEL = 3
PASSPHRASE_ENV = "HOMEPORT_IDENTITY_PASSPHRASE"
_AGE_MAGIC = b"age-encryption.org/v1"
_AGE_ARMOR = b"-----BEGIN AGE ENCRYPTED FILE-----"


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _HashingReader:
    """Pass reads through while hashing and counting them; keep the source's error (age
    would otherwise turn it into its own)."""

    def __init__(self, src: Readable) -> None:
        self._src = src
        self.digest = hashlib.sha256()
        self.size = 0
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._src.read(size)
        except BaseException as exc:
            self.error = exc
            raise
        self.digest.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True


class _HashingWriter:
    """Pass writes through while hashing and counting them; optionally cap the size."""

    def __init__(self, dst: Writable | None, limit: int | None = None) -> None:
        self._dst = dst
        self.digest = hashlib.sha256()
        self.size = 0
        self._limit = limit

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.size += len(chunk)
        if self._limit is not None and self.size > self._limit:
            raise ReplicaCorrupt("an object decompresses to more than its allowed size")
        self.digest.update(chunk)
        if self._dst is not None:
            self._dst.write(chunk)
        return len(chunk)

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True


@dataclass(frozen=True)
class Sealed:
    """What `Sealer.seal_stream` wrote: sizes and SHA-256 of both sides."""

    plain_size: int
    plain_sha256: str
    sealed_size: int
    sealed_sha256: str


def parse_recipients(values: Sequence[str]) -> list[pyrage.x25519.Recipient]:
    """age X25519 recipients (`age1…`); a value may also be a file with one per line."""
    out: list[pyrage.x25519.Recipient] = []
    for value in values:
        texts = [value]
        if not value.startswith("age1") and Path(value).is_file():
            texts = [
                line.strip()
                for line in Path(value).read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.lstrip().startswith("#")
            ]
        for text in texts:
            try:
                out.append(pyrage.x25519.Recipient.from_str(text.strip()))
            except pyrage.RecipientError as exc:
                raise ConfigError(
                    f"not an age recipient (expected age1…): {text.strip()[:12]}…"
                ) from exc
    if not out:
        raise ConfigError("replication needs at least one age recipient (--recipient age1…)")
    return out


class Sealer:
    """Compress and encrypt to a fixed set of recipients. Thread-safe."""

    def __init__(self, recipients: Sequence[str]) -> None:
        self._recipients = parse_recipients(recipients)

    def seal(self, plain: bytes) -> bytes:
        compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(plain)
        return bytes(pyrage.encrypt(compressed, self._recipients))

    def seal_stream(self, src: Readable, dst: Writable) -> Sealed:
        """Stream `src` through zstd and age into `dst`; memory stays flat."""
        plain = _HashingReader(src)
        out = _HashingWriter(dst)
        compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_reader(plain)  # type: ignore[arg-type]
        try:
            pyrage.encrypt_io(compressed, out, self._recipients)
        except pyrage.EncryptError:
            if plain.error is not None:
                raise plain.error from None
            raise
        return Sealed(plain.size, plain.digest.hexdigest(), out.size, out.digest.hexdigest())


class Opener:
    """Decrypt and decompress with the identities of one identity file. Thread-safe."""

    def __init__(self, identities: Sequence[pyrage.x25519.Identity]) -> None:
        if not identities:
            raise ConfigError("the identity file holds no age identity (AGE-SECRET-KEY-1…)")
        self._identities = list(identities)
        self._proven = False
        self._lock = threading.Lock()

    def _translate(self, exc: Exception, where: str) -> Exception:
        text = str(exc)
        if isinstance(exc, pyrage.DecryptError) and "no matching keys" in text.lower():
            with self._lock:
                proven = self._proven
            if not proven:
                return WrongKey(
                    "the identity cannot decrypt this replica: it was encrypted to other "
                    f"recipients ({where})"
                )
            return ReplicaCorrupt(f"{where}: the object's header is damaged")
        if isinstance(exc, ReplicaCorrupt):
            return ReplicaCorrupt(f"{where}: {exc.message}")
        return ReplicaCorrupt(f"{where}: the object is damaged or truncated ({text})")

    def _ok(self) -> None:
        with self._lock:
            self._proven = True

    def open(self, sealed: bytes, where: str, max_size: int = 1 << 30) -> bytes:
        """The plaintext of a small object (a manifest, a segment)."""
        try:
            compressed = pyrage.decrypt(sealed, self._identities)
            buf = io.BytesIO()
            out = _HashingWriter(buf, max_size)
            with zstandard.ZstdDecompressor().stream_writer(out, closefd=False) as writer:  # type: ignore[arg-type]
                writer.write(compressed)
        except (pyrage.DecryptError, zstandard.ZstdError, ReplicaCorrupt) as exc:
            raise self._translate(exc, where) from exc
        self._ok()
        return buf.getvalue()

    def open_stream(self, src: Readable, dst: Writable, where: str) -> tuple[int, str]:
        """Stream a large object's plaintext into `dst`; returns (size, SHA-256)."""
        out = _HashingWriter(dst)
        try:
            writer = zstandard.ZstdDecompressor().stream_writer(out, closefd=False)  # type: ignore[arg-type]
            pyrage.decrypt_io(src, writer, self._identities)
            writer.flush()
            writer.close()
        except (pyrage.DecryptError, zstandard.ZstdError, ReplicaCorrupt) as exc:
            raise self._translate(exc, where) from exc
        except OSError as exc:
            if exc.errno is not None:  # the destination's own error (disk full, …)
                raise
            raise self._translate(exc, where) from exc
        self._ok()
        return out.size, out.digest.hexdigest()


def load_identities(
    path: Path, ask_passphrase: Callable[[], str] | None = None, environ: Any = None
) -> Opener:
    """Read an age identity file (as `age-keygen` writes it), passphrase-protected or not.

    A passphrase-protected file (`age -p`) is decrypted with the passphrase from
    HOMEPORT_IDENTITY_PASSPHRASE or, failing that, `ask_passphrase()`.
    """
    environ = os.environ if environ is None else environ
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the identity file {path}: {exc.strerror}") from exc
    if raw.lstrip().startswith((_AGE_MAGIC, _AGE_ARMOR)):
        passphrase = environ.get(PASSPHRASE_ENV)
        if passphrase is None:
            if ask_passphrase is None:
                raise ConfigError(
                    f"the identity file {path} is passphrase-protected: set {PASSPHRASE_ENV}"
                )
            passphrase = ask_passphrase()
        try:
            raw = bytes(pyrage.passphrase.decrypt(raw, passphrase))
        except pyrage.DecryptError as exc:
            raise WrongKey(f"wrong passphrase for the identity file {path}") from exc
    identities: list[pyrage.x25519.Identity] = []
    for line in raw.decode("utf-8", errors="replace").splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            identities.append(pyrage.x25519.Identity.from_str(text))
        except pyrage.IdentityError as exc:
            raise ConfigError(f"{path} holds a line that is not an age identity") from exc
    return Opener(identities)


def generate_identity() -> tuple[str, str]:
    """A new (identity, recipient) pair as text, for tests and first-time setup."""
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())
