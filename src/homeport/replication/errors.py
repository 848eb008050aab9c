"""The replication's typed errors: each says what is wrong with a replica, in a sentence.

They are `HomeportError`s, so the CLI turns them into one line and an exit code (the
integrity ones into the storage exit code, 5).
"""

from __future__ import annotations

from homeport.errors import HomeportError, IntegrityError


class ReplicaError(HomeportError):
    """Something about a replica or a replica target."""


class TargetUnavailable(ReplicaError):
    """The target could not be reached or refused the request (network, credentials, 5xx).

    The replicator retries these with backoff; `restore` reports them.
    """


class ObjectMissing(ReplicaError):
    """A named object does not exist on the target."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


class ObjectExists(ReplicaError):
    """A write-once object already exists under this key (and was not overwritten)."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


class WrongKey(ReplicaError):
    """None of the given identities can decrypt the replica."""


class ReplicaCorrupt(IntegrityError):
    """An object cannot be decrypted, decompressed or parsed, or does not match its checksum."""


class ReplicaIncomplete(IntegrityError):
    """Objects that a restore needs are missing (a blob, a segment in the middle of the chain)."""


class RestoreFailed(IntegrityError):
    """The restored data did not pass verification; nothing was left at the destination."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


class ReplicatorBusy(ReplicaError):
    """Another replicator (a running `homeport serve`) already holds this data directory."""
